"""Pure profile computations for the spec preview: who of a population is in an audience."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# A null tag value, as shown in the profile.
NO_VALUE = "(none)"
# The ``dimension`` of the row holding the user totals.
TOTAL = "_total"


def with_audience_flag(population_df: DataFrame, audience_df: DataFrame) -> DataFrame:
    """The population with ``in_audience`` (true for users of ``audience_df``)."""
    members_df = audience_df.select("user_id").distinct().withColumn("in_audience", F.lit(True))
    return population_df.join(members_df, "user_id", "left").withColumn(
        "in_audience", F.coalesce(F.col("in_audience"), F.lit(False))
    )


def profile_counts(flagged_df: DataFrame, columns: Sequence[str]) -> DataFrame:
    """``dimension, value, audience_users, population_users`` for every profile dimension, in one pass.

    ``columns`` are the tag columns to profile. Array dimensions (top categories) count a user once
    per value they have; ``_total`` holds the user totals. Null values are reported as ``(none)``.
    """
    parts = [flagged_df.select(F.lit(TOTAL).alias("dimension"), F.lit("").alias("value"), "in_audience")]
    for column in columns:
        is_array = column.endswith("_ids")
        value = (
            F.explode(F.array_distinct(F.col(column).cast("array<string>")))
            if is_array
            else F.col(column).cast("string")
        )
        parts.append(flagged_df.select(F.lit(column).alias("dimension"), value.alias("value"), "in_audience"))
    long_df = parts[0]
    for part in parts[1:]:
        long_df = long_df.unionByName(part)
    return (
        long_df.withColumn("value", F.coalesce(F.col("value"), F.lit(NO_VALUE)))
        .groupBy("dimension", "value")
        .agg(
            F.sum(F.col("in_audience").cast("long")).alias("audience_users"),
            F.count(F.lit(1)).alias("population_users"),
        )
    )


def latest_packs(
    packs_df: DataFrame, run_date: date | None, segments: list[str] | None, exclude: str
) -> DataFrame:
    """Rows of each segment's latest pack (run_date on or before ``run_date``), other than ``exclude``."""
    df = packs_df.filter(F.col("segment") != F.lit(exclude))
    if segments is not None:
        df = df.filter(F.col("segment").isin(segments)) if segments else df.limit(0)
    if run_date is not None:
        df = df.filter(F.col("run_date") <= F.lit(run_date))
    latest_df = df.groupBy("segment").agg(F.max("run_date").alias("run_date"))
    return df.join(latest_df, ["segment", "run_date"], "left_semi")
