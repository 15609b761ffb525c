"""report.json + a self-contained report.html (charts as base64 PNGs) for one uplift evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from dmp.reports import html as h
from dmp.reports.charts import IDEAL, MUTED, PRIMARY, REFERENCE, png_base64, pyplot
from dmp.reports.numbers import interval, num, pct, pts
from dmp.stats import uplift
from dmp.stats.qini import experiment_arrays

Report = uplift.Report
MetricRow = tuple[str, str, str]  # label, value, 95% interval

# Report fields shown as context above the table, in this order, when present and not empty.
CONTEXT_KEYS = (
    "segment",
    "run_date",
    "channel",
    "window_days",
    "window",
    "pre_window",
    "scope",
    "input",
    "evaluated_at",
)


def write_report(out_dir: str | Path, report: Report, frame: pd.DataFrame | None = None) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` into ``out_dir``; returns their paths.

    ``frame`` is the per-user experiment table (group, converted[, score]); with a score it adds
    the Qini chart.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "report.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    html_path = out / "report.html"
    html_path.write_text(render_html(report, frame), encoding="utf-8")
    return json_path, html_path


# ------------------------------------------------------------------------------------------
# charts
# ------------------------------------------------------------------------------------------


def rates_chart(report: Report) -> str:
    """Conversion rate per group with its Wilson interval as error bars."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = ["treatment", "holdout"]
    rates = [report["rate_treatment"], report["rate_control"]]
    cis = [report["rate_treatment_ci"], report["rate_control_ci"]]
    lower = [r - (c[0] if c[0] is not None else r) for r, c in zip(rates, cis, strict=True)]
    upper = [(c[1] if c[1] is not None else r) - r for r, c in zip(rates, cis, strict=True)]
    ax.bar(
        labels,
        [r * 100 for r in rates],
        color=[PRIMARY, MUTED],
        yerr=[[v * 100 for v in lower], [v * 100 for v in upper]],
        capsize=8,
    )
    for i, r in enumerate(rates):
        ax.text(i, r * 50, f"{r * 100:.2f}%", ha="center", va="center", color="white", fontweight="bold")
    ax.set_ylabel("conversion rate (%)")
    ax.set_title("Conversion rate per group (95% Wilson CI)")
    return png_base64(fig)


def cumulative_chart(report: Report) -> str:
    """Uplift by day of the attribution window, with its interval as a band."""
    plt = pyplot()
    rows = report["cumulative_uplift"]
    days = [r["day"] for r in rows]
    up = np.array([r["uplift_abs"] * 100 for r in rows])
    low = np.array([(r["ci"][0] if r["ci"][0] is not None else np.nan) * 100 for r in rows])
    high = np.array([(r["ci"][1] if r["ci"][1] is not None else np.nan) * 100 for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.fill_between(days, low, high, alpha=0.25, color=PRIMARY, label="95% CI")
    ax.plot(days, up, marker="o", color=PRIMARY, label="uplift")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("day after the run date")
    ax.set_ylabel("uplift (points)")
    ax.set_title("Cumulative uplift over the window")
    ax.legend(loc="best")
    return png_base64(fig)


def qini_chart(frame: pd.DataFrame) -> str:
    """The pack score's Qini curve against the perfect ranking and random targeting."""
    plt = pyplot()
    y, s, t = experiment_arrays(frame)
    x_a, y_a = uplift.qini_curve(y, s, t)
    x_p, y_p = uplift.perfect_qini_curve(y, t)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x_a, y_a, label="pack score", color=PRIMARY)
    ax.plot(x_p, y_p, label="perfect ranking", color=IDEAL, linestyle="--")
    ax.plot([0, x_a[-1]], [0, y_a[-1]], label="random", color=REFERENCE, linestyle=":")
    ax.set_xlabel("users targeted, best score first")
    ax.set_ylabel("incremental conversions")
    ax.set_title("Qini curve")
    ax.legend(loc="best")
    return png_base64(fig)


def charts(report: Report, frame: pd.DataFrame | None) -> list[tuple[str, str]]:
    """(caption, base64 PNG) of every chart the report has data for."""
    found = [("Conversion rate per group", rates_chart(report))]
    if report.get("cumulative_uplift"):
        found.append(("Cumulative uplift", cumulative_chart(report)))
    if frame is not None and "score" in frame.columns and report.get("qini_auc") is not None:
        found.append(("Qini curve", qini_chart(frame)))
    return found


# ------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------


def _pct1(x: float | None) -> str:
    return pct(x, 1)


def _num2(x: float | None) -> str:
    return num(x, 2)


def _adjusted_interval(report: Report) -> str:
    """The adjusted uplift's interval, followed by the note on why it is missing or may mislead."""
    ci = report["uplift_abs_adjusted_ci"]
    note = report.get("uplift_abs_adjusted_note")
    shown = interval(ci, pts) if ci[0] is not None else ""
    return " ".join(part for part in (shown, note) if part) or "n/a"


def headline_rows(report: Report) -> list[MetricRow]:
    """Sizes, rates, uplift, p-value, incremental conversions and value, MDE."""
    value_per_user = (
        f"{_num2(report.get('value_per_user_treatment'))} / {_num2(report.get('value_per_user_control'))}"
    )
    return [
        ("Users (treatment / holdout)", f"{report['n_treatment']:,} / {report['n_control']:,}", ""),
        (
            "Conversion rate, treatment",
            pct(report["rate_treatment"]),
            interval(report["rate_treatment_ci"], pct),
        ),
        ("Conversion rate, holdout", pct(report["rate_control"]), interval(report["rate_control_ci"], pct)),
        ("Uplift (absolute)", pts(report["uplift_abs"]), interval(report["uplift_abs_ci"], pts)),
        (
            "Uplift (relative)",
            pct(report["uplift_rel"], 1),
            interval(report.get("uplift_rel_ci", [None, None]), _pct1),
        ),
        ("p-value (two-proportion z-test)", num(report["p_value"], 4), ""),
        (
            "Incremental conversions",
            num(report["incremental_conversions"]),
            interval(report.get("incremental_conversions_ci", [None, None]), num),
        ),
        ("Value per user (treatment / holdout)", value_per_user, ""),
        (
            "Incremental value",
            _num2(report["incremental_value"]),
            interval(report["incremental_value_ci"], _num2),
        ),
        ("Minimum detectable effect (80% power)", pts(report["mde"]).lstrip("+"), ""),
    ]


def pre_period_rows(report: Report) -> list[MetricRow]:
    """The balance check before the campaign and the adjusted uplift (when they were computed)."""
    if "pre_rate_treatment" not in report:
        return []
    return [
        (
            "Before the campaign: conversion rate (treatment / holdout)",
            f"{pct(report['pre_rate_treatment'])} / {pct(report['pre_rate_control'])}",
            "",
        ),
        (
            "Before the campaign: gap between the groups",
            pts(report["pre_diff_abs"]),
            interval(report["pre_diff_abs_ci"], pts),
        ),
        ("Before the campaign: p-value", num(report["pre_p_value"], 4), ""),
        (
            "Uplift adjusted for the pre-period (regression adjustment)",
            pts(report["uplift_abs_adjusted"]),
            _adjusted_interval(report),
        ),
    ]


def score_rows(report: Report) -> list[MetricRow]:
    """Ranking quality of the pack's score (when it had one)."""
    if report.get("qini_auc") is None and report.get("uplift_auc") is None:
        return []
    rows = [
        ("Qini AUC (normalised)", num(report.get("qini_auc"), 3), ""),
        ("Uplift AUC (normalised)", num(report.get("uplift_auc"), 3), ""),
    ]
    for k, v in (report.get("uplift_at_k") or {}).items():
        rows.append((f"Uplift in top {float(k) * 100:g}% by score", pts(v), ""))
    return rows


def _warnings(report: Report) -> str:
    items = list(report.get("warnings", []))
    if report.get("score_warning"):
        items.append(report["score_warning"])
    return f'<div class="warn"><b>Warnings</b>{h.bullets(items)}</div>' if items else ""


def render_html(report: Report, frame: pd.DataFrame | None = None) -> str:
    """The report as one self-contained page: verdict, warnings, context, metrics, charts, methods."""
    title = (
        report.get("title") or f"Uplift report: {report.get('segment', report.get('input', 'experiment'))}"
    )
    rows = headline_rows(report) + pre_period_rows(report) + score_rows(report)
    context = [(key, report[key]) for key in CONTEXT_KEYS if report.get(key) not in (None, "", [])]
    if report.get("other_group_rows"):  # rows of an external file in neither group: only when some were
        context.append(("other_group_rows", report["other_group_rows"]))
    return h.page(
        title,
        [
            h.paragraph(report.get("verdict", ""), "verdict"),
            _warnings(report),
            h.labelled_bullets(context),
            h.table(("metric", "value", "95% interval"), rows, row_headers=True),
            "\n".join(h.figure(name, data) for name, data in charts(report, frame)),
            h.heading("How these numbers are computed"),
            h.labelled_bullets(report.get("methods", {}).items()),
            h.paragraph(
                "See docs/uplift.md for what the interval, the holdout, the minimum detectable effect and the "
                "Qini curve mean."
            ),
        ],
    )
