"""report.json + a self-contained report.html (charts as base64 PNGs) for one uplift evaluation.

Sections (each only when computed): the verdict and warnings (a sample ratio mismatch first), the
context, the headline metrics, the trust checks (sample ratio, Holm across the run date's packs),
the pre-period (balance check, adjusted uplift, CUPED beside the plain estimate), cost and ROI,
the ranking metrics, which tags earned it (the subgroup table with its keep / drop decisions and the
size each keep-set would leave), the charts (the daily uplift with its fixed interval and its
always-valid band) and the methods. docs/uplift.md says what each number means.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from dmp.reports import html as h
from dmp.reports.charts import ALWAYS_VALID, IDEAL, MUTED, PRIMARY, REFERENCE, png_base64, pyplot
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
    "pre_period_days",
    "pre_window",
    "scope",
    "input",
    "evaluated_at",
)


def report_files(report: Report, frame: pd.DataFrame | None = None) -> tuple[bytes, bytes]:
    """(report.json, report.html) as bytes: :mod:`dmp.steps.report_store` names and stores them
    (a local folder or S3).

    ``frame`` is the per-user experiment table (group, converted[, score]); with a score it adds
    the Qini chart.
    """
    body = json.dumps(report, indent=2, sort_keys=False, default=str) + "\n"
    return body.encode("utf-8"), render_html(report, frame).encode("utf-8")


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


def _band(rows: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) in points of each day's interval ``key`` (NaN where a day has none)."""

    def end(pair: list[float | None] | None, i: int) -> float:
        value = pair[i] if pair else None
        return np.nan if value is None else value * 100

    return np.array([end(r.get(key), 0) for r in rows]), np.array([end(r.get(key), 1) for r in rows])


def cumulative_chart(report: Report) -> str:
    """Uplift by day of the attribution window: the fixed 95% interval (read once, at the end) and
    the always-valid band (``uplift_abs_cs``, read any day)."""
    plt = pyplot()
    rows = report["cumulative_uplift"]
    days = [r["day"] for r in rows]
    up = np.array([np.nan if r["uplift_abs"] is None else r["uplift_abs"] * 100 for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    cs_low, cs_high = _band(rows, "uplift_abs_cs")
    if np.isfinite(cs_low).any():
        ax.fill_between(
            days, cs_low, cs_high, alpha=0.15, color=ALWAYS_VALID, label="always-valid 95% band (daily looks)"
        )
        ax.plot(days, cs_low, color=ALWAYS_VALID, linewidth=0.8, linestyle="--")
        ax.plot(days, cs_high, color=ALWAYS_VALID, linewidth=0.8, linestyle="--")
    low, high = _band(rows, "ci")
    ax.fill_between(days, low, high, alpha=0.25, color=PRIMARY, label="95% CI (one look, at the end)")
    ax.plot(days, up, marker="o", color=PRIMARY, label="uplift")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("day after the run date")
    ax.set_ylabel("uplift (points)")
    ax.set_title("Cumulative uplift over the window")
    ax.legend(loc="best", fontsize="small")
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
        *_holm_rows(report),
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


def _holm_rows(report: Report) -> list[MetricRow]:
    """The Holm-adjusted p-value, when several packs of the run date were read together."""
    family = (report.get("multiple_testing") or {}).get("family_size") or 0
    if report.get("p_value_holm") is None or family < 2:
        return []
    return [
        (f"p-value adjusted for {family} packs of this run date (Holm)", num(report["p_value_holm"], 4), "")
    ]


def trust_rows(report: Report) -> list[MetricRow]:
    """The sample ratio check: the holdout's share against the design's, chi-square and p-value."""
    if "observed_holdout_share" not in report:
        return []
    observed, expected = report.get("observed_holdout_share"), report.get("expected_holdout_share")
    if report.get("srm_p_value") is None:
        return [("Holdout share (observed)", pct(observed), report.get("srm_note") or "")]
    verdict = "MISMATCH: assignment or delivery is broken" if report.get("srm_mismatch") else "as designed"
    return [
        ("Holdout share (observed / design)", f"{pct(observed)} / {pct(expected)}", ""),
        (
            "Sample ratio check (chi-square, p-value)",
            f"{num(report.get('srm_chi2'), 2)}, p = {num(report['srm_p_value'], 4)}",
            verdict,
        ),
    ]


def cuped_rows(report: Report) -> list[MetricRow]:
    """CUPED beside the plain estimate (conversion; and the incremental value when it has pre_value)."""
    if "uplift_abs_cuped" not in report:
        return []
    days = report.get("pre_period_days")
    period = f" on the {days} days before" if days else ""
    if report.get("uplift_abs_cuped") is None:
        return [(f"Uplift with CUPED{period}", "n/a", report.get("cuped_note") or "")]
    rows = [
        ("Uplift (absolute), plain", pts(report["uplift_abs"]), interval(report["uplift_abs_ci"], pts)),
        (
            f"Uplift with CUPED{period}",
            pts(report["uplift_abs_cuped"]),
            interval(report["uplift_abs_cuped_ci"], pts),
        ),
        ("Variance removed by CUPED", pct(report.get("variance_reduction"), 1), ""),
    ]
    if report.get("incremental_value_cuped") is not None:
        rows += [
            (
                "Incremental value with CUPED",
                _num2(report["incremental_value_cuped"]),
                interval(report["incremental_value_cuped_ci"], _num2),
            ),
            ("Variance of the value removed by CUPED", pct(report.get("value_variance_reduction"), 1), ""),
        ]
    return rows


def cost_rows(report: Report) -> list[MetricRow]:
    """What the campaign cost and earned: incremental GMV, cost, incremental ROI (or why not)."""
    if "cost" not in report:
        return []
    if report.get("cost") is None:
        note = report.get("cost_note")
        return [("Cost and incremental ROI", "n/a", note)] if note else []
    rows = [
        (
            "Incremental GMV",
            _num2(report.get("incremental_value")),
            interval(report.get("incremental_value_ci", [None, None]), _num2),
        ),
        (
            "Cost (deliveries + coupons)",
            f"{_num2(report['cost'])} ({_num2(report.get('cost_delivery'))} + {_num2(report.get('cost_coupons'))})",
            "",
        ),
    ]
    for name, entry in (report.get("cost_by_channel") or {}).items():
        parts = []
        if entry.get("delivered_users") is not None:
            parts.append(f"{entry['delivered_users']:,} delivered users: {_num2(entry['delivery'])}")
        if entry.get("redemptions") is not None:
            parts.append(
                f"{entry['redemptions']:,} x coupon {entry.get('coupon_id')} at {_num2(entry.get('coupon_value'))}: "
                f"{_num2(entry['coupons'])}"
            )
        rows.append((f"Cost of {name}", _num2(entry.get("total")), "; ".join(parts)))
    rows.append(
        (
            "Incremental ROI = (incremental GMV - cost) / cost",
            pct(report.get("roi"), 1),
            interval(report["roi_ci"], _pct1),
        )
    )
    return rows


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


def subgroup_rows(block: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per subgroup: tag, subgroup, users (treatment / holdout), uplift, interval, q, decision."""
    return [
        (
            r["tag"],
            r["subgroup"],
            f"{r['n_treatment']:,} / {r['n_control']:,}",
            pts(r.get("uplift_abs")),
            interval(r.get("uplift_abs_ci") or [None, None], pts),
            num(r.get("q_value"), 4),
            r.get("decision", ""),
        )
        for r in block.get("rows", [])
    ]


def keep_set_rows(block: dict[str, Any]) -> list[tuple[str, ...]]:
    """One row per tag: does the uplift differ between its subgroups, and what each keep-set leaves."""
    rows = []
    for entry in block.get("tags", []):
        test = entry.get("heterogeneity") or {}
        differ = (
            "n/a"
            if test.get("p_value") is None
            else f"Q = {num(test.get('q'), 2)}, df {test.get('df')}, p = {num(test.get('p_value'), 4)} "
            f"(Holm {num(test.get('p_value_holm'), 4)}), I2 = {pct(test.get('i2'), 0)}"
        )
        keep = ", ".join(entry.get("keep") or []) or "-"
        rows.append(
            (
                entry["tag"],
                differ,
                keep,
                f"{entry.get('keep_n', 0):,} ({pct(entry.get('keep_share'), 1)})",
                f"{entry.get('without_dropped_n', 0):,} ({pct(entry.get('without_dropped_share'), 1)})",
            )
        )
    return rows


def subgroup_section(report: Report) -> str:
    """ "Which tags earned it": the subgroup table, the keep-sets per tag and the suggestion."""
    block = report.get("subgroups")
    if not block:
        return ""
    if "rows" not in block:
        return "\n".join([h.heading("Which tags earned it"), h.paragraph(block.get("note", ""))])
    suggestion = block.get("suggest_note", "")
    if block.get("suggested_tag"):
        suggestion += f"; dmp segments suggest --from-evaluation {report.get('segment', 'SEGMENT')} " + str(
            report.get("run_date", "RUN_DATE")
        )
    return "\n".join(
        [
            h.heading("Which tags earned it"),
            h.paragraph(
                f"Uplift per subgroup of each tag as of the run date, {block.get('n_users', 0):,} users; "
                f"q-values (Benjamini-Hochberg) over the {block.get('family_size', 0)} tested subgroups. "
                f"Rule: {block.get('rule', '')}."
            ),
            h.table(
                (
                    "tag",
                    "subgroup",
                    "users (treatment / holdout)",
                    "uplift",
                    "95% interval",
                    "q-value",
                    "decision",
                ),
                subgroup_rows(block),
            ),
            h.table(
                (
                    "tag",
                    "do its subgroups differ? (Cochran's Q)",
                    "keep",
                    "users if only the kept",
                    "users without the dropped",
                ),
                keep_set_rows(block),
            ),
            h.paragraph(f"Suggestion: {suggestion}"),
        ]
    )


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
    rows = (
        headline_rows(report)
        + trust_rows(report)
        + pre_period_rows(report)
        + cuped_rows(report)
        + cost_rows(report)
        + score_rows(report)
    )
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
            subgroup_section(report),
            "\n".join(h.figure(name, data) for name, data in charts(report, frame)),
            h.heading("How these numbers are computed"),
            h.labelled_bullets(report.get("methods", {}).items()),
            h.paragraph(
                "See docs/uplift.md for what the interval, the holdout, the minimum detectable effect, the "
                "sample ratio check, the Holm adjustment, the daily band, CUPED, the ROI, the Qini curve and the "
                "subgroup table mean."
            ),
        ],
    )
