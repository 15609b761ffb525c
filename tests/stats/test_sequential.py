"""dmp.stats.sequential: the daily confidence sequence keeps its 95 % over 30 looks; the daily
fixed-horizon interval does not. Seeded, vectorised simulations (one multinomial draw per group
and campaign), a few seconds in all."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from dmp.stats import sequential, uplift
from dmp.stats.intervals import diff_intervals

CAMPAIGNS = 2000
LOOKS = 30
USERS = 20_000


def campaigns(seed: int, lift: np.ndarray | None) -> dict[str, np.ndarray]:
    """Cumulative conversions by day 1..30 of each group in 2,000 campaigns of 20,000 users.

    Holdout shares 10-50 %, a daily conversion hazard of 0.2-0.6 % in the holdout (8-17 % by day
    30); the treatment's hazard is the holdout's times (1 + lift). ``truth`` is the true uplift
    of the final look, F_t(30) - F_c(30).
    """
    rng = np.random.default_rng(seed)
    share = rng.uniform(0.1, 0.5, CAMPAIGNS)
    n_c = np.round(USERS * share).astype(int)
    n_t = USERS - n_c
    hazard_c = rng.uniform(0.002, 0.006, CAMPAIGNS)
    hazard_t = hazard_c * (1 + (lift if lift is not None else 0.0))

    def draw(n: np.ndarray, hazard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        day = np.arange(1, LOOKS + 1)
        first = hazard[:, None] * (1 - hazard[:, None]) ** (day - 1)  # first order on day d
        pvals = np.column_stack([first, 1 - first.sum(axis=1)])  # last column: no order in the window
        return np.cumsum(rng.multinomial(n, pvals)[:, :LOOKS], axis=1), 1 - (1 - hazard) ** LOOKS

    x_t, f_t = draw(n_t, hazard_t)
    x_c, f_c = draw(n_c, hazard_c)
    return {"x_t": x_t, "n_t": n_t[:, None], "x_c": x_c, "n_c": n_c[:, None], "truth": f_t - f_c}


def test_a_a_campaigns_read_daily() -> None:
    sim = campaigns(19, None)
    seq = sequential.uplift_abs_cs(sim["x_t"], sim["n_t"], sim["x_c"], sim["n_c"])
    fixed_low, fixed_high = diff_intervals(sim["x_t"], sim["n_t"], sim["x_c"], sim["n_c"])
    cs_ever = ((seq.low > 0) | (seq.high < 0)).any(axis=1).mean()
    fixed_ever = ((fixed_low > 0) | (fixed_high < 0)).any(axis=1).mean()
    fixed_last = ((fixed_low[:, -1] > 0) | (fixed_high[:, -1] < 0)).mean()
    print(
        f"A/A, {CAMPAIGNS} campaigns x {LOOKS} daily looks: ever excludes zero: confidence sequence "
        f"{cs_ever:.2%}, daily fixed-horizon interval {fixed_ever:.2%} (at the last look alone {fixed_last:.2%})"
    )
    assert cs_ever <= 0.05
    assert fixed_ever >= 0.10  # "clearly above 5 %": twice the promised rate
    assert 0.035 <= fixed_last <= 0.065  # one look decided in advance is fine
    # every look of every campaign has a band: day 1 has >= 10 conversions in the smallest holdout
    assert np.isfinite(seq.low).mean() > 0.99


def test_planted_effect_is_covered_at_the_final_look() -> None:
    rng = np.random.default_rng(20)
    sim = campaigns(21, rng.uniform(0.05, 0.5, CAMPAIGNS))
    seq = sequential.uplift_abs_cs(sim["x_t"], sim["n_t"], sim["x_c"], sim["n_c"])
    low, high = seq.low[:, -1], seq.high[:, -1]
    covered = ((low <= sim["truth"]) & (sim["truth"] <= high)).mean()
    found = (low > 0).mean()
    print(f"planted lift 5-50 %: the confidence sequence covers the true final uplift in {covered:.2%}; "
          f"it excludes zero in {found:.2%}")  # fmt: skip
    assert covered >= 0.95
    assert found > 0.5  # not covering by being uselessly wide


def test_band_matches_growthbook_formula_and_tuning() -> None:
    # gbstats sequential_interval_halfwidth(s2, n, tuning, alpha) = sqrt(s2) sqrt(2(n r^2 + 1) / (n r)^2
    # log(sqrt(n r^2 + 1) / alpha)), s2 = se^2 n, r from eq. 161: at n = tuning the band is ~1.55x the CI
    alpha, tuning, n, se = 0.05, 5000.0, 5000.0, 0.01
    rho = math.sqrt((-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning)
    assert sequential.cs_rho(tuning, alpha) == pytest.approx(rho, rel=1e-12)
    s2 = se**2 * n
    gb = math.sqrt(s2) * math.sqrt(
        2 * (n * rho**2 + 1) / (n * rho) ** 2 * math.log(math.sqrt(n * rho**2 + 1) / alpha)
    )
    assert float(sequential.cs_multiplier(n, rho, alpha)) * se == pytest.approx(gb, rel=1e-12)
    assert float(sequential.cs_multiplier(n, rho, alpha)) == pytest.approx(3.0352, abs=1e-4)
    # wider than the fixed interval everywhere, narrowest relative to it near the tuned information
    ratios = sequential.cs_multiplier(np.array([500.0, 2500, 5000, 10_000, 50_000]), rho, alpha) / 1.959964
    assert (ratios > 1).all() and ratios.argmin() in (1, 2)
    with pytest.raises(ValueError, match="planned_information must be positive; got 0"):
        sequential.cs_rho(0)


def test_daily_series_in_the_report() -> None:
    # 2,000 treated, 1,000 holdout; conversions by day: treatment 40, 80, 120; holdout 10, 25, 40
    def users(n: int, by_day: list[int]) -> list[float]:
        days = [1.0] * by_day[0] + [2.0] * (by_day[1] - by_day[0]) + [3.0] * (by_day[2] - by_day[1])
        return days + [math.nan] * (n - len(days))

    days = users(2000, [40, 80, 120]) + users(1000, [10, 25, 40])
    df = pd.DataFrame(
        {
            "group": ["treatment"] * 2000 + ["holdout"] * 1000,
            "converted": [0 if math.isnan(d) else 1 for d in days],
            "days_to_convert": days,
        }
    )
    r = uplift.evaluate_experiment(df, window_days=3)
    rows = r["cumulative_uplift"]
    assert [row["conversions_treatment"] for row in rows] == [40, 80, 120]
    assert [row["conversions_control"] for row in rows] == [10, 25, 40]
    assert {(row["n_treatment"], row["n_control"]) for row in rows} == {(2000, 1000)}
    assert [row["ci"] for row in rows] == [
        list(uplift.diff_interval(x_t, 2000, x_c, 1000)) for x_t, x_c in ((40, 10), (80, 25), (120, 40))
    ]
    # by hand: t_d = 3000 p / (1 - p), rho^2 = kappa / t_3, half = z(t_d rho^2) x Wald se
    kappa = -2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))
    info = [3000 * (x / 3000) / (1 - x / 3000) for x in (50, 105, 160)]
    assert [row["information"] for row in rows] == pytest.approx(info, rel=1e-12)
    assert r["sequential"]["planned_information"] == pytest.approx(info[-1], rel=1e-12)
    assert r["sequential"]["rho"] == pytest.approx(math.sqrt(kappa / info[-1]), rel=1e-12)
    for row, x_t, x_c, t in zip(rows, (40, 80, 120), (10, 25, 40), info, strict=True):
        p_t, p_c = x_t / 2000, x_c / 1000
        se = math.sqrt(p_t * (1 - p_t) / 2000 + p_c * (1 - p_c) / 1000)
        u = t * kappa / info[-1]
        half = se * math.sqrt(2 * (u + 1) / u * math.log(math.sqrt(u + 1) / 0.05))
        assert row["uplift_abs_cs"] == pytest.approx([p_t - p_c - half, p_t - p_c + half], rel=1e-12)
        assert row["uplift_abs_cs"][0] < row["ci"][0] and row["ci"][1] < row["uplift_abs_cs"][1]
    # the last day's band is about 1.549 times as wide as its fixed interval (Wald width 2 x 1.96 se)
    last = rows[-1]
    assert (last["uplift_abs_cs"][1] - last["uplift_abs_cs"][0]) / (2 * 1.959964 * se) == pytest.approx(
        3.0352 / 1.959964, abs=1e-4
    )
    # a planned information fixed in advance is used as given
    tuned = uplift.evaluate_experiment(df, window_days=3, planned_information=50.0)
    assert tuned["sequential"]["planned_information"] == pytest.approx(50.0)
    assert tuned["cumulative_uplift"][0]["uplift_abs_cs"] != rows[0]["uplift_abs_cs"]


def test_too_few_conversions_give_no_band() -> None:
    # day 1: 9 conversions in the holdout (< 10): no band; day 2: 10 in each: a band
    seq = sequential.uplift_abs_cs(np.array([30, 40]), 1000, np.array([9, 10]), 1000)
    assert math.isnan(seq.low[0]) and math.isnan(seq.high[0])
    assert np.isfinite([seq.low[1], seq.high[1]]).all()
    df = pd.DataFrame(
        {
            "group": ["treatment", "holdout"] * 50,
            "converted": [1, 0] * 50,
            "days_to_convert": [1.0, None] * 50,
        }
    )
    [row] = uplift.evaluate_experiment(df, window_days=1)["cumulative_uplift"]
    assert row["uplift_abs_cs"] == [None, None]  # no holdout conversion at all
