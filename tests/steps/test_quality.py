from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.contracts.errors import DmpError, QualityGateError
from dmp.spark import lake as lk
from dmp.spark.schemas import EVENTS, USER_TAGS
from dmp.steps import quality
from dmp.steps.quality import SUITES, build_suite, run_gate, validate_table
from dmp.transforms.aggregate import build_user_daily
from tests.support.factories import D1, EVENT_ROWS, make_event


def test_every_suite_file_loads_with_all_its_expectations():
    for suite in SUITES:
        raw = json.loads(quality.suite_path(suite).read_text())
        built = build_suite(suite)
        assert built.name == suite
        assert len(built.expectations) == len(raw["expectations"]) > 0


def test_bronze_gate_passes_on_good_events(spark):
    run_gate(spark.createDataFrame(EVENT_ROWS, EVENTS), "bronze_events")


def test_bronze_gate_failure_names_expectation_column_and_values(spark):
    bad = [
        *EVENT_ROWS[:3],
        make_event("e50", D1, "u1", "teleport"),
        make_event("e51", D1, "u1", "order", price=-5.0, quantity=1),
        make_event("e01", D1, "u1", "view"),  # duplicate event_id
    ]
    with pytest.raises(QualityGateError) as err:
        run_gate(spark.createDataFrame(bad, EVENTS), "bronze_events")
    msg = str(err.value)
    assert "failed 3 of 8" in msg
    assert "expect_column_values_to_be_in_set on column 'event_type'" in msg and "'teleport'" in msg
    assert "expect_column_values_to_be_between on column 'price'" in msg and "-5.0" in msg
    assert "expect_column_values_to_be_unique on column 'event_id'" in msg and "'e01'" in msg
    assert "channel" not in msg  # passing expectations are not reported


def test_validate_table_passes_on_silver_and_fails_on_bad_gold(spark, lake):
    daily = build_user_daily(spark.createDataFrame(EVENT_ROWS, EVENTS))
    lk.overwrite_partitions(
        daily, lake, tables.USER_DAILY, ["event_date"], lk.replace_where_condition("event_date", [D1])
    )
    assert validate_table(spark, lake, "silver/user_daily", [D1]) == (5, "silver_user_daily")

    as_of = date(2026, 3, 1)
    row = [
        "u1",
        as_of,
        None,
        as_of,
        None,
        None,
        0,
        0.0,
        None,
        0,
        0,
        0,
        0,
        "zombie",
        [],
        [],
        [],
        7,
        None,
        False,
    ]
    tags = spark.createDataFrame(
        [tuple(row), tuple(["u2", *row[1:13], "new", [], [], [], 0, None, False])], USER_TAGS
    )
    lk.overwrite_partitions(
        tags, lake, tables.USER_TAGS, ["as_of_date"], lk.replace_where_condition("as_of_date", [as_of])
    )
    with pytest.raises(QualityGateError) as err:
        validate_table(spark, lake, "gold/user_tags", [as_of])
    msg = str(err.value)
    assert "lifecycle_stage" in msg and "'zombie'" in msg
    assert "consumption_level" in msg and "[7]" in msg
    assert "'u2'" not in msg


def test_validate_table_rejects_unknown_table_and_empty_dates(spark, lake):
    with pytest.raises(DmpError, match="expected one of"):
        validate_table(spark, lake, "gold/nope", [D1])
    with pytest.raises(DmpError, match="does not exist"):
        validate_table(spark, lake, "silver/user_daily", [D1])


def test_broken_suite_file_is_an_error_naming_the_file(tmp_path: Path, monkeypatch):
    (tmp_path / "bronze_events.json").write_text(
        json.dumps({"name": "bronze_events", "expectations": [{"type": "expect_magic", "kwargs": {}}]})
    )
    monkeypatch.setattr(quality, "EXPECTATIONS_DIR", tmp_path)
    with pytest.raises(DmpError, match=r"bronze_events\.json: expectations\[0\] \(expect_magic\)"):
        build_suite("bronze_events")
    with pytest.raises(DmpError, match="not found"):
        build_suite("gold_user_tags")
