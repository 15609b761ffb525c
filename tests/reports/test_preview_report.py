"""Preview rendering without Spark: the rows the console and the HTML page share."""

from __future__ import annotations

import re
from datetime import date

from rich.console import Console

from dmp.reports.preview_report import (
    overlap_table_rows,
    profile_table_rows,
    render_console,
    render_html,
    summary_rows,
)


def _share_row(
    value: str, aud: int, aud_share: float | None, pop: int, pop_share: float, idx: float | None
) -> dict:
    return {
        "value": value,
        "audience_users": aud,
        "audience_share": aud_share,
        "population_users": pop,
        "population_share": pop_share,
        "index": idx,
    }


RESULT = {
    "segment": "look",
    "kind": "lookalike",
    "run_date": date(2026, 3, 3),
    "size": 1234,
    "holdout_size": 123,
    "treatment_size": 1111,
    "deliverable": True,
    "reason": None,
    "metrics": {
        "lookalike": {
            "model": "lr",
            "recall_at_k": 0.4,
            "random_recall_at_k": 0.1,
            "lift": 4.0,
            "auc": 0.8123,
            "n_seed": 50,
            "n_holdout_seed": 10,
        }
    },  # fmt: skip
    "overlap": {
        "rows": [
            {"segment": "a", "run_date": date(2026, 3, 2), "other_size": 5000, "overlap": 40, "share": 0.0324}
        ],
        "any": 40,
        "any_share": 0.0324,
    },
    "profile": {
        "population": 10000,
        "audience": 1234,
        "audience_with_tags": 1200,
        "audience_without_tags": 34,
        "dimensions": {
            "lifecycle_stage": [
                _share_row("active", 900, 0.75, 4000, 0.4, 187.5),
                _share_row("new", 0, None, 10, 0.001, None),
            ],
            "consumption_level": [],
            "top_category_ids": [_share_row("C01", 600, 0.5, 5000, 0.5, 100.0)],
        },
    },
}


def test_summary_rows() -> None:
    assert summary_rows(RESULT) == [
        ("segment", "look (lookalike)"),
        ("run date", "2026-03-03"),
        ("size", "1,234"),
        ("holdout", "123"),
        ("treatment", "1,111"),
        ("deliverable", "yes"),
        (
            "lookalike quality",
            "lr: recall@k 40.0% vs random 10.0%, lift 4.0, AUC 0.812 (seed 50, 10 held out)",
        ),
        ("in other packs", "40 (3.2%)"),
        ("audience without tags", "34"),
        ("population (tagged users)", "10,000"),
    ]
    undeliverable = dict(RESULT, deliverable=False, reason="size 4 is below min_size 100", metrics={})
    assert ("deliverable", "no: size 4 is below min_size 100") in summary_rows(undeliverable)
    assert ("deliverable", "no") in summary_rows(dict(undeliverable, reason=None))


def test_table_rows_use_a_dash_for_missing_values() -> None:
    assert overlap_table_rows(RESULT["overlap"]) == [("a", "2026-03-02", "5,000", "40", "3.2%")]
    assert profile_table_rows(RESULT["profile"]["dimensions"]["lifecycle_stage"]) == [
        ("active", "900", "75.0%", "4,000", "40.0%", "188"),
        ("new", "0", "-", "10", "0.1%", "-"),
    ]


def test_console_and_html_show_the_same_rows() -> None:
    console = Console(record=True, width=160)
    render_console(RESULT, console)
    printed = console.export_text()
    assert "preview of look" in printed and "Consumption level: audience vs population" in printed
    text = render_html(RESULT)
    assert "<h1>Preview of segment look (2026-03-03)</h1>" in text
    assert (
        "<tr><td>active</td><td>900</td><td>75.0%</td><td>4,000</td><td>40.0%</td><td>188</td></tr>" in text
    )
    # one chart per dimension with rows (consumption_level has none)
    assert len(re.findall(r'src="data:image/png;base64,', text)) == 2
    assert '<tr><td colspan="6"><em>none</em></td></tr>' in text
