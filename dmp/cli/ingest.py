"""``dmp ingest``, ``dmp ingest-identities``, ``dmp ingest-suppression``: raw files into the lake."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.console import Console

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SkipChecksOpt, ToOpt
from dmp.contracts import tables

console = Console()


class Format(StrEnum):
    jsonl = "jsonl"
    parquet = "parquet"
    taobao = "taobao"


SourceOpt = Annotated[
    str, typer.Option("--source", help="A file or a folder (the generator's output folder as is).")
]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""

    @app.command("ingest")
    def ingest(
        source: SourceOpt,
        fmt: Annotated[Format, typer.Option("--format", help="Input format.")] = Format.jsonl,
        date: DateOpt = None,
        from_: FromOpt = None,
        to: ToOpt = None,
        lake: LakeOpt = None,
        skip_checks: SkipChecksOpt = False,
        min_event_time: Annotated[
            str | None,
            typer.Option(
                "--min-event-time", help="Earliest valid event time (default 2000-01-01; Taobao: its window)."
            ),
        ] = None,
        max_event_time: Annotated[
            str | None,
            typer.Option("--max-event-time", help="Event times at or after this are out of range."),
        ] = None,
        future_tolerance_minutes: Annotated[
            int,
            typer.Option("--future-tolerance-minutes", help="Event times later than now + this are future."),
        ] = 60,
    ) -> None:
        """Load behaviour logs into bronze/events (bad rows into bronze/events_quarantine), reconciled."""
        from datetime import timedelta

        from dmp.contracts.dates import resolve_dates
        from dmp.contracts.tables import resolve_lake, table_path
        from dmp.spark.session import get_spark
        from dmp.steps.ingest import reconciliation_table, run_ingest

        days = resolve_dates(date, from_, to) if (date or from_ or to) else None
        root = resolve_lake(lake)
        spark = get_spark("dmp-ingest")
        result = run_ingest(
            spark,
            root,
            source,
            fmt.value,
            days,
            skip_checks=skip_checks,
            min_event_time=min_event_time,
            max_event_time=max_event_time,
            future_tolerance=timedelta(minutes=future_tolerance_minutes),
        )
        console.print(reconciliation_table(result))
        console.print(
            f"events: {table_path(root, tables.EVENTS)} (version {result.table_version}), run {result.run_id}"
        )

    @app.command("ingest-identities")
    def ingest_identities(source: SourceOpt, lake: LakeOpt = None) -> None:
        """Load the identity file (user -> oaid/idfa/imei/phone/email) into silver/identities (full replace)."""
        from dmp.contracts.tables import IDENTITIES, resolve_lake, table_path
        from dmp.spark.session import get_spark
        from dmp.steps.identities import run_ingest_identities
        from dmp.steps.ingest import reconciliation_table

        root = resolve_lake(lake)
        result = run_ingest_identities(get_spark("dmp-ingest-identities"), root, source)
        console.print(reconciliation_table(result))
        console.print(f"identities: {table_path(root, IDENTITIES)} ({result.message})")

    @app.command("ingest-suppression")
    def ingest_suppression(
        source: SourceOpt,
        name: Annotated[str, typer.Option("--name", help="List name, e.g. opt_out ([a-z0-9_]+).")],
        lake: LakeOpt = None,
    ) -> None:
        """Load a suppression list (CSV with a user_id header) into silver/suppression_lists, replacing it."""
        from dmp.contracts.tables import SUPPRESSION_LISTS, resolve_lake, table_path
        from dmp.spark.session import get_spark
        from dmp.steps.ingest import reconciliation_table
        from dmp.steps.suppression import run_ingest_suppression

        root = resolve_lake(lake)
        result = run_ingest_suppression(get_spark("dmp-ingest-suppression"), root, name, source)
        console.print(reconciliation_table(result))
        console.print(
            f"suppression list {name!r}: {result.accepted} users in {table_path(root, SUPPRESSION_LISTS)}"
        )
