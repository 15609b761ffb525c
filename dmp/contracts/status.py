"""Delivery statuses and the one answer to "was this pack delivered?" (design.md §3, ops/deliveries).

``dmp deliver`` records every attempt of a (segment, channel, run_date) as rows of
``ops/deliveries`` (one per file kind, all with the attempt's number and status). A pack counts as
delivered when its **latest** attempt succeeded: a later failed attempt means downstream may have
half a folder, so the pack is not delivered any more, whatever an earlier attempt did. Delivery
(what was sent before), evaluation (which packs reached a channel), the uplift DAG (which
evaluations are due) and ``dmp summary`` all read attempts through :func:`latest_attempts`.

Pure Python over row mappings, so the Airflow side can call it on rows read without Spark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class DeliveryStatus(StrEnum):
    """What one delivery attempt ended as (the only values ``ops/deliveries.status`` holds)."""

    SUCCESS = "success"  # files, manifest and _SUCCESS are there (also when nothing changed)
    FAILED = "failed"  # the attempt raised; the folder may be partial and has no _SUCCESS
    SKIPPED = "skipped"  # nothing was sent: pack under min_size, not deliverable, or no pack


@dataclass(frozen=True)
class AttemptKey:
    segment: str
    channel: str
    run_date: date


@dataclass(frozen=True)
class LatestAttempt:
    """The latest attempt of one (segment, channel, run_date) and all its rows."""

    key: AttemptKey
    attempt: int
    status: DeliveryStatus
    rows: tuple[Mapping[str, Any], ...]

    @property
    def delivered(self) -> bool:
        return self.status is DeliveryStatus.SUCCESS


def as_date(value: date | datetime | str) -> date:
    """A run date from a Spark ``date``, a ``datetime`` or an ISO string (the light readers' form)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def parse_status(value: object) -> DeliveryStatus:
    """The status of a stored row; anything else is a corrupt ``ops/deliveries`` and fails loudly."""
    try:
        return DeliveryStatus(str(value))
    except ValueError as exc:
        allowed = ", ".join(s.value for s in DeliveryStatus)
        raise ValueError(f"ops/deliveries: status {value!r} is not one of {allowed}") from exc


def latest_attempts(rows: Iterable[Mapping[str, Any]]) -> dict[AttemptKey, LatestAttempt]:
    """Group ``ops/deliveries`` rows by (segment, channel, run_date) and keep the latest attempt.

    Rows without a channel (none are written today) cannot be a delivery and are ignored.
    """
    grouped: dict[AttemptKey, list[Mapping[str, Any]]] = {}
    for row in rows:
        channel = row.get("channel")
        if not channel:
            continue
        key = AttemptKey(str(row["segment"]), str(channel), as_date(row["run_date"]))
        grouped.setdefault(key, []).append(row)
    out: dict[AttemptKey, LatestAttempt] = {}
    for key, group in grouped.items():
        last = max(int(r.get("attempt") or 0) for r in group)
        latest = tuple(r for r in group if int(r.get("attempt") or 0) == last)
        out[key] = LatestAttempt(key, last, parse_status(latest[0]["status"]), latest)
    return out


def delivered_keys(rows: Iterable[Mapping[str, Any]]) -> list[AttemptKey]:
    """(segment, channel, run_date) whose latest attempt succeeded, sorted."""
    attempts = latest_attempts(rows)
    return sorted(
        (k for k, a in attempts.items() if a.delivered), key=lambda k: (k.segment, k.channel, k.run_date)
    )
