"""CLI for the table-building steps: ``dmp aggregate``, ``dmp tags``, ``dmp validate``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SkipChecksOpt, ToOpt

console = Console()

TableOpt = Annotated[
    str,
    typer.Option("--table", help="Table to validate: bronze/events, silver/user_daily or gold/user_tags."),
]
ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config", help="YAML overriding tag thresholds/weights (see dmp/contracts/tag_config.py)."
    ),
]
FullOpt = Annotated[
    bool,
    typer.Option("--full", help="Rebuild from the whole user_daily history instead of yesterday's state."),
]


def aggregate_cmd(
    lake: LakeOpt = None,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    skip_checks: SkipChecksOpt = False,
) -> None:
    """bronze/events -> silver/user_daily, one date partition per date (replaces it on rerun)."""
    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.tables import USER_DAILY, resolve_lake, table_path
    from dmp.spark.session import get_spark
    from dmp.steps.aggregate import aggregate_days

    days = resolve_dates(date, from_, to)
    root = resolve_lake(lake)
    spark = get_spark("dmp-aggregate")
    for res in aggregate_days(spark, root, days, skip_checks=skip_checks):
        note = "" if res.rows else " [yellow](no events that day: partition written empty)[/]"
        console.print(f"aggregate {res.day}: {res.events:,} events -> {res.rows:,} user_daily rows{note}")
    console.print(f"[green]wrote[/] {table_path(root, USER_DAILY)} for {len(days)} date(s)")


def tags_cmd(
    lake: LakeOpt = None,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    config: ConfigOpt = None,
    full: FullOpt = False,
    skip_checks: SkipChecksOpt = False,
) -> None:
    """silver/user_daily -> gold/user_tags snapshot per date (incremental from yesterday's state)."""
    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.tables import USER_TAGS, resolve_lake, table_path
    from dmp.contracts.tag_config import load_tag_config
    from dmp.spark.session import get_spark
    from dmp.steps.tags import run_tags

    days = resolve_dates(date, from_, to)
    cfg = load_tag_config(config)
    root = resolve_lake(lake)
    spark = get_spark("dmp-tags")
    for day in days:
        res = run_tags(spark, root, day, cfg, full=full, skip_checks=skip_checks)
        colour = "green" if res.mode == "incremental" else "yellow"
        console.print(f"tags {day}: {res.users:,} users, [{colour}]{res.mode}[/] ({res.reason})")
    console.print(f"[green]wrote[/] {table_path(root, USER_TAGS)} for {len(days)} date(s)")


def validate_cmd(
    table: TableOpt,
    lake: LakeOpt = None,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
) -> None:
    """Run the table's Great Expectations suite on the given date partition(s)."""
    from dmp.contracts.dates import resolve_dates
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.quality import validate_table

    days = resolve_dates(date, from_, to)
    root = resolve_lake(lake)
    spark = get_spark("dmp-validate")
    rows, suite = validate_table(spark, root, table, days)
    console.print(f"[green]passed[/] suite {suite} on {table} ({rows:,} rows, {days[0]} .. {days[-1]})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("aggregate")(aggregate_cmd)
    app.command("tags")(tags_cmd)
    app.command("validate")(validate_cmd)
