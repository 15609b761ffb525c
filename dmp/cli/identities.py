"""``dmp identities stitch``: accounts -> persons by their shared identifiers, with guards (docs/identity.md)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, ToOpt

console = Console()
identities_app = typer.Typer(
    help="The identity graph: accounts stitched into persons (silver/persons).", no_args_is_help=True
)

GuardsOpt = Annotated[
    str | None,
    typer.Option(
        "--guards",
        help="YAML overriding the stitching guards (caps, blocked values; see infra/identity_guards.yaml).",
    ),
]


@identities_app.command("stitch")
def stitch_cmd(
    lake: LakeOpt = None,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    guards: GuardsOpt = None,
) -> None:
    """silver/identities -> silver/persons, silver/person_identifiers, ops/identity_violations (per date)."""
    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.identity_guards import load_identity_guards
    from dmp.contracts.tables import PERSONS, resolve_lake, table_path
    from dmp.spark.session import get_spark
    from dmp.steps.stitch import run_stitch

    days = resolve_dates(date, from_, to)
    config = load_identity_guards(guards)
    root = resolve_lake(lake)
    spark = get_spark("dmp-identities-stitch")
    for day in days:
        res = run_stitch(spark, root, day, config)
        wrote = ", ".join(t for t, w in res.written.items() if w) or "nothing (unchanged)"
        violations = ", ".join(f"{rule} {n}" for rule, n in sorted(res.violations.items())) or "none"
        console.print(
            escape(
                f"stitch {day}: {res.accounts:,} accounts -> {res.persons:,} persons "
                f"({res.multi_account_persons:,} with several accounts) in {res.rounds} round(s); "
                f"violations: {violations}; wrote {wrote}"
            ),
            highlight=False,
        )
    console.print(f"[green]persons[/] {escape(table_path(root, PERSONS))}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.add_typer(identities_app, name="identities")
