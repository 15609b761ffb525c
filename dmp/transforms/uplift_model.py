"""Uplift targeting: learn from a completed campaign whom it moved, score today's users, keep the top K.

Training rows are the campaign pack's users (treatment and holdout) with their ``gold/user_tags``
snapshot of the campaign's run date, turned into features by the lookalike's code
(:func:`dmp.transforms.lookalike.with_lookalike_features`, the vocabulary fixed on that snapshot),
and their outcome: ``converted`` (an order in the campaign spec's scope in its attribution window,
:func:`dmp.transforms.outcomes.with_outcomes`). Scoring uses the same features on the snapshot of
the new run date, so a user is scored on what they look like now.

Two models, both scikit-learn logistic regressions on standardised features, fitted on the driver
with a strong L2 penalty (``C`` = :data:`UPLIFT_C`, not the lookalike's 1.0): an uplift is a small
difference of two noisy rates, learnt from a few thousand campaign users of whom only the holdout
share are untreated, and a loosely regularised fit ranks users by that noise (on the planted demo
campaign ``C`` = 0.05 ranked the persuadables markedly better than 1.0):

* ``t_learner``: one model of P(convert | x) on the treatment users, one on the holdout users;
  predicted uplift = P_treatment(x) - P_holdout(x);
* ``class_transformation`` (Jaskowski & Jaroszewicz 2012): z = 1 for treated converters and for
  holdout non-converters; with the groups reweighted to equal total weight (our holdout is rarely
  half), uplift = 2 P(z = 1 | x) - 1.

Honest quality: a seeded split (SHA-256 bucket of ``(uplift-<random_state>, user_id)``, so the
same users whatever the partitioning) holds out ``test_share`` of the campaign's users; a model
fitted on the rest scores them, and :class:`HeldOut` returns their (converted, treated, score) for
the Qini / uplift curve areas (computed by the step with :mod:`dmp.stats.qini`, which this layer may
not import). The final model is refitted on every campaign user.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dmp.contracts.errors import DmpError
from dmp.contracts.holdout import holdout_bucket_col
from dmp.contracts.specs import UPLIFT_MODELS
from dmp.contracts.vocab import TREATMENT
from dmp.transforms.lookalike import FeatureVocabulary, with_lookalike_features
from dmp.transforms.lookalike_model import feature_matrix

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

SCORE_SCHEMA = "user_id string, score double"
# Inverse L2 strength of the logistic regressions (module docstring).
UPLIFT_C = 0.05
# Fewer users than this in either group (after the split) cannot teach a difference between them.
MIN_GROUP_USERS = 20


@dataclass(frozen=True)
class _Constant:
    """P(y = 1) of a group whose users all had the same outcome (a classifier cannot be fitted)."""

    p: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile([1.0 - self.p, self.p], (len(X), 1))


@dataclass(frozen=True)
class UpliftModel:
    """A fitted uplift model: ``predict_uplift`` runs on the driver and inside ``mapInPandas``."""

    kind: str
    treatment: Pipeline | _Constant | None = None  # t_learner
    holdout: Pipeline | _Constant | None = None  # t_learner
    transformed: Pipeline | _Constant | None = None  # class_transformation

    def predict_uplift(self, X: np.ndarray) -> np.ndarray:
        if len(X) == 0:
            return np.zeros(0)
        if self.kind == "t_learner":
            assert self.treatment is not None and self.holdout is not None
            return self.treatment.predict_proba(X)[:, 1] - self.holdout.predict_proba(X)[:, 1]
        assert self.transformed is not None
        return 2.0 * self.transformed.predict_proba(X)[:, 1] - 1.0


@dataclass(frozen=True)
class HeldOut:
    """The held-out campaign users, scored by a model that never saw them (arrays in one order)."""

    converted: np.ndarray
    treated: np.ndarray
    score: np.ndarray


@dataclass(frozen=True)
class Trained:
    model: UpliftModel  # refitted on every campaign user
    held_out: HeldOut
    n_train: int  # campaign users the held-out evaluation's model was fitted on
    n_users: int  # every campaign user with tags (the final model's rows)
    n_treatment: int
    n_holdout: int


def campaign_training_df(outcomes_df: DataFrame, tags_df: DataFrame, vocab: FeatureVocabulary) -> DataFrame:
    """``user_id, features, treated, converted``: campaign users (``outcomes_df``: ``user_id, group,
    converted``) with the features of their tags (``tags_df``: the campaign run date's snapshot).

    Users without a tag row on that date are dropped (nothing to learn from)."""
    return tags_df.transform(with_lookalike_features, vocab).join(
        outcomes_df.select(
            "user_id",
            (F.col("group") == F.lit(TREATMENT)).cast("int").alias("treated"),
            F.col("converted").cast("int").alias("converted"),
        ),
        "user_id",
        "inner",
    )


def _check_model(model: str) -> str:
    if model not in UPLIFT_MODELS:
        raise DmpError(
            f"uplift model {model!r} is not supported; expected one of: {', '.join(UPLIFT_MODELS)}"
        )
    return model


def _check_groups(pdf: pd.DataFrame, label: str) -> None:
    n_t = int(pdf["treated"].sum())
    n_c = len(pdf) - n_t
    if n_t < MIN_GROUP_USERS or n_c < MIN_GROUP_USERS:
        raise DmpError(
            f"{label}: {n_t} treatment and {n_c} holdout users with tags; an uplift model needs at least "
            f"{MIN_GROUP_USERS} of each (a campaign with a holdout)"
        )
    if pdf["converted"].nunique() < 2:
        raise DmpError(
            f"{label}: every user has the same outcome; nothing to learn about who the campaign moved"
        )


def _fit_classifier(
    X: np.ndarray, y: np.ndarray, weight: np.ndarray | None, random_state: int
) -> Pipeline | _Constant:
    if np.unique(y).size < 2:
        return _Constant(float(y[0]) if len(y) else 0.0)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline(
        [
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=UPLIFT_C, max_iter=2000, random_state=random_state)),
        ]
    )
    pipeline.fit(X, y, model__sample_weight=weight)
    return pipeline


def fit_uplift(pdf: pd.DataFrame, model: str, random_state: int = 0) -> UpliftModel:
    """Fit ``model`` on collected rows (``features``, ``treated``, ``converted``), in row order."""
    kind = _check_model(model)
    X = feature_matrix(pdf)
    y = pdf["converted"].to_numpy(int)
    t = pdf["treated"].to_numpy(int)
    if kind == "t_learner":
        treat, hold = t == 1, t == 0
        return UpliftModel(
            kind,
            treatment=_fit_classifier(X[treat], y[treat], None, random_state),
            holdout=_fit_classifier(X[hold], y[hold], None, random_state),
        )
    p = t.mean()
    # Each group gets half of the total weight, so P(z=1|x) = (1 + uplift(x)) / 2 whatever the holdout.
    weight = np.where(t == 1, 0.5 / p, 0.5 / (1 - p))
    z = (y == t).astype(int)
    return UpliftModel(kind, transformed=_fit_classifier(X, z, weight, random_state))


def _collect(training_df: DataFrame, random_state: int) -> pd.DataFrame:
    """Training rows on the driver, in hash order (so every fit sees the same row order)."""
    hashed_df = training_df.withColumn("_h", holdout_bucket_col(f"uplift-{random_state}", "split", "user_id"))
    pdf = hashed_df.select("user_id", "features", "treated", "converted", "_h").toPandas()
    return pdf.sort_values(["_h", "user_id"], kind="mergesort").reset_index(drop=True)


def train_uplift(
    training_df: DataFrame,
    model: str = "t_learner",
    *,
    random_state: int = 0,
    test_share: float = 0.3,
    label: str = "uplift",
) -> Trained:
    """The evaluation fit (on 1 - ``test_share`` of the campaign users), its held-out scores, and
    the final model fitted on every campaign user (module docstring)."""
    if not 0 < test_share < 1:
        raise DmpError(f"uplift test_share must be in (0, 1), got {test_share}")
    kind = _check_model(model)
    pdf = _collect(training_df, random_state)
    _check_groups(pdf, label)
    test = pdf["_h"] < test_share
    train_pdf, test_pdf = pdf[~test], pdf[test]
    _check_groups(train_pdf, f"{label} (training part of the seeded split)")
    evaluation = fit_uplift(train_pdf, kind, random_state)
    held_out = HeldOut(
        converted=test_pdf["converted"].to_numpy(int),
        treated=test_pdf["treated"].to_numpy(int),
        score=evaluation.predict_uplift(feature_matrix(test_pdf)),
    )
    n_t = int(pdf["treated"].sum())
    return Trained(
        model=fit_uplift(pdf, kind, random_state),
        held_out=held_out,
        n_train=len(train_pdf),
        n_users=len(pdf),
        n_treatment=n_t,
        n_holdout=len(pdf) - n_t,
    )


def score_uplift(features_df: DataFrame, model: UpliftModel) -> DataFrame:
    """``user_id, score`` (predicted uplift) for every row of ``features_df``, in Spark (``mapInPandas``).

    The model is broadcast once (shipped in the closure where there is no SparkContext: Connect)."""
    try:
        broadcast = features_df.sparkSession.sparkContext.broadcast(model)

        def get_model() -> UpliftModel:
            return broadcast.value
    except Exception:  # Spark Connect has no SparkContext

        def get_model() -> UpliftModel:
            return model

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = get_model()
        for pdf in batches:
            if len(pdf) == 0:
                continue
            scores = fitted.predict_uplift(feature_matrix(pdf)).astype(float)
            yield pd.DataFrame({"user_id": pdf["user_id"].astype(str), "score": scores})

    return features_df.select("user_id", "features").mapInPandas(predict, SCORE_SCHEMA)


def target_size(n_users: int, size: int | None, top_share: float | None) -> int:
    """K: ``size``, or ``top_share`` of the ``n_users`` scored (rounded, at least 1 when any user)."""
    if (size is None) == (top_share is None):
        raise DmpError("uplift target: give exactly one of size or top_share")
    if size is not None:
        return int(size)
    assert top_share is not None
    return min(n_users, max(1 if n_users else 0, int(round(top_share * n_users))))
