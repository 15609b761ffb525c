"""The ingest transforms on inline rows: parsing, typing, reasons, buckets, quarantine ids."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.transforms.columns import (
    clean_text,
    first_text_problem,
    has_lossy_json_escape,
    is_blank,
    is_unreadable_text,
    reason_with_value,
    without_bom,
)
from dmp.transforms.ingest import (
    CONTENT_COLUMNS,
    RAW_FIELDS,
    TAOBAO_WINDOW,
    TimeBounds,
    filter_to_dates,
    parquet_schema_problem,
    parse_event_time,
    parse_jsonl,
    parse_taobao,
    with_event_status,
    with_reason,
    with_typed_columns,
)
from dmp.transforms.quarantine import RAW_BASE64_PREFIX, raw_kept, to_quarantine_rows

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


# ------------------------------------------------------------------------- hostile text (issue 22)


def _flags(spark: SparkSession, fn, values: list[str]) -> list[bool]:  # noqa: ANN001 - a column function
    df = spark.createDataFrame([(v,) for v in values], "v string")
    return [r.flag for r in df.select(fn(F.col("v")).alias("flag")).collect()]


def test_lossy_json_escapes_are_found_and_valid_ones_are_not(spark):
    cases = {
        r'{"u": "a\ufffd"}': True,
        r'{"u": "a\uFFFD"}': True,
        r'{"u": "a\ud800"}': True,  # high half alone
        r'{"u": "a\ud800\ud800\ude00"}': True,  # a pair after a lone high half
        r'{"u": "a\udc00"}': True,  # low half alone
        r'{"u": "a\ud83d\ude00\ude00"}': True,  # a lone low half after a pair
        r'{"u": "a\\ud83d\ude00"}': True,  # the "pair" starts with escaped text: the low half is alone
        r'{"u": "a\\\ud800"}': True,  # escaped backslash, then a real escape
        r'{"u": "a\ud83d\ude00"}': False,  # an emoji
        r'{"u": "a\\ud800"}': False,  # escaped backslash + text "ud800"
        r'{"u": "a\\\\ud800"}': False,
        r'{"u": "a\u00e9 \n"}': False,
        '{"u": "plain"}': False,
    }
    assert _flags(spark, has_lossy_json_escape, list(cases)) == list(cases.values())


def test_unreadable_text_is_bad_utf8_or_a_replacement_character(spark):
    df = spark.createDataFrame(
        [(b"ok \xe7\x94\xa8",), (b"\xff",), (b"\xed\xa0\x80",), ("a\ufffd".encode(),)], "b binary"
    )
    got = [r.flag for r in df.select(is_unreadable_text(F.col("b").cast("string")).alias("flag")).collect()]
    assert got == [False, True, True, True]


def test_bom_is_dropped_only_at_the_start(spark):
    df = spark.createDataFrame([("\ufeffab",), ("a\ufeffb",), ("ab",)], "v string")
    assert [r.v for r in df.select(without_bom(F.col("v")).alias("v")).collect()] == ["ab", "a\ufeffb", "ab"]


def test_text_problems_lengths_first_then_control_characters_in_field_order(spark):
    limits = {"a": 3, "b": 3}
    rows = [
        ("abc", "abc", None),
        ("abcd", "ab\u202e", "field_too_long:a"),
        ("ab\x00", "abcd", "field_too_long:b"),  # b too long beats a's NUL
        ("ab", "a\u2028", "control_characters:b"),
        ("a\u200b", "a\x00", "control_characters:a"),
        ("a\u00a0", "用户", None),  # a no-break space and CJK text are fine
        (None, None, None),
    ]
    df = spark.createDataFrame([(a, b) for a, b, _ in rows], "a string, b string")
    problem = first_text_problem({"a": F.col("a"), "b": F.col("b")}, limits)
    assert [r.p for r in df.select(problem.alias("p")).collect()] == [r for _, _, r in rows]


def test_bad_encoding_raw_is_one_line_of_base64_of_the_bytes(spark):
    line = "用户".encode("gbk") * 60  # long enough for Spark to break base64 into MIME lines
    df = spark.createDataFrame([(line,)], "b binary").select(F.col("b").cast("string").alias("v"))
    raw = df.select(raw_kept(F.col("v"), F.lit(True)).alias("raw")).first().raw
    assert raw.startswith(RAW_BASE64_PREFIX) and "\n" not in raw and "\r" not in raw
    assert base64.b64decode(raw.removeprefix(RAW_BASE64_PREFIX), validate=True) == line
    assert df.select(raw_kept(F.col("v"), F.lit(False)).alias("raw")).first().raw == df.first().v


def test_json_type_checks_and_their_precedence(spark):
    lines = _lines(
        spark,
        '{"event_id": "a", "user_id": {"x": 1}, "event_type": "view", "event_time": "2026-03-01"}',
        '{"event_id": "b", "user_id": "u", "sku_id": [1], "event_type": "view", "event_time": "2026-03-01"}',
        '{"event_id": "c", "user_id": "{x", "event_type": "view", "event_time": "2026-03-01"}',
        '{"event_id": "d", "user_id": 7, "event_type": "view", "event_time": "2026-03-01", "quantity": true}',
        '{"event_id": "e", "user_id": {"x": 1}, "user_id": "u"}',
        '{"event_id": "f", "user_id": "u", "event_type": "view", "event_time": "2026-03-01", "x": {"k": 1, "k": 2}}',
        '{"event_id": "g", "user_id": "{\\"id\\": 1}", "event_type": "view", "event_time": "2026-03-01"}',
        '{"event_id": "h", "user_id": "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", "event_type": "view", "event_time": "2026-03-01"}',
    )
    parsed = {r.f.event_id: r for r in lines.transform(parse_jsonl).collect()}
    assert {k: r.parse_error for k, r in parsed.items()} == {
        "a": "bad_type:user_id",
        "b": "bad_type:sku_id",
        "c": None,  # a string that starts with a brace
        "d": None,  # scalars are read as their text
        "e": "duplicate_key",  # before bad_type
        "f": None,  # only top-level keys count; unknown keys are ignored
        "g": "bad_type:user_id",  # a string holding a JSON object is one too
        "h": None,  # a GUID in braces is not JSON
    }
    assert (parsed["d"].f.user_id, parsed["d"].f.quantity) == ("7", "true")


def test_taobao_text_checks_and_their_precedence(spark):
    lines = _lines(
        spark,
        "\ufeff1,100,10,pv,1511700000",
        "2\x00,100,10,clk,1511700000",
        "3,100,10," + "p" * 33 + ",1511700000",
        "4,100,10,pv,1511700000,x",
    )
    got = [r.parse_error for r in lines.transform(parse_taobao).collect()]
    assert got == [None, "control_characters:user_id", "field_too_long:event_type", "bad_field_count:6"]


def test_parquet_schema_problems(spark):
    def problem(ddl: str) -> str | None:
        return parquet_schema_problem(spark.createDataFrame([], ddl).schema)

    base = "event_id string, user_id string, event_type string, event_time timestamp"
    assert problem(base) is None
    assert problem(f"{base}, price double, quantity int, extra struct<a: int>, tags array<string>") is None
    assert problem("event_id string, event_type string, event_time timestamp") == (
        "bad_schema:missing_column:user_id"
    )
    assert problem("user_id string") == "bad_schema:missing_column:event_id"  # REQUIRED_FIELDS order
    assert problem("event_id string, USER_ID string, event_type string, event_time timestamp") == (
        "bad_schema:missing_column:user_id"
    )
    assert problem(f"{base}, sku_id array<string>") == "bad_schema:bad_type:sku_id"
    assert problem(f"{base}, channel map<string, string>") == "bad_schema:bad_type:channel"
    assert problem("event_id string, user_id binary, event_type string, event_time timestamp") == (
        "bad_schema:bad_type:user_id"
    )
    assert problem(f"{base}, coupon_id struct<a: int>, sku_id array<int>") == "bad_schema:bad_type:sku_id"
