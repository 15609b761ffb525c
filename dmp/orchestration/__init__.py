"""Light helpers for the Airflow DAGs and the ops commands (``dmp summary``).

Airflow parses DAG files constantly, so nothing here imports pyspark, Great Expectations or
scikit-learn, and nothing does I/O at import time. The Spark work happens in ``jobs/*.py``,
submitted with ``spark-submit`` (:func:`run_spark_job`); the DAGs' own light tasks (which specs
to build, which deliveries are due for evaluation) read small Delta tables straight from their
transaction log with pyarrow (:func:`delta_rows`), which costs milliseconds instead of a JVM.

Settings (lake, landing folder, segments folder, Spark master, ...) come from Airflow Variables
``dmp_<name>`` when running inside Airflow, else from the environment (``DMP_<NAME>``), else from
the embedded defaults (local Spark, folders next to the repository).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from dmp.contracts.status import delivered_keys

REPO_ROOT = Path(__file__).resolve().parents[2]
SCALA_VERSION = "2.13"
SPARK_CONN_ID = "dmp_spark"
# Pseudo-step: run ``dmp`` CLI commands under spark-submit (see infra/spark/dmp_cli.py).
CLI_STEP = "dmp_cli"
CLI_APPLICATION = REPO_ROOT / "infra" / "spark" / "dmp_cli.py"
DEFAULT_MASTER = "local[2]"
CHANNELS_FILE = "channels.yaml"
# Files in the segments folder that are not segment specs.
NON_SPEC_FILES = {CHANNELS_FILE, "channels.yml"}
DEFAULT_ATTRIBUTION_DAYS = 14
# The Airflow asset dmp_daily updates when a tag snapshot passed its gate (dmp_audiences runs on it).
USER_TAGS_ASSET = {"name": "dmp_user_tags", "uri": "dmp://lake/gold/user_tags"}

# name -> (environment variable, embedded default)
_SETTINGS: dict[str, tuple[str, str]] = {
    "lake": ("DMP_LAKE", str(REPO_ROOT / "lakehouse")),
    "landing": ("DMP_LANDING", str(REPO_ROOT / "landing")),
    "landing_format": ("DMP_LANDING_FORMAT", "jsonl"),
    "segments": ("DMP_SEGMENTS", str(REPO_ROOT / "segments")),
    "jobs_dir": ("DMP_JOBS_DIR", str(REPO_ROOT / "jobs")),
    "spark_master": ("DMP_SPARK_MASTER", DEFAULT_MASTER),
    "pyspark_python": ("PYSPARK_PYTHON", sys.executable),
    "driver_memory": ("DMP_DRIVER_MEMORY", "2g"),
    "s3a": ("DMP_S3A", "0"),
}


def env_setting(name: str) -> str:
    """A setting from the environment, else the embedded default (no Airflow involved)."""
    env, default = _SETTINGS[name]
    value = os.environ.get(env) or default
    if name in {"lake", "landing", "segments", "jobs_dir"} and "://" not in value:
        value = os.path.abspath(value)
    return value


def setting(name: str) -> str:
    """Airflow Variable ``dmp_<name>`` if set, else :func:`env_setting`. Call it inside tasks only."""
    default = env_setting(name)
    try:
        from airflow.sdk import Variable

        value = Variable.get(f"dmp_{name}", default=None)
    except Exception:  # outside a task (CLI, tests): no Variable backend to ask
        value = None
    return str(value) if value not in (None, "") else default


# ---------------------------------------------------------------- Spark packages (no pyspark import)


def delta_package() -> str:
    """Same coordinate as ``dmp.spark.session.delta_package()``, from package metadata only (parse-time safe)."""
    spark_mm = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_{SCALA_VERSION}:{version('delta-spark')}"


def hadoop_aws_package() -> str:
    """Same coordinate as ``dmp.spark.session.hadoop_aws_package()``, found without importing pyspark."""
    spec = find_spec("pyspark")
    hadoop_version = "3.4.1"
    if spec and spec.submodule_search_locations:
        jars = Path(next(iter(spec.submodule_search_locations))) / "jars"
        client = next(jars.glob("hadoop-client-api-*.jar"), None)
        if client:
            hadoop_version = client.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    return f"org.apache.hadoop:hadoop-aws:{hadoop_version}"


def spark_packages(s3a: bool = False) -> str:
    packages = [delta_package()]
    if s3a:
        packages.append(hadoop_aws_package())
    return ",".join(packages)


def spark_home() -> str:
    """The pip pyspark's folder: it holds bin/spark-submit, bin/spark-class and the jars."""
    spec = find_spec("pyspark")
    if not spec or not spec.submodule_search_locations:
        raise RuntimeError("pyspark is not installed in this Python environment")
    return str(Path(next(iter(spec.submodule_search_locations))))


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
            return str(CLI_APPLICATION)
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
        packages=os.environ.get("DMP_SPARK_PACKAGES") or spark_packages(setting("s3a") == "1"),
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

    conn_name = conn_id or os.environ.get("DMP_SPARK_CONN_ID") or SPARK_CONN_ID
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
    """``dmp_cli.py`` arguments loading the landing folder's identities and suppression lists.

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
        args += [*([":::"] if args else []), *command]
    return args


# ------------------------------------------------------------------------------- run dates


def run_dates(params: Mapping[str, Any], logical_date: datetime | date | None) -> tuple[str, str]:
    """(from, to) for a run: ``params.date_from/date_to`` (one run over a range) else the logical date."""
    start = params.get("date_from") or None
    end = params.get("date_to") or None
    day = _as_date(logical_date) if logical_date is not None else None
    if start is None and end is None:
        if day is None:
            raise ValueError("no logical date and no date_from/date_to params: give a date to process")
        return day.isoformat(), day.isoformat()
    start = start or end
    end = end or start
    if date.fromisoformat(end) < date.fromisoformat(start):
        raise ValueError(f"params: date_to {end} is before date_from {start}")
    return date.fromisoformat(start).isoformat(), date.fromisoformat(end).isoformat()


def asset_run_date(events: Iterable[Mapping[str, Any]]) -> str | None:
    """Latest ``date_to`` carried by the triggering asset events' extra (None if there is none)."""
    dates = [
        str(e.get("date_to") or e.get("date")) for e in events if e and (e.get("date_to") or e.get("date"))
    ]
    return max(dates) if dates else None


def _as_date(value: datetime | date | str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


# ------------------------------------------------------------------------------- specs, channels


def list_specs(segments_dir: str) -> list[str]:
    """Every segment spec file in the folder (sorted), valid or not: each gets its own task."""
    root = Path(segments_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{segments_dir}: segments folder not found")
    return [
        str(p)
        for p in sorted(root.iterdir())
        if p.is_file() and p.suffix in {".yaml", ".yml"} and p.name not in NON_SPEC_FILES
    ]


def _load_yaml(path: str) -> Any:
    import yaml

    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def spec_info(path: str) -> dict[str, Any]:
    """Name, channels, references and attribution window of a spec, read leniently (no validation).

    The DAG uses this only for planning (which channel tasks, which order, when a window closes);
    validation and its error messages belong to ``dmp segments validate`` / ``build_packs.py``.
    """
    try:
        raw = _load_yaml(path)
    except Exception:
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    name = raw.get("name") if isinstance(raw.get("name"), str) else Path(path).stem
    channels = [c for c in raw.get("channels") or [] if isinstance(c, str)]
    refs: set[str] = set()
    exclude = raw.get("exclude") if isinstance(raw.get("exclude"), dict) else {}
    refs.update(s for s in exclude.get("segments") or [] if isinstance(s, str))
    seed = raw.get("seed")
    if isinstance(seed, str):
        refs.add(seed)
    elif isinstance(seed, dict) and isinstance(seed.get("segment"), str):
        refs.add(seed["segment"])
    return {
        "path": path,
        "name": name,
        "channels": channels,
        "refs": sorted(refs),
        "attribution_days": attribution_days(raw),
    }


def attribution_days(raw: Mapping[str, Any]) -> int:
    """Days after the run date during which outcomes count: ``attribution_days`` else ``window_days``."""
    for key in ("attribution_days", "attribution_window_days", "window_days"):
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return DEFAULT_ATTRIBUTION_DAYS


def spec_levels(infos: list[dict[str, Any]]) -> list[list[str]]:
    """Specs grouped into waves: a spec comes after the specs it references (seed / exclusions).

    References to unknown segments and cycles are left to the spec's own validation; such a spec
    is put in the last wave so it fails on its own without holding the others back.
    """
    by_name = {i["name"]: i for i in infos}
    level: dict[str, int] = {}

    def depth(name: str, seen: tuple[str, ...]) -> int:
        if name in level:
            return level[name]
        if name in seen:
            return len(infos)  # cycle: its own validation will reject it
        refs = [r for r in by_name[name]["refs"] if r in by_name]
        d = 0 if not refs else 1 + max(depth(r, (*seen, name)) for r in refs)
        level[name] = d
        return d

    for info in infos:
        depth(info["name"], ())
    waves: dict[int, list[str]] = {}
    for info in infos:
        waves.setdefault(level[info["name"]], []).append(info["path"])
    return [waves[k] for k in sorted(waves)]


def list_channels(segments_dir: str) -> list[str]:
    """Channel names declared in ``channels.yaml`` (empty if the file is missing)."""
    path = Path(segments_dir) / CHANNELS_FILE
    if not path.is_file():
        return []
    raw = _load_yaml(str(path)) or {}
    channels = raw.get("channels") if isinstance(raw, dict) else None
    return sorted(channels) if isinstance(channels, dict) else []


# ------------------------------------------------------------------------------- Delta, read light


def _filesystem(table: str) -> tuple[Any, str]:
    import pyarrow.fs as pafs

    if "://" not in table:
        return pafs.LocalFileSystem(), os.path.abspath(table)
    uri = re.sub(r"^s3a://", "s3://", table)
    return pafs.FileSystem.from_uri(uri)


def _partition_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):  # pyarrow map type: list of (key, value)
        return {k: v for k, v in value}
    return {}


def delta_files(table: str) -> list[dict[str, Any]]:
    """The active data files of a Delta table (its ``add`` actions), from checkpoint + JSON commits.

    Good enough for the small ops tables and for counts; tables with deletion vectors are rejected
    rather than miscounted. Returns [] if the table does not exist.
    """
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs, root = _filesystem(table)
    log = f"{root.rstrip('/')}/_delta_log"
    if fs.get_file_info(log).type != pafs.FileType.Directory:
        return []
    active: dict[str, dict[str, Any]] = {}
    start = -1
    last_cp = f"{log}/_last_checkpoint"
    if fs.get_file_info(last_cp).type == pafs.FileType.File:
        with fs.open_input_stream(last_cp) as fh:
            cp = json.loads(fh.read().decode())
        start = int(cp["version"])
        parts = cp.get("parts")
        names = (
            [f"{start:020d}.checkpoint.{i:010d}.{parts:010d}.parquet" for i in range(1, parts + 1)]
            if parts
            else [f"{start:020d}.checkpoint.parquet"]
        )
        for name in names:
            rows = pq.read_table(f"{log}/{name}", columns=["add"], filesystem=fs).to_pylist()
            for row in rows:
                add = row.get("add")
                if add:
                    active[add["path"]] = add
    infos = fs.get_file_info(pafs.FileSelector(log))
    commits = sorted(
        (int(Path(i.path).stem), i.path) for i in infos if re.fullmatch(r"\d{20}\.json", Path(i.path).name)
    )
    for commit_version, path in commits:
        if commit_version <= start:
            continue
        with fs.open_input_stream(path) as fh:
            for line in fh.read().decode().splitlines():
                if not line.strip():
                    continue
                action = json.loads(line)
                if "add" in action:
                    active[action["add"]["path"]] = action["add"]
                elif "remove" in action:
                    active.pop(action["remove"]["path"], None)
    for add in active.values():
        if add.get("deletionVector"):
            raise ValueError(f"{table}: has deletion vectors; read it with Spark instead")
        add["partitionValues"] = _partition_dict(add.get("partitionValues"))
    return list(active.values())


def delta_count(table: str, partition: Mapping[str, str] | None = None) -> int:
    """Row count from the log's per-file stats (no data read); falls back to Parquet footers."""
    import pyarrow.parquet as pq

    fs, root = _filesystem(table)
    total = 0
    for add in delta_files(table):
        pv = add["partitionValues"]
        if partition and any(str(pv.get(k)) != str(v) for k, v in partition.items()):
            continue
        stats = json.loads(add["stats"]) if add.get("stats") else {}
        if "numRecords" in stats:
            total += int(stats["numRecords"])
        else:
            path = f"{root.rstrip('/')}/{unquote(add['path'])}"
            total += pq.ParquetFile(fs.open_input_file(path)).metadata.num_rows
    return total


def delta_partition_values(table: str, column: str) -> list[str]:
    """Distinct values of a partition column (sorted), from the log only."""
    return sorted(
        {str(a["partitionValues"][column]) for a in delta_files(table) if column in a["partitionValues"]}
    )


def delta_rows(table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """All rows of a small Delta table as dicts (partition columns included, as strings)."""
    import pyarrow.parquet as pq

    fs, root = _filesystem(table)
    rows: list[dict[str, Any]] = []
    for add in delta_files(table):
        pv = add["partitionValues"]
        path = f"{root.rstrip('/')}/{unquote(add['path'])}"
        file_cols = [c for c in columns if c not in pv] if columns else None
        data = pq.read_table(path, columns=file_cols, filesystem=fs).to_pylist()
        for row in data:
            row.update({k: v for k, v in pv.items() if columns is None or k in columns})
            rows.append(row)
    return rows


def lake_table(lake: str, table: str) -> str:
    return f"{lake.rstrip('/')}/{table}"


# ------------------------------------------------------------------------------- uplift planning


def due_evaluations(
    deliveries: Iterable[Mapping[str, Any]],
    windows: Mapping[str, int],
    as_of: date,
    evaluated: Iterable[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """(segment, run_date) pairs whose attribution window (run_date+1 .. run_date+N) has closed.

    A window closes when its last day is on or before ``as_of`` (the latest day whose data is in the
    lake). Only deliveries whose latest attempt succeeded count (``delivered_keys``); pairs already
    in ``evaluated`` are skipped; one entry per pair even if it went to several channels (the
    evaluation compares the pack's groups).
    """
    done = {(s, str(d)) for s, d in evaluated}
    due: dict[tuple[str, str], dict[str, str]] = {}
    for key in delivered_keys(deliveries):
        days = int(windows.get(key.segment, DEFAULT_ATTRIBUTION_DAYS))
        closes = key.run_date + timedelta(days=days)
        pair = (key.segment, key.run_date.isoformat())
        if closes <= as_of and pair not in done:
            due[pair] = {"segment": key.segment, "run_date": pair[1], "window_days": str(days)}
    return [due[k] for k in sorted(due)]


# ------------------------------------------------------------------------------- DAG defaults


def default_args(owner: str = "dmp-data-eng") -> dict[str, Any]:
    """Retries with exponential backoff for every task; knobs so tests can fail fast.

    ``DMP_AIRFLOW_RETRIES`` / ``DMP_AIRFLOW_RETRY_DELAY`` (seconds) are read when the DAG file is
    parsed; production keeps the defaults (2 retries, 1 min then 2 min, capped at 30 min).
    """
    return {
        "owner": owner,
        "retries": int(os.environ.get("DMP_AIRFLOW_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("DMP_AIRFLOW_RETRY_DELAY", "60"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
    }
