"""The uplift report page: metric rows from a report body, sections shown only when computed, files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from dmp.reports.uplift_report import headline_rows, pre_period_rows, render_html, score_rows, write_report
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


def test_written_report_has_every_section(tmp_path: Path) -> None:
    frame = _frame()
    report = uplift.evaluate_experiment(frame, window_days=3) | {"segment": "spring <revisit>", "scope": {}}
    json_path, html_path = write_report(tmp_path / "r", report, frame)
    assert json.loads(json_path.read_text())["uplift_abs"] == report["uplift_abs"]
    text = html_path.read_text()
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
