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


def missing_field(name: str) -> str:
    """The reason of a row without a required field."""
    return f"missing_field:{name}"


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
