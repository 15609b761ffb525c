"""build_user_daily on inline events: counters per event type and exact gmv."""

from __future__ import annotations

from chispa import assert_df_equality
from pyspark.sql import functions as F

from dmp.spark.schemas import EVENTS, USER_DAILY
from dmp.transforms.aggregate import COUNTERS, build_user_daily, events_counted_col, to_cents
from tests.support.factories import D1, D2, EVENT_ROWS, EXPECTED_D1, make_event


def test_build_user_daily_counts_and_gmv(spark):
    events_df = spark.createDataFrame(EVENT_ROWS, EVENTS).filter(F.col("event_date") == D1)
    expected = spark.createDataFrame(EXPECTED_D1, USER_DAILY)
    assert_df_equality(build_user_daily(events_df), expected, ignore_row_order=True, ignore_nullable=True)


def test_gmv_is_exact_in_cents(spark):
    # 0.1 + 0.2 style float noise must not leak into gmv: 3 x 0.1 + 0.2 = 0.50 exactly
    rows = [make_event(f"g{i}", D1, "u9", "order", price=0.1, quantity=1) for i in range(3)]
    rows.append(make_event("g9", D1, "u9", "order", price=0.2, quantity=1))
    got = build_user_daily(spark.createDataFrame(rows, EVENTS)).select("orders", "gmv").first()
    assert (got["orders"], got["gmv"]) == (4, 0.5)


def test_to_cents_rounds_half_up_to_whole_cents(spark):
    df = spark.createDataFrame([(0.1,), (0.125,), (19.999,), (None,)], "amount double")
    got = [r.c for r in df.select(to_cents(F.col("amount")).alias("c")).collect()]
    assert got == [10, 13, 2000, None]


def test_events_counted_is_the_sum_of_every_counter(spark):
    daily = build_user_daily(spark.createDataFrame(EVENT_ROWS, EVENTS))
    got = daily.groupBy("event_date").agg(F.sum(events_counted_col()).alias("n")).collect()
    assert sorted((r.event_date, r.n) for r in got) == [(D1, 14), (D2, 1)]
    assert set(COUNTERS) <= set(daily.columns)
