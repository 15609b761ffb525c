"""Incremental ROI of a pack with its interval: (incremental GMV - cost) / cost.

:func:`roi_interval` is the statistic; :func:`roi_report` the report's fields for one experiment
table (its ``value`` column is the GMV, its optional ``cost`` column each treated user's variable
cost). The channel prices come from ``channels.yaml`` (:class:`dmp.contracts.channels.ChannelCost`)
and are turned into a fixed cost and per-user coupon costs by :mod:`dmp.steps.evaluate`.
Cost has two parts: a fixed part known in advance (per delivered user, per mille) and, for coupon
channels, the coupon value of each treated user's redemptions, which is random and moves with
that user's GMV (redeemers buy). The holdout is never contacted, so it has no cost.

With D = mean GMV per treated user - mean GMV per holdout user (the incremental GMV is n_t x D)
and K = fixed / n_t + mean cost per treated user (the cost is n_t x K), ROI = D / K - 1. Its
interval is the delta method's (chosen over a bootstrap: deterministic, instant, and the means
are over thousands of users, so they are close to normal)::

    Var(D / K) ~= Var(D) / K^2 + D^2 Var(K) / K^4 - 2 D Cov(D, K) / K^3

with Var(D) = s2_v,t / n_t + s2_v,c / n_c, Var(K) = s2_cost,t / n_t and Cov(D, K) =
s_v,cost,t / n_t (the holdout's mean GMV is independent of the treated users' cost). When the
cost is all fixed, Var(K) = 0 and the interval is the incremental GMV's normal interval divided by
the cost, minus 1.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dmp.stats.experiment import HOLDOUT, TREATMENT
from dmp.stats.intervals import ALPHA, finite

ROI_METHOD = (
    "incremental ROI = (incremental GMV - cost) / cost; delta-method normal 95% interval with the "
    "treated users' GMV and coupon cost correlated"
)


class Roi(NamedTuple):
    """ROI and its interval (scalars or arrays, one per campaign)."""

    roi: np.ndarray
    low: np.ndarray
    high: np.ndarray
    se: np.ndarray


def roi_interval(
    value_t: np.ndarray,
    value_c: np.ndarray,
    cost_t: np.ndarray | None = None,
    fixed_cost: float | np.ndarray = 0.0,
    alpha: float = ALPHA,
) -> Roi:
    """ROI of one or many campaigns; the users are on the last axis (``value_t``/``cost_t`` aligned).

    ``cost_t`` is each treated user's variable cost (e.g. coupon value redeemed; None: none);
    ``fixed_cost`` the campaign's fixed cost. NaN when the total cost is not positive.
    """
    from scipy.stats import norm

    v_t, v_c = np.asarray(value_t, float), np.asarray(value_c, float)
    c_t = np.zeros_like(v_t) if cost_t is None else np.asarray(cost_t, float)
    n_t, n_c = v_t.shape[-1], v_c.shape[-1]
    d = v_t.mean(axis=-1) - v_c.mean(axis=-1)
    k = np.asarray(fixed_cost, float) / n_t + c_t.mean(axis=-1)
    var_d = v_t.var(axis=-1, ddof=1) / n_t + v_c.var(axis=-1, ddof=1) / n_c
    var_k = c_t.var(axis=-1, ddof=1) / n_t
    centred = (v_t - v_t.mean(axis=-1, keepdims=True)) * (c_t - c_t.mean(axis=-1, keepdims=True))
    cov_dk = centred.sum(axis=-1) / (n_t - 1) / n_t
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = d / k
        var = var_d / k**2 + d**2 * var_k / k**4 - 2 * d * cov_dk / k**3
        se = np.sqrt(np.maximum(var, 0.0))
        half = norm.ppf(1 - alpha / 2) * se
        bad = ~(k > 0)
        out = [ratio - 1, ratio - 1 - half, ratio - 1 + half, se]
    return Roi(*(np.where(bad, np.nan, v) for v in out))


def roi_report(df: pd.DataFrame, fixed_cost: float | None, alpha: float = ALPHA) -> dict[str, Any]:
    """The report's cost and ROI fields.

    ``fixed_cost`` is what the deliveries cost whatever the users did (None: the cost is not
    known, and every field is None); the ``cost`` column, when present, each treated user's
    variable cost (coupon value redeemed); the holdout was never contacted and costs nothing.
    """
    empty: dict[str, Any] = {
        "cost": None,
        "cost_delivery": None,
        "cost_coupons": None,
        "roi": None,
        "roi_ci": [None, None],
    }
    if fixed_cost is None or "value" not in df.columns:
        return empty
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    cost_t = t["cost"].to_numpy(float) if "cost" in df.columns else np.zeros(len(t))
    variable = float(cost_t.sum())
    res = roi_interval(t["value"].to_numpy(float), c["value"].to_numpy(float), cost_t, fixed_cost, alpha)
    return {
        "cost": finite(fixed_cost + variable),
        "cost_delivery": finite(fixed_cost),
        "cost_coupons": finite(variable),
        "roi": finite(res.roi),
        "roi_ci": [finite(res.low), finite(res.high)],
    }
