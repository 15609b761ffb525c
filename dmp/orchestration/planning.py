"""What the DAGs' light tasks decide without Spark: run dates, which specs in which order, which
channels, which evaluations are due.

Specs are read leniently here (a file that does not validate still gets its own task, which then
fails with the validation message); their validation belongs to ``dmp segments validate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from dmp.contracts.channels import CHANNELS_FILE
from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS, MAX_ATTRIBUTION_DAYS
from dmp.contracts.graph import dependency_waves
from dmp.contracts.status import as_date, delivered_keys
from dmp.contracts.tables import USER_TAGS

# The Airflow asset dmp_daily updates when a tag snapshot passed its gate (dmp_audiences runs on it).
USER_TAGS_ASSET = {"name": "dmp_user_tags", "uri": f"dmp://lake/{USER_TAGS}"}


# ------------------------------------------------------------------------------- run dates


def run_dates(params: Mapping[str, Any], logical_date: datetime | date | None) -> tuple[str, str]:
    """(from, to) for a run: ``params.date_from/date_to`` (one run over a range) else the logical date."""
    start = params.get("date_from") or None
    end = params.get("date_to") or None
    day = as_date(logical_date) if logical_date is not None else None
    if start is None and end is None:
        if day is None:
            raise ValueError("no logical date and no date_from/date_to params: give a date to process")
        return day.isoformat(), day.isoformat()
    start = start or end
    end = end or start
    if date.fromisoformat(end) < date.fromisoformat(start):
        raise ValueError(f"params: date_to {end} is before date_from {start}")
    return date.fromisoformat(start).isoformat(), date.fromisoformat(end).isoformat()


def _event_days(extra: Mapping[str, Any]) -> list[date]:
    """Every day one asset event covers: ``date_from`` … ``date_to`` (a range run of dmp_daily), or
    ``date`` / ``date_to`` alone; [] for an event without dates (e.g. one emitted by hand)."""
    end_text = extra.get("date_to") or extra.get("date")
    if not end_text:
        return []
    start_text = extra.get("date_from") or end_text
    try:
        start, end = date.fromisoformat(str(start_text)), date.fromisoformat(str(end_text))
    except ValueError:
        raise ValueError(
            f"{USER_TAGS_ASSET['name']} asset event extra {dict(extra)!r}: "
            "date_from / date_to must be dates as YYYY-MM-DD"
        ) from None
    if end < start:
        raise ValueError(
            f"{USER_TAGS_ASSET['name']} asset event extra {dict(extra)!r}: date_to {end} is before date_from {start}"
        )
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def asset_run_dates(events: Iterable[Mapping[str, Any] | None]) -> list[str]:
    """Every day the triggering asset events cover, sorted, each once.

    Airflow queues the events that arrive while a run of the consuming DAG is busy and hands them
    all to the next run (``triggering_asset_events``), in no promised order, possibly twice for a
    day whose tags were rebuilt. A catch-up of several days must build packs for each of them, in
    date order (an incremental delivery diffs against the day before), so nothing is dropped.
    """
    days = {day for extra in events if extra for day in _event_days(extra)}
    return [day.isoformat() for day in sorted(days)]


def date_ranges(days: Iterable[str]) -> list[tuple[str, str]]:
    """Sorted distinct ``days`` as runs of consecutive days: one ``--from A --to B`` job per run.

    ``["2026-03-01", "2026-03-02", "2026-03-05"]`` -> ``[("2026-03-01", "2026-03-02"),
    ("2026-03-05", "2026-03-05")]``: a step processes a range in one Spark application, in order.
    """
    ranges: list[tuple[date, date]] = []
    for day in sorted({date.fromisoformat(d) for d in days}):
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return [(a.isoformat(), b.isoformat()) for a, b in ranges]


def date_args(start: str, end: str) -> list[str]:
    """The CLI's date options for one range: ``--date D`` for one day, else ``--from A --to B``."""
    return ["--date", start] if start == end else ["--from", start, "--to", end]


# ------------------------------------------------------------------------------- specs, channels


@dataclass(frozen=True)
class SpecInfo:
    """What planning needs of one spec file: its name, channels, references and attribution window."""

    path: str
    name: str
    channels: list[str] = field(default_factory=list)
    refs: list[str] = field(default_factory=list)
    attribution_days: int = DEFAULT_ATTRIBUTION_DAYS
    valid: bool = False


def list_specs(segments_dir: str) -> list[str]:
    """Every segment spec file in the folder (sorted), valid or not: each gets its own task."""
    from dmp.contracts.specs import spec_files

    if not Path(segments_dir).is_dir():
        raise FileNotFoundError(f"{segments_dir}: segments folder not found")
    return [str(p) for p in spec_files(segments_dir)]


def _load_yaml(path: str) -> object:
    """The file's YAML value, with the size, alias and depth limits of every spec read (safe_yaml)."""
    from dmp.contracts.safe_yaml import load_yaml_file

    return load_yaml_file(Path(path))


def _lenient_attribution_days(raw: Mapping[str, Any]) -> int:
    """``attribution_days`` of a spec that does not validate, when it is a usable value, else the
    default: a pack delivered while the spec was valid is still evaluated over its window."""
    days = raw.get("attribution_days")
    if isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_ATTRIBUTION_DAYS:
        return days
    return DEFAULT_ATTRIBUTION_DAYS


def spec_info(path: str) -> SpecInfo:
    """A spec's planning facts: from the validated model, else read leniently from the YAML.

    A file that does not validate is still planned (under its ``name`` or file name, with the
    references it names) so its own task runs and reports the validation error.
    """
    from dmp.contracts.errors import SpecError
    from dmp.contracts.specs import load_spec, spec_references

    try:
        spec = load_spec(path)
    except SpecError:
        return _lenient_spec_info(path)
    return SpecInfo(
        path=path,
        name=spec.name,
        channels=list(spec.channels),
        refs=sorted(spec_references(spec)),
        attribution_days=spec.attribution_days,
        valid=True,
    )


def _lenient_spec_info(path: str) -> SpecInfo:
    try:
        raw = _load_yaml(path)
    except Exception:  # unreadable YAML: planned under its file name, its task reports the error
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    name = raw.get("name") if isinstance(raw.get("name"), str) else Path(path).stem
    channels = [c for c in raw.get("channels") or [] if isinstance(c, str)]
    refs: set[str] = set()
    exclude = raw.get("exclude") if isinstance(raw.get("exclude"), dict) else {}
    refs.update(s for s in exclude.get("segments") or [] if isinstance(s, str))
    seed = raw.get("seed")
    if isinstance(seed, str):  # not valid (seed is a mapping), but clearly names its dependency
        refs.add(seed)
    elif isinstance(seed, dict) and isinstance(seed.get("segment"), str):
        refs.add(seed["segment"])
    return SpecInfo(
        path=path,
        name=name,
        channels=channels,
        refs=sorted(refs),
        attribution_days=_lenient_attribution_days(raw),
    )


def spec_levels(infos: list[SpecInfo]) -> list[list[str]]:
    """Spec paths grouped into waves: a spec comes after the specs it references (seed / exclusions).

    Specs in a cycle or referencing an unknown segment go in the last wave, where their own
    validation fails them without holding the others back (:func:`dmp.contracts.graph.dependency_waves`).
    """
    path_of = {i.name: i.path for i in infos}
    graph = {i.name: list(i.refs) for i in infos}
    return [[path_of[name] for name in wave] for wave in dependency_waves(graph)]


def list_channels(segments_dir: str) -> list[str]:
    """Channel names declared in ``channels.yaml`` (empty if the file is missing)."""
    path = Path(segments_dir) / CHANNELS_FILE
    if not path.is_file():
        return []
    raw = _load_yaml(str(path)) or {}
    channels = raw.get("channels") if isinstance(raw, dict) else None
    return sorted(channels) if isinstance(channels, dict) else []


# ------------------------------------------------------------------------------- uplift planning


def due_evaluations(
    deliveries: Iterable[Mapping[str, Any]],
    windows: Mapping[str, int],
    as_of: date,
    evaluated: Iterable[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """(segment, run_date) pairs whose attribution window (run_date+1 .. run_date+N) has closed.

    ``windows`` maps a segment to its spec's ``attribution_days`` (:attr:`SpecInfo.attribution_days`;
    never the look-back ``window_days``); a segment without a spec gets the default. A window closes when its last day is on or before ``as_of`` (the latest day whose data is in the
    lake). Only deliveries whose latest attempt succeeded count (``delivered_keys``); pairs already
    in ``evaluated`` are skipped; one entry per pair even if it went to several channels (the
    evaluation compares the pack's groups).
    """
    done = {(s, str(d)) for s, d in evaluated}
    due: dict[tuple[str, str], dict[str, str]] = {}
    for key in delivered_keys(deliveries):
        days = int(windows.get(key.segment, DEFAULT_ATTRIBUTION_DAYS))
        closes = key.run_date + timedelta(days=days)
        pair = (key.segment, key.run_date.isoformat())
        if closes <= as_of and pair not in done:
            due[pair] = {"segment": key.segment, "run_date": pair[1], "window_days": str(days)}
    return [due[k] for k in sorted(due)]


def evaluation_batches(
    due: Iterable[Mapping[str, str]], evaluated: Iterable[tuple[str, str]]
) -> list[dict[str, str]]:
    """One ``dmp evaluate`` per run date with due packs: ``{"run_date", "segments": "a,b"}``, in date order.

    A batch holds the date's due packs and the packs of that date evaluated before, so Holm's
    adjustment (``dmp evaluate --segment A --segment B``) is over the same family for all of them.
    """
    batches: dict[str, set[str]] = {}
    for item in due:
        batches.setdefault(item["run_date"], set()).add(item["segment"])
    for segment, run_date in evaluated:
        if run_date in batches:
            batches[run_date].add(segment)
    return [{"run_date": day, "segments": ",".join(sorted(segs))} for day, segs in sorted(batches.items())]


# ------------------------------------------------------------------------------- erasure


def waiting_erasures(requests: Iterable[Mapping[str, Any]]) -> list[str]:
    """Ids of the erasure requests (rows of ``ops/erasure_requests``) not vacuumed yet: while there
    is none, ``dmp_daily``'s ``vacuum_erasures`` starts no Spark job (docs/privacy.md "Erasure")."""
    return sorted(str(r["request_id"]) for r in requests if r.get("vacuumed_at") is None)
