"""dmp.stats.uplift: hand-computed answers for the two-group statistics; curves against scikit-uplift."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from dmp.contracts.errors import DmpError
from dmp.stats import uplift

Z = 1.959963984540054  # 97.5% normal quantile
Z80 = 0.8416212335729143  # 80% normal quantile


def experiment(n_t: int, x_t: int, n_c: int, x_c: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [f"u{i}" for i in range(n_t + n_c)],
            "group": ["treatment"] * n_t + ["holdout"] * n_c,
            "converted": [1] * x_t + [0] * (n_t - x_t) + [1] * x_c + [0] * (n_c - x_c),
        }
    )


def wilson(x: int, n: int) -> tuple[float, float]:
    p = x / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return centre - half, centre + half


def test_100_of_1000_vs_80_of_1000_by_hand() -> None:
    r = uplift.evaluate_experiment(experiment(1000, 100, 1000, 80))
    assert (r["n_treatment"], r["n_control"]) == (1000, 1000)
    assert r["rate_treatment"] == pytest.approx(0.10)
    assert r["rate_control"] == pytest.approx(0.08)
    assert r["uplift_abs"] == pytest.approx(0.02)
    assert r["uplift_rel"] == pytest.approx(0.25)

    # Newcombe hybrid score: d -/+ sqrt of the squared distances to the Wilson limits
    l1, u1 = wilson(100, 1000)
    l2, u2 = wilson(80, 1000)
    low = 0.02 - math.sqrt((0.10 - l1) ** 2 + (u2 - 0.08) ** 2)
    high = 0.02 + math.sqrt((u1 - 0.10) ** 2 + (0.08 - l2) ** 2)
    assert r["uplift_abs_ci"] == pytest.approx([low, high], abs=1e-12)
    assert r["uplift_abs_ci"] == pytest.approx([-0.005161, 0.045273], abs=1e-6)
    assert r["rate_treatment_ci"] == pytest.approx([l1, u1], abs=1e-12)

    # pooled z-test: p = 0.09, se = sqrt(p(1-p)(1/1000 + 1/1000))
    se = math.sqrt(0.09 * 0.91 * (2 / 1000))
    z = 0.02 / se
    assert z == pytest.approx(1.562691, abs=1e-6)
    assert r["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-12)
    assert r["p_value"] == pytest.approx(0.118125, abs=1e-6)

    assert r["incremental_conversions"] == pytest.approx(20.0)
    assert r["incremental_conversions_ci"] == pytest.approx([low * 1000, high * 1000])

    # relative: Katz log interval on (x + 0.5) / (n + 0.5), minus 1
    ratio = (100.5 / 1000.5) / (80.5 / 1000.5)
    d = Z * math.sqrt(1 / 100.5 - 1 / 1000.5 + 1 / 80.5 - 1 / 1000.5)
    assert r["uplift_rel_ci"] == pytest.approx([ratio * math.exp(-d) - 1, ratio * math.exp(d) - 1], abs=1e-9)

    # MDE: Cohen's h = (z_.975 + z_.8) sqrt(1/n_t + 1/n_c), mapped back to a rate above 8%
    h = (Z + Z80) * math.sqrt(2 / 1000)
    mde = math.sin(math.asin(math.sqrt(0.08)) + h / 2) ** 2 - 0.08
    assert r["mde"] == pytest.approx(mde, abs=1e-6)
    assert r["mde"] == pytest.approx(0.0372, abs=1e-4)

    assert r["significant"] is False
    assert r["warnings"] == []
    assert r["verdict"].startswith("no effect detected")
    assert "qini_auc" not in r  # no score given
    assert r["incremental_value"] is None


def test_clear_effect_is_significant() -> None:
    r = uplift.evaluate_experiment(experiment(2000, 300, 2000, 200))
    assert r["uplift_abs"] == pytest.approx(0.05)
    assert r["uplift_abs_ci"][0] > 0
    assert r["significant"] is True and r["conclusive"] is True
    assert r["p_value"] < 1e-5
    assert r["verdict"].startswith("the campaign raised conversion by +5.00 points")


def test_welch_value_interval_by_hand() -> None:
    df = pd.DataFrame(
        {
            "group": ["treatment"] * 4 + ["holdout"] * 3,
            "converted": [0, 0, 1, 1, 0, 1, 0],
            "value": [0.0, 0.0, 10.0, 20.0, 0.0, 5.0, 0.0],
        }
    )
    from scipy import stats

    r = uplift.evaluate_experiment(df)
    mean_t, mean_c = 7.5, 5 / 3
    var_t, var_c = 275 / 3, 25 / 3  # sample variances (ddof 1)
    a, b = var_t / 4, var_c / 3
    se = math.sqrt(a + b)
    dof = (a + b) ** 2 / (a**2 / 3 + b**2 / 2)  # Welch-Satterthwaite
    t = stats.t.ppf(0.975, dof)
    diff = mean_t - mean_c
    assert r["value_per_user_treatment"] == pytest.approx(7.5)
    assert r["value_per_user_control"] == pytest.approx(5 / 3)
    assert r["incremental_value"] == pytest.approx(diff * 4)
    assert r["incremental_value_ci"] == pytest.approx([(diff - t * se) * 4, (diff + t * se) * 4])
    assert r["incremental_value_ci"] == pytest.approx([-34.8765, 81.5431], abs=1e-3)
    # tiny groups: the report says so
    assert any(w.startswith("holdout too small to conclude: 3 users") for w in r["warnings"])
    assert any(w.startswith("treatment group is small") for w in r["warnings"])
    assert r["conclusive"] is False


def test_small_holdout_warns_even_with_many_users_when_conversions_are_rare() -> None:
    r = uplift.evaluate_experiment(experiment(5000, 20, 400, 1))
    assert r["n_control"] == 400
    assert any("conversions expected in the holdout" in w for w in r["warnings"])


def test_zero_conversions_everywhere() -> None:
    r = uplift.evaluate_experiment(experiment(500, 0, 500, 0))
    assert r["uplift_abs"] == 0.0
    assert r["uplift_rel"] is None
    assert r["p_value"] == 1.0
    low, high = r["uplift_abs_ci"]
    assert low < 0 < high


def test_control_alias_and_bool_outcomes() -> None:
    df = pd.DataFrame(
        {"group": ["Treatment", "control", "CONTROL", "treatment"], "converted": [True, False, True, False]}
    )
    r = uplift.evaluate_experiment(df)
    assert (r["n_treatment"], r["n_control"]) == (2, 2)
    assert r["rate_treatment"] == 0.5 and r["rate_control"] == 0.5


@pytest.mark.parametrize(
    ("df", "message"),
    [
        (pd.DataFrame({"group": ["treatment", "holdout"], "converted": [0, 2]}), "'converted' is not binary"),
        (
            pd.DataFrame({"group": ["treatment", "holdout"], "converted": [0, None]}),
            "'converted' has 1 empty",
        ),
        (
            pd.DataFrame({"group": ["treatment", "treatment"], "converted": [0, 1]}),
            "the holdout group is empty",
        ),
        (
            pd.DataFrame({"group": ["treatment", "other"], "converted": [0, 1]}),
            "'group' has values ['other']",
        ),
        (pd.DataFrame({"group": ["treatment"], "outcome": [0]}), "missing column(s) ['converted']"),
        (
            pd.DataFrame({"group": ["treatment", "holdout"], "converted": [0, 1], "value": [1.0, "x"]}),
            "'value' has 1 empty or non-numeric",
        ),
    ],
)
def test_bad_input_is_named(df: pd.DataFrame, message: str) -> None:
    with pytest.raises(DmpError) as err:
        uplift.evaluate_experiment(df, source="exp.csv")
    assert str(err.value).startswith("exp.csv: ")
    assert message in str(err.value)


def test_cumulative_uplift_by_day() -> None:
    df = pd.DataFrame(
        {
            "group": ["treatment"] * 4 + ["holdout"] * 4,
            "converted": [1, 1, 0, 0, 1, 0, 0, 0],
            "days_to_convert": [1, 3, None, None, 2, None, None, None],
        }
    )
    rows = uplift.cumulative_uplift_by_day(df, 3)
    assert [r["rate_treatment"] for r in rows] == [0.25, 0.25, 0.5]
    assert [r["rate_control"] for r in rows] == [0.0, 0.25, 0.25]
    assert [r["uplift_abs"] for r in rows] == [0.25, 0.0, 0.25]


# ---------------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------------


def test_qini_curve_by_hand_with_a_tie() -> None:
    # best first: (0.9, treated, converted), tie at 0.8: (control, converted) + (treated, not), (0.1, control, not)
    y = np.array([1, 1, 0, 0])
    t = np.array([1, 0, 1, 0])
    s = np.array([0.9, 0.8, 0.8, 0.1])
    x, q = uplift.qini_curve(y, s, t)
    # after 1: 1 - 0; after the tie (3 users): 1 - 1 * 2/1 = -1; after 4: 1 - 1 * 2/2 = 0
    assert x.tolist() == [0, 1, 3, 4]
    assert q.tolist() == [0.0, 1.0, -1.0, 0.0]
    xu, uu = uplift.uplift_curve(y, s, t)
    # uplift curve: (rate_t - rate_c) * n: 1*1, (1/2 - 1/1)*3, (1/2 - 1/2)*4
    assert uu.tolist() == [0.0, 1.0, -1.5, 0.0]


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 600))
    t = rng.integers(0, 2, n)
    base = rng.uniform(0.05, 0.3)
    y = (rng.uniform(size=n) < base + 0.1 * t * rng.uniform(size=n)).astype(int)
    if seed % 3 == 0:
        s = rng.integers(0, 4, n) / 3.0  # heavy ties
    elif seed % 3 == 1:
        s = np.round(rng.normal(size=n), 1)  # some ties
    else:
        s = rng.normal(size=n)
    return y, s, t


@pytest.mark.parametrize("seed", range(12))
def test_curves_match_scikit_uplift(seed: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's stable_cumsum deprecation inside sklift
        from sklift import metrics as sk

        y, s, t = _random_case(seed)
        assert uplift.qini_auc_score(y, s, t) == pytest.approx(sk.qini_auc_score(y, s, t), abs=1e-12)
        assert uplift.uplift_auc_score(y, s, t) == pytest.approx(sk.uplift_auc_score(y, s, t), abs=1e-12)
        for mine, theirs in ((uplift.qini_curve, sk.qini_curve), (uplift.uplift_curve, sk.uplift_curve)):
            xa, ya = mine(y, s, t)
            xb, yb = theirs(y, s, t)
            np.testing.assert_allclose(xa, xb)
            np.testing.assert_allclose(ya, yb, atol=1e-9)
        for k in (0.1, 0.3, 0.5):
            for strategy in ("by_group", "overall"):
                expected = sk.uplift_at_k(y, s, t, strategy=strategy, k=k)
                got = uplift.uplift_at_k(y, s, t, k, strategy)
                if np.isnan(expected):
                    assert got is None
                else:
                    assert got == pytest.approx(expected, abs=1e-12)


def test_report_has_score_metrics_matching_scikit_uplift() -> None:
    y, s, t = _random_case(7)
    df = pd.DataFrame({"group": np.where(t == 1, "treatment", "holdout"), "converted": y, "score": s})
    r = uplift.evaluate_experiment(df)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklift import metrics as sk

        assert r["qini_auc"] == pytest.approx(sk.qini_auc_score(y, s, t), abs=1e-12)
        assert r["uplift_auc"] == pytest.approx(sk.uplift_auc_score(y, s, t), abs=1e-12)
        assert set(r["uplift_at_k"]) == {"0.1", "0.2", "0.3", "0.5"}
        assert r["uplift_at_k"]["0.3"] == pytest.approx(sk.uplift_at_k(y, s, t, strategy="by_group", k=0.3))


def test_perfect_score_has_qini_one() -> None:
    y = np.array([1, 0, 1, 0, 0, 0, 1, 0])
    t = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    perfect = y * t - y * (1 - t)
    assert uplift.qini_auc_score(y, perfect, t) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------
# pre-period balance and the adjusted uplift
# --------------------------------------------------------------------------------------------


def cells(counts: dict[tuple[str, int], tuple[int, int]]) -> pd.DataFrame:
    """(group, pre_converted) -> (users, of whom converted after): one row per user."""
    rows = []
    for (group, pre), (n, x) in counts.items():
        rows += [(group, pre, 1)] * x + [(group, pre, 0)] * (n - x)
    return pd.DataFrame(rows, columns=["group", "pre_converted", "converted"])


# The same +10-point effect among earlier buyers (60% vs 50% convert after) and the others (20% vs
# 10%), but earlier buyers are 60% of the holdout and 30% of the treatment: unadjusted, the
# treatment looks 2 points worse (Simpson's paradox). The additive model fits the four cell means
# exactly, so OLS recovers the effect exactly.
SIMPSON = {
    ("treatment", 1): (120, 72),
    ("treatment", 0): (280, 56),
    ("holdout", 1): (60, 30),
    ("holdout", 0): (40, 4),
}


def hc2_interval(df: pd.DataFrame) -> tuple[float, float, float]:
    """Lin's estimate and its 95% HC2 interval, by the textbook formulas in numpy."""
    t = (df["group"] == "treatment").to_numpy(float)
    pre = df["pre_converted"].to_numpy(float) - df["pre_converted"].mean()
    x = np.column_stack([np.ones(len(df)), t, pre, t * pre])
    y = df["converted"].to_numpy(float)
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    resid = y - x @ beta
    leverage = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
    meat = x.T @ (x * (resid**2 / (1 - leverage))[:, None])
    se = math.sqrt((xtx_inv @ meat @ xtx_inv)[1, 1])
    return beta[1], beta[1] - Z * se, beta[1] + Z * se


def post_stratified(counts: dict[tuple[str, int], tuple[int, int]]) -> float:
    """The uplift within earlier buyers and within the others, weighted by their share of all users."""
    n = sum(cell[0] for cell in counts.values())
    total = 0.0
    for pre in (0, 1):
        (n_t, x_t), (n_c, x_c) = counts[("treatment", pre)], counts[("holdout", pre)]
        total += (n_t + n_c) / n * (x_t / n_t - x_c / n_c)
    return total


def test_adjusted_uplift_undoes_a_pre_period_imbalance() -> None:
    df = cells(SIMPSON)
    r = uplift.evaluate_experiment(df)
    assert r["uplift_abs"] == pytest.approx(128 / 400 - 34 / 100)  # -0.02
    assert (r["pre_rate_treatment"], r["pre_rate_control"]) == pytest.approx((0.30, 0.60))
    assert r["pre_diff_abs"] == pytest.approx(-0.30)
    assert r["pre_diff_abs_ci"] == pytest.approx(list(uplift.diff_interval(120, 400, 60, 100)), abs=1e-12)
    assert r["pre_p_value"] == pytest.approx(uplift.two_proportion_p_value(120, 400, 60, 100))
    assert r["pre_p_value"] < 1e-5
    assert r["uplift_abs_adjusted"] == pytest.approx(0.10, abs=1e-12)
    coef, low, high = hc2_interval(df)
    assert r["uplift_abs_adjusted_ci"] == pytest.approx([low, high], abs=1e-9)
    assert coef == pytest.approx(0.10, abs=1e-12) and 0 < low < 0.10 < high
    assert r["imbalanced"] is True and r["conclusive"] is False
    [warning] = [w for w in r["warnings"] if "differed before the campaign" in w]
    assert "30.0% vs 60.0%" in warning and "adjusted for it: +10.00 points" in warning
    assert r["verdict"].startswith("no effect detected: -2.00 points")
    assert r["verdict"].endswith(
        "; but the groups already differed by -30.00 points before the campaign: adjusted for that, "
        f"+10.00 points (95% CI {low * 100:+.2f} to {high * 100:+.2f}); the two estimates disagree, "
        "so the result is not settled"
    )


def test_adjusted_uplift_is_post_stratification_when_effects_differ() -> None:
    counts = {
        ("treatment", 1): (150, 105),  # +30 points among earlier buyers
        ("treatment", 0): (650, 130),  # +5 among the others
        ("holdout", 1): (80, 32),
        ("holdout", 0): (120, 18),
    }
    df = cells(counts)
    r = uplift.evaluate_experiment(df)
    coef, low, high = hc2_interval(df)
    assert r["uplift_abs_adjusted"] == pytest.approx(post_stratified(counts), abs=1e-12)
    assert r["uplift_abs_adjusted"] == pytest.approx(230 / 1000 * 0.30 + 770 / 1000 * 0.05, abs=1e-12)
    assert coef == pytest.approx(r["uplift_abs_adjusted"], abs=1e-12)
    assert r["uplift_abs_adjusted_ci"] == pytest.approx([low, high], abs=1e-9)


def test_imbalance_alone_is_not_a_conclusive_effect() -> None:
    # no effect in either kind of user, but earlier buyers are 60% of the treated and 30% of the holdout
    r = uplift.evaluate_experiment(
        cells(
            {
                ("treatment", 1): (600, 300),
                ("treatment", 0): (400, 40),
                ("holdout", 1): (300, 150),
                ("holdout", 0): (700, 70),
            }
        )
    )
    assert r["uplift_abs"] == pytest.approx(0.12) and r["significant"] is True
    assert r["uplift_abs_adjusted"] == 0.0
    low, high = r["uplift_abs_adjusted_ci"]
    assert low < 0 < high
    assert r["imbalanced"] is True and r["conclusive"] is False
    assert r["verdict"].startswith("the campaign raised conversion by +12.00 points")
    assert r["verdict"].endswith(
        f"adjusted for that, +0.00 points (95% CI {low * 100:+.2f} to {high * 100:+.2f}), which includes zero, "
        "so no effect is established"
    )


@pytest.mark.parametrize(
    ("counts", "value", "note"),
    [
        (  # pre-period outcome identical to the group: the adjustment cannot be estimated
            {("treatment", 1): (100, 50), ("holdout", 0): (100, 20)},
            None,
            "not estimable: in one group every user had the same pre-period outcome",
        ),
        (  # a single holdout user among earlier buyers: HC2 has no variance for them
            {
                ("treatment", 1): (100, 50),
                ("treatment", 0): (100, 20),
                ("holdout", 1): (1, 1),
                ("holdout", 0): (99, 10),
            },
            101 / 300 * (50 / 100 - 1) + 199 / 300 * (20 / 100 - 10 / 99),
            "no interval: one user alone makes up a group among earlier buyers or the others",
        ),
        (  # everyone converted: a zero-width interval would claim certainty
            {
                ("treatment", 1): (100, 100),
                ("treatment", 0): (100, 100),
                ("holdout", 1): (50, 50),
                ("holdout", 0): (50, 50),
            },
            0.0,
            "no interval: the outcome does not vary within the groups",
        ),
    ],
)
def test_adjusted_uplift_degenerate_cases_give_no_interval(
    counts: dict, value: float | None, note: str
) -> None:
    r = uplift.evaluate_experiment(cells(counts))
    assert r["uplift_abs_adjusted_ci"] == [None, None]
    assert r["uplift_abs_adjusted_note"] == note
    if value is None:
        assert r["uplift_abs_adjusted"] is None
    else:
        assert r["uplift_abs_adjusted"] == pytest.approx(value, abs=1e-9)
    if r["imbalanced"]:
        [warning] = [w for w in r["warnings"] if "differed before the campaign" in w]
        expected = f"; no adjusted estimate ({note})" if value is None else f"; {note}"
        assert r["conclusive"] is False and warning.endswith(expected)


def test_imbalanced_but_adjusted_effect_agrees_stays_conclusive() -> None:
    # the same imbalance, +20 points in both kinds of user, four times the users
    r = uplift.evaluate_experiment(
        cells(
            {
                ("treatment", 1): (480, 336),
                ("treatment", 0): (1120, 336),
                ("holdout", 1): (240, 120),
                ("holdout", 0): (160, 16),
            }
        )
    )
    assert r["uplift_abs"] == pytest.approx(672 / 1600 - 136 / 400)  # +8 points
    assert r["uplift_abs_adjusted"] == pytest.approx(0.20, abs=1e-12)
    assert r["imbalanced"] is True and r["significant"] is True and r["conclusive"] is True
    assert r["verdict"].startswith("the campaign raised conversion by +8.00 points")
    assert r["verdict"].endswith(
        f"before the campaign: adjusted for that, +20.00 points (95% CI {r['uplift_abs_adjusted_ci'][0] * 100:+.2f}"
        f" to {r['uplift_abs_adjusted_ci'][1] * 100:+.2f})"
    )


def test_balanced_pre_period_changes_nothing() -> None:
    balanced = {
        ("treatment", 1): (400, 240),
        ("treatment", 0): (1600, 320),
        ("holdout", 1): (100, 50),
        ("holdout", 0): (400, 40),
    }
    r = uplift.evaluate_experiment(cells(balanced))
    plain = uplift.evaluate_experiment(cells(balanced).drop(columns=["pre_converted"]))
    assert r["pre_diff_abs"] == pytest.approx(0.0) and r["pre_p_value"] == pytest.approx(1.0)
    assert r["imbalanced"] is False
    assert r["warnings"] == plain["warnings"] and r["verdict"] == plain["verdict"]
    assert r["conclusive"] == plain["conclusive"] is True
    # with equal pre-period shares the adjustment leaves the difference of means unchanged
    assert r["uplift_abs_adjusted"] == pytest.approx(r["uplift_abs"], abs=1e-12)
    assert "pre_rate_treatment" not in plain and "imbalanced" not in plain


def test_constant_pre_period_needs_no_adjustment() -> None:
    df = experiment(500, 60, 500, 40).assign(pre_converted=0)  # e.g. a pack that excludes recent buyers
    r = uplift.evaluate_experiment(df)
    assert (r["pre_rate_treatment"], r["pre_rate_control"], r["pre_p_value"]) == (0.0, 0.0, 1.0)
    assert r["uplift_abs_adjusted"] is None and r["uplift_abs_adjusted_ci"] == [None, None]
    assert r["uplift_abs_adjusted_note"] == "not needed: every user had the same pre-period outcome"
    assert r["imbalanced"] is False


def test_bad_pre_period_column_is_named() -> None:
    df = experiment(10, 1, 10, 1).assign(pre_converted=[0, 2] * 10)
    with pytest.raises(DmpError, match=r"exp.csv: column 'pre_converted' is not binary: found \[2.0\]"):
        uplift.evaluate_experiment(df, source="exp.csv")


@pytest.mark.parametrize(
    ("counts", "significant"),
    [
        (  # plain +11 (significant), but -5 points in both kinds of user: opposite sides
            {
                ("treatment", 1): (1200, 660),
                ("treatment", 0): (800, 120),
                ("holdout", 1): (200, 120),
                ("holdout", 0): (800, 160),
            },
            True,
        ),
        (  # plain +0.5 (not significant), adjusted +8 (significant): same side, still not settled
            {
                ("treatment", 1): (600, 348),
                ("treatment", 0): (1400, 252),
                ("holdout", 1): (500, 250),
                ("holdout", 0): (500, 45),
            },
            False,
        ),
    ],
)
def test_plain_and_adjusted_estimates_that_disagree_are_not_conclusive(
    counts: dict, significant: bool
) -> None:
    r = uplift.evaluate_experiment(cells(counts))
    low, high = r["uplift_abs_adjusted_ci"]
    assert r["significant"] is significant and r["imbalanced"] is True
    assert (low > 0 or high < 0) and r["uplift_abs_adjusted"] == pytest.approx(
        post_stratified(counts), abs=1e-12
    )
    assert r["conclusive"] is False
    assert r["verdict"].endswith("; the two estimates disagree, so the result is not settled")


def test_constant_outcome_cell_flags_the_interval() -> None:
    # both holdout earlier buyers converted: that cell adds no variance, so the interval is too narrow
    counts = {
        ("treatment", 1): (100, 50),
        ("treatment", 0): (100, 20),
        ("holdout", 1): (2, 2),
        ("holdout", 0): (98, 10),
    }
    r = uplift.evaluate_experiment(cells(counts))
    assert r["uplift_abs_adjusted"] == pytest.approx(post_stratified(counts), abs=1e-9)
    assert None not in r["uplift_abs_adjusted_ci"]
    assert r["uplift_abs_adjusted_note"].startswith("the interval may be too narrow")
    [warning] = [w for w in r["warnings"] if "differed before the campaign" in w]
    assert warning.endswith(
        "; adjusted for it: -10.53 points (95% CI -17.89 to -3.18); the interval may be too narrow: among the "
        "earlier buyers or the others of one group, every user had the same outcome"
    )
