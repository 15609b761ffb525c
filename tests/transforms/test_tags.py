"""Tags on a hand-made history with known answers (tests.support.factories.TAG_ROWS), per transform.

The snapshot here takes the per-day path (per-user-day sums and per-day scores summed over 30
days); the full rebuild's one-aggregation shortcuts and the incremental state must equal it.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import LIFECYCLE_STAGES, TagConfig, load_tag_config
from dmp.spark.schemas import EVENTS, USER_TAGS
from dmp.steps.quality import suite_path
from dmp.transforms.aggregate import build_user_daily
from dmp.transforms.tag_state import (
    WINDOW_LENGTHS,
    daily_affinity,
    daily_user_metrics,
    full_affinity,
    full_state,
    full_state_with_scores,
    history_sums,
    incremental_input_days,
    incremental_state,
    ranked_scores,
    window_affinity,
    with_scores,
)
from dmp.transforms.tags import build_user_tags
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
    make_event,
)


def snapshot(spark, as_of: date, config: TagConfig | None = None) -> DataFrame:
    cfg = config or TagConfig()
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    # the per-day path (sums + per-day scores summed over 30 days), not the full rebuild's shortcut
    sums = full_state(daily_user_metrics(daily), as_of)
    maps = ranked_scores(full_affinity(daily_affinity(daily, cfg.weights), as_of))
    return build_user_tags(with_scores(sums, maps), as_of, cfg)


@pytest.fixture(scope="module")
def tags_t(spark) -> DataFrame:
    return snapshot(spark, T).persist()


def test_snapshot_has_exactly_the_contract_columns_and_users(tags_t):
    assert tags_t.schema.fieldNames() == USER_TAGS.fieldNames()
    assert [f.dataType for f in tags_t.schema] == [f.dataType for f in USER_TAGS]
    assert {r.as_of_date for r in tags_t.collect()} == {T}


def test_rfm_tags(tags_t):
    check(tags_t, RFM, EXPECTED_RFM)


def test_activity_window_tags(tags_t):
    check(tags_t, ACTIVITY, EXPECTED_ACTIVITY)


def test_lifecycle_and_consumption_level(tags_t):
    check(tags_t, STAGES, EXPECTED_STAGES)


def test_top_ids_by_weighted_score_with_id_tie_break(tags_t):
    check(tags_t, TOPS, EXPECTED_TOPS)


def test_config_overrides_thresholds_and_weights(spark, tmp_path: Path):
    cfg_file = tmp_path / "tags.yaml"
    # new only within 3 days; views weigh more than carts now: ub's 3 C06 views (30) beat its cart (1)
    cfg_file.write_text("lifecycle: {new_days: 3}\ntop_n: 1\nweights: {view: 10, cart_add: 1}\n")
    cfg = load_tag_config(cfg_file)
    assert cfg.state_fingerprint() != TagConfig().state_fingerprint()
    got = snapshot(spark, T, cfg).filter(F.col("user_id").isin("ub", "ug", "uh"))
    expected = [("ub", "active", ["C06"]), ("ug", "active", ["C01"]), ("uh", "new", ["C01"])]
    schema = StructType(
        [
            StructField("user_id", StringType()),
            StructField("lifecycle_stage", StringType()),
            StructField("top_category_ids", ArrayType(StringType())),
        ]
    )
    check(got, schema, expected)


def test_bad_config_names_file_and_field(tmp_path: Path):
    cfg_file = tmp_path / "bad.yaml"
    cfg_file.write_text("lifecycle: {active_days: 100, churn_days: 90}\nweights: {view: 0}\n")
    with pytest.raises(DmpError) as err:
        load_tag_config(cfg_file)
    msg = str(err.value)
    assert str(cfg_file) in msg and "weights.view" in msg and "churn_days" in msg


@pytest.mark.parametrize("as_of", [T, d(29), d(30), d(60)])
def test_window_affinity_equals_the_per_day_path(spark, as_of: date) -> None:
    """The full rebuild's one-aggregation affinity gives exactly the per-day path's 30-day scores."""
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    weights = TagConfig().weights
    direct = window_affinity(daily, weights, as_of)
    per_day = full_affinity(daily_affinity(daily, weights), as_of)
    assert direct.count() > 0
    assert_df_equality(direct, per_day, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("as_of", [T, d(6), d(30), d(89), T + timedelta(days=200)])
def test_history_sums_equal_the_per_user_day_path(spark, as_of: date) -> None:
    """The full rebuild's one-aggregation sums (active days by bitmask) equal the per-user-day path
    at window edges and long after the last event (every window empty)."""
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    direct = history_sums(daily, as_of)
    assert_df_equality(
        direct, full_state(daily_user_metrics(daily), as_of), ignore_row_order=True, ignore_nullable=True
    )
    if as_of > T:
        assert direct.filter("active_days_30d != 0 OR views_30d != 0 OR orders_90d != 0").count() == 0


def test_active_days_count_days_not_rows(spark) -> None:
    """Several user_daily rows on one day (one per store x brand x category) are one active day; the
    window's first day counts, the day before it does not."""
    rows = [
        make_event("a1", T, "ux", "view", "S001", "B001", "C01", None, None),
        make_event("a2", T, "ux", "view", "S002", "B002", "C02", None, None),
        make_event("a3", T, "ux", "cart_add", "S003", "B003", "C03", None, None),
        make_event("a4", d(29), "ux", "view", "S001", "B001", "C01", None, None),
        make_event("a5", d(30), "ux", "view", "S001", "B001", "C01", None, None),
    ]
    daily = build_user_daily(spark.createDataFrame(rows, EVENTS))
    assert daily.count() == 5
    row = history_sums(daily, T).first()
    assert (row["active_days_30d"], row["views_30d"], row["carts_30d"]) == (2, 3, 1)
    assert (row["first_seen_date"], row["last_active_date"], row["last_order_date"]) == (d(30), T, None)


@pytest.mark.parametrize("as_of", [T, d(30)])
def test_full_rebuild_state_equals_the_per_day_path(spark, as_of: date) -> None:
    """The full rebuild's state (sums + ranked scores) equals the per-day path's, and the scores are
    the hand-computed 30-day ones, ranked by score then id."""
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    weights = TagConfig().weights
    direct = full_state_with_scores(daily, as_of, weights)
    per_day = with_scores(
        full_state(daily_user_metrics(daily), as_of),
        ranked_scores(full_affinity(daily_affinity(daily, weights), as_of)),
    )
    assert_df_equality(
        comparable_state(direct), comparable_state(per_day), ignore_row_order=True, ignore_nullable=True
    )
    if as_of == T:

        def scores(user: str, column: str) -> list[tuple[str, int]]:
            row = direct.filter(F.col("user_id") == user).first()
            return [(e["id"], e["score"]) for e in row[column]]

        # ua: C01 = view 1 + order 5; C05's only view was on T-30, outside the window
        assert [i for i, _ in scores("ua", "category_scores")] == ["C01", "C03"]
        assert scores("ua", "category_scores")[0] == ("C01", 6)
        assert scores("ua", "brand_scores")[0] == ("B001", 10)  # 1 + 5 + 1 + 1 + 2
        # ub: cart C02 (3) ties three C06 views (3), ranked by id; then C04 and C05 with one view each
        assert scores("ub", "category_scores") == [("C02", 3), ("C06", 3), ("C04", 1), ("C05", 1)]
        assert scores("ud", "category_scores") == []


def test_incremental_input_days_are_today_and_each_window_s_leaving_day() -> None:
    assert WINDOW_LENGTHS == (7, 30, 90)
    assert incremental_input_days(T) == [T, d(7), d(30), d(90)]


def test_one_incremental_step_equals_the_per_day_path(spark) -> None:
    """state(T-1) + the days entering and leaving the windows at T = the state computed at T."""
    daily = build_user_daily(spark.createDataFrame(TAG_ROWS, EVENTS))
    weights = TagConfig().weights
    previous = full_state_with_scores(daily, d(1), weights)
    stepped = incremental_state(previous, daily, T, weights)
    assert_df_equality(
        comparable_state(stepped),
        comparable_state(full_state_with_scores(daily, T, weights)),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_lifecycle_stages_are_the_gold_suite_s_value_set() -> None:
    suite = json.loads(suite_path("gold_user_tags").read_text())
    value_sets = [
        e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["kwargs"].get("column") == "lifecycle_stage" and "value_set" in e["kwargs"]
    ]
    assert value_sets == [list(LIFECYCLE_STAGES)]
