"""What a pack user did after (and before) the run date: the pure side of the uplift evaluation.

Two windows around a pack's run date R, both ends inclusive, for a window of N days:

- the **attribution window** R+1 … R+N: the pack is delivered on R, so outcomes start the day after;
- the **pre-period** R-N+1 … R: the N days up to the run date, before anyone was contacted: the
  N-day window ending on R that packs look back on (:func:`dmp.transforms.scope.filter_days_ending`,
  design.md §3). A chance gap between the groups there is the balance check.

A conversion is an order *in scope* (:class:`OutcomeScope`): the spec's ``scope`` for a
store_revisit, its ``own`` brands/stores for a competitor_intercept, every order otherwise. The
in-scope test is the one packs use (:mod:`dmp.transforms.scope`), so "in scope" means the same
thing when a pack is built and when it is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.dates import window_start
from dmp.contracts.specs import Scope, SegmentSpec, Targets
from dmp.transforms.scope import filter_days_ending, scope_col, targets_col


@dataclass(frozen=True)
class OutcomeScope:
    """Where an order counts as a conversion.

    ``within`` is a :class:`Scope` (every list narrows: store AND brand AND category), a
    :class:`Targets` (a row counts when its store OR its brand is listed), or None (every order on
    the platform counts).
    """

    within: Scope | Targets | None = None

    @classmethod
    def of_spec(cls, spec: SegmentSpec) -> OutcomeScope:
        """store_revisit: its ``scope``. competitor_intercept: its ``own`` brands/stores (buying ours
        anywhere, or anything in our store; the spec's ``categories`` narrow who is targeted, not
        what counts as buying ours). lookalike / rule, or no scope given: every order counts."""
        if spec.scope is not None:
            return cls(spec.scope)
        if spec.kind == "competitor_intercept" and spec.own is not None:
            return cls(spec.own)
        return cls()

    @property
    def everywhere(self) -> bool:
        """True when no list limits the outcome (reports warn: any order on the platform counts)."""
        return self.within is None

    def col(self) -> Column:
        """The condition for ``filter`` over ``silver/user_daily`` rows (null, like false, drops a row)."""
        if isinstance(self.within, Targets):
            return targets_col(self.within)
        return scope_col(self.within)

    def as_report(self) -> dict[str, list[str] | str]:
        """The report's ``scope`` entry: the lists given, then ``match`` (all = ANDed, any = ORed)."""
        if isinstance(self.within, Scope):
            lists = {
                "store_ids": self.within.store_ids,
                "brand_ids": self.within.brand_ids,
                "category_ids": self.within.category_ids,
            }
            match = "all"
        elif isinstance(self.within, Targets):
            lists, match = {"store_ids": self.within.store_ids, "brand_ids": self.within.brand_ids}, "any"
        else:
            return {}
        return {**{key: list(ids) for key, ids in lists.items() if ids}, "match": match}


def attribution_window(run_date: date, window_days: int) -> tuple[date, date]:
    """R+1 … R+N: the attribution window starts the day after the run date."""
    return run_date + timedelta(days=1), run_date + timedelta(days=window_days)


def pre_window(run_date: date, window_days: int) -> tuple[date, date]:
    """R-N+1 … R: the N days up to and including the run date, before the pack was delivered."""
    return window_start(run_date, window_days), run_date


def filter_attribution_window(daily_df: DataFrame, run_date: date, window_days: int) -> DataFrame:
    """Rows of the attribution window R+1 … R+N."""
    first, last = attribution_window(run_date, window_days)
    return daily_df.filter(F.col("event_date").between(F.lit(first), F.lit(last)))


def filter_in_scope(daily_df: DataFrame, scope: OutcomeScope) -> DataFrame:
    """Rows of ``silver/user_daily`` where an order would count as a conversion."""
    return daily_df.filter(scope.col())


def window_outcomes(daily_df: DataFrame, run_date: date, window_days: int, scope: OutcomeScope) -> DataFrame:
    """One row per user active in scope in the attribution window: orders, value (GMV) and
    first_order_date (null when the user only visited)."""
    return (
        daily_df.transform(filter_attribution_window, run_date, window_days)
        .transform(filter_in_scope, scope)
        .groupBy("user_id")
        .agg(
            F.sum("orders").alias("orders"),
            F.sum("gmv").alias("value"),
            F.min(F.when(F.col("orders") > 0, F.col("event_date"))).alias("first_order_date"),
        )
    )


def pre_converters(daily_df: DataFrame, run_date: date, window_days: int, scope: OutcomeScope) -> DataFrame:
    """Users with an order in scope in the pre-period, once each, flagged ``pre_converted`` = 1."""
    return (
        daily_df.transform(filter_days_ending, run_date, window_days)
        .filter(F.col("orders") > 0)
        .transform(filter_in_scope, scope)
        .select("user_id")
        .distinct()
        .withColumn("pre_converted", F.lit(1))
    )


def with_outcomes(
    pack_df: DataFrame, daily_df: DataFrame, run_date: date, window_days: int, scope: OutcomeScope
) -> DataFrame:
    """One row per pack user: group, score, converted, value (GMV), orders, days_to_convert (1..N),
    and pre_converted (an order in scope in the pre-period).

    Every pack user is kept, delivered or not (intent to treat): users without an order get 0, not
    a missing row, so the holdout and the treatment are compared as drawn. ``deliverable`` is passed
    through when the pack has it (the report warns when nobody was contacted).
    """
    extra = [c for c in ("deliverable",) if c in pack_df.columns]
    orders = F.coalesce(F.col("orders"), F.lit(0))
    return (
        pack_df.select("user_id", "group", "score", *extra)
        .join(window_outcomes(daily_df, run_date, window_days, scope), "user_id", "left")
        .join(pre_converters(daily_df, run_date, window_days, scope), "user_id", "left")
        .select(
            "user_id",
            "group",
            *extra,
            F.col("score").cast("double").alias("score"),
            (orders > 0).cast("int").alias("converted"),
            F.coalesce(F.col("value"), F.lit(0.0)).cast("double").alias("value"),
            orders.cast("long").alias("orders"),
            F.datediff(F.col("first_order_date"), F.lit(run_date)).alias("days_to_convert"),
            F.coalesce(F.col("pre_converted"), F.lit(0)).cast("int").alias("pre_converted"),
        )
    )
