"""The one answer to "was this pack delivered?" (dmp.contracts.status), on plain row dicts."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from dmp.contracts.status import (
    AttemptKey,
    DeliveryStatus,
    as_date,
    delivered_keys,
    latest_attempts,
    parse_status,
)

D1, D2 = date(2026, 3, 14), date(2026, 3, 15)


def row(
    segment: str, channel: str | None, run_date: object, attempt: int | None, status: str, kind: str = "full"
) -> dict:
    return {
        "segment": segment,
        "channel": channel,
        "run_date": run_date,
        "attempt": attempt,
        "status": status,
        "kind": kind,
    }


def test_latest_attempt_decides_whatever_came_before() -> None:
    rows = [
        row("s", "jd", D1, 1, "success"),
        row("s", "jd", D1, 1, "success", "manifest"),
        row("s", "jd", D1, 2, "failed", "none"),
        row("s", "cp", D1, 1, "failed", "none"),
        row("s", "cp", D1, 2, "success"),
        row("s", "cp", D1, 2, "success", "manifest"),
    ]
    attempts = latest_attempts(rows)
    jd, cp = attempts[AttemptKey("s", "jd", D1)], attempts[AttemptKey("s", "cp", D1)]
    assert (jd.attempt, jd.status, jd.delivered) == (2, DeliveryStatus.FAILED, False)
    assert (cp.attempt, cp.status, cp.delivered) == (2, DeliveryStatus.SUCCESS, True)
    assert [r["kind"] for r in cp.rows] == ["full", "manifest"]  # every row of the latest attempt only
    assert [r["kind"] for r in jd.rows] == ["none"]
    assert delivered_keys(rows) == [AttemptKey("s", "cp", D1)]


def test_rows_from_light_readers_and_without_channel() -> None:
    rows = [
        row("s", "jd", "2026-03-14", 1, "success"),  # ISO string (pyarrow / JSON readers)
        row("s", "jd", datetime(2026, 3, 15, 0, 0), 1, "skipped", "none"),
        row("s", "jd", D2, None, "failed", "none"),  # a missing attempt number counts as 0
        row("s", None, D1, 9, "failed", "none"),  # no channel: never a delivery
        row("s", "", D1, 9, "failed", "none"),
    ]
    attempts = latest_attempts(rows)
    assert set(attempts) == {AttemptKey("s", "jd", D1), AttemptKey("s", "jd", D2)}
    assert attempts[AttemptKey("s", "jd", D1)].delivered
    assert attempts[AttemptKey("s", "jd", D2)].status is DeliveryStatus.SKIPPED  # attempt 1 beats attempt 0
    assert delivered_keys(rows) == [AttemptKey("s", "jd", D1)]


def test_delivered_keys_sorted_by_segment_channel_date() -> None:
    rows = [
        row(s, c, d, 1, "success")
        for s, c, d in [("b", "x", D1), ("a", "y", D2), ("a", "y", D1), ("a", "x", D2)]
    ]
    assert delivered_keys(rows) == [
        AttemptKey("a", "x", D2),
        AttemptKey("a", "y", D1),
        AttemptKey("a", "y", D2),
        AttemptKey("b", "x", D1),
    ]
    assert delivered_keys([]) == []


def test_status_and_date_parsing() -> None:
    assert parse_status("success") is DeliveryStatus.SUCCESS
    with pytest.raises(ValueError, match="status 'delivered' is not one of success, failed, skipped"):
        parse_status("delivered")
    with pytest.raises(ValueError, match="not one of"):
        latest_attempts([row("s", "jd", D1, 1, "ok")])
    assert (
        as_date("2026-03-14T00:00:00") == D1
        and as_date(datetime(2026, 3, 14, 23, 59)) == D1
        and as_date(D1) == D1
    )
