"""The tags step on a temp lake: the incremental chain equals the full rebuild and the hand answers."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import TagConfig
from dmp.spark import lake as lk
from dmp.spark.schemas import EVENTS
from dmp.steps.tags import run_tags
from dmp.transforms.aggregate import build_user_daily
from dmp.transforms.tag_state import SCORE_COLUMNS, daily_user_metrics, full_state
from tests.support.factories import (
    ACTIVITY,
    EXPECTED_ACTIVITY,
    EXPECTED_RFM,
    EXPECTED_STAGES,
    EXPECTED_TOPS,
    RFM,
    STAGES,
    TAG_ROWS,
    TOPS,
    T,
    check,
    comparable_state,
    d,
    delta_file_stats,
    write_events,
    write_user_daily,
)


def _read(spark, lake: str, table: str, day: date) -> DataFrame:
    return lk.read_table(spark, lake, table).filter(F.col("as_of_date") == day)


def test_incremental_chain_equals_full_rebuild_and_hand_answers(spark, lake, tmp_path: Path):
    # The chain starts (full, no state yet) at T-2 and runs incrementally to T, so the window-edge
    # events (T-7 cart/order, T-30 view, T-90 order/coupon) leave their windows inside the chain.
    full_lake = str(tmp_path / "full_lake")
    cfg = TagConfig()
    events_df = write_events(spark, lake, TAG_ROWS)
    daily = build_user_daily(events_df)
    days = sorted({r[2] for r in TAG_ROWS})
    for root in (lake, full_lake):
        write_user_daily(root, daily, days)

    first = run_tags(spark, lake, d(2), cfg, skip_checks=True)
    assert first.mode == "full" and "first run" in first.reason
    modes = [run_tags(spark, lake, day, cfg, skip_checks=True).mode for day in (d(1), T)]
    assert modes == ["incremental", "incremental"]
    rerun = run_tags(spark, lake, T, cfg, skip_checks=True)  # idempotent rerun of the same day
    assert rerun.mode == "incremental" and rerun.users == 7

    full = run_tags(spark, full_lake, T, cfg, full=True)  # this one also runs the gold gate
    assert full.mode == "full" and "--full" in full.reason
    for table in (tables.USER_TAG_STATE, tables.USER_TAGS):
        assert_df_equality(
            comparable_state(_read(spark, lake, table, T)),
            comparable_state(_read(spark, full_lake, table, T)),
            ignore_row_order=True,
        )
    assert lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == T).count() == 7

    # both tables keep file statistics on user_id only (lake.STATS_COLUMNS), row counts included
    for table in (tables.USER_TAG_STATE, tables.USER_TAGS):
        props = {
            r["key"]: r["value"]
            for r in spark.sql(f"SHOW TBLPROPERTIES delta.`{tables.table_path(lake, table)}`").collect()
        }
        assert props.get("delta.dataSkippingStatsColumns") == "user_id", table
        stats = delta_file_stats(tables.table_path(lake, table))
        assert stats and all(set(st["minValues"]) == {"user_id"} for st in stats), table
        assert all(st["numRecords"] > 0 for st in stats), table

    chain_t = _read(spark, lake, tables.USER_TAGS, T)
    check(chain_t, RFM, EXPECTED_RFM)
    check(chain_t, ACTIVITY, EXPECTED_ACTIVITY)
    check(chain_t, STAGES, EXPECTED_STAGES)
    check(chain_t, TOPS, EXPECTED_TOPS)


def test_tags_refuse_a_day_whose_aggregates_are_missing(spark, lake):
    write_events(spark, lake, TAG_ROWS)
    write_user_daily(
        lake, build_user_daily(spark.createDataFrame(TAG_ROWS[:3], EVENTS)), [d(100), d(95), d(89)]
    )
    with pytest.raises(DmpError, match=f"dmp aggregate --date {T}"):
        run_tags(spark, lake, T, TagConfig(), skip_checks=True)


def test_state_from_an_older_format_is_rebuilt_not_read(spark, lake):
    """A user_tag_state written by the previous format (no score columns, v1 fingerprint) must not be
    read as yesterday's state: the run falls back to a full rebuild, the table gains the score columns
    (mergeSchema) and the snapshot equals the hand answers."""
    write_events(spark, lake, TAG_ROWS)
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    write_user_daily(lake, daily, sorted({r[2] for r in TAG_ROWS}))
    old = (
        full_state(daily_user_metrics(daily), d(1))
        .withColumn("as_of_date", F.lit(d(1)).cast("date"))
        .withColumn("state_fingerprint", F.lit("v1-fingerprint00"))
    )
    lk.overwrite_partitions(
        old, lake, tables.USER_TAG_STATE, ["as_of_date"], lk.replace_where_condition("as_of_date", [d(1)])
    )

    res = run_tags(spark, lake, T, TagConfig(), skip_checks=True)
    assert res.mode == "full" and "older state format" in res.reason
    state_cols = lk.read_table(spark, lake, tables.USER_TAG_STATE).columns
    assert set(SCORE_COLUMNS.values()) <= set(state_cols)
    tags_t = _read(spark, lake, tables.USER_TAGS, T)
    check(tags_t, RFM, EXPECTED_RFM)
    check(tags_t, TOPS, EXPECTED_TOPS)
    # and the next day goes incremental from the new-format state
    assert run_tags(spark, lake, T + timedelta(days=1), TagConfig(), skip_checks=True).mode == "incremental"
