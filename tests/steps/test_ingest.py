"""Ingest: every bad record quarantined with its reason, counts reconcile, reruns are no-ops.

Fixtures are hand-made files in tests/data/ingest (expected numbers worked out by hand in comments).
"""

from __future__ import annotations

import hashlib
import importlib.util
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.steps.ingest import run_ingest
from dmp.steps.ingest_runs import IngestResult
from tests.conftest import REPO_ROOT, TAOBAO_SAMPLE

DATA = REPO_ROOT / "tests" / "data" / "ingest"
GEN = DATA / "gen"
DAY1 = GEN / "events" / "event_date=2026-03-01" / "part-00000.jsonl"
DAY2 = GEN / "events" / "event_date=2026-03-02" / "part-00000.jsonl"
NOW = datetime(2026, 3, 10, tzinfo=UTC)  # fixed "ingest time": the 2027 event is in the future

# Day 1 file: 18 records + 1 blank line; day 2: 5 records.
ALL_REASONS = {
    "malformed_json": 2,  # truncated line, `[1, 2]`
    "missing_field:user_id": 1,  # e5
    "missing_field:event_id": 1,
    "missing_field:event_type": 1,  # e22 (day 2)
    "unknown_event_type:teleport": 1,  # e6
    "bad_timestamp": 1,  # e7 "yesterday"
    "future_timestamp": 1,  # e8 2027-01-01
    "timestamp_out_of_range": 1,  # e9 1999-12-31 < 2000-01-01
    "bad_price": 1,  # e10 "12,50"
    "negative_price": 1,  # e11 -5
    "bad_quantity": 1,  # e12 1.5
    "unknown_channel:tv": 1,  # e13
    "duplicate_event_id_conflict": 2,  # e2 again with other content (day 1), e3 again (day 2)
}


def _ids(spark, lake: str, table: str = tables.EVENTS) -> list[str]:
    return sorted(r.event_id for r in lk.read_table(spark, lake, table).select("event_id").collect())


def _quarantine(spark, lake: str) -> list[tuple[str | None, str]]:
    rows = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).select("event_id", "reason").collect()
    return sorted(((r.event_id, r.reason) for r in rows), key=lambda t: (t[1], t[0] or ""))


def _versions(spark, lake: str) -> tuple[int | None, int | None]:
    return lk.table_version(spark, lake, tables.EVENTS), lk.table_version(
        spark, lake, tables.EVENTS_QUARANTINE
    )


@pytest.fixture(scope="module")
def gen_lake(spark, tmp_path_factory) -> tuple[str, IngestResult]:
    """The generator-shaped folder ingested once (both dates in one batch)."""
    lake = str(tmp_path_factory.mktemp("gen_lake"))
    return lake, run_ingest(spark, lake, str(GEN), "jsonl", skip_checks=True, now=NOW)


def test_every_bad_record_lands_in_quarantine_with_its_reason(spark, gen_lake):
    lake, result = gen_lake
    assert (result.files, result.rows_read, result.blank_lines) == (2, 23, 1)
    # e1 three times (one with price 129 instead of 129.0: same parsed content) -> 1 accepted + 2 duplicates
    assert (result.accepted, result.quarantined, result.duplicates_in_batch, result.duplicates_in_lake) == (
        6,
        15,
        2,
        0,
    )
    assert result.reasons == ALL_REASONS
    assert result.reconciled and result.rows_read == 6 + 15 + 2
    assert _ids(spark, lake) == ["e1", "e14", "e2", "e20", "e21", "e3"]
    assert _quarantine(spark, lake) == [
        ("e10", "bad_price"),
        ("e12", "bad_quantity"),
        ("e7", "bad_timestamp"),
        ("e2", "duplicate_event_id_conflict"),
        ("e3", "duplicate_event_id_conflict"),
        ("e8", "future_timestamp"),
        (None, "malformed_json"),
        (None, "malformed_json"),
        (None, "missing_field:event_id"),
        ("e22", "missing_field:event_type"),
        ("e5", "missing_field:user_id"),
        ("e11", "negative_price"),
        ("e9", "timestamp_out_of_range"),
        ("e13", "unknown_channel:tv"),
        ("e6", "unknown_event_type:teleport"),
    ]
    q = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE)
    raws = {r.raw for r in q.filter(F.col("reason") == "malformed_json").collect()}
    assert raws == {'{"event_id": "e4", "event_time": ', "[1, 2]"}
    # the conflicting copy of e2 (u9, 13:00) is what was quarantined; the earlier e2 (u2) won
    conflict = q.filter(F.col("event_id") == "e2").first()
    assert '"user_id": "u9"' in conflict.raw and conflict.source_file.endswith(
        "event_date=2026-03-01/part-00000.jsonl"
    )
    assert {(r.ingest_date, r.ingested_at) for r in q.collect()} == {
        (date(2026, 3, 10), datetime(2026, 3, 10))
    }


def test_types_are_coerced_from_iso_epoch_and_numeric_strings(spark, gen_lake):
    lake, _ = gen_lake
    rows = {r.event_id: r for r in lk.read_table(spark, lake, tables.EVENTS).collect()}
    assert rows["e1"].event_time == datetime(2026, 3, 1, 10, 0) and rows["e1"].price == 129.0
    assert rows["e2"].event_time == datetime(2026, 3, 1, 10, 0)  # epoch seconds 1772359200
    assert (rows["e2"].user_id, rows["e2"].price, rows["e2"].quantity) == ("u2", 59.5, 2)  # "59.5", "2"
    assert rows["e3"].event_time == datetime(2026, 3, 1, 11, 0)  # epoch ms 1772362800000
    assert rows["e3"].event_type == "cart_add" and rows["e3"].channel == "mini_program"
    e14 = rows["e14"]  # 18:30+08:00, user " u4 " trimmed, nulls kept
    assert (e14.event_time, e14.event_date, e14.user_id) == (
        datetime(2026, 3, 1, 10, 30),
        date(2026, 3, 1),
        "u4",
    )
    assert (e14.coupon_id, e14.price, e14.quantity, e14.sku_id) == ("CP1", None, None, None)
    assert rows["e1"].event_date == date(
        2026, 3, 1
    )  # e1 also came in the 2026-03-02 folder: dated by its time
    assert rows["e21"].source_file.endswith("event_date=2026-03-02/part-00000.jsonl")
    first = lk.read_table(spark, lake, tables.INGEST_RUNS).filter(F.col("accepted") > 0).collect()[0]
    assert (first.rows_read, first.accepted, first.quarantined, first.duplicates) == (23, 6, 15, 2)
    assert dict(first.reasons) == ALL_REASONS and first.reconciled and first.status == "ok"


def test_rerun_of_the_same_input_changes_nothing(spark, gen_lake):
    lake, _ = gen_lake
    before = _versions(spark, lake)
    quarantine_before = _quarantine(spark, lake)
    again = run_ingest(spark, lake, str(GEN), "jsonl", skip_checks=True, now=NOW)
    assert _versions(spark, lake) == before
    assert _quarantine(spark, lake) == quarantine_before
    assert lk.read_table(spark, lake, tables.EVENTS).count() == 6
    # every valid row is now a duplicate of itself in the lake: e1 x3, e2, e3, e14, e20, e21
    assert (again.rows_read, again.accepted, again.duplicates_in_lake, again.duplicates_in_batch) == (
        23,
        0,
        8,
        0,
    )
    assert (again.quarantined, again.quarantine_new, again.reasons) == (15, 0, ALL_REASONS)
    assert again.reconciled


def test_dates_one_run_at_a_time_dedupe_across_runs(spark, lake):
    day1 = run_ingest(
        spark, lake, str(GEN / "events"), "jsonl", [date(2026, 3, 1)], skip_checks=True, now=NOW
    )
    # 18 records: e1, e2, e3, e14 new; second e1 a duplicate; 12 bad + the e2 conflict
    assert (day1.rows_read, day1.accepted, day1.duplicates_in_batch, day1.quarantined) == (18, 4, 1, 13)
    day2 = run_ingest(spark, lake, str(GEN), "jsonl", [date(2026, 3, 2)], skip_checks=True, now=NOW)
    # e20, e21 new; e1 already in the lake (same content); e3 taken by other content; e22 no event_type
    assert (day2.rows_read, day2.accepted, day2.duplicates_in_lake, day2.quarantined) == (5, 2, 1, 2)
    assert day2.reasons == {"duplicate_event_id_conflict": 1, "missing_field:event_type": 1}
    before = _versions(spark, lake)
    rerun = run_ingest(spark, lake, str(GEN), "jsonl", [date(2026, 3, 1)], skip_checks=True, now=NOW)
    assert _versions(spark, lake) == before
    assert (
        rerun.rows_read,
        rerun.accepted,
        rerun.duplicates_in_lake,
        rerun.quarantined,
        rerun.quarantine_new,
    ) == (
        18,
        0,
        5,
        13,
        0,
    )
    assert _ids(spark, lake) == ["e1", "e14", "e2", "e20", "e21", "e3"]
    assert len(_quarantine(spark, lake)) == 15
    runs = lk.read_table(spark, lake, tables.INGEST_RUNS).orderBy("finished_at").collect()
    assert [(r.dates, r.accepted) for r in runs] == [
        ([date(2026, 3, 1)], 4),
        ([date(2026, 3, 2)], 2),
        ([date(2026, 3, 1)], 0),
    ]


def test_single_file_with_date_processes_that_dates_rows_and_undatable_ones(spark, lake):
    src = str(DATA / "mixed_days.jsonl")
    d2 = run_ingest(spark, lake, src, "jsonl", [date(2026, 3, 2)], skip_checks=True, now=NOW)
    # m2 (epoch s), m3 on 03-02; m4 (bad time) and the malformed line cannot be dated -> in every run
    assert (d2.rows_read, d2.accepted, d2.quarantined, d2.out_of_scope) == (4, 2, 2, 2)
    assert d2.reasons == {"bad_timestamp": 1, "malformed_json": 1}
    d1 = run_ingest(spark, lake, src, "jsonl", [date(2026, 3, 1)], skip_checks=True, now=NOW)
    assert (d1.rows_read, d1.accepted, d1.quarantined, d1.quarantine_new, d1.out_of_scope) == (4, 1, 3, 1, 2)
    assert d1.reasons == {"bad_timestamp": 1, "malformed_json": 1, "unknown_event_type:jump": 1}
    assert _ids(spark, lake) == ["m1", "m2", "m3"]
    assert len(_quarantine(spark, lake)) == 3  # the undatable rows are stored once


def test_taobao_noise_file(spark, lake):
    result = run_ingest(spark, lake, str(DATA / "taobao_noise.csv"), "taobao", skip_checks=True)
    assert (result.rows_read, result.accepted, result.duplicates_in_batch, result.quarantined) == (8, 3, 1, 4)
    assert result.reasons == {
        "unknown_event_type:clk": 1,
        "bad_field_count:4": 1,
        "bad_timestamp": 1,
        "missing_field:user_id": 1,
    }
    rows = {r.user_id: r for r in lk.read_table(spark, lake, tables.EVENTS).collect()}
    assert {u: r.event_type for u, r in rows.items()} == {"1": "view", "2": "order", "6": "cart_add"}
    one = rows["1"]
    assert one.event_id == "tb-" + hashlib.sha256(b"1,100,10,pv,1511700000").hexdigest()[:32]
    assert (one.sku_id, one.category_id, one.event_time) == ("100", "10", datetime(2017, 11, 26, 12, 40))
    assert (one.store_id, one.brand_id, one.price, one.quantity, one.channel) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_taobao_sample_ingests_with_the_out_of_range_row_quarantined(spark, lake):
    # 4,321 real rows of 43 users. The dataset covers 2017-11-25 .. 2017-12-03 China time (UTC+8); one
    # row (user 1000169, 1505117799 = 2017-09-11 08:16:39 UTC) lies outside -> timestamp_out_of_range.
    result = run_ingest(spark, lake, str(TAOBAO_SAMPLE), "taobao")
    assert (result.rows_read, result.accepted, result.quarantined, result.duplicates) == (4321, 4320, 1, 0)
    assert result.reasons == {"timestamp_out_of_range": 1} and result.checks == "passed"
    q = lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).collect()
    assert [(r.raw, r.reason) for r in q] == [
        ("1000169,1328010,959452,pv,1505117799", "timestamp_out_of_range")
    ]
    events = lk.read_table(spark, lake, tables.EVENTS)
    by_type = {r.event_type: r["count"] for r in events.groupBy("event_type").count().collect()}
    assert by_type == {"view": 3925, "cart_add": 190, "favorite": 128, "order": 77}
    assert events.select("user_id").distinct().count() == 43
    by_day = {r.event_date: r["count"] for r in events.groupBy("event_date").count().collect()}
    # event_date is the UTC date: the first 8 hours of 2017-11-25 in China are 2017-11-24 in UTC
    assert (by_day[date(2017, 11, 24)], by_day[date(2017, 12, 3)], len(by_day)) == (52, 561, 10)
    before = _versions(spark, lake)
    again = run_ingest(spark, lake, str(TAOBAO_SAMPLE), "taobao", skip_checks=True)
    assert _versions(spark, lake) == before
    assert (again.accepted, again.duplicates_in_lake, again.quarantined, again.quarantine_new) == (
        0,
        4320,
        1,
        0,
    )


def test_parquet_input_goes_through_the_same_checks(spark, lake, tmp_path: Path):
    rows = [
        ("p1", datetime(2026, 3, 1, 10, 0), "u1", "view", "10.5", 1, "app"),
        ("p2", datetime(2026, 3, 1, 11, 0), "u2", "order", "abc", 2, "pc"),
        ("p3", datetime(2026, 3, 1, 12, 0), None, "view", None, None, "app"),
        ("p1", datetime(2026, 3, 1, 10, 0), "u1", "view", "10.50", 1, "app"),
    ]
    schema = "event_id string, event_time timestamp, user_id string, event_type string, price string, quantity long, channel string"
    spark.createDataFrame(rows, schema).coalesce(1).write.parquet(str(tmp_path / "pq"))
    result = run_ingest(spark, lake, str(tmp_path / "pq"), "parquet", skip_checks=True, now=NOW)
    assert (result.rows_read, result.accepted, result.duplicates_in_batch, result.quarantined) == (4, 1, 1, 2)
    assert result.reasons == {"bad_price": 1, "missing_field:user_id": 1}
    p1 = lk.read_table(spark, lake, tables.EVENTS).first()
    assert (p1.event_id, p1.event_time, p1.price, p1.quantity) == ("p1", datetime(2026, 3, 1, 10, 0), 10.5, 1)


def test_bad_source_and_arguments_give_clear_errors(spark, lake, tmp_path: Path):
    with pytest.raises(DmpError, match=r"--source .*nowhere: no such file or folder"):
        run_ingest(spark, lake, str(tmp_path / "nowhere"), "jsonl")
    with pytest.raises(DmpError, match=r"no input for 2026-04-01 .*event_date=2026-04-01/"):
        run_ingest(spark, lake, str(GEN), "jsonl", [date(2026, 4, 1)])
    with pytest.raises(DmpError, match="--format: expected one of jsonl, parquet, taobao"):
        run_ingest(spark, lake, str(GEN), "csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DmpError, match=r"no \*\.\{jsonl.* files found"):
        run_ingest(spark, lake, str(tmp_path / "empty"), "jsonl")


def test_reconciliation_flags_numbers_that_do_not_add_up():
    result = IngestResult(
        "r", "s", "jsonl", None, NOW, rows_read=10, accepted=5, quarantined=3, duplicates_in_batch=1
    )
    result.reasons = {"bad_price": 3}
    assert not result.reconciled  # 10 != 5 + 3 + 1
    result.duplicates_in_lake = 1
    assert result.reconciled
    result.reasons = {"bad_price": 2}
    assert not result.reconciled  # reasons must account for every quarantined row
    result.reasons = {"bad_price": 3}
    result.files = 4
    assert result.reconciled  # files_ingested None: the step does not count files apart
    result.files_ingested = 3
    assert not result.reconciled  # 4 != 3 + 0
    result.add_file_reasons(["unreadable_file"])
    assert result.reconciled and (result.files_quarantined, result.file_reasons) == (
        1,
        {"unreadable_file": 1},
    )
    result.file_reasons = {}
    assert not result.reconciled  # file reasons must account for every quarantined file


def test_run_record_of_an_older_lake_gains_the_file_columns(spark, lake):
    """ops/ingest_runs written before the file counts existed: the next run adds them, old rows read null."""
    from dmp.spark import schemas

    new_columns = {"files_ingested", "files_quarantined", "file_reasons"}
    old_schema = StructType([f for f in schemas.INGEST_RUNS_SCHEMA.fields if f.name not in new_columns])
    old = IngestResult("old-run", "s", "jsonl", None, NOW, files=1).as_row()
    lk.append_rows(
        spark, lake, tables.INGEST_RUNS, old_schema, [{k: old[k] for k in old_schema.fieldNames()}]
    )
    run_ingest(spark, lake, str(DAY2), "jsonl", skip_checks=True, now=NOW)
    runs = {r.run_id: r for r in lk.read_table(spark, lake, tables.INGEST_RUNS).collect()}
    assert set(runs["old-run"].asDict()) >= new_columns
    assert (runs["old-run"].files_ingested, runs["old-run"].files_quarantined) == (None, None)
    (new,) = [r for run_id, r in runs.items() if run_id != "old-run"]
    assert (new.files, new.files_ingested, new.files_quarantined, new.file_reasons) == (1, 1, 0, {})


def test_cli_and_job_entry_points(spark, lake):
    from typer.testing import CliRunner

    from dmp.cli import app

    # --from/--to on partitioned input reads several date folders in one batch
    args = ["ingest", "--source", str(GEN), "--from", "2026-03-01", "--to", "2026-03-02", "--lake", lake]
    out = CliRunner().invoke(app, [*args, "--skip-checks"])
    assert out.exit_code == 0, out.output
    assert "reconciled" in out.output and "23 = 6 + 15 + 2" in out.output
    spec = importlib.util.spec_from_file_location("ingest_job", REPO_ROOT / "jobs" / "ingest.py")
    assert spec and spec.loader
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    assert job.main(["--source", str(DAY2), "--lake", lake, "--date", "2026-02-30"]) == 1
    assert lk.read_table(spark, lake, tables.EVENTS).count() == 6
