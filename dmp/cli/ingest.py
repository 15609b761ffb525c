"""``dmp ingest``, ``ingest-identities``, ``ingest-suppression``, ``ingest-consents``: raw files into the lake."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SkipChecksOpt, ToOpt
from dmp.contracts import tables
from dmp.contracts.vocab import INGEST_FORMATS

if TYPE_CHECKING:
    from rich.table import Table

    from dmp.steps.ingest_runs import IngestResult

console = Console()


# The landing formats, as a choice typer can show and check.
Format = StrEnum("Format", {name: name for name in INGEST_FORMATS})


SourceOpt = Annotated[
    str, typer.Option("--source", help="A file or a folder (the generator's output folder as is).")
]
FormatOpt = Annotated[Format, typer.Option("--format", help="Input format.")]
MinEventTimeOpt = Annotated[
    str | None,
    typer.Option(
        "--min-event-time", help="Earliest valid event time (default 2000-01-01; Taobao: its window)."
    ),
]
MaxEventTimeOpt = Annotated[
    str | None,
    typer.Option("--max-event-time", help="Event times at or after this are out of range."),
]
FutureToleranceOpt = Annotated[
    int,
    typer.Option("--future-tolerance-minutes", help="Event times later than now + this are future."),
]
ListNameOpt = Annotated[str, typer.Option("--name", help="List name, e.g. opt_out ([a-z0-9_]+).")]


def _date_span(result: IngestResult) -> str:
    if not result.dates:
        return "all"
    if len(result.dates) == 1:
        return str(result.dates[0])
    return f"{result.dates[0]} .. {result.dates[-1]}"


def reconciliation_table(result: IngestResult) -> Table:
    """The run's numbers as a rich Table (printed by the CLI and the spark-submit job)."""
    from rich.table import Table

    table = Table(
        title=f"ingest {result.format} {result.source} (dates: {_date_span(result)})", show_header=True
    )
    table.add_column("bucket")
    table.add_column("rows", justify="right")
    table.add_row("files", str(result.files))
    if result.files_ingested is not None:
        table.add_row("  files ingested", str(result.files_ingested))
        table.add_row("  files quarantined", str(result.files_quarantined))
        for reason, n in sorted(result.file_reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            table.add_row(f"    {reason}", str(n))
    table.add_row("rows read", str(result.rows_read))
    table.add_row("  accepted (new)", str(result.accepted))
    table.add_row("  quarantined", f"{result.quarantined} ({result.quarantine_new} new)")
    for reason, n in sorted(result.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"    {reason}", str(n))
    table.add_row("  duplicates in batch", str(result.duplicates_in_batch))
    table.add_row("  duplicates already in lake", str(result.duplicates_in_lake))
    if result.erased:
        table.add_row("  erased accounts (dmp forget)", str(result.erased))
    if result.out_of_scope:
        table.add_row("other dates (not processed)", str(result.out_of_scope))
    if result.blank_lines:
        table.add_row("blank lines (not records)", str(result.blank_lines))
    verdict = "yes" if result.reconciled else "[bold red]NO[/]"
    equations = f"{result.rows_read} = {result.accepted} + {result.quarantined} + {result.duplicates}"
    if result.erased:
        equations += f" + {result.erased} erased"
    if result.files_ingested is not None:
        equations += f"; files {result.files} = {result.files_ingested} + {result.files_quarantined}"
    table.add_row("reconciled", f"{verdict}: {equations}")
    table.add_row("quality gate", result.checks)
    return table


def ingest_cmd(
    source: SourceOpt,
    fmt: FormatOpt = Format.jsonl,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    lake: LakeOpt = None,
    skip_checks: SkipChecksOpt = False,
    min_event_time: MinEventTimeOpt = None,
    max_event_time: MaxEventTimeOpt = None,
    future_tolerance_minutes: FutureToleranceOpt = 60,
) -> None:
    """Load behaviour logs into bronze/events (bad rows into bronze/events_quarantine), reconciled."""
    from datetime import timedelta

    from dmp.contracts.dates import resolve_dates
    from dmp.spark.session import get_spark
    from dmp.steps.ingest import run_ingest

    days = resolve_dates(date, from_, to) if (date or from_ or to) else None
    root = tables.resolve_lake(lake)
    result = run_ingest(
        get_spark("dmp-ingest"),
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
        f"events: {tables.table_path(root, tables.EVENTS)} (version {result.table_version}), run {result.run_id}"
    )


def ingest_identities_cmd(source: SourceOpt, lake: LakeOpt = None) -> None:
    """Load the identity file (user -> oaid/idfa/imei/phone/email) into silver/identities (full replace)."""
    from dmp.spark.session import get_spark
    from dmp.steps.identities import run_ingest_identities

    root = tables.resolve_lake(lake)
    result = run_ingest_identities(get_spark("dmp-ingest-identities"), root, source)
    console.print(reconciliation_table(result))
    console.print(f"identities: {tables.table_path(root, tables.IDENTITIES)} ({result.message})")


def ingest_suppression_cmd(source: SourceOpt, name: ListNameOpt, lake: LakeOpt = None) -> None:
    """Load a suppression list (CSV with a user_id header) into silver/suppression_lists, replacing it."""
    from dmp.spark.session import get_spark
    from dmp.steps.suppression import run_ingest_suppression

    root = tables.resolve_lake(lake)
    result = run_ingest_suppression(get_spark("dmp-ingest-suppression"), root, name, source)
    console.print(reconciliation_table(result))
    console.print(
        f"suppression list {name!r}: {result.accepted} users in {tables.table_path(root, tables.SUPPRESSION_LISTS)}"
    )


def ingest_consents_cmd(source: SourceOpt, lake: LakeOpt = None) -> None:
    """Load consent events (user_id, purpose, granted, at, source) into silver/consents, latest wins."""
    from dmp.spark.session import get_spark
    from dmp.steps.consents import run_ingest_consents

    root = tables.resolve_lake(lake)
    result = run_ingest_consents(get_spark("dmp-ingest-consents"), root, source)
    console.print(reconciliation_table(result))
    console.print(f"consents: {tables.table_path(root, tables.CONSENTS)} ({result.message})")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("ingest")(ingest_cmd)
    app.command("ingest-identities")(ingest_identities_cmd)
    app.command("ingest-suppression")(ingest_suppression_cmd)
    app.command("ingest-consents")(ingest_consents_cmd)
