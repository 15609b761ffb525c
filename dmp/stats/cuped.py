"""CUPED: the uplift with the pre-period outcome taken out of the noise, in every report.

Users who bought in the N days before the run date are far more likely to buy in the window,
treated or not. That part of the outcome is predictable, so it is noise for the comparison.
CUPED (Deng, Xu, Kohavi & Walker, WSDM 2013) subtracts it: each user's outcome Y becomes
``Y - theta * (X - mean X)`` with X the same metric in the pre-period, and the uplift is the
difference of the adjusted means. Because assignment is random, X has the same mean in both
groups, so the estimate targets the same effect; only its variance shrinks, by about rho^2 where
rho is the correlation between X and Y.

Choices:

* ``theta`` is the pooled within-group slope of Y on X (sum of the groups' centred cross-products
  over their centred squares), so the treatment effect itself does not leak into it. The
  estimate is then the ANCOVA coefficient of treatment (OLS of Y on treatment and X).
* its variance is Welch-style, from each group's variance of the adjusted outcome:
  ``s2_adj_t / n_t + s2_adj_c / n_c``; estimating theta adds nothing to first order, and this
  stays right when the slopes differ between the groups or the groups differ in size.
* the interval is normal, ``estimate +/- z_(1-alpha/2) * se``.
* ``variance_reduction = 1 - Var_adj / Var_plain``, both Welch variances of the difference of
  means (Var_plain = ``s2_t / n_t + s2_c / n_c``): the share of the plain estimate's variance the
  pre-period explained; 0.3 means the test was as precise as one with 1 / 0.7 = 1.43 times the users.

Everything is computed from per-group sums (:class:`Moments`), so the functions take arrays and a
simulation of thousands of campaigns runs in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from dmp.stats.experiment import HOLDOUT, TREATMENT
from dmp.stats.intervals import ALPHA, finite

CUPED_METHOD = (
    "CUPED (Deng et al. 2013): outcome minus theta x centred pre-period outcome, theta the pooled "
    "within-group slope; Welch variance of the adjusted means, normal 95% interval"
)


@dataclass(frozen=True)
class Moments:
    """Per-group sums of one outcome Y and its pre-period covariate X (scalars or arrays)."""

    n: np.ndarray
    sum_y: np.ndarray
    sum_x: np.ndarray
    sum_yy: np.ndarray
    sum_xx: np.ndarray
    sum_xy: np.ndarray

    @classmethod
    def of(cls, y: np.ndarray, x: np.ndarray) -> Moments:
        """The sums of one group's users (``y`` and ``x`` one value per user)."""
        y, x = np.asarray(y, float), np.asarray(x, float)
        return cls(*(np.asarray(v, float) for v in (len(y), y.sum(), x.sum(), y @ y, x @ x, x @ y)))

    def centred(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(S_yy, S_xx, S_xy): the sums of squares and cross-products about the group's means."""
        n = self.n
        return (
            self.sum_yy - self.sum_y**2 / n,
            self.sum_xx - self.sum_x**2 / n,
            self.sum_xy - self.sum_x * self.sum_y / n,
        )


class Cuped(NamedTuple):
    """CUPED estimate of mean_t - mean_c with its interval, the plain and adjusted variances."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    theta: np.ndarray
    var_plain: np.ndarray
    var_adjusted: np.ndarray
    variance_reduction: np.ndarray


def cuped(t: Moments, c: Moments, alpha: float = ALPHA) -> Cuped:
    """CUPED difference of means; NaN where it is not defined (no variance in X, a group below 2)."""
    from scipy.stats import norm

    with np.errstate(divide="ignore", invalid="ignore"):
        syy_t, sxx_t, sxy_t = t.centred()
        syy_c, sxx_c, sxy_c = c.centred()
        theta = (sxy_t + sxy_c) / (sxx_t + sxx_c)
        plain = (t.sum_y / t.n) - (c.sum_y / c.n)
        estimate = plain - theta * (t.sum_x / t.n - c.sum_x / c.n)
        var_plain = syy_t / (t.n - 1) / t.n + syy_c / (c.n - 1) / c.n
        adj_t = (syy_t - 2 * theta * sxy_t + theta**2 * sxx_t) / (t.n - 1)
        adj_c = (syy_c - 2 * theta * sxy_c + theta**2 * sxx_c) / (c.n - 1)
        var_adjusted = np.maximum(adj_t, 0.0) / t.n + np.maximum(adj_c, 0.0) / c.n
        half = norm.ppf(1 - alpha / 2) * np.sqrt(var_adjusted)
        reduction = 1.0 - var_adjusted / var_plain
        undefined = ~((t.n >= 2) & (c.n >= 2) & (sxx_t + sxx_c > 0))
        out = [estimate, estimate - half, estimate + half, theta, var_plain, var_adjusted, reduction]
        return Cuped(*(np.where(undefined, np.nan, np.asarray(v, float)) for v in out))


def cuped_fields(df: pd.DataFrame, outcome: str, covariate: str, alpha: float = ALPHA) -> dict[str, Any]:
    """(estimate, [low, high], variance_reduction, theta, note) of one outcome for the report."""
    if covariate not in df.columns:
        note = f"no {covariate} column: the experiment table has no pre-period outcome to adjust for"
        return {"estimate": None, "ci": [None, None], "variance_reduction": None, "theta": None, "note": note}
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    res = cuped(Moments.of(t[outcome], t[covariate]), Moments.of(c[outcome], c[covariate]), alpha)
    note = None
    if not np.isfinite(res.estimate):
        note = (
            f"not defined: every user had the same {covariate}"
            if len(t) >= 2 and len(c) >= 2
            else "not defined: a group has fewer than 2 users"
        )
    return {
        "estimate": finite(res.estimate),
        "ci": [finite(res.low), finite(res.high)],
        "variance_reduction": finite(res.variance_reduction),
        "theta": finite(res.theta),
        "note": note,
    }


def cuped_report(df: pd.DataFrame, alpha: float = ALPHA) -> dict[str, Any]:
    """The report's CUPED fields: the conversion uplift on ``pre_converted``, and the value per user
    on ``pre_value`` when the table has both (else those value fields are None)."""
    conv = cuped_fields(df, "converted", "pre_converted", alpha)
    fields: dict[str, Any] = {
        "uplift_abs_cuped": conv["estimate"],
        "uplift_abs_cuped_ci": conv["ci"],
        "variance_reduction": conv["variance_reduction"],
        "cuped_theta": conv["theta"],
        "cuped_covariate": "pre_converted" if "pre_converted" in df.columns else None,
        "cuped_note": conv["note"],
        "incremental_value_cuped": None,
        "incremental_value_cuped_ci": [None, None],
        "value_variance_reduction": None,
    }
    if "value" in df.columns and "pre_value" in df.columns:
        n_t = int((df["group"] == TREATMENT).sum())
        val = cuped_fields(df, "value", "pre_value", alpha)
        fields["incremental_value_cuped"] = (
            finite(val["estimate"] * n_t) if val["estimate"] is not None else None
        )
        fields["incremental_value_cuped_ci"] = [finite(v * n_t) if v is not None else None for v in val["ci"]]
        fields["value_variance_reduction"] = val["variance_reduction"]
    return fields
