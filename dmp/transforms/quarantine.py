"""Row buckets and quarantine rows, shared by the event and identity ingests.

Every row read ends in exactly one bucket (its ``status``): accepted, a duplicate (within the batch
or of a row already in the lake) or quarantined with a ``reason``. Quarantine rows carry a
deterministic ``quarantine_id`` so that they can be inserted insert-only: a rerun adds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

ACCEPTED = "accepted"
DUPLICATE_IN_BATCH = "duplicate_in_batch"
DUPLICATE_IN_LAKE = "duplicate_in_lake"
QUARANTINED = "quarantined"
STATUSES: tuple[str, ...] = (ACCEPTED, DUPLICATE_IN_BATCH, DUPLICATE_IN_LAKE, QUARANTINED)

MALFORMED_JSON = "malformed_json"
# The line's bytes are not UTF-8 text (or hold the U+FFFD of an earlier lossy decoding): its ``raw``
# is then ``RAW_BASE64_PREFIX`` + the base64 of the original bytes, so nothing is lost or merged.
BAD_ENCODING = "bad_encoding"
RAW_BASE64_PREFIX = "base64:"
DUPLICATE_KEY = "duplicate_key"
# File-level reasons (one quarantine row per file, ``raw`` = the reader's error class or the schema).
UNREADABLE_FILE = "unreadable_file"


def missing_field(name: str) -> str:
    """The reason of a row without a required field."""
    return f"missing_field:{name}"


def bad_type(name: str) -> str:
    """The reason of a record whose field holds a JSON object or array where a scalar belongs."""
    return f"bad_type:{name}"


def field_too_long(name: str) -> str:
    """The reason of a record whose field is longer than its documented limit."""
    return f"field_too_long:{name}"


def control_characters(name: str) -> str:
    """The reason of a record whose field holds a control, format or line-separator character."""
    return f"control_characters:{name}"


def bad_schema(detail: str) -> str:
    """The reason of a whole file whose schema cannot hold events (``missing_column:<c>`` ...)."""
    return f"bad_schema:{detail}"


def raw_kept(value: Column, bad_encoding: Column) -> Column:
    """The text kept as ``raw``: the line itself, or ``base64:<its bytes>`` when it is not UTF-8.

    Spark's text source keeps a line's bytes as they are; casting to binary gives them back, so two
    different unreadable lines never collapse into one string of U+FFFD characters. Spark's base64
    may break its output into 76-character MIME lines (``spark.sql.chunkBase64String.enabled``): the
    line breaks are dropped, so ``raw`` stays one line whatever the session says.
    """
    encoded = F.concat(F.lit(RAW_BASE64_PREFIX), F.translate(F.base64(value.cast("binary")), "\r\n", ""))
    return F.when(bad_encoding, encoded).otherwise(value)


def bad_field_count(n_fields: Column) -> Column:
    """The reason of a delimited line with the wrong number of fields: ``bad_field_count:<n>``."""
    return F.concat(F.lit("bad_field_count:"), n_fields.cast("string"))


def quarantine_id() -> Column:
    """sha256 of (source_file, reason, raw, occurrence of that raw line in the file): stable across reruns."""
    occurrence = F.row_number().over(Window.partitionBy("source_file", "reason", "raw").orderBy("raw"))
    key = F.concat_ws(
        "\u0001", "source_file", "reason", F.coalesce("raw", F.lit("")), occurrence.cast("string")
    )
    return F.sha2(key, 256)


def to_quarantine_rows(
    classified_df: DataFrame, ingested_at: datetime, run_id: str, keep: Sequence[str]
) -> DataFrame:
    """Quarantined rows in a quarantine table's layout, plus the ``keep`` columns (e.g. ``event_id``).

    The id hashes (source file, reason, raw, occurrence number), so a rerun produces the same ids and
    inserts nothing, while identical bad lines in one file stay separate rows (nothing is lost).
    """
    return classified_df.filter(F.col("status") == QUARANTINED).select(
        "raw",
        "reason",
        "source_file",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(ingested_at.date()).alias("ingest_date"),
        quarantine_id().alias("quarantine_id"),
        F.lit(run_id).alias("run_id"),
        *keep,
    )
