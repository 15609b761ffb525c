"""``dmp segments estimate``: a spec's size, holdout and verdict from a hash sample, in seconds.

The same candidates as ``dmp segments build`` (``dmp.steps.packs.pack_candidates``, exclusions,
persons), restricted to a hash sample of people (``dmp.transforms.sampling``) before people are
deduplicated, counted once: nothing is persisted, scored or written. The count becomes a size with
an exact binomial interval (``dmp.stats.estimate``).

Kinds whose size is not a count of qualifying people are refused: a ``lookalike`` pack's size is
its ``expansion`` (a size or a ratio of its seed), and an ``uplift`` pack's is set by its model's
ranking; ``dmp segments preview`` builds those in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import SparkSession

from dmp.contracts import tables
from dmp.contracts.errors import SpecError
from dmp.spark.progress import phase
from dmp.stats.estimate import SizeEstimate, estimate_size
from dmp.steps.packs import pack_candidates, read_person_keys, without_excluded
from dmp.steps.preview import latest_tag_date, load_spec_and_set
from dmp.transforms.sampling import sampled_people

DEFAULT_FRACTION = 0.05
ESTIMATED_KINDS = ("store_revisit", "competitor_intercept", "rule")


@dataclass(frozen=True)
class EstimateResult:
    segment: str
    kind: str
    run_date: date
    estimate: SizeEstimate


def estimate_spec(
    spark: SparkSession,
    lake: str,
    spec_path: str | Path,
    segments_dir: str | Path,
    run_date: date | None = None,
    fraction: float = DEFAULT_FRACTION,
    confidence: float = 0.95,
) -> EstimateResult:
    """The estimated pack of ``spec_path`` for ``run_date`` (default: the latest tag snapshot)."""
    lake = tables.resolve_lake(lake)
    spec, specs = load_spec_and_set(spec_path, segments_dir)
    if spec.kind not in ESTIMATED_KINDS:
        raise SpecError(
            f"{spec_path}: kind: {spec.kind!r} packs are sized by their model or expansion, not by who "
            f"qualifies; estimate works for {', '.join(ESTIMATED_KINDS)} (use dmp segments preview)"
        )
    if not 0 < fraction <= 1:
        raise SpecError(f"--sample: expected a share in (0, 1], got {fraction}")
    day = run_date or latest_tag_date(spark, lake)
    with phase("estimate", f"{spec.name} on a {fraction:.0%} sample of people for {day}"):
        keys_df = read_person_keys(spark, lake)
        cands_df, _ = pack_candidates(spark, lake, spec, day, specs)
        kept_df = without_excluded(spark, lake, spec, day, cands_df, keys_df)
        sampled = sampled_people(kept_df, keys_df, fraction).count()
        if keys_df is not None:
            keys_df.unpersist()
    estimate = estimate_size(
        sampled,
        fraction,
        min_size=spec.min_size,
        holdout=spec.holdout,
        max_size=spec.max_size,
        confidence=confidence,
    )
    return EstimateResult(spec.name, spec.kind, day, estimate)
