"""Every ``DMP_*`` environment setting in one table: its variable, its default and what it is for.

The Spark session, the quality gates and the Airflow side all read their knobs through
:func:`env_setting`, so a setting's name and default are written once. Inside Airflow,
``dmp.orchestration.settings.setting`` puts the Airflow Variable ``dmp_<name>`` in front of this.

Defaults that are folders (lake, landing, segments, jobs) are the embedded demo's: folders of the
source checkout when dmp runs from one, else folders of the working directory (an installed
wheel has no checkout; production sets the variables).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def source_checkout() -> Path | None:
    """The repository folder when the package runs from a source checkout (editable install), else None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "setup.cfg").is_file() and (root / "dags").is_dir() else None


def _beside_code(folder: str) -> Callable[[], str]:
    def default() -> str:
        root = source_checkout()
        return str(root / folder) if root else os.path.abspath(folder)

    return default


@dataclass(frozen=True)
class Setting:
    env: str
    default: str | Callable[[], str]
    help: str
    # A local path: made absolute, so a task's working directory never changes its meaning.
    path: bool = False


SETTINGS: dict[str, Setting] = {
    # Folders and inputs of the pipeline (Airflow Variables dmp_<name> override these).
    "lake": Setting("DMP_LAKE", _beside_code("lakehouse"), "lake root, local path or s3a://", path=True),
    "landing": Setting("DMP_LANDING", _beside_code("landing"), "folder the daily ingest reads", path=True),
    "landing_format": Setting("DMP_LANDING_FORMAT", "jsonl", "jsonl | parquet | taobao"),
    "segments": Setting("DMP_SEGMENTS", _beside_code("segments"), "segment specs + channels.yaml", path=True),
    "jobs_dir": Setting(
        "DMP_JOBS_DIR", _beside_code("jobs"), "folder of jobs/*.py for spark-submit", path=True
    ),
    # spark-submit from Airflow
    "spark_master": Setting(
        "DMP_SPARK_MASTER", "local[2]", "master of a session; of spark-submit without dmp_spark"
    ),
    "spark_conn_id": Setting("DMP_SPARK_CONN_ID", "dmp_spark", "Airflow connection naming the Spark master"),
    "spark_packages": Setting("DMP_SPARK_PACKAGES", "", "--packages instead of the derived Delta/hadoop-aws"),
    "pyspark_python": Setting("PYSPARK_PYTHON", lambda: sys.executable, "Python of the driver and executors"),
    # Submitted jobs share the Airflow worker's machine with other tasks: smaller than a CLI session.
    "driver_memory": Setting("DMP_DRIVER_MEMORY", "2g", "spark.driver.memory of a submitted job"),
    "s3a": Setting("DMP_S3A", "0", "1: add hadoop-aws for an s3a:// lake"),
    "airflow_retries": Setting("DMP_AIRFLOW_RETRIES", "2", "retries of every DAG task (read at parse time)"),
    "airflow_retry_delay": Setting("DMP_AIRFLOW_RETRY_DELAY", "60", "first retry delay in seconds"),
    # The in-process session (CLI, tests, the demo)
    "local_driver_memory": Setting("DMP_DRIVER_MEMORY", "4g", "spark.driver.memory of an in-process session"),
    "shuffle_partitions": Setting("DMP_SHUFFLE_PARTITIONS", "8", "spark.sql.shuffle.partitions"),
    "spark_ui": Setting("DMP_SPARK_UI", "false", "spark.ui.enabled"),
    "spark_log_level": Setting("DMP_SPARK_LOG_LEVEL", "ERROR", "log level of an in-process session"),
    "progress": Setting("DMP_PROGRESS", "auto", "auto | bar | lines | off (dmp.spark.progress)"),
    # The parallel collector made a 20M-event aggregate ~15% faster than G1 on 2 cores (bench/README.md).
    "driver_java_options": Setting("DMP_DRIVER_JAVA_OPTIONS", "-XX:+UseParallelGC", "driver JVM options"),
    # Deliveries to s3:// (botocore's standard retries; path-style works with AWS and MinIO alike)
    "s3_max_attempts": Setting("DMP_S3_MAX_ATTEMPTS", "5", "attempts per S3 request"),
    "s3_connect_timeout": Setting("DMP_S3_CONNECT_TIMEOUT", "5", "seconds"),
    "s3_read_timeout": Setting("DMP_S3_READ_TIMEOUT", "60", "seconds"),
    "s3_addressing_style": Setting("DMP_S3_ADDRESSING_STYLE", "path", "path | virtual | auto"),
    "aws_conn_id": Setting(
        "DMP_AWS_CONN_ID", "", "Airflow connection with S3 credentials (else the AWS chain)"
    ),
    # Quality gates
    "expectations_dir": Setting(
        "DMP_EXPECTATIONS_DIR", "", "GX suites instead of the packaged ones", path=True
    ),
    # The CLI: where a command that fails unexpectedly writes its full traceback (one line on stderr)
    "log_dir": Setting(
        "DMP_LOG_DIR",
        lambda: os.path.join(tempfile.gettempdir(), "dmp-logs"),
        "folder for the tracebacks of commands that crash",
        path=True,
    ),
}


def env_setting(name: str) -> str:
    """The environment variable of setting ``name`` when set and non-empty, else its default."""
    spec = SETTINGS[name]
    value = os.environ.get(spec.env) or (spec.default() if callable(spec.default) else spec.default)
    if spec.path and value and "://" not in value:
        value = os.path.abspath(value)
    return value
