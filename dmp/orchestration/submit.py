"""spark-submit from Airflow: one :class:`SparkJob` per step, submitted with the Spark provider's hook.

The Spark work happens in ``jobs/<step>.py`` (each runs the ``dmp`` CLI command of that step) and,
for the small reference loads, in chained ``dmp`` commands under one application
(:data:`CLI_STEP`). Nothing here imports pyspark: the command line is built from package metadata.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
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


class ConnectionLookupError(RuntimeError):
    """An Airflow connection could not be used (other than "not defined" where that has a
    default): the task fails, naming the connection, instead of running somewhere else."""


def lookup_connection(lookup: Callable[[str], Any], conn_id: str) -> Any | None:
    """``lookup(conn_id)``; None only when Airflow says the connection is not defined.

    Any other error (metadata database, API server, secrets backend) raises
    :class:`ConnectionLookupError` naming the id: one transient failure must not turn a cluster job
    into a local one. The original message is not repeated: a malformed connection URI would put
    its password into the task log.
    """
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return lookup(conn_id)
    except AirflowNotFoundException:
        return None
    except Exception as exc:
        raise ConnectionLookupError(
            f"Airflow connection {conn_id!r}: lookup failed ({type(exc).__name__}); not using a default"
        ) from exc


def spark_submit_hook(conn_name: str, fallback_master: str, **kwargs: Any) -> Any:
    """The provider's ``SparkSubmitHook`` whose connection ``conn_name`` falls back to
    ``fallback_master`` only when that connection is not defined (instead of the provider's own
    default, ``yarn``); any other lookup error fails the task (:func:`lookup_connection`)."""
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
    from airflow.sdk import Connection

    class _Hook(SparkSubmitHook):
        @classmethod
        def get_connection(cls, conn_id: str) -> Any:
            if conn_id != conn_name:
                return super().get_connection(conn_id)
            conn = lookup_connection(super().get_connection, conn_id)
            if conn is None:
                print(f"Airflow connection {conn_id!r} is not defined: submitting to {fallback_master}")
                return Connection(conn_id=conn_id, conn_type="spark", host=fallback_master)
            return conn

    return _Hook(conn_id=conn_name, **kwargs)


def connection_env_var(conn_id: str) -> str:
    """The variable Airflow's environment secrets backend reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def driver_environment(
    aws_conn_id: str,
    deploy_mode: str | None,
    lookup: Callable[[str], Any],
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Variables the spark-submit process (and so a client-mode driver) needs for the S3 connection.

    The driver is a child of spark-submit, not an Airflow task: in Airflow 3 it has no metadata
    database or API-server access, so it sees a connection only through the environment or a
    secrets backend (docs/credentials.md). The task resolves ``aws_conn_id`` (which may be a
    connection made with ``airflow connections add``) and hands it over as
    ``AIRFLOW_CONN_<ID>`` (JSON) plus ``DMP_AWS_CONN_ID``, in the process environment only: never
    on the command line, which the hook logs. In cluster deploy mode the driver starts on the
    cluster, out of reach of this environment, so that fails with what to do instead.
    """
    environ = os.environ if environ is None else environ
    if not aws_conn_id:
        return {}
    var = connection_env_var(aws_conn_id)
    if deploy_mode == "cluster":
        raise ConnectionLookupError(
            f"dmp_aws_conn_id={aws_conn_id!r} with deploy-mode cluster: the Spark driver runs on the cluster, "
            "where this Airflow connection is not visible; give the driver S3 credentials there (instance "
            f"role, or {var} / DMP_AWS_CONN_ID from a secret, e.g. spark.kubernetes.driver.secretKeyRef.*) "
            "and leave dmp_aws_conn_id empty (docs/credentials.md)"
        )
    env = {"DMP_AWS_CONN_ID": aws_conn_id}
    if environ.get(var):  # already an environment connection: the driver inherits it
        return env
    conn = lookup_connection(lookup, aws_conn_id)
    if conn is None:
        raise ConnectionLookupError(
            f"dmp_aws_conn_id={aws_conn_id!r}: Airflow connection {aws_conn_id!r} is not defined "
            "(define it, or leave dmp_aws_conn_id empty to use the standard AWS chain)"
        )
    env[var] = conn.as_json()
    return env


def run_spark_job(step: str, args: Iterable[str], conn_id: str | None = None) -> None:
    """Submit ``jobs/<step>.py`` from inside an Airflow task with the Spark provider's hook.

    The master comes from the Airflow connection ``dmp_spark`` (host ``local[2]``,
    ``spark://host:7077``, ``yarn``, ``k8s://https://...``; extras ``deploy-mode``, ``queue``,
    ``namespace``). Only when that connection is not defined do we fall back to Variable
    ``dmp_spark_master`` / ``DMP_SPARK_MASTER`` / ``local[2]`` (not the provider's own default,
    ``yarn``), so the embedded demo needs no setup; any other lookup error fails the task. The S3
    connection ``dmp_aws_conn_id`` reaches the driver through :func:`driver_environment`. A failed
    job raises with the tail of spark-submit's output.
    """
    from airflow.sdk import BaseHook

    job = spark_job(step, args)
    if not Path(job.application).is_file() and "://" not in job.application:
        raise FileNotFoundError(f"{job.application}: Spark job not found (jobs_dir={job.jobs_dir})")
    hook = spark_submit_hook(
        conn_id or setting("spark_conn_id"),
        setting("spark_master"),
        conf=job.conf(),
        packages=job.packages,
        name=f"dmp-{step}",
        application_args=list(job.args),
        spark_binary="spark-submit",
    )
    deploy_mode = getattr(hook, "_connection", {}).get("deploy_mode")
    extra_env = driver_environment(setting("aws_conn_id"), deploy_mode, BaseHook.get_connection)
    try:
        hook.submit(job.application, **({"env": {**os.environ, **extra_env}} if extra_env else {}))
    except BaseException:
        # On a timeout or a kill, don't leave the spark-submit process (and its JVM) behind.
        hook.on_kill()
        raise


def reference_commands(landing: str, lake: str) -> list[str]:
    """:data:`CLI_STEP` arguments loading the landing folder's identities and suppression lists.

    ``<landing>/identities/*.jsonl`` -> silver/identities; ``<landing>/suppression/<name>.csv`` ->
    suppression list ``<name>``; ``<landing>/consents/*.jsonl`` -> silver/consents. Empty when the
    landing folder has none of them (local paths only).
    """
    root = Path(landing)
    commands: list[list[str]] = []
    identities = root / "identities"
    if identities.is_dir() and any(identities.glob("*.jsonl")):
        commands.append(["ingest-identities", "--source", str(identities), "--lake", lake])
    for csv in sorted((root / "suppression").glob("*.csv")) if (root / "suppression").is_dir() else []:
        commands.append(["ingest-suppression", "--name", csv.stem, "--source", str(csv), "--lake", lake])
    consents = root / "consents"
    if consents.is_dir() and any(consents.glob("*.jsonl")):
        commands.append(["ingest-consents", "--source", str(consents), "--lake", lake])
    args: list[str] = []
    for command in commands:
        args += [*([SEPARATOR] if args else []), *command]
    return args
