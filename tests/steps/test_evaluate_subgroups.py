"""Which tags earned it, the Spark part (dmp.steps.evaluate_subgroups): pack users joined to their
tags as of the run date, notes instead of a table when there are no tags, every subgroup's spec
condition selecting exactly its users, and the table reaching report.json and gold/uplift_results."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pydantic import TypeAdapter
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.specs import Condition
from dmp.spark import lake as lk
from dmp.spark.schemas import AUDIENCE_PACKS, USER_DAILY, USER_TAGS
from dmp.stats.intervals import diff_interval
from dmp.stats.subgroups import BANDS, SUBGROUP_TAGS
from dmp.steps.evaluate_subgroups import pack_subgroups, pack_user_tags, with_top_category
from dmp.transforms.where import where_col
from tests.support.factories import daily, padded, tag_tuple

R = date(2026, 3, 15)
SEGMENT = "spring_revisit"
SPEC = """\
name: spring_revisit
description: visited S001
kind: store_revisit
scope: {store_ids: [S001]}
window_days: 14
behaviors: [view]
holdout: 0.5
"""
# (prefix, stage, treated converters of 40, holdout converters of 40): the effect is in active only
STAGES = (("a", "active", 30, 4), ("n", "new", 4, 4))
NO_TAGS = [f"z{i}" for i in range(10)]  # in the pack, no tag row on R (only on R-1): every tag null


def _pack_users() -> list[tuple[str, str, bool]]:
    """(user, group, converted) of the pack."""
    users = []
    for prefix, _, conv_t, conv_h in STAGES:
        users += [(f"{prefix}{i:02d}", "treatment", i < conv_t) for i in range(40)]
        users += [(f"{prefix}{i + 40:02d}", "holdout", i < conv_h) for i in range(40)]
    users += [(u, "treatment" if i < 5 else "holdout", False) for i, u in enumerate(NO_TAGS)]
    return users


def _tag_rows() -> list[tuple]:
    rows = []
    for prefix, stage, _, _ in STAGES:
        for i in range(80):
            user = f"{prefix}{i:02d}"
            rows.append(
                tag_tuple(
                    user,
                    R,
                    lifecycle_stage=stage,
                    consumption_level=1 + i % 2,
                    coupon_sensitivity=None if i % 2 else 0.25,
                    is_cart_abandoner=i % 2 == 0,
                    top_category_ids=["C01", "C02"] if i % 2 else [],
                )
            )
            rows.append(tag_tuple(user, R - timedelta(days=1), lifecycle_stage="churned"))  # not R's
    rows += [tag_tuple(u, R - timedelta(days=1), lifecycle_stage="silent") for u in NO_TAGS]
    return rows


def write_lake(spark, lake: str, *, with_tags: bool = True) -> None:  # type: ignore[no-untyped-def]
    pack = [
        (SEGMENT, R, u, g, None, "visited S001", "h1", "store_revisit", g == "treatment")
        for u, g, _ in _pack_users()
    ]
    spark.createDataFrame(padded(pack, AUDIENCE_PACKS), AUDIENCE_PACKS).write.format("delta").partitionBy(
        "segment", "run_date"
    ).save(tables.table_path(lake, tables.AUDIENCE_PACKS))
    days = [
        daily(u, R + timedelta(days=1), "S001", "B001", "C01", orders=1) for u, _, c in _pack_users() if c
    ]
    days.append(daily("x1", R + timedelta(days=3), "S001", "B001", "C01", views=1))  # the window is closed
    spark.createDataFrame(days, USER_DAILY).write.format("delta").partitionBy("event_date").save(
        tables.table_path(lake, tables.USER_DAILY)
    )
    if with_tags:
        spark.createDataFrame(_tag_rows(), USER_TAGS).write.format("delta").partitionBy("as_of_date").save(
            tables.table_path(lake, tables.USER_TAGS)
        )


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    root = str(tmp_path_factory.mktemp("subgroups") / "lake")
    write_lake(spark, root)
    return root


def _pack_df(spark, lake: str):  # type: ignore[no-untyped-def]
    return lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(F.col("segment") == SEGMENT)


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        [(u, g, int(c)) for u, g, c in _pack_users()], columns=["user_id", "group", "converted"]
    )


def test_with_top_category(spark) -> None:  # type: ignore[no-untyped-def]
    df = spark.createDataFrame(
        [("u1", ["C03", "C01"]), ("u2", []), ("u3", None)], "user_id string, top_category_ids array<string>"
    )
    out = {r["user_id"]: r["top_category"] for r in df.transform(with_top_category).collect()}
    assert out == {"u1": "C03", "u2": None, "u3": None}


def test_pack_user_tags_as_of_the_run_date(spark, lake: str) -> None:  # type: ignore[no-untyped-def]
    tags = pack_user_tags(spark, lake, _pack_df(spark, lake), R).set_index("user_id")
    assert len(tags) == 170 and set(tags["spec_hash"]) == {"h1"}
    assert tags.loc["a00", "lifecycle_stage"] == "active" and tags.loc["n41", "lifecycle_stage"] == "new"
    assert tags.loc["a01", "top_category"] == "C01" and tags.loc["a00", "top_category"] is None
    assert tags.loc["a00", "coupon_sensitivity"] == 0.25 and pd.isna(tags.loc["a01", "coupon_sensitivity"])
    # z* have a row on R-1 only: every tag null, not yesterday's "silent"
    assert tags.loc[NO_TAGS, ["lifecycle_stage", "top_category", "is_cart_abandoner"]].isna().all().all()


def test_subgroup_table_of_the_pack(spark, lake: str) -> None:  # type: ignore[no-untyped-def]
    block = pack_subgroups(spark, lake, _pack_df(spark, lake), _frame(), R)
    assert block["as_of_date"] == "2026-03-15" and block["spec_hashes"] == ["h1"] and block["n_users"] == 170
    rows = {(r["tag"], r["subgroup"]): r for r in block["rows"]}
    active = rows[("lifecycle_stage", "active")]
    assert (active["n_treatment"], active["n_control"]) == (40, 40)
    assert active["uplift_abs"] == pytest.approx(30 / 40 - 4 / 40)
    assert active["uplift_abs_ci"] == pytest.approx(list(diff_interval(30, 40, 4, 40)))
    assert active["decision"] == "keep" and rows[("lifecycle_stage", "new")]["decision"] == "unclear"
    unknown = rows[("lifecycle_stage", "unknown")]
    assert (unknown["n_treatment"], unknown["n_control"], unknown["decision"]) == (5, 5, "too small")
    # the no-tag users are "none received" for the coupon (null), with the users without coupons
    assert rows[("coupon_sensitivity", "none received")]["n"] == 80 + 10
    assert rows[("top_category", "none")]["n"] == 80 + 10 and rows[("top_category", "C01")]["n"] == 80
    assert block["suggested_tag"] == "lifecycle_stage"


def test_each_subgroup_condition_selects_exactly_its_users(spark, lake: str) -> None:  # type: ignore[no-untyped-def]
    """The promise the suggestion rests on: a subgroup's ``where`` is its users, through the same
    Spark column a pack build uses."""
    pack_df = _pack_df(spark, lake)
    block = pack_subgroups(spark, lake, pack_df, _frame(), R)
    tags = pack_user_tags(spark, lake, pack_df, R)
    tags_df = lk.read_table(spark, lake, tables.USER_TAGS).filter(F.col("as_of_date") == F.lit(R))
    joined_df = pack_df.select("user_id").join(tags_df, "user_id", "left")
    adapter = TypeAdapter(Condition)
    checked = 0
    for tag in SUBGROUP_TAGS:
        labels = BANDS[tag](tags[tag])[0]
        for row in (r for r in block["rows"] if r["tag"] == tag and r["where"] is not None):
            expected = set(tags.loc[labels == row["subgroup"], "user_id"])
            selected = {
                r["user_id"]
                for r in joined_df.filter(where_col(adapter.validate_python(row["where"]))).collect()
            }
            assert selected == expected, (tag, row["subgroup"])
            assert len(selected) == row["n"]
            checked += 1
    assert checked == 11  # lifecycle 3, consumption 3, coupon 2, cart 3; top category has no conditions


def test_notes_instead_of_a_table(spark, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bare = str(tmp_path / "bare")
    write_lake(spark, bare, with_tags=False)
    out = pack_subgroups(spark, bare, _pack_df(spark, bare), _frame(), R)
    assert out == {"note": f"no subgroup table: {tables.table_path(bare, tables.USER_TAGS)} does not exist"}
    lake_dir = str(tmp_path / "old_tags")
    write_lake(spark, lake_dir)
    later = R + timedelta(days=7)
    out = pack_subgroups(spark, lake_dir, _pack_df(spark, lake_dir), _frame(), later)
    assert out["note"].endswith(f"has no tag row for as_of_date {later} for this pack's users")


def test_evaluate_pack_writes_the_table_to_the_report_and_the_results(
    spark, lake: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    from dmp.steps.evaluate import evaluate_pack

    segments = tmp_path / "segments"
    segments.mkdir()
    (segments / f"{SEGMENT}.yaml").write_text(SPEC)
    out = tmp_path / "report"
    result = evaluate_pack(spark, lake, SEGMENT, R, window_days=3, out_dir=out, segments_dir=str(segments))
    block = result.report["subgroups"]
    assert block["suggested_tag"] == "lifecycle_stage"
    saved = json.loads((out / "report.json").read_text())["subgroups"]
    assert saved["rows"] == json.loads(json.dumps(block["rows"]))
    assert "Which tags earned it" in (out / "report.html").read_text()

    res = lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas().set_index("metric")
    assert len(res) == result.rows_written
    row = res.loc["subgroup_uplift_abs[lifecycle_stage=active]"]
    assert row["value"] == pytest.approx(0.65)
    assert [row["ci_low"], row["ci_high"]] == pytest.approx(list(diff_interval(30, 40, 4, 40)))
    active = next(r for r in block["rows"] if r["subgroup"] == "active")
    assert res.loc["subgroup_q_value[lifecycle_stage=active]", "value"] == pytest.approx(active["q_value"])
    assert "subgroup_heterogeneity_p[lifecycle_stage]" in res.index
    assert "subgroup_uplift_abs[lifecycle_stage=unknown]" not in res.index  # too small: not tested
    # keyed like the pack's own rows: the pack's n columns, segment, run date
    sub = res[res.index.str.startswith("subgroup_")]
    assert len(sub) == 2 * block["family_size"] + 5
    assert (
        set(sub["n_treatment"]) == {85} and set(sub["n_holdout"]) == {85} and set(sub["segment"]) == {SEGMENT}
    )
    assert res.loc["uplift_abs", "value"] == pytest.approx((34 / 85) - (8 / 85))
