"""How the packs of one run date overlap: for every pair of packs, the people in both.

``gold/pack_overlap`` (design.md §3) holds one row per unordered pair of packs of a run date
(``segment_a < segment_b`` by name), zero overlaps included, so a reader can draw the full matrix
without guessing which pairs are missing:

* ``size_a`` / ``size_b``: the treatment group of each pack, in people;
* ``users_both``: people in the treatment groups of both packs;
* ``share_a`` = users_both / size_a, ``share_b`` = users_both / size_b (null for an empty pack).

Treatment groups only: holdout people are never delivered, so they cannot receive two coupons,
and counting them would overstate what a campaign's packs share. People, not accounts: a pack
holds a person once (``person_id``, the account's own id when it is in no stitched person, or the
``user_id`` in rows written before packs carried persons), so two accounts of one person in two
packs count as one person in both.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.vocab import TREATMENT

OVERLAP_COLUMNS: tuple[str, ...] = (
    "run_date",
    "segment_a",
    "segment_b",
    "size_a",
    "size_b",
    "users_both",
    "share_a",
    "share_b",
)


def treatment_people(packs_df: DataFrame, run_date: date) -> DataFrame:
    """(segment, person) of the treatment groups of ``run_date``'s packs, one row per person and pack."""
    return (
        packs_df.filter((F.col("run_date") == F.lit(run_date)) & (F.col("group") == F.lit(TREATMENT)))
        .select("segment", F.coalesce("person_id", "user_id").alias("person"))
        .distinct()
    )


def _share(size_column: str) -> Column:
    return F.when(F.col(size_column) > 0, F.col("users_both") / F.col(size_column))


def build_pack_overlap(packs_df: DataFrame, run_date: date, segments: list[str] | None = None) -> DataFrame:
    """Every unordered pair of ``run_date``'s packs with their people in common (module docstring).

    ``segments``: the packs built for that date (ops/pack_runs), so that a pack with no rows at all
    (nobody qualified) still has its pairs; packs with rows are included anyway. A pack whose
    treatment group is empty has sizes 0 and null shares of it; fewer than two packs give no rows.
    """
    people_df = treatment_people(packs_df, run_date)
    names_df = packs_df.filter(F.col("run_date") == F.lit(run_date)).select("segment")
    if segments:
        spark = packs_df.sparkSession
        names_df = names_df.unionByName(spark.createDataFrame([(s,) for s in segments], "segment string"))
    segments_df = (
        names_df.distinct()
        .join(people_df.groupBy("segment").agg(F.count(F.lit(1)).alias("size")), "segment", "left")
        .select("segment", F.coalesce("size", F.lit(0)).cast("long").alias("size"))
    )
    a_df = segments_df.select(F.col("segment").alias("segment_a"), F.col("size").alias("size_a"))
    b_df = segments_df.select(F.col("segment").alias("segment_b"), F.col("size").alias("size_b"))
    pairs_df = a_df.crossJoin(b_df).filter(F.col("segment_a") < F.col("segment_b"))
    both_df = (
        people_df.alias("a")
        .join(people_df.alias("b"), F.col("a.person") == F.col("b.person"))
        .filter(F.col("a.segment") < F.col("b.segment"))
        .groupBy(F.col("a.segment").alias("segment_a"), F.col("b.segment").alias("segment_b"))
        .agg(F.count(F.lit(1)).alias("users_both"))
    )
    return (
        pairs_df.join(both_df, ["segment_a", "segment_b"], "left")
        .withColumn("users_both", F.coalesce("users_both", F.lit(0)).cast("long"))
        .withColumn("share_a", _share("size_a"))
        .withColumn("share_b", _share("size_b"))
        .withColumn("run_date", F.lit(run_date))
        .select(*OVERLAP_COLUMNS)
    )
