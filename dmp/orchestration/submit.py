"""spark-submit from Airflow: one :class:`SparkJob` per step, submitted with the Spark provider's hook.

The Spark work happens in ``jobs/<step>.py`` (each runs the ``dmp`` CLI command of that step) and,
for the small reference loads, in chained ``dmp`` commands under one application
(:data:`CLI_STEP`). Nothing here imports pyspark: the command line is built from package metadata.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from dmp.contracts.packages import spark_packages
from dmp.orchestration.settings import setting

# Pseudo-step: chained ``dmp`` CLI commands in one Spark application (``python -m dmp.cli``).
CLI_STEP = "dmp_cli"
# Separates the commands of a CLI_STEP's arguments (``dmp.cli.run_commands`` splits on it).
SEPARATOR = ":::"


def cli_application() -> str:
    """``dmp/cli/__main__.py`` of the installed package (a checkout is not needed); dmp.cli is not imported."""
    return str(files("dmp") / "cli" / "__main__.py")


@dataclass(frozen=True)
class SparkJob:
    """One ``spark-submit jobs/<step>.py ARGS`` invocation, independent of who submits it."""

    step: str
    args: tuple[str, ...]
    jobs_dir: str
    packages: str
    python: str
    driver_memory: str = "2g"

    @property
    def application(self) -> str:
        if self.step == CLI_STEP:
            return cli_application()
        return str(Path(self.jobs_dir) / f"{self.step}.py")

    def conf(self) -> dict[str, str]:
        return {
            # The driver and the executors run the jobs with the interpreter that has dmp installed.
            "spark.pyspark.python": self.python,
            "spark.pyspark.driver.python": self.python,
            "spark.driver.memory": self.driver_memory,
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            # Spark's INFO chatter would be most of the Airflow task log; job output stays.
            "spark.log.level": "WARN",
        }

    def command(self, master: str, spark_submit: str = "spark-submit") -> list[str]:
        """The spark-submit command line (used by scripts and the standalone-cluster test)."""
        cmd = [spark_submit, "--master", master, "--name", f"dmp-{self.step}", "--packages", self.packages]
        for key, value in self.conf().items():
            cmd += ["--conf", f"{key}={value}"]
        return [*cmd, self.application, *self.args]


def spark_job(step: str, args: Iterable[str]) -> SparkJob:
    """A job with the current settings (Variables inside Airflow, else environment)."""
    return SparkJob(
        step=step,
        args=tuple(str(a) for a in args),
        jobs_dir=setting("jobs_dir"),
        packages=setting("spark_packages") or spark_packages(setting("s3a") == "1"),
        python=setting("pyspark_python"),
        driver_memory=setting("driver_memory"),
    )


def run_spark_job(step: str, args: Iterable[str], conn_id: str | None = None) -> None:
    """Submit ``jobs/<step>.py`` from inside an Airflow task with the Spark provider's hook.

    The master comes from the Airflow connection ``dmp_spark`` (host ``local[2]``,
    ``spark://host:7077``, ``yarn``, ``k8s://https://...``; extras ``deploy-mode``, ``queue``,
    ``namespace``). Without that connection we fall back to Variable ``dmp_spark_master`` /
    ``DMP_SPARK_MASTER`` / ``local[2]`` instead of the provider's own default (``yarn``), so the
    embedded demo needs no setup. A failed job raises with the tail of spark-submit's output.
    """
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.sdk import Connection

    conn_name = conn_id or setting("spark_conn_id")
    fallback_master = setting("spark_master")

    class _Hook(SparkSubmitHook):
        @classmethod
        def get_connection(cls, conn_id: str) -> Any:
            try:
                return super().get_connection(conn_id)
            except Exception:
                if conn_id != conn_name:
                    raise
                return Connection(conn_id=conn_id, conn_type="spark", host=fallback_master)

    job = spark_job(step, args)
    if not Path(job.application).is_file() and "://" not in job.application:
        raise FileNotFoundError(f"{job.application}: Spark job not found (jobs_dir={job.jobs_dir})")
    hook = _Hook(
        conn_id=conn_name,
        conf=job.conf(),
        packages=job.packages,
        name=f"dmp-{step}",
        application_args=list(job.args),
        spark_binary="spark-submit",
    )
    try:
        hook.submit(job.application)
    except BaseException:
        # On a timeout or a kill, don't leave the spark-submit process (and its JVM) behind.
        hook.on_kill()
        raise


def reference_commands(landing: str, lake: str) -> list[str]:
    """:data:`CLI_STEP` arguments loading the landing folder's identities and suppression lists.

    ``<landing>/identities/*.jsonl`` -> silver/identities; ``<landing>/suppression/<name>.csv`` ->
    suppression list ``<name>``. Empty when the landing folder has neither (local paths only).
    """
    root = Path(landing)
    commands: list[list[str]] = []
    identities = root / "identities"
    if identities.is_dir() and any(identities.glob("*.jsonl")):
        commands.append(["ingest-identities", "--source", str(identities), "--lake", lake])
    for csv in sorted((root / "suppression").glob("*.csv")) if (root / "suppression").is_dir() else []:
        commands.append(["ingest-suppression", "--name", csv.stem, "--source", str(csv), "--lake", lake])
    args: list[str] = []
    for command in commands:
        args += [*([SEPARATOR] if args else []), *command]
    return args
