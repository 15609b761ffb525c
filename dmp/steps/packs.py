"""Audience packs: segment specs -> ``gold/audience_packs`` (+ one ``ops/pack_runs`` row per pack).

The edge of the pack step: read ``silver/user_daily``, the ``gold/user_tags`` snapshot of the run
date, the packs of referenced segments and the suppression lists; call the transforms of
``dmp.transforms.packs`` (candidates per kind, then where / exclusions / max_size / holdout, in that
order, see there) and ``dmp.transforms.lookalike``; write the pack and its run row.

``min_size``: a smaller pack is still written, with ``deliverable = false``, and reported.
A lookalike's ``where`` and exclusions apply to the model's top-K, so the pack can end up smaller
than ``expansion``; the same holds for an uplift pack's ``target`` (its model and reads:
:mod:`dmp.steps.uplift_pack`, whose held-out Qini / AUUC go to ``ops/pack_runs``).

Concurrent builds (the DAG's mapped ``build_pack`` tasks, one Spark driver each): both tables are
partitioned by (segment, run_date) and each write replaces exactly its own (segment, run_date), so
builds of different segments never conflict (``dmp.spark.lake``). A build of selected specs
(``--spec``) *reads* the packs of their dependencies when they are already built for the run date
from the same spec (same ``spec_hash`` in ``ops/pack_runs``) instead of rebuilding them: the
DAG's second wave must not rewrite the first wave's packs while other tasks read them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypedDict

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError, SpecError
from dmp.contracts.specs import SegmentSpec, dependency_order, load_specs, spec_hash
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.spark.progress import phase
from dmp.transforms.packs import (
    competitor_intercept_candidates,
    filter_excluded,
    group_sizes_df,
    limit_size,
    lookalike_candidates,
    rule_candidates,
    seed_rule_users,
    store_revisit_candidates,
    to_pack_rows,
    with_group,
)
from dmp.transforms.persons import (
    crossovers,
    expand_to_persons,
    one_per_person,
    person_keys,
    with_person_keys,
)
from dmp.transforms.where import filter_where

log = logging.getLogger(__name__)


class PackInfo(TypedDict):
    """What a build learnt about one pack: the ``ops/pack_runs`` row before it is written."""

    segment: str
    run_date: date
    kind: str
    size: int
    holdout_size: int
    treatment_size: int
    deliverable: bool
    reason: str | None  # why the pack is not deliverable
    spec_hash: str
    metrics: dict[str, Any]  # candidates / excluded / capped_by_max_size, and the lookalike's / uplift's
    qini_auc: float | None  # an uplift pack's held-out Qini area (None for other kinds)
    uplift_auc: float | None  # ... and uplift-curve area (AUUC)
    crossovers: int  # pack persons an account-level holdout would have split (dmp.transforms.persons)


# ---------------------------------------------------------------------------------------------
# Reading inputs (edges)


def _tags_snapshot(spark: SparkSession, lake: str, run_date: date) -> DataFrame:
    hint = f"run `dmp tags --date {run_date}` first"
    if not lk.table_exists(spark, lake, tables.USER_TAGS):
        raise DmpError(f"{tables.table_path(lake, tables.USER_TAGS)} does not exist: {hint}")
    tags_df = lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == F.lit(run_date))
    if tags_df.limit(1).count() == 0:
        raise DmpError(f"{tables.USER_TAGS} has no snapshot for as_of_date {run_date}: {hint}")
    return tags_df


def read_person_keys(spark: SparkSession, lake: str) -> DataFrame | None:
    """(user_id, person_id, holdout_key) of ``silver/persons``; None when identities were never stitched."""
    if not lk.table_exists(spark, lake, tables.PERSONS):
        return None
    return person_keys(lk.read_table(spark, lake, tables.PERSONS)).persist()


def _user_daily(spark: SparkSession, lake: str) -> DataFrame:
    return lk.read_required(spark, lake, tables.USER_DAILY, "dmp aggregate")


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
    return seed_rule_users(tags_df, spec)


def _needs_tags(spec: SegmentSpec) -> bool:
    return spec.kind in ("rule", "lookalike", "uplift") or spec.where is not None


# ---------------------------------------------------------------------------------------------
# One pack, then all of them


def _lookalike(
    spark: SparkSession, lake: str, spec: SegmentSpec, run_date: date, tags_df: DataFrame
) -> tuple[DataFrame, dict[str, Any]]:
    """The lookalike's candidates (its top-K) and the model's metrics."""
    from dmp.transforms.lookalike import score_lookalike  # scikit-learn: only when a lookalike runs

    assert spec.expansion is not None
    scored_df, metrics = score_lookalike(
        tags_df,
        _seed_users(spark, lake, spec, run_date, tags_df),
        model=spec.model,
        size=spec.expansion.size,
        ratio=spec.expansion.ratio,
        min_seed=spec.min_seed,
        random_state=0,
        segment=spec.name,
    )
    return lookalike_candidates(scored_df, tags_df), metrics


def _uplift(
    spark: SparkSession,
    lake: str,
    spec: SegmentSpec,
    run_date: date,
    tags_df: DataFrame,
    specs: dict[str, SegmentSpec],
) -> tuple[DataFrame, dict[str, Any]]:
    """The uplift pack's candidates (its top-K predicted uplift) and the model's metrics."""
    from dmp.steps.uplift_pack import uplift_candidates  # scikit-learn: only when an uplift pack runs

    assert spec.from_campaign is not None
    campaign_tags_df = _tags_snapshot(spark, lake, spec.from_campaign.run_date)
    return uplift_candidates(spark, lake, spec, run_date, tags_df, campaign_tags_df, specs)


def pack_candidates(
    spark: SparkSession, lake: str, spec: SegmentSpec, run_date: date, specs: dict[str, SegmentSpec]
) -> tuple[DataFrame, dict[str, Any]]:
    """The spec's candidates after its ``where`` (lazy), and the metrics of how they were found
    (``{"lookalike": ...}`` for a lookalike, ``{"uplift": ...}`` for an uplift pack, else empty)."""
    tags_df = _tags_snapshot(spark, lake, run_date) if _needs_tags(spec) else None
    metrics: dict[str, Any] = {}
    if spec.kind == "store_revisit":
        cands_df = store_revisit_candidates(_user_daily(spark, lake), spec, run_date)
    elif spec.kind == "competitor_intercept":
        cands_df = competitor_intercept_candidates(_user_daily(spark, lake), spec, run_date)
    elif spec.kind == "rule":
        assert tags_df is not None
        return rule_candidates(tags_df, spec), metrics  # its where is the rule itself
    elif spec.kind == "lookalike":
        assert tags_df is not None
        cands_df, metrics["lookalike"] = _lookalike(spark, lake, spec, run_date, tags_df)
    elif spec.kind == "uplift":
        assert tags_df is not None
        cands_df, metrics["uplift"] = _uplift(spark, lake, spec, run_date, tags_df, specs)
    else:  # pragma: no cover - the spec model only allows these kinds
        raise SpecError(f"segment {spec.name}: kind {spec.kind!r} is not supported")
    if spec.where is not None:
        assert tags_df is not None
        cands_df = filter_where(cands_df, tags_df, spec.where)
    return cands_df, metrics


def without_excluded(
    spark: SparkSession,
    lake: str,
    spec: SegmentSpec,
    run_date: date,
    cands_df: DataFrame,
    keys_df: DataFrame | None,
) -> DataFrame:
    """Candidates minus the excluded segments' and suppression lists' users, with their persons' accounts."""
    kept_df = cands_df
    if spec.exclude.segments:
        excluded_df = _segment_users(spark, lake, spec.exclude.segments, run_date, "exclude.segments")
        kept_df = filter_excluded(kept_df, expand_to_persons(excluded_df, keys_df))
    if spec.exclude.suppression_lists:
        suppressed_df = _suppressed_users(spark, lake, spec.exclude.suppression_lists)
        kept_df = filter_excluded(kept_df, expand_to_persons(suppressed_df, keys_df))
    return kept_df


def _pack_info(
    spec: SegmentSpec, run_date: date, size: int, holdout_size: int, metrics: dict[str, Any], crossed: int
) -> PackInfo:
    deliverable = size >= spec.min_size
    # The held-out areas live in their own ops/pack_runs columns, not also in metrics_json.
    uplift = metrics.get("uplift") or {}
    return {
        "segment": spec.name,
        "run_date": run_date,
        "kind": spec.kind,
        "size": size,
        "holdout_size": holdout_size,
        "treatment_size": size - holdout_size,
        "deliverable": deliverable,
        "reason": None if deliverable else f"size {size} is below min_size {spec.min_size}",
        "spec_hash": spec_hash(spec),
        "metrics": {**metrics, "uplift": _without(uplift, "qini_auc", "uplift_auc")} if uplift else metrics,
        "qini_auc": uplift.get("qini_auc"),
        "uplift_auc": uplift.get("uplift_auc"),
        "crossovers": crossed,
    }


def _without(metrics: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k not in keys}


def build_pack_df(
    spark: SparkSession,
    lake: str,
    spec: SegmentSpec,
    run_date: date,
    specs: dict[str, SegmentSpec],
) -> tuple[DataFrame, PackInfo]:
    """The pack of ``spec`` for ``run_date`` (AUDIENCE_PACKS columns) and its run info; writes nothing.

    The returned DataFrame is persisted (it is counted here and written by the caller): call
    ``unpersist()`` when done. Dependencies (excluded segments, the seed segment) are read from the
    lake's packs for the same run date, so build them first (``build_packs`` does).
    """
    lake = tables.resolve_lake(lake)
    for dep in spec.dependencies():
        if dep not in specs:
            raise SpecError(f"segment {spec.name}: depends on unknown segment {dep!r}")
    keys_df = read_person_keys(spark, lake)
    cands_df, metrics = pack_candidates(spark, lake, spec, run_date, specs)
    cands_df = cands_df.persist()
    n_candidates = cands_df.count()
    kept_df = without_excluded(spark, lake, spec, run_date, cands_df, keys_df)
    excludes = bool(spec.exclude.segments or spec.exclude.suppression_lists)
    n_after_exclusions = kept_df.count() if excludes else n_candidates
    persons_df = kept_df.transform(with_person_keys, keys_df).transform(one_per_person).persist()
    n_persons = persons_df.count() if keys_df is not None else n_after_exclusions

    grouped_df = persons_df.transform(limit_size, spec.max_size).transform(with_group, spec).persist()
    counts = group_sizes_df(grouped_df).first()
    crossed = crossovers(grouped_df, keys_df, spec.holdout_salt, spec.name, spec.holdout)
    cands_df.unpersist()
    persons_df.unpersist()
    if keys_df is not None:
        keys_df.unpersist()
    size = int(counts["size"] or 0) if counts else 0
    holdout_size = int(counts["holdout"] or 0) if counts else 0
    metrics.update(
        {
            "candidates": n_candidates,
            "excluded": n_candidates - n_after_exclusions,
            "same_person": n_after_exclusions - n_persons,
            "capped_by_max_size": n_persons - size,
        }
    )
    info = _pack_info(spec, run_date, size, holdout_size, metrics, crossed)
    pack_df = to_pack_rows(grouped_df, spec, run_date, info["deliverable"])
    # Keep the grouped rows cached for the caller's write; unpersisting pack_df releases nothing else.
    pack_df = pack_df.persist()
    pack_df.count()
    grouped_df.unpersist()
    return pack_df, info


# Both tables are keyed and partitioned by (segment, run_date): one build owns one partition of each.
# ops/pack_runs was unpartitioned before; the first write of this code migrates it
# (lk.migrate_partitioning).
PACKS_PARTITIONS = ["segment", "run_date"]
PACK_RUNS_PARTITIONS = ["segment", "run_date"]


def _pack_condition(segment: str, run_date: date) -> str:
    return f"{lk.replace_where_condition('segment', [segment])} AND {lk.replace_where_condition('run_date', [run_date])}"


def write_pack(spark: SparkSession, lake: str, pack_df: DataFrame, info: PackInfo) -> None:
    """Replace the (segment, run_date) slice of gold/audience_packs and its ops/pack_runs row."""
    condition = _pack_condition(info["segment"], info["run_date"])
    lk.overwrite_partitions(
        pack_df, lake, tables.AUDIENCE_PACKS, PACKS_PARTITIONS, condition, merge_schema=True
    )
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
        info["qini_auc"],
        info["uplift_auc"],
        info["crossovers"],
    )
    runs_df = spark.createDataFrame([row], schemas.PACK_RUNS)
    # mergeSchema: a table written before the qini_auc / uplift_auc / crossovers columns gains them (null
    # in old rows); the packs likewise gain person_id.
    lk.overwrite_partitions(
        runs_df, lake, tables.PACK_RUNS, PACK_RUNS_PARTITIONS, condition, merge_schema=True
    )


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
    reused: bool = False  # a dependency already built for the run date: read, not rebuilt
    qini_auc: float | None = None  # an uplift pack's held-out Qini / uplift-curve areas
    uplift_auc: float | None = None


@dataclass
class BuildReport:
    run_date: date
    results: list[PackResult] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # spec validation errors, one line each

    @property
    def failed(self) -> list[PackResult]:
        return [r for r in self.results if r.status != "built"]

    @property
    def reused(self) -> list[str]:
        return [r.segment for r in self.results if r.reused]

    @property
    def ok(self) -> bool:
        return not self.invalid and not self.failed


def _build_and_write(
    spark: SparkSession, lake: str, spec: SegmentSpec, run_date: date, specs: dict[str, SegmentSpec]
) -> PackInfo:
    pack_df, info = build_pack_df(spark, lake, spec, run_date, specs)
    try:
        write_pack(spark, lake, pack_df, info)
    finally:
        pack_df.unpersist()
    return info


def built_packs(
    spark: SparkSession, lake: str, run_date: date, segments: list[str]
) -> dict[str, dict[str, Any]]:
    """The ``ops/pack_runs`` rows of ``segments`` for ``run_date`` (a row is written after its pack)."""
    if not segments or not lk.table_exists(spark, lake, tables.PACK_RUNS):
        return {}
    rows = (
        lk.read_table(spark, lake, tables.PACK_RUNS)
        .filter((F.col("run_date") == F.lit(run_date)) & F.col("segment").isin(segments))
        .collect()
    )
    return {r["segment"]: r.asDict() for r in rows}


def _reused_result(spec: SegmentSpec, run: dict[str, Any]) -> PackResult | None:
    """The result of a dependency already built from this very spec; None when it must be rebuilt."""
    if run["spec_hash"] != spec_hash(spec):
        return None  # the spec changed since that build: its pack is stale
    return PackResult(
        spec.name,
        "built",
        spec.kind,
        size=int(run["size"]),
        holdout_size=int(run["holdout_size"]),
        deliverable=bool(run["deliverable"]),
        reason=run["reason"],
        requested=False,
        metrics=json.loads(run["metrics_json"]) if run["metrics_json"] else {},
        reused=True,
        qini_auc=run.get("qini_auc"),  # absent from rows of an older table
        uplift_auc=run.get("uplift_auc"),
    )


def build_packs(
    spark: SparkSession,
    lake: str,
    segments_dir: str | Path,
    run_date: date,
    spec_paths: list[Path] | None = None,
    *,
    rebuild_dependencies: bool = False,
) -> BuildReport:
    """Build and write every valid spec (or ``spec_paths`` and their dependencies) for ``run_date``.

    Specs run in dependency order; a failing spec is reported and its dependents are skipped, the
    others are still built and written. A dependency that was not selected itself is read, not
    rebuilt, when its pack for ``run_date`` was already built from the same spec (its
    ``PackResult.reused`` is True); ``rebuild_dependencies`` rebuilds it anyway.
    """
    lake = tables.resolve_lake(lake)
    spec_set = load_specs(segments_dir, spec_paths)
    report = BuildReport(run_date=run_date, invalid=[str(issue) for issue in spec_set.errors])
    failed: set[str] = set()
    order = dependency_order(spec_set.specs, spec_set.selected)
    dependencies = [n for n in order if n not in spec_set.selected]
    already = {} if rebuild_dependencies else built_packs(spark, lake, run_date, dependencies)
    for number, name in enumerate(order, start=1):
        spec = spec_set.specs[name]
        requested = name in spec_set.selected
        reused = _reused_result(spec, already[name]) if name in already else None
        if reused is not None:
            report.results.append(reused)
            continue
        broken = [d for d in spec.dependencies() if d in failed]
        if broken:
            failed.add(name)
            error = f"not built: depends on {broken[0]!r}, which failed"
            report.results.append(PackResult(name, "failed", spec.kind, error=error, requested=requested))
            continue
        try:
            with phase("packs", f"build {name} ({spec.kind}) for {run_date}", step=(number, len(order))):
                info = _build_and_write(spark, lake, spec, run_date, spec_set.specs)
        except Exception as exc:  # one bad spec never stops the others
            failed.add(name)
            message = str(exc) if isinstance(exc, DmpError) else f"{type(exc).__name__}: {exc}"
            log.warning("segment %s failed for %s: %s", name, run_date, message)
            error = f"{spec_set.path_of[name]}: {message}"
            report.results.append(PackResult(name, "failed", spec.kind, error=error, requested=requested))
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
                qini_auc=info["qini_auc"],
                uplift_auc=info["uplift_auc"],
            )
        )
    return report
