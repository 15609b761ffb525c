"""Uplift statistics for one treatment/holdout experiment (pure pandas/numpy; no Spark).

Input: one row per user with ``group`` (treatment | holdout; "control" is accepted as a synonym of
holdout), ``converted`` (0/1), ``value`` (float, e.g. GMV in scope) and optionally ``score`` (the
pack's ranking score) and ``days_to_convert`` (1..N: the day of the window of the first conversion).

Choices (docs/uplift.md explains them in plain words):

* absolute uplift CI: Newcombe's hybrid score interval (method 10, built from two Wilson intervals;
  statsmodels ``confint_proportions_2indep(method="newcomb")``). Unlike Wald it keeps its 95%
  coverage at the low conversion rates (1-10%) and small holdouts campaigns have, never leaves
  [-1, 1] and still works when one group has zero conversions.
* relative uplift CI: log risk-ratio (Katz) interval with 0.5 added to each count
  (``method="log-adjusted"``), minus 1; finite even with zero conversions.
* p-value: pooled two-proportion z-test (``proportions_ztest``), two-sided; this is the
  chi-square test without continuity correction that most A/B tools report, so analysts can
  reproduce it elsewhere.
* incremental value: Welch's t interval on value per user (all users, zeros included) times the
  treatment size. Value is skewed but groups have hundreds of users, so the mean is close to
  normal; Welch does not assume equal variances, and unlike a bootstrap it is deterministic and
  instant, so a rerun gives the same numbers.
* MDE: smallest absolute uplift detectable with 80% power at alpha 0.05 (two-sided) for the actual
  group sizes and the holdout's rate, via statsmodels ``NormalIndPower`` (Cohen's h) mapped back to
  a rate difference.
* pre-period balance (when a ``pre_converted`` column is given: the same outcome over the N days up
  to the run date): the groups are random, so a gap before the campaign is chance, but a chance gap
  carries over into the comparison after it. The report shows that gap (Newcombe interval, z-test)
  and a regression-adjusted uplift: Lin's (2013) estimator, OLS of ``converted`` on treatment,
  the centred ``pre_converted`` and their interaction, HC2 robust interval (statsmodels); for a
  binary covariate it is post-stratification on "converted before". The unadjusted uplift stays
  the headline, as planned before the data was seen; when the groups differed beforehand
  (p < alpha) a warning says so and the verdict quotes the adjusted estimate.
* curves: scikit-uplift 0.5.1 definitions (uplift curve, Qini curve, their areas normalised by the
  perfect curve minus the random diagonal; tied scores form one step). Re-implemented here in
  numpy so that scikit-uplift stays a test-only dependency; tests compare both.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dmp.contracts.errors import DmpError

TREATMENT = "treatment"
HOLDOUT = "holdout"
CONTROL_ALIASES = ("holdout", "control")

ALPHA = 0.05
POWER = 0.80
DEFAULT_KS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.5)
UPLIFT_AT_K_STRATEGY = "by_group"

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
}


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------


def prepare_experiment(df: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Validate and normalise an experiment table; errors name ``source`` and the column."""
    missing = [c for c in ("group", "converted") if c not in df.columns]
    if missing:
        raise DmpError(f"{source}: missing column(s) {missing}; expected group, converted[, value, score]")
    out = df.copy()
    out["group"] = out["group"].astype(str).str.strip().str.lower()
    out.loc[out["group"].isin(CONTROL_ALIASES), "group"] = HOLDOUT
    bad_groups = sorted(set(out["group"]) - {TREATMENT, HOLDOUT})
    if bad_groups:
        raise DmpError(f"{source}: column 'group' has values {bad_groups[:5]}; expected treatment or holdout")
    out["converted"] = binary_column(out["converted"], source, "converted")
    if "value" in out.columns:
        out["value"] = numeric_column(out["value"], source, "value")
    if "score" in out.columns:
        out["score"] = numeric_column(out["score"], source, "score")
    if "pre_converted" in out.columns:
        out["pre_converted"] = binary_column(out["pre_converted"], source, "pre_converted")
    for grp in (TREATMENT, HOLDOUT):
        if not (out["group"] == grp).any():
            raise DmpError(f"{source}: the {grp} group is empty; an uplift needs users in both groups")
    return out.reset_index(drop=True)


def binary_column(values: pd.Series, source: str, column: str) -> pd.Series:
    """0/1 ints from 0/1 numbers, booleans or 'true'/'false' strings; anything else is an error."""
    if values.isna().any():
        raise DmpError(
            f"{source}: column {column!r} has {int(values.isna().sum())} empty value(s); expected 0 or 1"
        )
    if values.dtype == bool:
        return values.astype(int)
    if values.dtype == object:
        lowered = values.astype(str).str.strip().str.lower()
        mapping = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0}
        bad = sorted(set(lowered) - set(mapping))
        if bad:
            raise DmpError(f"{source}: column {column!r} is not binary: found {bad[:5]}; expected 0 or 1")
        return lowered.map(mapping).astype(int)
    numeric = pd.to_numeric(values, errors="coerce")
    bad_vals = sorted(set(numeric.dropna().unique()) - {0, 1})
    if bad_vals or numeric.isna().any():
        raise DmpError(
            f"{source}: column {column!r} is not binary: found {[float(v) for v in bad_vals[:5]]}; expected 0 or 1"
        )
    return numeric.astype(int)


def numeric_column(values: pd.Series, source: str, column: str) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna()]
    if len(bad):
        raise DmpError(
            f"{source}: column {column!r} has {len(bad)} empty or non-numeric value(s) "
            f"(first: {bad.iloc[0]!r}); expected a number"
        )
    if not np.isfinite(numeric.to_numpy(dtype=float)).all():
        raise DmpError(f"{source}: column {column!r} has infinite values; expected finite numbers")
    return numeric.astype(float)


# --------------------------------------------------------------------------------------------
# two-group statistics
# --------------------------------------------------------------------------------------------


def _f(x: Any) -> float | None:
    """JSON-safe float (NaN/inf -> None)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def wilson_interval(count: int, nobs: int, alpha: float = ALPHA) -> tuple[float | None, float | None]:
    from statsmodels.stats.proportion import proportion_confint

    if nobs == 0:
        return None, None
    low, high = proportion_confint(count, nobs, alpha=alpha, method="wilson")
    return _f(low), _f(high)


def diff_interval(
    count_t: int, n_t: int, count_c: int, n_c: int, alpha: float = ALPHA
) -> tuple[float | None, float | None]:
    """Newcombe hybrid score interval for rate_t - rate_c."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    if n_t == 0 or n_c == 0:
        return None, None
    low, high = confint_proportions_2indep(
        count_t, n_t, count_c, n_c, method="newcomb", compare="diff", alpha=alpha
    )
    return _f(low), _f(high)


def relative_interval(
    count_t: int, n_t: int, count_c: int, n_c: int, alpha: float = ALPHA
) -> tuple[float | None, float | None]:
    """Interval for rate_t / rate_c - 1 (log risk ratio, 0.5-adjusted)."""
    from statsmodels.stats.proportion import confint_proportions_2indep

    if n_t == 0 or n_c == 0 or (count_t == 0 and count_c == 0):
        return None, None
    low, high = confint_proportions_2indep(
        count_t, n_t, count_c, n_c, method="log-adjusted", compare="ratio", alpha=alpha
    )
    return _f(low - 1.0), _f(high - 1.0)


def two_proportion_p_value(count_t: int, n_t: int, count_c: int, n_c: int) -> float | None:
    from statsmodels.stats.proportion import proportions_ztest

    pooled = (count_t + count_c) / (n_t + n_c)
    if pooled in (0.0, 1.0):
        return 1.0  # identical all-0 or all-1 groups: no evidence of any difference
    _, p = proportions_ztest([count_t, count_c], [n_t, n_c], alternative="two-sided")
    return _f(p)


def welch_interval(
    values_t: np.ndarray, values_c: np.ndarray, alpha: float = ALPHA
) -> tuple[float | None, float | None, float | None]:
    """(mean_t - mean_c, low, high) from Welch's t; interval is None when it is not defined."""
    from scipy import stats

    diff = float(np.mean(values_t) - np.mean(values_c)) if len(values_t) and len(values_c) else None
    if len(values_t) < 2 or len(values_c) < 2:
        return diff, None, None
    if np.var(values_t) == 0 and np.var(values_c) == 0:
        return diff, diff, diff  # both groups constant: the difference is exact
    res = stats.ttest_ind(values_t, values_c, equal_var=False)
    ci = res.confidence_interval(confidence_level=1 - alpha)
    return diff, _f(ci.low), _f(ci.high)


def minimum_detectable_effect(
    n_t: int, n_c: int, baseline: float, alpha: float = ALPHA, power: float = POWER
) -> float | None:
    """Smallest absolute rate increase over ``baseline`` detectable with ``power`` (two-sided)."""
    from statsmodels.stats.power import NormalIndPower

    if n_t < 2 or n_c < 2:
        return None
    h = NormalIndPower().solve_power(
        effect_size=None, nobs1=n_t, alpha=alpha, power=power, ratio=n_c / n_t, alternative="two-sided"
    )
    # Cohen's h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))  =>  p1 = sin(asin(sqrt(p0)) + h/2)^2
    angle = math.asin(math.sqrt(min(max(baseline, 0.0), 1.0))) + float(h) / 2
    if angle >= math.pi / 2:
        return _f(1.0 - baseline)
    return _f(math.sin(angle) ** 2 - baseline)


# --------------------------------------------------------------------------------------------
# curves (scikit-uplift 0.5.1 definitions)
# --------------------------------------------------------------------------------------------


def adjusted_uplift(
    df: pd.DataFrame, alpha: float = ALPHA
) -> tuple[float | None, float | None, float | None, str | None]:
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
    coef = _f(round(float(ols.params[1]), 12) + 0.0)  # + 0.0: an exact 0 prints as +0.00, not -0.00
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
            _f(low),
            _f(high),
            (
                "the interval may be too narrow: among the earlier buyers or the others of one group, "
                "every user had the same outcome"
            ),
        )
    return coef, _f(low), _f(high), None


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
        "pre_rate_treatment": _f(x_t / n_t),
        "pre_rate_control": _f(x_c / n_c),
        "pre_diff_abs": _f(x_t / n_t - x_c / n_c),
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
    return text


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


def uplift_curve(
    y: Sequence[int], score: Sequence[float], treatment: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """x = users targeted, y = (rate_t - rate_c among them) x users targeted; starts at (0, 0)."""
    n_all, n_t, n_c, y_t, y_c = _curve_steps(np.asarray(y), np.asarray(score), np.asarray(treatment))
    values = (_safe_div(y_t, n_t) - _safe_div(y_c, n_c)) * n_all
    return np.r_[0, n_all], np.r_[0.0, values]


def qini_curve(
    y: Sequence[int], score: Sequence[float], treatment: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """x = users targeted, y = conversions_t - conversions_c x n_t / n_c among them; starts at (0, 0)."""
    n_all, n_t, n_c, y_t, y_c = _curve_steps(np.asarray(y), np.asarray(score), np.asarray(treatment))
    values = y_t - y_c * _safe_div(n_t, n_c)
    return np.r_[0, n_all], np.r_[0.0, values]


def perfect_uplift_curve(y: Sequence[int], treatment: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    y_a, t_a = np.asarray(y), np.asarray(treatment)
    control_responders = np.sum((y_a == 1) & (t_a == 0))
    treated_non_responders = np.sum((y_a == 0) & (t_a == 1))
    summand = y_a if control_responders > treated_non_responders else t_a
    return uplift_curve(y_a, 2 * (y_a == t_a) + summand, t_a)


def perfect_qini_curve(y: Sequence[int], treatment: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Perfect ranking including negative effects (scikit-uplift ``negative_effect=True``)."""
    y_a, t_a = np.asarray(y), np.asarray(treatment)
    return qini_curve(y_a, y_a * t_a - y_a * (1 - t_a), t_a)


def _normalised_area(
    actual: tuple[np.ndarray, np.ndarray], perfect: tuple[np.ndarray, np.ndarray]
) -> float | None:
    x_end, y_end = perfect[0][-1], perfect[1][-1]
    baseline = np.trapezoid([0.0, y_end], [0.0, x_end])
    denominator = np.trapezoid(perfect[1], perfect[0]) - baseline
    if denominator == 0:
        return None
    return _f((np.trapezoid(actual[1], actual[0]) - baseline) / denominator)


def uplift_auc_score(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> float | None:
    return _normalised_area(uplift_curve(y, score, treatment), perfect_uplift_curve(y, treatment))


def qini_auc_score(y: Sequence[int], score: Sequence[float], treatment: Sequence[int]) -> float | None:
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
    return _f(yt.mean() - yc.mean())


# --------------------------------------------------------------------------------------------
# the report
# --------------------------------------------------------------------------------------------


def _group_block(sub: pd.DataFrame, has_value: bool, alpha: float) -> dict[str, Any]:
    n = len(sub)
    conversions = int(sub["converted"].sum())
    low, high = wilson_interval(conversions, n, alpha)
    block: dict[str, Any] = {
        "n": n,
        "conversions": conversions,
        "rate": _f(conversions / n) if n else None,
        "rate_ci": [low, high],
    }
    if has_value:
        block["value_total"] = _f(sub["value"].sum())
        block["value_per_user"] = _f(sub["value"].mean()) if n else None
    return block


def cumulative_uplift_by_day(
    df: pd.DataFrame, window_days: int, alpha: float = ALPHA
) -> list[dict[str, Any]]:
    """Per day d of the window: share of each group converted by day d, their difference and its CI."""
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    rows = []
    for day in range(1, window_days + 1):
        ct = int(((t["converted"] == 1) & (t["days_to_convert"] <= day)).sum())
        cc = int(((c["converted"] == 1) & (c["days_to_convert"] <= day)).sum())
        low, high = diff_interval(ct, len(t), cc, len(c), alpha)
        rows.append(
            {
                "day": day,
                "rate_treatment": _f(ct / len(t)),
                "rate_control": _f(cc / len(c)),
                "uplift_abs": _f(ct / len(t) - cc / len(c)),
                "ci": [low, high],
            }
        )
    return rows


def evaluate_experiment(
    df: pd.DataFrame,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
    ks: Iterable[float] = DEFAULT_KS,
    window_days: int | None = None,
    source: str = "input",
) -> dict[str, Any]:
    """The report.json body for one experiment (contract fields plus details)."""
    df = prepare_experiment(df, source)
    has_value = "value" in df.columns
    t = df[df["group"] == TREATMENT]
    c = df[df["group"] == HOLDOUT]
    n_t, n_c = len(t), len(c)
    x_t, x_c = int(t["converted"].sum()), int(c["converted"].sum())
    rate_t, rate_c = x_t / n_t, x_c / n_c
    uplift = rate_t - rate_c
    low, high = diff_interval(x_t, n_t, x_c, n_c, alpha)
    rel_low, rel_high = relative_interval(x_t, n_t, x_c, n_c, alpha)
    mde = minimum_detectable_effect(n_t, n_c, rate_c, alpha, power)

    report: dict[str, Any] = {
        "n_treatment": n_t,
        "n_control": n_c,
        "conversions_treatment": x_t,
        "conversions_control": x_c,
        "rate_treatment": _f(rate_t),
        "rate_control": _f(rate_c),
        "rate_treatment_ci": list(wilson_interval(x_t, n_t, alpha)),
        "rate_control_ci": list(wilson_interval(x_c, n_c, alpha)),
        "uplift_abs": _f(uplift),
        "uplift_abs_ci": [low, high],
        "uplift_rel": _f(uplift / rate_c) if rate_c > 0 else None,
        "uplift_rel_ci": [rel_low, rel_high],
        "p_value": two_proportion_p_value(x_t, n_t, x_c, n_c),
        "incremental_conversions": _f(uplift * n_t),
        "incremental_conversions_ci": [
            _f(low * n_t) if low is not None else None,
            _f(high * n_t) if high is not None else None,
        ],
        "value_per_user_treatment": None,
        "value_per_user_control": None,
        "incremental_value": None,
        "incremental_value_ci": [None, None],
        "mde": mde,
        "mde_rel": _f(mde / rate_c) if mde is not None and rate_c > 0 else None,
        "alpha": alpha,
        "power": power,
        "groups": {
            "treatment": _group_block(t, has_value, alpha),
            "control": _group_block(c, has_value, alpha),
        },
        "methods": dict(METHODS),
    }
    if has_value:
        diff, v_low, v_high = welch_interval(t["value"].to_numpy(float), c["value"].to_numpy(float), alpha)
        report["value_per_user_treatment"] = _f(t["value"].mean())
        report["value_per_user_control"] = _f(c["value"].mean())
        report["incremental_value"] = _f(diff * n_t) if diff is not None else None
        report["incremental_value_ci"] = [
            _f(v_low * n_t) if v_low is not None else None,
            _f(v_high * n_t) if v_high is not None else None,
        ]

    if "score" in df.columns:
        report.update(score_metrics(df, ks))
    if window_days and "days_to_convert" in df.columns:
        report["window_days"] = window_days
        report["cumulative_uplift"] = cumulative_uplift_by_day(df, window_days, alpha)

    warnings = sample_size_warnings(n_t, n_c, x_t, x_c, mde, rate_c)
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
            adj_low, adj_high = report["uplift_abs_adjusted_ci"]
            agrees = (adj_low is not None and adj_low > 0 and uplift > 0) or (
                adj_high is not None and adj_high < 0 and uplift < 0
            )
            report["conclusive"] = report["conclusive"] and agrees
    report["warnings"] = warnings
    report["verdict"] = verdict(report)
    return report


def score_metrics(df: pd.DataFrame, ks: Iterable[float] = DEFAULT_KS) -> dict[str, Any]:
    y = df["converted"].to_numpy(int)
    s = df["score"].to_numpy(float)
    tr = (df["group"] == TREATMENT).to_numpy(int)
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


def sample_size_warnings(
    n_t: int, n_c: int, x_t: int, x_c: int, mde: float | None, rate_c: float
) -> list[str]:
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


def verdict(report: dict[str, Any]) -> str:
    """One sentence for the marketer."""
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
