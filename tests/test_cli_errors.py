"""The CLI's one crash handler (``dmp.cli.run``): what reaches the terminal when a command fails.

An unexpected exception is ONE line on stderr (the command, the exception, the traceback file) and
exit 70; the traceback itself goes to a file under ``$DMP_LOG_DIR``. A ``DmpError`` keeps its own
message and exit 1; Ctrl-C is one line and exit 130. Messages are never parsed as rich markup.
Checked in-process (``run``, ``run_commands``, a ``jobs/`` entry point) and once through the real
``.venv/bin/dmp`` console script in a subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import dmp.delivery.pull
from dmp.cli import EXIT_INTERNAL, run, run_commands
from dmp.contracts.errors import DmpError

REPO_ROOT = Path(__file__).resolve().parents[1]
DMP = Path(sys.executable).parent / "dmp"
MARKUP = "[bold]boom[/] name must match ^[a-z0-9_]+$"
PULL = ["pull", "--channel", "jd_ads", "--segment", "spring", "--dest", "unused"]
LINE = re.compile(
    r"error: (?P<command>dmp[a-z_ ]*) failed unexpectedly \(a bug; please report it\): (?P<what>.*); "
    r"full traceback in (?P<path>\S+\.log)\n"
)


@pytest.fixture()
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "logs"
    monkeypatch.setenv("DMP_LOG_DIR", str(folder))
    return folder


def raising(exc: BaseException):  # noqa: ANN201 - a stand-in for any step function
    def step(*args: object, **kwargs: object) -> None:
        raise exc

    return step


def crash_line(err: str) -> re.Match[str]:
    """The one stderr line of a crash, parsed; fails when there is anything else."""
    assert err.count("\n") == 1, err
    match = LINE.fullmatch(err)
    assert match, err
    return match


def test_unexpected_exception_is_one_line_and_a_traceback_file(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(RuntimeError(f"{MARKUP}\nsecond line")))
    assert run(PULL) == EXIT_INTERNAL == 70
    out = capsys.readouterr()
    line = crash_line(out.err)
    assert out.out == ""
    assert line["command"] == "dmp pull"
    assert line["what"] == f"RuntimeError: {MARKUP}"  # markup intact, first line of the message only
    path = Path(line["path"])
    assert path.parent == log_dir and path.name.startswith("dmp-pull-")
    text = path.read_text()
    assert text.startswith(f"command: dmp pull\nargv: {PULL!r}\n")
    assert "Traceback (most recent call last):" in text
    assert "in step\n    raise exc\n" in text  # the frame that raised
    assert text.rstrip().endswith(f"RuntimeError: {MARKUP}\nsecond line")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_step_function_of_a_spark_command_crashing(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``dmp deliver`` with its step raising (no Spark started: the session builder is stubbed too)."""
    import dmp.spark.session
    import dmp.steps.deliver

    monkeypatch.setattr(dmp.spark.session, "get_spark", lambda *a, **k: object())
    monkeypatch.setattr(dmp.steps.deliver, "run_delivery", raising(KeyError("jd_ads")))
    assert run(["deliver", "--date", "2026-03-14", "--lake", str(log_dir.parent / "lake")]) == 70
    line = crash_line(capsys.readouterr().err)
    assert (line["command"], line["what"]) == ("dmp deliver", "KeyError: 'jd_ads'")
    assert "KeyError: 'jd_ads'" in Path(line["path"]).read_text()


def test_dmp_error_keeps_its_message_and_exit_code(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(DmpError(f"spec x.yaml: name: {MARKUP}")))
    assert run(PULL) == 1
    assert capsys.readouterr().err == f"error: spec x.yaml: name: {MARKUP}\n"
    assert not log_dir.exists()  # no traceback file for an expected error


def test_ctrl_c_is_one_line_and_exit_130(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(KeyboardInterrupt()))
    assert run(PULL) == 130
    assert capsys.readouterr().err == "interrupted: dmp pull stopped (Ctrl-C); exit 130\n"


def test_terminal_controls_are_escaped_and_long_messages_cut(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(
        dmp.delivery.pull, "pull_channel", raising(ValueError("\x1b[2J\x1b[31mred\u202eevil"))
    )
    assert run(PULL) == 70
    assert crash_line(capsys.readouterr().err)["what"] == r"ValueError: \x1b[2J\x1b[31mred\u202eevil"
    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(OSError("x" * 5000)))
    assert run(PULL) == 70
    what = crash_line(capsys.readouterr().err)["what"]
    assert what == "OSError: " + "x" * 288 + "..." and len(what) == 300


def test_unwritable_log_dir_falls_back_to_the_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    monkeypatch.setenv("DMP_LOG_DIR", str(blocker / "logs"))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(RuntimeError("boom")))
    assert run(PULL) == 70
    path = Path(crash_line(capsys.readouterr().err)["path"])
    assert path.parent == tmp_path / "tmp" and "RuntimeError: boom" in path.read_text()


def test_chained_commands_and_job_entry_points_use_the_handler(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import dmp.spark.session
    import dmp.steps.deliver

    monkeypatch.setattr(dmp.delivery.pull, "pull_channel", raising(RuntimeError("boom")))
    assert run_commands(["version", ":::", *PULL, ":::", "version"]) == 70
    out = capsys.readouterr()
    assert len([ln for ln in out.out.splitlines() if ln.startswith("dmp 0.")]) == 1  # stopped there
    assert crash_line(out.err)["command"] == "dmp pull"

    spec = importlib.util.spec_from_file_location("job_deliver", REPO_ROOT / "jobs" / "deliver.py")
    assert spec and spec.loader
    job = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(job)
    monkeypatch.setattr(dmp.spark.session, "get_spark", lambda *a, **k: object())
    monkeypatch.setattr(dmp.steps.deliver, "run_delivery", raising(RuntimeError("in the job")))
    assert job.main(["--date", "2026-03-14"]) == 70
    assert crash_line(capsys.readouterr().err)["what"] == "RuntimeError: in the job"


def test_real_console_script_prints_no_traceback(tmp_path: Path) -> None:
    """``.venv/bin/dmp`` in a subprocess: a crash (patched in via sitecustomize) and a DmpError."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import dmp.delivery.pull\n"
        "def _boom(*args, **kwargs):\n"
        f"    raise RuntimeError({MARKUP!r})\n"
        "dmp.delivery.pull.pull_channel = _boom\n"
    )
    env = {**os.environ, "DMP_LOG_DIR": str(tmp_path / "logs"), "PYTHONPATH": str(hook)}
    crash = subprocess.run(
        [str(DMP), *PULL], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert crash.returncode == 70, crash.stderr
    assert "Traceback" not in crash.stdout + crash.stderr
    line = crash_line(crash.stderr)
    assert (line["command"], line["what"]) == ("dmp pull", f"RuntimeError: {MARKUP}")
    assert "Traceback (most recent call last):" in Path(line["path"]).read_text()

    env.pop("PYTHONPATH")
    bad = [
        str(DMP),
        "pull",
        "--channel",
        "jd_ads",
        "--segment",
        "../../../etc",
        "--dest",
        str(tmp_path / "c"),
    ]
    refused = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert refused.returncode == 1
    assert refused.stderr == "error: --segment: segment names match ^[a-z0-9_]+$, got '../../../etc'\n"
    assert refused.stdout == "" and not (tmp_path / "c").exists()
