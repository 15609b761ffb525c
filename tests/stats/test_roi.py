"""dmp.stats.roi: the delta-method ROI interval by hand, and the coverage of the incremental GMV
(Welch) and ROI intervals over 2,000 seeded campaigns with coupon costs that move with GMV."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dmp.stats import roi
from dmp.stats.intervals import welch_interval

Z = 1.959963984540054


def test_fixed_cost_only_is_the_gmv_interval_over_the_cost() -> None:
    v_t = np.array([0.0, 0.0, 10.0, 20.0, 30.0])
    v_c = np.array([0.0, 5.0, 0.0, 10.0])
    r = roi.roi_interval(v_t, v_c, fixed_cost=20.0)
    d = v_t.mean() - v_c.mean()  # 12 - 3.75 = 8.25 per treated user, x 5 = 41.25 incremental GMV
    se_d = math.sqrt(v_t.var(ddof=1) / 5 + v_c.var(ddof=1) / 4)
    assert float(r.roi) == pytest.approx(41.25 / 20 - 1)
    assert [float(r.low), float(r.high)] == pytest.approx(
        [(d - Z * se_d) * 5 / 20 - 1, (d + Z * se_d) * 5 / 20 - 1]
    )
    assert math.isnan(float(roi.roi_interval(v_t, v_c).roi))  # no cost: no ROI


def test_delta_method_by_hand_with_coupon_costs() -> None:
    v_t = np.array([0.0, 40.0, 10.0, 25.0, 0.0, 60.0])
    c_t = np.array([0.0, 5.0, 0.0, 5.0, 0.0, 5.0])  # the three big buyers redeemed a 5.0 coupon
    v_c = np.array([0.0, 20.0, 0.0, 15.0, 10.0])
    r = roi.roi_interval(v_t, v_c, c_t, fixed_cost=3.0)
    d = v_t.mean() - v_c.mean()
    k = 3.0 / 6 + c_t.mean()
    var_d = v_t.var(ddof=1) / 6 + v_c.var(ddof=1) / 5
    var_k = c_t.var(ddof=1) / 6
    cov = np.cov(v_t, c_t, ddof=1)[0, 1] / 6
    se = math.sqrt(var_d / k**2 + d**2 * var_k / k**4 - 2 * d * cov / k**3)
    assert float(r.roi) == pytest.approx(d / k - 1)
    assert float(r.se) == pytest.approx(se, rel=1e-12)
    assert [float(r.low), float(r.high)] == pytest.approx([d / k - 1 - Z * se, d / k - 1 + Z * se], rel=1e-12)


def campaigns(seed: int, count: int = 2000, users: int = 4000) -> list[dict[str, np.ndarray]]:
    """Chunks of campaigns: holdout share 10-50 %, buy rate 3-15 %, +0.5-5 points in the treatment,
    basket GMV gamma(2) with mean 20-80, a coupon of 2-10 redeemed by 30-90 % of treated buyers,
    a fixed cost of 0.02-0.2 per treated user. ``truth_*`` are the expected values."""
    rng = np.random.default_rng(seed)
    chunks = []
    for _ in range(count // 250):
        m = 250
        n_c = int(users * rng.uniform(0.1, 0.5))  # one split per chunk keeps the arrays rectangular
        n_t = users - n_c
        p, lift = rng.uniform(0.03, 0.15, m), rng.uniform(0.005, 0.05, m)
        basket, coupon = rng.uniform(20, 80, m), rng.uniform(2, 10, m)
        redeem, fixed = rng.uniform(0.3, 0.9, m), rng.uniform(0.02, 0.2, m) * n_t
        buy_t = rng.random((m, n_t)) < (p + lift)[:, None]
        buy_c = rng.random((m, n_c)) < p[:, None]
        v_t = buy_t * rng.gamma(2.0, (basket / 2)[:, None], (m, n_t))
        v_c = buy_c * rng.gamma(2.0, (basket / 2)[:, None], (m, n_c))
        c_t = (buy_t & (rng.random((m, n_t)) < redeem[:, None])) * coupon[:, None]
        truth_gmv = lift * basket * n_t
        truth_roi = truth_gmv / (fixed + n_t * coupon * redeem * (p + lift)) - 1
        chunks.append(
            {
                "v_t": v_t,
                "v_c": v_c,
                "c_t": c_t,
                "fixed": fixed,
                "truth_gmv": truth_gmv,
                "truth_roi": truth_roi,
            }
        )
    return chunks


def test_coverage_of_incremental_gmv_and_roi() -> None:
    gmv_hits, roi_hits, total = 0, 0, 0
    for chunk in campaigns(2026):
        r = roi.roi_interval(chunk["v_t"], chunk["v_c"], chunk["c_t"], chunk["fixed"])
        roi_hits += int(((r.low <= chunk["truth_roi"]) & (chunk["truth_roi"] <= r.high)).sum())
        n_t = chunk["v_t"].shape[1]
        for i in range(len(chunk["fixed"])):
            _, low, high = welch_interval(chunk["v_t"][i], chunk["v_c"][i])  # the report's incremental value
            gmv_hits += int(low * n_t <= chunk["truth_gmv"][i] <= high * n_t)
        total += len(chunk["fixed"])
    print(
        f"coverage over {total} campaigns: incremental GMV (Welch) {gmv_hits / total:.2%}, ROI (delta) {roi_hits / total:.2%}"
    )
    assert total == 2000
    assert 0.93 <= gmv_hits / total <= 0.97
    assert 0.93 <= roi_hits / total <= 0.97


def test_roi_report_tiny_known_answer() -> None:
    import pandas as pd

    from dmp.contracts.errors import DmpError
    from dmp.stats import uplift

    # treated GMV 100, 0, 0, 80, 0, 0 with coupons 10 and 20 redeemed; holdout 40, 0, 0, 0; fixed cost 3.1
    df = pd.DataFrame(
        {
            "group": ["treatment"] * 6 + ["holdout"] * 4,
            "converted": [1, 0, 0, 1, 0, 0, 1, 0, 0, 0],
            "value": [100.0, 0, 0, 80, 0, 0, 40, 0, 0, 0],
            "cost": [10.0, 0, 0, 20, 0, 0, 0, 0, 0, 0],
        }
    )
    r = uplift.evaluate_experiment(df, fixed_cost=3.1)
    assert (r["cost"], r["cost_delivery"], r["cost_coupons"]) == pytest.approx((33.1, 3.1, 30.0))
    assert r["incremental_value"] == pytest.approx(120.0)  # (30 - 10) x 6 treated users
    assert r["roi"] == pytest.approx(120 / 33.1 - 1)  # 2.6254: every 1.00 spent brought back 3.63
    direct = roi.roi_interval(df["value"][:6], df["value"][6:], df["cost"][:6], 3.1)
    assert r["roi_ci"] == pytest.approx([float(direct.low), float(direct.high)])
    assert r["methods"]["roi_ci"] == roi.ROI_METHOD
    # no known cost: no ROI, and no value column: no ROI either
    unknown = uplift.evaluate_experiment(df)
    assert (unknown["cost"], unknown["roi"], unknown["roi_ci"]) == (None, None, [None, None])
    assert uplift.evaluate_experiment(df.drop(columns=["value"]), fixed_cost=3.1)["roi"] is None
    # a zero cost has no ROI (division by zero), rather than an infinite one
    free = uplift.evaluate_experiment(df.assign(cost=0.0), fixed_cost=0.0)
    assert free["cost"] == 0.0 and free["roi"] is None
    with pytest.raises(DmpError, match="exp.csv: column 'cost' has negative values"):
        uplift.evaluate_experiment(df.assign(cost=-1.0), fixed_cost=1.0, source="exp.csv")
