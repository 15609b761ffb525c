"""Suppression list CSV rows -> ``silver/suppression_lists`` rows (pure; the step does the I/O)."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.transforms.columns import clean_text


def clean_user_id() -> Column:
    """The CSV's ``user_id`` trimmed, null when blank (a blank id is counted, never listed)."""
    return clean_text(F.col("user_id"))


def to_suppression_rows(csv_df: DataFrame, name: str, loaded_at: datetime) -> DataFrame:
    """Distinct non-blank trimmed user ids of the CSV as rows of list ``name``."""
    return (
        csv_df.select(clean_user_id().alias("user_id"), "source_file")
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
