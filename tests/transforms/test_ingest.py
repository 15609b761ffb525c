"""The ingest transforms on inline rows: parsing, typing, reasons, buckets, quarantine ids."""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.transforms.columns import clean_text, is_blank, reason_with_value
from dmp.transforms.ingest import (
    CONTENT_COLUMNS,
    RAW_FIELDS,
    TAOBAO_WINDOW,
    TimeBounds,
    filter_to_dates,
    parse_event_time,
    parse_jsonl,
    parse_taobao,
    with_event_status,
    with_reason,
    with_typed_columns,
)
from dmp.transforms.quarantine import to_quarantine_rows

NOW = datetime(2026, 3, 10, tzinfo=UTC)
BOUNDS = TimeBounds.for_format("jsonl", NOW)


def _lines(spark: SparkSession, *values: str) -> DataFrame:
    return spark.createDataFrame([(v, "f.jsonl") for v in values], "value string, source_file string")


def _reasons(checked_df: DataFrame) -> list[str | None]:
    return [r.reason for r in checked_df.orderBy("raw").collect()]


def test_clean_text_trims_whitespace_and_blanks_become_null(spark):
    df = spark.createDataFrame([(" a ",), ("\tb\r",), ("   ",), ("",), (None,)], "t string")
    got = df.select(clean_text(F.col("t")).alias("c"), is_blank("t").alias("b")).collect()
    assert [(r.c, r.b) for r in got] == [("a", False), ("b", False), (None, True), (None, True), (None, None)]


def test_reason_values_are_cut_to_fifty_characters(spark):
    df = spark.createDataFrame([("x" * 80,)], "v string")
    assert df.select(reason_with_value("unknown_channel", F.col("v")).alias("r")).first().r == (
        "unknown_channel:" + "x" * 50
    )


def test_content_is_every_raw_field_but_the_id():
    assert RAW_FIELDS[1:] == CONTENT_COLUMNS and "event_id" not in CONTENT_COLUMNS


def test_time_bounds_default_and_taobao_window():
    assert (BOUNDS.min_time, BOUNDS.future_limit, BOUNDS.max_time) == (
        datetime(2000, 1, 1, tzinfo=UTC),
        NOW + timedelta(hours=1),
        None,
    )
    taobao = TimeBounds.for_format("taobao", NOW)
    assert (taobao.min_time, taobao.max_time) == TAOBAO_WINDOW
    mine = datetime(2017, 11, 1, tzinfo=UTC)
    assert TimeBounds.for_format("taobao", NOW, min_time=mine).min_time == mine


def test_json_lines_are_typed_and_the_first_failed_check_is_the_reason(spark):
    lines = _lines(
        spark,
        '{"event_id": "a", "user_id": " u1 ", "event_type": "view", "event_time": "2026-03-01T10:00:00Z", "price": "129", "quantity": 2}',
        '{"event_id": "b", "user_id": "u1", "event_type": "jump", "event_time": "yesterday"}',
        '{"event_id": "c", "user_id": "u1", "event_type": "view", "event_time": 1772359200, "price": "-1"}',
        '{"event_id": "d", "user_id": "u1", "event_type": "view", "event_time": "2026-03-01", "channel": "tv"}',
        '{"event_id": "e", "event_type": "view", "event_time": "2026-03-01"}',
        '{"event_id": "f", "user_id": "u1", "event_type": "order", "event_time": "2026-03-01", "quantity": "1.5"}',
        '{"event_id": "g", "user_id": "u1", "event_type": "view", "event_time": "2030-01-01"}',
        "[1, 2]",
    )
    checked = lines.transform(parse_jsonl).transform(with_typed_columns).transform(with_reason, BOUNDS)
    assert _reasons(checked) == [
        "malformed_json",  # "[1, 2]" sorts first
        None,
        "unknown_event_type:jump",  # checked before the time
        "negative_price",
        "unknown_channel:tv",
        "missing_field:user_id",
        "bad_quantity",
        "future_timestamp",
    ]
    a = checked.filter(F.col("event_id") == "a").first()
    assert (a.user_id, a.event_time, a.event_date, a.price, a.quantity) == (
        "u1",
        datetime(2026, 3, 1, 10, 0),
        date(2026, 3, 1),
        129.0,
        2,
    )
    assert set(checked.columns) >= {"raw", "source_file", "reason", *RAW_FIELDS}
    assert not {"parse_error", "_s_price"} & set(checked.columns)


def test_taobao_lines_map_behaviours_and_count_fields(spark):
    lines = _lines(
        spark, "1,100,10,pv,1511700000", "2,100,10,clk,1511700000", "3,100,10,pv", " 4 ,7,8,buy,1511700000 "
    )
    parsed = lines.transform(parse_taobao)
    rows = {r.raw: r for r in parsed.collect()}
    one = rows["1,100,10,pv,1511700000"]
    assert (one.parse_error, one.f.event_type, one.f.sku_id, one.f.store_id) == (None, "view", "100", None)
    assert one.f.event_id == "tb-" + hashlib.sha256(b"1,100,10,pv,1511700000").hexdigest()[:32]
    assert rows["2,100,10,clk,1511700000"].parse_error == "unknown_event_type:clk"
    assert rows["3,100,10,pv"].parse_error == "bad_field_count:4"
    four = rows[" 4 ,7,8,buy,1511700000 "]
    assert (four.f.user_id, four.f.event_type, four.f.event_time) == ("4", "order", "1511700000")


def test_date_filter_keeps_undatable_rows(spark):
    df = spark.createDataFrame(
        [
            ("a", date(2026, 3, 1), None),
            ("b", date(2026, 3, 2), None),
            ("c", None, "bad_timestamp"),
            ("d", date(2030, 1, 1), "future_timestamp"),
            ("e", date(2026, 3, 2), "negative_price"),
        ],
        "id string, event_date date, reason string",
    )
    assert sorted(r.id for r in filter_to_dates(df, [date(2026, 3, 1)]).collect()) == ["a", "c", "d"]


def test_quarantine_ids_are_stable_and_keep_identical_lines_apart(spark):
    rows = [("bad", "malformed_json", "f.jsonl", "quarantined")] * 2 + [("ok", None, "f.jsonl", "accepted")]
    df = spark.createDataFrame(rows, "raw string, reason string, source_file string, status string")
    first = to_quarantine_rows(df, NOW, "run-1", []).collect()
    again = to_quarantine_rows(df, NOW + timedelta(days=1), "run-2", []).collect()
    assert len(first) == 2 and len({r.quarantine_id for r in first}) == 2
    assert {r.quarantine_id for r in first} == {r.quarantine_id for r in again}
    assert {(r.ingest_date, r.run_id) for r in first} == {(date(2026, 3, 10), "run-1")}


def test_parse_event_time_formats(spark):
    values = [
        ("2026-03-01T10:22:31Z", datetime(2026, 3, 1, 10, 22, 31)),
        ("2026-03-01T18:22:31.5+08:00", datetime(2026, 3, 1, 10, 22, 31, 500000)),
        ("2026-03-01 10:22:31", datetime(2026, 3, 1, 10, 22, 31)),
        ("1772360551", datetime(2026, 3, 1, 10, 22, 31)),
        ("1772360551250", datetime(2026, 3, 1, 10, 22, 31, 250000)),
        ("1.772360551E9", datetime(2026, 3, 1, 10, 22, 31)),
        ("1e20", None),
        ("2026-13-01", None),
        ("yesterday", None),
    ]
    df = spark.createDataFrame([(v,) for v, _ in values], "t string")
    got = [r.ts for r in df.select(parse_event_time(F.col("t")).alias("ts")).collect()]
    assert got == [expected for _, expected in values]


def test_conflict_winner_is_the_earliest_event_whatever_the_file_order(spark):
    batch = spark.createDataFrame(
        [
            ("x", datetime(2026, 3, 1, 12), "u_late", "a.jsonl", "late"),
            ("x", datetime(2026, 3, 1, 9), "u_early", "b.jsonl", "early"),
            ("y", datetime(2026, 3, 1, 9), "u_y", "a.jsonl", "y"),
        ],
        "event_id string, event_time timestamp, user_id string, source_file string, raw string",
    )
    for name in (
        "event_type",
        "sku_id",
        "store_id",
        "brand_id",
        "category_id",
        "channel",
        "coupon_id",
        "reason",
    ):
        batch = batch.withColumn(name, F.lit(None).cast("string"))
    batch = batch.withColumn("price", F.lit(None).cast("double")).withColumn(
        "quantity", F.lit(None).cast("int")
    )
    # the lake already holds y with other content -> y is a conflict too
    lake_ids = spark.createDataFrame([("y", "other-hash")], "event_id string, content_hash string")
    got = {(r.user_id, r.status, r.reason) for r in with_event_status(batch, lake_ids).collect()}
    assert got == {
        ("u_early", "accepted", None),
        ("u_late", "quarantined", "duplicate_event_id_conflict"),
        ("u_y", "quarantined", "duplicate_event_id_conflict"),
    }
