"""``dmp deliver`` (packs -> channel destinations) and ``dmp pull`` (the reference downstream client)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SegmentsDirOpt, ToOpt

if TYPE_CHECKING:  # the step imports pyspark: keep `dmp --help` fast
    from dmp.steps.deliver import DeliveryResult

SegmentOpt = Annotated[str | None, typer.Option("--segment", help="Only this segment.")]
ChannelOpt = Annotated[str | None, typer.Option("--channel", help="Only this channel (from channels.yaml).")]


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""

    @app.command("deliver")
    def deliver_cmd(
        lake: LakeOpt = None,
        date: DateOpt = None,
        from_: FromOpt = None,
        to: ToOpt = None,
        segment: SegmentOpt = None,
        channel: ChannelOpt = None,
        segments: SegmentsDirOpt = "segments",
    ) -> None:
        """Deliver audience packs (treatment users, hashed ids) to their channels: files, manifest.json, _SUCCESS."""
        from dmp.contracts.dates import resolve_dates
        from dmp.spark.session import get_spark
        from dmp.steps.deliver import DeliveryFailed, run_delivery

        days = resolve_dates(date, from_, to)
        spark = get_spark("dmp-deliver")
        try:
            results = run_delivery(spark, lake, days, segments, segment, channel)
        except DeliveryFailed as exc:
            _print_results(exc.results)
            raise
        _print_results(results)

    @app.command("pull")
    def pull_cmd(
        channel: Annotated[str, typer.Option("--channel", help="Channel name from channels.yaml.")],
        segment: Annotated[str, typer.Option("--segment", help="Segment name.")],
        dest: Annotated[
            str, typer.Option("--dest", help="Local folder holding current.csv and the pull state.")
        ],
        run_date: Annotated[
            str | None,
            typer.Option(
                "--run-date", help="Bring the copy to this delivery (YYYY-MM-DD) instead of the latest."
            ),
        ] = None,
        segments: SegmentsDirOpt = "segments",
    ) -> None:
        """Fetch the latest complete delivery, verify every checksum, apply it to DEST/current.csv."""
        from dmp.delivery.pull import pull_channel

        res = pull_channel(segments, channel, segment, dest, run_date)
        where = f"{channel}/{segment}"  # both checked against [a-z0-9_]+ by pull_channel
        if res.up_to_date:
            Console().print(
                f"[green]up to date[/] with {where}/{res.run_date}: {res.rows} rows in {escape(res.path)}"
            )
        else:
            Console().print(
                f"[green]applied[/] {', '.join(res.applied)} from {where}: {res.rows} rows in {escape(res.path)}"
            )


def _print_results(results: list[DeliveryResult]) -> None:
    if not results:
        Console().print("nothing delivered")
        return
    table = Table(title="deliveries")
    for col in ("run_date", "segment", "channel", "status", "mode", "rows", "match rate", "where / note"):
        table.add_column(col)
    for r in results:
        counts = r.counts or {}
        rate = counts.get("match_rate")
        # Cells are rich markup: escape what comes from specs, paths and error messages.
        table.add_row(
            str(r.run_date),
            escape(r.segment),
            escape(r.channel),
            r.status,
            r.mode,
            str(counts.get("delivered_rows", "")),
            "" if rate is None else f"{rate:.1%}",
            escape(r.path + (f"\n{r.message}" if r.message else "")),
        )
    Console().print(table)
