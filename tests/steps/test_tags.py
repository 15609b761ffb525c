"""Tags on a hand-made history with known answers, and incremental chain == full rebuild.

As-of date T. Window edges covered: 7 days (T-6 in, T-7 out), 30 days (T-29 in, T-30 out),
90 days (T-89 in, T-90 out).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import TagConfig, load_tag_config
from dmp.spark import lake as lk
from dmp.spark.schemas import EVENTS, USER_TAGS
from dmp.steps.aggregate import build_user_daily
from dmp.steps.tags import (
    SCORE_COLUMNS,
    USER_TAG_STATE,
    build_user_tags,
    daily_affinity,
    daily_user_metrics,
    full_affinity,
    full_state,
    full_state_with_scores,
    history_sums,
    ranked_scores,
    run_tags,
    window_affinity,
    with_scores,
)
from tests.steps.test_aggregate import delta_file_stats, make_event, write_events

T = date(2026, 6, 30)


def d(n: int) -> date:
    """T - n days."""
    return T - timedelta(days=n)


def ev(
    i: int, n: int, user: str, etype: str, store="S001", brand="B001", cat="C01", price=None, qty=None
) -> tuple:
    return make_event(f"e{i:03d}", d(n), user, etype, store, brand, cat, price, qty)


ROWS = [
    # ua: long-time buyer. order at T-95 is outside 90d, T-89 inside; view T-30 (C05) outside 30d, T-29 inside.
    ev(1, 100, "ua", "view"),
    ev(2, 95, "ua", "order", price=50.0, qty=1),
    ev(3, 89, "ua", "order", price=20.0, qty=1),
    ev(4, 30, "ua", "view", cat="C05"),
    ev(5, 29, "ua", "view"),
    ev(6, 10, "ua", "order", price=30.0, qty=2),
    ev(7, 5, "ua", "coupon_receive", cat=None),
    ev(8, 5, "ua", "coupon_receive", cat=None),
    ev(9, 3, "ua", "coupon_redeem", cat=None),
    ev(10, 1, "ua", "view", store="S101", brand="B101", cat="C03"),
    # ub: new, carted at T-6 (inside 7d), never ordered; top-id ties broken by id.
    ev(11, 6, "ub", "cart_add", store="S002", brand="B002", cat="C02", price=15.0),
    ev(12, 2, "ub", "view", store="S102", brand="B102", cat="C04"),
    ev(13, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(14, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(15, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(16, 2, "ub", "view", store="S101", brand="B101", cat="C05"),
    # uc: carted at T-7 (outside 7d): not an abandoner.
    ev(17, 40, "uc", "order", store="S002", brand="B002", cat="C02", price=5.0, qty=1),
    ev(18, 7, "uc", "cart_add", store="S002", brand="B002", cat="C02"),
    # ud: silent (last event 60 days ago).
    ev(19, 120, "ud", "view"),
    ev(20, 60, "ud", "order", price=100.0, qty=1),
    # ue: only activity at T-90, just outside every window: churned.
    ev(21, 90, "ue", "order", store="S101", brand="B101", cat="C03", price=7.5, qty=1),
    ev(22, 90, "ue", "coupon_receive", store="S101", brand="B101", cat=None),
    # ug: ordered at T-7 (outside 7d), carted today: abandoner; same spend as ua (tie).
    ev(23, 7, "ug", "order", price=80.0, qty=1),
    ev(24, 0, "ug", "cart_add"),
    ev(25, 1, "ug", "coupon_receive", cat=None),
    ev(26, 1, "ug", "coupon_receive", cat=None),
    ev(27, 1, "ug", "coupon_receive", cat=None),
    ev(28, 1, "ug", "coupon_receive", cat=None),
    ev(29, 0, "ug", "coupon_redeem", cat=None),
    # uh: first seen yesterday.
    ev(30, 1, "uh", "view"),
    # uf: only after T: not in T's snapshot.
    ev(31, -1, "uf", "view"),
]

RFM = StructType(
    [
        StructField("user_id", StringType()),
        StructField("first_seen_date", DateType()),
        StructField("last_active_date", DateType()),
        StructField("last_order_date", DateType()),
        StructField("recency_days", IntegerType()),
        StructField("frequency_90d", LongType()),
        StructField("monetary_90d", DoubleType()),
        StructField("avg_order_value_90d", DoubleType()),
    ]
)
EXPECTED_RFM = [
    ("ua", d(100), d(1), d(10), 10, 2, 80.0, 40.0),
    ("ub", d(6), d(2), None, None, 0, 0.0, None),
    ("uc", d(40), d(7), d(40), 40, 1, 5.0, 5.0),
    ("ud", d(120), d(60), d(60), 60, 1, 100.0, 100.0),
    ("ue", d(90), d(90), d(90), 90, 0, 0.0, None),
    ("ug", d(7), d(0), d(7), 7, 1, 80.0, 80.0),
    ("uh", d(1), d(1), None, None, 0, 0.0, None),
]

ACTIVITY = StructType(
    [
        StructField("user_id", StringType()),
        StructField("views_30d", LongType()),
        StructField("carts_30d", LongType()),
        StructField("orders_30d", LongType()),
        StructField("active_days_30d", IntegerType()),
        StructField("is_cart_abandoner", BooleanType()),
        StructField("coupon_sensitivity", DoubleType()),
    ]
)
EXPECTED_ACTIVITY = [
    ("ua", 2, 0, 1, 5, False, 0.5),  # active days: T-29, T-10, T-5, T-3, T-1
    ("ub", 5, 1, 0, 2, True, None),
    ("uc", 0, 1, 0, 1, False, None),
    ("ud", 0, 0, 0, 0, False, None),
    ("ue", 0, 0, 0, 0, False, None),  # its coupon_receive at T-90 is outside 90d
    ("ug", 0, 1, 1, 3, True, 0.25),
    ("uh", 1, 0, 0, 1, False, None),
]

STAGES = StructType(
    [
        StructField("user_id", StringType()),
        StructField("lifecycle_stage", StringType()),
        StructField("consumption_level", IntegerType()),
    ]
)
# spenders (cents): uc 500 (rank 1), ua 8000 and ug 8000 (rank 2, tie), ud 10000 (rank 4); n = 4:
# level = 1 + floor(5 * (rank - 1) / 4) -> uc 1, ua 2, ug 2, ud 4
EXPECTED_STAGES = [
    ("ua", "active", 2),
    ("ub", "new", 0),
    ("uc", "active", 1),
    ("ud", "silent", 4),
    ("ue", "churned", 0),
    ("ug", "new", 2),
    ("uh", "new", 0),
]

TOPS = StructType(
    [
        StructField("user_id", StringType()),
        StructField("top_category_ids", ArrayType(StringType())),
        StructField("top_brand_ids", ArrayType(StringType())),
        StructField("top_store_ids", ArrayType(StringType())),
    ]
)
# default weights: view 1, cart_add 3, order 5, coupon_receive 1, coupon_redeem 2
EXPECTED_TOPS = [
    ("ua", ["C01", "C03"], ["B001", "B101"], ["S001", "S101"]),  # C01 = 1 + 5; B001 = 1 + 5 + 1 + 1 + 2
    ("ub", ["C02", "C06", "C04"], ["B002", "B103", "B101"], ["S002", "S103", "S101"]),  # 3, 3, 1 (id order)
    ("uc", ["C02"], ["B002"], ["S002"]),
    ("ud", [], [], []),
    ("ue", [], [], []),
    ("ug", ["C01"], ["B001"], ["S001"]),
    ("uh", ["C01"], ["B001"], ["S001"]),
]


def snapshot(spark, as_of: date, config: TagConfig | None = None) -> DataFrame:
    cfg = config or TagConfig()
    daily = build_user_daily(spark.createDataFrame(ROWS, EVENTS))
    # the per-day path (sums + per-day scores summed over 30 days), not the full rebuild's shortcut
    sums = full_state(daily_user_metrics(daily), as_of)
    maps = ranked_scores(full_affinity(daily_affinity(daily, cfg.weights), as_of))
    return build_user_tags(with_scores(sums, maps), as_of, cfg)


@pytest.fixture(scope="module")
def tags_t(spark) -> DataFrame:
    return snapshot(spark, T).persist()


def check(df: DataFrame, schema: StructType, rows: list[tuple]) -> None:
    expected = df.sparkSession.createDataFrame(rows, schema)
    assert_df_equality(df.select(*schema.fieldNames()), expected, ignore_row_order=True, ignore_nullable=True)


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


def _read(spark, lake: str, table: str, day: date) -> DataFrame:
    return lk.read_table(spark, lake, table).filter(F.col("as_of_date") == day)


def _comparable(df: DataFrame) -> DataFrame:
    """The state's ranked score arrays as strings (chispa sorts rows by hashing array columns)."""
    for c in SCORE_COLUMNS.values():
        if c in df.columns:
            df = df.withColumn(c, F.to_json(c))
    return df


def test_incremental_chain_equals_full_rebuild_and_hand_answers(spark, lake, tmp_path: Path):
    # The chain starts (full, no state yet) at T-2 and runs incrementally to T, so the window-edge
    # events (T-7 cart/order, T-30 view, T-90 order/coupon) leave their windows inside the chain.
    full_lake = str(tmp_path / "full_lake")
    cfg = TagConfig()
    events_df = write_events(spark, lake, ROWS)
    daily = build_user_daily(events_df)
    days = sorted({r[2] for r in ROWS})
    for root in (lake, full_lake):
        lk.overwrite_partitions(
            daily, root, tables.USER_DAILY, ["event_date"], lk.replace_where_condition("event_date", days)
        )

    first = run_tags(spark, lake, d(2), cfg, skip_checks=True)
    assert first.mode == "full" and "first run" in first.reason
    modes = [run_tags(spark, lake, day, cfg, skip_checks=True).mode for day in (d(1), T)]
    assert modes == ["incremental", "incremental"]
    rerun = run_tags(spark, lake, T, cfg, skip_checks=True)  # idempotent rerun of the same day
    assert rerun.mode == "incremental" and rerun.users == 7

    full = run_tags(spark, full_lake, T, cfg, full=True)  # this one also runs the gold gate
    assert full.mode == "full" and "--full" in full.reason
    for table in (USER_TAG_STATE, tables.USER_TAGS):
        assert_df_equality(
            _comparable(_read(spark, lake, table, T)),
            _comparable(_read(spark, full_lake, table, T)),
            ignore_row_order=True,
        )
    assert lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == T).count() == 7

    # both tables keep file statistics on user_id only (lake.STATS_COLUMNS), row counts included
    for table in (USER_TAG_STATE, tables.USER_TAGS):
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
    write_events(spark, lake, ROWS)
    lk.overwrite_partitions(
        build_user_daily(spark.createDataFrame(ROWS[:3], EVENTS)),
        lake,
        tables.USER_DAILY,
        ["event_date"],
        lk.replace_where_condition("event_date", [d(100), d(95), d(89)]),
    )
    with pytest.raises(DmpError, match=f"dmp aggregate --date {T}"):
        run_tags(spark, lake, T, TagConfig(), skip_checks=True)


@pytest.mark.parametrize("as_of", [T, d(29), d(30), d(60)])
def test_window_affinity_equals_the_per_day_path(spark, as_of: date) -> None:
    """The full rebuild's one-aggregation affinity gives exactly the per-day path's 30-day scores."""
    daily = build_user_daily(spark.createDataFrame(ROWS, EVENTS))
    weights = TagConfig().weights
    direct = window_affinity(daily, weights, as_of)
    per_day = full_affinity(daily_affinity(daily, weights), as_of)
    assert direct.count() > 0
    assert_df_equality(direct, per_day, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.parametrize("as_of", [T, d(6), d(30), d(89), T + timedelta(days=200)])
def test_history_sums_equal_the_per_user_day_path(spark, as_of: date) -> None:
    """The full rebuild's one-aggregation sums (active days by bitmask) equal the per-user-day path
    at window edges and long after the last event (every window empty)."""
    daily = build_user_daily(spark.createDataFrame(ROWS, EVENTS))
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
    daily = build_user_daily(spark.createDataFrame(ROWS, EVENTS))
    weights = TagConfig().weights
    direct = full_state_with_scores(daily, as_of, weights)
    per_day = with_scores(
        full_state(daily_user_metrics(daily), as_of),
        ranked_scores(full_affinity(daily_affinity(daily, weights), as_of)),
    )
    assert_df_equality(_comparable(direct), _comparable(per_day), ignore_row_order=True, ignore_nullable=True)
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


def test_state_from_an_older_format_is_rebuilt_not_read(spark, lake):
    """A user_tag_state written by the previous format (no score columns, v1 fingerprint) must not be
    read as yesterday's state: the run falls back to a full rebuild, the table gains the score columns
    (mergeSchema) and the snapshot equals the hand answers."""
    write_events(spark, lake, ROWS)
    daily = build_user_daily(spark.createDataFrame(ROWS, EVENTS))
    days = sorted({r[2] for r in ROWS})
    lk.overwrite_partitions(
        daily, lake, tables.USER_DAILY, ["event_date"], lk.replace_where_condition("event_date", days)
    )
    old = (
        full_state(daily_user_metrics(daily), d(1))
        .withColumn("as_of_date", F.lit(d(1)).cast("date"))
        .withColumn("state_fingerprint", F.lit("v1-fingerprint00"))
    )
    lk.overwrite_partitions(
        old, lake, USER_TAG_STATE, ["as_of_date"], lk.replace_where_condition("as_of_date", [d(1)])
    )

    res = run_tags(spark, lake, T, TagConfig(), skip_checks=True)
    assert res.mode == "full" and "older state format" in res.reason
    state_cols = lk.read_table(spark, lake, USER_TAG_STATE).columns
    assert set(SCORE_COLUMNS.values()) <= set(state_cols)
    tags_t = _read(spark, lake, tables.USER_TAGS, T)
    check(tags_t, RFM, EXPECTED_RFM)
    check(tags_t, TOPS, EXPECTED_TOPS)
    # and the next day goes incremental from the new-format state
    assert run_tags(spark, lake, T + timedelta(days=1), TagConfig(), skip_checks=True).mode == "incremental"
