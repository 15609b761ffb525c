"""silver/identities (+ yesterday's silver/persons) -> silver/persons, silver/person_identifiers and
the run date's ops/identity_violations (``dmp identities stitch``; the rules: dmp.transforms.stitching).

Idempotency: persons and person identifiers are snapshots, replaced as a whole, and only when their
content changed (a rerun, or a day on which nothing changed, writes nothing: same Delta versions);
the violations replace the run date's partition, again only when it differs. The previous persons
are read at a pinned version, so the ids are carried over from one consistent snapshot.

Concurrency: two stitch runs write the same two snapshot tables. ``dmp_daily`` runs one DAG run at a
time (``max_active_runs=1``), which serialises its stitch task; a run started by hand at the same
moment retries its write on Delta's conflict (``lake.retry_conflicts``) and the last writer's
snapshot, computed from one consistent input, wins.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dmp.contracts import tables
from dmp.contracts.identity_guards import IdentityGuards
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.transforms.columns import lit_date, select_schema
from dmp.transforms.stitching import stitch_identities


@dataclass
class StitchResult:
    run_date: date
    accounts: int
    persons: int
    multi_account_persons: int
    person_identifiers: int
    rounds: int
    violations: dict[str, int] = field(default_factory=dict)  # rule -> identifiers
    written: dict[str, bool] = field(default_factory=dict)  # table -> whether this run wrote it
    versions: dict[str, int | None] = field(default_factory=dict)


def _same_rows(a: DataFrame, b: DataFrame) -> bool:
    """Whether ``a`` and ``b`` hold the same rows, duplicates counted (one Spark job, one shuffle)."""
    cols = a.columns
    signed = a.withColumn("_n", F.lit(1)).unionByName(b.select(*cols).withColumn("_n", F.lit(-1)))
    return signed.groupBy(*cols).agg(F.sum("_n").alias("_n")).filter(F.col("_n") != 0).isEmpty()


def _replace_snapshot(spark: SparkSession, lake: str, table: str, schema: StructType, df: DataFrame) -> bool:
    """Replace the table's content with ``df`` unless it holds exactly those rows; True if it wrote."""
    lk.ensure_table(spark, lake, table, schema)
    if _same_rows(df, lk.read_table(spark, lake, table).select(*schema.fieldNames())):
        return False
    lk.overwrite_table(df, lake, table)
    return True


def _replace_violations(spark: SparkSession, lake: str, run_date: date, df: DataFrame) -> bool:
    """Replace the run date's violations unless the partition holds exactly those rows."""
    table, schema = tables.IDENTITY_VIOLATIONS, schemas.IDENTITY_VIOLATIONS_SCHEMA
    lk.ensure_table(spark, lake, table, schema, ["run_date"])
    current = lk.read_table(spark, lake, table).filter(F.col("run_date") == lit_date(run_date))
    if _same_rows(df, current.select(*schema.fieldNames())):
        return False
    condition = lk.replace_where_condition("run_date", [run_date])
    lk.overwrite_partitions(df, lake, table, ["run_date"], condition)
    return True


def _previous_persons(spark: SparkSession, lake: str) -> DataFrame | None:
    version = lk.table_version(spark, lake, tables.PERSONS)
    return None if version is None else lk.read_pinned(spark, lake, tables.PERSONS, version)


def run_stitch(spark: SparkSession, lake: str, run_date: date, guards: IdentityGuards) -> StitchResult:
    """Stitch the current identities into persons as of ``run_date`` and write the three tables."""
    identities_df = lk.read_required(spark, lake, tables.IDENTITIES, "dmp ingest-identities")
    out = stitch_identities(identities_df, _previous_persons(spark, lake), run_date, guards)
    # materialised once: compared with the tables, written, counted
    persons = select_schema(out.persons_df, schemas.PERSONS_SCHEMA).localCheckpoint()
    identifiers = select_schema(
        out.person_identifiers_df, schemas.PERSON_IDENTIFIERS_SCHEMA
    ).localCheckpoint()
    violations = select_schema(out.violations_df, schemas.IDENTITY_VIOLATIONS_SCHEMA).localCheckpoint()

    written = {
        tables.PERSONS: _replace_snapshot(spark, lake, tables.PERSONS, schemas.PERSONS_SCHEMA, persons),
        tables.PERSON_IDENTIFIERS: _replace_snapshot(
            spark, lake, tables.PERSON_IDENTIFIERS, schemas.PERSON_IDENTIFIERS_SCHEMA, identifiers
        ),
        tables.IDENTITY_VIOLATIONS: _replace_violations(spark, lake, run_date, violations),
    }
    sizes = persons.groupBy("person_id").count()
    counts = sizes.agg(
        F.count("*").alias("persons"),
        F.sum("count").alias("accounts"),
        F.count(F.when(F.col("count") > 1, 1)).alias("multi"),
    ).first()
    return StitchResult(
        run_date=run_date,
        accounts=int(counts["accounts"] or 0),
        persons=int(counts["persons"]),
        multi_account_persons=int(counts["multi"]),
        person_identifiers=identifiers.count(),
        rounds=out.rounds,
        violations=dict(Counter(r["rule"] for r in violations.select("rule").collect())),
        written=written,
        versions={t: lk.table_version(spark, lake, t) for t in written},
    )
