"""The few Spark read / write patterns every step uses on the lake's Delta tables and landing files.

Where the tables live (names, root, paths) is ``dmp.contracts.tables``; this module only does I/O:
reading (current or pinned version), idempotent writes (replace partitions, insert-only MERGE,
replace the whole content), appends of run logs, and looking at landing paths (local or object
storage, through Hadoop's file system so ``s3a://`` works like a local folder).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from dmp.contracts.errors import DmpError
from dmp.contracts.tables import USER_DAILY, USER_TAG_STATE, USER_TAGS, table_path

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject

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
    """Create the Delta table with ``schema`` if it does not exist yet (concurrent creators are fine)."""
    from delta.tables import DeltaTable

    (
        DeltaTable.createIfNotExists(spark)
        .location(table_path(lake, table))
        .addColumns(schema)
        .partitionedBy(*partition_cols)
        .execute()
    )


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
    The table is created (partitioned by ``partition_cols``) on the first write. ``merge_schema``
    lets the write add columns that an existing table does not have yet.
    """
    writer = df.write.format("delta").mode("overwrite").option("replaceWhere", condition)
    if table in STATS_COLUMNS:
        writer = writer.option("delta.dataSkippingStatsColumns", STATS_COLUMNS[table])
    if merge_schema:
        writer = writer.option("mergeSchema", "true")
    writer.partitionBy(*partition_cols).save(table_path(lake, table))


def overwrite_table(df: DataFrame, lake: str, table: str) -> None:
    """Replace the whole content of an unpartitioned table (a snapshot source, e.g. identities)."""
    df.write.format("delta").mode("overwrite").save(table_path(lake, table))


def append(df: DataFrame, lake: str, table: str, partition_cols: list[str] | None = None) -> None:
    """Append, for ops/log tables whose rows are unique by construction (run ids, attempt ids)."""
    writer = df.write.format("delta").mode("append")
    if partition_cols:
        writer = writer.partitionBy(*partition_cols)
    writer.save(table_path(lake, table))


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
    (
        DeltaTable.forPath(spark, table_path(lake, table))
        .alias("t")
        .merge(new_df.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


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
