"""gold/audience_packs -> gold/pack_overlap (the rows are ``dmp.transforms.overlap.build_pack_overlap``).

Each run date is its own partition, replaced as a whole (replaceWhere on the dates being computed):
re-running a date after a rebuild replaces its pairs, and a date whose packs are gone ends with an
empty partition instead of stale pairs. The pairs of a date are few (n packs give n(n-1)/2), so they
are collected and written from rows with the contract schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.spark.progress import phase
from dmp.transforms.columns import lit_date
from dmp.transforms.overlap import OVERLAP_COLUMNS, build_pack_overlap


@dataclass(frozen=True)
class OverlapPair:
    run_date: date
    segment_a: str
    segment_b: str
    size_a: int
    size_b: int
    users_both: int
    share_a: float | None
    share_b: float | None


def _built_segments(spark: SparkSession, lake: str, run_dates: list[date]) -> dict[date, list[str]]:
    """The packs built for each date per ops/pack_runs: an empty pack has a run but no rows."""
    if not lk.table_exists(spark, lake, tables.PACK_RUNS):
        return {}
    rows = (
        lk.read_table(spark, lake, tables.PACK_RUNS)
        .filter(F.col("run_date").isin([lit_date(d) for d in sorted(set(run_dates))]))
        .select("run_date", "segment")
        .distinct()
        .collect()
    )
    built: dict[date, list[str]] = {}
    for r in rows:
        built.setdefault(r["run_date"], []).append(r["segment"])
    return {day: sorted(names) for day, names in built.items()}


def compute_overlap(spark: SparkSession, lake: str, run_dates: list[date]) -> list[OverlapPair]:
    """The pairs of every date of ``run_dates``, from the packs as they are now (nothing written)."""
    packs_df = lk.read_required(spark, lake, tables.AUDIENCE_PACKS, "dmp segments build")
    built = _built_segments(spark, lake, run_dates)
    pairs: list[OverlapPair] = []
    for i, day in enumerate(sorted(set(run_dates)), start=1):
        with phase("overlap", f"pairs of the packs of {day}", step=(i, len(set(run_dates)))):
            rows = build_pack_overlap(packs_df, day, built.get(day, [])).collect()
        pairs += [OverlapPair(**{c: r[c] for c in OVERLAP_COLUMNS}) for r in rows]
    return sorted(pairs, key=lambda p: (p.run_date, p.segment_a, p.segment_b))


def run_overlap(spark: SparkSession, lake: str | None, run_dates: list[date]) -> list[OverlapPair]:
    """What ``dmp segments overlap`` does: compute the dates' pairs and replace their partitions."""
    root = tables.resolve_lake(lake)
    pairs = compute_overlap(spark, root, run_dates)
    rows = [tuple(getattr(p, c) for c in OVERLAP_COLUMNS) for p in pairs]
    lk.overwrite_partitions(
        spark.createDataFrame(rows, schemas.PACK_OVERLAP),
        root,
        tables.PACK_OVERLAP,
        ["run_date"],
        lk.replace_where_condition("run_date", sorted(set(run_dates))),
    )
    return pairs
