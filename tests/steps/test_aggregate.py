from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark.schemas import EVENTS, USER_DAILY
from dmp.steps.aggregate import aggregate_day, aggregate_days, build_user_daily

D1 = date(2026, 3, 1)
D2 = date(2026, 3, 2)
STAMP = datetime(2026, 3, 20, 0, 0, 0)


def make_event(
    event_id: str,
    day: date,
    user: str,
    etype: str,
    store: str | None = "S001",
    brand: str | None = "B001",
    category: str | None = "C01",
    price: float | None = None,
    quantity: int | None = None,
    coupon: str | None = None,
) -> tuple:
    """One bronze/events row (EVENTS schema order)."""
    ts = datetime(day.year, day.month, day.day, 10, 0, 0)
    return (
        event_id,
        ts,
        day,
        user,
        etype,
        "K1",
        store,
        brand,
        category,
        price,
        quantity,
        "app",
        coupon,
        "t.jsonl",
        STAMP,
    )


def write_events(spark: SparkSession, lake: str, rows: list[tuple]) -> DataFrame:
    df = spark.createDataFrame(rows, EVENTS)
    days = sorted({r[2] for r in rows})
    lk.overwrite_partitions(
        df, lake, tables.EVENTS, ["event_date"], lk.replace_where_condition("event_date", days)
    )
    return df


EVENT_ROWS = [
    make_event("e01", D1, "u1", "view"),
    make_event("e02", D1, "u1", "view"),
    make_event("e03", D1, "u1", "cart_add", price=10.5, quantity=1),
    make_event("e04", D1, "u1", "order", price=10.5, quantity=2),  # 21.00
    make_event("e05", D1, "u1", "order", price=None, quantity=3),  # price null -> 0
    make_event("e06", D1, "u1", "order", price=3.33, quantity=None),  # quantity null -> 1: 3.33
    make_event("e07", D1, "u1", "view", store="S101", brand="B101", category="C02", price=99.0),
    make_event("e08", D1, "u2", "search", store=None, brand=None, category=None),
    make_event("e09", D1, "u2", "click", store=None, brand=None, category=None),
    make_event("e10", D1, "u2", "coupon_receive", category=None, coupon="CP1"),
    make_event("e11", D1, "u2", "coupon_redeem", category=None, coupon="CP1"),
    make_event("e12", D1, "u2", "favorite"),
    make_event("e13", D1, "u2", "cart_remove"),
    make_event("e14", D1, "u2", "favorite"),
    make_event("e15", D2, "u1", "order", price=1.0, quantity=1),
]

#          user  date store  brand  cat    views clicks searches carts c_rem favs orders gmv  c_rec c_red
EXPECTED_D1 = [
    ("u1", D1, "S001", "B001", "C01", 2, 0, 0, 1, 0, 0, 3, 24.33, 0, 0),
    ("u1", D1, "S101", "B101", "C02", 1, 0, 0, 0, 0, 0, 0, 0.0, 0, 0),
    ("u2", D1, None, None, None, 0, 1, 1, 0, 0, 0, 0, 0.0, 0, 0),
    ("u2", D1, "S001", "B001", None, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, 1),
    ("u2", D1, "S001", "B001", "C01", 0, 0, 0, 0, 1, 2, 0, 0.0, 0, 0),
]


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


def test_aggregate_day_writes_one_partition_and_rerun_is_idempotent(spark, lake):
    write_events(spark, lake, EVENT_ROWS)
    res = aggregate_day(spark, lake, D1, skip_checks=True)
    assert (res.events, res.rows) == (14, 5)
    aggregate_day(spark, lake, D2, skip_checks=True)
    first = lk.read_table(spark, lake, tables.USER_DAILY)
    assert first.filter(F.col("event_date") == D2).count() == 1

    aggregate_day(spark, lake, D1, skip_checks=True)
    again = lk.read_table(spark, lake, tables.USER_DAILY)
    expected = spark.createDataFrame(EXPECTED_D1, USER_DAILY)
    assert_df_equality(
        again.filter(F.col("event_date") == D1).select(*USER_DAILY.fieldNames()),
        expected,
        ignore_row_order=True,
        ignore_nullable=True,
    )
    assert again.count() == 6


def test_reaggregate_replaces_stale_rows_and_empty_day_writes_empty_partition(spark, lake):
    write_events(spark, lake, EVENT_ROWS)
    aggregate_day(spark, lake, D2, skip_checks=True)
    # bronze for D2 is corrected to hold a different user only: the old u1 row must disappear
    write_events(spark, lake, [make_event("e99", D2, "u7", "view")])
    aggregate_day(spark, lake, D2, skip_checks=True)
    users = [r.user_id for r in lk.read_table(spark, lake, tables.USER_DAILY).collect()]
    assert users == ["u7"]

    empty_day = D2 + timedelta(days=5)
    res = aggregate_day(spark, lake, empty_day, skip_checks=True)
    assert (res.events, res.rows) == (0, 0)
    assert lk.read_table(spark, lake, tables.USER_DAILY).count() == 1


def test_aggregate_without_bronze_table_says_what_to_run(spark, lake):
    with pytest.raises(DmpError, match="dmp ingest"):
        aggregate_day(spark, lake, D1)


def test_range_is_one_pass_with_one_partition_per_date(spark, lake):
    write_events(spark, lake, EVENT_ROWS)
    empty_day = D2 + timedelta(days=1)
    results = aggregate_days(spark, lake, [D1, D2, empty_day], skip_checks=True)
    assert [(r.day, r.events, r.rows) for r in results] == [(D1, 14, 5), (D2, 1, 1), (empty_day, 0, 0)]
    per_day = {
        r["event_date"]: r["n"]
        for r in lk.read_table(spark, lake, tables.USER_DAILY)
        .groupBy("event_date")
        .agg(F.count("*").alias("n"))
        .collect()
    }
    assert per_day == {D1: 5, D2: 1}


def delta_file_stats(table_path: str) -> list[dict]:
    """The statistics of every file a local Delta table's log has added."""
    log = Path(table_path) / "_delta_log"
    return [
        json.loads(json.loads(line)["add"]["stats"])
        for f in sorted(log.glob("*.json"))
        for line in f.read_text().splitlines()
        if line.startswith('{"add"')
    ]


def test_user_daily_keeps_file_statistics_on_user_id_only(spark, lake):
    """user_daily is created with delta.dataSkippingStatsColumns = user_id (lake.STATS_COLUMNS): the
    other columns' min/max prune nothing and cost write time; row counts are still recorded."""
    write_events(spark, lake, EVENT_ROWS)
    aggregate_day(spark, lake, D1, skip_checks=True)
    props = {
        r["key"]: r["value"]
        for r in spark.sql(
            f"SHOW TBLPROPERTIES delta.`{tables.table_path(lake, tables.USER_DAILY)}`"
        ).collect()
    }
    assert props["delta.dataSkippingStatsColumns"] == "user_id"
    stats = delta_file_stats(tables.table_path(lake, tables.USER_DAILY))
    assert stats and all(set(s["minValues"]) == {"user_id"} for s in stats)
    assert sum(s["numRecords"] for s in stats) == 5
