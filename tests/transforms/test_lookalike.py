"""Lookalike model: planted personas are found, results are deterministic, errors are clear."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pytest

from dmp.contracts.errors import DmpError
from dmp.spark.schemas import USER_TAGS
from dmp.transforms.lookalike import (
    FeatureVocabulary,
    feature_columns,
    feature_vocabulary,
    score_lookalike,
    score_users,
    top_k,
    with_lookalike_features,
)
from dmp.transforms.lookalike_model import fit_pipeline, predict_scores, target_size
from tests.support.factories import tag_row

# mapInPandas runs in Python workers that need pandas: use this interpreter (set before the session starts).

AS_OF = date(2026, 3, 31)
N_USERS = 2000
N_PERSONA = 200  # users u0000000..u0000199 share the planted persona
N_SEED = 120  # the first 120 persona users are the seed; 80 lookalikes remain to be found


def _tag_row(user_id: str, **overrides: object) -> dict:
    """A quiet user: new, last seen three days before AS_OF, no active day in 30."""
    quiet = {"last_active_date": AS_OF - timedelta(days=3), "active_days_30d": 0, "lifecycle_stage": "new"}
    return tag_row(user_id, AS_OF, **{**quiet, **overrides})


def synthetic_tags(n_users: int = N_USERS, n_persona: int = N_PERSONA, seed: int = 7) -> list[dict]:
    """Background users with random habits; persona users buy B001 in C01 at S001, spend a lot, are active.

    Persona traits overlap with the background (some background users also like C01 or B001, some
    spend a lot), so the model has to combine features rather than read one flag.
    """
    rng = np.random.default_rng(seed)
    cats = ["C01", "C02", "C03", "C04", "C05", "C06"]
    brands = ["B001", "B002", "B101", "B102", "B103", "B104"]
    stores = ["S001", "S002", "S101", "S102", "S103"]
    rows = []
    for i in range(n_users):
        uid = f"u{i:07d}"
        persona = i < n_persona
        if persona:
            freq = int(rng.integers(3, 12))
            aov = float(rng.uniform(300, 600))
            top_c = ["C01"] + list(rng.choice(cats[1:], size=1, replace=False))
            top_b = ["B001"] + ([str(rng.choice(brands[1:]))] if rng.random() < 0.4 else [])
            top_s = ["S001"]
            level = int(rng.integers(4, 6))
            stage = str(rng.choice(["active", "loyal"]))
            coupon = float(rng.uniform(0.0, 0.3))
            views = int(rng.integers(20, 80))
        else:
            freq = int(rng.integers(0, 4))
            aov = float(rng.uniform(20, 350))
            top_c = list(rng.choice(cats, size=int(rng.integers(1, 3)), replace=False))
            top_b = list(rng.choice(brands, size=int(rng.integers(1, 3)), replace=False))
            top_s = list(rng.choice(stores, size=1))
            level = int(rng.integers(1, 5))
            stage = str(rng.choice(["new", "active", "silent", "churned"]))
            coupon = float(rng.uniform(0.2, 1.0)) if rng.random() < 0.6 else None
            views = int(rng.integers(0, 40))
        recency = int(rng.integers(0, 60)) if freq else None
        rows.append(
            _tag_row(
                uid,
                last_order_date=AS_OF - timedelta(days=recency) if recency is not None else None,
                recency_days=recency,
                frequency_90d=freq,
                monetary_90d=round(freq * aov, 2),
                avg_order_value_90d=aov if freq else None,
                views_30d=views,
                carts_30d=int(views // 5),
                orders_30d=min(freq, 5),
                active_days_30d=int(min(30, views // 3)),
                lifecycle_stage=stage,
                top_category_ids=sorted(top_c),
                top_brand_ids=sorted(top_b),
                top_store_ids=top_s,
                consumption_level=level,
                coupon_sensitivity=coupon,
            )
        )
    return rows


@pytest.fixture(scope="module")
def tags_df(spark):
    return spark.createDataFrame(synthetic_tags(), schema=USER_TAGS).cache()


@pytest.fixture(scope="module")
def seed_df(spark):
    return spark.createDataFrame([(f"u{i:07d}",) for i in range(N_SEED)], "user_id string")


@pytest.fixture(scope="module")
def logistic_run(tags_df, seed_df):
    result_df, metrics = score_lookalike(tags_df, seed_df, model="logistic", size=80, segment="vip_like")
    return result_df.collect(), metrics


def _is_persona(user_id: str) -> bool:
    return int(user_id[1:]) < N_PERSONA


def test_logistic_finds_planted_lookalikes(logistic_run):
    rows, metrics = logistic_run
    ids = [r["user_id"] for r in rows]
    assert len(ids) == 80
    assert len(set(ids)) == 80
    # No seed user is ever returned.
    assert not [u for u in ids if int(u[1:]) < N_SEED]
    # Planted persona users (u0000120..u0000199, 80 of them) fill the top of the ranking.
    assert sum(_is_persona(u) for u in ids[:40]) == 40
    assert sum(_is_persona(u) for u in ids) >= 72
    # Scores are sorted descending, ties broken by user_id.
    keys = [(-r["score"], r["user_id"]) for r in rows]
    assert keys == sorted(keys)
    assert {r["reason"] for r in rows} == {"lookalike:logistic"}
    assert all(0.0 <= r["score"] <= 1.0 for r in rows)


def test_logistic_metrics_are_honest_and_consistent(logistic_run):
    _, m = logistic_run
    assert m["model"] == "logistic"
    assert m["n_users"] == N_USERS
    assert m["n_seed"] == N_SEED
    assert m["k"] == 80
    assert m["n_train_pos"] == N_SEED
    assert m["n_train_neg"] == math.ceil(5.0 * N_SEED)
    # About 20% of the seed is held out (hash buckets), the rest trains the evaluation model.
    assert 12 <= m["n_holdout_seed"] <= 36
    assert m["n_eval_train_pos"] == N_SEED - m["n_holdout_seed"]
    assert m["n_eval_train_neg"] == math.ceil(5.0 * m["n_eval_train_pos"])
    # Candidates: everyone but the training positives and training negatives.
    assert m["n_eval_candidates"] == N_USERS - m["n_eval_train_pos"] - m["n_eval_train_neg"]
    assert m["k_eval"] == round(80 * m["n_eval_candidates"] / (N_USERS - N_SEED))
    assert m["random_recall_at_k"] == pytest.approx(m["k_eval"] / m["n_eval_candidates"])
    assert m["lift"] == pytest.approx(m["recall_at_k"] / m["random_recall_at_k"])
    # Quality: the held-out seed users are found far more often than at random.
    assert m["recall_at_k"] >= 0.4
    assert m["lift"] >= 5
    assert m["auc"] >= 0.95
    assert "category=C01" in m["features"] and "brand=B001" in m["features"]
    assert "lifecycle=loyal" in m["features"] and "coupon_unknown" in m["features"]


def test_same_inputs_give_same_top_k(tags_df, seed_df, logistic_run):
    rows, metrics = logistic_run
    again_df, again_metrics = score_lookalike(tags_df, seed_df, model="logistic", size=80, segment="vip_like")
    assert again_df.collect() == rows
    assert again_metrics == metrics


def test_gradient_boosting_with_ratio(tags_df, seed_df):
    result_df, m = score_lookalike(tags_df, seed_df, model="gradient_boosting", ratio=0.5, segment="vip_like")
    rows = result_df.collect()
    assert m["model"] == "gradient_boosting"
    assert m["k"] == 60 == len(rows)
    assert {r["reason"] for r in rows} == {"lookalike:gradient_boosting"}
    assert sum(_is_persona(r["user_id"]) for r in rows) >= 54
    assert m["recall_at_k"] > 3 * m["random_recall_at_k"]
    assert m["auc"] >= 0.9


def test_small_seed_is_an_error(tags_df, spark):
    seed = spark.createDataFrame([(f"u{i:07d}",) for i in range(30)] + [("nobody",)], "user_id string")
    with pytest.raises(DmpError) as err:
        score_lookalike(tags_df, seed, size=10, segment="tiny_seed", min_seed=50)
    assert str(err.value) == (
        "seed of segment tiny_seed has 30 users; at least 50 needed (1 seed users have no tags)"
    )


def test_unknown_model_and_missing_expansion(tags_df, seed_df):
    with pytest.raises(
        DmpError, match="lookalike model 'forest' is not supported; expected one of: logistic"
    ):
        score_lookalike(tags_df, seed_df, model="forest", size=10)
    with pytest.raises(DmpError, match="size or ratio is required"):
        target_size(100, None, None)
    with pytest.raises(DmpError, match="either size or ratio, not both"):
        target_size(100, 10, 0.5)
    assert target_size(120, None, 2.5) == 300
    assert target_size(120, 42, None) == 42


def test_feature_vector_by_hand(spark):
    vocab = FeatureVocabulary(
        lifecycle_stages=("active", "new"),
        multi_hot=(("top_category_ids", ("C01", "C02")), ("top_brand_ids", ("B001",)), ("top_store_ids", ())),
    )
    rows = [
        _tag_row(
            "u1",
            last_order_date=AS_OF - timedelta(days=4),
            recency_days=4,
            frequency_90d=3,
            monetary_90d=math.e**2 - 1,
            avg_order_value_90d=None,
            views_30d=0,
            carts_30d=1,
            orders_30d=3,
            active_days_30d=5,
            lifecycle_stage="active",
            top_category_ids=["C02", "C09"],
            top_brand_ids=["B001"],
            consumption_level=3,
            coupon_sensitivity=0.25,
            is_cart_abandoner=True,
        ),
        _tag_row("u2"),
    ]
    df = spark.createDataFrame(rows, schema=USER_TAGS)
    got = {r["user_id"]: r["features"] for r in with_lookalike_features(df, vocab).collect()}
    names = [n for n, _ in feature_columns(vocab)]
    u1 = dict(zip(names, got["u1"], strict=True))
    u2 = dict(zip(names, got["u2"], strict=True))
    assert u1["recency_days"] == 4 and u1["never_ordered"] == 0
    assert u1["log1p_frequency_90d"] == pytest.approx(math.log(4))
    assert u1["log1p_monetary_90d"] == pytest.approx(2.0)
    assert u1["log1p_avg_order_value_90d"] == 0.0
    assert u1["log1p_carts_30d"] == pytest.approx(math.log(2))
    assert u1["days_since_active"] == 3 and u1["days_since_first_seen"] == 100
    assert u1["consumption_level"] == 3
    assert u1["coupon_sensitivity"] == 0.25 and u1["coupon_unknown"] == 0
    assert u1["is_cart_abandoner"] == 1
    assert (u1["lifecycle=active"], u1["lifecycle=new"]) == (1, 0)
    assert (u1["category=C01"], u1["category=C02"], u1["brand=B001"]) == (0, 1, 1)
    assert u2["never_ordered"] == 1 and u2["recency_days"] == 0
    assert u2["coupon_unknown"] == 1 and u2["coupon_sensitivity"] == 0
    assert (u2["lifecycle=active"], u2["lifecycle=new"]) == (0, 1)
    assert len(names) == 15 + 2 + 3


def test_spark_scores_equal_driver_scores(tags_df):
    """mapInPandas scoring over the distributed frame gives exactly the fitted pipeline's probabilities."""
    vocab = feature_vocabulary(tags_df)
    feats = tags_df.transform(with_lookalike_features, vocab).toPandas().sort_values("user_id")
    labels = feats["user_id"].map(_is_persona)
    pipeline = fit_pipeline(feats[labels], feats[~labels].iloc[:400], "logistic", 0)
    expected = dict(zip(feats["user_id"], predict_scores(pipeline, feats), strict=True))

    scored = score_users(tags_df.transform(with_lookalike_features, vocab), pipeline)
    got = {r["user_id"]: r["score"] for r in scored.collect()}
    assert got.keys() == expected.keys()
    assert max(abs(got[u] - expected[u]) for u in got) < 1e-12
    best = top_k(scored, 3).collect()
    assert [r["user_id"] for r in best] == sorted(expected, key=lambda u: (-expected[u], u))[:3]
