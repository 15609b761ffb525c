"""The stitching bench's DuckDB baseline must find the components Spark finds (and the planted
truth), or its ratio means nothing: run the bench on a few thousand accounts on the test session."""

from __future__ import annotations

from pathlib import Path

from bench.bench_stitch import run_bench
from dmp.contracts.identity_guards import RULE_BLOCKED_VALUE, RULE_IDENTIFIER_CAP


def test_duckdb_baseline_finds_sparks_components_and_the_truth(spark, tmp_path: Path) -> None:
    run = run_bench(spark, 12_000, tmp_path, seed=3, threads=2)

    # ~3.2 identifiers per account: device, phone, email + chain links, hub phones, zero IDFAs
    assert 3 * 12_000 < run["identifiers"] < 3.4 * 12_000
    assert run["accounts"] == run["duckdb"]["accounts"] == 12_000
    assert run["same_components"] and run["spark_matches_truth"]
    # two full hubs (accounts 0-99 and 10000-10099) and the all-zero IDFA
    assert run["spark"]["violations"] == {RULE_IDENTIFIER_CAP: 2, RULE_BLOCKED_VALUE: 1}
    assert run["same_violations"] and run["expected_violations"] and run["no_pattern_violations"]
    spark_run = run["spark"]
    assert 0 < spark_run["multi_account_persons"] < spark_run["persons"] < 12_000
    assert spark_run["rounds"] >= 1 and run["duckdb"]["iterations"] >= 2
    assert spark_run["rerun_wrote_nothing"]
    # components only, on the same edges: equal labels, both engines timed
    cc = run["components_only"]
    assert cc["same_components"] and cc["edges"] > 500
    assert cc["spark"]["rounds"] == spark_run["rounds"] and cc["duckdb"]["iterations"] >= 2
    # the ratios are computed from the measured times
    assert run["ratio_spark_over_duckdb"] == round(spark_run["total_s"] / run["duckdb"]["total_s"], 2)
    assert cc["ratio_spark_over_duckdb"] == round(cc["spark"]["total_s"] / cc["duckdb"]["total_s"], 2)
