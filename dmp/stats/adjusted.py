"""Pre-period balance and the uplift adjusted for it.

When a ``pre_converted`` column is given (the same outcome over the N days up to the run date):
the groups are random, so a gap before the campaign is chance, but a chance gap carries over into
the comparison after it. The report shows that gap (Newcombe interval, z-test) and a
regression-adjusted uplift: Lin's (2013) estimator, OLS of ``converted`` on treatment, the centred
``pre_converted`` and their interaction, HC2 robust interval (statsmodels); for a binary covariate
it is post-stratification on "converted before". The unadjusted uplift stays the headline, as
planned before the data was seen; when the groups differed beforehand (p < alpha) a warning says
so and the verdict quotes the adjusted estimate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dmp.stats.experiment import HOLDOUT, TREATMENT
from dmp.stats.intervals import ALPHA, diff_interval, finite, two_proportion_p_value

AdjustedUplift = tuple[float | None, float | None, float | None, str | None]


def adjusted_uplift(df: pd.DataFrame, alpha: float = ALPHA) -> AdjustedUplift:
    """(uplift, low, high, note): the uplift adjusted for ``pre_converted``.

    Lin's (2013) regression adjustment: OLS of ``converted`` on treatment, the centred covariate and
    their interaction, with an HC2 interval; the treatment coefficient estimates the average
    effect. With a binary covariate this is post-stratification: the uplift among earlier buyers
    and among the others, weighted by their shares of the whole pack. Unlike the model without the
    interaction it is never less precise, asymptotically, than the plain difference. ``note`` says
    why the value or its interval is missing.
    """
    import statsmodels.api as sm

    pre = df["pre_converted"].to_numpy(float)
    if pre.min() == pre.max():
        return None, None, None, "not needed: every user had the same pre-period outcome"
    treated = (df["group"] == TREATMENT).to_numpy(float)
    centred = pre - pre.mean()
    design = np.column_stack([np.ones(len(df)), treated, centred, treated * centred])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        return None, None, None, "not estimable: in one group every user had the same pre-period outcome"
    ols = sm.OLS(df["converted"].to_numpy(float), design).fit()
    coef = finite(round(float(ols.params[1]), 12) + 0.0)  # + 0.0: an exact 0 prints as +0.00, not -0.00
    leverage = np.einsum("ij,jk,ik->i", design, np.linalg.inv(design.T @ design), design)
    if leverage.max() > 1 - 1e-9:  # HC2 divides by 1 - leverage
        return (
            coef,
            None,
            None,
            "no interval: one user alone makes up a group among earlier buyers or the others",
        )
    fit = ols.get_robustcov_results(cov_type="HC2", use_t=False)  # normal quantile, as fit(cov_type=...)
    if not fit.bse[1] > 1e-12:
        return coef, None, None, "no interval: the outcome does not vary within the groups"
    low, high = fit.conf_int(alpha=alpha)[1]
    cells = pd.DataFrame({"t": treated, "pre": pre, "y": df["converted"].to_numpy(float)}).groupby(
        ["t", "pre"]
    )["y"]
    if (cells.min() == cells.max()).any():
        return (
            coef,
            finite(low),
            finite(high),
            (
                "the interval may be too narrow: among the earlier buyers or the others of one group, "
                "every user had the same outcome"
            ),
        )
    return coef, finite(low), finite(high), None


def pre_period_balance(df: pd.DataFrame, alpha: float = ALPHA) -> dict[str, Any]:
    """The groups' conversion before the campaign, their gap, and the uplift adjusted for it."""
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    n_t, n_c = len(t), len(c)
    x_t, x_c = int(t["pre_converted"].sum()), int(c["pre_converted"].sum())
    low, high = diff_interval(x_t, n_t, x_c, n_c, alpha)
    adjusted, adj_low, adj_high, note = adjusted_uplift(df, alpha)
    return {
        "pre_conversions_treatment": x_t,
        "pre_conversions_control": x_c,
        "pre_rate_treatment": finite(x_t / n_t),
        "pre_rate_control": finite(x_c / n_c),
        "pre_diff_abs": finite(x_t / n_t - x_c / n_c),
        "pre_diff_abs_ci": [low, high],
        "pre_p_value": two_proportion_p_value(x_t, n_t, x_c, n_c),
        "uplift_abs_adjusted": adjusted,
        "uplift_abs_adjusted_ci": [adj_low, adj_high],
        "uplift_abs_adjusted_note": note,
    }


def imbalance_warning(report: dict[str, Any], alpha: float = ALPHA) -> str | None:
    """A warning when the groups already differed before the campaign (pre-period p < alpha)."""
    p = report.get("pre_p_value")
    if p is None or p >= alpha:
        return None
    text = (
        f"treatment and holdout already differed before the campaign: {report['pre_rate_treatment']:.1%} vs "
        f"{report['pre_rate_control']:.1%} converted in the pre-period (p = {p:.3g}). Assignment is random, "
        "so this is most likely chance, but the gap carries over into the uplift"
    )
    adjusted, (low, high) = report.get("uplift_abs_adjusted"), report["uplift_abs_adjusted_ci"]
    note = report.get("uplift_abs_adjusted_note")
    if adjusted is None:
        return text + (f"; no adjusted estimate ({note})" if note else "")
    text += f"; adjusted for it: {adjusted * 100:+.2f} points"
    if low is not None and high is not None:
        text += f" (95% CI {low * 100:+.2f} to {high * 100:+.2f})"
    return text + (f"; {note}" if note else "")


def adjusted_agrees(report: dict[str, Any]) -> bool:
    """The adjusted interval excludes zero on the same side as the plain uplift."""
    uplift = report["uplift_abs"]
    adj_low, adj_high = report["uplift_abs_adjusted_ci"]
    return (adj_low is not None and adj_low > 0 and uplift > 0) or (
        adj_high is not None and adj_high < 0 and uplift < 0
    )
