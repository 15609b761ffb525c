"""Audience packs: segment specs -> ``gold/audience_packs`` (+ one ``ops/pack_runs`` row per pack).

Every kind first produces *candidates* ``(user_id, score, reason, last_active)`` from
``silver/user_daily`` (behaviour in a window) or ``gold/user_tags`` (the snapshot with
``as_of_date`` = run date); then the common steps run in this order:

1. ``where`` tag filters (users without a tag row have every tag null, see ``dmp.contracts.specs``);
2. exclusions: every user (treatment and holdout) of the excluded segments' packs for the same run
   date, and the users of the named suppression lists in ``silver/suppression_lists``;
3. ``max_size``: keep the best score, then the most recent activity, then the smallest user_id
   (a total order, so the cut is deterministic);
4. holdout: ``dmp.contracts.holdout.group_col(salt, segment, holdout)``, stable across days and reruns;
5. ``min_size``: a smaller pack is still written, with ``deliverable = false``, and reported.

Windows follow design.md §3: ``window_days: N`` covers run_date-(N-1) ... run_date inclusive.
A lookalike's ``where`` and exclusions apply to the model's top-K, so the pack can end up smaller
than ``expansion``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import reduce
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.dates import window_start
from dmp.contracts.errors import DmpError, SpecError
from dmp.contracts.holdout import group_col
from dmp.contracts.specs import (
    AllOf,
    AnyOf,
    NotOf,
    Scope,
    SegmentSpec,
    TagFilter,
    Targets,
    dependency_order,
    load_specs,
    spec_hash,
)
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.spark.schemas import AUDIENCE_PACKS

log = logging.getLogger(__name__)


# user_daily counter per behaviour (spec ``behaviors`` use event type names).
BEHAVIOR_COLUMNS: dict[str, str] = {
    "view": "views",
    "click": "clicks",
    "search": "searches",
    "cart_add": "carts",
    "cart_remove": "cart_removes",
    "favorite": "favs",
    "order": "orders",
    "coupon_receive": "coupon_receives",
    "coupon_redeem": "coupon_redeems",
}

CANDIDATE_COLS = ["user_id", "score", "reason", "last_active"]


# ---------------------------------------------------------------------------------------------
# Pure transforms


def filter_window(daily_df: DataFrame, run_date: date, window_days: int) -> DataFrame:
    """Rows of the ``window_days`` days ending on ``run_date`` (both ends inclusive)."""
    start = window_start(run_date, window_days)
    return daily_df.filter(F.col("event_date").between(F.lit(start), F.lit(run_date)))


def _in(column: str, values: list[str] | None) -> Column | None:
    return F.col(column).isin(values) if values else None


def _and(cols: list[Column | None]) -> Column:
    present = [c for c in cols if c is not None]
    return reduce(lambda a, b: a & b, present) if present else F.lit(True)


def _or(cols: list[Column | None]) -> Column:
    present = [c for c in cols if c is not None]
    return reduce(lambda a, b: a | b, present) if present else F.lit(False)


def scope_col(scope: Scope) -> Column:
    """Row in scope: every list given must match (store AND brand AND category)."""
    return _and(
        [
            _in("store_id", scope.store_ids),
            _in("brand_id", scope.brand_ids),
            _in("category_id", scope.category_ids),
        ]
    )


def targets_col(targets: Targets, categories: list[str] | None = None) -> Column:
    """Row of one of the brands OR stores, optionally limited to ``categories``."""
    hit = _or([_in("brand_id", targets.brand_ids), _in("store_id", targets.store_ids)])
    return _and([F.coalesce(hit, F.lit(False)), _in("category_id", categories)])


def store_revisit_candidates(daily_df: DataFrame, spec: SegmentSpec, run_date: date) -> DataFrame:
    """Users with the spec's behaviours in scope within the window, minus in-scope purchasers.

    score = number of those behaviour events; last_active = last day with one of them.
    """
    assert spec.scope is not None and spec.window_days is not None and spec.behaviors is not None
    in_scope_df = daily_df.transform(filter_window, run_date, spec.window_days).filter(scope_col(spec.scope))
    counters = [BEHAVIOR_COLUMNS[b] for b in spec.behaviors]
    behaviour = reduce(lambda a, b: a + b, [F.col(c) for c in counters])
    per_user_df = in_scope_df.groupBy("user_id").agg(
        *[F.sum(c).alias(c) for c in counters],
        F.sum(behaviour).cast("double").alias("score"),
        F.max(F.when(behaviour > 0, F.col("event_date"))).alias("last_active"),
        F.sum("orders").alias("_orders"),
    )
    out_df = per_user_df.filter(F.col("score") > 0)
    if spec.exclude_purchasers:
        out_df = out_df.filter(F.col("_orders") == 0)
    detail = F.concat_ws(
        ", ", *[F.format_string(f"{b}=%d", F.col(c)) for b, c in zip(spec.behaviors, counters, strict=True)]
    )
    reason = F.format_string(
        f"store_revisit: %s in scope over {spec.window_days}d, last %s",
        detail,
        F.col("last_active").cast("string"),
    )
    return out_df.select("user_id", "score", reason.alias("reason"), "last_active")


def competitor_intercept_candidates(daily_df: DataFrame, spec: SegmentSpec, run_date: date) -> DataFrame:
    """Users who ordered (or viewed) a competitor in the window, minus users who ordered ours.

    ``categories`` limits both sides (buying our brand in another category does not make a user
    ours for this one). score = number of competitor orders (views for ``action: view``).
    """
    assert spec.competitors is not None and spec.window_days is not None
    window_df = daily_df.transform(filter_window, run_date, spec.window_days)
    counter = "orders" if spec.action == "order" else "views"
    comp_df = (
        window_df.filter(targets_col(spec.competitors, spec.categories) & (F.col(counter) > 0))
        .groupBy("user_id")
        .agg(
            F.sum(counter).cast("double").alias("score"),
            F.sum("gmv").alias("_gmv"),
            F.max("event_date").alias("last_active"),
            F.array_sort(F.collect_set(F.coalesce(F.col("brand_id"), F.col("store_id")))).alias("_who"),
        )
    )
    if spec.own is not None:
        ours_df = window_df.filter(targets_col(spec.own, spec.categories) & (F.col("orders") > 0)).select(
            "user_id"
        )
        comp_df = comp_df.join(ours_df, "user_id", "left_anti")
    verb = "ordered" if spec.action == "order" else "viewed"
    reason = F.format_string(
        f"competitor_intercept: {verb} %s %dx over {spec.window_days}d",
        F.concat_ws(",", F.col("_who")),
        F.col("score").cast("long"),
    )
    if spec.action == "order":
        reason = F.concat(reason, F.format_string(", gmv %.2f", F.col("_gmv")))
    return comp_df.select("user_id", "score", reason.alias("reason"), "last_active")


def _literal(kind: str, value: Any) -> Any:
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


def where_col(cond: Any) -> Column:
    """A ``where`` condition as a boolean column over the tag columns (never null, see dmp.contracts.specs)."""
    from dmp.contracts.vocab import TAG_COLUMN_KINDS

    if isinstance(cond, AllOf):
        return reduce(lambda a, b: a & b, [where_col(c) for c in cond.all])
    if isinstance(cond, AnyOf):
        return reduce(lambda a, b: a | b, [where_col(c) for c in cond.any])
    if isinstance(cond, NotOf):
        return ~where_col(cond.not_)
    assert isinstance(cond, TagFilter)
    kind = TAG_COLUMN_KINDS[cond.tag]
    col = F.col(cond.tag)
    op, value = cond.op, cond.value
    if op == "is_null":
        return col.isNull() if value else col.isNotNull()
    value = [_literal(kind, v) for v in value] if isinstance(value, list) else _literal(kind, value)
    if kind == "array":
        if op == "contains":
            expr = F.array_contains(col, F.lit(value))
        else:
            overlap = F.arrays_overlap(col, F.array(*[F.lit(v) for v in value]))
            expr = overlap if op == "in" else ~overlap
    elif op == "in":
        expr = col.isin(value)
    elif op == "not_in":
        expr = ~col.isin(value)
    elif op == "between":
        expr = col.between(F.lit(value[0]), F.lit(value[1]))
    else:
        lit = F.lit(value)
        expr = {
            "eq": col == lit,
            "ne": col != lit,
            "gt": col > lit,
            "gte": col >= lit,
            "lt": col < lit,
            "lte": col <= lit,
        }[op]
    return F.coalesce(expr, F.lit(False))


def tag_names(cond: Any) -> set[str]:
    if isinstance(cond, AllOf):
        return set().union(*[tag_names(c) for c in cond.all])
    if isinstance(cond, AnyOf):
        return set().union(*[tag_names(c) for c in cond.any])
    if isinstance(cond, NotOf):
        return tag_names(cond.not_)
    return {cond.tag}


def filter_where(cands_df: DataFrame, tags_df: DataFrame, cond: Any) -> DataFrame:
    """Candidates whose tags satisfy ``cond`` (users without a tag row: every tag null)."""
    needed = sorted(tag_names(cond))
    tag_cols_df = tags_df.select("user_id", *needed)
    joined_df = cands_df.join(tag_cols_df, "user_id", "left")
    return joined_df.filter(where_col(cond)).select(*cands_df.columns)


def rule_candidates(tags_df: DataFrame, spec: SegmentSpec) -> DataFrame:
    """Users of the tag snapshot matching ``where``; no score, recency from ``last_active_date``."""
    assert spec.where is not None
    return tags_df.filter(where_col(spec.where)).select(
        "user_id",
        F.lit(None).cast("double").alias("score"),
        F.lit("rule: matched where").alias("reason"),
        F.col("last_active_date").alias("last_active"),
    )


def filter_excluded(cands_df: DataFrame, excluded_df: DataFrame) -> DataFrame:
    """Candidates not in ``excluded_df`` (any frame with a user_id column)."""
    return cands_df.join(excluded_df.select("user_id").distinct(), "user_id", "left_anti")


def limit_size(cands_df: DataFrame, max_size: int | None) -> DataFrame:
    """At most ``max_size`` users: best score, then most recent activity, then smallest user_id."""
    if max_size is None:
        return cands_df
    return cands_df.orderBy(
        F.col("score").desc_nulls_last(), F.col("last_active").desc_nulls_last(), F.col("user_id").asc()
    ).limit(max_size)


def with_group(cands_df: DataFrame, spec: SegmentSpec) -> DataFrame:
    return cands_df.withColumn("group", group_col(spec.holdout_salt, spec.name, spec.holdout))


def to_pack_rows(cands_df: DataFrame, spec: SegmentSpec, run_date: date, deliverable: bool) -> DataFrame:
    """The AUDIENCE_PACKS columns, in order, with their types."""
    values = {
        "segment": F.lit(spec.name),
        "run_date": F.lit(run_date),
        "spec_hash": F.lit(spec_hash(spec)),
        "kind": F.lit(spec.kind),
        "deliverable": F.lit(deliverable),
    }
    return cands_df.select(
        *[
            (values[f.name] if f.name in values else F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in AUDIENCE_PACKS.fields
        ]
    )


# ---------------------------------------------------------------------------------------------
# Reading inputs (edges)


def _tags_snapshot(spark: SparkSession, lake: str, run_date: date) -> DataFrame:
    if not lk.table_exists(spark, lake, tables.USER_TAGS):
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_TAGS)} does not exist: run `dmp tags --date {run_date}` first"
        )
    tags_df = lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == F.lit(run_date))
    if tags_df.limit(1).count() == 0:
        raise DmpError(
            f"gold/user_tags has no snapshot for as_of_date {run_date}: run `dmp tags --date {run_date}` first"
        )
    return tags_df


def _user_daily(spark: SparkSession, lake: str) -> DataFrame:
    if not lk.table_exists(spark, lake, tables.USER_DAILY):
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_DAILY)} does not exist: run `dmp aggregate` first"
        )
    return lk.read_table(spark, lake, tables.USER_DAILY)


def _segment_users(
    spark: SparkSession, lake: str, segments: list[str], run_date: date, what: str
) -> DataFrame:
    """All users (treatment and holdout) of other segments' packs for ``run_date``.

    A pack's existence is checked in ops/pack_runs because an empty pack has no rows.
    """
    built: set[str] = set()
    if lk.table_exists(spark, lake, tables.PACK_RUNS):
        rows = (
            lk.read_table(spark, lake, tables.PACK_RUNS)
            .filter((F.col("run_date") == F.lit(run_date)) & F.col("segment").isin(segments))
            .select("segment")
            .distinct()
            .collect()
        )
        built = {r["segment"] for r in rows}
    missing = [s for s in segments if s not in built]
    if missing:
        raise SpecError(
            f"{what}: segment {missing[0]!r} has no pack for {run_date}; build it first "
            f"(`dmp segments build --date {run_date}` builds dependencies first)"
        )
    return (
        lk.read_table(spark, lake, tables.AUDIENCE_PACKS)
        .filter((F.col("run_date") == F.lit(run_date)) & F.col("segment").isin(segments))
        .select("user_id")
    )


def _suppressed_users(spark: SparkSession, lake: str, lists: list[str]) -> DataFrame:
    hint = "load it with `dmp ingest-suppression --name NAME --source FILE`"
    if not lk.table_exists(spark, lake, tables.SUPPRESSION_LISTS):
        raise SpecError(f"exclude.suppression_lists: {tables.SUPPRESSION_LISTS} does not exist; {hint}")
    table_df = lk.read_table(spark, lake, tables.SUPPRESSION_LISTS).filter(F.col("list_name").isin(lists))
    present = {r["list_name"] for r in table_df.select("list_name").distinct().collect()}
    missing = [name for name in lists if name not in present]
    if missing:
        # A misspelt list must not silently market to people who opted out.
        raise SpecError(
            f"exclude.suppression_lists: list {missing[0]!r} is not in {tables.SUPPRESSION_LISTS}; {hint}"
        )
    return table_df.select("user_id")


def _seed_users(
    spark: SparkSession, lake: str, spec: SegmentSpec, run_date: date, tags_df: DataFrame
) -> DataFrame:
    assert spec.seed is not None
    if spec.seed.segment:
        return _segment_users(spark, lake, [spec.seed.segment], run_date, "seed.segment")
    assert spec.seed.where is not None
    return tags_df.filter(where_col(spec.seed.where)).select("user_id")


def _needs_tags(spec: SegmentSpec) -> bool:
    return spec.kind in ("rule", "lookalike") or spec.where is not None


# ---------------------------------------------------------------------------------------------
# One pack, then all of them


def build_pack_df(
    spark: SparkSession,
    lake: str,
    spec: SegmentSpec,
    run_date: date,
    specs: dict[str, SegmentSpec],
) -> tuple[DataFrame, dict[str, Any]]:
    """The pack of ``spec`` for ``run_date`` (AUDIENCE_PACKS columns) and its run info; writes nothing.

    The returned DataFrame is persisted (it is counted here and written by the caller): call
    ``unpersist()`` when done. Dependencies (excluded segments, the seed segment) are read from the
    lake's packs for the same run date, so build them first (``build_packs`` does).
    """
    lake = tables.resolve_lake(lake)
    for dep in spec.dependencies():
        if dep not in specs:
            raise SpecError(f"segment {spec.name}: depends on unknown segment {dep!r}")
    tags_df = _tags_snapshot(spark, lake, run_date) if _needs_tags(spec) else None
    metrics: dict[str, Any] = {}

    if spec.kind == "store_revisit":
        cands_df = store_revisit_candidates(_user_daily(spark, lake), spec, run_date)
    elif spec.kind == "competitor_intercept":
        cands_df = competitor_intercept_candidates(_user_daily(spark, lake), spec, run_date)
    elif spec.kind == "rule":
        assert tags_df is not None
        cands_df = rule_candidates(tags_df, spec)
    elif spec.kind == "lookalike":
        assert tags_df is not None and spec.expansion is not None
        from dmp.transforms.lookalike import score_lookalike

        seed_df = _seed_users(spark, lake, spec, run_date, tags_df)
        scored_df, lookalike_metrics = score_lookalike(
            tags_df,
            seed_df,
            model=spec.model,
            size=spec.expansion.size,
            ratio=spec.expansion.ratio,
            min_seed=spec.min_seed,
            random_state=0,
            segment=spec.name,
        )
        metrics["lookalike"] = lookalike_metrics
        cands_df = scored_df.join(
            tags_df.select("user_id", F.col("last_active_date").alias("last_active")), "user_id", "left"
        ).select("user_id", "score", "reason", "last_active")
    else:  # pragma: no cover - the spec model only allows the four kinds
        raise SpecError(f"segment {spec.name}: kind {spec.kind!r} is not supported")

    if spec.where is not None and spec.kind != "rule":
        assert tags_df is not None
        cands_df = filter_where(cands_df, tags_df, spec.where)
    cands_df = cands_df.persist()
    n_candidates = cands_df.count()

    kept_df = cands_df
    if spec.exclude.segments:
        kept_df = filter_excluded(
            kept_df, _segment_users(spark, lake, spec.exclude.segments, run_date, "exclude.segments")
        )
    if spec.exclude.suppression_lists:
        kept_df = filter_excluded(kept_df, _suppressed_users(spark, lake, spec.exclude.suppression_lists))
    n_after_exclusions = (
        kept_df.count() if (spec.exclude.segments or spec.exclude.suppression_lists) else n_candidates
    )

    grouped_df = kept_df.transform(limit_size, spec.max_size).transform(with_group, spec).persist()
    counts = grouped_df.agg(
        F.count(F.lit(1)).alias("size"), F.sum((F.col("group") == "holdout").cast("long")).alias("holdout")
    ).first()
    cands_df.unpersist()
    size = int(counts["size"] or 0) if counts else 0
    holdout_size = int(counts["holdout"] or 0) if counts else 0
    deliverable = size >= spec.min_size
    why_not = None if deliverable else f"size {size} is below min_size {spec.min_size}"
    metrics.update(
        {
            "candidates": n_candidates,
            "excluded": n_candidates - n_after_exclusions,
            "capped_by_max_size": n_after_exclusions - size,
        }
    )
    info: dict[str, Any] = {
        "segment": spec.name,
        "run_date": run_date,
        "kind": spec.kind,
        "size": size,
        "holdout_size": holdout_size,
        "treatment_size": size - holdout_size,
        "deliverable": deliverable,
        "reason": why_not,
        "spec_hash": spec_hash(spec),
        "metrics": metrics,
    }
    pack_df = to_pack_rows(grouped_df, spec, run_date, deliverable)
    # Keep the grouped rows cached for the caller's write; unpersisting pack_df releases nothing else.
    pack_df = pack_df.persist()
    pack_df.count()
    grouped_df.unpersist()
    return pack_df, info


def _pack_condition(segment: str, run_date: date) -> str:
    return f"{lk.replace_where_condition('segment', [segment])} AND {lk.replace_where_condition('run_date', [run_date])}"


def write_pack(spark: SparkSession, lake: str, pack_df: DataFrame, info: dict[str, Any]) -> None:
    """Replace the (segment, run_date) slice of gold/audience_packs and its ops/pack_runs row."""
    condition = _pack_condition(info["segment"], info["run_date"])
    lk.overwrite_partitions(pack_df, lake, tables.AUDIENCE_PACKS, ["segment", "run_date"], condition)
    row = (
        info["segment"],
        info["run_date"],
        info["kind"],
        int(info["size"]),
        int(info["holdout_size"]),
        int(info["treatment_size"]),
        bool(info["deliverable"]),
        info["reason"],
        info["spec_hash"],
        json.dumps(info["metrics"], sort_keys=True, default=str),
        datetime.now(UTC).replace(tzinfo=None),
    )
    runs_df = spark.createDataFrame([row], schemas.PACK_RUNS)
    lk.overwrite_partitions(runs_df, lake, tables.PACK_RUNS, [], condition)


@dataclass
class PackResult:
    segment: str
    status: str  # built | failed
    kind: str = ""
    size: int = 0
    holdout_size: int = 0
    deliverable: bool = False
    reason: str | None = None
    error: str | None = None
    requested: bool = True
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class BuildReport:
    run_date: date
    results: list[PackResult] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # spec validation errors, one line each

    @property
    def failed(self) -> list[PackResult]:
        return [r for r in self.results if r.status != "built"]

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.failed


def build_packs(
    spark: SparkSession,
    lake: str,
    segments_dir: str | Path,
    run_date: date,
    spec_paths: list[Path] | None = None,
) -> BuildReport:
    """Build and write every valid spec (or ``spec_paths`` and their dependencies) for ``run_date``.

    Specs run in dependency order; a failing spec is reported and its dependents are skipped, the
    others are still built and written.
    """
    lake = tables.resolve_lake(lake)
    spec_set = load_specs(segments_dir, spec_paths)
    report = BuildReport(run_date=run_date, invalid=[str(issue) for issue in spec_set.errors])
    order = dependency_order(spec_set.specs, spec_set.selected)
    failed: set[str] = set()
    for name in order:
        spec = spec_set.specs[name]
        requested = name in spec_set.selected
        broken = [d for d in spec.dependencies() if d in failed]
        if broken:
            failed.add(name)
            report.results.append(
                PackResult(
                    name,
                    "failed",
                    spec.kind,
                    error=f"not built: depends on {broken[0]!r}, which failed",
                    requested=requested,
                )
            )
            continue
        try:
            pack_df, info = build_pack_df(spark, lake, spec, run_date, spec_set.specs)
            try:
                write_pack(spark, lake, pack_df, info)
            finally:
                pack_df.unpersist()
        except Exception as exc:  # one bad spec never stops the others
            failed.add(name)
            message = str(exc) if isinstance(exc, DmpError) else f"{type(exc).__name__}: {exc}"
            log.warning("segment %s failed for %s: %s", name, run_date, message)
            report.results.append(
                PackResult(
                    name,
                    "failed",
                    spec.kind,
                    error=f"{spec_set.path_of[name]}: {message}",
                    requested=requested,
                )
            )
            continue
        report.results.append(
            PackResult(
                name,
                "built",
                spec.kind,
                size=info["size"],
                holdout_size=info["holdout_size"],
                deliverable=info["deliverable"],
                reason=info["reason"],
                requested=requested,
                metrics=info["metrics"],
            )
        )
    return report
