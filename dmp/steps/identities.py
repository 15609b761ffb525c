"""Identity file (user -> oaid / idfa / imei / phone / email) -> ``silver/identities``.

Input: JSON lines ``{"user_id": ..., "id_type": ..., "id_value": ...}`` (the generator's
``DIR/identities/identities.jsonl``; a folder of such files; or a CSV file with the header
``user_id,id_type,id_value``); the checks are ``dmp.transforms.identities``.

Idempotency: the source is a complete snapshot, so the table content is **replaced** by it (a user
whose device disappeared from the file disappears from the table). When the deduped set of
(user_id, id_type, id_value) equals what the table holds, nothing is written (same Delta version).
Bad rows (malformed JSON, missing user_id / id_type / id_value, unknown id_type) are counted and
inserted into ``bronze/identities_quarantine`` by deterministic ``quarantine_id`` (rerun: no new rows).
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
from dmp.transforms.identities import (
    IDENTITY_FIELDS,
    filter_csv_headers,
    parse_identity_lines,
    to_identity_rows,
    with_identity_reason,
    with_identity_status,
    with_is_csv,
)


def read_identity_lines(spark: SparkSession, source: str) -> DataFrame:
    """Lines of the identity source with ``source_file`` and ``is_csv``; the CSV header is dropped."""
    source = require_source(spark, source)
    reader = spark.read
    if lk.is_dir(spark, source):
        if "identities" in lk.child_dirs(spark, source):
            source = f"{source}/identities"
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.{jsonl,json,csv}")
    df = reader.text(source).select("value", F.col("_metadata.file_path").alias("source_file"))
    if not df.inputFiles():
        raise DmpError(f"--source {source}: no *.jsonl, *.json or *.csv identity files found")
    return df.transform(with_is_csv).transform(filter_csv_headers)


def write_identities(spark: SparkSession, lake: str, identities_df: DataFrame) -> bool:
    """Replace the table's content with ``identities_df`` unless it holds exactly those identities."""
    lk.ensure_table(spark, lake, tables.IDENTITIES, schemas.IDENTITIES)
    current = lk.read_table(spark, lake, tables.IDENTITIES).select(*IDENTITY_FIELDS)
    new = identities_df.select(*IDENTITY_FIELDS)
    if new.subtract(current).isEmpty() and current.subtract(new).isEmpty():
        return False
    lk.overwrite_table(identities_df, lake, tables.IDENTITIES)
    return True


def _write_checked(spark: SparkSession, lake: str, result: IngestResult, checked_df: DataFrame) -> None:
    write_quarantine(
        spark,
        lake,
        result,
        tables.IDENTITIES_QUARANTINE,
        schemas.IDENTITIES_QUARANTINE_SCHEMA,
        checked_df,
        ["user_id"],
    )
    changed = write_identities(spark, lake, to_identity_rows(checked_df, result.started_at))
    result.message = "replaced" if changed else "unchanged (no write)"
    result.table_version = lk.table_version(spark, lake, tables.IDENTITIES)


def run_ingest_identities(
    spark: SparkSession, lake: str, source: str, *, now: datetime | None = None
) -> IngestResult:
    """Replace ``silver/identities`` with the deduped valid rows of ``source``; quarantine the rest."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    result = IngestResult(str(uuid.uuid4()), source, "identities", None, started)
    lines_df = read_identity_lines(spark, source)
    result.files = len(lines_df.inputFiles())
    blank = is_blank("value")
    checked_df = (
        lines_df.filter(~blank)
        .transform(parse_identity_lines)
        .transform(with_identity_reason)
        .transform(with_identity_status)
        .transform(apply_tombstones, read_tombstones(spark, lake))
    ).persist()
    try:
        total_lines, result.blank_lines = line_counts(lines_df, blank)
        result.rows_read = total_lines - result.blank_lines
        result.add_bucket_counts(bucket_counts(checked_df))
        if not result.reconciled:
            raise DmpError(reconcile_message("identity", source, result))
        _write_checked(spark, lake, result, checked_df)
    finally:
        checked_df.unpersist()
    return finish_run(spark, lake, result)
