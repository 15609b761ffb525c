"""What the three ingest steps (events, identities, suppression lists) share: the run's record.

Every ingest run ends as one row of ``ops/ingest_runs``: how many rows were read and which bucket
each ended in (accepted, quarantined by reason, duplicates), so that the numbers reconcile:
``rows_read = accepted + quarantined + duplicates``, and files too when a step can quarantine a
whole file (Parquet): ``files = files_ingested + files_quarantined``. The steps fill an
``IngestResult`` and call ``write_run``; the CLI prints it (``dmp.cli.ingest.reconciliation_table``).

``ops/ingest_runs`` gains columns as the record grows (``files_ingested``, ``files_quarantined``,
``file_reasons``): ``write_run`` appends with Delta's mergeSchema, so a lake written by an older dmp
takes the new columns on its next run and its old rows read them as null.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.transforms.erasure import ERASED_USER, MENTION, with_erased_status
from dmp.transforms.quarantine import (
    ACCEPTED,
    DUPLICATE_IN_BATCH,
    DUPLICATE_IN_LAKE,
    QUARANTINED,
    to_quarantine_rows,
)

# The values of an ops/ingest_runs row, as the schema types them.
RunValue = str | int | bool | datetime | list[date] | dict[str, int] | None


@dataclass
class IngestResult:
    """One run's reconciliation; stored as a row of ``ops/ingest_runs``."""

    run_id: str
    source: str
    format: str
    dates: list[date] | None
    started_at: datetime
    files: int = 0
    # None: the step does not count files apart (every file found is read: identities, suppression).
    files_ingested: int | None = None
    files_quarantined: int = 0
    file_reasons: dict[str, int] = field(default_factory=dict)
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    quarantine_new: int = 0
    duplicates_in_batch: int = 0
    duplicates_in_lake: int = 0
    out_of_scope: int = 0
    blank_lines: int = 0
    # Rows of accounts erased by `dmp forget` (ops/erased_users): neither written nor quarantined.
    erased: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    checks: str = "skipped"
    status: str = "ok"
    message: str | None = None
    table_version: int | None = None
    finished_at: datetime | None = None
    event_dates: list[date] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicates_in_batch + self.duplicates_in_lake

    @property
    def files_reconciled(self) -> bool:
        """Every file found was read or quarantined (True when the step does not count files apart)."""
        return self.files_ingested is None or (
            self.files == self.files_ingested + self.files_quarantined
            and sum(self.file_reasons.values()) == self.files_quarantined
        )

    @property
    def reconciled(self) -> bool:
        return (
            self.rows_read == self.accepted + self.quarantined + self.duplicates + self.erased
            and sum(self.reasons.values()) == self.quarantined
            and self.files_reconciled
        )

    def add_file_reasons(self, reasons: Iterable[str]) -> None:
        """Count one quarantined file per reason given."""
        for reason in reasons:
            self.file_reasons[reason] = self.file_reasons.get(reason, 0) + 1
            self.files_quarantined += 1

    def add_bucket_counts(self, counts: Iterable[tuple[str, str | None, int]]) -> None:
        """Add ``(status, reason, rows)`` counts (one per status x reason) to the buckets."""
        for status, reason, n in counts:
            if status == QUARANTINED:
                assert reason is not None, "a quarantined row always has a reason"
                self.reasons[reason] = self.reasons.get(reason, 0) + n
                self.quarantined += n
            elif status == ACCEPTED:
                self.accepted += n
            elif status == DUPLICATE_IN_BATCH:
                self.duplicates_in_batch += n
            elif status == DUPLICATE_IN_LAKE:
                self.duplicates_in_lake += n
            elif status == ERASED_USER:
                self.erased += n
            else:
                raise ValueError(f"unknown row status {status!r}")

    def as_row(self) -> dict[str, RunValue]:
        row = asdict(self)
        row.pop("event_dates")
        row.update(duplicates=self.duplicates, reconciled=self.reconciled)
        row["finished_at"] = self.finished_at or datetime.now(UTC)
        return {name: row[name] for name in schemas.INGEST_RUNS_SCHEMA.fieldNames()}


def bucket_counts(classified_df: DataFrame) -> list[tuple[str, str | None, int]]:
    """``(status, reason, rows)`` of a classified batch, for ``IngestResult.add_bucket_counts``."""
    rows = classified_df.groupBy("status", "reason").count().collect()
    return [(r["status"], r["reason"], int(r["count"])) for r in rows]


def line_counts(lines_df: DataFrame, blank: Column) -> tuple[int, int]:
    """(all lines, blank lines) of the input: blank lines are not records and are reported apart."""
    row = lines_df.agg(F.count(F.lit(1)).alias("n"), F.count_if(blank).alias("blank")).first()
    assert row is not None
    return int(row["n"]), int(row["blank"])


def write_quarantine(
    spark: SparkSession,
    lake: str,
    result: IngestResult,
    table: str,
    schema: StructType,
    classified_df: DataFrame,
    keep: Sequence[str],
) -> None:
    """Insert the run's quarantined rows whose ``quarantine_id`` is new into ``table`` (one partition
    per ingest date); ``result.quarantine_new`` says how many (0 on a rerun: nothing is written)."""
    rows_df = to_quarantine_rows(classified_df, result.started_at, result.run_id, keep)
    result.quarantine_new = lk.insert_new_rows(
        spark, lake, table, schema, rows_df, "quarantine_id", ["ingest_date"]
    )


def write_run(spark: SparkSession, lake: str, result: IngestResult) -> None:
    """Append the run's record to ``ops/ingest_runs`` (mergeSchema: an older table gains new columns)."""
    schema = schemas.INGEST_RUNS_SCHEMA
    row_df = spark.createDataFrame([result.as_row()], schema)
    lk.ensure_table(spark, lake, tables.INGEST_RUNS, schema)
    writer = row_df.write.format("delta").mode("append").option("mergeSchema", "true")
    path = tables.table_path(lake, tables.INGEST_RUNS)
    lk.retry_conflicts(lambda: writer.save(path), f"{path}: append")


def finish_run(spark: SparkSession, lake: str, result: IngestResult) -> IngestResult:
    """Stamp ``finished_at`` now and record the run."""
    result.finished_at = datetime.now(UTC)
    write_run(spark, lake, result)
    return result


@dataclass(frozen=True)
class Tombstones:
    """The hashes ``dmp forget`` left: ``hash`` of erased user ids, and of those plus the mention
    keys of their identifiers (raw text is matched against the second)."""

    users: DataFrame
    mentions: DataFrame


def read_tombstones(spark: SparkSession, lake: str) -> Tombstones | None:
    """The lake's tombstones, or None when nothing was ever erased (ingest then skips the check)."""
    if not lk.table_exists(spark, lake, tables.ERASED_USERS):
        return None
    users = lk.read_table(spark, lake, tables.ERASED_USERS).select(F.col("user_hash").alias("hash"))
    mentions = users
    if lk.table_exists(spark, lake, tables.ERASED_IDENTIFIERS):
        ids = lk.read_table(spark, lake, tables.ERASED_IDENTIFIERS).filter(F.col("kind") == MENTION)
        mentions = users.unionByName(ids.select(F.col("value_hash").alias("hash")))
    return Tombstones(users, mentions)


def apply_tombstones(classified_df: DataFrame, tombstones: Tombstones | None) -> DataFrame:
    """``classified_df`` with the rows of erased accounts in the ``erased_user`` bucket (no-op without tombstones)."""
    if tombstones is None:
        return classified_df
    return with_erased_status(classified_df, tombstones.users, tombstones.mentions)


def reconcile_message(kind: str, source: str, result: IngestResult) -> str:
    return (
        f"{kind} ingest of {source} does not reconcile: rows read {result.rows_read} != accepted "
        f"{result.accepted} + quarantined {result.quarantined} + duplicates {result.duplicates} "
        f"+ erased {result.erased}"
    )


def require_source(spark: SparkSession, source: str) -> str:
    """``--source`` without a trailing slash; an error naming it when nothing is there."""
    source = source.rstrip("/") or "/"
    if not lk.path_exists(spark, source):
        raise DmpError(f"--source {source}: no such file or folder")
    return source
