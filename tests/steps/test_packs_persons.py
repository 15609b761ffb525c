"""Packs by person (docs/identity.md): one row per person, the holdout of the person's oldest account,
exclusions that reach a person's other accounts, and crossovers counted; hand-made answers."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

from dmp.contracts import tables
from dmp.contracts.holdout import holdout_bucket
from dmp.spark import lake as lk
from dmp.spark.schemas import PERSONS_SCHEMA
from dmp.transforms.stitching import person_id_for
from tests.steps.test_packs import REVISIT, run_row, write_daily, write_specs, write_suppression
from tests.support.factories import daily

D = date(2026, 3, 20)
SEG = "by_person"
SPEC = {**REVISIT, "name": SEG, "holdout": 0.5}
EARLY, LATE = date(2026, 1, 1), date(2026, 3, 1)


def _group(user: str) -> str:
    return "holdout" if holdout_bucket("dmp-v1", SEG, user) < 0.5 else "treatment"


def _pick(group: str, skip: set[str], prefix: str) -> str:
    """The first account name ``<prefix>NN`` whose own hash lands in ``group``."""
    for i in range(1000):
        user = f"{prefix}{i:03d}"
        if user not in skip and _group(user) == group:
            return user
    raise AssertionError("no such user")  # pragma: no cover


def _fixture() -> dict[str, str]:
    used: set[str] = set()

    def take(group: str, prefix: str) -> str:
        user = _pick(group, used, prefix)
        used.add(user)
        return user

    return {
        # person 1: the oldest account hashes to holdout, the other one to treatment (a crossover)
        "p1_old": take("holdout", "a"),
        "p1_new": take("treatment", "b"),
        # person 2: both accounts hash to treatment
        "p2_old": take("treatment", "c"),
        "p2_new": take("treatment", "d"),
        # person 3: one account on the suppression list, the other qualifies
        "p3_listed": take("treatment", "e"),
        "p3_qualifies": take("treatment", "f"),
        # alone (in persons as a one-account person, and not in persons at all)
        "alone": take("holdout", "g"),
        "unstitched": take("treatment", "h"),
    }


def _write_persons(spark, lake: str, u: dict[str, str]) -> None:
    rows = [
        (u["p1_old"], person_id_for(u["p1_old"]), EARLY),
        (u["p1_new"], person_id_for(u["p1_old"]), LATE),
        (u["p2_old"], person_id_for(u["p2_old"]), EARLY),
        (u["p2_new"], person_id_for(u["p2_old"]), LATE),
        (u["p3_listed"], person_id_for(u["p3_listed"]), EARLY),
        (u["p3_qualifies"], person_id_for(u["p3_listed"]), LATE),
        (u["alone"], person_id_for(u["alone"]), EARLY),
    ]
    spark.createDataFrame(rows, PERSONS_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.PERSONS)
    )


def _lake(spark, lake: str, u: dict[str, str]) -> None:
    day = D - timedelta(days=2)
    views = {
        "p1_old": 1,
        "p1_new": 5,
        "p2_old": 4,
        "p2_new": 2,
        "p3_qualifies": 3,
        "alone": 1,
        "unstitched": 2,
    }
    write_daily(spark, lake, [daily(u[k], day, "S001", "B001", "C01", views=n) for k, n in views.items()])
    _write_persons(spark, lake, u)


def _pack_rows(spark, lake: str) -> dict[str, tuple[str, str | None]]:
    rows = lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(f"segment = '{SEG}'").collect()
    return {r["user_id"]: (r["group"], r["person_id"]) for r in rows}


def test_one_account_per_person_with_the_oldest_accounts_group(spark, lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    u = _fixture()
    _lake(spark, lake, u)
    report = build_packs(spark, lake, write_specs(tmp_path / "segs", SPEC), D)
    assert report.ok, (report.invalid, report.failed)
    assert _pack_rows(spark, lake) == {
        # the most engaged account stands for the person, in the group of the person's oldest account
        u["p1_new"]: ("holdout", person_id_for(u["p1_old"])),
        u["p2_old"]: ("treatment", person_id_for(u["p2_old"])),
        u["p3_qualifies"]: ("treatment", person_id_for(u["p3_listed"])),
        u["alone"]: ("holdout", person_id_for(u["alone"])),
        u["unstitched"]: ("treatment", person_id_for(u["unstitched"])),
    }
    run = run_row(spark, lake, SEG)
    assert (run["size"], run["holdout_size"], run["crossovers"]) == (5, 2, 1)
    assert json.loads(run["metrics_json"]) == {
        "candidates": 7,
        "excluded": 0,
        "same_person": 2,
        "capped_by_max_size": 0,
    }


def test_excluding_one_account_excludes_the_person(spark, lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    u = _fixture()
    _lake(spark, lake, u)
    write_suppression(spark, lake, [("opted_out", u["p3_listed"])])
    spec = {**SPEC, "exclude": {"suppression_lists": ["opted_out"]}}
    report = build_packs(spark, lake, write_specs(tmp_path / "segs", spec), D)
    assert report.ok, (report.invalid, report.failed)
    got = _pack_rows(spark, lake)
    assert u["p3_qualifies"] not in got and len(got) == 4
    metrics = json.loads(run_row(spark, lake, SEG)["metrics_json"])
    assert (metrics["excluded"], metrics["same_person"]) == (1, 2)


def test_without_persons_every_account_is_its_own_person(spark, lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    u = _fixture()
    _lake(spark, lake, u)
    shutil.rmtree(tables.table_path(lake, tables.PERSONS))  # the lake was never stitched
    report = build_packs(spark, lake, write_specs(tmp_path / "segs", SPEC), D)
    assert report.ok, (report.invalid, report.failed)
    got = _pack_rows(spark, lake)
    qualifying = [k for k in u if k != "p3_listed"]
    assert got == {u[k]: (_group(u[k]), person_id_for(u[k])) for k in qualifying}
    assert run_row(spark, lake, SEG)["crossovers"] == 0
