"""Hostile input end to end: generated JSON-lines, Taobao and Parquet landings, each line's reason exact.

Every file is written byte by byte here (GBK, invalid UTF-8, escapes, NUL, bidi controls, objects
where ids belong, 10,000-character ids, duplicate keys, corrupt and wrong-schema Parquet files) next
to ordinary good rows and the bad cases ingest always handled. Each test asserts the exact reason of
every line, the reconciliation (rows and files), that nothing accepted holds U+FFFD, a control
character, a JSON object or an over-long value, that a ``bad_encoding`` row's raw base64 gives the
original bytes back, and that a rerun changes nothing.
"""

from __future__ import annotations

import base64
import gzip
import json
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.steps.ingest import run_ingest
from dmp.steps.ingest_runs import IngestResult
from dmp.transforms.ingest import FIELD_MAX_CHARS
from dmp.transforms.quarantine import RAW_BASE64_PREFIX

NOW = datetime(2026, 3, 10, tzinfo=UTC)
T = "2026-03-01T10:00:00Z"
ACCEPTED = "accepted"
DUPLICATE = "duplicate"
BLANK = "blank"


def _event(event_id: str, **fields: object) -> dict[str, object]:
    return {"event_id": event_id, "user_id": "u1", "event_type": "view", "event_time": T} | fields


def _json(event_id: str, **fields: object) -> bytes:
    return json.dumps(_event(event_id, **fields), ensure_ascii=False).encode("utf-8")


def _with_escape(event_id: str, user_id_json: str) -> bytes:
    """A line whose user_id is given as raw JSON text (escapes written exactly as they appear)."""
    return (
        f'{{"event_id": "{event_id}", "user_id": {user_id_json}, "event_type": "view", "event_time": "{T}"}}'
    ).encode("ascii")


# (name, line bytes, expected: a reason, ACCEPTED, DUPLICATE or BLANK). One line each, in file order.
JSONL_CASES: list[tuple[str, bytes, str]] = [
    ("bom_first_line", b"\xef\xbb\xbf" + _json("g0"), ACCEPTED),
    ("good", _json("g1"), ACCEPTED),
    ("good_order", _json("g2", event_type="order", price="59.5", quantity=2, channel="app"), ACCEPTED),
    ("same_again", _json("g1"), DUPLICATE),
    ("emoji_pair_escape", _with_escape("g3", r'"u\ud83d\ude00"'), ACCEPTED),
    ("escaped_backslash_not_escape", _with_escape("g4", r'"u\\ud800"'), ACCEPTED),
    ("string_starting_with_brace", _json("g5", user_id="{not json"), ACCEPTED),
    ("number_user_id", _with_escape("g6", "123"), ACCEPTED),
    ("id_at_limit_128", _json("g7", user_id="x" * 128), ACCEPTED),
    ("chinese_utf8", _json("g8", user_id="用户8"), ACCEPTED),
    ("braced_guid", _json("g9", user_id="{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"), ACCEPTED),
    # bad_encoding: bytes that are not UTF-8, U+FFFD, escapes that decode lossily
    ("gbk", _json("h1", user_id="用户").decode("utf-8").encode("gbk"), "bad_encoding"),
    ("invalid_utf8", _json("h2").replace(b'"u1"', b'"u\xff\xfe"'), "bad_encoding"),
    ("cut_multibyte", _json("h3").replace(b'"u1"', b'"u\xe7\x94"'), "bad_encoding"),
    ("utf8_surrogate", _json("h4").replace(b'"u1"', b'"u\xed\xa0\x80"'), "bad_encoding"),
    ("overlong_nul", _json("h5").replace(b'"u1"', b'"u\xc0\x80"'), "bad_encoding"),
    ("replacement_char", _json("h6", user_id="u\ufffd"), "bad_encoding"),
    ("replacement_escape", _with_escape("h7", r'"u\uFFFD"'), "bad_encoding"),
    ("lone_high_surrogate", _with_escape("h8", r'"u\ud800"'), "bad_encoding"),
    ("lone_low_surrogate", _with_escape("h9", r'"u\udc00x"'), "bad_encoding"),
    ("lone_low_after_escaped_backslash", _with_escape("h10", r'"u\\ud83d\ude00"'), "bad_encoding"),
    (
        "bad_bytes_and_duplicate_key",
        b'{"event_id": "h11", "user_id": "\xff", "user_id": "b"}',
        "bad_encoding",
    ),
    # duplicate_key
    ("duplicate_key", _json("h12")[:-1] + b', "user_id": "u2"}', "duplicate_key"),
    ("duplicate_key_escaped", _json("h13")[:-1] + b', "user\\u005fid": "u2"}', "duplicate_key"),
    ("duplicate_key_and_object", _json("h14", sku_id={"a": 1})[:-1] + b', "sku_id": "s"}', "duplicate_key"),
    # bad_type
    ("object_user_id", _json("h15", user_id={"id": "u1"}), "bad_type:user_id"),
    ("array_user_id", _json("h16", user_id=["u1", "u2"]), "bad_type:user_id"),
    ("object_event_time", _json("h17", event_time={"t": 1}), "bad_type:event_time"),
    ("array_price", _json("h18", price=[1]), "bad_type:price"),
    ("object_in_a_string", _json("h47", user_id='{"id": "u1"}'), "bad_type:user_id"),
    ("array_in_a_string", _json("h48", sku_id="[1, 2]"), "bad_type:sku_id"),
    ("object_and_long", _json("h19", user_id={"a": "b"}, store_id="s" * 500), "bad_type:user_id"),
    # field_too_long
    ("user_id_10000", _json("h20", user_id="x" * 10_000), "field_too_long:user_id"),
    ("user_id_129", _json("h21", user_id="x" * 129), "field_too_long:user_id"),
    ("event_type_33", _json("h22", event_type="v" * 33), "field_too_long:event_type"),
    ("long_beats_control", _json("h23", user_id="u\u202e1", sku_id="s" * 129), "field_too_long:sku_id"),
    # control_characters
    ("nul_escape", _with_escape("h24", r'"u\u00001"'), "control_characters:user_id"),
    ("trailing_nul_escape", _with_escape("h25", r'"u1\u0000"'), "control_characters:user_id"),
    ("tab_inside_escape", _with_escape("h26", r'"u\t1"'), "control_characters:user_id"),
    ("bidi_override", _json("h27", user_id="u\u202e1"), "control_characters:user_id"),
    ("zero_width_space", _json("h28", store_id="S\u200b1"), "control_characters:store_id"),
    ("line_separator", _json("h29", channel="app\u2028"), "control_characters:channel"),
    ("bom_inside", _json("h30", user_id="u\ufeff1"), "control_characters:user_id"),
    ("c1_control", _json("h31", coupon_id="c\u00851"), "control_characters:coupon_id"),
    (
        "control_beats_missing",
        _json("h32", user_id="u\u202e1", event_type=None),
        "control_characters:user_id",
    ),
    # already handled before issue 22
    ("raw_nul_byte", _json("h33").replace(b'"u1"', b'"u\x001"'), "malformed_json"),
    ("truncated", _json("h34")[:30], "malformed_json"),
    ("json_array", b"[1, 2]", "malformed_json"),
    ("not_json", b"hello", "malformed_json"),
    ("nested_3000", _json("h35")[:-1] + b', "x": ' + b"[" * 3000 + b"]" * 3000 + b"}", "malformed_json"),
    (
        "missing_user",
        json.dumps({"event_id": "h36", "event_type": "view", "event_time": T}).encode(),
        "missing_field:user_id",
    ),
    ("null_event_id", _json("h37").replace(b'"h37"', b"null"), "missing_field:event_id"),
    ("unknown_type", _json("h38", event_type="teleport"), "unknown_event_type:teleport"),
    ("bad_time", _json("h39", event_time="yesterday"), "bad_timestamp"),
    ("old_time", _json("h40", event_time="1999-12-31T23:00:00Z"), "timestamp_out_of_range"),
    ("future_time", _json("h41", event_time="2999-01-01T00:00:00Z"), "future_timestamp"),
    ("bad_price", _json("h42", price="12,50"), "bad_price"),
    ("negative_price", _json("h43", price=-5), "negative_price"),
    ("huge_price", _json("h44", price=2_000_000), "price_out_of_range"),
    ("bad_quantity", _json("h45", quantity=1.5), "bad_quantity"),
    ("unknown_channel", _json("h46", channel="tv"), "unknown_channel:tv"),
    (
        "conflict",
        _json("g2", event_type="order", price="1", event_time="2026-03-01T11:00:00Z"),
        "duplicate_event_id_conflict",
    ),
    ("blank", b"", BLANK),
    ("whitespace", b"  \t ", BLANK),
]


def _write_lines(path: Path, cases: list[tuple[str, bytes, str]]) -> None:
    for name, line, _ in cases:
        assert b"\n" not in line and b"\r" not in line, name  # one case = one line
    path.write_bytes(b"\n".join(line for _, line, _ in cases) + b"\n")


def _expected_raw(line: bytes, reason: str) -> str:
    if reason == "bad_encoding":
        return RAW_BASE64_PREFIX + base64.b64encode(line).decode("ascii")
    return line.decode("utf-8")


def _records(cases: list[tuple[str, bytes, str]]) -> list[tuple[str, bytes, str]]:
    return [c for c in cases if c[2] != BLANK]


def _reasons(cases: list[tuple[str, bytes, str]]) -> Counter[str]:
    return Counter(expected for _, _, expected in cases if expected not in (ACCEPTED, DUPLICATE, BLANK))


def _quarantine(spark: SparkSession, lake: str) -> Counter[tuple[str, str]]:
    rows = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).select("raw", "reason").collect()
    return Counter((r.raw, r.reason) for r in rows)


def _versions(spark: SparkSession, lake: str) -> tuple[int | None, int | None]:
    return lk.table_version(spark, lake, tables.EVENTS), lk.table_version(
        spark, lake, tables.EVENTS_QUARANTINE
    )


def _counts(result: IngestResult) -> tuple[object, ...]:
    return (
        result.files,
        result.files_ingested,
        result.files_quarantined,
        result.file_reasons,
        result.rows_read,
        result.quarantined,
        result.reasons,
        result.blank_lines,
    )


def _assert_nothing_bad_accepted(spark: SparkSession, lake: str) -> None:
    """No accepted value holds U+FFFD, a control character, a JSON object / array or too many characters."""
    events = lk.read_table(spark, lake, tables.EVENTS).collect()
    assert events
    for row in events:
        for name, limit in FIELD_MAX_CHARS.items():
            value = row[name]
            if value is None or not isinstance(value, str):
                continue
            assert "\ufffd" not in value, (name, value)
            assert not any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} for ch in value), (
                name,
                value,
            )
            assert len(value) <= limit, (name, len(value))
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            assert not isinstance(parsed, dict | list), (name, value)


def _assert_rerun_changes_nothing(
    spark: SparkSession, lake: str, source: str, fmt: str, first: IngestResult
) -> IngestResult:
    before, quarantine_before = _versions(spark, lake), _quarantine(spark, lake)
    again = run_ingest(spark, lake, source, fmt, skip_checks=True, now=NOW)
    assert _versions(spark, lake) == before
    assert _quarantine(spark, lake) == quarantine_before
    assert _counts(again) == _counts(first)
    accepted_before = first.accepted + first.duplicates_in_batch
    assert (again.accepted, again.duplicates_in_lake, again.duplicates_in_batch, again.quarantine_new) == (
        0,
        accepted_before,
        0,
        0,
    )
    assert again.reconciled
    return again


# ------------------------------------------------------------------------------------- JSON lines


@pytest.fixture(scope="module")
def jsonl_run(spark, tmp_path_factory) -> tuple[str, str, IngestResult]:
    root = tmp_path_factory.mktemp("hostile_jsonl")
    source = root / "landing" / "hostile.jsonl"
    source.parent.mkdir()
    _write_lines(source, JSONL_CASES)
    lake = str(root / "lake")
    return lake, str(source), run_ingest(spark, lake, str(source), "jsonl", skip_checks=True, now=NOW)


def test_jsonl_every_line_gets_its_exact_reason(spark, jsonl_run):
    lake, _, result = jsonl_run
    records = _records(JSONL_CASES)
    expected_q = Counter(
        (_expected_raw(line, reason), reason)
        for _, line, reason in records
        if reason not in (ACCEPTED, DUPLICATE)
    )
    assert _quarantine(spark, lake) == expected_q
    assert result.reasons == _reasons(JSONL_CASES)
    accepted = [c for c in records if c[2] == ACCEPTED]
    duplicates = [c for c in records if c[2] == DUPLICATE]
    assert (result.rows_read, result.accepted, result.duplicates_in_batch, result.blank_lines) == (
        len(records),
        len(accepted),
        len(duplicates),
        2,
    )
    assert result.rows_read == result.accepted + result.quarantined + result.duplicates
    assert result.reconciled and (result.files, result.files_ingested, result.files_quarantined) == (1, 1, 0)
    ids = sorted(r.event_id for r in lk.read_table(spark, lake, tables.EVENTS).select("event_id").collect())
    assert ids == [f"g{i}" for i in range(10)]


def test_jsonl_accepted_values_are_clean_and_exact(spark, jsonl_run):
    lake, _, _ = jsonl_run
    _assert_nothing_bad_accepted(spark, lake)
    users = {r.event_id: r.user_id for r in lk.read_table(spark, lake, tables.EVENTS).collect()}
    assert users["g0"] == "u1"  # the BOM is not part of the first key
    assert users["g3"] == "u\U0001f600"  # a valid surrogate pair is one emoji
    assert users["g4"] == "u\\ud800"  # an escaped backslash: six characters of text, no surrogate
    assert (users["g5"], users["g6"], users["g8"]) == ("{not json", "123", "用户8")


def test_jsonl_bad_encoding_raw_gives_the_original_bytes_back(spark, jsonl_run):
    lake, _, _ = jsonl_run
    q = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).filter("reason = 'bad_encoding'").collect()
    decoded = {base64.b64decode(r.raw.removeprefix(RAW_BASE64_PREFIX), validate=True) for r in q}
    assert decoded == {line for _, line, reason in JSONL_CASES if reason == "bad_encoding"}
    gbk = next(line for name, line, _ in JSONL_CASES if name == "gbk")
    assert gbk in decoded and "用户" in gbk.decode("gbk")


def test_jsonl_rerun_changes_nothing(spark, jsonl_run):
    lake, source, first = jsonl_run
    _assert_rerun_changes_nothing(spark, lake, source, "jsonl", first)


# ------------------------------------------------------------------------------------------ Taobao

TB = "1511658000"  # 2017-11-26 01:00 UTC: inside the dataset's window
TAOBAO_CASES: list[tuple[str, bytes, str]] = [
    ("bom_first_line", f"\ufeff1,100,10,pv,{TB}".encode(), ACCEPTED),
    ("good_buy", f"2,100,10,buy,{TB}".encode(), ACCEPTED),
    ("same_again", f"2,100,10,buy,{TB}".encode(), DUPLICATE),
    ("padded", f" 3 , 100 ,10, cart ,{TB} ".encode(), ACCEPTED),
    ("gbk", f"用户,100,10,pv,{TB}".encode("gbk"), "bad_encoding"),
    ("invalid_utf8", f"4\xff,100,10,pv,{TB}".encode("latin-1"), "bad_encoding"),
    ("replacement_char", f"5\ufffd,100,10,pv,{TB}".encode(), "bad_encoding"),
    ("bad_bytes_and_six_fields", f"6\xff,100,10,pv,{TB},9".encode("latin-1"), "bad_encoding"),
    ("nul", f"7\x00,100,10,pv,{TB}".encode(), "control_characters:user_id"),
    ("bidi_in_item", f"8,1\u202e00,10,pv,{TB}".encode(), "control_characters:sku_id"),
    ("zero_width_in_time", f"9,100,10,pv,{TB}\u200b".encode(), "control_characters:event_time"),
    ("user_10000", ("1" * 10_000 + f",100,10,pv,{TB}").encode(), "field_too_long:user_id"),
    ("behavior_33", f"10,100,10,{'p' * 33},{TB}".encode(), "field_too_long:event_type"),
    ("control_beats_unknown", f"11\x01,100,10,clk,{TB}".encode(), "control_characters:user_id"),
    ("six_fields", f"12,100,10,pv,{TB},9".encode(), "bad_field_count:6"),
    ("four_fields", b"13,100,10,pv", "bad_field_count:4"),
    ("unknown_behavior", f"14,100,10,clk,{TB}".encode(), "unknown_event_type:clk"),
    ("bad_time", b"15,100,10,pv,abc", "bad_timestamp"),
    ("out_of_window", b"16,100,10,pv,1505117799", "timestamp_out_of_range"),
    ("missing_user", f",100,10,pv,{TB}".encode(), "missing_field:user_id"),
    ("blank", b"", BLANK),
    ("whitespace", b" \t", BLANK),
]


@pytest.fixture(scope="module")
def taobao_run(spark, tmp_path_factory) -> tuple[str, str, IngestResult]:
    root = tmp_path_factory.mktemp("hostile_taobao")
    source = root / "UserBehavior.csv"
    _write_lines(source, TAOBAO_CASES)
    lake = str(root / "lake")
    return lake, str(source), run_ingest(spark, lake, str(source), "taobao", skip_checks=True, now=NOW)


def test_taobao_every_line_gets_its_exact_reason(spark, taobao_run):
    lake, _, result = taobao_run
    records = _records(TAOBAO_CASES)
    expected_q = Counter(
        (_expected_raw(line, reason), reason)
        for _, line, reason in records
        if reason not in (ACCEPTED, DUPLICATE)
    )
    assert _quarantine(spark, lake) == expected_q
    assert result.reasons == _reasons(TAOBAO_CASES)
    assert (result.rows_read, result.accepted, result.duplicates_in_batch, result.blank_lines) == (
        len(records),
        3,
        1,
        2,
    )
    assert result.reconciled and result.rows_read == result.accepted + result.quarantined + result.duplicates
    _assert_nothing_bad_accepted(spark, lake)
    users = sorted(r.user_id for r in lk.read_table(spark, lake, tables.EVENTS).collect())
    assert users == ["1", "2", "3"]
    decoded = {
        base64.b64decode(r.raw.removeprefix(RAW_BASE64_PREFIX), validate=True)
        for r in lk.read_table(spark, lake, tables.EVENTS_QUARANTINE)
        .filter("reason = 'bad_encoding'")
        .collect()
    }
    assert decoded == {line for _, line, reason in TAOBAO_CASES if reason == "bad_encoding"}


def test_taobao_rerun_changes_nothing(spark, taobao_run):
    lake, source, first = taobao_run
    _assert_rerun_changes_nothing(spark, lake, source, "taobao", first)


# ----------------------------------------------------------------------------------------- Parquet


def _parquet(path: Path, columns: dict[str, pa.Array]) -> None:
    pq.write_table(pa.Table.from_arrays(list(columns.values()), names=list(columns)), path)


def _good_timestamp_file(path: Path, ids: list[str]) -> None:
    """Rows with a TIMESTAMP event_time and a DOUBLE price."""
    n = len(ids)
    _parquet(
        path,
        {
            "event_id": pa.array(ids),
            "user_id": pa.array([f"u-{i}" for i in ids]),
            "event_type": pa.array(["view"] * n),
            "event_time": pa.array([datetime(2026, 3, 1, 10, 0)] * n, pa.timestamp("us", tz="UTC")),
            "price": pa.array([10.5] * n),
        },
    )


def _wrong_file(path: Path, **override: pa.Array) -> None:
    columns = {
        "event_id": pa.array(["w1"]),
        "user_id": pa.array(["u-w1"]),
        "event_type": pa.array(["view"]),
        "event_time": pa.array([T]),
    }
    columns.update(override)
    _parquet(path, {k: v for k, v in columns.items() if v is not None})


def _corrupt_page_file(path: Path, prefix: str) -> None:
    """A good footer over a corrupt page: the bytes of ``user_id``'s dictionary page body flipped
    (its page header and the footer intact, so only reading the values fails)."""
    _good_timestamp_file(path, [f"{prefix}{i}" for i in range(40)])
    column = pq.ParquetFile(path).metadata.row_group(0).column(1)
    assert column.path_in_schema == "user_id" and column.dictionary_page_offset is not None
    data = bytearray(path.read_bytes())
    for i in range(column.dictionary_page_offset + 40, column.data_page_offset - 2):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))
    assert pq.read_metadata(path).num_rows == 40  # the footer still reads


# file name -> expected: ACCEPTED (a good file) or its file-level reason
PARQUET_FILES: dict[str, str] = {
    "good_a.parquet": ACCEPTED,
    "good b [1].parquet": ACCEPTED,  # a space and glob characters in the name, another schema
    "good_c.parquet": ACCEPTED,
    "corrupt.parquet": "unreadable_file",
    "empty.parquet": "unreadable_file",
    "truncated.parquet": "unreadable_file",
    "corrupt_page.parquet": "unreadable_file",  # footer fine, a page not: found by the batch read
    "corrupt_page_2.parquet": "unreadable_file",  # a second one: the batch is read three times
    "no_user_id.parquet": "bad_schema:missing_column:user_id",
    "struct_user_id.parquet": "bad_schema:bad_type:user_id",
    "list_sku_id.parquet": "bad_schema:bad_type:sku_id",
    "binary_user_id.parquet": "bad_schema:bad_type:user_id",
    "duplicate_columns.parquet": "bad_schema:unsupported",
}


@pytest.fixture(scope="module")
def parquet_run(spark, tmp_path_factory) -> tuple[str, Path, IngestResult]:
    root = tmp_path_factory.mktemp("hostile_parquet")
    folder = root / "landing"
    folder.mkdir()
    _good_timestamp_file(folder / "good_a.parquet", ["pa1", "pa2"])
    _parquet(  # string event_time, int quantity; one bad row (unknown channel)
        folder / "good b [1].parquet",
        {
            "event_id": pa.array(["pb1", "pb2"]),
            "user_id": pa.array(["u-pb1", "u-pb2"]),
            "event_type": pa.array(["order", "view"]),
            "event_time": pa.array([T, T]),
            "quantity": pa.array([2, 1], pa.int32()),
            "channel": pa.array(["app", "tv"]),
        },
    )
    _good_timestamp_file(folder / "good_c.parquet", ["pa1", "pc1"])  # pa1 again: same content
    (folder / "corrupt.parquet").write_bytes(b"PAR1 this is not parquet at all PAR1")
    (folder / "empty.parquet").write_bytes(b"")
    (folder / "truncated.parquet").write_bytes((folder / "good_a.parquet").read_bytes()[:-20])
    _corrupt_page_file(folder / "corrupt_page.parquet", "pz")
    _corrupt_page_file(folder / "corrupt_page_2.parquet", "py")
    _wrong_file(folder / "no_user_id.parquet", user_id=None)
    _wrong_file(folder / "struct_user_id.parquet", user_id=pa.array([{"id": "u"}]))
    _wrong_file(folder / "list_sku_id.parquet", sku_id=pa.array([["s1", "s2"]]))
    _wrong_file(folder / "binary_user_id.parquet", user_id=pa.array([b"u-w1"], pa.binary()))
    pq.write_table(
        pa.Table.from_arrays(
            [pa.array(["w1"]), pa.array(["u"]), pa.array(["U"]), pa.array(["view"]), pa.array([T])],
            names=["event_id", "user_id", "USER_ID", "event_type", "event_time"],
        ),
        folder / "duplicate_columns.parquet",
    )
    (folder / "notes.txt").write_text("not a parquet file: not listed")
    (folder / ".hidden.parquet").write_bytes(b"hidden files are not input")
    (folder / "_SUCCESS").write_bytes(b"")
    listed = sorted(p.name for p in folder.glob("*.parquet") if not p.name.startswith("."))
    assert listed == sorted(PARQUET_FILES)
    lake = str(root / "lake")
    return lake, folder, run_ingest(spark, lake, str(folder), "parquet", skip_checks=True, now=NOW)


def _uri(path: Path) -> str:
    """How Spark names a local file in ``_metadata.file_path`` (Hadoop's Path.toUri)."""
    return "file:" + quote(str(path))


def test_parquet_bad_files_are_quarantined_and_the_others_ingested(spark, parquet_run):
    lake, folder, result = parquet_run
    bad = {name: reason for name, reason in PARQUET_FILES.items() if reason != ACCEPTED}
    assert (result.files, result.files_ingested, result.files_quarantined) == (13, 3, 10)
    assert result.file_reasons == dict(Counter(bad.values()))
    assert result.reconciled and result.files == result.files_ingested + result.files_quarantined
    q = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE)
    file_rows = {r.source_file: r for r in q.filter("event_id IS NULL").collect()}
    assert {src: r.reason for src, r in file_rows.items()} == {
        _uri(folder / name): reason for name, reason in bad.items()
    }
    raw = {src.rsplit("/", 1)[1]: r.raw for src, r in file_rows.items()}
    assert raw["empty.parquet"].startswith("java.lang.RuntimeException: ") and (
        "is not a Parquet file (length is too low: 0)" in raw["empty.parquet"]
    )
    # "PAR1" at both ends, garbage between: the footer length read before the last magic is nonsense
    assert raw["corrupt.parquet"].startswith("java.lang.RuntimeException: corrupted file: the footer index")
    assert "is not a Parquet file" in raw["truncated.parquet"]  # the magic number at the end is gone
    for name in ("corrupt_page.parquet", "corrupt_page_2.parquet"):  # the innermost error of the read
        assert raw[name] == "java.io.IOException: FAILED_TO_UNCOMPRESS(5)"  # snappy refused the page
    assert raw["no_user_id.parquet"] == "struct<event_id:string,event_type:string,event_time:string>"
    assert raw["struct_user_id.parquet"].startswith("struct<event_id:string,user_id:struct<id:string>")
    assert raw["duplicate_columns.parquet"].startswith("[COLUMN_ALREADY_EXISTS]")
    # rows: good_a pa1, pa2; good b pb1, pb2 (tv); good_c pa1 (duplicate), pc1
    assert (result.rows_read, result.accepted, result.duplicates_in_batch, result.quarantined) == (6, 4, 1, 1)
    assert result.reasons == {"unknown_channel:tv": 1}
    events = {r.event_id: r for r in lk.read_table(spark, lake, tables.EVENTS).collect()}
    assert sorted(events) == ["pa1", "pa2", "pb1", "pc1"]
    assert events["pb1"].source_file == _uri(folder / "good b [1].parquet") and events["pb1"].quantity == 2
    assert events["pa1"].event_time == datetime(2026, 3, 1, 10, 0) and events["pa1"].price == 10.5
    _assert_nothing_bad_accepted(spark, lake)


def test_parquet_run_record_and_cli_table_count_files(spark, parquet_run):
    from rich.console import Console

    from dmp.cli.ingest import reconciliation_table

    lake, _, result = parquet_run
    run = lk.read_table(spark, lake, tables.INGEST_RUNS).first()
    assert (run.files, run.files_ingested, run.files_quarantined, run.reconciled) == (13, 3, 10, True)
    assert dict(run.file_reasons) == result.file_reasons
    assert run.message.startswith("10 of 13 files quarantined")
    console = Console(width=200, record=True)
    console.print(reconciliation_table(result))
    text = console.export_text()
    assert "files 13 = 3 + 10" in text and "bad_schema:bad_type:user_id" in text


def test_parquet_rerun_changes_nothing(spark, parquet_run):
    lake, folder, first = parquet_run
    _assert_rerun_changes_nothing(spark, lake, str(folder), "parquet", first)


def test_parquet_folder_of_only_bad_files_records_them_and_writes_no_events(spark, tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.parquet").write_bytes(b"")
    _wrong_file(folder / "no_user_id.parquet", user_id=None)
    lake = str(tmp_path / "lake")
    result = run_ingest(spark, lake, str(folder), "parquet", skip_checks=True, now=NOW)
    assert (result.files, result.files_ingested, result.files_quarantined, result.rows_read) == (2, 0, 2, 0)
    assert result.file_reasons == {"unreadable_file": 1, "bad_schema:missing_column:user_id": 1}
    assert result.reconciled and result.quarantine_new == 2
    assert lk.read_table(spark, lake, tables.EVENTS).count() == 0


def test_jsonl_truncated_or_corrupt_gzip_files_are_quarantined_and_the_others_ingested(spark, tmp_path):
    """A .gz that does not decompress to its end would fail the whole batch when Spark reads it:
    it becomes one quarantine row naming the file (``unreadable_file``), and the others load."""
    folder = tmp_path / "gz"
    folder.mkdir()
    good = b"".join(_json(f"g{i}") + b"\n" for i in range(3))
    (folder / "good.jsonl.gz").write_bytes(gzip.compress(good, mtime=0))
    (folder / "plain.jsonl").write_bytes(_json("p1") + b"\n")
    whole = gzip.compress(b"".join(_json(f"t{i}", user_id=f"u{i}") + b"\n" for i in range(300)), mtime=0)
    (folder / "truncated.jsonl.gz").write_bytes(whole[: len(whole) // 2])
    (folder / "not_gzip.jsonl.gz").write_bytes(_json("n1") + b"\n")
    bad_crc = bytearray(gzip.compress(good, mtime=0))
    bad_crc[-8] ^= 0xFF  # the trailer's CRC-32 no longer matches the content
    (folder / "bad_crc.jsonl.gz").write_bytes(bytes(bad_crc))
    lake = str(tmp_path / "lake")
    result = run_ingest(spark, lake, str(folder), "jsonl", skip_checks=True, now=NOW)
    assert (result.files, result.files_ingested, result.files_quarantined) == (5, 2, 3)
    assert result.file_reasons == {"unreadable_file": 3}
    assert (result.rows_read, result.accepted, result.quarantined) == (4, 4, 0) and result.reconciled
    events = sorted(r.event_id for r in lk.read_table(spark, lake, tables.EVENTS).collect())
    assert events == ["g0", "g1", "g2", "p1"]
    q = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).filter("event_id IS NULL").collect()
    raw = {r.source_file.rsplit("/", 1)[1]: (r.reason, r.raw) for r in q}
    assert sorted(raw) == ["bad_crc.jsonl.gz", "not_gzip.jsonl.gz", "truncated.jsonl.gz"]
    assert {reason for reason, _ in raw.values()} == {"unreadable_file"}
    assert raw["truncated.jsonl.gz"][1] == "java.io.EOFException: Unexpected end of ZLIB input stream"
    assert raw["not_gzip.jsonl.gz"][1] == "java.util.zip.ZipException: Not in GZIP format"
    assert raw["bad_crc.jsonl.gz"][1] == "java.util.zip.ZipException: Corrupt GZIP trailer"
    _assert_rerun_changes_nothing(spark, lake, str(folder), "jsonl", result)
