"""The cluster path: the daily steps of one date on a Spark standalone cluster (master + worker on
127.0.0.1, started from the pip pyspark's spark-class by infra/standalone.sh) give exactly the
tables the same jobs give on local[2]."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmp.contracts.packages import spark_packages
from dmp.orchestration.deltaread import delta_count
from dmp.orchestration.submit import SparkJob

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TABLES = ["bronze/events", "silver/user_daily", "gold/user_tags"]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    state = tmp_path_factory.mktemp("standalone")
    script = REPO_ROOT / "infra" / "standalone.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(script), "start", str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    try:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        info = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        yield info
    finally:
        subprocess.run(["bash", str(script), "stop", str(state)], env=env, timeout=120, check=False)


def _submit(master: str, step: str, args: list[str], env: dict[str, str]) -> None:
    job = SparkJob(
        step=step,
        args=tuple(args),
        jobs_dir=str(REPO_ROOT / "jobs"),
        packages=spark_packages(),
        python=sys.executable,
        driver_memory="1g",
    )
    cmd = job.command(master, spark_submit=str(BIN / "spark-submit"))
    # One executor core / 1g on the worker, so the app fits the small worker.
    cmd[1:1] = ["--conf", "spark.executor.memory=1g", "--conf", "spark.cores.max=1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, f"{step} on {master} failed:\n{proc.stderr[-4000:]}"


def _normalised(spark, lake: str, table: str) -> list[str]:  # noqa: ANN001 - SparkSession fixture
    from pyspark.sql import functions as F
    from pyspark.sql.types import DoubleType

    df = spark.read.format("delta").load(f"{lake}/{table}")
    # Ingestion time differs between the two runs by construction; doubles are compared rounded
    # because partial sums may be added in a different order on 1 core than on 2.
    cols = [
        F.round(F.col(f.name), 6).alias(f.name) if isinstance(f.dataType, DoubleType) else F.col(f.name)
        for f in df.schema.fields
        if not f.name.endswith("_at") and f.name != "run_id"
    ]
    return sorted(
        json.dumps(r.asDict(recursive=True), default=str, sort_keys=True) for r in df.select(cols).collect()
    )


def test_daily_steps_on_standalone_equal_local(cluster: dict[str, str], tmp_path: Path, spark) -> None:  # noqa: ANN001
    landing = tmp_path / "landing"
    subprocess.run(
        [
            str(BIN / "dmp"),
            "generate",
            "--out",
            str(landing),
            "--users",
            "150",
            "--days",
            "1",
            "--seed",
            "3",
            "--no-campaign",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    day = json.loads((landing / "truth" / "summary.json").read_text())["end"]
    # PYSPARK_PYTHON: the venv's spark-submit script finds its SPARK_HOME with that interpreter
    env = {**os.environ, "DMP_SHUFFLE_PARTITIONS": "2", "PYSPARK_PYTHON": sys.executable}
    lakes = {"cluster": str(tmp_path / "lake_cluster"), "local": str(tmp_path / "lake_local")}
    # The cluster side: the three jobs, each its own application, exactly as the DAG submits them.
    lake = lakes["cluster"]
    _submit(
        cluster["MASTER"],
        "ingest",
        ["--lake", lake, "--source", str(landing), "--date", day, "--skip-checks"],
        env,
    )
    _submit(cluster["MASTER"], "aggregate", ["--lake", lake, "--date", day, "--skip-checks"], env)
    _submit(cluster["MASTER"], "tags", ["--lake", lake, "--date", day, "--skip-checks"], env)
    # The reference side: the same library calls the jobs make, in this process's local[2] session
    # (three spark-submits fewer: a JVM start each).
    from dmp.contracts.dates import parse_date
    from dmp.contracts.tag_config import TagConfig
    from dmp.steps.aggregate import aggregate_day
    from dmp.steps.ingest import run_ingest
    from dmp.steps.tags import run_tags

    as_of = parse_date(day)
    run_ingest(spark, lakes["local"], str(landing), "jsonl", [as_of], skip_checks=True)
    aggregate_day(spark, lakes["local"], as_of, skip_checks=True)
    run_tags(spark, lakes["local"], as_of, TagConfig(), skip_checks=True)

    # The three applications really ran on the cluster (the master lists them as completed).
    with urllib.request.urlopen(f"{cluster['UI']}/json/", timeout=10) as resp:
        master_state = json.load(resp)
    names = sorted(app["name"] for app in master_state["completedapps"])
    assert names == ["dmp-aggregate", "dmp-ingest", "dmp-tags"], names

    for table in TABLES:
        on_cluster = _normalised(spark, lakes["cluster"], table)
        local = _normalised(spark, lakes["local"], table)
        assert len(on_cluster) > 0, table
        assert on_cluster == local, table
    events = delta_count(f"{lakes['cluster']}/bronze/events")
    assert events == len(_normalised(spark, lakes["local"], "bronze/events"))


def test_stitching_on_standalone_gives_the_known_components(
    cluster: dict[str, str], tmp_path: Path, spark
) -> None:  # noqa: ANN001
    """Issue 18's hand-made identity fixture (tests/steps/test_stitch.py: a chain a–phone–b–oaid–c,
    a hub phone over the cap, an all-zero IDFA, then d merging into a..c on day 3) stitched by the
    ``stitch_identities`` job on the cluster: the known components, violations and stable ids, and
    the same three tables as the step on local[2]."""
    from dmp.contracts import tables
    from dmp.contracts.identity_guards import (
        RULE_BLOCKED_VALUE,
        RULE_IDENTIFIER_CAP,
        ZERO_DEVICE_ID,
        IdentityGuards,
    )
    from dmp.steps.stitch import run_stitch
    from dmp.transforms.stitching import person_id_for, value_hash_for
    from tests.steps.test_stitch import D1, D3, HUB, OUTPUTS, ROWS, _persons, _write_identities

    env = {**os.environ, "DMP_SHUFFLE_PARTITIONS": "2", "PYSPARK_PYTHON": sys.executable}
    lakes = {"cluster": str(tmp_path / "lake_cluster"), "local": str(tmp_path / "lake_local")}
    day3_rows = [*ROWS[:-10], ("d", "email", "x@qq.com"), ("c", "email", " X@QQ.com")]
    for day, rows in ((D1, ROWS), (D3, day3_rows)):
        for lake in lakes.values():
            _write_identities(spark, lake, rows)
        _submit(cluster["MASTER"], "stitch_identities", ["--lake", lakes["cluster"], "--date", str(day)], env)
        run_stitch(spark, lakes["local"], day, IdentityGuards())
        for table in OUTPUTS:
            assert _normalised(spark, lakes["cluster"], table) == _normalised(spark, lakes["local"], table), (
                table
            )
        if day == D1:
            persons = _persons(spark, lakes["cluster"])
            abc = person_id_for("a")
            assert {u: persons[u][0] for u in "abcde"} == {
                "a": abc, "b": abc, "c": abc, "d": person_id_for("d"), "e": person_id_for("e")
            }  # fmt: skip
            violations = {
                tuple(r)
                for r in spark.read.format("delta")
                .load(f"{lakes['cluster']}/{tables.IDENTITY_VIOLATIONS}")
                .collect()
            }
            assert violations == {
                (D1, "phone", value_hash_for("+8613900000002"), 25, RULE_IDENTIFIER_CAP),
                (D1, "idfa", value_hash_for(ZERO_DEVICE_ID), 1, RULE_BLOCKED_VALUE),
            }
    persons = _persons(spark, lakes["cluster"])  # day 3: d joined a..c and keeps a's id, first seen D1
    assert {persons[u][0] for u in "abcd"} == {person_id_for("a")} and persons["d"][1] == D1
    assert {persons[u] for u in HUB[:15]} == {(person_id_for("h00"), D1)}  # the hub fell under the cap
