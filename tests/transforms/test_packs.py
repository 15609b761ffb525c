"""Pack transforms on small inline DataFrames, against answers worked out by hand (no lake).

The row builders and hand-made data here are shared with tests/steps/test_packs.py, which builds
the same behaviour into a temporary lake.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import reduce
from typing import Any

import pytest
from pyspark.sql import functions as F

from dmp.contracts.holdout import holdout_bucket
from dmp.contracts.specs import Scope, SegmentSpec, Targets, spec_hash
from dmp.spark.schemas import AUDIENCE_PACKS, USER_DAILY, USER_TAGS
from dmp.transforms.packs import (
    CANDIDATE_COLS,
    competitor_intercept_candidates,
    filter_excluded,
    group_sizes_df,
    limit_size,
    lookalike_candidates,
    rule_candidates,
    seed_rule_users,
    store_revisit_candidates,
    to_pack_rows,
    with_group,
)
from dmp.transforms.scope import filter_days_ending, scope_col, targets_col
from dmp.transforms.where import filter_where
from tests.support.factories import daily, tag_tuple

D = date(2026, 3, 20)
CANDIDATES = "user_id string, score double, reason string, last_active date"


def tags(user: str, as_of: date = D, **over: Any) -> tuple:
    """One USER_TAGS row with neutral defaults."""
    return tag_tuple(user, as_of, **over)


REVISIT = {
    "name": "revisit",
    "kind": "store_revisit",
    "scope": {"store_ids": ["S001"]},
    "window_days": 14,
    "behaviors": ["view", "cart_add", "favorite"],
    "exclude_purchasers": True,
    "holdout": 0.0,
}

# Hand-made behaviour around run date D = 2026-03-20 (window 14: 03-07 ... 03-20).
REVISIT_ROWS = [
    daily("u01", D, "S001", "B001", "C01", views=2),  # in
    daily("u02", D - timedelta(days=13), "S001", "B001", "C01", carts=1),  # D-13: first window day, in
    daily("u03", D - timedelta(days=14), "S001", "B001", "C01", views=5),  # D-14: outside, out
    daily("u04", D - timedelta(days=3), "S001", "B001", "C01", views=1, orders=1),  # viewed+ordered same day
    daily("u05", D - timedelta(days=2), "S001", "B001", "C02", favs=3),  # in (favs)
    daily("u05", D - timedelta(days=1), "S002", "B002", "C02", orders=1),  # order in other store: ignored
    daily("u06", D - timedelta(days=1), "S002", "B002", "C01", views=4),  # other store only, out
    daily("u07", D - timedelta(days=1), "S001", "B001", "C01", clicks=3),  # clicks not a listed behaviour
    daily("u08", D - timedelta(days=5), "S001", "B001", "C01", views=1),
    daily("u08", D - timedelta(days=20), "S001", "B001", "C01", orders=1),  # order before window: still in
    daily("u09", D + timedelta(days=1), "S001", "B001", "C01", views=1),  # after run date: out
    daily("u10", D - timedelta(days=4), "S001", "B001", "C01", views=1),
    daily("u10", D, "S001", "B002", "C03", orders=1),  # ordered later in window in scope: out
]

INTERCEPT = {
    "name": "intercept",
    "kind": "competitor_intercept",
    "competitors": {"brand_ids": ["B101", "B102"]},
    "own": {"brand_ids": ["B001", "B002"]},
    "categories": ["C01"],
    "window_days": 30,
    "holdout": 0.0,
}

INTERCEPT_ROWS = [
    daily("c1", D - timedelta(days=2), "S101", "B101", "C01", orders=2, gmv=50.0),  # in, score 2
    daily("c1", D - timedelta(days=3), "S102", "B102", "C01", orders=1, gmv=20.0),  # score 3 total
    daily("c2", D - timedelta(days=2), "S101", "B101", "C01", orders=1),  # bought ours too: out
    daily("c2", D - timedelta(days=1), "S001", "B001", "C01", orders=1),
    daily("c3", D - timedelta(days=2), "S101", "B101", "C02", orders=1),  # other category: out
    daily("c4", D - timedelta(days=2), "S101", "B101", "C01", views=9),  # only viewed: out
    daily("c5", D - timedelta(days=30), "S101", "B101", "C01", orders=1),  # D-30: outside 30d window
    daily("c6", D - timedelta(days=29), "S103", "B102", "C01", orders=1),  # D-29: in
    daily("c6", D - timedelta(days=5), "S001", "B001", "C03", orders=1),  # ours in other category: stays
    daily("c7", D - timedelta(days=1), "S103", "B103", "C01", orders=4),  # B103 not listed: out
]

TAG_ROWS = [
    tags(
        "t1", lifecycle_stage="active", consumption_level=3, top_category_ids=["C01", "C02"], recency_days=3
    ),
    tags("t2", lifecycle_stage="silent", consumption_level=2, top_category_ids=["C02"], recency_days=40),
    tags("t3", lifecycle_stage="churned", consumption_level=3, top_category_ids=["C01"], recency_days=None),
    tags("t4", lifecycle_stage="active", consumption_level=1, is_cart_abandoner=True, last_active_date=D),
    tags(
        "t5",
        lifecycle_stage="new",
        consumption_level=2,
        coupon_sensitivity=0.5,
        last_active_date=D - timedelta(days=9),
    ),
    tags("t1", as_of=D - timedelta(days=1), lifecycle_stage="churned"),  # older snapshot: ignored
]

WHERE_CASES: list[tuple[dict, list[str]]] = [
    ({"tag": "lifecycle_stage", "in": ["active", "silent"]}, ["t1", "t2", "t4"]),
    ({"tag": "consumption_level", "gte": 2}, ["t1", "t2", "t3", "t5"]),
    (
        {
            "all": [
                {"tag": "lifecycle_stage", "in": ["active", "silent"]},
                {"tag": "consumption_level", "gte": 2},
            ]
        },
        ["t1", "t2"],
    ),
    (
        {"any": [{"tag": "is_cart_abandoner", "eq": True}, {"tag": "lifecycle_stage", "eq": "new"}]},
        ["t4", "t5"],
    ),
    ({"not": {"tag": "lifecycle_stage", "eq": "active"}}, ["t2", "t3", "t5"]),
    ({"tag": "top_category_ids", "contains": "C01"}, ["t1", "t3"]),
    ({"tag": "top_category_ids", "in": ["C02", "C09"]}, ["t1", "t2"]),
    ({"tag": "top_category_ids", "not_in": ["C01"]}, ["t2", "t4", "t5"]),
    ({"tag": "recency_days", "is_null": True}, ["t3", "t4", "t5"]),
    ({"tag": "recency_days", "between": [3, 40]}, ["t1", "t2"]),
    ({"tag": "recency_days", "ne": 3}, ["t2"]),  # null recency is not "different from 3"
    ({"not": {"tag": "recency_days", "eq": 3}}, ["t2", "t3", "t4", "t5"]),
    ({"tag": "coupon_sensitivity", "gt": 0.25}, ["t5"]),
    ({"tag": "last_active_date", "gte": "2026-03-20"}, ["t4"]),
    ({"tag": "last_active_date", "lt": date(2026, 3, 19)}, ["t5"]),
    (
        {
            "all": [
                {"any": [{"tag": "consumption_level", "eq": 3}, {"tag": "lifecycle_stage", "eq": "new"}]},
                {"not": {"tag": "lifecycle_stage", "eq": "churned"}},
            ]
        },
        ["t1", "t5"],
    ),
]


@pytest.fixture(scope="module")
def revisit_df(spark):
    return spark.createDataFrame(REVISIT_ROWS, USER_DAILY)


@pytest.fixture(scope="module")
def tags_df(spark):
    return spark.createDataFrame(TAG_ROWS, USER_TAGS).filter(f"as_of_date = DATE'{D}'")


def test_store_revisit_candidates_by_hand(revisit_df) -> None:
    spec = SegmentSpec.model_validate(REVISIT)
    rows = {r["user_id"]: r.asDict() for r in store_revisit_candidates(revisit_df, spec, D).collect()}
    assert sorted(rows) == ["u01", "u02", "u05", "u08"]
    assert rows["u05"] == {
        "user_id": "u05",
        "score": 3.0,
        "reason": "store_revisit: view=0, cart_add=0, favorite=3 in scope over 14d, last 2026-03-18",
        "last_active": D - timedelta(days=2),
    }


def test_store_revisit_purchasers_kept_when_not_excluded(revisit_df) -> None:
    spec = SegmentSpec.model_validate({**REVISIT, "exclude_purchasers": False})
    got = {r["user_id"]: r["score"] for r in store_revisit_candidates(revisit_df, spec, D).collect()}
    assert got == {"u01": 2.0, "u02": 1.0, "u04": 1.0, "u05": 3.0, "u08": 1.0, "u10": 1.0}


def test_scope_lists_are_anded(revisit_df) -> None:
    spec = SegmentSpec.model_validate({**REVISIT, "scope": {"store_ids": ["S001"], "category_ids": ["C02"]}})
    assert [r["user_id"] for r in store_revisit_candidates(revisit_df, spec, D).collect()] == ["u05"]


def test_competitor_intercept_by_hand(spark) -> None:
    daily_df = spark.createDataFrame(INTERCEPT_ROWS, USER_DAILY)
    spec = SegmentSpec.model_validate(INTERCEPT)
    got = {
        r["user_id"]: (r["score"], r["reason"])
        for r in competitor_intercept_candidates(daily_df, spec, D).collect()
    }
    assert got == {
        "c1": (3.0, "competitor_intercept: ordered B101,B102 3x over 30d, gmv 70.00"),
        "c6": (1.0, "competitor_intercept: ordered B102 1x over 30d, gmv 10.00"),
    }
    viewers = SegmentSpec.model_validate({**INTERCEPT, "action": "view"})
    assert [r["user_id"] for r in competitor_intercept_candidates(daily_df, viewers, D).collect()] == ["c4"]
    by_store = SegmentSpec.model_validate({**INTERCEPT, "competitors": {"store_ids": ["S103"]}})
    got = sorted(r["user_id"] for r in competitor_intercept_candidates(daily_df, by_store, D).collect())
    assert got == ["c6", "c7"]


@pytest.fixture(scope="module")
def where_results(tags_df) -> list[list[str]]:
    """Every WHERE_CASES condition evaluated by rule_candidates in ONE Spark job (tests stay fast)."""
    flags = []
    for i, (where, _) in enumerate(WHERE_CASES):
        spec = SegmentSpec.model_validate({"name": "r", "kind": "rule", "where": where})
        matched = rule_candidates(tags_df, spec).select("user_id").withColumn("case", F.lit(i))
        flags.append(matched)
    rows = reduce(lambda a, b: a.unionByName(b), flags).collect()
    return [sorted(r["user_id"] for r in rows if r["case"] == i) for i in range(len(WHERE_CASES))]


@pytest.mark.parametrize("case", range(len(WHERE_CASES)), ids=[str(c[0])[:60] for c in WHERE_CASES])
def test_rule_where_by_hand(where_results: list[list[str]], case: int) -> None:
    assert where_results[case] == WHERE_CASES[case][1]


def test_rule_candidates_have_no_score_and_tag_recency(tags_df) -> None:
    spec = SegmentSpec.model_validate(
        {"name": "r", "kind": "rule", "where": {"tag": "lifecycle_stage", "eq": "new"}}
    )
    assert [r.asDict() for r in rule_candidates(tags_df, spec).collect()] == [
        {
            "user_id": "t5",
            "score": None,
            "reason": "rule: matched where",
            "last_active": D - timedelta(days=9),
        }
    ]


def test_filter_where_keeps_candidate_columns_and_drops_untagged(spark, tags_df) -> None:
    cands_df = spark.createDataFrame(
        [("t1", 1.0, "x", D), ("t3", 2.0, "y", D), ("nobody", 3.0, "z", D)], CANDIDATES
    )
    active = SegmentSpec.model_validate(
        {"name": "r", "kind": "rule", "where": {"tag": "consumption_level", "gte": 3}}
    ).where
    untagged = SegmentSpec.model_validate(
        {"name": "r", "kind": "rule", "where": {"tag": "lifecycle_stage", "is_null": True}}
    ).where
    kept_df = filter_where(cands_df, tags_df, active)
    assert kept_df.columns == CANDIDATE_COLS
    assert sorted(r["user_id"] for r in kept_df.collect()) == ["t1", "t3"]
    assert [r["user_id"] for r in filter_where(cands_df, tags_df, untagged).collect()] == ["nobody"]


def test_seed_rule_users(tags_df) -> None:
    spec = SegmentSpec.model_validate(
        {
            "name": "like",
            "kind": "lookalike",
            "seed": {"where": {"tag": "top_category_ids", "contains": "C01"}},
            "expansion": {"size": 5},
        }
    )
    assert sorted(r["user_id"] for r in seed_rule_users(tags_df, spec).collect()) == ["t1", "t3"]


def test_lookalike_candidates_take_recency_from_tags(spark, tags_df) -> None:
    scored_df = spark.createDataFrame(
        [("t4", 0.9, "lookalike:logistic"), ("gone", 0.5, "lookalike:logistic")],
        "user_id string, score double, reason string",
    )
    got = {r["user_id"]: r.asDict() for r in lookalike_candidates(scored_df, tags_df).collect()}
    assert got == {
        "t4": {"user_id": "t4", "score": 0.9, "reason": "lookalike:logistic", "last_active": D},
        "gone": {"user_id": "gone", "score": 0.5, "reason": "lookalike:logistic", "last_active": None},
    }


def test_filter_excluded_drops_listed_users_once(spark) -> None:
    cands_df = spark.createDataFrame(
        [("a", 1.0, "r", D), ("b", 2.0, "r", D), ("c", None, "r", None)], CANDIDATES
    )
    excluded_df = spark.createDataFrame([("b", "x"), ("b", "y"), ("zz", "x")], "user_id string, other string")
    assert sorted(r["user_id"] for r in filter_excluded(cands_df, excluded_df).collect()) == ["a", "c"]


def test_max_size_tie_break_recent_activity_then_user_id(spark) -> None:
    df = spark.createDataFrame(
        [
            ("b", None, date(2026, 3, 1)),
            ("a", None, date(2026, 3, 1)),
            ("c", None, date(2026, 3, 5)),
            ("d", None, None),
            ("e", 1.0, date(2026, 1, 1)),
        ],
        "user_id string, score double, last_active date",
    )
    assert [r["user_id"] for r in limit_size(df, 3).collect()] == ["e", "c", "a"]
    assert limit_size(df, None).count() == 5


def test_with_group_follows_the_holdout_hash_and_group_sizes(spark) -> None:
    users = [f"h{i:03d}" for i in range(200)]
    cands_df = spark.createDataFrame([(u, None, "r", D) for u in users], CANDIDATES)
    spec = SegmentSpec.model_validate({**REVISIT, "name": "held", "holdout": 0.2})
    grouped_df = with_group(cands_df, spec)
    got = {r["user_id"]: r["group"] for r in grouped_df.collect()}
    expected = {u: ("holdout" if holdout_bucket("dmp-v1", "held", u) < 0.2 else "treatment") for u in users}
    assert got == expected
    sizes = group_sizes_df(grouped_df).first()
    assert (sizes["size"], sizes["holdout"]) == (200, sum(g == "holdout" for g in expected.values()))


def test_to_pack_rows_has_the_audience_packs_schema(spark) -> None:
    spec = SegmentSpec.model_validate(REVISIT)
    grouped_df = spark.createDataFrame(
        [("u1", 2.0, "why", D, "treatment")],
        "user_id string, score double, reason string, last_active date, group string",
    )
    pack_df = to_pack_rows(grouped_df, spec, D, deliverable=False)
    assert [(f.name, f.dataType) for f in pack_df.schema.fields] == [
        (f.name, f.dataType) for f in AUDIENCE_PACKS.fields
    ]
    assert pack_df.first().asDict() == {
        "segment": "revisit",
        "run_date": D,
        "user_id": "u1",
        "group": "treatment",
        "score": 2.0,
        "reason": "why",
        "spec_hash": spec_hash(spec),
        "kind": "store_revisit",
        "deliverable": False,
        "person_id": None,  # candidates without persons (dmp.transforms.persons adds them)
    }


def test_scope_and_targets_columns(spark) -> None:
    rows_df = spark.createDataFrame(
        [
            daily("a", D, "S1", "B1", "C1"),
            daily("b", D, "S1", "B2", "C2"),
            daily("c", D, "S2", "B1", None),
            daily("d", D, None, None, "C1"),
        ],
        USER_DAILY,
    )

    def users(col) -> list[str]:
        return sorted(r["user_id"] for r in rows_df.filter(col).collect())

    assert users(scope_col(Scope(store_ids=["S1"]))) == ["a", "b"]
    assert users(scope_col(Scope(store_ids=["S1"], brand_ids=["B1"]))) == ["a"]
    assert users(scope_col(Scope(category_ids=["C1"]))) == ["a", "d"]
    assert users(scope_col(None)) == ["a", "b", "c", "d"]
    assert users(targets_col(Targets(brand_ids=["B1"], store_ids=["S1"]))) == ["a", "b", "c"]
    assert users(targets_col(Targets(store_ids=["S2"]), categories=["C1"])) == []
    assert users(targets_col(Targets(brand_ids=["B1"]), categories=["C1"])) == ["a"]
    assert users(~targets_col(Targets(brand_ids=["B1"]))) == ["b", "d"]  # never null without categories


def test_filter_days_ending_includes_both_ends(spark) -> None:
    days = [D - timedelta(days=n) for n in (-1, 0, 1, 13, 14)]
    rows_df = spark.createDataFrame(
        [daily(f"u{i}", day, "S1", "B1", "C1") for i, day in enumerate(days)], USER_DAILY
    )
    got = sorted(r["event_date"] for r in filter_days_ending(rows_df, D, 14).collect())
    assert got == [D - timedelta(days=13), D - timedelta(days=1), D]
