"""``dmp generate``: deterministic demo data (events, identities, opt-outs, planted campaign truth)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.table import Table

    from dmp.demo.generate import GenerateSummary

OutOpt = Annotated[
    Path, typer.Option("--out", help="Output folder (created; a previous output is replaced).")
]
UsersOpt = Annotated[int | None, typer.Option("--users", help="Number of users (default 10000).")]
EventsOpt = Annotated[
    int | None, typer.Option("--events", help="Pick the number of users to get about this many valid events.")
]
DaysOpt = Annotated[int, typer.Option("--days", help="Number of days to generate.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed: same arguments -> same bytes.")]
StartOpt = Annotated[str, typer.Option("--start", help="First day YYYY-MM-DD.")]
CampaignDateOpt = Annotated[
    str | None,
    typer.Option("--campaign-date", help="Run date R of the planted campaign (default: last day - 14)."),
]
NoCampaignOpt = Annotated[bool, typer.Option("--no-campaign", help="Do not plant the campaign.")]
BadRateOpt = Annotated[float, typer.Option("--bad-rate", help="Share of extra bad lines per file.")]
PlantedProbOpt = Annotated[
    float, typer.Option("--planted-prob", help="P(extra S001 order | eligible, treated).")
]
ChunkUsersOpt = Annotated[
    int | None, typer.Option("--chunk-users", help="Users simulated at once (memory knob).")
]
WorkersOpt = Annotated[
    int, typer.Option("--workers", help="Processes generating chunks in parallel (output is identical).")
]
# Accepted like every command's --lake so scripts can pass it everywhere; the generator writes to --out.
UnusedLakeOpt = Annotated[
    str | None,
    typer.Option("--lake", envvar="DMP_LAKE", help="Accepted like every command; unused (writes to --out)."),
]
DEFAULT_USERS = 10_000


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("generate")(generate_cmd)


def _n_users(users: int | None, events: int | None, days: int) -> int:
    """--users, or the number of users that gives about --events valid events, or the default."""
    from dmp.contracts.errors import DmpError
    from dmp.demo.generate import users_for_events

    if users is not None and events is not None:
        raise DmpError("give either --users N or --events N, not both")
    if events is not None and events < 1:
        raise DmpError(f"--events: expected a positive number of events, got {events}")
    if days < 1:
        raise DmpError(f"--days: expected a positive number of days, got {days}")
    return users if users is not None else (users_for_events(events, days) if events else DEFAULT_USERS)


def generate_cmd(
    out: OutOpt,
    users: UsersOpt = None,
    events: EventsOpt = None,
    days: DaysOpt = 30,
    seed: SeedOpt = 0,
    start: StartOpt = "2026-09-01",
    campaign_date: CampaignDateOpt = None,
    no_campaign: NoCampaignOpt = False,
    bad_rate: BadRateOpt = 0.002,
    planted_prob: PlantedProbOpt = 0.06,
    chunk_users: ChunkUsersOpt = None,
    workers: WorkersOpt = 1,
    lake: UnusedLakeOpt = None,
) -> None:
    """Generate demo data: JSON-lines events by date, identities, opt-outs, catalogue and ground truth.

    About 0.7-0.8 valid events per user per day (see catalog.json "events_per_user_day").
    """
    from rich.console import Console

    from dmp.contracts.dates import parse_date
    from dmp.demo.generate import DEFAULT_PLANTED_PROB, generate

    n_users = _n_users(users, events, days)
    console = Console()
    began = time.perf_counter()
    with console.status("generating…") as status:
        summary = generate(
            out,
            n_users,
            days,
            seed,
            parse_date(start, "--start"),
            bad_rate=bad_rate,
            campaign=not no_campaign,
            campaign_date=parse_date(campaign_date, "--campaign-date") if campaign_date else None,
            planted_prob=planted_prob if planted_prob is not None else DEFAULT_PLANTED_PROB,
            chunk_users=chunk_users,
            workers=workers,
            progress=lambda done, total: status.update(f"generating… chunk {done}/{total}"),
        )
    elapsed = time.perf_counter() - began
    console.print(summary_table(summary, out))
    console.print(
        f"{summary.start} … {summary.end}, {summary.events_per_user_day} events/user/day, "
        f"{elapsed:.1f}s ({summary.lines_total / max(elapsed, 1e-9):,.0f} lines/s). Truth in {out / 'truth'}"
    )


def summary_table(summary: GenerateSummary, out: Path) -> Table:
    """What was written, as a rich table: events per type, bad lines, users, identities, campaign."""
    from rich.table import Table

    table = Table(title=f"dmp generate -> {out}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, count in summary.events_by_type.items():
        table.add_row(f"events: {name}", f"{count:,}")
    table.add_row("[bold]valid events", f"[bold]{summary.events_total:,}")
    for name, count in summary.bad_records.items():
        table.add_row(f"bad: {name}", f"{count:,}")
    table.add_row("lines written", f"{summary.lines_total:,} in {summary.event_files:,} files")
    table.add_row("users", f"{summary.users:,} ({summary.users_without_ids:,} without any id)")
    table.add_row("identities", ", ".join(f"{k} {v:,}" for k, v in summary.identities_by_type.items()))
    table.add_row("opted out", f"{summary.opted_out:,}")
    if summary.campaign:
        c = summary.campaign
        table.add_row(
            "campaign",
            f"{c['segment']} R={c['run_date']}: {c['n_eligible']:,} eligible "
            f"({c['n_treatment']:,} treatment / {c['n_holdout']:,} holdout), "
            f"true uplift {100 * (c['true_uplift_abs'] or 0):.2f} pp",
        )
    return table
