"""The ``dmp`` command line. Each area registers its commands from ``dmp/cli/<area>.py``.

Heavy imports (pyspark, sklearn, boto3, great_expectations) happen inside the commands so that
``dmp --help`` stays fast.
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


def main() -> None:
    try:
        app()
    except DmpError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
