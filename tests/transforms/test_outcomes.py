"""Outcome transforms of the uplift evaluation on inline DataFrames: windows, scopes, one row per pack user."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from chispa import assert_df_equality

from dmp.contracts.specs import Scope, SegmentSpec, Targets
from dmp.spark.schemas import USER_DAILY
from dmp.transforms.outcomes import (
    OutcomeScope,
    attribution_window,
    filter_attribution_window,
    filter_in_scope,
    pre_converters,
    pre_window,
    window_outcomes,
    with_outcomes,
)
from dmp.transforms.scope import filter_days_ending

R = date(2026, 3, 15)


def d(offset: int) -> date:
    return R + timedelta(days=offset)


def daily(
    user: str, day: date, store: str, brand: str, category: str, orders: int = 0, gmv: float = 0.0
) -> tuple:
    """A silver/user_daily row (the counters other than orders are 0)."""
    return (user, day, store, brand, category, 0, 0, 0, 0, 0, 0, orders, gmv, 0, 0)


COMPETITOR = SegmentSpec.model_validate(
    {
        "name": "steal_b101",
        "kind": "competitor_intercept",
        "competitors": {"brand_ids": ["B101"]},
        "own": {"brand_ids": ["B001"], "store_ids": ["S002"]},
        "categories": ["C01"],
        "window_days": 14,
    }
)
REVISIT = SegmentSpec.model_validate(
    {
        "name": "revisit",
        "kind": "store_revisit",
        "scope": {"store_ids": ["S001"], "category_ids": ["C01"]},
        "window_days": 14,
        "behaviors": ["view"],
    }
)
RULE = SegmentSpec.model_validate(
    {"name": "actives", "kind": "rule", "where": {"tag": "lifecycle_stage", "in": ["active"]}}
)


# ------------------------------------------------------------------------------------- pure Python


def test_outcome_scope_of_each_kind() -> None:
    # competitor_intercept: its own brands OR stores; its categories narrow the targeting only
    assert OutcomeScope.of_spec(COMPETITOR) == OutcomeScope(Targets(brand_ids=["B001"], store_ids=["S002"]))
    assert OutcomeScope.of_spec(COMPETITOR).as_report() == {
        "store_ids": ["S002"], "brand_ids": ["B001"], "match": "any"}  # fmt: skip
    assert OutcomeScope.of_spec(REVISIT).as_report() == {
        "store_ids": ["S001"], "category_ids": ["C01"], "match": "all"}  # fmt: skip
    assert OutcomeScope.of_spec(RULE) == OutcomeScope() and OutcomeScope().as_report() == {}
    assert OutcomeScope().everywhere and not OutcomeScope.of_spec(REVISIT).everywhere


def test_windows_around_the_run_date() -> None:
    # N = 3: delivered on R, outcomes on R+1 … R+3; the pre-period is the 3 days ending on R
    assert attribution_window(R, 3) == (d(1), d(3))
    assert pre_window(R, 3) == (d(-2), R)
    assert attribution_window(R, 1) == (d(1), d(1)) and pre_window(R, 1) == (R, R)


# ------------------------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def daily_df(spark):  # type: ignore[no-untyped-def]
    return spark.createDataFrame(
        [
            daily("a", d(-3), "S001", "B001", "C01", orders=1, gmv=5.0),  # before a 3-day pre-period
            daily("a", d(-2), "S001", "B001", "C01", orders=1, gmv=6.0),  # first day of it
            daily("a", d(0), "S001", "B001", "C01", orders=2, gmv=7.0),  # the run date: pre-period, once
            daily("a", d(1), "S001", "B001", "C01", orders=1, gmv=10.0),  # our brand in our store
            daily("b", d(1), "S101", "B001", "C02", orders=1, gmv=20.0),  # our brand, other store
            daily("c", d(2), "S002", "B101", "C02", orders=2, gmv=30.0),  # other brand, our store
            daily("c", d(3), "S002", "B101", "C02"),  # a visit on the last day: no order
            daily("e", d(2), "S101", "B101", "C01", orders=1, gmv=40.0),  # theirs entirely
            daily("f", d(4), "S001", "B001", "C01", orders=1, gmv=50.0),  # after a 3-day window
            daily("g", d(-1), "S001", None, "C01", orders=1, gmv=8.0),  # null brand: pre-period in S001
        ],
        USER_DAILY,
    )


def _days(df) -> list[date]:  # type: ignore[no-untyped-def]
    return sorted({r["event_date"] for r in df.collect()})


def test_filter_windows(daily_df) -> None:  # type: ignore[no-untyped-def]
    assert _days(filter_attribution_window(daily_df, R, 3)) == [d(1), d(2), d(3)]
    # the pre-period is the look-back window packs use, ending on the run date
    pre_days = _days(filter_days_ending(daily_df, R, 3))
    assert pre_days == [d(-2), d(-1), d(0)] and (pre_days[0], pre_days[-1]) == pre_window(R, 3)


def test_filter_in_scope(daily_df) -> None:  # type: ignore[no-untyped-def]
    def users(scope: OutcomeScope) -> list[str]:
        return sorted({r["user_id"] for r in filter_in_scope(daily_df, scope).collect()})

    # our brand OR our store; g's row has no brand and another store
    assert users(OutcomeScope.of_spec(COMPETITOR)) == ["a", "b", "c", "f"]
    assert users(OutcomeScope(Scope(store_ids=["S001", "S002"], category_ids=["C02"]))) == ["c"]
    assert users(OutcomeScope()) == ["a", "b", "c", "e", "f", "g"]


def test_window_outcomes_and_pre_converters(daily_df) -> None:  # type: ignore[no-untyped-def]
    everywhere = OutcomeScope()
    rows = {r["user_id"]: r.asDict() for r in window_outcomes(daily_df, R, 3, everywhere).collect()}
    assert set(rows) == {"a", "b", "c", "e"}  # f's order is after the window
    assert rows["c"] == {"user_id": "c", "orders": 2, "value": 30.0, "first_order_date": d(2)}
    pre = pre_converters(daily_df, R, 3, everywhere)
    assert sorted((r["user_id"], r["pre_converted"]) for r in pre.collect()) == [("a", 1), ("g", 1)]
    ours = pre_converters(daily_df, R, 3, OutcomeScope(Scope(brand_ids=["B001"])))
    assert [r["user_id"] for r in ours.collect()] == ["a"]  # g's brand is unknown: not in scope


def test_with_outcomes_one_row_per_pack_user(spark, daily_df) -> None:  # type: ignore[no-untyped-def]
    pack_df = spark.createDataFrame(
        [("a", "treatment", 0.9, True), ("c", "holdout", None, True), ("z", "treatment", 0.1, True)],
        "user_id string, `group` string, score double, deliverable boolean",
    )
    scope = OutcomeScope(Scope(store_ids=["S001", "S002"]))
    expected = spark.createDataFrame(
        [
            # a: one order in S001 on R+1, and orders in the pre-period; c: two in S002 on R+2; z: none
            ("a", "treatment", True, 0.9, 1, 10.0, 1, 1, 1),
            ("c", "holdout", True, None, 1, 30.0, 2, 2, 0),
            ("z", "treatment", True, 0.1, 0, 0.0, 0, None, 0),
        ],
        "user_id string, `group` string, deliverable boolean, score double, converted int, value double, "
        "orders long, days_to_convert int, pre_converted int",
    )
    assert_df_equality(
        with_outcomes(pack_df, daily_df, R, 3, scope), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_with_outcomes_by_kind_of_scope(spark, daily_df) -> None:  # type: ignore[no-untyped-def]
    """The conversions each kind of spec counts (moved from the step tests, now on the spec models)."""
    pack_df = spark.createDataFrame(
        [(u, "treatment", None) for u in "abcde"], "user_id string, `group` string, score double"
    )

    def converted(scope: OutcomeScope) -> dict[str, int]:
        return {r["user_id"]: r["converted"] for r in with_outcomes(pack_df, daily_df, R, 3, scope).collect()}

    assert converted(OutcomeScope.of_spec(COMPETITOR)) == {"a": 1, "b": 1, "c": 1, "d": 0, "e": 0}
    assert converted(OutcomeScope(Scope(store_ids=["S001", "S002"], category_ids=["C02"]))) == {
        "a": 0, "b": 0, "c": 1, "d": 0, "e": 0}  # fmt: skip
    assert converted(OutcomeScope()) == {"a": 1, "b": 1, "c": 1, "d": 0, "e": 1}
