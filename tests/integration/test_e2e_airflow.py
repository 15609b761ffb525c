"""End to end through Airflow: `airflow dags test` runs dmp_daily, dmp_audiences and dmp_uplift on
freshly generated demo data (SQLite metadata DB, local Spark via spark-submit, file:// delivery),
then the lake tables, the delivered files and the task states are checked.

This is the suite's one heavy test (about a dozen spark-submits); it shares one run across the
assertions below.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from dmp.cli.ops import airflow_env, collect_summary
from dmp.contracts import tables
from dmp.demo.consents import final_decisions

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The planted campaign, the spec that depends on it (second wave, coupon channel), and a broken one.
# The other example specs (lookalike, intercept) have their own tests; leaving them out here keeps
# this test at 4 build/deliver jobs instead of 8 (each spark-submit costs a JVM start).
SPECS = ["spring_revisit.yaml", "cart_abandoners.yaml"]
BROKEN_SPEC = """\
name: zz_broken
kind: store_revisit
scope: {store_ids: [S001]}
window_days: 14
behaviors: [view, teleport]
holdout: 1.5
channels: [jd_ads]
"""

pytestmark = pytest.mark.integration


@dataclass
class Run:
    root: Path
    env: dict[str, str]
    truth: dict
    campaign: dict
    rc: dict[str, int]
    states: dict[str, dict[str, tuple[str, int]]]
    summary: dict


def _dags_test(env: dict[str, str], root: Path, dag: str, logical: str, conf: dict) -> int:
    log = root / f"{dag}.log"
    with log.open("w") as fh:
        proc = subprocess.run(
            [str(BIN / "airflow"), "dags", "test", dag, logical, "-c", json.dumps(conf)],
            env=env,
            cwd=root,
            stdout=fh,
            stderr=subprocess.STDOUT,
            timeout=1800,
            check=False,
        )
    return proc.returncode


def _states(db: Path, dag: str) -> dict[str, tuple[str, int]]:
    """task label -> (state, try_number) of the DAG's latest run; mapped tasks as task[label]."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT task_id, map_index, rendered_map_index, state, try_number FROM task_instance "
            "WHERE dag_id = ? AND run_id = (SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag, dag),
        ).fetchall()
    return {
        (task if index < 0 else f"{task}[{label or index}]"): (state, tries)
        for task, index, label, state, tries in rows
    }


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("e2e")
    landing = root / "landing"
    # 16 days: the campaign runs on day 2 (R = last day - 14) and its window closes on the last day.
    subprocess.run(
        [
            str(BIN / "dmp"),
            "generate",
            "--out",
            str(landing),
            "--users",
            "400",
            "--days",
            "16",
            "--seed",
            "5",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    truth = json.loads((landing / "truth" / "summary.json").read_text())
    campaign = json.loads((landing / "truth" / "campaigns.json").read_text())[0]

    segments = root / "segments"
    segments.mkdir()
    for name in [*SPECS, "channels.yaml"]:
        shutil.copy(REPO_ROOT / "segments" / name, segments / name)
    (segments / "zz_broken.yaml").write_text(BROKEN_SPEC)

    env = {
        **os.environ,
        **airflow_env(
            str(root / "airflow"),
            lake=str(root / "lake"),
            landing=str(landing),
            segments=str(segments),
            delivery_root=f"file://{root / 'delivery'}",
        ),
        "DMP_SHUFFLE_PARTITIONS": "2",
        "DMP_DRIVER_MEMORY": "1g",
        # A real failure retries after 2 s instead of 1 min; the broken spec must not retry at all.
        "DMP_AIRFLOW_RETRY_DELAY": "2",
    }
    env.pop("DMP_AIRFLOW_RETRIES", None)
    subprocess.run(
        [str(BIN / "airflow"), "db", "migrate"],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
        timeout=300,
    )
    start, end, run_date = truth["start"], truth["end"], campaign["run_date"]
    rc = {
        "dmp_daily": _dags_test(env, root, "dmp_daily", end, {"date_from": start, "date_to": end}),
        "dmp_audiences": _dags_test(env, root, "dmp_audiences", run_date, {"run_date": run_date}),
        "dmp_uplift": _dags_test(env, root, "dmp_uplift", end, {"as_of": end}),
    }
    db = root / "airflow" / "airflow.db"
    states = {dag: _states(db, dag) for dag in rc}
    return Run(root, env, truth, campaign, rc, states, collect_summary(str(root / "lake")))


def _log_tail(run: Run, dag: str) -> str:
    return (run.root / f"{dag}.log").read_text()[-4000:]


def test_daily_loads_every_layer_for_every_day(run: Run) -> None:
    assert run.rc["dmp_daily"] == 0, _log_tail(run, "dmp_daily")
    assert {t: s for t, (s, _) in run.states["dmp_daily"].items()} == {
        t: "success"
        for t in (
            "ingest",
            "ingest_reference",
            "stitch_identities",
            "validate_events",
            "aggregate",
            "validate_user_daily",
            "tags",
            "validate_user_tags",
            "vacuum_erasures",  # no erasure request: it starts no Spark job
        )
    }
    s, truth = run.summary, run.truth
    assert s["events"] == truth["events_total"]
    # Every bad line is quarantined except exact duplicates, which are dropped (and counted).
    assert s["quarantined"] == truth["bad_total"] - truth["bad_records"]["duplicate_exact"]
    assert s["event_dates"][0] == truth["start"] and s["event_dates"][-1] == truth["end"]
    assert len(s["event_dates"]) == truth["days"]
    assert s["tag_snapshots"] == truth["days"] and s["tags_latest"] == truth["end"]
    assert 0 < s["tags_latest_users"] <= truth["users"]
    assert s["user_daily"] > 0
    assert s["identities"] > 0


def test_spark_jobs_report_their_progress_into_the_task_logs(run: Run) -> None:
    """Each spark-submit driver prints what its step is doing (dmp.spark.progress, ``lines`` off a
    terminal); the hook relays the lines into the task log, where ``make demo`` shows them live."""
    daily = (run.root / "dmp_daily.log").read_text()
    days = run.truth["days"]
    for line in (
        "progress: ingest · read, parse and check ",
        "progress: ingest · dedupe ",
        f"progress: aggregate · bronze/events -> silver/user_daily, {days} date(s) {run.truth['start']} .. ",
        "progress: gate · Great Expectations suite silver_user_daily done in ",
        f"progress: tags · gold/user_tags snapshot for {run.truth['end']} done in ",
    ):
        assert line in daily, line
    audiences = (run.root / "dmp_audiences.log").read_text()
    assert "progress: packs · build spring_revisit (" in audiences
    assert "progress: deliver · spring_revisit -> " in audiences


def test_audiences_build_valid_specs_and_fail_only_the_broken_one(run: Run) -> None:
    states = run.states["dmp_audiences"]
    # The run is marked failed (by `audit`) because one spec is broken ...
    assert run.rc["dmp_audiences"] != 0
    assert states["audit"][0] == "failed"
    # ... which failed its own task once, without retries, with the validation message ...
    assert states["build_pack[zz_broken.yaml]"] == ("failed", 1)
    # `airflow dags test` runs tasks in process: their logs are in the command's output.
    logs = (run.root / "dmp_audiences.log").read_text()
    assert "zz_broken.yaml: invalid segment spec" in logs
    assert "teleport" in logs and "holdout" in logs
    # ... while every valid spec was built (second wave too) and every channel delivered.
    assert states["build_pack[spring_revisit.yaml]"][0] == "success"
    assert states["build_dependent_pack[cart_abandoners.yaml]"][0] == "success"
    assert states["deliver[jd_ads]"][0] == "success"
    assert states["deliver[coupon_center]"][0] == "success"
    assert states["plan_deliveries"][0] == "success"

    packs = {p["segment"]: p for p in run.summary["packs"] if p["run_date"] == run.campaign["run_date"]}
    assert set(packs) == {"spring_revisit", "cart_abandoners"}
    spring = packs["spring_revisit"]
    # The generator planted the campaign on exactly the accounts this spec selects; the pack holds each
    # person once, in the group of the person's oldest account (dmp_daily stitched the planted persons).
    assert (spring["size"], spring["treatment"], spring["holdout"]) == _expected_by_person(run)
    # (At 400 users seed 5 no planted person has two eligible accounts, so this equals the per-account
    # counts; tests/steps/test_packs_persons.py checks the merge by hand.)


def _expected_by_person(run: Run) -> tuple[int, int, int]:
    """(size, treatment, holdout) of the campaign's eligible accounts taken by person (planted truth)."""
    import csv

    from dmp.contracts.holdout import holdout_bucket
    from dmp.demo.identities import planted_truth

    landing = run.root / "landing"
    with open(landing / "truth" / "campaign_users.csv", newline="") as f:
        eligible = {r["user_id"] for r in csv.DictReader(f) if r["segment"] == run.campaign["segment"]}
    oldest = {u: min(p) for p in planted_truth(landing).persons for u in p}  # all stitched the same day
    persons = {oldest.get(u, u) for u in eligible}
    salt, segment, share = run.campaign["salt"], run.campaign["segment"], run.campaign["holdout"]
    holdout = sum(holdout_bucket(salt, segment, p) < share for p in persons)
    return len(persons), len(persons) - holdout, holdout


def test_deliveries_are_complete_and_verifiable(run: Run) -> None:
    delivered = {(d["segment"], d["channel"]): d for d in run.summary["deliveries"]}
    spring = delivered[("spring_revisit", "jd_ads")]
    assert spring["status"] == "success"
    assert spring["run_date"] == run.campaign["run_date"]
    assert 0 < spring["match_rate"] <= 1
    for d in run.summary["deliveries"]:
        if d["status"] != "success":
            continue
        folder = Path(str(d["folder"]).removeprefix("file://"))
        assert str(folder).startswith(str(run.root / "delivery")), folder
        assert (folder / "_SUCCESS").is_file(), folder
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["files"], folder
        for entry in manifest["files"]:
            path = folder / entry["path"] if not entry["path"].startswith(("/", "file://")) else None
            path = path or Path(entry["path"].removeprefix("file://"))
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], path


def test_deliveries_leave_out_exactly_the_users_without_ad_consent(run: Run) -> None:
    """The generator's consent log went through ingest_reference into silver/consents, and the jd_ads
    manifest excludes exactly the treated users whose final decision is not a grant."""
    from deltalake import DeltaTable

    delivered = {(d["segment"], d["channel"]): d for d in run.summary["deliveries"]}
    spring = delivered[("spring_revisit", "jd_ads")]
    packs = DeltaTable(tables.table_path(str(run.root / "lake"), tables.AUDIENCE_PACKS)).to_pandas()
    treated = packs[
        (packs["segment"] == "spring_revisit")
        & (packs["run_date"].astype(str) == run.campaign["run_date"])
        & (packs["group"] == "treatment")
    ]["user_id"].tolist()
    start = date.fromisoformat(run.truth["start"])
    decisions = final_decisions(treated, start, run.truth["days"], run.truth["seed"])
    expected = {
        "no_consent": sum((u, "ad_personalization") not in decisions for u in treated),
        "revoked": sum(decisions.get((u, "ad_personalization")) is False for u in treated),
    }
    assert expected["no_consent"] > 0 and expected["revoked"] > 0  # the demo plants both
    folder = Path(str(spring["folder"]).removeprefix("file://"))
    counts = json.loads((folder / "manifest.json").read_text())["counts"]
    assert counts["excluded_by_reason"] == expected
    assert counts["excluded_users"] == sum(expected.values())


def test_uplift_evaluates_the_closed_window_only(run: Run) -> None:
    assert run.rc["dmp_uplift"] == 0, _log_tail(run, "dmp_uplift")
    evaluated = {(u["segment"], u["run_date"]): u for u in run.summary["uplift"]}
    key = ("spring_revisit", run.campaign["run_date"])
    # spring_revisit's 14-day window closed on the last day; cart_abandoners (no window_days: 14 by
    # default) was delivered on the same day, so it is due too.
    assert key in evaluated, run.summary["uplift"]
    result = evaluated[key]
    assert (result["n_treatment"], result["n_holdout"]) == (
        run.campaign["n_treatment"],
        run.campaign["n_holdout"],
    )
    assert result["report"] and Path(result["report"]).is_file()
    # the pre-period balance check: the pack excludes anyone who bought in S001 in the 14 days up to
    # the run date, which is exactly the pre-period in that scope, so neither group converted there
    assert result["pre_rate_treatment"][0] == 0.0 and result["pre_rate_control"][0] == 0.0
    assert result["pre_p_value"][0] == 1.0
    assert all(state == "success" for state, _ in run.states["dmp_uplift"].values())


def test_the_runs_publish_the_overlap_and_the_site(run: Run) -> None:
    """dmp_audiences' publish_site wrote gold/pack_overlap for the run date and the site; dmp_uplift
    rewrote the site with the evaluations (its pack pages link the copied reports)."""
    from deltalake import DeltaTable

    assert run.states["dmp_audiences"]["publish_site"][0] == "success"
    assert run.states["dmp_uplift"]["publish_site"][0] == "success"
    lake = str(run.root / "lake")
    overlap = DeltaTable(tables.table_path(lake, tables.PACK_OVERLAP)).to_pandas()
    pairs = {
        (r.segment_a, r.segment_b)
        for r in overlap.itertuples()
        if str(r.run_date) == run.campaign["run_date"]
    }
    assert pairs == {("cart_abandoners", "spring_revisit")}
    index = (run.root / "lake" / "site" / "index.html").read_text()
    for segment in ("spring_revisit", "cart_abandoners"):
        assert f"packs/{segment}.html" in index
    assert list((run.root / "lake" / "site").rglob("report.html")), (
        "the evaluated packs' reports are in the site"
    )
