"""dmp segments estimate against the real thing: 100 seeded specs, and a real build of one spec."""

from __future__ import annotations

from functools import reduce
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from typer.testing import CliRunner

from dmp.cli import app
from dmp.contracts.errors import SpecError
from dmp.contracts.specs import SegmentSpec
from dmp.stats.estimate import estimate_size
from dmp.steps.estimate import estimate_spec
from dmp.steps.packs import build_packs
from dmp.transforms.packs import rule_candidates
from dmp.transforms.sampling import sampled_people
from tests.steps.test_packs import write_specs, write_tags
from tests.transforms.test_packs import D, tags

SPECS = 100
PEOPLE_PER_SPEC = 1500
FRACTION = 0.1


def rule_spec(name: str, level: int, orders: int, **extra: object) -> dict[str, object]:
    where = {"all": [{"tag": "consumption_level", "gte": level}, {"tag": "frequency_90d", "gte": orders}]}
    return {"name": name, "kind": "rule", "where": where, "holdout": 0.1, "min_size": 1, **extra}


def populations(spark: SparkSession) -> DataFrame:
    """SPECS disjoint populations (``pop``), each with its own users, so each spec's sample is its own."""
    return spark.range(0, SPECS * PEOPLE_PER_SPEC, numPartitions=2).select(
        (F.col("id") % SPECS).cast("int").alias("pop"),
        F.concat(F.lit("u"), F.col("id").cast("string")).alias("user_id"),
        F.lit(D).alias("last_active_date"),
        (1 + F.floor(F.rand(7) * 5)).cast("int").alias("consumption_level"),
        F.floor(F.rand(8) * F.rand(9) * 8).cast("int").alias("frequency_90d"),
    )


def test_the_estimate_is_within_its_interval_of_the_real_size_for_95_of_100_seeded_specs(
    spark: SparkSession,
) -> None:
    rng = np.random.default_rng(2026)
    specs = [
        SegmentSpec.model_validate(rule_spec(f"s{i}", int(rng.integers(1, 5)), int(rng.integers(0, 4))))
        for i in range(SPECS)
    ]
    people_df = populations(spark).persist()
    cands_df = reduce(
        DataFrame.unionByName,
        [
            rule_candidates(people_df.filter(F.col("pop") == i), spec).withColumn("pop", F.lit(i))
            for i, spec in enumerate(specs)
        ],
    )
    real = {
        r["pop"]: r["n"]
        for r in sampled_people(cands_df, None, 1.0).groupBy("pop").agg(F.count("*").alias("n")).collect()
    }
    sampled = {
        r["pop"]: r["n"]
        for r in sampled_people(cands_df, None, FRACTION)
        .groupBy("pop")
        .agg(F.count("*").alias("n"))
        .collect()
    }
    people_df.unpersist()
    assert len(real) == SPECS and min(real.values()) > 0
    estimates = {i: estimate_size(sampled.get(i, 0), FRACTION, min_size=1, holdout=0.1) for i in range(SPECS)}
    covered = sum(estimates[i].low <= real[i] <= estimates[i].high for i in range(SPECS))
    errors = [abs(estimates[i].size - real[i]) / real[i] for i in range(SPECS)]
    print(
        f"covered {covered}/{SPECS}; median relative error {np.median(errors):.1%}, worst {max(errors):.1%}"
    )
    assert covered >= 95
    # The sizes are spread (the test is not 100 copies of one pack) and the estimates are informative.
    assert max(real.values()) > 5 * min(real.values())
    assert np.median(errors) < 0.25


def _tag_rows() -> list[tuple]:
    rng = np.random.default_rng(11)
    return [
        tags(f"t{i}", consumption_level=int(rng.integers(1, 6)), frequency_90d=int(rng.poisson(1.5)))
        for i in range(4000)
    ]


def test_the_command_prints_an_interval_that_holds_the_real_build(
    spark: SparkSession, lake: str, tmp_path: Path
) -> None:
    write_tags(spark, lake, _tag_rows())
    segments = write_specs(tmp_path / "segments", rule_spec("loyal", 3, 2, min_size=400))
    res = CliRunner().invoke(
        app,
        [
            "segments",
            "estimate",
            str(segments / "loyal.yaml"),
            "--lake",
            lake,
            "--date",
            str(D),
            "--segments",
            str(segments),
            "--sample",
            "0.2",
        ],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    # The same sample every time: the step gives the numbers the command printed. (The table is
    # not parsed cell by cell: rich wraps it to the terminal's width, which a test does not own.)
    est = estimate_spec(spark, lake, segments / "loyal.yaml", segments, D, 0.2).estimate
    printed = res.output.replace("│", " ").split()  # words: a wrapped cell splits between words only
    expected = [
        f"{est.sampled:,}",
        "20.0%",
        f"{est.size:,}",
        f"{est.low:,}",
        f"{est.high:,}",
        *est.verdict.split(),
    ]
    assert all(word in printed for word in expected), (expected, res.output)

    report = build_packs(spark, lake, str(segments), D)
    built = next(r for r in report.results if r.segment == "loyal")
    print(
        f"estimate {est.size} [{est.low}, {est.high}], built {built.size}: "
        f"off by {abs(est.size - built.size) / built.size:.1%}"
    )
    assert est.low <= built.size <= est.high
    assert est.verdict == (
        "deliverable" if est.low >= 400 else "too small" if est.high < 400 else "uncertain"
    )
    # The whole population reads as an exact count equal to the build.
    exact = estimate_spec(spark, lake, segments / "loyal.yaml", segments, D, 1.0).estimate
    assert exact.size == exact.low == exact.high == built.size


def test_a_lookalike_is_refused_naming_the_file_and_the_kind(
    spark: SparkSession, lake: str, tmp_path: Path
) -> None:
    seed = rule_spec("loyal", 3, 2)
    lookalike = {
        "name": "like_loyal",
        "kind": "lookalike",
        "seed": {"segment": "loyal"},
        "expansion": {"size": 100},
    }
    segments = write_specs(tmp_path / "segments", seed, lookalike)
    with pytest.raises(SpecError, match=r"like_loyal\.yaml: kind: 'lookalike'"):
        estimate_spec(spark, lake, segments / "like_loyal.yaml", segments, D)
