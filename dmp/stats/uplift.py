"""Uplift statistics for one treatment/holdout experiment (pure pandas/numpy; no Spark).

:func:`evaluate_experiment` turns the experiment table (:mod:`dmp.stats.experiment`) into the
report.json body: group rates, the uplift with its intervals and p-value
(:mod:`dmp.stats.intervals`), incremental value, MDE, the cumulative uplift by day of the window,
ranking metrics when a score is given (:mod:`dmp.stats.qini`), the pre-period balance check and
adjusted uplift when ``pre_converted`` is given (:mod:`dmp.stats.adjusted`), the trust checks of
issue 19 (sample-ratio mismatch, :mod:`dmp.stats.srm`; CUPED and its variance reduction,
:mod:`dmp.stats.cuped`; the daily confidence sequence, :mod:`dmp.stats.sequential`), warnings
and a one-sentence verdict. Holm adjustment across the packs of one run date is applied
afterwards by :func:`dmp.stats.multiple.apply_holm`. docs/uplift.md and docs/uplift-trust.md
explain the choices in plain words.

The names of those modules are re-exported here, so ``from dmp.stats import uplift`` and
``uplift.diff_interval`` / ``uplift.qini_curve`` / ``uplift.TREATMENT`` keep working.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from dmp.stats.adjusted import adjusted_agrees, adjusted_uplift, imbalance_warning, pre_period_balance
from dmp.stats.cuped import CUPED_METHOD, cuped_report
from dmp.stats.experiment import (
    CONTROL_ALIASES,
    HOLDOUT,
    TREATMENT,
    binary_column,
    numeric_column,
    prepare_experiment,
)
from dmp.stats.intervals import (
    ALPHA,
    POWER,
    diff_interval,
    diff_intervals,
    finite,
    minimum_detectable_effect,
    relative_interval,
    scaled,
    two_proportion_p_value,
    welch_interval,
    wilson_interval,
)
from dmp.stats.qini import (
    DEFAULT_KS,
    UPLIFT_AT_K_STRATEGY,
    perfect_qini_curve,
    perfect_uplift_curve,
    qini_auc_score,
    qini_curve,
    score_metrics,
    uplift_at_k,
    uplift_auc_score,
    uplift_curve,
)
from dmp.stats.roi import ROI_METHOD, roi_report
from dmp.stats.sequential import CS_METHOD, sequential_block, uplift_abs_cs
from dmp.stats.srm import SRM_ALPHA, srm_fields, srm_warning

__all__ = [
    "ALPHA",
    "CONTROL_ALIASES",
    "DEFAULT_KS",
    "HOLDOUT",
    "METHODS",
    "MIN_EXPECTED_CONVERSIONS",
    "MIN_GROUP_SIZE",
    "POWER",
    "TREATMENT",
    "UPLIFT_AT_K_STRATEGY",
    "Report",
    "adjusted_uplift",
    "binary_column",
    "cumulative_uplift_by_day",
    "daily_series",
    "diff_interval",
    "evaluate_experiment",
    "imbalance_warning",
    "minimum_detectable_effect",
    "numeric_column",
    "perfect_qini_curve",
    "perfect_uplift_curve",
    "pre_period_balance",
    "prepare_experiment",
    "qini_auc_score",
    "qini_curve",
    "relative_interval",
    "sample_size_warnings",
    "score_metrics",
    "two_proportion_p_value",
    "uplift_at_k",
    "uplift_auc_score",
    "uplift_curve",
    "verdict",
    "welch_interval",
    "wilson_interval",
]

# The report.json body: JSON values keyed by the contract's field names (docs/uplift.md).
Report = dict[str, Any]

# Below these the normal approximations behind every interval here get unreliable.
MIN_GROUP_SIZE = 100
MIN_EXPECTED_CONVERSIONS = 10

METHODS = {
    "uplift_abs_ci": "Newcombe hybrid score interval (two Wilson intervals), 95%",
    "uplift_rel_ci": "log risk-ratio (Katz) interval, 0.5 added to counts, minus 1",
    "p_value": "pooled two-proportion z-test, two-sided (chi-square without continuity correction)",
    "incremental_value_ci": "Welch t interval on value per user x n_treatment",
    "mde": "80% power, alpha 0.05 two-sided, Cohen's h (statsmodels NormalIndPower)",
    "pre_diff_abs_ci": "the same outcome over the N days up to the run date: Newcombe interval, z-test p-value",
    "uplift_abs_adjusted_ci": (
        "Lin (2013) regression adjustment: OLS of converted on treatment, centred pre_converted and their "
        "interaction, HC2 robust 95% interval"
    ),
    "curves": "scikit-uplift 0.5.1 definitions (qini_auc_score negative_effect=True, uplift_auc_score)",
    "srm_p_value": (
        f"sample ratio mismatch: chi-square goodness of fit of the group sizes to the expected holdout share "
        f"(scipy chisquare, 1 df); p < {SRM_ALPHA} is a mismatch"
    ),
    "uplift_abs_cuped_ci": CUPED_METHOD,
    "uplift_abs_cs": CS_METHOD,
    "roi_ci": ROI_METHOD,
}


def _group_block(sub: pd.DataFrame, has_value: bool, alpha: float) -> dict[str, Any]:
    n = len(sub)
    conversions = int(sub["converted"].sum())
    low, high = wilson_interval(conversions, n, alpha)
    block: dict[str, Any] = {
        "n": n,
        "conversions": conversions,
        "rate": finite(conversions / n) if n else None,
        "rate_ci": [low, high],
    }
    if has_value:
        block["value_total"] = finite(sub["value"].sum())
        block["value_per_user"] = finite(sub["value"].mean()) if n else None
    return block


def daily_counts(df: pd.DataFrame, window_days: int) -> tuple[np.ndarray, int, np.ndarray, int]:
    """(conversions of the treatment by day 1..N, n_treatment, the same for the holdout, n_holdout)."""
    days = np.arange(1, window_days + 1)

    def by_day(sub: pd.DataFrame) -> np.ndarray:
        when = sub.loc[sub["converted"] == 1, "days_to_convert"].to_numpy(float)
        return (when[None, :] <= days[:, None]).sum(axis=1)

    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    return by_day(t), len(t), by_day(c), len(c)


def daily_series(
    df: pd.DataFrame, window_days: int, alpha: float = ALPHA, planned_information: float | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(rows, sequential block): per day d of the window the groups' shares converted by day d,
    their difference with its fixed-horizon interval (``ci``, right for one look decided in advance)
    and its confidence sequence (``uplift_abs_cs``, right for every day at once)."""
    x_t, n_t, x_c, n_c = daily_counts(df, window_days)
    low, high = diff_intervals(x_t, n_t, x_c, n_c, alpha)
    seq = uplift_abs_cs(x_t, n_t, x_c, n_c, planned_information, alpha)
    rows = [
        {
            "day": day,
            "n_treatment": n_t,
            "n_control": n_c,
            "conversions_treatment": int(x_t[i]),
            "conversions_control": int(x_c[i]),
            "rate_treatment": finite(x_t[i] / n_t),
            "rate_control": finite(x_c[i] / n_c),
            "uplift_abs": finite(x_t[i] / n_t - x_c[i] / n_c),
            "ci": [finite(low[i]), finite(high[i])],
            "uplift_abs_cs": [finite(seq.low[i]), finite(seq.high[i])],
            "information": finite(seq.information[i]),
        }
        for i, day in enumerate(range(1, window_days + 1))
    ]
    return rows, sequential_block(seq, alpha)


def cumulative_uplift_by_day(
    df: pd.DataFrame, window_days: int, alpha: float = ALPHA, planned_information: float | None = None
) -> list[dict[str, Any]]:
    """The rows of :func:`daily_series`: per day the uplift so far, its fixed interval and its sequence."""
    return daily_series(df, window_days, alpha, planned_information)[0]


def _conversion_fields(df: pd.DataFrame, alpha: float, power: float) -> Report:
    """Group sizes, rates, the uplift with its intervals, MDE and the group blocks (value fields empty)."""
    has_value = "value" in df.columns
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    n_t, n_c = len(t), len(c)
    x_t, x_c = int(t["converted"].sum()), int(c["converted"].sum())
    rate_t, rate_c = x_t / n_t, x_c / n_c
    uplift = rate_t - rate_c
    interval = diff_interval(x_t, n_t, x_c, n_c, alpha)
    mde = minimum_detectable_effect(n_t, n_c, rate_c, alpha, power)
    return {
        "n_treatment": n_t,
        "n_control": n_c,
        "conversions_treatment": x_t,
        "conversions_control": x_c,
        "rate_treatment": finite(rate_t),
        "rate_control": finite(rate_c),
        "rate_treatment_ci": list(wilson_interval(x_t, n_t, alpha)),
        "rate_control_ci": list(wilson_interval(x_c, n_c, alpha)),
        "uplift_abs": finite(uplift),
        "uplift_abs_ci": list(interval),
        "uplift_rel": finite(uplift / rate_c) if rate_c > 0 else None,
        "uplift_rel_ci": list(relative_interval(x_t, n_t, x_c, n_c, alpha)),
        "p_value": two_proportion_p_value(x_t, n_t, x_c, n_c),
        "incremental_conversions": finite(uplift * n_t),
        "incremental_conversions_ci": scaled(interval, n_t),
        "value_per_user_treatment": None,
        "value_per_user_control": None,
        "incremental_value": None,
        "incremental_value_ci": [None, None],
        "mde": mde,
        "mde_rel": finite(mde / rate_c) if mde is not None and rate_c > 0 else None,
        "alpha": alpha,
        "power": power,
        "groups": {
            "treatment": _group_block(t, has_value, alpha),
            "control": _group_block(c, has_value, alpha),
        },
        "methods": dict(METHODS),
    }


def _value_fields(df: pd.DataFrame, alpha: float) -> Report:
    """Value per user in each group and the incremental value (Welch interval x n_treatment)."""
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    diff, v_low, v_high = welch_interval(t["value"].to_numpy(float), c["value"].to_numpy(float), alpha)
    return {
        "value_per_user_treatment": finite(t["value"].mean()),
        "value_per_user_control": finite(c["value"].mean()),
        "incremental_value": finite(diff * len(t)) if diff is not None else None,
        "incremental_value_ci": scaled((v_low, v_high), len(t)),
    }


def evaluate_experiment(
    df: pd.DataFrame,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    ks: Iterable[float] = DEFAULT_KS,
    window_days: int | None = None,
    source: str = "input",
    expected_holdout_share: float | None = None,
    planned_information: float | None = None,
    fixed_cost: float | None = None,
) -> Report:
    """The report.json body for one experiment (contract fields plus details).

    ``expected_holdout_share`` is the design's holdout share (the spec's ``holdout``); without it
    the sample-ratio check is not run and ``srm_note`` says so. ``planned_information`` tunes the
    daily confidence sequence (default: the information of the window's last day).
    ``fixed_cost`` is what the deliveries cost (the ``cost`` column adds each treated user's
    coupon cost); without it the cost and ROI fields are None.
    """
    df = prepare_experiment(df, source)
    report = _conversion_fields(df, alpha, power)
    if "value" in df.columns:
        report.update(_value_fields(df, alpha))
    if "score" in df.columns:
        report.update(score_metrics(df, ks))
    if window_days and "days_to_convert" in df.columns:
        report["window_days"] = window_days
        report["cumulative_uplift"], report["sequential"] = daily_series(
            df, window_days, alpha, planned_information
        )
    report.update(srm_fields(report["n_treatment"], report["n_control"], expected_holdout_share))
    report.update(cuped_report(df, alpha))
    report.update(roi_report(df, fixed_cost, alpha))

    warnings = sample_size_warnings(
        report["n_treatment"],
        report["n_control"],
        report["conversions_treatment"],
        report["conversions_control"],
        report["mde"],
        report["rate_control"],
    )
    low, high = report["uplift_abs_ci"]
    report["significant"] = bool(low is not None and high is not None and (low > 0 or high < 0))
    report["conclusive"] = report["significant"] and not any(
        w.startswith("holdout too small") for w in warnings
    )
    if "pre_converted" in df.columns:
        report.update(pre_period_balance(df, alpha))
        imbalance = imbalance_warning(report, alpha)
        report["imbalanced"] = imbalance is not None
        if imbalance:
            warnings.append(imbalance)
            # still conclusive only if the adjusted interval excludes zero on the same side
            report["conclusive"] = report["conclusive"] and adjusted_agrees(report)
    mismatch = srm_warning(report)
    if mismatch:
        warnings.insert(0, mismatch)  # first: it puts every other number in doubt
        report["conclusive"] = False
    report["warnings"] = warnings
    report["verdict"] = verdict(report)
    return report


def sample_size_warnings(
    n_t: int, n_c: int, x_t: int, x_c: int, mde: float | None, rate_c: float
) -> list[str]:
    """Why the holdout (or the treatment group) is too small for the intervals to be trusted."""
    warnings = []
    pooled = (x_t + x_c) / (n_t + n_c)
    if n_c < MIN_GROUP_SIZE:
        warnings.append(
            f"holdout too small to conclude: {n_c} users (< {MIN_GROUP_SIZE}); intervals are unreliable"
        )
    elif n_c * pooled < MIN_EXPECTED_CONVERSIONS or n_c * (1 - pooled) < MIN_EXPECTED_CONVERSIONS:
        warnings.append(
            f"holdout too small to conclude: about {n_c * pooled:.1f} conversions expected in the holdout "
            f"(< {MIN_EXPECTED_CONVERSIONS}); intervals are unreliable"
        )
    elif mde is not None and rate_c > 0 and mde > rate_c:
        warnings.append(
            f"holdout too small to conclude: only an uplift of at least {mde * 100:.1f} points "
            f"(more than doubling the holdout's {rate_c * 100:.1f}%) would be detected reliably"
        )
    if n_t < MIN_GROUP_SIZE:
        warnings.append(f"treatment group is small: {n_t} users (< {MIN_GROUP_SIZE})")
    return warnings


def verdict(report: Report) -> str:
    """One sentence for the marketer; a sample ratio mismatch ends it with why it cannot be trusted."""
    sentence = _effect_verdict(report)
    if not report.get("srm_mismatch"):
        return sentence
    return (
        f"{sentence}; but the holdout is {report['observed_holdout_share']:.2%} of the users where the design "
        f"says {report['expected_holdout_share']:.2%} (sample ratio mismatch, p = {report['srm_p_value']:.3g}), "
        "so this result cannot be trusted until the assignment or delivery is fixed"
    )


def _effect_verdict(report: Report) -> str:
    """The effect and its interval, and the pre-period caveat when the groups already differed."""
    low, high = report["uplift_abs_ci"]
    pts = (report["uplift_abs"] or 0.0) * 100
    if low is None or high is None:
        return "not enough data to estimate an uplift"
    span = f"{pts:+.2f} points (95% CI {low * 100:+.2f} to {high * 100:+.2f})"
    if low > 0:
        sentence = f"the campaign raised conversion by {span}"
    elif high < 0:
        sentence = f"the campaign lowered conversion by {span}"
    else:
        mde = report.get("mde")
        tail = (
            f"; effects smaller than {mde * 100:.2f} points could not be detected" if mde is not None else ""
        )
        sentence = f"no effect detected: {span} includes zero{tail}"
    if not report.get("imbalanced"):
        return sentence
    gap = f"the groups already differed by {report['pre_diff_abs'] * 100:+.2f} points before the campaign"
    adjusted, (adj_low, adj_high) = report.get("uplift_abs_adjusted"), report["uplift_abs_adjusted_ci"]
    if adjusted is None or adj_low is None or adj_high is None:
        return f"{sentence}; but {gap}, so part of it may be that chance imbalance"
    adj = f"{adjusted * 100:+.2f} points (95% CI {adj_low * 100:+.2f} to {adj_high * 100:+.2f})"
    if adj_low <= 0 <= adj_high:
        return f"{sentence}; but {gap}: adjusted for that, {adj}, which includes zero, so no effect is established"
    if report.get("significant") and (adj_low > 0) == (report["uplift_abs"] > 0):
        return f"{sentence}; {gap}: adjusted for that, {adj}"
    return f"{sentence}; but {gap}: adjusted for that, {adj}; the two estimates disagree, so the result is not settled"
