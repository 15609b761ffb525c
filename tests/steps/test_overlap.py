"""``dmp segments overlap``: gold/pack_overlap written per run date, replaced on rerun, printed."""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession
from typer.testing import CliRunner

from dmp.cli import app
from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.overlap import run_overlap
from tests.transforms.test_overlap import pack_row, venn_rows

D1, D2 = date(2026, 11, 29), date(2026, 11, 30)


def write_packs(spark: SparkSession, lake: str, rows: list[tuple]) -> None:
    lk.overwrite_table(spark.createDataFrame(rows, schemas.AUDIENCE_PACKS), lake, tables.AUDIENCE_PACKS)


def stored(spark: SparkSession, lake: str) -> set[tuple]:
    df = lk.read_table(spark, lake, tables.PACK_OVERLAP)
    return {(r["run_date"], r["segment_a"], r["segment_b"], r["users_both"]) for r in df.collect()}


def test_each_date_is_replaced_on_rerun_and_the_others_stay(spark: SparkSession, lake: str) -> None:
    two_days = venn_rows() + [pack_row(seg, f"y{i}", day=D1) for i in range(3) for seg in "ab"]
    write_packs(spark, lake, two_days)
    pairs = run_overlap(spark, lake, [D1, D2])
    expected = {
        (D1, "a", "b", 3),
        (D2, "a", "b", 9),
        (D2, "a", "c", 8),
        (D2, "b", "c", 13),
    }
    assert {(p.run_date, p.segment_a, p.segment_b, p.users_both) for p in pairs} == expected
    assert stored(spark, lake) == expected
    written = lk.read_table(spark, lake, tables.PACK_OVERLAP).schema
    assert [(f.name, f.dataType) for f in written] == [(f.name, f.dataType) for f in schemas.PACK_OVERLAP]

    run_overlap(spark, lake, [D2])  # the same packs: the same rows, nothing duplicated
    assert lk.read_table(spark, lake, tables.PACK_OVERLAP).count() == 4

    # D2 rebuilt without pack c, D1's packs gone: D2 keeps one pair, D1 ends empty, no stale pair.
    write_packs(spark, lake, [r for r in venn_rows() if r[0] != "c"])
    run_overlap(spark, lake, [D1, D2])
    assert stored(spark, lake) == {(D2, "a", "b", 9)}


def test_an_empty_pack_is_paired_from_its_pack_run(spark: SparkSession, lake: str) -> None:
    """An empty pack writes no row to gold/audience_packs; ops/pack_runs says it was built."""
    write_packs(spark, lake, [pack_row("a", "u1", person="u1")])
    runs_df = spark.createDataFrame(
        [("a", D2), ("empty", D2), ("other_day", D1)], "segment string, run_date date"
    )
    lk.overwrite_table(runs_df, lake, tables.PACK_RUNS)
    pairs = run_overlap(spark, lake, [D2])
    assert [(p.segment_a, p.segment_b, p.size_a, p.size_b, p.users_both) for p in pairs] == [
        ("a", "empty", 1, 0, 0)
    ]


def test_the_command_prints_each_pair_and_where_it_wrote(spark: SparkSession, lake: str) -> None:
    write_packs(spark, lake, venn_rows())
    res = CliRunner().invoke(
        app, ["segments", "overlap", "--lake", lake, "--date", str(D2)], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    lines = [line for line in res.output.splitlines() if "│" in line]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in lines]
    assert ["b", "c", "19", "17", "13", "68.4%", "76.5%"] in cells
    assert ["a", "b", "15", "19", "9", "60.0%", "47.4%"] in cells
    assert ["a", "c", "15", "17", "8", "53.3%", "47.1%"] in cells
    assert tables.table_path(lake, tables.PACK_OVERLAP) in res.output.replace("\n", "")
