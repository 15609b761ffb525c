"""Ranking quality of a pack's score: uplift and Qini curves, their areas, uplift at top k.

scikit-uplift 0.5.1 definitions (uplift curve, Qini curve, their areas normalised by the perfect
curve minus the random diagonal; tied scores form one step). Re-implemented here in numpy so that
scikit-uplift stays a test-only dependency; tests compare both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dmp.stats.experiment import TREATMENT
from dmp.stats.intervals import finite

DEFAULT_KS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
UPLIFT_AT_K_STRATEGY = "by_group"

Curve = tuple[np.ndarray, np.ndarray]


def _curve_steps(
    y: np.ndarray, score: np.ndarray, treatment: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative counts at each distinct score, best score first (ties are one step)."""
    order = np.argsort(score, kind="mergesort")[::-1]
    y, score, treatment = y[order].astype(float), score[order], treatment[order].astype(float)
    ends = np.r_[np.flatnonzero(np.diff(score)), score.size - 1]
    n_all = ends + 1
    n_t = np.cumsum(treatment)[ends]
    y_t = np.cumsum(y * treatment)[ends]
    y_c = np.cumsum(y * (1 - treatment))[ends]
    return n_all, n_t, n_all - n_t, y_t, y_c


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b != 0)


def uplift_curve(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> Curve:
    """x = users targeted, y = (rate_t - rate_c among them) x users targeted; starts at (0, 0)."""
    n_all, n_t, n_c, y_t, y_c = _curve_steps(np.asarray(y), np.asarray(score), np.asarray(treatment))
    values = (_safe_div(y_t, n_t) - _safe_div(y_c, n_c)) * n_all
    return np.r_[0, n_all], np.r_[0.0, values]


def qini_curve(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> Curve:
    """x = users targeted, y = conversions_t - conversions_c x n_t / n_c among them; starts at (0, 0)."""
    n_all, n_t, n_c, y_t, y_c = _curve_steps(np.asarray(y), np.asarray(score), np.asarray(treatment))
    values = y_t - y_c * _safe_div(n_t, n_c)
    return np.r_[0, n_all], np.r_[0.0, values]


def perfect_uplift_curve(y: Sequence[int], treatment: Sequence[int]) -> Curve:
    """The uplift curve of the best possible ranking (scikit-uplift's definition)."""
    y_a, t_a = np.asarray(y), np.asarray(treatment)
    control_responders = np.sum((y_a == 1) & (t_a == 0))
    treated_non_responders = np.sum((y_a == 0) & (t_a == 1))
    summand = y_a if control_responders > treated_non_responders else t_a
    return uplift_curve(y_a, 2 * (y_a == t_a) + summand, t_a)


def perfect_qini_curve(y: Sequence[int], treatment: Sequence[int]) -> Curve:
    """Perfect ranking including negative effects (scikit-uplift ``negative_effect=True``)."""
    y_a, t_a = np.asarray(y), np.asarray(treatment)
    return qini_curve(y_a, y_a * t_a - y_a * (1 - t_a), t_a)


def _normalised_area(actual: Curve, perfect: Curve) -> float | None:
    x_end, y_end = perfect[0][-1], perfect[1][-1]
    baseline = np.trapezoid([0.0, y_end], [0.0, x_end])
    denominator = np.trapezoid(perfect[1], perfect[0]) - baseline
    if denominator == 0:
        return None
    return finite((np.trapezoid(actual[1], actual[0]) - baseline) / denominator)


def uplift_auc_score(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> float | None:
    """Area under the uplift curve, 0 = random ranking, 1 = perfect."""
    return _normalised_area(uplift_curve(y, score, treatment), perfect_uplift_curve(y, treatment))


def qini_auc_score(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> float | None:
    """Area under the Qini curve, 0 = random ranking, 1 = perfect."""
    return _normalised_area(qini_curve(y, score, treatment), perfect_qini_curve(y, treatment))


def uplift_at_k(
    y: Sequence[int],
    score: Sequence[float],
    treatment: Sequence[int],
    k: float,
    strategy: str = UPLIFT_AT_K_STRATEGY,
) -> float | None:
    """Rate_t - rate_c among the top-k share (0 < k < 1) by score: ``by_group`` ranks each group on its
    own (top k of treatment vs top k of holdout), ``overall`` takes the top k of everyone."""
    y_a, s_a, t_a = np.asarray(y, dtype=float), np.asarray(score), np.asarray(treatment)
    if not 0 < k < 1:
        raise ValueError(f"k must be a share in (0, 1), got {k}")
    order = np.argsort(s_a, kind="mergesort")[::-1]
    y_o, t_o = y_a[order], t_a[order]
    if strategy == "overall":
        top = int(len(y_a) * k)
        y_top, t_top = y_o[:top], t_o[:top]
        yt, yc = y_top[t_top == 1], y_top[t_top == 0]
    elif strategy == "by_group":
        yt = y_o[t_o == 1][: int((t_a == 1).sum() * k)]
        yc = y_o[t_o == 0][: int((t_a == 0).sum() * k)]
    else:
        raise ValueError(f"strategy must be overall or by_group, got {strategy!r}")
    if len(yt) == 0 or len(yc) == 0:
        return None
    return finite(yt.mean() - yc.mean())


def experiment_arrays(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(converted, score, treated) of an experiment table, as the curve functions take them."""
    return (
        df["converted"].to_numpy(int),
        df["score"].to_numpy(float),
        (df["group"] == TREATMENT).to_numpy(int),
    )


def score_metrics(df: pd.DataFrame, ks: Iterable[float] = DEFAULT_KS) -> dict[str, Any]:
    """Qini / uplift AUC and uplift at each top-k share of an experiment table with a ``score``."""
    y, s, tr = experiment_arrays(df)
    out: dict[str, Any] = {
        "qini_auc": None,
        "uplift_auc": None,
        "uplift_at_k": {},
        "uplift_at_k_strategy": UPLIFT_AT_K_STRATEGY,
    }
    if y.min() == y.max():
        out["score_warning"] = "every user has the same outcome: Qini and uplift curves are undefined"
    else:
        out["qini_auc"] = qini_auc_score(y, s, tr)
        out["uplift_auc"] = uplift_auc_score(y, s, tr)
    if np.unique(s).size == 1:
        out["score_warning"] = "all scores are equal: the ranking carries no information"
    out["uplift_at_k"] = {f"{k:g}": uplift_at_k(y, s, tr, k) for k in ks}
    return out
