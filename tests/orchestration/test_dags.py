"""The DAGs parse cleanly and cheaply, are wired as specified, and their light helpers are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from dmp.orchestration import planning, submit

REPO_ROOT = Path(__file__).resolve().parents[2]

# Parsed in a fresh interpreter with its own AIRFLOW_HOME: the parse must not pull in the heavy
# engines, and importing Airflow must not touch this test process or the user's ~/airflow.
PARSE_SCRIPT = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=sys.argv[1])
out = {"import_errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": {},
       "heavy_modules": sorted(m for m in ("pyspark", "great_expectations", "sklearn", "py4j", "delta")
                               if m in sys.modules)}
for dag_id, dag in bag.dags.items():
    tasks = {}
    for t in dag.tasks:
        tasks[t.task_id] = {
            "upstream": sorted(t.upstream_task_ids),
            "retries": t.retries,
            "backoff": float(t.retry_exponential_backoff or 0),
            "timeout_s": t.execution_timeout.total_seconds() if t.execution_timeout else None,
            "trigger_rule": str(getattr(t.trigger_rule, "value", t.trigger_rule)),
            "mapped": bool(getattr(t, "is_mapped", False)),
            "outlets": [getattr(o, "name", str(o)) for o in (t.outlets or [])],
            "owner": t.owner,
        }
    cond = getattr(dag.timetable, "asset_condition", None)
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "doc_md": dag.doc_md or "",
        "max_active_runs": dag.max_active_runs,
        "schedule": type(dag.timetable).__name__,
        "asset_schedule": [getattr(a, "name", str(a)) for a in getattr(cond, "objects", [cond]) if a is not None],
        "params": sorted(dag.params.keys()),
        "tasks": tasks,
    }
print("DAGBAG_JSON=" + json.dumps(out))
"""


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
    }
    env.pop("DMP_AIRFLOW_RETRIES", None)
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(REPO_ROOT / "dags")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        check=False,
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DAGBAG_JSON=")), None)
    assert line, f"DagBag parse failed (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(line.removeprefix("DAGBAG_JSON="))


def test_dags_parse_without_errors_or_heavy_imports(bag: dict) -> None:
    assert bag["import_errors"] == {}
    assert sorted(bag["dags"]) == ["dmp_audiences", "dmp_daily", "dmp_uplift"]
    assert bag["heavy_modules"] == []


def test_every_dag_has_tags_owner_doc_retries_timeouts(bag: dict) -> None:
    for dag_id, dag in bag["dags"].items():
        assert "dmp" in dag["tags"], dag_id
        assert f"### {dag_id}" in dag["doc_md"], dag_id
        assert dag["max_active_runs"] == 1, dag_id
        for task_id, t in dag["tasks"].items():
            assert t["owner"] == "dmp-data-eng", (dag_id, task_id)
            assert t["timeout_s"] is not None and 0 < t["timeout_s"] <= 2 * 3600, (dag_id, task_id)
            if task_id == "audit":  # a check of other tasks' outcome: retrying it changes nothing
                assert t["retries"] == 0
                continue
            assert t["retries"] == 2, (dag_id, task_id)
            assert t["backoff"] == 2.0, (dag_id, task_id)


def test_daily_runs_the_steps_in_order_and_publishes_the_tag_asset(bag: dict) -> None:
    daily = bag["dags"]["dmp_daily"]
    order = ["ingest", "validate_events", "aggregate", "validate_user_daily", "tags", "validate_user_tags"]
    assert sorted(daily["tasks"]) == sorted(
        [*order, "ingest_reference", "stitch_identities", "vacuum_erasures"]
    )
    for before, after in zip(order[:-2], order[1:-1], strict=True):
        assert daily["tasks"][after]["upstream"] == [before]
    assert daily["tasks"]["ingest"]["upstream"] == []
    assert daily["tasks"]["ingest_reference"]["upstream"] == []
    assert daily["tasks"]["stitch_identities"]["upstream"] == ["ingest_reference"]
    assert daily["tasks"]["validate_user_tags"]["upstream"] == ["stitch_identities", "tags"]
    assert daily["tasks"]["validate_user_tags"]["outlets"] == ["dmp_user_tags"]
    # The erasure purge runs last, once the day's tables are written (docs/privacy.md, "Erasure").
    assert daily["tasks"]["vacuum_erasures"]["upstream"] == ["validate_user_tags"]
    assert {"date_from", "date_to", "source"} <= set(daily["params"])


def test_audiences_maps_specs_and_channels_and_tolerates_failed_specs(bag: dict) -> None:
    aud = bag["dags"]["dmp_audiences"]
    assert aud["asset_schedule"] == ["dmp_user_tags"]
    t = aud["tasks"]
    assert t["build_pack"]["mapped"] and t["build_dependent_pack"]["mapped"] and t["deliver"]["mapped"]
    assert t["build_pack"]["upstream"] == ["list_specs", "run_dates"]
    assert "build_pack" in t["build_dependent_pack"]["upstream"]
    assert t["plan_deliveries"]["upstream"] == ["build_dependent_pack", "build_pack"]
    assert t["deliver"]["upstream"] == ["plan_deliveries", "run_dates"]
    # A failed spec must not stop the second wave, the delivery planning or the final audit.
    for task_id in ("build_dependent_pack", "plan_deliveries", "audit"):
        assert t[task_id]["trigger_rule"] == "all_done", task_id
    # The overlap and the site are published after the deliveries, whatever failed; audit reads
    # their outcome too, so it stays the one leaf that decides the run's state.
    assert t["publish_site"]["upstream"] == ["deliver", "run_dates"]
    assert t["publish_site"]["trigger_rule"] == "all_done"
    assert "publish_site" in t["audit"]["upstream"]
    leaves = [tid for tid in t if not any(tid in o["upstream"] for o in t.values())]
    assert leaves == ["audit"]


def test_uplift_maps_evaluations(bag: dict) -> None:
    up = bag["dags"]["dmp_uplift"]
    assert up["tasks"]["evaluate"]["mapped"]
    assert up["tasks"]["evaluate"]["upstream"] == ["find_due"]
    # The site is rewritten only when every evaluation succeeded: a failed one must fail the run,
    # and a leaf that ran anyway would hide it.
    assert up["tasks"]["publish_site"]["upstream"] == ["evaluate"]
    assert up["tasks"]["publish_site"]["trigger_rule"] == "all_success"
    assert {"as_of", "reevaluate"} <= set(up["params"])


# ----------------------------------------------------------------------------- light helpers


PACKAGES_SCRIPT = r"""
import sys
from dmp.contracts.packages import spark_packages
print(spark_packages(s3a=True))
print(sorted(m for m in ("pyspark", "py4j") if m in sys.modules))
"""


def test_spark_packages_match_the_installed_pyspark_without_importing_it() -> None:
    proc = subprocess.run([sys.executable, "-c", PACKAGES_SCRIPT], capture_output=True, text=True, check=True)
    packages, imported = proc.stdout.splitlines()
    assert imported == "[]"

    from importlib.metadata import version

    import pyspark

    spark_mm = ".".join(pyspark.__version__.split(".")[:2])
    client = next((Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    hadoop = client.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert packages == (
        f"io.delta:delta-spark_{spark_mm}_2.13:{version('delta-spark')},org.apache.hadoop:hadoop-aws:{hadoop}"
    )


def test_run_dates_from_params_or_logical_date() -> None:
    assert planning.run_dates({}, datetime(2026, 3, 5, 0, 0)) == ("2026-03-05", "2026-03-05")
    assert planning.run_dates({"date_from": "2026-03-01", "date_to": "2026-03-04"}, None) == (
        "2026-03-01",
        "2026-03-04",
    )
    assert planning.run_dates({"date_from": "2026-03-02", "date_to": None}, date(2026, 3, 9)) == (
        "2026-03-02",
        "2026-03-02",
    )
    with pytest.raises(ValueError, match="date_to 2026-03-01 is before date_from 2026-03-04"):
        planning.run_dates({"date_from": "2026-03-04", "date_to": "2026-03-01"}, None)
    with pytest.raises(ValueError, match="no logical date"):
        planning.run_dates({}, None)


def test_queued_asset_events_give_every_date_sorted_once() -> None:
    # three events queued during a catch-up: out of order, one day twice (its tags were rebuilt)
    events = [
        {"date_from": "2026-03-03", "date_to": "2026-03-03", "lake": "/l"},
        {"date_from": "2026-03-01", "date_to": "2026-03-01", "lake": "/l"},
        {"date_from": "2026-03-03", "date_to": "2026-03-03", "lake": "/l"},
    ]
    assert planning.asset_run_dates(events) == ["2026-03-01", "2026-03-03"]
    # one range run of dmp_daily covers every day of its range; `date` alone is one day
    ranged = [{"date_from": "2026-03-04", "date_to": "2026-03-06"}, {"date": "2026-03-02"}, *events]
    assert planning.asset_run_dates(ranged) == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-05",
        "2026-03-06",
    ]
    assert planning.asset_run_dates([{}, {"lake": "x"}, None]) == []
    with pytest.raises(
        ValueError, match=r"dmp_user_tags asset event extra \{'date_to': '03/05/2026'\}: date_from"
    ):
        planning.asset_run_dates([{"date_to": "03/05/2026"}])
    with pytest.raises(ValueError, match="date_to 2026-03-01 is before date_from 2026-03-04"):
        planning.asset_run_dates([{"date_from": "2026-03-04", "date_to": "2026-03-01"}])


def test_date_ranges_group_consecutive_days_into_one_job_each() -> None:
    days = ["2026-03-05", "2026-03-01", "2026-03-02", "2026-03-02", "2026-03-07", "2026-03-06"]
    assert planning.date_ranges(days) == [("2026-03-01", "2026-03-02"), ("2026-03-05", "2026-03-07")]
    assert planning.date_ranges([]) == []
    assert planning.date_args("2026-03-05", "2026-03-05") == ["--date", "2026-03-05"]
    assert planning.date_args("2026-03-05", "2026-03-07") == ["--from", "2026-03-05", "--to", "2026-03-07"]


STORE_REVISIT = "kind: store_revisit\nscope: {store_ids: [S001]}\nbehaviors: [view]\n"


def test_specs_channels_and_waves(tmp_path: Path) -> None:
    (tmp_path / "channels.yaml").write_text(
        "channels:\n  jd_ads: {type: ad}\n  coupon_center: {type: coupon}\n"
    )
    (tmp_path / "a.yaml").write_text(f"name: a\n{STORE_REVISIT}window_days: 30\nchannels: [jd_ads]\n")
    (tmp_path / "b.yml").write_text(
        "name: b\nkind: lookalike\nseed: {segment: a}\nexpansion: {size: 10}\nchannels: [coupon_center]\n"
    )
    (tmp_path / "c.yaml").write_text(
        f"name: c\n{STORE_REVISIT}window_days: 30\nattribution_days: 7\nexclude: {{segments: [b]}}\n"
    )
    (tmp_path / "d.yaml").write_text(
        "name: d\nkind: rule\nwhere: {tag: lifecycle_stage, eq: active}\nexclude: {segments: [ghost]}\n"
    )
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    specs = planning.list_specs(str(tmp_path))
    assert [Path(p).name for p in specs] == ["a.yaml", "b.yml", "broken.yaml", "c.yaml", "d.yaml"]
    infos = [planning.spec_info(p) for p in specs]
    assert [(i.name, i.refs, i.attribution_days, i.valid) for i in infos] == [
        ("a", [], 14, True),  # looks back 30 days, evaluated over the default attribution window
        ("b", ["a"], 14, True),
        ("broken", [], 14, False),  # unreadable: planned under its file name, its own task reports the error
        ("c", ["b"], 7, True),  # its attribution_days, not its window_days
        ("d", ["ghost"], 14, True),  # valid on its own; the folder's validation rejects the reference
    ]
    assert infos[1].channels == ["coupon_center"]
    waves = planning.spec_levels(infos)
    assert [[Path(p).name for p in w] for w in waves] == [
        ["a.yaml", "broken.yaml"],
        ["b.yml"],
        ["c.yaml"],
        ["d.yaml"],  # unknown reference: last, on its own
    ]
    assert planning.list_channels(str(tmp_path)) == ["coupon_center", "jd_ads"]
    with pytest.raises(FileNotFoundError, match="segments folder not found"):
        planning.list_specs(str(tmp_path / "missing"))


def test_invalid_spec_is_planned_leniently_with_the_references_it_names(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nkind: lookalike\nseed: a\nexclude: {segments: [b, 3]}\nchannels: [jd_ads, 1]\n")
    info = planning.spec_info(str(path))
    assert (info.name, info.refs, info.channels, info.valid) == ("x", ["a", "b"], ["jd_ads"], False)
    # an invalid spec keeps a usable attribution_days (its earlier packs are still evaluated over
    # it), never its look-back window_days; an unusable value gets the default
    path.write_text("name: x\nkind: rule\nattribution_days: 3\nwindow_days: 5\n")
    assert planning.spec_info(str(path)).attribution_days == 3
    for bad in ("0", "91", "'3'", "true"):
        path.write_text(f"name: x\nkind: rule\nattribution_days: {bad}\nwindow_days: 5\n")
        assert planning.spec_info(str(path)).attribution_days == planning.DEFAULT_ATTRIBUTION_DAYS, bad


def test_due_evaluations_only_closed_delivered_and_not_yet_evaluated() -> None:
    deliveries = [
        {"segment": "spring", "channel": "jd_ads", "run_date": date(2026, 3, 1), "status": "success"},
        {"segment": "spring", "channel": "coupon", "run_date": date(2026, 3, 1), "status": "success"},
        {"segment": "late", "channel": "jd_ads", "run_date": date(2026, 3, 2), "status": "success"},
        {"segment": "broken", "channel": "jd_ads", "run_date": date(2026, 2, 1), "status": "failed"},
        {"segment": "done", "channel": "jd_ads", "run_date": "2026-02-01", "status": "success"},
        {"segment": "week", "channel": "jd_ads", "run_date": "2026-03-08", "status": "success"},
    ]
    windows = {"spring": 14, "late": 14, "broken": 14, "done": 14, "week": 7}
    # spring: R=03-01, window 03-02..03-15 closes on 03-15; late closes 03-16; week closes 03-15.
    due = planning.due_evaluations(deliveries, windows, date(2026, 3, 15), evaluated=[("done", "2026-02-01")])
    assert due == [
        {"segment": "spring", "run_date": "2026-03-01", "window_days": "14"},
        {"segment": "week", "run_date": "2026-03-08", "window_days": "7"},
    ]
    assert planning.due_evaluations(deliveries, windows, date(2026, 3, 14)) == [
        {"segment": "done", "run_date": "2026-02-01", "window_days": "14"},
    ]


def test_evaluation_batches_one_per_run_date_with_the_packs_evaluated_before() -> None:
    due = [
        {"segment": "b", "run_date": "2026-03-02"},
        {"segment": "a", "run_date": "2026-03-02"},
        {"segment": "c", "run_date": "2026-03-01"},
    ]
    evaluated = [("old", "2026-03-02"), ("other_day", "2026-02-20")]
    assert planning.evaluation_batches(due, evaluated) == [
        {"run_date": "2026-03-01", "segments": "c"},
        {"run_date": "2026-03-02", "segments": "a,b,old"},
    ]
    assert planning.evaluation_batches([], evaluated) == []


def test_spark_job_command_line(tmp_path: Path) -> None:
    job = submit.SparkJob(
        step="tags",
        args=("--lake", "/l", "--date", "2026-03-01"),
        jobs_dir="/repo/jobs",
        packages="io.delta:delta-spark_4.2_2.13:4.4.0",
        python="/venv/bin/python",
    )
    cmd = job.command("spark://127.0.0.1:7077")
    assert cmd[:6] == [
        "spark-submit",
        "--master",
        "spark://127.0.0.1:7077",
        "--name",
        "dmp-tags",
        "--packages",
    ]
    assert "spark.pyspark.python=/venv/bin/python" in cmd
    assert cmd[-5:] == ["/repo/jobs/tags.py", "--lake", "/l", "--date", "2026-03-01"]


def test_reference_commands_load_identities_and_every_suppression_list(tmp_path: Path) -> None:
    assert submit.reference_commands(str(tmp_path), "/lake") == []
    (tmp_path / "identities").mkdir()
    (tmp_path / "identities" / "identities.jsonl").write_text("{}\n")
    (tmp_path / "suppression").mkdir()
    (tmp_path / "suppression" / "opt_out.csv").write_text("user_id\n")
    (tmp_path / "suppression" / "complaints.csv").write_text("user_id\n")
    ident, supp = tmp_path / "identities", tmp_path / "suppression"
    assert submit.reference_commands(str(tmp_path), "/lake") == [
        *["ingest-identities", "--source", str(ident), "--lake", "/lake", ":::"],
        *[
            "ingest-suppression",
            "--name",
            "complaints",
            "--source",
            str(supp / "complaints.csv"),
            "--lake",
            "/lake",
        ],
        ":::",
        *[
            "ingest-suppression",
            "--name",
            "opt_out",
            "--source",
            str(supp / "opt_out.csv"),
            "--lake",
            "/lake",
        ],
    ]
    job = submit.SparkJob(submit.CLI_STEP, ("ingest-identities",), "/repo/jobs", "pkg", "/py")
    # the chained-commands entry comes from the installed package, not from a checkout
    import dmp.cli

    assert job.application == str(Path(dmp.cli.__file__).parent / "__main__.py")
    assert Path(job.application).is_file()
