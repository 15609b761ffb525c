"""gold/user_tags: one snapshot per as_of_date, derived from the tag state (pure transforms).

Who is in a snapshot: every user with at least one event on or before as_of_date (users never
disappear; a long-gone user is ``churned`` with zero window counters).

Tag definitions (windows end on as_of_date inclusive: a 90-day window is as_of-89 ... as_of):

- ``first_seen_date`` / ``last_active_date``: first / latest event_date of any event.
- ``last_order_date``: latest event_date with an ``order``; ``recency_days`` = as_of - it (null if never).
- ``frequency_90d``: number of ``order`` events in 90 days; ``monetary_90d``: their price x quantity
  (exact: carried in integer cents); ``avg_order_value_90d`` = monetary / frequency rounded to cents
  (null without orders).
- ``views_30d``, ``carts_30d`` (cart_add), ``orders_30d``; ``active_days_30d``: days with any event.
- ``is_cart_abandoner``: a ``cart_add`` in the last 7 days and no ``order`` in the last 7 days.
- ``coupon_sensitivity``: coupon_redeem / coupon_receive events in 90 days, null if none received
  (may exceed 1 when coupons received earlier are redeemed inside the window).
- ``lifecycle_stage`` (thresholds in dmp.contracts.tag_config.LifecycleConfig, defaults 14/30/90):
  ``new`` if first seen within new_days; else ``active`` if any event within active_days; else
  ``silent`` if any event within churn_days; else ``churned``.
- ``consumption_level``: 0 when monetary_90d is 0; otherwise 1..5 = spend quintile among the
  snapshot's n spenders: 1 + floor(5 * (r - 1) / n) with r the rank of monetary_90d ascending
  (ties share the lowest rank, so equal spend always gets the same level). Integer arithmetic:
  exact and deterministic.
- ``top_category_ids`` / ``top_brand_ids`` / ``top_store_ids``: up to top_n (default 3) ids with the
  highest activity score over 30 days (score = sum of per-event weights, dmp.contracts.tag_config.ActivityWeights),
  ties broken by id ascending; null ids (e.g. Taobao rows have no store/brand) are ignored; [] if none.

Where the numbers come from: the per-user state at as_of_date (``dmp.transforms.tag_state``: exact
integer sums and ranked 30-day scores, built incrementally or by a full rebuild); every tag above is
a column expression on one state row, except consumption_level (a rank among the snapshot's users).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dmp.contracts.tag_config import LIFECYCLE_STAGES, TagConfig
from dmp.spark.schemas import USER_TAGS
from dmp.transforms.columns import lit_date, select_schema
from dmp.transforms.tag_state import SCORE_COLUMNS


def with_rfm(state_df: DataFrame, as_of: date) -> DataFrame:
    """recency_days, frequency_90d, monetary_90d, avg_order_value_90d from the state's exact sums."""
    return (
        state_df.withColumn("recency_days", F.datediff(lit_date(as_of), F.col("last_order_date")))
        .withColumn("frequency_90d", F.col("orders_90d"))
        .withColumn("monetary_90d", F.col("gmv_cents_90d").cast("double") / F.lit(100.0))
        .withColumn(
            "avg_order_value_90d",
            F.when(
                F.col("orders_90d") > 0,
                F.round(F.col("gmv_cents_90d").cast("double") / F.col("orders_90d").cast("double"))
                / F.lit(100.0),
            ),
        )
    )


def with_lifecycle_stage(state_df: DataFrame, as_of: date, config: TagConfig) -> DataFrame:
    """new / active / silent / churned by days since first and last event (thresholds: config.lifecycle)."""
    cfg = config.lifecycle
    since_first = F.datediff(lit_date(as_of), F.col("first_seen_date"))
    since_last = F.datediff(lit_date(as_of), F.col("last_active_date"))
    new, active, silent, churned = LIFECYCLE_STAGES
    return state_df.withColumn(
        "lifecycle_stage",
        F.when(since_first < cfg.new_days, new)
        .when(since_last < cfg.active_days, active)
        .when(since_last < cfg.churn_days, silent)
        .otherwise(churned),
    )


def with_consumption_level(state_df: DataFrame) -> DataFrame:
    """0 without spend, else the spend quintile 1..5 among the snapshot's spenders (see module doc).

    A spender's rank is 1 + the number of spenders with a strictly lower spend (ties share the lowest
    rank). It is computed over the distinct spend values (a small table: value, count, rank) that is
    broadcast back to the users, instead of a window over all users, which Spark can only run as one
    sorted partition on one core.
    """
    spender = F.col("gmv_cents_90d") > 0
    values = state_df.filter(spender).groupBy("gmv_cents_90d").agg(F.count(F.lit(1)).alias("_n"))
    lower = Window.orderBy("gmv_cents_90d").rowsBetween(Window.unboundedPreceding, -1)
    ranks = values.select(
        "gmv_cents_90d",
        (F.coalesce(F.sum("_n").over(lower), F.lit(0)) + 1).alias("_rank"),
        F.sum("_n").over(Window.partitionBy()).alias("_n_spenders"),
    )
    level = (F.floor((F.col("_rank") - 1) * 5 / F.col("_n_spenders")).cast("int") + 1).cast("int")
    return (
        state_df.join(F.broadcast(ranks), "gmv_cents_90d", "left")
        .withColumn("consumption_level", F.when(spender, level).otherwise(F.lit(0)).cast("int"))
        .drop("_rank", "_n_spenders")
    )


def with_coupon_sensitivity(state_df: DataFrame) -> DataFrame:
    """coupon_redeem / coupon_receive events in 90 days; null when none was received (no ratio to speak of)."""
    return state_df.withColumn(
        "coupon_sensitivity",
        F.when(
            F.col("coupon_receives_90d") > 0,
            F.col("coupon_redeems_90d").cast("double") / F.col("coupon_receives_90d").cast("double"),
        ),
    )


def with_cart_abandoner(state_df: DataFrame) -> DataFrame:
    """A cart_add in the last 7 days and no order in the last 7 days (design.md §3)."""
    return state_df.withColumn("is_cart_abandoner", (F.col("carts_7d") > 0) & (F.col("orders_7d") == 0))


def top_ids(scores: Column, top_n: int) -> Column:
    """The ``top_n`` ids of a ranked [{id, score}] column (highest score first, ties by id ascending)."""
    return F.slice(scores, 1, top_n)["id"]


def build_user_tags(state_df: DataFrame, as_of: date, config: TagConfig) -> DataFrame:
    """The gold/user_tags snapshot (exactly the USER_TAGS columns) from the state at ``as_of``."""
    tags_df = (
        state_df.transform(with_rfm, as_of)
        .transform(with_lifecycle_stage, as_of, config)
        .transform(with_consumption_level)
        .transform(with_coupon_sensitivity)
        .transform(with_cart_abandoner)
        .withColumn("as_of_date", lit_date(as_of))
    )
    for d, c in SCORE_COLUMNS.items():
        tags_df = tags_df.withColumn(f"top_{d}_ids", top_ids(F.col(c), config.top_n))
    return select_schema(tags_df, USER_TAGS)
