"""The DAGs parse cleanly and cheaply, are wired as specified, and their light helpers are right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import pytest

from dmp import orchestration as orch

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
    assert sorted(daily["tasks"]) == sorted([*order, "ingest_reference"])
    for before, after in zip(order[:-2], order[1:-1], strict=True):
        assert daily["tasks"][after]["upstream"] == [before]
    assert daily["tasks"]["ingest"]["upstream"] == []
    assert daily["tasks"]["ingest_reference"]["upstream"] == []
    assert daily["tasks"]["validate_user_tags"]["upstream"] == ["ingest_reference", "tags"]
    assert daily["tasks"]["validate_user_tags"]["outlets"] == ["dmp_user_tags"]
    assert {"date_from", "date_to", "source"} <= set(daily["params"])


def test_audiences_maps_specs_and_channels_and_tolerates_failed_specs(bag: dict) -> None:
    aud = bag["dags"]["dmp_audiences"]
    assert aud["asset_schedule"] == ["dmp_user_tags"]
    t = aud["tasks"]
    assert t["build_pack"]["mapped"] and t["build_dependent_pack"]["mapped"] and t["deliver"]["mapped"]
    assert t["build_pack"]["upstream"] == ["list_specs", "run_date"]
    assert "build_pack" in t["build_dependent_pack"]["upstream"]
    assert t["plan_deliveries"]["upstream"] == ["build_dependent_pack", "build_pack"]
    assert t["deliver"]["upstream"] == ["plan_deliveries", "run_date"]
    # A failed spec must not stop the second wave, the delivery planning or the final audit.
    for task_id in ("build_dependent_pack", "plan_deliveries", "audit"):
        assert t[task_id]["trigger_rule"] == "all_done", task_id
    leaves = [tid for tid in t if not any(tid in o["upstream"] for o in t.values())]
    assert leaves == ["audit"]


def test_uplift_maps_evaluations(bag: dict) -> None:
    up = bag["dags"]["dmp_uplift"]
    assert up["tasks"]["evaluate"]["mapped"]
    assert up["tasks"]["evaluate"]["upstream"] == ["find_due"]
    assert {"as_of", "reevaluate"} <= set(up["params"])


# ----------------------------------------------------------------------------- light helpers


def test_delta_package_matches_the_spark_module_without_importing_pyspark() -> None:
    from dmp.spark import session as spark

    assert orch.delta_package() == spark.delta_package()
    assert orch.hadoop_aws_package() == spark.hadoop_aws_package()
    assert orch.spark_packages(s3a=True) == f"{spark.delta_package()},{spark.hadoop_aws_package()}"


def test_run_dates_from_params_or_logical_date() -> None:
    assert orch.run_dates({}, datetime(2026, 3, 5, 0, 0)) == ("2026-03-05", "2026-03-05")
    assert orch.run_dates({"date_from": "2026-03-01", "date_to": "2026-03-04"}, None) == (
        "2026-03-01",
        "2026-03-04",
    )
    assert orch.run_dates({"date_from": "2026-03-02", "date_to": None}, date(2026, 3, 9)) == (
        "2026-03-02",
        "2026-03-02",
    )
    with pytest.raises(ValueError, match="date_to 2026-03-01 is before date_from 2026-03-04"):
        orch.run_dates({"date_from": "2026-03-04", "date_to": "2026-03-01"}, None)
    with pytest.raises(ValueError, match="no logical date"):
        orch.run_dates({}, None)
    assert orch.asset_run_date(
        [{"date_from": "2026-03-01", "date_to": "2026-03-03"}, {"date": "2026-03-05"}]
    ) == ("2026-03-05")
    assert orch.asset_run_date([{}, {"lake": "x"}]) is None


def test_specs_channels_and_waves(tmp_path: Path) -> None:
    (tmp_path / "channels.yaml").write_text(
        "channels:\n  jd_ads: {type: ad}\n  coupon_center: {type: coupon}\n"
    )
    (tmp_path / "a.yaml").write_text("name: a\nwindow_days: 14\nchannels: [jd_ads]\n")
    (tmp_path / "b.yml").write_text(
        "name: b\nkind: lookalike\nseed: {segment: a}\nchannels: [coupon_center]\n"
    )
    (tmp_path / "c.yaml").write_text("name: c\nexclude: {segments: [b]}\nattribution_days: 7\n")
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    (tmp_path / "notes.txt").write_text("not a spec")
    specs = orch.list_specs(str(tmp_path))
    assert [Path(p).name for p in specs] == ["a.yaml", "b.yml", "broken.yaml", "c.yaml"]
    infos = [orch.spec_info(p) for p in specs]
    assert [(i["name"], i["refs"], i["attribution_days"]) for i in infos] == [
        ("a", [], 14),
        ("b", ["a"], 14),
        ("broken", [], 14),  # unreadable: planned under its file name, its own task reports the error
        ("c", ["b"], 7),
    ]
    waves = orch.spec_levels(infos)
    assert [[Path(p).name for p in w] for w in waves] == [["a.yaml", "broken.yaml"], ["b.yml"], ["c.yaml"]]
    assert orch.list_channels(str(tmp_path)) == ["coupon_center", "jd_ads"]
    with pytest.raises(FileNotFoundError, match="segments folder not found"):
        orch.list_specs(str(tmp_path / "missing"))


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
    due = orch.due_evaluations(deliveries, windows, date(2026, 3, 15), evaluated=[("done", "2026-02-01")])
    assert due == [
        {"segment": "spring", "run_date": "2026-03-01", "window_days": "14"},
        {"segment": "week", "run_date": "2026-03-08", "window_days": "7"},
    ]
    assert orch.due_evaluations(deliveries, windows, date(2026, 3, 14)) == [
        {"segment": "done", "run_date": "2026-02-01", "window_days": "14"},
    ]


def _write_parquet(path: Path, rows: list[dict]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_delta_log_reader_replays_adds_and_removes(tmp_path: Path) -> None:
    """A hand-written Delta log: commit 1 replaces one partition's file, commit 2 adds a file."""
    table = tmp_path / "ops" / "deliveries"
    log = table / "_delta_log"
    log.mkdir(parents=True)
    _write_parquet(table / "run_date=2026-03-01" / "p0.parquet", [{"segment": "a", "rows": 3}])
    _write_parquet(table / "run_date=2026-03-01" / "p1.parquet", [{"segment": "a", "rows": 4}])
    _write_parquet(
        table / "run_date=2026-03-02" / "p2.parquet",
        [{"segment": "b", "rows": 5}, {"segment": "c", "rows": 6}],
    )

    def add(path: str, day: str, stats: bool = True) -> str:
        body = {"path": path, "partitionValues": {"run_date": day}, "size": 1, "dataChange": True}
        if stats:
            body["stats"] = json.dumps({"numRecords": 2 if "p2" in path else 1})
        return json.dumps({"add": body})

    (log / f"{0:020d}.json").write_text(
        json.dumps({"protocol": {"minReaderVersion": 1}})
        + "\n"
        + add("run_date=2026-03-01/p0.parquet", "2026-03-01")
    )
    (log / f"{1:020d}.json").write_text(
        json.dumps({"remove": {"path": "run_date=2026-03-01/p0.parquet"}})
        + "\n"
        + add("run_date=2026-03-01/p1.parquet", "2026-03-01")
    )
    (log / f"{2:020d}.json").write_text(add("run_date=2026-03-02/p2.parquet", "2026-03-02", stats=False))

    rows = sorted(orch.delta_rows(str(table)), key=lambda r: r["segment"])
    assert rows == [
        {"segment": "a", "rows": 4, "run_date": "2026-03-01"},
        {"segment": "b", "rows": 5, "run_date": "2026-03-02"},
        {"segment": "c", "rows": 6, "run_date": "2026-03-02"},
    ]
    assert orch.delta_count(str(table)) == 3  # 1 from stats + 2 from the Parquet footer
    assert orch.delta_count(str(table), {"run_date": "2026-03-02"}) == 2
    assert orch.delta_partition_values(str(table), "run_date") == ["2026-03-01", "2026-03-02"]
    assert orch.delta_rows(str(tmp_path / "missing")) == []
    assert orch.delta_count(str(tmp_path / "missing")) == 0


def test_spark_job_command_line(tmp_path: Path) -> None:
    job = orch.SparkJob(
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
    assert orch.reference_commands(str(tmp_path), "/lake") == []
    (tmp_path / "identities").mkdir()
    (tmp_path / "identities" / "identities.jsonl").write_text("{}\n")
    (tmp_path / "suppression").mkdir()
    (tmp_path / "suppression" / "opt_out.csv").write_text("user_id\n")
    (tmp_path / "suppression" / "complaints.csv").write_text("user_id\n")
    ident, supp = tmp_path / "identities", tmp_path / "suppression"
    assert orch.reference_commands(str(tmp_path), "/lake") == [
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
    job = orch.SparkJob("dmp_cli", ("ingest-identities",), "/repo/jobs", "pkg", "/py")
    assert job.application == str(REPO_ROOT / "infra" / "spark" / "dmp_cli.py")
