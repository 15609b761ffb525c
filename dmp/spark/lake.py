"""The few Spark read / write patterns every step uses on the lake's Delta tables and landing files.

Where the tables live (names, root, paths) is ``dmp.contracts.tables``; this module only does I/O:
reading (current or pinned version), idempotent writes (replace partitions, insert-only MERGE,
replace the whole content), appends of run logs, and looking at landing paths (local or object
storage, through Hadoop's file system so ``s3a://`` works like a local folder).

Several Spark drivers write the same tables at once (the DAGs' mapped tasks, each its own driver;
infra/README.md "Concurrent writers"). Every write here therefore

- runs through :func:`retry_conflicts`: Delta's optimistic concurrency raises one of its
  concurrent-modification exceptions *before* anything is committed when another writer's commit
  logically conflicts (or when two drivers create the same table), so redoing the whole write
  against the new snapshot is safe and needs no clean-up; and
- is confined to its own partitions (``overwrite_partitions``: a replaceWhere whose partition
  part names only this task's partition), so disjoint tasks never conflict in the first place.
  A table whose layout on disk differs from the one the code writes (an older lake) is rewritten
  once, atomically, to the new layout (:func:`migrate_partitioning`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from dmp.contracts.errors import DmpError
from dmp.contracts.tables import USER_DAILY, USER_TAG_STATE, USER_TAGS, table_path

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject

log = logging.getLogger(__name__)
T = TypeVar("T")

# Delta collects min/max statistics on the first 32 columns of every file it writes by default. A
# user_daily file holds every user, store, brand and category of its day, and a tags or state file
# holds a hash slice of all users with every lifecycle stage, level and flag, so those statistics
# prune nothing. Collecting them was ~14% of the aggregate step at 20M events and ~1 s of each tags
# write (bench/README.md). Tables listed here keep statistics on these columns only (set when the
# table is created; an existing table keeps its setting).
STATS_COLUMNS: dict[str, str] = {USER_DAILY: "user_id", USER_TAGS: "user_id", USER_TAG_STATE: "user_id"}


# ------------------------------------------------------------------------------------------- read


def table_exists(spark: SparkSession, lake: str, table: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, table_path(lake, table))


def read_table(spark: SparkSession, lake: str, table: str) -> DataFrame:
    return spark.read.format("delta").load(table_path(lake, table))


def read_required(spark: SparkSession, lake: str, table: str, run_first: str) -> DataFrame:
    """A table the step cannot do without; when it is missing the error says which command makes it."""
    if not table_exists(spark, lake, table):
        raise DmpError(f"{table_path(lake, table)} does not exist: run `{run_first}` first")
    return read_table(spark, lake, table)


def read_pinned(spark: SparkSession, lake: str, table: str, version: int) -> DataFrame:
    """The table as of ``version``: a step that writes the table reads what it saw when it started."""
    return spark.read.format("delta").option("versionAsOf", version).load(table_path(lake, table))


def table_version(spark: SparkSession, lake: str, table: str) -> int | None:
    """Current Delta version of a table (recorded in manifests so a delivery is reproducible)."""
    from delta.tables import DeltaTable

    if not table_exists(spark, lake, table):
        return None
    row = DeltaTable.forPath(spark, table_path(lake, table)).history(1).select("version").first()
    return int(row["version"]) if row else None


# ------------------------------------------------------------------------------ concurrent writers

# A conflicting write is redone this many times in all (first try included), after a random
# exponential wait (0.5 s doubling up to 8 s, "full jitter" so two losers do not collide again in
# step). Disjoint writers never conflict (see the module docstring); this covers the rest: two
# drivers creating one table, a migration, the same partition written twice at once. Eight tries
# span ~30 s of waiting at most, far more than a small commit takes on 2 cores.
CONFLICT_ATTEMPTS = 8
CONFLICT_WAIT_FIRST_S = 0.5
CONFLICT_WAIT_MAX_S = 8.0


def conflict_exceptions() -> tuple[type[BaseException], ...]:
    """Delta's concurrent-modification exceptions (``delta.exceptions``, delta-spark 4.x).

    Each is raised by the optimistic transaction *instead of* committing, so nothing of the failed
    attempt is in the table. ``ProtocolChangedException`` is also what the loser of two drivers
    creating the same table gets (DELTA_PROTOCOL_CHANGED).
    """
    from delta.exceptions import (
        ConcurrentAppendException,
        ConcurrentDeleteDeleteException,
        ConcurrentDeleteReadException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
        MetadataChangedException,
        ProtocolChangedException,
    )

    return (
        ConcurrentAppendException,
        ConcurrentDeleteReadException,
        ConcurrentDeleteDeleteException,
        MetadataChangedException,
        ProtocolChangedException,
        ConcurrentTransactionException,
        ConcurrentWriteException,
        DeltaConcurrentModificationException,
    )


class ConcurrentWriteConflict(DmpError):
    """A lake write still conflicted with other writers after every allowed attempt."""


def retry_conflicts(
    write: Callable[[], T],
    what: str,
    *,
    attempts: int = CONFLICT_ATTEMPTS,
    wait_first: float = CONFLICT_WAIT_FIRST_S,
    wait_max: float = CONFLICT_WAIT_MAX_S,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Run ``write`` (an idempotent lake write), again after a concurrent-writer conflict.

    ``write`` must build its result from the table's current state each time it runs (every
    helper below does: a replaceWhere, a MERGE, a create-if-not-exists), because the retry runs
    against the snapshot that includes the winner's commit. Other errors pass through at once.
    After ``attempts`` conflicts a :class:`ConcurrentWriteConflict` names ``what`` and the last
    conflict; there is never a raw Delta traceback for a conflict.
    """
    import tenacity

    conflicts = conflict_exceptions()

    def _log_retry(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: concurrent writer conflict (%s), attempt %d of %d; retrying",
            what,
            type(exc).__name__,
            state.attempt_number,
            attempts,
        )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(conflicts),
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_random_exponential(multiplier=wait_first, max=wait_max),
        before_sleep=_log_retry,
        sleep=sleep or tenacity.nap.sleep,
        reraise=True,
    )
    try:
        return retrying(write)
    except conflicts as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ConcurrentWriteConflict(
            f"{what}: still conflicting with concurrent writers after {attempts} attempts "
            f"({type(exc).__name__}: {first_line})"
        ) from exc


def partition_columns(spark: SparkSession, lake: str, table: str) -> list[str] | None:
    """The table's partition columns as stored in its Delta log; None when the table does not exist."""
    from delta.tables import DeltaTable

    if not table_exists(spark, lake, table):
        return None
    row = DeltaTable.forPath(spark, table_path(lake, table)).detail().select("partitionColumns").first()
    return list(row["partitionColumns"]) if row else []


def migrate_partitioning(spark: SparkSession, lake: str, table: str, partition_cols: Sequence[str]) -> bool:
    """Rewrite ``table`` partitioned by ``partition_cols`` if it is stored otherwise; True if it did.

    One overwrite commit (``overwriteSchema`` allows the new partitioning): readers see the old or
    the new layout, never a mix, and time travel to older versions still works. Lakes written
    before a table became partitioned (ops/pack_runs, ops/deliveries, gold/uplift_results) are
    upgraded this way by the first write of the new code, with no separate upgrade step. Two
    drivers migrating at once: the loser's commit conflicts, its retry finds the new layout and
    does nothing; a writer that committed while the rewrite ran makes the rewrite conflict and
    redo itself, so no row is lost.
    """

    def _migrate() -> bool:
        current = partition_columns(spark, lake, table)
        if current is None or current == list(partition_cols):
            return False
        log.warning("%s: partitioned by %s, rewriting it partitioned by %s", table, current, partition_cols)
        version = table_version(spark, lake, table)
        assert version is not None
        (
            read_pinned(spark, lake, table, version)
            .write.format("delta")
            .mode("overwrite")
            .option("overwriteSchema", "true")
            .partitionBy(*partition_cols)
            .save(table_path(lake, table))
        )
        return True

    return retry_conflicts(_migrate, f"{table_path(lake, table)}: repartition by {list(partition_cols)}")


# ------------------------------------------------------------------------------------------ write


def _sql_literal(value: object) -> str:
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def replace_where_condition(column: str, values: Iterable[object]) -> str:
    vals = sorted(set(values), key=str)
    if not vals:
        raise ValueError(f"no values given for {column}")
    if len(vals) == 1:
        return f"`{column}` = {_sql_literal(vals[0])}"
    return f"`{column}` IN ({', '.join(_sql_literal(v) for v in vals)})"


def ensure_table(
    spark: SparkSession, lake: str, table: str, schema: StructType, partition_cols: Sequence[str] = ()
) -> None:
    """Create the Delta table with ``schema`` if it does not exist yet.

    Two drivers creating the same table both try to commit version 0; the loser gets
    DELTA_PROTOCOL_CHANGED (or another conflict), and its retry finds the table and does nothing.
    """
    from delta.tables import DeltaTable

    def _create() -> None:
        (
            DeltaTable.createIfNotExists(spark)
            .location(table_path(lake, table))
            .addColumns(schema)
            .partitionedBy(*partition_cols)
            .execute()
        )

    retry_conflicts(_create, f"{table_path(lake, table)}: create")


def overwrite_partitions(
    df: DataFrame,
    lake: str,
    table: str,
    partition_cols: list[str],
    condition: str,
    *,
    merge_schema: bool = False,
) -> None:
    """Idempotent write: atomically replace the rows matching ``condition`` (a partition predicate).

    Re-running a step for the same date replaces that date's data instead of appending to it.
    The table is created (partitioned by ``partition_cols``) on the first write; an existing table
    stored with other partition columns is migrated first (:func:`migrate_partitioning`).
    ``merge_schema`` lets the write add columns that an existing table does not have yet.

    Concurrency: Delta's conflict check compares only the *partition* part of ``condition`` with
    what other writers added or removed, so writers whose conditions name different partition
    values never conflict; a conflict that does happen is retried (:func:`retry_conflicts`).
    """
    spark = df.sparkSession
    if partition_cols:
        migrate_partitioning(spark, lake, table, partition_cols)
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
    if table in STATS_COLUMNS:
        writer = writer.option("delta.dataSkippingStatsColumns", STATS_COLUMNS[table])
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer = writer.partitionBy(*partition_cols)
    retry_conflicts(
        lambda: writer.save(table_path(lake, table)), f"{table_path(lake, table)}: replace {condition}"
    )


def overwrite_table(df: DataFrame, lake: str, table: str) -> None:
    """Replace the whole content of an unpartitioned table (a snapshot source, e.g. identities)."""
    writer = df.write.format("delta").mode("overwrite")
    retry_conflicts(lambda: writer.save(table_path(lake, table)), f"{table_path(lake, table)}: overwrite")


def append(df: DataFrame, lake: str, table: str, partition_cols: list[str] | None = None) -> None:
    """Append, for ops/log tables whose rows are unique by construction (run ids, attempt ids)."""
    writer = df.write.format("delta").mode("append")
    if partition_cols:
        writer = writer.partitionBy(*partition_cols)
    # A conflict is raised instead of committing, so a retried append never adds the rows twice.
    retry_conflicts(lambda: writer.save(table_path(lake, table)), f"{table_path(lake, table)}: append")


def append_rows(
    spark: SparkSession, lake: str, table: str, schema: StructType, rows: Sequence[Mapping[str, object]]
) -> None:
    """Append Python rows (e.g. one run's record) to an unpartitioned log table, creating it if needed."""
    df = spark.createDataFrame([dict(r) for r in rows], schema)
    ensure_table(spark, lake, table, schema)
    append(df, lake, table)


def merge_insert_new(
    spark: SparkSession, lake: str, table: str, new_df: DataFrame, key: str, target_filter: str | None = None
) -> None:
    """MERGE insert-when-not-matched on ``key`` (the guard against a concurrent writer of the same rows).

    ``target_filter`` (SQL on the target alias ``t``) limits the rows the MERGE has to look at.
    """
    from delta.tables import DeltaTable

    condition = f"t.`{key}` = s.`{key}`" + (f" AND ({target_filter})" if target_filter else "")

    def _merge() -> None:
        (
            DeltaTable.forPath(spark, table_path(lake, table))
            .alias("t")
            .merge(new_df.alias("s"), condition)
            .whenNotMatchedInsertAll()
            .execute()
        )

    retry_conflicts(_merge, f"{table_path(lake, table)}: insert new rows by {key}")


def insert_new_rows(
    spark: SparkSession,
    lake: str,
    table: str,
    schema: StructType,
    rows_df: DataFrame,
    key: str,
    partition_cols: Sequence[str] = (),
) -> int:
    """Insert the rows whose ``key`` the table does not hold yet; returns how many (0 = no write).

    Writing nothing when nothing is new keeps the table at the same version on a rerun.
    """
    ensure_table(spark, lake, table, schema, partition_cols)
    # new_df is persisted and counted before the MERGE, so no need to pin the version here
    known = read_table(spark, lake, table).select(key)
    new_df = rows_df.join(known, key, "left_anti").select(*schema.fieldNames()).persist()
    try:
        n_new = new_df.count()
        if n_new:
            merge_insert_new(spark, lake, table, new_df, key)
        return n_new
    finally:
        new_df.unpersist()


# --------------------------------------------------------------------------------- landing paths


def _hadoop_path(spark: SparkSession, path: str) -> tuple[JavaObject, JavaObject]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _hadoop_path(spark, path)
    return bool(fs.exists(hpath))


def is_dir(spark: SparkSession, path: str) -> bool:
    fs, hpath = _hadoop_path(spark, path)
    return bool(fs.exists(hpath) and fs.getFileStatus(hpath).isDirectory())


def child_dirs(spark: SparkSession, path: str) -> list[str]:
    """Names of the folders directly inside ``path``."""
    fs, hpath = _hadoop_path(spark, path)
    return [s.getPath().getName() for s in fs.listStatus(hpath) if s.isDirectory()]
