"""Pack builders against answers worked out by hand on tiny inline data (real Spark + Delta)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmp.contracts import tables
from dmp.contracts.holdout import holdout_bucket
from dmp.spark import lake as lk
from dmp.spark.schemas import USER_DAILY, USER_TAGS
from tests.support.factories import daily
from tests.transforms.test_packs import REVISIT, REVISIT_ROWS, TAG_ROWS, D, tags

# The lookalike scores with mapInPandas: Python workers must run this venv (pandas, sklearn).

CHANNELS_YAML = {
    "channels": {
        "jd_ads": {
            "type": "ad",
            "destination": "file:///tmp/dmp-test-out",
            "id_types": ["oaid"],
            "hash": {"oaid": "md5"},
            "sync": "incremental",
        },
        "coupon_center": {
            "type": "coupon",
            "destination": "file:///tmp/dmp-test-out",
            "id_types": ["user_id"],
            "hash": {"user_id": "none"},
            "sync": "full",
        },
    }
}


def write_daily(spark, lake: str, rows: list[tuple]) -> None:
    df = spark.createDataFrame(rows, USER_DAILY)
    df.write.format("delta").mode("overwrite").partitionBy("event_date").save(
        tables.table_path(lake, tables.USER_DAILY)
    )


def write_tags(spark, lake: str, rows: list[tuple]) -> None:
    df = spark.createDataFrame(rows, USER_TAGS)
    df.write.format("delta").mode("overwrite").partitionBy("as_of_date").save(
        tables.table_path(lake, tables.USER_TAGS)
    )


def write_suppression(spark, lake: str, rows: list[tuple[str, str]]) -> None:
    df = spark.createDataFrame(rows, "list_name string, user_id string")
    df.write.format("delta").mode("overwrite").save(tables.table_path(lake, tables.SUPPRESSION_LISTS))


def write_specs(folder: Path, *specs: dict[str, Any], channels: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if channels:
        (folder / "channels.yaml").write_text(yaml.safe_dump(CHANNELS_YAML))
    for spec in specs:
        (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def pack(spark, lake: str, segment: str, run_date: date = D) -> dict[str, str]:
    rows = (
        lk.read_table(spark, lake, tables.AUDIENCE_PACKS)
        .filter(f"segment = '{segment}' AND run_date = DATE'{run_date}'")
        .select("user_id", "group")
        .collect()
    )
    return {r["user_id"]: r["group"] for r in rows}


def run_row(spark, lake: str, segment: str, run_date: date = D) -> dict[str, Any]:
    rows = (
        lk.read_table(spark, lake, tables.PACK_RUNS)
        .filter(f"segment = '{segment}' AND run_date = DATE'{run_date}'")
        .collect()
    )
    assert len(rows) == 1
    return rows[0].asDict()


@pytest.fixture()
def revisit_lake(spark, lake: str) -> str:
    """REVISIT_ROWS (hand-made behaviour around run date D = 2026-03-20) in user_daily."""
    write_daily(spark, lake, REVISIT_ROWS)
    return lake


def test_store_revisit_by_hand(spark, revisit_lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    segs = write_specs(tmp_path / "segs", REVISIT)
    report = build_packs(spark, revisit_lake, segs, D)
    assert report.ok, (report.invalid, report.failed)
    assert pack(spark, revisit_lake, "revisit") == {
        "u01": "treatment",
        "u02": "treatment",
        "u05": "treatment",
        "u08": "treatment",
    }
    rows = (
        lk.read_table(spark, revisit_lake, tables.AUDIENCE_PACKS)
        .filter("user_id = 'u05'")
        .select("score", "reason", "kind", "deliverable")
        .first()
    )
    assert rows["score"] == 3.0
    assert (
        rows["reason"] == "store_revisit: view=0, cart_add=0, favorite=3 in scope over 14d, last 2026-03-18"
    )
    assert rows["kind"] == "store_revisit" and rows["deliverable"] is True
    run = run_row(spark, revisit_lake, "revisit")
    assert (run["size"], run["holdout_size"], run["treatment_size"], run["deliverable"]) == (4, 0, 4, True)
    assert json.loads(run["metrics_json"]) == {
        "candidates": 4,
        "excluded": 0,
        "same_person": 0,
        "capped_by_max_size": 0,
    }


def test_empty_scope_gives_empty_pack_and_a_run_row(spark, revisit_lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    spec = {**REVISIT, "name": "nobody", "scope": {"store_ids": ["S999"]}, "min_size": 1}
    report = build_packs(spark, revisit_lake, write_specs(tmp_path / "segs", spec), D)
    assert not report.failed
    assert pack(spark, revisit_lake, "nobody") == {}
    run = run_row(spark, revisit_lake, "nobody")
    assert (run["size"], run["deliverable"], run["reason"]) == (0, False, "size 0 is below min_size 1")


@pytest.fixture()
def tags_lake(spark, lake: str) -> str:
    write_tags(spark, lake, TAG_ROWS)
    return lake


def test_where_on_behaviour_pack_drops_users_without_tags(spark, revisit_lake: str, tmp_path: Path) -> None:
    """u01 and u02 have tags; u05 and u08 have none, so a where-filter cannot select them."""
    from dmp.steps.packs import build_packs

    write_tags(
        spark,
        revisit_lake,
        [
            tags("u01", lifecycle_stage="active"),
            tags("u02", lifecycle_stage="silent"),
            tags("zz", lifecycle_stage="active"),
        ],
    )
    only_active = {**REVISIT, "name": "active_revisit", "where": {"tag": "lifecycle_stage", "eq": "active"}}
    without_tags = {
        **REVISIT,
        "name": "untagged_revisit",
        "where": {"tag": "lifecycle_stage", "is_null": True},
    }
    report = build_packs(spark, revisit_lake, write_specs(tmp_path / "segs", only_active, without_tags), D)
    assert report.ok, (report.invalid, report.failed)
    assert sorted(pack(spark, revisit_lake, "active_revisit")) == ["u01"]
    assert sorted(pack(spark, revisit_lake, "untagged_revisit")) == ["u05", "u08"]


def test_exclusions_suppression_max_size_and_dependency_order(
    spark, revisit_lake: str, tmp_path: Path
) -> None:
    from dmp.steps.packs import build_packs

    write_tags(spark, revisit_lake, [tags(u) for u in ("u01", "u02", "u05", "u08", "u11", "u12")])
    write_suppression(spark, revisit_lake, [("opt_out", "u02"), ("opt_out", "u11"), ("other", "u12")])
    # "a_rule" sorts before "revisit" but excludes it, so revisit must be built first.
    a_rule = {
        "name": "a_rule",
        "kind": "rule",
        "where": {"tag": "lifecycle_stage", "eq": "active"},
        "exclude": {"segments": ["revisit"], "suppression_lists": ["opt_out"]},
        "holdout": 0.0,
    }
    capped = {**REVISIT, "name": "capped", "max_size": 2}
    report = build_packs(spark, revisit_lake, write_specs(tmp_path / "segs", a_rule, REVISIT, capped), D)
    assert report.ok, (report.invalid, report.failed)
    assert [r.segment for r in report.results] == ["capped", "revisit", "a_rule"]
    assert sorted(pack(spark, revisit_lake, "a_rule")) == ["u12"]
    run = run_row(spark, revisit_lake, "a_rule")
    assert json.loads(run["metrics_json"]) == {
        "candidates": 6,
        "excluded": 5,
        "same_person": 0,
        "capped_by_max_size": 0,
    }
    # Scores: u05=3, u01=2, u02=1 (last 03-07), u08=1 (last 03-15): the best two are u05 and u01.
    assert sorted(pack(spark, revisit_lake, "capped")) == ["u01", "u05"]


def test_selected_spec_reads_its_already_built_dependency(spark, revisit_lake: str, tmp_path: Path) -> None:
    """`--spec X` (the DAG's second wave) must not rewrite X's dependencies built by the first wave."""
    from dmp.steps.packs import build_packs

    write_tags(spark, revisit_lake, [tags(u) for u in ("u01", "u02", "u05", "u08", "u12")])
    a_rule = {
        "name": "a_rule",
        "kind": "rule",
        "where": {"tag": "lifecycle_stage", "eq": "active"},
        "exclude": {"segments": ["revisit"]},
        "holdout": 0.0,
    }
    segs = write_specs(tmp_path / "segs", a_rule, REVISIT)
    assert build_packs(spark, revisit_lake, segs, D, [segs / "revisit.yaml"]).ok  # the first wave
    packs_version = lk.table_version(spark, revisit_lake, tables.AUDIENCE_PACKS)
    built_at = run_row(spark, revisit_lake, "revisit")["built_at"]

    report = build_packs(spark, revisit_lake, segs, D, [segs / "a_rule.yaml"])  # the second wave
    assert report.ok, (report.invalid, report.failed)
    assert [(r.segment, r.status, r.requested, r.reused) for r in report.results] == [
        ("revisit", "built", False, True),
        ("a_rule", "built", True, False),
    ]
    assert report.reused == ["revisit"]
    assert (report.results[0].size, report.results[0].metrics) == (
        4,
        {"candidates": 4, "excluded": 0, "same_person": 0, "capped_by_max_size": 0},
    )
    # Only a_rule was written (one commit), revisit's run row is the first wave's.
    assert lk.table_version(spark, revisit_lake, tables.AUDIENCE_PACKS) == packs_version + 1
    assert run_row(spark, revisit_lake, "revisit")["built_at"] == built_at
    assert sorted(pack(spark, revisit_lake, "a_rule")) == ["u12"]

    # Asked for, or built from another version of the spec: rebuilt.
    again = build_packs(spark, revisit_lake, segs, D, [segs / "a_rule.yaml"], rebuild_dependencies=True)
    assert [(r.segment, r.reused) for r in again.results] == [("revisit", False), ("a_rule", False)]
    write_specs(tmp_path / "segs", {**REVISIT, "max_size": 3}, channels=False)
    changed = build_packs(spark, revisit_lake, segs, D, [segs / "a_rule.yaml"])
    assert [(r.segment, r.reused, r.size) for r in changed.results] == [
        ("revisit", False, 3),
        ("a_rule", False, 2),
    ]


def test_unknown_suppression_list_fails_that_spec_only(spark, revisit_lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    write_suppression(spark, revisit_lake, [("opt_out", "u01")])
    bad = {**REVISIT, "name": "bad", "exclude": {"suppression_lists": ["opt_outt"]}}
    good = {**REVISIT, "name": "good", "exclude": {"suppression_lists": ["opt_out"]}}
    dependent = {**REVISIT, "name": "dependent", "exclude": {"segments": ["bad"]}}
    segs = write_specs(tmp_path / "segs", bad, good, dependent)
    report = build_packs(spark, revisit_lake, segs, D)
    assert not report.ok
    errors = {r.segment: r.error for r in report.failed}
    assert errors == {
        "bad": f"{segs / 'bad.yaml'}: exclude.suppression_lists: list 'opt_outt' is not in silver/suppression_lists; "
        "load it with `dmp ingest-suppression --name NAME --source FILE`",
        "dependent": "not built: depends on 'bad', which failed",
    }
    assert sorted(pack(spark, revisit_lake, "good")) == ["u02", "u05", "u08"]


def test_holdout_share_is_deterministic_and_rerun_replaces(spark, lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    users = [f"h{i:04d}" for i in range(2000)]
    write_daily(spark, lake, [daily(u, D, "S001", "B001", "C01", views=1) for u in users])
    spec = {**REVISIT, "name": "held", "holdout": 0.2, "min_size": 10}
    segs = write_specs(tmp_path / "segs", spec)
    assert build_packs(spark, lake, segs, D).ok
    first = pack(spark, lake, "held")
    expected = {u: ("holdout" if holdout_bucket("dmp-v1", "held", u) < 0.2 else "treatment") for u in users}
    assert first == expected
    share = sum(g == "holdout" for g in first.values()) / len(first)
    assert 0.17 < share < 0.23
    # Rerun the same date: same groups, no duplicate rows, one run row.
    assert build_packs(spark, lake, segs, D).ok
    assert lk.read_table(spark, lake, tables.AUDIENCE_PACKS).count() == 2000
    assert pack(spark, lake, "held") == first
    run = run_row(spark, lake, "held")
    assert run["size"] == 2000 and run["holdout_size"] == sum(g == "holdout" for g in first.values())
    # A different day keeps each user's group (the hash ignores the date).
    write_daily(
        spark, lake, [daily(u, D + timedelta(days=1), "S001", "B001", "C01", views=1) for u in users[:500]]
    )
    assert build_packs(spark, lake, segs, D + timedelta(days=1)).ok
    second = pack(spark, lake, "held", D + timedelta(days=1))
    assert second == {u: first[u] for u in users[:500]}
    # A smaller rebuild for D replaces D's pack (no stale users left).
    write_daily(spark, lake, [daily(u, D, "S001", "B001", "C01", views=1) for u in users[:3]])
    report = build_packs(spark, lake, segs, D)
    assert pack(spark, lake, "held") == {u: first[u] for u in users[:3]}
    assert report.results[0].deliverable is False
    run = run_row(spark, lake, "held")
    assert (run["size"], run["deliverable"], run["reason"]) == (3, False, "size 3 is below min_size 10")
    rows = lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(f"run_date = DATE'{D}'").collect()
    assert {r["deliverable"] for r in rows} == {False}


def test_invalid_spec_does_not_stop_valid_ones(spark, revisit_lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    segs = write_specs(tmp_path / "segs", REVISIT)
    (segs / "broken.yaml").write_text("name: broken\nkind: store_revisit\nwindow_days: fourteen\n")
    report = build_packs(spark, revisit_lake, segs, D)
    assert not report.ok
    assert f"{segs / 'broken.yaml'}: window_days: expected an integer, got 'fourteen'" in report.invalid
    assert [r.segment for r in report.results] == ["revisit"]
    assert len(pack(spark, revisit_lake, "revisit")) == 4


def test_rule_needs_a_tag_snapshot_for_the_run_date(spark, tags_lake: str, tmp_path: Path) -> None:
    from dmp.steps.packs import build_packs

    spec = {"name": "r", "kind": "rule", "where": {"tag": "consumption_level", "gte": 1}}
    report = build_packs(spark, tags_lake, write_specs(tmp_path / "segs", spec), D + timedelta(days=1))
    assert report.failed[0].error.endswith(
        "gold/user_tags has no snapshot for as_of_date 2026-03-21: run `dmp tags --date 2026-03-21` first"
    )


def test_lookalike_seeded_on_a_rule_pack(spark, lake: str, tmp_path: Path) -> None:
    """Seed = heavy B001 buyers (rule pack); 40 look-alikes differ from the seed only in frequency."""
    from dmp.steps.packs import build_packs

    rows = []
    for i in range(40):  # seed: the rule below selects exactly these
        rows.append(
            tags(
                f"s{i:02d}",
                top_brand_ids=["B001"],
                top_category_ids=["C01"],
                consumption_level=5,
                frequency_90d=6,
                monetary_90d=600.0,
                recency_days=2,
                views_30d=30,
            )
        )
    for i in range(40):  # look-alikes: same profile, fewer orders, so not in the seed
        rows.append(
            tags(
                f"l{i:02d}",
                top_brand_ids=["B001"],
                top_category_ids=["C01"],
                consumption_level=5,
                frequency_90d=2,
                monetary_90d=500.0,
                recency_days=3,
                views_30d=28,
            )
        )
    for i in range(200):  # everybody else
        rows.append(
            tags(
                f"r{i:03d}",
                top_brand_ids=["B103"],
                top_category_ids=["C04"],
                consumption_level=1,
                frequency_90d=i % 2,
                monetary_90d=float(i % 2) * 20,
                views_30d=i % 7,
                lifecycle_stage="churned" if i % 10 == 0 else "active",
            )
        )
    write_tags(spark, lake, rows)
    seed = {
        "name": "heavy_b001",
        "kind": "rule",
        "holdout": 0.0,
        "where": {"all": [{"tag": "top_brand_ids", "contains": "B001"}, {"tag": "frequency_90d", "gte": 5}]},
    }
    lookalike = {
        "name": "like_b001",
        "kind": "lookalike",
        "seed": {"segment": "heavy_b001"},
        "expansion": {"size": 30},
        "min_seed": 20,
        "holdout": 0.0,
    }
    tiny_seed = {
        "name": "tiny",
        "kind": "lookalike",
        "min_seed": 50,
        "expansion": {"ratio": 1.0},
        "seed": {"where": {"tag": "frequency_90d", "gte": 5}},
    }
    report = build_packs(spark, lake, write_specs(tmp_path / "segs", seed, lookalike, tiny_seed), D)
    assert sorted(pack(spark, lake, "heavy_b001")) == [f"s{i:02d}" for i in range(40)]
    got = pack(spark, lake, "like_b001")
    assert len(got) == 30 and all(u.startswith("l") for u in got)
    metrics = json.loads(run_row(spark, lake, "like_b001")["metrics_json"])
    assert metrics["lookalike"]["n_seed"] == 40 and metrics["lookalike"]["k"] == 30
    assert metrics["candidates"] == 30
    assert [r.segment for r in report.failed] == ["tiny"]
    assert "has 40 users; at least 50 needed" in report.failed[0].error


def test_cli_build_and_job_exit_codes(spark, revisit_lake: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dmp.cli import app
    from jobs.build_packs import main as job_main

    segs = write_specs(tmp_path / "segs", REVISIT)
    result = CliRunner().invoke(
        app, ["segments", "build", "--lake", revisit_lake, "--date", str(D), "--segments", str(segs)]
    )
    assert result.exit_code == 0, result.output
    assert len(pack(spark, revisit_lake, "revisit")) == 4
    assert (
        job_main(
            [
                "--lake",
                revisit_lake,
                "--from",
                str(D),
                "--to",
                str(D + timedelta(days=1)),
                "--segments",
                str(segs),
                "--spec",
                str(segs / "revisit.yaml"),
            ]
        )
        == 0
    )
    # D+1: u02 (D-13) leaves the window, u09 (D+1) enters it.
    assert sorted(pack(spark, revisit_lake, "revisit", D + timedelta(days=1))) == ["u01", "u05", "u08", "u09"]
    (segs / "bad.yaml").write_text("name: bad\nkind: rule\nwhere: {tag: nope, eq: 1}\n")
    assert job_main(["--lake", revisit_lake, "--date", str(D), "--segments", str(segs)]) == 1
