"""Date arguments shared by every command: ``--date D`` or ``--from D1 --to D2`` (inclusive, in order)."""

from __future__ import annotations

from datetime import date, timedelta

from dmp.contracts.errors import DmpError

# Days after a run date whose orders count as the campaign's outcome (R+1 … R+N): a spec's
# ``attribution_days``, this when the spec does not say. Not the look-back ``window_days`` (which
# days of behaviour select the audience, R-N+1 … R): a 30-day look-back can run a 14-day campaign.
DEFAULT_ATTRIBUTION_DAYS = 14
# The longest attribution window a spec may ask for. Past ~90 days the treatment/holdout gap is
# mostly other campaigns and season, the pre-period balance check (the same N days before R) and
# the "delivered shortly before" look-back (2N days) reach back months, and the 90-day tags no
# longer describe the users that were selected.
MAX_ATTRIBUTION_DAYS = 90


def parse_date(value: str, field: str = "--date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise DmpError(f"{field}: expected a date as YYYY-MM-DD, got {value!r}") from exc


def resolve_dates(day: str | None, from_: str | None, to: str | None) -> list[date]:
    """Turn the CLI's date options into the ordered list of dates to process."""
    if day and (from_ or to):
        raise DmpError("give either --date D or --from D1 --to D2, not both")
    if day:
        return [parse_date(day)]
    if not (from_ and to):
        raise DmpError("missing dates: give --date D or both --from D1 and --to D2")
    start, end = parse_date(from_, "--from"), parse_date(to, "--to")
    if end < start:
        raise DmpError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def window_start(run_date: date, window_days: int) -> date:
    """First day of an N-day window ending on run_date, both ends inclusive (design.md §3)."""
    if window_days < 1:
        raise DmpError(f"window_days must be >= 1, got {window_days}")
    return run_date - timedelta(days=window_days - 1)
