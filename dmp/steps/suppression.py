"""Suppression lists (e.g. ``opt_out``: users who opted out of marketing) -> ``silver/suppression_lists``.

Input: a CSV with a header that has a ``user_id`` column (other columns are ignored). ``--source`` may
also be a folder holding ``<name>.csv`` or ``suppression/<name>.csv`` (the generator's output folder).
Each load **replaces** that list's rows (Delta replaceWhere on ``list_name``); other lists are kept.
User ids are trimmed; blank ids are counted as ``missing_field:user_id``, repeats as duplicates.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.ingest import IngestResult, clean_text, ensure_table, is_dir, path_exists, write_run

LIST_NAME = re.compile(r"^[a-z0-9_]+$")


def to_suppression_rows(csv_df: DataFrame, name: str, loaded_at: datetime) -> DataFrame:
    """Distinct non-blank trimmed user ids of the CSV as rows of list ``name``."""
    return (
        csv_df.select(clean_text(F.col("user_id")).alias("user_id"), "source_file")
        .filter(F.col("user_id").isNotNull())
        .groupBy("user_id")
        .agg(F.min("source_file").alias("source_file"))
        .select(
            F.lit(name).alias("list_name"),
            "user_id",
            "source_file",
            F.lit(loaded_at).cast("timestamp").alias("loaded_at"),
        )
    )


def resolve_suppression_source(spark: SparkSession, name: str, source: str) -> str:
    source = source.rstrip("/") or "/"
    if not path_exists(spark, source):
        raise DmpError(f"--source {source}: no such file or folder")
    if not is_dir(spark, source):
        return source
    for candidate in (f"{source}/{name}.csv", f"{source}/suppression/{name}.csv"):
        if path_exists(spark, candidate):
            return candidate
    raise DmpError(f"--source {source}: folder has no {name}.csv or suppression/{name}.csv")


def run_ingest_suppression(
    spark: SparkSession, lake: str, name: str, source: str, *, now: datetime | None = None
) -> IngestResult:
    """Replace list ``name`` in ``silver/suppression_lists`` with the user ids of ``source``."""
    if not LIST_NAME.match(name):
        raise DmpError(f"--name: list names are [a-z0-9_]+, got {name!r}")
    started = (now or datetime.now(UTC)).astimezone(UTC)
    result = IngestResult(str(uuid.uuid4()), source, f"suppression:{name}", None, started)
    path = resolve_suppression_source(spark, name, source)
    csv_df = spark.read.option("header", "true").csv(path)
    if "user_id" not in csv_df.columns:
        raise DmpError(
            f"{path}: expected a CSV whose header has a 'user_id' column, got header {csv_df.columns}"
        )
    csv_df = csv_df.withColumn("source_file", F.col("_metadata.file_path")).persist()
    try:
        result.files = 1
        result.rows_read = csv_df.count()
        blank = csv_df.filter(clean_text(F.col("user_id")).isNull()).count()
        if blank:
            result.reasons["missing_field:user_id"] = blank
        result.quarantined = blank
        rows_df = to_suppression_rows(csv_df, name, started).persist()
        result.accepted = rows_df.count()
        result.duplicates_in_batch = result.rows_read - blank - result.accepted
        ensure_table(spark, lake, tables.SUPPRESSION_LISTS, schemas.SUPPRESSION_LISTS_SCHEMA, ["list_name"])
        lk.overwrite_partitions(
            rows_df,
            lake,
            tables.SUPPRESSION_LISTS,
            ["list_name"],
            lk.replace_where_condition("list_name", [name]),
        )
        rows_df.unpersist()
        result.table_version = lk.table_version(spark, lake, tables.SUPPRESSION_LISTS)
        result.message = f"list {name!r} replaced"
    finally:
        csv_df.unpersist()
    result.finished_at = datetime.now(UTC)
    write_run(spark, lake, result)
    return result
