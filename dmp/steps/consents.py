"""Consent log (``user_id, purpose, granted, at, source`` JSON lines) -> ``silver/consents``.

``--source`` is a file, a folder of ``*.jsonl`` / ``*.json`` files, or the generator's landing
folder (its ``consents/``). The checks are :mod:`dmp.transforms.consents`. Bad lines go to
``bronze/consents_quarantine`` with a reason (deterministic ``quarantine_id``: a rerun adds none);
the run is reconciled in ``ops/ingest_runs`` like every ingest.

The table holds the latest decision per (user, purpose): the new events compete with the rows
already there, so loading logs in any order, or twice, gives the same table; when the result equals
what the table holds nothing is written (same Delta version). Delivery reads it
(:func:`dmp.transforms.consents.with_consent_reason_for`).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.ingest_runs import (
    IngestResult,
    apply_tombstones,
    bucket_counts,
    finish_run,
    line_counts,
    read_tombstones,
    reconcile_message,
    require_source,
    write_quarantine,
)
from dmp.transforms.columns import is_blank
from dmp.transforms.consents import (
    latest_consents,
    parse_consent_lines,
    to_consent_events,
    with_consent_reason,
    with_consent_status,
)

CONSENTS_FOLDER = "consents"


def read_consent_lines(spark: SparkSession, source: str) -> DataFrame:
    """The lines of the consent files with ``source_file``."""
    source = require_source(spark, source)
    reader = spark.read
    if lk.is_dir(spark, source):
        if CONSENTS_FOLDER in lk.child_dirs(spark, source):
            source = f"{source}/{CONSENTS_FOLDER}"
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.{jsonl,json}")
    df = reader.text(source).select("value", F.col("_metadata.file_path").alias("source_file"))
    if not df.inputFiles():
        raise DmpError(f"--source {source}: no *.jsonl or *.json consent files found")
    return df


def merge_consents(spark: SparkSession, lake: str, events_df: DataFrame) -> bool:
    """Make the table the latest decision per (user, purpose) over its rows and ``events_df``.

    Returns False (and writes nothing) when that equals what the table holds.
    """
    schema = schemas.CONSENTS_SCHEMA
    lk.ensure_table(spark, lake, tables.CONSENTS, schema)
    version = lk.table_version(spark, lake, tables.CONSENTS)
    assert version is not None, "ensure_table made it"
    current = lk.read_pinned(spark, lake, tables.CONSENTS, version).select(*schema.fieldNames())
    merged = latest_consents(current.unionByName(events_df.select(*schema.fieldNames()))).persist()
    try:
        key = ["user_id", "purpose", "granted", "at", "source"]
        if merged.select(*key).exceptAll(current.select(*key)).isEmpty():
            return False
        lk.overwrite_table(merged, lake, tables.CONSENTS)
        return True
    finally:
        merged.unpersist()


def run_ingest_consents(
    spark: SparkSession, lake: str, source: str, *, now: datetime | None = None
) -> IngestResult:
    """Load the consent events of ``source``; quarantine the bad lines; keep the latest per user × purpose."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    result = IngestResult(str(uuid.uuid4()), source, "consents", None, started)
    lines_df = read_consent_lines(spark, source)
    result.files = len(lines_df.inputFiles())
    blank = is_blank("value")
    checked_df = (
        lines_df.filter(~blank)
        .transform(parse_consent_lines)
        .transform(with_consent_reason)
        .transform(with_consent_status)
        .transform(apply_tombstones, read_tombstones(spark, lake))
    ).persist()
    try:
        total_lines, result.blank_lines = line_counts(lines_df, blank)
        result.rows_read = total_lines - result.blank_lines
        result.add_bucket_counts(bucket_counts(checked_df))
        if not result.reconciled:
            raise DmpError(reconcile_message("consent", source, result))
        write_quarantine(
            spark,
            lake,
            result,
            tables.CONSENTS_QUARANTINE,
            schemas.CONSENTS_QUARANTINE_SCHEMA,
            checked_df,
            ["user_id"],
        )
        changed = merge_consents(spark, lake, to_consent_events(checked_df, started))
        result.message = "merged" if changed else "unchanged (no write)"
        result.table_version = lk.table_version(spark, lake, tables.CONSENTS)
    finally:
        checked_df.unpersist()
    return finish_run(spark, lake, result)
