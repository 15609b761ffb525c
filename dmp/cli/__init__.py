"""The ``dmp`` command line. Each area registers its commands from ``dmp/cli/<area>.py``.

Heavy imports (pyspark, sklearn, boto3, great_expectations) happen inside the commands so that
``dmp --help`` stays fast. One way to run a command, wherever it runs: :func:`run` (the ``dmp``
console script, ``python -m dmp.cli``, ``jobs/*.py`` under spark-submit) exits 0 on success, 1 with
``error: ...`` on a ``DmpError``, 2 with typer's usage message on a usage error.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from dmp.cli import delivery, evaluate, generate, ingest, ops, segments, tables
from dmp.contracts.errors import DmpError

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


for area in (generate, ingest, tables, segments, delivery, evaluate, ops):
    area.register(app)

err_console = Console(stderr=True)


def run(argv: list[str]) -> int:
    """Run one ``dmp`` command line; returns its exit code instead of exiting.

    Typer's standalone mode prints usage errors itself (exit 2); a DmpError is ours to print.
    """
    try:
        app(args=list(argv), prog_name="dmp")
    except DmpError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except SystemExit as exc:  # standalone mode always ends here: 0, or click's exit code
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        err_console.print(str(exc.code), highlight=False)
        return 1
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
