"""``dmp segments preview`` rendering: rich tables on the console and one self-contained HTML page.

The numbers come from :func:`dmp.steps.preview.run_preview` as a :data:`PreviewResult` dict
(segment, sizes, ``overlap`` from ``pack_overlap``, ``profile`` from ``audience_profile``); this
module only formats them, so it needs no Spark. Console and HTML show the same rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dmp.reports import html as h
from dmp.reports.charts import MUTED, PRIMARY, grouped_bars
from dmp.reports.numbers import index, pct

if TYPE_CHECKING:
    from rich.console import Console

# The profile's dimensions: tag column -> label. dmp.steps.preview counts exactly these.
PROFILE_DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("lifecycle_stage", "Lifecycle stage"),
    ("consumption_level", "Consumption level"),
    ("top_category_ids", "Top categories"),
)
OVERLAP_HEADERS = ("other segment", "run date", "its size", "shared users", "share of this audience")
PROFILE_HEADERS = ("value", "audience", "audience share", "population", "population share", "index")
OVERLAP_TITLE = "overlap with the other specs' latest packs"
# Preview tables are dense grids of numbers: a dash reads better there than "n/a".
_MISSING = "-"

# The preview as run_preview returns it (JSON-like: sizes, reason, metrics, overlap, profile).
PreviewResult = dict[str, Any]


def _pct(x: float | None) -> str:
    return pct(x, 1, missing=_MISSING)


def _lookalike_line(lookalike: dict[str, Any]) -> str:
    return (
        f"{lookalike.get('model')}: recall@k {_pct(lookalike.get('recall_at_k'))} vs random "
        f"{_pct(lookalike.get('random_recall_at_k'))}, lift {lookalike.get('lift') or 0:.1f}, "
        f"AUC {lookalike.get('auc') or 0:.3f} (seed {lookalike.get('n_seed')}, "
        f"{lookalike.get('n_holdout_seed')} held out)"
    )


def summary_rows(result: PreviewResult) -> list[tuple[str, str]]:
    """(label, value) lines of the summary table (shared by the console and the HTML)."""
    rows = [
        ("segment", f"{result['segment']} ({result['kind']})"),
        ("run date", str(result["run_date"])),
        ("size", f"{result['size']:,}"),
        ("holdout", f"{result['holdout_size']:,}"),
        ("treatment", f"{result['treatment_size']:,}"),
        ("deliverable", "yes" if result["deliverable"] else f"no: {result.get('reason') or ''}".rstrip(": ")),
    ]
    lookalike = (result.get("metrics") or {}).get("lookalike")
    if lookalike:
        rows.append(("lookalike quality", _lookalike_line(lookalike)))
    overlap = result.get("overlap") or {}
    rows.append(("in other packs", f"{overlap.get('any', 0):,} ({_pct(overlap.get('any_share'))})"))
    profile = result.get("profile") or {}
    if profile.get("audience_without_tags"):
        rows.append(("audience without tags", f"{profile['audience_without_tags']:,}"))
    rows.append(("population (tagged users)", f"{profile.get('population', 0):,}"))
    return rows


def overlap_table_rows(overlap: dict[str, Any]) -> list[tuple[str, ...]]:
    return [
        (r["segment"], str(r["run_date"]), f"{r['other_size']:,}", f"{r['overlap']:,}", _pct(r["share"]))
        for r in overlap.get("rows", [])
    ]


def profile_table_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            str(r["value"]),
            f"{r['audience_users']:,}",
            _pct(r["audience_share"]),
            f"{r['population_users']:,}",
            _pct(r["population_share"]),
            index(r["index"], missing=_MISSING),
        )
        for r in rows
    ]


def render_console(result: PreviewResult, console: Console | None = None) -> None:
    """Print the preview as rich tables."""
    from rich.console import Console
    from rich.table import Table

    out = console or Console()
    summary = Table(title=f"preview of {result['segment']}", show_header=False)
    summary.add_column("", style="bold")
    summary.add_column("")
    for label, value in summary_rows(result):
        summary.add_row(label, value)
    out.print(summary)

    overlap = Table(title=OVERLAP_TITLE)
    for header in OVERLAP_HEADERS:
        overlap.add_column(header)
    for row in overlap_table_rows(result.get("overlap") or {}):
        overlap.add_row(*row)
    out.print(overlap)

    for key, title in PROFILE_DIMENSIONS:
        table = Table(title=f"{title}: audience vs population")
        for header in PROFILE_HEADERS:
            table.add_column(header, justify="left" if header == "value" else "right")
        for row in profile_table_rows(result["profile"]["dimensions"][key]):
            table.add_row(*row)
        out.print(table)


def chart_png(rows: list[dict[str, Any]], title: str) -> str:
    """Grouped bars (audience vs population share) as a base64-encoded PNG."""
    return grouped_bars(
        [str(r["value"]) for r in rows],
        {
            "audience": ([100 * (r["audience_share"] or 0) for r in rows], PRIMARY),
            "population": ([100 * (r["population_share"] or 0) for r in rows], MUTED),
        },
        title,
        "% of users",
    )


def render_html(result: PreviewResult) -> str:
    """The preview as one self-contained HTML page (inline CSS, charts as data URIs, no links)."""
    parts = [
        h.table(None, summary_rows(result), grid=True),
        h.heading("Overlap with the other specs' latest packs"),
        h.table(OVERLAP_HEADERS, overlap_table_rows(result.get("overlap") or {}), grid=True),
    ]
    for key, label in PROFILE_DIMENSIONS:
        rows = result["profile"]["dimensions"][key]
        parts.append(h.heading(f"{label}: audience vs population"))
        parts.append(h.table(PROFILE_HEADERS, profile_table_rows(rows), grid=True))
        if rows:
            parts.append(h.figure(label, chart_png(rows, label)))
    return h.page(f"Preview of segment {result['segment']} ({result['run_date']})", parts)
