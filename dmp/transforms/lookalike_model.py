"""The lookalike's model on the driver: scikit-learn pipelines, fitted on collected feature rows.

Kept apart from the Spark side (:mod:`dmp.transforms.lookalike`) because it is plain numpy /
pandas / scikit-learn: the same ``predict_scores`` runs on the driver (evaluation, tests) and
inside ``mapInPandas`` on the executors, which is what makes the two scores equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.contracts.specs import LOOKALIKE_MODELS

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

MODELS: tuple[str, ...] = LOOKALIKE_MODELS
MODEL_ALIASES: dict[str, str] = {
    "logistic": "logistic",
    "logreg": "logistic",
    "gradient_boosting": "gradient_boosting",
    "gbm": "gradient_boosting",
    "gbdt": "gradient_boosting",
}


def normalise_model(model: str) -> str:
    name = MODEL_ALIASES.get(str(model).strip().lower())
    if name is None:
        raise DmpError(f"lookalike model {model!r} is not supported; expected one of: {', '.join(MODELS)}")
    return name


def build_pipeline(model: str, random_state: int = 0) -> Pipeline:
    """The scikit-learn pipeline for ``model`` (standardised features, then the classifier)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    name = normalise_model(model)
    clf: LogisticRegression | HistGradientBoostingClassifier
    if name == "logistic":
        clf = LogisticRegression(max_iter=2000, C=1.0)
    else:
        # No early stopping: its validation split would make the fit depend on more than random_state.
        clf = HistGradientBoostingClassifier(
            max_iter=150,
            learning_rate=0.1,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            early_stopping=False,
            random_state=random_state,
        )
    return Pipeline([("scale", StandardScaler()), ("model", clf)])


def feature_matrix(pdf: pd.DataFrame) -> np.ndarray:
    """The ``features`` arrays of collected rows stacked into one matrix, in row order."""
    if len(pdf) == 0:
        return np.zeros((0, 0))
    return np.vstack([np.asarray(v, dtype=float) for v in pdf["features"].to_numpy()])


def fit_pipeline(pos_pdf: pd.DataFrame, neg_pdf: pd.DataFrame, model: str, random_state: int) -> Pipeline:
    """Fit on collected feature rows (positives label 1, negatives label 0), in a fixed row order."""
    X = np.vstack([feature_matrix(pos_pdf), feature_matrix(neg_pdf)])
    y = np.concatenate([np.ones(len(pos_pdf)), np.zeros(len(neg_pdf))])
    pipeline = build_pipeline(model, random_state)
    pipeline.fit(X, y)
    return pipeline


def predict_scores(pipeline: Pipeline, pdf: pd.DataFrame) -> np.ndarray:
    """Probability of looking like the seed, per collected row (empty in, empty out)."""
    if len(pdf) == 0:
        return np.zeros(0)
    return pipeline.predict_proba(feature_matrix(pdf))[:, 1].astype(float)


def auc(pos_scores: np.ndarray, neg_scores: np.ndarray) -> float | None:
    """ROC AUC of positives against negatives; None when either side is empty."""
    if len(pos_scores) == 0 or len(neg_scores) == 0:
        return None
    from sklearn.metrics import roc_auc_score

    y = np.concatenate([np.ones(len(pos_scores)), np.zeros(len(neg_scores))])
    return float(roc_auc_score(y, np.concatenate([pos_scores, neg_scores])))


def target_size(n_seed: int, size: int | None, ratio: float | None) -> int:
    """K, the number of lookalike users to pick: ``size``, or ``ratio`` x the seed (at least 1)."""
    if size is not None and ratio is not None:
        raise DmpError("lookalike expansion: give either size or ratio, not both")
    if size is not None:
        if int(size) <= 0:
            raise DmpError(f"lookalike expansion.size must be a positive integer, got {size}")
        return int(size)
    if ratio is not None:
        if float(ratio) <= 0:
            raise DmpError(f"lookalike expansion.ratio must be positive, got {ratio}")
        return max(1, int(round(float(ratio) * n_seed)))
    raise DmpError("lookalike expansion: size or ratio is required")
