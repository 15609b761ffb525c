"""The aggregate step on a temp lake: one partition per date, idempotent reruns, empty days."""

from __future__ import annotations

from datetime import timedelta

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark.schemas import USER_DAILY
from dmp.steps.aggregate import aggregate_day, aggregate_days
from tests.support.factories import (
    D1,
    D2,
    EVENT_ROWS,
    EXPECTED_D1,
    delta_file_stats,
    make_event,
    write_events,
)


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
