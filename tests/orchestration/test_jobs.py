"""jobs/*.py run the one CLI's commands: same options, same exit codes, under spark-submit too."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from dmp.cli import run, run_commands
from dmp.contracts import tables
from dmp.contracts.packages import spark_home

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
JOB_COMMANDS = {
    "aggregate": ["aggregate"],
    "stitch_identities": ["identities", "stitch"],
    "build_packs": ["segments", "build"],
    "deliver": ["deliver"],
    "evaluate": ["evaluate"],
    "ingest": ["ingest"],
    "tags": ["tags"],
    "validate": ["validate"],
}
# The argument shapes the DAGs pass to each job (dags/*.py); every option must exist in the CLI.
DAG_ARGS = {
    "stitch_identities": ["--lake", "L", "--date", "D"],
    "ingest": [
        "--lake",
        "L",
        "--from",
        "D",
        "--to",
        "D",
        "--source",
        "S",
        "--format",
        "jsonl",
        "--skip-checks",
    ],
    "validate": ["--lake", "L", "--from", "D", "--to", "D", "--table", tables.EVENTS],
    "aggregate": ["--lake", "L", "--from", "D", "--to", "D", "--skip-checks"],
    "tags": ["--lake", "L", "--from", "D", "--to", "D", "--skip-checks"],
    "build_packs": ["--lake", "L", "--segments", "S", "--spec", "P", "--date", "D"],
    "deliver": ["--lake", "L", "--segments", "S", "--date", "D", "--channel", "C"],
    "evaluate": ["--lake", "L", "--segments", "S", "--run-date", "D", "--segment", "X", "--segment", "Y"],
}


def _job(step: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"job_{step}", REPO_ROOT / "jobs" / f"{step}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_job_has_a_command() -> None:
    assert sorted(p.stem for p in (REPO_ROOT / "jobs").glob("*.py")) == sorted(JOB_COMMANDS)


@pytest.mark.parametrize("step", sorted(JOB_COMMANDS))
def test_job_runs_its_cli_command(step: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _job(step).main(["--help"]) == 0
    assert f"Usage: dmp {' '.join(JOB_COMMANDS[step])} [OPTIONS]" in capsys.readouterr().out


@pytest.mark.parametrize("step", sorted(DAG_ARGS))
def test_the_dags_arguments_parse(step: str, capsys: pytest.CaptureFixture[str]) -> None:
    # An unknown option is a usage error (2) even before --help, which then exits 0.
    assert run([*JOB_COMMANDS[step], *DAG_ARGS[step], "--help"]) == 0, capsys.readouterr().err
    assert run([*JOB_COMMANDS[step], *DAG_ARGS[step], "--no-such-option", "--help"]) == 2


# dmp_audiences after a catch-up: one job per run of consecutive dates (planning.date_args)
CATCH_UP_ARGS = {
    "build_packs": ["--lake", "L", "--segments", "S", "--spec", "P", "--from", "D1", "--to", "D2"],
    "deliver": ["--lake", "L", "--segments", "S", "--from", "D1", "--to", "D2", "--channel", "C"],
}


@pytest.mark.parametrize("step", sorted(CATCH_UP_ARGS))
def test_the_catch_up_date_range_arguments_parse(step: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run([*JOB_COMMANDS[step], *CATCH_UP_ARGS[step], "--help"]) == 0, capsys.readouterr().err
    assert run([*JOB_COMMANDS[step], *CATCH_UP_ARGS[step], "--no-such-option", "--help"]) == 2


def test_exit_codes_and_messages(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["validate", "--bogus"]) == 2
    assert "No such option: --bogus" in capsys.readouterr().err
    assert run(["validate", "--table", tables.EVENTS, "--date", "2026-13-01"]) == 1
    assert "error: --date: expected a date as YYYY-MM-DD" in capsys.readouterr().err
    assert run(["nosuch"]) == 2
    assert "No such command 'nosuch'" in capsys.readouterr().err


def test_chained_commands_stop_at_the_first_failure(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_commands(["version", ":::", "validate", "--bogus", ":::", "version"]) == 2
    out = capsys.readouterr().out.splitlines()
    # each command's header, then its output; the third command never runs
    assert [ln for ln in out if ln.startswith("dmp ")][::2] == ["dmp version", "dmp validate --bogus"]
    assert len([ln for ln in out if ln.startswith("dmp 0.")]) == 1


def test_under_spark_submit_usage_errors_exit_2_and_dmp_errors_exit_1() -> None:
    env = {**os.environ, "SPARK_HOME": spark_home(), "PYSPARK_PYTHON": sys.executable}
    submit = [str(BIN / "spark-submit"), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]
    job = str(REPO_ROOT / "jobs" / "validate.py")
    usage = subprocess.run(
        [*submit, job, "--bogus"], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert usage.returncode == 2, usage.stderr[-2000:]
    # spark-submit's PythonRunner merges the driver's stderr into its stdout
    assert "No such option: --bogus" in usage.stdout + usage.stderr
    bad = subprocess.run(
        [*submit, job, "--table", tables.EVENTS, "--date", "2026-13-01"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert bad.returncode == 1, bad.stderr[-2000:]
    assert "error: --date: expected a date as YYYY-MM-DD, got '2026-13-01'" in bad.stdout + bad.stderr
