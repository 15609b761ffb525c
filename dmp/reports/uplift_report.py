"""report.json + a self-contained report.html (charts as base64 PNGs) for one uplift evaluation."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dmp.stats import uplift


def write_report(
    out_dir: str | Path, report: dict[str, Any], frame: pd.DataFrame | None = None
) -> tuple[Path, Path]:
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


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display; the charts end up inline in the HTML
    import matplotlib.pyplot as plt

    return plt


def rates_chart(report: dict[str, Any]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    labels = ["treatment", "holdout"]
    rates = [report["rate_treatment"], report["rate_control"]]
    cis = [report["rate_treatment_ci"], report["rate_control_ci"]]
    lower = [r - (c[0] if c[0] is not None else r) for r, c in zip(rates, cis, strict=True)]
    upper = [(c[1] if c[1] is not None else r) - r for r, c in zip(rates, cis, strict=True)]
    ax.bar(
        labels,
        [r * 100 for r in rates],
        color=["#2b6cb0", "#a0aec0"],
        yerr=[[v * 100 for v in lower], [v * 100 for v in upper]],
        capsize=8,
    )
    for i, r in enumerate(rates):
        ax.text(i, r * 50, f"{r * 100:.2f}%", ha="center", va="center", color="white", fontweight="bold")
    ax.set_ylabel("conversion rate (%)")
    ax.set_title("Conversion rate per group (95% Wilson CI)")
    return _png(fig)


def cumulative_chart(report: dict[str, Any]) -> str:
    plt = _plt()
    rows = report["cumulative_uplift"]
    days = [r["day"] for r in rows]
    up = np.array([r["uplift_abs"] * 100 for r in rows])
    low = np.array([(r["ci"][0] if r["ci"][0] is not None else np.nan) * 100 for r in rows])
    high = np.array([(r["ci"][1] if r["ci"][1] is not None else np.nan) * 100 for r in rows])
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.fill_between(days, low, high, alpha=0.25, color="#2b6cb0", label="95% CI")
    ax.plot(days, up, marker="o", color="#2b6cb0", label="uplift")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xlabel("day after the run date")
    ax.set_ylabel("uplift (points)")
    ax.set_title("Cumulative uplift over the window")
    ax.legend(loc="best")
    return _png(fig)


def qini_chart(frame: pd.DataFrame) -> str:
    plt = _plt()
    y = frame["converted"].to_numpy(int)
    s = frame["score"].to_numpy(float)
    t = (frame["group"] == uplift.TREATMENT).to_numpy(int)
    x_a, y_a = uplift.qini_curve(y, s, t)
    x_p, y_p = uplift.perfect_qini_curve(y, t)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(x_a, y_a, label="pack score", color="#2b6cb0")
    ax.plot(x_p, y_p, label="perfect ranking", color="#38a169", linestyle="--")
    ax.plot([0, x_a[-1]], [0, y_a[-1]], label="random", color="#718096", linestyle=":")
    ax.set_xlabel("users targeted, best score first")
    ax.set_ylabel("incremental conversions")
    ax.set_title("Qini curve")
    ax.legend(loc="best")
    return _png(fig)


# ------------------------------------------------------------------------------------------
# HTML
# ------------------------------------------------------------------------------------------


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.2f} pts"


def _num(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _ci(pair: list[float | None], fmt: Any) -> str:
    low, high = pair
    return "n/a" if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"


def _adjusted_interval(report: dict[str, Any]) -> str:
    """The adjusted uplift's interval, followed by the note on why it is missing or may mislead."""
    interval = report["uplift_abs_adjusted_ci"]
    note = report.get("uplift_abs_adjusted_note")
    shown = _ci(interval, _pts) if interval[0] is not None else ""
    return " ".join(part for part in (shown, note) if part) or "n/a"


def render_html(report: dict[str, Any], frame: pd.DataFrame | None = None) -> str:
    title = (
        report.get("title") or f"Uplift report: {report.get('segment', report.get('input', 'experiment'))}"
    )
    e = html.escape
    rows = [
        ("Users (treatment / holdout)", f"{report['n_treatment']:,} / {report['n_control']:,}", ""),
        (
            "Conversion rate, treatment",
            _pct(report["rate_treatment"]),
            _ci(report["rate_treatment_ci"], _pct),
        ),
        ("Conversion rate, holdout", _pct(report["rate_control"]), _ci(report["rate_control_ci"], _pct)),
        ("Uplift (absolute)", _pts(report["uplift_abs"]), _ci(report["uplift_abs_ci"], _pts)),
        (
            "Uplift (relative)",
            _pct(report["uplift_rel"], 1),
            _ci(report.get("uplift_rel_ci", [None, None]), lambda v: _pct(v, 1)),
        ),
        ("p-value (two-proportion z-test)", _num(report["p_value"], 4), ""),
        (
            "Incremental conversions",
            _num(report["incremental_conversions"]),
            _ci(report.get("incremental_conversions_ci", [None, None]), _num),
        ),
        (
            "Value per user (treatment / holdout)",
            f"{_num(report.get('value_per_user_treatment'), 2)} / {_num(report.get('value_per_user_control'), 2)}",
            "",
        ),
        (
            "Incremental value",
            _num(report["incremental_value"], 2),
            _ci(report["incremental_value_ci"], lambda v: _num(v, 2)),
        ),
        ("Minimum detectable effect (80% power)", _pts(report["mde"]).lstrip("+"), ""),
    ]
    if "pre_rate_treatment" in report:
        rows += [
            (
                "Before the campaign: conversion rate (treatment / holdout)",
                f"{_pct(report['pre_rate_treatment'])} / {_pct(report['pre_rate_control'])}",
                "",
            ),
            (
                "Before the campaign: gap between the groups",
                _pts(report["pre_diff_abs"]),
                _ci(report["pre_diff_abs_ci"], _pts),
            ),
            ("Before the campaign: p-value", _num(report["pre_p_value"], 4), ""),
            (
                "Uplift adjusted for the pre-period (regression adjustment)",
                _pts(report["uplift_abs_adjusted"]),
                _adjusted_interval(report),
            ),
        ]
    if report.get("qini_auc") is not None or report.get("uplift_auc") is not None:
        rows.append(("Qini AUC (normalised)", _num(report.get("qini_auc"), 3), ""))
        rows.append(("Uplift AUC (normalised)", _num(report.get("uplift_auc"), 3), ""))
        for k, v in (report.get("uplift_at_k") or {}).items():
            rows.append((f"Uplift in top {float(k) * 100:g}% by score", _pts(v), ""))
    table = "\n".join(f"<tr><th>{e(a)}</th><td>{e(b)}</td><td>{e(c)}</td></tr>" for a, b, c in rows)

    context = []
    for key in (
        "segment",
        "run_date",
        "channel",
        "window_days",
        "window",
        "pre_window",
        "scope",
        "input",
        "evaluated_at",
    ):
        if report.get(key) not in (None, "", []):
            context.append(f"<li><b>{e(key)}</b>: {e(str(report[key]))}</li>")
    for key in ("other_group_rows",):
        if report.get(key):
            context.append(f"<li><b>{e(key)}</b>: {e(str(report[key]))}</li>")

    warnings = "".join(f"<li>{e(w)}</li>" for w in report.get("warnings", []))
    if report.get("score_warning"):
        warnings += f"<li>{e(report['score_warning'])}</li>"

    charts = [("Conversion rate per group", rates_chart(report))]
    if report.get("cumulative_uplift"):
        charts.append(("Cumulative uplift", cumulative_chart(report)))
    if frame is not None and "score" in frame.columns and report.get("qini_auc") is not None:
        charts.append(("Qini curve", qini_chart(frame)))
    images = "\n".join(
        f'<figure><img alt="{e(name)}" src="data:image/png;base64,{data}"><figcaption>{e(name)}</figcaption></figure>'
        for name, data in charts
    )
    methods = "".join(f"<li><b>{e(k)}</b>: {e(v)}</li>" for k, v in report.get("methods", {}).items())

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #1a202c; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: .35rem .8rem; text-align: left; }}
th {{ font-weight: 600; }}
.verdict {{ font-size: 1.2rem; padding: .8rem; background: #ebf8ff; border-left: 4px solid #2b6cb0; }}
.warn {{ background: #fffaf0; border-left: 4px solid #dd6b20; padding: .4rem 1rem; }}
figure {{ display: inline-block; margin: .5rem; }}
</style></head>
<body>
<h1>{e(title)}</h1>
<p class="verdict">{e(report.get("verdict", ""))}</p>
{f'<div class="warn"><b>Warnings</b><ul>{warnings}</ul></div>' if warnings else ""}
<ul>{"".join(context)}</ul>
<table><thead><tr><th>metric</th><th>value</th><th>95% interval</th></tr></thead>
<tbody>
{table}
</tbody></table>
{images}
<h2>How these numbers are computed</h2>
<ul>{methods}</ul>
<p>See docs/uplift.md for what the interval, the holdout, the minimum detectable effect and the Qini curve mean.</p>
</body></html>
"""
