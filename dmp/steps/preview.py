"""``dmp segments preview``: what a spec would produce, without writing anything.

The pack is built in memory with the same code as ``dmp segments build`` (``dmp.steps.packs.build_pack_df``),
then described:

* size, holdout and treatment sizes, deliverable or not (``min_size``), lookalike quality if any;
* overlap with the other specs' latest packs in ``gold/audience_packs`` (latest ``run_date`` on or
  before the preview date; both groups count): users shared, as a share of this audience;
* a profile of the audience against the population (the tag snapshot of the run date): lifecycle
  stage, consumption level and top categories. For each value: users and share in the audience,
  users and share in the population, and the index = 100 x audience share / population share
  (100 = as common as in the population). Category shares are shares of users having the category
  among their top categories, so they do not sum to 1. Audience users without a tag row are counted
  apart (``audience_without_tags``) and left out of the shares.

The computations (:func:`audience_profile`, :func:`pack_overlap`) are pure functions over DataFrames
returning small lists of dicts; rendering (:func:`render_console`, :func:`render_html`) only formats
them. The HTML report is self-contained: charts are PNGs embedded as base64 data URIs.
"""

from __future__ import annotations

import base64
import html
import io
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError, SpecError
from dmp.spark import lake as lk

PROFILE_DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("lifecycle_stage", "Lifecycle stage"),
    ("consumption_level", "Consumption level"),
    ("top_category_ids", "Top categories"),
)
NO_VALUE = "(none)"


# ---------------------------------------------------------------------------------------------
# Pure computations


def with_audience_flag(population_df: DataFrame, audience_df: DataFrame) -> DataFrame:
    """The population with ``in_audience`` (true for users of ``audience_df``)."""
    members_df = audience_df.select("user_id").distinct().withColumn("in_audience", F.lit(True))
    return population_df.join(members_df, "user_id", "left").withColumn(
        "in_audience", F.coalesce(F.col("in_audience"), F.lit(False))
    )


def _index(audience_share: float | None, population_share: float | None) -> float | None:
    if audience_share is None or not population_share:
        return None
    return 100.0 * audience_share / population_share


TOTAL = "_total"


def profile_counts(flagged_df: DataFrame) -> DataFrame:
    """``dimension, value, audience_users, population_users`` for every profile dimension, in one pass.

    Array dimensions (top categories) count a user once per value they have; ``_total`` holds the
    user totals. Null values are reported as ``(none)``.
    """
    parts = [flagged_df.select(F.lit(TOTAL).alias("dimension"), F.lit("").alias("value"), "in_audience")]
    for column, _ in PROFILE_DIMENSIONS:
        is_array = column.endswith("_ids")
        value = (
            F.explode(F.array_distinct(F.col(column).cast("array<string>")))
            if is_array
            else F.col(column).cast("string")
        )
        parts.append(flagged_df.select(F.lit(column).alias("dimension"), value.alias("value"), "in_audience"))
    long_df = parts[0]
    for part in parts[1:]:
        long_df = long_df.unionByName(part)
    return (
        long_df.withColumn("value", F.coalesce(F.col("value"), F.lit(NO_VALUE)))
        .groupBy("dimension", "value")
        .agg(
            F.sum(F.col("in_audience").cast("long")).alias("audience_users"),
            F.count(F.lit(1)).alias("population_users"),
        )
    )


def share_rows(
    counts: list[tuple[str, int, int]],
    n_audience: int,
    n_population: int,
    top_n: int | None = None,
) -> list[dict[str, Any]]:
    """Share rows from ``(value, audience_users, population_users)`` counts.

    With ``top_n``: the ``top_n`` values with the most audience users (then population users, then
    value); without: every value in natural order (numbers numerically, ``(none)`` last).
    """
    rows = []
    for value, aud, pop in counts:
        aud_share = aud / n_audience if n_audience else None
        pop_share = pop / n_population if n_population else None
        rows.append(
            {
                "value": value,
                "audience_users": aud,
                "audience_share": aud_share,
                "population_users": pop,
                "population_share": pop_share,
                "index": _index(aud_share, pop_share),
            }
        )
    if top_n is not None:
        rows.sort(key=lambda x: (-x["audience_users"], -x["population_users"], x["value"]))
        return rows[:top_n]
    rows.sort(key=lambda x: _natural_key(x["value"]))
    return rows


def _natural_key(value: str) -> tuple[int, float, str]:
    if value == NO_VALUE:
        return (2, 0.0, value)
    try:
        return (0, float(value), value)
    except ValueError:
        return (1, 0.0, value)


def audience_profile(
    audience_df: DataFrame, population_df: DataFrame, top_categories: int = 10
) -> dict[str, Any]:
    """Profile of the audience (``user_id``) against the population (a tag snapshot).

    Returns ``population``, ``audience`` (pack users), ``audience_with_tags``, ``audience_without_tags``
    and per dimension (lifecycle_stage, consumption_level, top_category_ids) a list of share rows.
    Two Spark jobs whatever the number of dimensions; only the small count table is collected.
    """
    members_df = audience_df.select("user_id").distinct()
    n_audience = members_df.count()
    collected = profile_counts(with_audience_flag(population_df, members_df)).collect()
    by_dimension: dict[str, list[tuple[str, int, int]]] = {}
    for r in collected:
        by_dimension.setdefault(r["dimension"], []).append(
            (r["value"], int(r["audience_users"] or 0), int(r["population_users"] or 0))
        )
    totals = by_dimension.get(TOTAL, [("", 0, 0)])[0]
    n_tagged, n_population = totals[1], totals[2]
    dimensions = {
        column: share_rows(
            by_dimension.get(column, []),
            n_tagged,
            n_population,
            top_n=top_categories if column.endswith("_ids") else None,
        )
        for column, _ in PROFILE_DIMENSIONS
    }
    return {
        "population": n_population,
        "audience": n_audience,
        "audience_with_tags": n_tagged,
        "audience_without_tags": n_audience - n_tagged,
        "dimensions": dimensions,
    }


def latest_packs(
    packs_df: DataFrame, run_date: date | None, segments: list[str] | None, exclude: str
) -> DataFrame:
    """Rows of each segment's latest pack (run_date on or before ``run_date``), other than ``exclude``."""
    df = packs_df.filter(F.col("segment") != F.lit(exclude))
    if segments is not None:
        df = df.filter(F.col("segment").isin(segments)) if segments else df.limit(0)
    if run_date is not None:
        df = df.filter(F.col("run_date") <= F.lit(run_date))
    latest_df = df.groupBy("segment").agg(F.max("run_date").alias("run_date"))
    return df.join(latest_df, ["segment", "run_date"], "left_semi")


def pack_overlap(
    audience_df: DataFrame,
    packs_df: DataFrame,
    segment: str,
    run_date: date | None = None,
    segments: list[str] | None = None,
) -> dict[str, Any]:
    """Users of ``audience_df`` also in the other segments' latest packs (treatment and holdout).

    ``rows``: segment, run_date, other_size, overlap, share (overlap / audience size), one per
    other segment with a pack; ``any``: users in at least one of them, and their share.
    """
    members_df = audience_df.select("user_id").distinct()
    n_audience = members_df.count()
    others_df = (
        latest_packs(packs_df, run_date, segments, segment)
        .select("segment", "run_date", "user_id")
        .distinct()
    )
    per_segment = (
        others_df.join(members_df.withColumn("_mine", F.lit(1)), "user_id", "left")
        .groupBy("segment", "run_date")
        .agg(F.count(F.lit(1)).alias("other_size"), F.count("_mine").alias("overlap"))
        .collect()
    )
    n_any = members_df.join(others_df.select("user_id"), "user_id", "left_semi").count() if per_segment else 0
    rows = [
        {
            "segment": r["segment"],
            "run_date": r["run_date"],
            "other_size": int(r["other_size"]),
            "overlap": int(r["overlap"]),
            "share": int(r["overlap"]) / n_audience if n_audience else None,
        }
        for r in per_segment
    ]
    rows.sort(key=lambda x: (-x["overlap"], x["segment"]))
    return {"rows": rows, "any": n_any, "any_share": n_any / n_audience if n_audience else None}


# ---------------------------------------------------------------------------------------------
# Rendering


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _idx(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f}"


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
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
        rows.append(
            (
                "lookalike quality",
                f"{lookalike.get('model')}: recall@k {_pct(lookalike.get('recall_at_k'))} vs random "
                f"{_pct(lookalike.get('random_recall_at_k'))}, lift {lookalike.get('lift') or 0:.1f}, "
                f"AUC {lookalike.get('auc') or 0:.3f} (seed {lookalike.get('n_seed')}, "
                f"{lookalike.get('n_holdout_seed')} held out)",
            )
        )
    overlap = result.get("overlap") or {}
    rows.append(("in other packs", f"{overlap.get('any', 0):,} ({_pct(overlap.get('any_share'))})"))
    profile = result.get("profile") or {}
    if profile.get("audience_without_tags"):
        rows.append(("audience without tags", f"{profile['audience_without_tags']:,}"))
    rows.append(("population (tagged users)", f"{profile.get('population', 0):,}"))
    return rows


OVERLAP_HEADERS = ("other segment", "run date", "its size", "shared users", "share of this audience")
PROFILE_HEADERS = ("value", "audience", "audience share", "population", "population share", "index")


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
            _idx(r["index"]),
        )
        for r in rows
    ]


def render_console(result: dict[str, Any], console: Any | None = None) -> None:
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

    overlap = Table(title="overlap with the other specs' latest packs")
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [str(r["value"]) for r in rows]
    aud = [100 * (r["audience_share"] or 0) for r in rows]
    pop = [100 * (r["population_share"] or 0) for r in rows]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(labels) + 2), 3.2), dpi=96)
    try:
        xs = list(range(len(labels)))
        width = 0.4
        ax.bar([x - width / 2 for x in xs], aud, width, label="audience", color="#2b6cb0")
        ax.bar([x + width / 2 for x in xs], pop, width, label="population", color="#a0aec0")
        ax.set_xticks(xs)
        ax.set_xticklabels(
            labels, rotation=30 if len(labels) > 6 else 0, ha="right" if len(labels) > 6 else "center"
        )
        ax.set_ylabel("% of users")
        ax.set_title(title)
        ax.legend(frameon=False)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _html_table(headers: tuple[str, ...] | None, rows: list[tuple[str, ...]]) -> str:
    parts = ["<table>"]
    if headers:
        parts.append("<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in headers) + "</tr>")
    for row in rows:
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    if not rows:
        span = len(headers) if headers else 1
        parts.append(f'<tr><td colspan="{span}"><em>none</em></td></tr>')
    parts.append("</table>")
    return "\n".join(parts)


_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #1a202c; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #cbd5e0; padding: 4px 10px; text-align: right; }
th { background: #edf2f7; }
td:first-child, th:first-child { text-align: left; }
img { display: block; margin-bottom: 2em; }
"""


def render_html(result: dict[str, Any]) -> str:
    """The preview as one self-contained HTML page (inline CSS, charts as data URIs, no links)."""
    title = f"Preview of segment {result['segment']} ({result['run_date']})"
    body = [f"<h1>{html.escape(title)}</h1>", _html_table(None, summary_rows(result))]
    body.append("<h2>Overlap with the other specs' latest packs</h2>")
    body.append(_html_table(OVERLAP_HEADERS, overlap_table_rows(result.get("overlap") or {})))
    for key, label in PROFILE_DIMENSIONS:
        rows = result["profile"]["dimensions"][key]
        body.append(f"<h2>{html.escape(label)}: audience vs population</h2>")
        body.append(_html_table(PROFILE_HEADERS, profile_table_rows(rows)))
        if rows:
            png = chart_png(rows, label)
            body.append(f'<img alt="{html.escape(label)} chart" src="data:image/png;base64,{png}">')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


# ---------------------------------------------------------------------------------------------
# Edges: load, build in memory, print / write


def _latest_tag_date(spark: SparkSession, lake: str) -> date:
    if not lk.table_exists(spark, lake, tables.USER_TAGS):
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_TAGS)} does not exist: run `dmp tags --date D` first"
        )
    row = lk.read_table(spark, lake, tables.USER_TAGS).agg(F.max("as_of_date").alias("d")).first()
    if row is None or row["d"] is None:
        raise DmpError(f"{tables.table_path(lake, tables.USER_TAGS)} is empty: run `dmp tags --date D` first")
    return row["d"]


def run_preview(
    spark: SparkSession,
    lake: str,
    spec_path: str | Path,
    segments_dir: str | Path,
    run_date: date | None = None,
    html_path: str | Path | None = None,
    console: Any | None = None,
    top_categories: int = 10,
) -> dict[str, Any]:
    """Build ``spec_path``'s pack in memory for ``run_date`` (default: latest tag snapshot), describe it.

    Prints rich tables, writes ``html_path`` when given, and returns the numbers as a dict.
    Nothing is written to the lake.
    """
    from dmp.contracts.specs import load_spec, load_specs
    from dmp.steps.packs import build_pack_df

    lake = tables.resolve_lake(lake)
    spec = load_spec(spec_path)  # raises SpecError naming the file and field
    spec_set = load_specs(segments_dir, [Path(spec_path)])
    if spec_set.specs.get(spec.name) is None:
        raise SpecError("\n".join(str(issue) for issue in spec_set.errors) or f"{spec_path}: invalid spec")
    spec = spec_set.specs[spec.name]
    day = run_date or _latest_tag_date(spark, lake)

    pack_df, info = build_pack_df(spark, lake, spec, day, spec_set.specs)
    try:
        population_df = lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == F.lit(day))
        profile = audience_profile(pack_df, population_df, top_categories)
        if lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
            others = sorted(name for name in spec_set.specs if name != spec.name)
            overlap = pack_overlap(
                pack_df, lk.read_table(spark, lake, tables.AUDIENCE_PACKS), spec.name, day, others
            )
        else:
            overlap = {"rows": [], "any": 0, "any_share": 0.0 if info["size"] else None}
    finally:
        pack_df.unpersist()

    result: dict[str, Any] = {
        "segment": spec.name,
        "kind": spec.kind,
        "run_date": day,
        "size": info["size"],
        "holdout_size": info["holdout_size"],
        "treatment_size": info["treatment_size"],
        "deliverable": info["deliverable"],
        "reason": info["reason"],
        "min_size": spec.min_size,
        "metrics": info.get("metrics", {}),
        "overlap": overlap,
        "profile": profile,
    }
    render_console(result, console)
    if html_path is not None:
        target = Path(html_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(render_html(result), encoding="utf-8")
        result["html_path"] = str(target)
        (console or _default_console()).print(f"HTML preview written to {target}")
    return result


def _default_console() -> Any:
    from rich.console import Console

    return Console()
