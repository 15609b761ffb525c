"""The overhead bench replays exactly the spark-submit jobs the DAGs ran: read them back from the logs."""

from __future__ import annotations

from pathlib import Path

from bench.bench_overhead import DAGS, _moved, submitted_commands

SUFFIX = " [airflow.task.hooks.dmp.orchestration.submit._Hook] loc=spark_submit.py:737"
PREFIX = "2026-12-04T19:13:22.734377Z [info     ] Spark-Submit cmd: spark-submit --master local[2] "
INGEST = (
    f"{PREFIX}--conf spark.driver.memory=2g --packages io.delta:delta-spark_4.2_2.13:4.4.0 --name dmp-ingest "
    "/repo/jobs/ingest.py --lake /o/scheduled/lakehouse --from 2026-09-01 --to 2026-09-16 --skip-checks"
)
CHAINED = (
    f"{PREFIX}--name dmp-dmp_cli /repo/dmp/cli/__main__.py ingest-identities --lake /o/scheduled/lakehouse "
    "::: ingest-consents --source '/o/scheduled/landing/my consents' --lake /o/scheduled/lakehouse"
)


def test_submitted_commands_in_dag_order_without_the_log_decoration(tmp_path: Path) -> None:
    logs = {
        "dmp_daily": f"noise\n{INGEST}{SUFFIX}\n{CHAINED}{SUFFIX}\n",
        "dmp_audiences": f"{PREFIX}--name dmp-build_packs /repo/jobs/build_packs.py --spec a.yaml{SUFFIX}\n",
        "dmp_uplift": "no spark job today\n",
    }
    assert tuple(logs) == DAGS
    for dag, text in logs.items():
        (tmp_path / f"{dag}.log").write_text(text)
    assert submitted_commands(tmp_path) == [
        (
            "/repo/jobs/ingest.py",
            [
                "--lake",
                "/o/scheduled/lakehouse",
                "--from",
                "2026-09-01",
                "--to",
                "2026-09-16",
                "--skip-checks",
            ],
        ),
        (
            "/repo/dmp/cli/__main__.py",
            [
                "ingest-identities",
                "--lake",
                "/o/scheduled/lakehouse",
                ":::",
                "ingest-consents",
                "--source",
                "/o/scheduled/landing/my consents",
                "--lake",
                "/o/scheduled/lakehouse",
            ],
        ),
        ("/repo/jobs/build_packs.py", ["--spec", "a.yaml"]),
    ]


def test_moved_points_the_lake_elsewhere_and_keeps_the_landing() -> None:
    moves = {"/o/scheduled/lakehouse": "/o/in_process/lakehouse"}
    args = [
        "--lake",
        "/o/scheduled/lakehouse",
        "--out",
        "/o/scheduled/lakehouse/reports",
        "--source",
        "/o/scheduled/landing",
    ]
    assert _moved(args, moves) == [
        "--lake",
        "/o/in_process/lakehouse",
        "--out",
        "/o/in_process/lakehouse/reports",
        "--source",
        "/o/scheduled/landing",
    ]
