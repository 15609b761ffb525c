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
returning small lists of dicts; :mod:`dmp.reports.preview_report` formats them (rich tables, and a
self-contained HTML page with the charts as base64 data URIs).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError, SpecError
from dmp.reports.preview_report import PROFILE_DIMENSIONS, PreviewResult, render_console, render_html
from dmp.spark import lake as lk
from dmp.transforms.profile import NO_VALUE, TOTAL, latest_packs, profile_counts, with_audience_flag

if TYPE_CHECKING:
    from rich.console import Console

    from dmp.contracts.specs import SegmentSpec

# ---------------------------------------------------------------------------------------------
# Pure computations


def _index(audience_share: float | None, population_share: float | None) -> float | None:
    if audience_share is None or not population_share:
        return None
    return 100.0 * audience_share / population_share


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
    collected = profile_counts(
        with_audience_flag(population_df, members_df), [column for column, _ in PROFILE_DIMENSIONS]
    ).collect()
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
# Edges: load, build in memory, print / write


def latest_tag_date(spark: SparkSession, lake: str) -> date:
    if not lk.table_exists(spark, lake, tables.USER_TAGS):
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_TAGS)} does not exist: run `dmp tags --date D` first"
        )
    row = lk.read_table(spark, lake, tables.USER_TAGS).agg(F.max("as_of_date").alias("d")).first()
    if row is None or row["d"] is None:
        raise DmpError(f"{tables.table_path(lake, tables.USER_TAGS)} is empty: run `dmp tags --date D` first")
    return row["d"]


def load_spec_and_set(
    spec_path: str | Path, segments_dir: str | Path
) -> tuple[SegmentSpec, dict[str, SegmentSpec]]:
    """The previewed spec, validated together with the other specs (its seed or exclusions name them)."""
    from dmp.contracts.specs import load_spec, load_specs

    spec = load_spec(spec_path)  # raises SpecError naming the file and field
    spec_set = load_specs(segments_dir, [Path(spec_path)])
    if spec_set.specs.get(spec.name) is None:
        raise SpecError("\n".join(str(issue) for issue in spec_set.errors) or f"{spec_path}: invalid spec")
    return spec_set.specs[spec.name], spec_set.specs


def run_preview(
    spark: SparkSession,
    lake: str,
    spec_path: str | Path,
    segments_dir: str | Path,
    run_date: date | None = None,
    html_path: str | Path | None = None,
    console: Console | None = None,
    top_categories: int = 10,
) -> PreviewResult:
    """Build ``spec_path``'s pack in memory for ``run_date`` (default: latest tag snapshot), describe it.

    Prints rich tables, writes ``html_path`` when given, and returns the numbers as a dict.
    Nothing is written to the lake.
    """
    from dmp.steps.packs import build_pack_df

    lake = tables.resolve_lake(lake)
    spec, specs = load_spec_and_set(spec_path, segments_dir)
    day = run_date or latest_tag_date(spark, lake)

    pack_df, info = build_pack_df(spark, lake, spec, day, specs)
    try:
        population_df = lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == F.lit(day))
        profile = audience_profile(pack_df, population_df, top_categories)
        if lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
            others = sorted(name for name in specs if name != spec.name)
            overlap = pack_overlap(
                pack_df, lk.read_table(spark, lake, tables.AUDIENCE_PACKS), spec.name, day, others
            )
        else:
            overlap = {"rows": [], "any": 0, "any_share": 0.0 if info["size"] else None}
    finally:
        pack_df.unpersist()

    result: PreviewResult = {
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


def _default_console() -> Console:
    from rich.console import Console

    return Console()
