"""The ``dmp`` command line. Each area registers its commands from ``dmp/cli/<area>.py``.

Heavy imports (pyspark, sklearn, boto3, great_expectations) happen inside the commands so that
``dmp --help`` stays fast. One way to run a command, wherever it runs: :func:`run` (the ``dmp``
console script, ``python -m dmp.cli``, ``jobs/*.py`` under spark-submit) is the one place that
turns an outcome into an exit code and at most one message on stderr:

- 0: success;
- 1: ``error: ...``, a ``DmpError`` (bad input, a failed gate): its own message, nothing else;
- 2: typer's usage message (unknown option, missing argument);
- 70 (``EX_SOFTWARE``): anything else is a bug: ONE line naming the command, the exception and the
  file its full traceback was written to (``$DMP_LOG_DIR``, default ``<tmp>/dmp-logs``); a
  traceback on the terminal would be a bug of its own;
- 130: interrupted (Ctrl-C), one line.

Messages are printed as plain text, never parsed as rich markup, so ``^[a-z0-9_]+$`` in an error
prints as written; control characters (ANSI escapes, bidi overrides) are shown as ``\\x..`` escapes.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import traceback
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.text import Text

from dmp.cli import delivery, evaluate, forget, generate, identities, ingest, ops, segments, site, tables
from dmp.contracts.errors import DmpError
from dmp.contracts.settings import env_setting

EXIT_ERROR = 1
EXIT_INTERNAL = 70  # os.EX_SOFTWARE (sysexits.h): not the user's input, our bug
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
SUMMARY_CHARS = 300
# C0/C1 controls but newline and tab, and the bidi controls that reorder text on a terminal.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")

app = typer.Typer(
    name="dmp",
    help="Open DMP pipeline: behaviour logs -> Delta tables -> tags -> audience packs -> S3 -> uplift.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Open DMP pipeline. Every command takes --lake (default: $DMP_LAKE, else ./lakehouse)."""


@app.command("version")
def version() -> None:
    """Print the dmp version and the versions of the engines it runs on."""
    from importlib.metadata import version as v

    import dmp

    typer.echo(f"dmp {dmp.__version__} (pyspark {v('pyspark')}, delta-spark {v('delta-spark')})")


for area in (generate, ingest, identities, tables, segments, delivery, evaluate, ops, forget, site):
    area.register(app)

err_console = Console(stderr=True)


def _printable(text: str) -> str:
    """``text`` with control and bidi characters written as escapes (a message cannot drive the terminal)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _say(label: str, message: str) -> None:
    """``label: message`` on stderr; the message is plain text, never rich markup."""
    line = Text.assemble((label, "bold red"), " ", _printable(message))
    err_console.print(line, highlight=False, soft_wrap=True, emoji=False)


def command_name(argv: list[str]) -> str:
    """``dmp <command> [<subcommand>]`` as far as ``argv`` names registered (sub)commands."""
    words = ["dmp"]
    try:
        # Groups have ``commands`` (name -> command); typer 0.29 vendors click, so no isinstance.
        command = typer.main.get_command(app)
        for arg in argv:
            sub = getattr(command, "commands", {}).get(arg)
            if sub is None:
                break
            command = sub
            words.append(arg)
    except Exception:  # noqa: BLE001 - naming the command must never fail the crash report
        pass
    return " ".join(words)


def _summary(exc: BaseException) -> str:
    """``Type: first line of the message``, cut to ``SUMMARY_CHARS``."""
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a broken __str__ (py4j when the JVM is gone)
        text = ""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    out = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return out if len(out) <= SUMMARY_CHARS else out[: SUMMARY_CHARS - 3] + "..."


def write_traceback(command: str, argv: list[str], exc: BaseException) -> Path | None:
    """Write the full traceback of ``exc`` to a new file under ``$DMP_LOG_DIR``; its path, or None.

    Falls back to the system temp folder when the log folder cannot be written. Files are created
    ``0600`` (a traceback may name paths and values) and never overwrite an earlier one.
    """
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    name = f"{command.replace(' ', '-')}-{stamp}-{os.getpid()}.log"
    text = "".join(
        [
            f"command: {command}\nargv: {argv!r}\nat: {datetime.now(UTC).isoformat()}\n",
            f"python: {sys.version.split()[0]}  pid: {os.getpid()}  cwd: {os.getcwd()}\n\n",
            *traceback.format_exception(exc),
        ]
    )
    for folder in (Path(env_setting("log_dir")), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            return folder / name
        except OSError:
            continue
    return None


def _report_crash(argv: list[str], exc: BaseException) -> int:
    command = command_name(argv)
    path = write_traceback(command, argv, exc)
    where = (
        f"full traceback in {path}"
        if path
        else "the traceback could not be written (log folder and temp unwritable)"
    )
    _say("error:", f"{command} failed unexpectedly (a bug; please report it): {_summary(exc)}; {where}")
    return EXIT_INTERNAL


def run(argv: list[str]) -> int:
    """Run one ``dmp`` command line; returns its exit code (module docstring) instead of exiting.

    Typer's standalone mode prints usage errors itself (exit 2) and turns Ctrl-C inside a command
    into exit 130; everything else that escapes the command is handled here.
    """
    argv = list(argv)
    try:
        app(args=argv, prog_name="dmp")
    except DmpError as exc:
        _say("error:", str(exc))
        return EXIT_ERROR
    except SystemExit as exc:  # standalone mode always ends here: 0, or click's exit code
        if exc.code is None or isinstance(exc.code, int):
            if exc.code == EXIT_INTERRUPTED:
                _say("interrupted:", f"{command_name(argv)} stopped (Ctrl-C); exit {EXIT_INTERRUPTED}")
            return exc.code or 0
        _say("error:", str(exc.code))
        return EXIT_ERROR
    except KeyboardInterrupt:  # outside typer's own handling (while starting up, say)
        _say("interrupted:", f"{command_name(argv)} stopped (Ctrl-C); exit {EXIT_INTERRUPTED}")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - the crash handler: one line and a traceback file
        return _report_crash(argv, exc)
    return 0


def run_commands(argv: list[str]) -> int:
    """Several ``dmp`` commands separated by ``:::`` (one Spark application); stops at the first failure."""
    from dmp.orchestration.submit import SEPARATOR

    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == SEPARATOR:
            commands.append([])
        else:
            commands[-1].append(arg)
    chained = [c for c in commands if c]
    for command in chained:
        if len(chained) > 1:
            print(f"dmp {' '.join(command)}", flush=True)
        code = run(command)
        if code:
            return code
    return 0


def main(argv: list[str] | None = None) -> None:
    """The ``dmp`` console script."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
