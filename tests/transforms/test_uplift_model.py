"""Uplift model: on planted data it ranks persuadables first; known answers for both learners."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from dmp.contracts.errors import DmpError
from dmp.spark.schemas import USER_TAGS
from dmp.transforms.lookalike import feature_vocabulary, with_lookalike_features
from dmp.transforms.lookalike_model import feature_matrix
from dmp.transforms.uplift_model import (
    campaign_training_df,
    fit_uplift,
    score_uplift,
    target_size,
    train_uplift,
)
from tests.support.factories import tag_row

AS_OF = date(2026, 3, 31)
N_USERS = 3000
TYPES = ("sure_thing", "persuadable", "other")
# planted: (share of users, P(convert) without the campaign, P(campaign adds an order))
PLANTED = {"sure_thing": (0.3, 0.7, 0.0), "persuadable": (0.25, 0.04, 0.5), "other": (0.45, 0.05, 0.03)}


def _type_of(i: int) -> str:
    u = (i * 7919 % N_USERS) / N_USERS  # interleaved, so user_id order says nothing about the type
    return "sure_thing" if u < 0.3 else "persuadable" if u < 0.55 else "other"


def planted_users(seed: int = 3) -> tuple[list[dict], pd.DataFrame]:
    """Tag rows whose habits reveal the type (with overlap), and each user's realised campaign outcome.

    Sure things buy often, spend a lot and shop beauty (C01); persuadables rarely buy, react to coupons
    and shop food (C05); the others are in between. 20 % are in the holdout (they get y0).
    """
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for i in range(N_USERS):
        uid, kind = f"u{i:07d}", _type_of(i)
        if kind == "sure_thing":
            freq, level, coupon, cats = int(rng.integers(2, 10)), int(rng.integers(3, 6)), 0.1, ["C01"]
        elif kind == "persuadable":
            freq, level, coupon, cats = int(rng.integers(0, 2)), int(rng.integers(1, 3)), 0.7, ["C05"]
        else:
            freq, level, coupon, cats = int(rng.integers(0, 4)), int(rng.integers(1, 5)), 0.3, ["C02"]
        coupon = float(np.clip(coupon + rng.normal(0, 0.15), 0, 1))
        if rng.random() < 0.2:  # overlap: a fifth of the users shop a random category
            cats = [str(rng.choice(["C01", "C02", "C05"]))]
        rows.append(
            tag_row(
                uid,
                AS_OF,
                frequency_90d=freq,
                recency_days=int(rng.integers(0, 40)) if freq else None,
                last_order_date=AS_OF - timedelta(days=3) if freq else None,
                monetary_90d=float(freq * 100 * level),
                consumption_level=level,
                coupon_sensitivity=coupon,
                top_category_ids=cats,
            )
        )
        _, base, effect = PLANTED[kind]
        y0 = rng.random() < base
        y1 = y0 or rng.random() < effect
        treated = rng.random() >= 0.2
        truth.append(
            (uid, kind, "treatment" if treated else "holdout", int(y1 if treated else y0), int(y1) - int(y0))
        )
    return rows, pd.DataFrame(truth, columns=["user_id", "type", "group", "converted", "tau"])


@pytest.fixture(scope="module")
def planted(spark):
    rows, truth = planted_users()
    tags_df = spark.createDataFrame(rows, schema=USER_TAGS).cache()
    outcomes_df = spark.createDataFrame(truth[["user_id", "group", "converted"]])
    vocab = feature_vocabulary(tags_df)
    return tags_df, outcomes_df, vocab, truth


@pytest.mark.parametrize("model", ["t_learner", "class_transformation"])
def test_planted_persuadables_rank_first(spark, planted, model: str) -> None:
    tags_df, outcomes_df, vocab, truth = planted
    trained = train_uplift(campaign_training_df(outcomes_df, tags_df, vocab), model, test_share=0.3)
    assert (trained.n_users, trained.n_treatment + trained.n_holdout) == (N_USERS, N_USERS)
    assert trained.n_holdout == int((truth["group"] == "holdout").sum())
    scored = score_uplift(tags_df.transform(with_lookalike_features, vocab), trained.model).toPandas()
    scored = scored.merge(truth, on="user_id")
    by_type = scored.groupby("type")["score"].mean()
    print(f"\n{model}: mean predicted uplift by type {by_type.round(3).to_dict()}")
    # the planted effects are 0.48 (persuadable), 0.03 (other), 0 (sure thing)
    assert by_type["persuadable"] > 0.3
    assert abs(by_type["sure_thing"]) < 0.1 and abs(by_type["other"]) < 0.1
    top = scored.sort_values(["score", "user_id"], ascending=[False, True]).head(int(0.25 * N_USERS))
    share = (top["type"] == "persuadable").mean()
    print(f"{model}: persuadables in the top 25 %: {share:.3f}")
    assert share >= 0.85  # 25 % of the users are persuadable: a random 25 % would hold 25 %
    # the held-out part: 30 % of the users by the seeded hash, none of them in the evaluation fit
    assert len(trained.held_out.score) == N_USERS - trained.n_train
    assert 0.25 * N_USERS < len(trained.held_out.score) < 0.35 * N_USERS


def test_spark_scores_equal_driver_predictions(spark, planted) -> None:
    tags_df, outcomes_df, vocab, _ = planted
    trained = train_uplift(campaign_training_df(outcomes_df, tags_df, vocab), "t_learner")
    features = tags_df.transform(with_lookalike_features, vocab).orderBy("user_id").toPandas()
    on_driver = trained.model.predict_uplift(feature_matrix(features))
    in_spark = score_uplift(tags_df.transform(with_lookalike_features, vocab), trained.model).toPandas()
    in_spark = in_spark.set_index("user_id").loc[features["user_id"], "score"].to_numpy()
    np.testing.assert_allclose(in_spark, on_driver, rtol=0, atol=1e-12)


def _constant_rows(n_t: int, conv_t: int, n_c: int, conv_c: int) -> pd.DataFrame:
    """Identical users (one constant feature): only the groups' conversion rates can be learnt."""
    treated = [1] * n_t + [0] * n_c
    converted = [1] * conv_t + [0] * (n_t - conv_t) + [1] * conv_c + [0] * (n_c - conv_c)
    return pd.DataFrame({"features": [[1.0, 0.0]] * (n_t + n_c), "treated": treated, "converted": converted})


@pytest.mark.parametrize("model", ["t_learner", "class_transformation"])
def test_known_answer_identical_users_get_the_difference_in_rates(model: str) -> None:
    # 800 treated with 120 converters (15 %), 200 holdout with 10 (5 %): uplift = 0.10 for everyone.
    # T-learner: 0.15 - 0.05. Class transformation with the groups reweighted to half the weight each:
    # P(z=1) = 0.5 * 0.15 + 0.5 * (1 - 0.05) = 0.55, so 2 * 0.55 - 1 = 0.10 (unweighted it would be
    # (120 + 190) / 1000 = 0.31, i.e. -0.38: wrong whenever the holdout is not half).
    fitted = fit_uplift(_constant_rows(800, 120, 200, 10), model)
    got = fitted.predict_uplift(np.array([[1.0, 0.0], [1.0, 0.0]]))
    np.testing.assert_allclose(got, [0.10, 0.10], atol=1e-4)


def test_a_group_without_converters_is_a_constant_not_a_crash() -> None:
    fitted = fit_uplift(_constant_rows(100, 30, 50, 0), "t_learner")
    np.testing.assert_allclose(fitted.predict_uplift(np.array([[1.0, 0.0]])), [0.30], atol=1e-4)


def test_errors_and_sizes(spark, planted) -> None:
    tags_df, outcomes_df, vocab, _ = planted
    training_df = campaign_training_df(outcomes_df, tags_df, vocab)
    with pytest.raises(
        DmpError, match="uplift model 'x_learner' is not supported; expected one of: t_learner"
    ):
        train_uplift(training_df, "x_learner")
    with pytest.raises(DmpError, match=r"test_share must be in \(0, 1\)"):
        train_uplift(training_df, test_share=1.0)
    holdout_only_df = training_df.filter("treated = 0")
    with pytest.raises(
        DmpError, match="0 treatment and .* holdout users with tags; an uplift model needs at least 20"
    ):
        train_uplift(holdout_only_df, label="from_campaign c/2026-03-01")
    assert target_size(1000, None, 0.3) == 300
    assert target_size(1000, 50, None) == 50
    assert target_size(3, None, 0.1) == 1  # never zero when there are users
    assert target_size(0, None, 0.5) == 0
