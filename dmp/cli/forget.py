"""``dmp forget``: erase accounts (``--users FILE --request-id ID``), report (``--status ID``), and
purge old versions (``--vacuum [--retention-hours H]``). docs/privacy.md "Erasure"."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dmp.cli.common import LakeOpt, SegmentsDirOpt
from dmp.contracts.errors import DmpError
from dmp.contracts.tables import PERSONS
from dmp.contracts.vocab import ERASURE_RETENTION_HOURS

console = Console()
DEFAULT_RETENTION_HOURS = ERASURE_RETENTION_HOURS


def _read_users(path: str) -> list[str]:
    from dmp.transforms.erasure import parse_users_file

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DmpError(f"--users {path}: cannot read it ({exc.strerror or exc})") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DmpError(f"{path}, line {line}: not UTF-8 text") from exc
    return parse_users_file(text, path)


def forget_cmd(
    lake: LakeOpt = None,
    users: Annotated[
        str | None, typer.Option("--users", help="File: one user_id per line (# comments).")
    ] = None,
    request_id: Annotated[str | None, typer.Option("--request-id", help="The erasure request's id.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Show what request ID did.")] = None,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="Purge deleted files older than the retention.")
    ] = False,
    retention_hours: Annotated[
        float,
        typer.Option(
            "--retention-hours", help="With --vacuum: keep this many hours of history (0 = purge now)."
        ),
    ] = DEFAULT_RETENTION_HOURS,
    whole_person: Annotated[
        bool,
        typer.Option(
            "--whole-person",
            help="With --users: also erase every other account stitched to the same person (silver/persons).",
        ),
    ] = False,
    segments: SegmentsDirOpt = "segments",
    all_tables: Annotated[
        bool,
        typer.Option(
            "--all-tables",
            help="With --vacuum: purge every Delta table of the lake, not only those the requests due erased from.",
        ),
    ] = False,
) -> None:
    """Erase accounts from every lake table, tombstone them, report a request, or vacuum."""
    modes = sum([users is not None or request_id is not None, status is not None, vacuum])
    if modes != 1:
        raise DmpError("dmp forget: give --users FILE --request-id ID, or --status ID, or --vacuum")
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark

    root = resolve_lake(lake)
    if status is not None:
        from dmp.steps.forget_status import request_status

        print_status(request_status(get_spark("dmp-forget-status"), root, status))
    elif vacuum:
        from dmp.contracts.channels import load_channels
        from dmp.steps.forget_status import run_vacuum

        channels = load_channels(segments)  # the delivered files are scrubbed too
        spark = get_spark("dmp-forget-vacuum")
        res = run_vacuum(spark, root, retention_hours, all_tables=all_tables, channels=channels)
        removed = sum(int(t["files_removed"]) for t in res.tables)
        console.print(
            escape(
                f"vacuum (retention {res.retention_hours:g} h): {len(res.tables)} tables, {removed} files "
                f"removed, {res.state_rows_deleted} delivery_state rows of erased keys deleted, "
                f"{res.delivered_rows_removed} rows removed from {res.folders_scrubbed or 0} delivered "
                f"folders; requests "
                f"covered: {', '.join(res.requests_covered) or 'none'}; waiting for the retention: "
                f"{', '.join(res.requests_waiting) or 'none'}"
            ),
            highlight=False,
        )
    else:
        if users is None or request_id is None:
            raise DmpError("dmp forget: --users FILE and --request-id ID go together")
        from dmp.steps.forget import run_forget
        from dmp.steps.forget_status import request_status

        ids = _read_users(users)
        spark = get_spark("dmp-forget")
        res = run_forget(spark, root, ids, request_id, whole_persons=whole_person)
        wrote = ", ".join(res.wrote) or "nothing (no rows left to delete)"
        console.print(
            escape(f"forget {request_id}: {res.accounts} accounts; deleted from {wrote}"), highlight=False
        )
        print_status(request_status(spark, root, request_id))


def print_status(st) -> None:  # noqa: ANN001 - a dmp.steps.forget_status.RequestStatus
    """The request as rich tables: rows per table, channels told, vacuum."""
    head = f"erasure request {st.request_id}: {st.accounts} accounts, requested {st.requested_at:%Y-%m-%d %H:%M:%S} UTC"
    console.print(escape(head), highlight=False)
    rows = Table(title="deleted (rows per table)")
    for col in ("table", "status", "rows"):
        rows.add_column(col, justify="right" if col == "rows" else "left")
    for table, outcome in sorted(st.tables.items()):
        rows.add_row(escape(table), escape(str(outcome["status"])), str(outcome["rows"]))
    console.print(rows)
    others = st.tables.get(PERSONS, {}).get("other_accounts")
    if others:
        console.print(
            f"kept: {others} other account(s) stitched to the same persons (erase them too with "
            "dmp forget --whole-person, or list them in the request)"
        )
    told = Table(title="channels that held their keys")
    for col in ("channel", "segment", "last delivery before", "told (next delivery)"):
        told.add_column(col)
    for c in st.channels:
        when = f"{c.told_at:%Y-%m-%d %H:%M:%S}" if c.told_at else "not yet"
        told.add_row(escape(c.channel), escape(c.segment), f"{c.last_before:%Y-%m-%d %H:%M:%S}", when)
    console.print(told if st.channels else "channels: none held their keys (no delivered pack had them)")
    if st.vacuumed_at:
        console.print(
            f"vacuum: done {st.vacuumed_at:%Y-%m-%d %H:%M:%S} UTC (retention {st.retention_hours:g} h): "
            "the deleted rows are in no file of the lake"
        )
    else:
        console.print("vacuum: pending (old table versions still hold the deleted rows; dmp forget --vacuum)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("forget")(forget_cmd)
