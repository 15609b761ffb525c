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
from dmp.steps.ingest_runs import IngestResult, finish_run, read_tombstones, require_source
from dmp.transforms.erasure import with_erased_flag
from dmp.transforms.quarantine import missing_field
from dmp.transforms.suppression import clean_user_id, to_suppression_rows

LIST_NAME = re.compile(r"^[a-z0-9_]+$")


def resolve_suppression_source(spark: SparkSession, name: str, source: str) -> str:
    source = require_source(spark, source)
    if not lk.is_dir(spark, source):
        return source
    for candidate in (f"{source}/{name}.csv", f"{source}/suppression/{name}.csv"):
        if lk.path_exists(spark, candidate):
            return candidate
    raise DmpError(f"--source {source}: folder has no {name}.csv or suppression/{name}.csv")


def read_suppression_csv(spark: SparkSession, path: str) -> DataFrame:
    """The CSV's rows with ``source_file``; its header must name a ``user_id`` column."""
    csv_df = spark.read.option("header", "true").csv(path)
    if "user_id" not in csv_df.columns:
        raise DmpError(
            f"{path}: expected a CSV whose header has a 'user_id' column, got header {csv_df.columns}"
        )
    return csv_df.withColumn("source_file", F.col("_metadata.file_path"))


def _replace_list(spark: SparkSession, lake: str, name: str, rows_df: DataFrame) -> None:
    lk.ensure_table(spark, lake, tables.SUPPRESSION_LISTS, schemas.SUPPRESSION_LISTS_SCHEMA, ["list_name"])
    lk.overwrite_partitions(
        rows_df,
        lake,
        tables.SUPPRESSION_LISTS,
        ["list_name"],
        lk.replace_where_condition("list_name", [name]),
    )


def _without_erased(spark: SparkSession, lake: str, csv_df: DataFrame) -> tuple[DataFrame, int]:
    """The CSV rows but those of erased accounts (dmp forget), and how many those were."""
    tombstones = read_tombstones(spark, lake)
    if tombstones is None:
        return csv_df, 0
    ids_df = csv_df.select(clean_user_id().alias("user_id"), "source_file")
    flagged = with_erased_flag(ids_df, tombstones.users, tombstones.mentions)
    erased = flagged.filter(F.col("erased")).count()
    return (flagged.filter(~F.col("erased")).drop("erased"), erased) if erased else (csv_df, 0)


def run_ingest_suppression(
    spark: SparkSession, lake: str, name: str, source: str, *, now: datetime | None = None
) -> IngestResult:
    """Replace list ``name`` in ``silver/suppression_lists`` with the user ids of ``source``."""
    if not LIST_NAME.match(name):
        raise DmpError(f"--name: list names are [a-z0-9_]+, got {name!r}")
    started = (now or datetime.now(UTC)).astimezone(UTC)
    result = IngestResult(str(uuid.uuid4()), source, f"suppression:{name}", None, started)
    csv_df = read_suppression_csv(spark, resolve_suppression_source(spark, name, source)).persist()
    try:
        result.files = 1
        result.rows_read = csv_df.count()
        blank = csv_df.filter(clean_user_id().isNull()).count()
        if blank:
            result.reasons[missing_field("user_id")] = blank
        result.quarantined = blank
        kept_df, result.erased = _without_erased(spark, lake, csv_df)
        rows_df = to_suppression_rows(kept_df, name, started).persist()
        result.accepted = rows_df.count()
        result.duplicates_in_batch = result.rows_read - blank - result.erased - result.accepted
        _replace_list(spark, lake, name, rows_df)
        rows_df.unpersist()
        result.table_version = lk.table_version(spark, lake, tables.SUPPRESSION_LISTS)
        result.message = f"list {name!r} replaced"
    finally:
        csv_df.unpersist()
    return finish_run(spark, lake, result)
