"""The few Spark read / write patterns every step uses on the lake's Delta tables.

Where the tables live (names, root, paths) is ``dmp.contracts.tables``; this module only does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from pyspark.sql import DataFrame, SparkSession

from dmp.contracts.tables import USER_DAILY, USER_TAG_STATE, USER_TAGS, table_path

# Delta collects min/max statistics on the first 32 columns of every file it writes by default. A
# user_daily file holds every user, store, brand and category of its day, and a tags or state file
# holds a hash slice of all users with every lifecycle stage, level and flag, so those statistics
# prune nothing. Collecting them was ~14% of the aggregate step at 20M events and ~1 s of each tags
# write (bench/README.md). Tables listed here keep statistics on these columns only (set when the
# table is created; an existing table keeps its setting).
STATS_COLUMNS: dict[str, str] = {USER_DAILY: "user_id", USER_TAGS: "user_id", USER_TAG_STATE: "user_id"}


def table_exists(spark: SparkSession, lake: str, table: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, table_path(lake, table))


def read_table(spark: SparkSession, lake: str, table: str) -> DataFrame:
    return spark.read.format("delta").load(table_path(lake, table))


def table_version(spark: SparkSession, lake: str, table: str) -> int | None:
    """Current Delta version of a table (recorded in manifests so a delivery is reproducible)."""
    from delta.tables import DeltaTable

    if not table_exists(spark, lake, table):
        return None
    row = DeltaTable.forPath(spark, table_path(lake, table)).history(1).select("version").first()
    return int(row["version"]) if row else None


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


def append(df: DataFrame, lake: str, table: str, partition_cols: list[str] | None = None) -> None:
    """Append, for ops/log tables whose rows are unique by construction (run ids, attempt ids)."""
    writer = df.write.format("delta").mode("append")
    if partition_cols:
        writer = writer.partitionBy(*partition_cols)
    writer.save(table_path(lake, table))
