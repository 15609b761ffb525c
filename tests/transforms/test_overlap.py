"""gold/pack_overlap rows on a hand-made Venn diagram of three packs (known answers)."""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession

from dmp.spark import schemas
from dmp.transforms.overlap import build_pack_overlap

RUN = date(2026, 11, 30)

# Venn regions of A, B, C (people per region): |A| = 15, |B| = 19, |C| = 17,
# |A∩B| = 9, |A∩C| = 8, |B∩C| = 13.
REGIONS = {"a": 5, "b": 4, "c": 3, "ab": 2, "ac": 1, "bc": 6, "abc": 7}


def pack_row(segment: str, user: str, group: str = "treatment", person: str | None = None, day: date = RUN):
    return (segment, day, user, group, None, None, "h", "rule", True, person)


def venn_rows() -> list[tuple]:
    rows = []
    for region, n in REGIONS.items():
        for i in range(n):
            user = f"u_{region}_{i}"
            rows += [pack_row(seg, user, person=user) for seg in region]
    return rows


def overlap_of(spark: SparkSession, rows: list[tuple], day: date = RUN) -> dict[tuple[str, str], tuple]:
    df = spark.createDataFrame(rows, schemas.AUDIENCE_PACKS)
    out = build_pack_overlap(df, day).collect()
    assert all(r["run_date"] == day for r in out)
    return {
        (r["segment_a"], r["segment_b"]): (
            r["size_a"],
            r["size_b"],
            r["users_both"],
            r["share_a"],
            r["share_b"],
        )
        for r in out
    }


def test_venn_gives_the_exact_overlap_matrix(spark: SparkSession) -> None:
    assert overlap_of(spark, venn_rows()) == {
        ("a", "b"): (15, 19, 9, 9 / 15, 9 / 19),
        ("a", "c"): (15, 17, 8, 8 / 15, 8 / 17),
        ("b", "c"): (19, 17, 13, 13 / 19, 13 / 17),
    }


def test_holdout_other_dates_and_second_accounts_do_not_count(spark: SparkSession) -> None:
    rows = venn_rows()
    # Holdout people in both a and b: never delivered, not an overlap, not in the sizes.
    rows += [pack_row(seg, f"h{i}", "holdout", f"h{i}") for i in range(4) for seg in "ab"]
    # A person with one account in a and another in c: one more person in a, in c and in both.
    rows += [pack_row("a", "acct_1", person="p_two"), pack_row("c", "acct_2", person="p_two")]
    # Rows written before packs carried persons: the account is the person.
    rows += [pack_row("b", "old", person=None), pack_row("c", "old", person=None)]
    # Another date's packs, overlapping completely: ignored.
    rows += [pack_row(seg, f"x{i}", day=date(2026, 11, 29)) for i in range(9) for seg in "abc"]
    # A pack whose treatment group is empty: its pairs exist, sizes 0, shares of it null.
    rows += [pack_row("d", "u_abc_0", "holdout", "u_abc_0")]
    got = overlap_of(spark, rows)
    assert got[("a", "b")] == (16, 20, 9, 9 / 16, 9 / 20)
    assert got[("a", "c")] == (16, 19, 9, 9 / 16, 9 / 19)
    assert got[("b", "c")] == (20, 19, 14, 14 / 20, 14 / 19)
    assert got[("a", "d")] == (16, 0, 0, 0.0, None)
    assert got[("c", "d")] == (19, 0, 0, 0.0, None)
    assert len(got) == 6


def test_a_date_with_one_pack_has_no_pairs(spark: SparkSession) -> None:
    assert overlap_of(spark, [pack_row("a", "u1", person="u1")]) == {}
    assert overlap_of(spark, venn_rows(), day=date(2026, 12, 1)) == {}


def test_a_built_pack_with_no_rows_still_has_its_pairs(spark: SparkSession) -> None:
    """Nobody qualified for ``e``: gold/audience_packs has no row of it, ops/pack_runs names it."""
    df = spark.createDataFrame(venn_rows(), schemas.AUDIENCE_PACKS)
    out = {
        (r["segment_a"], r["segment_b"]): (r["size_a"], r["size_b"], r["users_both"], r["share_b"])
        for r in build_pack_overlap(df, RUN, ["a", "e"]).collect()
    }
    assert out[("a", "e")] == (15, 0, 0, None)
    assert out[("b", "e")] == (19, 0, 0, None)
    assert len(out) == 6  # a, b, c from their rows, e from the runs
