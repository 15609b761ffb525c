"""From a pack's treatment users to the keys a channel receives (design.md §4), as pure transforms.

A delivered user gets every valid value of the most preferred id type they have (channel
``id_types`` order; several devices -> several rows). An invalid value never counts: a user whose
only ids are invalid, or who has none the channel accepts, is unmatched and reported by reason
(the invalid reason of their most preferred id, else ``no_id``), never delivered.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from dmp.contracts.channels import Channel
from dmp.contracts.vocab import TREATMENT
from dmp.transforms.ids import NO_ID, user_key_col, with_normalised_id

# Sorts after every real preference position: "no usable id at all" ranks last.
_NO_RANK = 1 << 20


def deliverable_treatment_rows(packs_df: DataFrame, segment: str, run_date: date) -> DataFrame:
    """The pack's treatment rows (every column), only when the pack is deliverable."""
    return packs_df.filter(
        (F.col("segment") == segment)
        & (F.col("run_date") == F.lit(run_date))
        & (F.col("group") == TREATMENT)
        & F.col("deliverable")
    )


def filter_deliverable_treatment(packs_df: DataFrame, segment: str, run_date: date) -> DataFrame:
    """Users that may be delivered: the pack's treatment group, only when the pack is deliverable."""
    return deliverable_treatment_rows(packs_df, segment, run_date).select("user_id").distinct()


def with_id_rank(ids_df: DataFrame, id_types: list[str]) -> DataFrame:
    """``id_rank`` = position of the row's id type in the channel's preference list (0 = best)."""
    rank = F.lit(None).cast("int")
    for i, typ in reversed(list(enumerate(id_types))):
        rank = F.when(F.col("id_type") == typ, F.lit(i)).otherwise(rank)
    return ids_df.withColumn("id_rank", rank)


def _channel_ids(treatment_df: DataFrame, identities_df: DataFrame, channel: Channel) -> DataFrame:
    """(user_id, id_type, id_value) of the treatment users, for the id types the channel accepts."""
    accepted = [t for t in channel.id_types if t != "user_id"]
    ids_df = (
        identities_df.filter(F.col("id_type").isin(accepted))
        .select("user_id", "id_type", "id_value")
        .join(treatment_df, "user_id", "left_semi")  # normalise only what can be delivered
    )
    if "user_id" in channel.id_types:
        own = treatment_df.select(
            "user_id", F.lit("user_id").alias("id_type"), F.col("user_id").alias("id_value")
        )
        ids_df = ids_df.unionByName(own)
    return ids_df


def with_best_rank(cand_df: DataFrame) -> DataFrame:
    """``best_rank`` = the user's most preferred ``id_rank`` with a valid value (null: none valid)."""
    per_user = Window.partitionBy("user_id")
    best = F.min(F.when(F.col("norm_value").isNotNull(), F.col("id_rank"))).over(per_user)
    return cand_df.withColumn("best_rank", best)


def resolve_user_keys(treatment_df: DataFrame, identities_df: DataFrame, channel: Channel) -> DataFrame:
    """One row per delivered (user, key) and one row per unmatched user.

    Columns: user_id, id_type, user_key (null when unmatched), reason (null when matched). A user
    gets every valid value of the most preferred id type they have; an invalid value never counts.
    The unmatched reason is the invalid reason of the user's most preferred id, else ``no_id``.
    """
    norm_df = (
        _channel_ids(treatment_df, identities_df, channel)
        .transform(with_normalised_id, channel.phone_format)
        .transform(with_id_rank, list(channel.id_types))
    )
    cand_df = treatment_df.join(norm_df, "user_id", "left").transform(with_best_rank)
    matched_df = cand_df.filter(
        F.col("norm_value").isNotNull() & (F.col("id_rank") == F.col("best_rank"))
    ).select(
        "user_id",
        "id_type",
        user_key_col(F.col("id_type"), F.col("norm_value"), dict(channel.hash)).alias("user_key"),
        F.lit(None).cast("string").alias("reason"),
    )
    unmatched_df = (
        cand_df.filter(F.col("best_rank").isNull())
        .groupBy("user_id")
        .agg(
            F.min_by(
                F.coalesce(F.col("invalid_reason"), F.lit(NO_ID)),
                F.coalesce(F.col("id_rank"), F.lit(_NO_RANK)),
            ).alias("reason")
        )
        .select(
            "user_id",
            F.lit(None).cast("string").alias("id_type"),
            F.lit(None).cast("string").alias("user_key"),
            "reason",
        )
    )
    return matched_df.unionByName(unmatched_df).distinct()


def users_by_reason(resolved_df: DataFrame) -> DataFrame:
    """(reason, users) over :func:`resolve_user_keys` rows; reason null = matched users."""
    return resolved_df.groupBy("reason").agg(F.countDistinct("user_id").alias("users"))


def filter_matched_keys(resolved_df: DataFrame) -> DataFrame:
    """(id_type, user_key) of the matched rows: what is delivered."""
    return resolved_df.filter(F.col("user_key").isNotNull()).select("id_type", "user_key")
