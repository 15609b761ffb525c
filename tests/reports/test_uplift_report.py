"""The uplift report page: metric rows from a report body, sections shown only when computed, files."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from dmp.reports.uplift_report import headline_rows, pre_period_rows, render_html, report_files, score_rows
from dmp.stats import uplift


def _frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = np.where(np.arange(n) % 5 == 0, "holdout", "treatment")
    converted = (rng.random(n) < np.where(group == "treatment", 0.2, 0.1)).astype(int)
    return pd.DataFrame(
        {
            "group": group,
            "converted": converted,
            "value": converted * 50.0,
            "score": rng.random(n),
            "pre_converted": (rng.random(n) < 0.1).astype(int),
            "days_to_convert": np.where(converted == 1, rng.integers(1, 4, n), np.nan),
        }
    )


REPORT = {
    "n_treatment": 1200,
    "n_control": 300,
    "rate_treatment": 0.1,
    "rate_control": 0.08,
    "rate_treatment_ci": [0.085, 0.118],
    "rate_control_ci": [0.055, 0.115],
    "uplift_abs": 0.02,
    "uplift_abs_ci": [-0.015, 0.051],
    "uplift_rel": 0.25,
    "uplift_rel_ci": [-0.1, 0.9],
    "p_value": 0.27123,
    "incremental_conversions": 24.0,
    "incremental_conversions_ci": [-18.0, 61.2],
    "value_per_user_treatment": None,
    "value_per_user_control": None,
    "incremental_value": None,
    "incremental_value_ci": [None, None],
    "mde": 0.045,
}


def test_headline_rows_format_each_metric() -> None:
    rows = {label: (value, ci) for label, value, ci in headline_rows(REPORT)}
    assert rows["Users (treatment / holdout)"] == ("1,200 / 300", "")
    assert rows["Conversion rate, treatment"] == ("10.00%", "[8.50%, 11.80%]")
    assert rows["Uplift (absolute)"] == ("+2.00 pts", "[-1.50 pts, +5.10 pts]")
    assert rows["Uplift (relative)"] == ("25.0%", "[-10.0%, 90.0%]")
    assert rows["p-value (two-proportion z-test)"] == ("0.2712", "")
    assert rows["Incremental conversions"] == ("24.0", "[-18.0, 61.2]")
    assert rows["Value per user (treatment / holdout)"] == ("n/a / n/a", "")
    assert rows["Incremental value"] == ("n/a", "n/a")
    assert rows["Minimum detectable effect (80% power)"] == ("4.50 pts", "")
    assert pre_period_rows(REPORT) == [] and score_rows(REPORT) == []


def test_pre_period_and_score_rows() -> None:
    report = REPORT | {
        "pre_rate_treatment": 0.05,
        "pre_rate_control": 0.04,
        "pre_diff_abs": 0.01,
        "pre_diff_abs_ci": [-0.02, 0.04],
        "pre_p_value": 0.5,
        "uplift_abs_adjusted": 0.019,
        "uplift_abs_adjusted_ci": [None, None],
        "uplift_abs_adjusted_note": "no interval: the outcome does not vary within the groups",
        "qini_auc": 0.1234,
        "uplift_auc": None,
        "uplift_at_k": {"0.1": 0.05, "0.5": None},
    }
    assert pre_period_rows(report)[-1] == (
        "Uplift adjusted for the pre-period (regression adjustment)",
        "+1.90 pts",
        "no interval: the outcome does not vary within the groups",
    )
    assert score_rows(report) == [
        ("Qini AUC (normalised)", "0.123", ""),
        ("Uplift AUC (normalised)", "n/a", ""),
        ("Uplift in top 10% by score", "+5.00 pts", ""),
        ("Uplift in top 50% by score", "n/a", ""),
    ]


def test_report_files_have_every_section() -> None:
    frame = _frame()
    report = uplift.evaluate_experiment(frame, window_days=3) | {"segment": "spring <revisit>", "scope": {}}
    body, page = report_files(report, frame)
    assert json.loads(body)["uplift_abs"] == report["uplift_abs"]
    text = page.decode("utf-8")
    assert "<h1>Uplift report: spring &lt;revisit&gt;</h1>" in text
    assert f'<p class="verdict">{report["verdict"]}</p>' in text
    assert "<li><b>scope</b>: {}</li>" in text and "<li><b>window_days</b>: 3</li>" in text
    assert "Before the campaign: gap between the groups" in text and "Qini AUC (normalised)" in text
    assert len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', text)) == 3
    assert "How these numbers are computed" in text and "Newcombe hybrid score interval" in text
    # no score, no window: only the rates chart
    plain = frame.drop(columns=["score", "days_to_convert", "pre_converted"])
    text = render_html(uplift.evaluate_experiment(plain), plain)
    assert len(re.findall(r"data:image/png;base64,", text)) == 1 and "Qini AUC" not in text


def test_trust_cuped_and_cost_rows() -> None:
    from dmp.reports.uplift_report import cost_rows, cuped_rows, trust_rows

    report = REPORT | {
        "observed_holdout_share": 0.2,
        "expected_holdout_share": 0.1,
        "srm_chi2": 133.33,
        "srm_p_value": 1.2e-30,
        "srm_mismatch": True,
        "pre_period_days": 14,
        "uplift_abs_cuped": 0.018,
        "uplift_abs_cuped_ci": [-0.01, 0.046],
        "variance_reduction": 0.234,
        "incremental_value_cuped": None,
        "incremental_value": 1200.0,
        "incremental_value_ci": [-300.0, 2700.0],
        "cost": 330.0,
        "cost_delivery": 30.0,
        "cost_coupons": 300.0,
        "cost_by_channel": {
            "coupon_center": {
                "delivered_users": 1000,
                "delivery": 30.0,
                "coupons": 300.0,
                "coupon_id": "CP-1",
                "coupon_value": 10.0,
                "redemptions": 30,
                "total": 330.0,
            }
        },  # fmt: skip
        "roi": 2.636,
        "roi_ci": [-1.9, 7.2],
    }
    assert trust_rows(report) == [
        ("Holdout share (observed / design)", "20.00% / 10.00%", ""),
        ("Sample ratio check (chi-square, p-value)", "133.33, p = 0.0000", "MISMATCH: assignment or delivery is broken"),
    ]  # fmt: skip
    assert cuped_rows(report) == [
        ("Uplift (absolute), plain", "+2.00 pts", "[-1.50 pts, +5.10 pts]"),
        ("Uplift with CUPED on the 14 days before", "+1.80 pts", "[-1.00 pts, +4.60 pts]"),
        ("Variance removed by CUPED", "23.4%", ""),
    ]
    assert cost_rows(report) == [
        ("Incremental GMV", "1,200.00", "[-300.00, 2,700.00]"),
        ("Cost (deliveries + coupons)", "330.00 (30.00 + 300.00)", ""),
        (
            "Cost of coupon_center",
            "330.00",
            "1,000 delivered users: 30.00; 30 x coupon CP-1 at 10.00: 300.00",
        ),
        ("Incremental ROI = (incremental GMV - cost) / cost", "263.6%", "[-190.0%, 720.0%]"),
    ]
    unchecked = REPORT | {"observed_holdout_share": 0.2, "srm_p_value": None, "srm_note": "not checked: x"}
    assert trust_rows(unchecked) == [("Holdout share (observed)", "20.00%", "not checked: x")]
    unknown = REPORT | {"cost": None, "cost_note": "cost not known for sms"}
    assert cost_rows(unknown) == [("Cost and incremental ROI", "n/a", "cost not known for sms")]
    assert trust_rows(REPORT) == [] and cuped_rows(REPORT) == [] and cost_rows(REPORT) == []


def test_daily_chart_draws_the_always_valid_band(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmp.reports import uplift_report

    drawn = []
    monkeypatch.setattr(uplift_report, "png_base64", lambda fig: drawn.append(fig) or "png")
    frame = _frame(4000, seed=5)
    report = uplift.evaluate_experiment(frame, window_days=3)
    assert uplift_report.cumulative_chart(report) == "png"
    ax = drawn[0].axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["always-valid 95% band (daily looks)", "95% CI (one look, at the end)", "uplift"]
    cs_band, ci_band = ax.collections[0], ax.collections[1]
    rows = report["cumulative_uplift"]
    cs_y, ci_y = cs_band.get_paths()[0].vertices[:, 1], ci_band.get_paths()[0].vertices[:, 1]
    assert cs_y.min() == pytest.approx(min(r["uplift_abs_cs"][0] for r in rows) * 100)
    assert cs_y.max() == pytest.approx(max(r["uplift_abs_cs"][1] for r in rows) * 100)
    assert ci_y.max() == pytest.approx(max(r["ci"][1] for r in rows) * 100) and ci_y.max() < cs_y.max()
    drawn[0].clf()
