"""Identity file (user -> oaid / idfa / imei / phone / email) -> ``silver/identities``.

Input: JSON lines ``{"user_id": ..., "id_type": ..., "id_value": ...}`` (the generator's
``DIR/identities/identities.jsonl``; a folder of such files; or a CSV file with the header
``user_id,id_type,id_value``). ``id_value`` is trimmed and otherwise kept raw: case, spaces inside
and phone formats are normalised at delivery (design.md §4), where the channel says how.

Idempotency: the source is a complete snapshot, so the table content is **replaced** by it (a user
whose device disappeared from the file disappears from the table). When the deduped set of
(user_id, id_type, id_value) equals what the table holds, nothing is written (same Delta version).
Bad rows (malformed JSON, missing user_id / id_type / id_value, unknown id_type) are counted and
inserted into ``bronze/identities_quarantine`` by deterministic ``quarantine_id`` (rerun: no new rows).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import ID_TYPES
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.ingest import (
    IngestResult,
    child_dirs,
    clean_text,
    ensure_table,
    is_blank,
    is_dir,
    path_exists,
    quarantine_id,
    short_value,
    write_quarantine,
    write_run,
)

IDENTITY_FIELDS: tuple[str, ...] = ("user_id", "id_type", "id_value")
CSV_HEADER = ",".join(IDENTITY_FIELDS)
_JSON_SCHEMA = StructType(
    [
        *[StructField(name, StringType(), True) for name in IDENTITY_FIELDS],
        StructField("_corrupt", StringType(), True),
    ]
)


def parse_identity_lines(lines_df: DataFrame) -> DataFrame:
    """``value, source_file, is_csv`` -> ``raw, source_file, parse_error, user_id, id_type, id_value`` (strings)."""
    parsed = F.from_json("value", _JSON_SCHEMA, {"columnNameOfCorruptRecord": "_corrupt"})
    parts = F.split("value", ",", -1)
    csv_error = F.when(F.size(parts) != 3, F.concat(F.lit("bad_field_count:"), F.size(parts).cast("string")))
    json_error = F.when(F.col("_j").isNull() | F.col("_j._corrupt").isNotNull(), F.lit("malformed_json"))
    fields = {
        name: F.when(F.col("is_csv"), F.try_element_at(parts, F.lit(i + 1))).otherwise(F.col(f"_j.{name}"))
        for i, name in enumerate(IDENTITY_FIELDS)
    }
    return lines_df.withColumn("_j", F.when(~F.col("is_csv"), parsed)).select(
        F.col("value").alias("raw"),
        "source_file",
        F.when(F.col("is_csv"), csv_error).otherwise(json_error).alias("parse_error"),
        *[clean_text(col).alias(name) for name, col in fields.items()],
    )


def with_identity_reason(parsed_df: DataFrame) -> DataFrame:
    """``reason``: first failed check (null = valid). id_type must be one of ID_TYPES as is."""
    checks = [
        F.col("parse_error"),
        *[F.when(F.col(name).isNull(), F.lit(f"missing_field:{name}")) for name in IDENTITY_FIELDS],
        F.when(
            ~F.col("id_type").isin(*ID_TYPES),
            F.concat(F.lit("unknown_id_type:"), short_value(F.col("id_type"))),
        ),
    ]
    return parsed_df.withColumn("reason", F.coalesce(*checks)).drop("parse_error")


def with_identity_status(checked_df: DataFrame) -> DataFrame:
    """``status``: accepted (first of each distinct user/type/value), duplicate_in_batch or quarantined."""
    first = Window.partitionBy(*IDENTITY_FIELDS).orderBy("source_file", "raw")
    rank = F.when(F.col("reason").isNull(), F.row_number().over(first))
    return checked_df.withColumn(
        "status",
        F.when(F.col("reason").isNotNull(), F.lit("quarantined"))
        .when(rank == 1, F.lit("accepted"))
        .otherwise(F.lit("duplicate_in_batch")),
    )


def read_identity_lines(spark: SparkSession, source: str) -> DataFrame:
    """Lines of the identity source with ``source_file`` and ``is_csv``; the CSV header is dropped."""
    source = source.rstrip("/") or "/"
    if not path_exists(spark, source):
        raise DmpError(f"--source {source}: no such file or folder")
    reader = spark.read
    if is_dir(spark, source):
        if "identities" in child_dirs(spark, source):
            source = f"{source}/identities"
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", "*.{jsonl,json,csv}")
    df = reader.text(source).select("value", F.col("_metadata.file_path").alias("source_file"))
    if not df.inputFiles():
        raise DmpError(f"--source {source}: no *.jsonl, *.json or *.csv identity files found")
    is_csv = F.lower(F.col("source_file")).endswith(".csv")
    header = F.lower(F.regexp_replace("value", r"\s", "")) == CSV_HEADER
    return df.withColumn("is_csv", is_csv).filter(~(F.col("is_csv") & header))


def run_ingest_identities(
    spark: SparkSession, lake: str, source: str, *, now: datetime | None = None
) -> IngestResult:
    """Replace ``silver/identities`` with the deduped valid rows of ``source``; quarantine the rest."""
    started = (now or datetime.now(UTC)).astimezone(UTC)
    result = IngestResult(str(uuid.uuid4()), source, "identities", None, started)
    lines_df = read_identity_lines(spark, source)
    result.files = len(lines_df.inputFiles())
    blank = is_blank("value")
    checked = (
        lines_df.filter(~blank)
        .transform(parse_identity_lines)
        .transform(with_identity_reason)
        .transform(with_identity_status)
    ).persist()
    try:
        line_counts = lines_df.agg(F.count(F.lit(1)).alias("n"), F.count_if(blank).alias("blank")).first()
        assert line_counts is not None
        result.blank_lines = int(line_counts["blank"])
        result.rows_read = int(line_counts["n"]) - result.blank_lines
        for row in checked.groupBy("status", "reason").count().collect():
            if row["status"] == "quarantined":
                result.reasons[row["reason"]] = row["count"]
                result.quarantined += row["count"]
            elif row["status"] == "accepted":
                result.accepted += row["count"]
            else:
                result.duplicates_in_batch += row["count"]
        if not result.reconciled:
            raise DmpError(
                f"identity ingest of {source} does not reconcile: rows read {result.rows_read} != accepted "
                f"{result.accepted} + quarantined {result.quarantined} + duplicates {result.duplicates}"
            )
        quarantine_df = checked.filter(F.col("status") == "quarantined").select(
            "raw",
            "reason",
            "source_file",
            F.lit(started).cast("timestamp").alias("ingested_at"),
            F.lit(started.date()).alias("ingest_date"),
            quarantine_id().alias("quarantine_id"),
            F.lit(result.run_id).alias("run_id"),
            "user_id",
        )
        result.quarantine_new = write_quarantine(
            spark, lake, tables.IDENTITIES_QUARANTINE, schemas.IDENTITIES_QUARANTINE_SCHEMA, quarantine_df
        )
        identities_df = checked.filter(F.col("status") == "accepted").select(
            *IDENTITY_FIELDS, "source_file", F.lit(started).cast("timestamp").alias("ingested_at")
        )
        changed = write_identities(spark, lake, identities_df)
        result.message = "replaced" if changed else "unchanged (no write)"
        result.table_version = lk.table_version(spark, lake, tables.IDENTITIES)
    finally:
        checked.unpersist()
    result.finished_at = datetime.now(UTC)
    write_run(spark, lake, result)
    return result


def write_identities(spark: SparkSession, lake: str, identities_df: DataFrame) -> bool:
    """Replace the table's content with ``identities_df`` unless it holds exactly those identities."""
    ensure_table(spark, lake, tables.IDENTITIES, schemas.IDENTITIES, [])
    current = lk.read_table(spark, lake, tables.IDENTITIES).select(*IDENTITY_FIELDS)
    new = identities_df.select(*IDENTITY_FIELDS)
    if new.subtract(current).isEmpty() and current.subtract(new).isEmpty():
        return False
    identities_df.write.format("delta").mode("overwrite").save(tables.table_path(lake, tables.IDENTITIES))
    return True
