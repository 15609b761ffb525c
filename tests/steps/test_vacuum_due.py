"""When an erasure request is final after a vacuum (pure: no Spark session)."""

from __future__ import annotations

import json
from datetime import datetime

from dmp.contracts import tables
from dmp.orchestration.planning import waiting_erasures
from dmp.steps.forget_status import purge_scope, request_due, split_covered

NOW = datetime(2026, 3, 20, 12, 0)


def _req(rid: str, finished: datetime | None, state: dict, **more: dict) -> dict[str, object]:
    outcomes = {tables.EVENTS: {"status": "deleted", "rows": 3}, tables.DELIVERY_STATE: state, **more}
    return {
        "request_id": rid,
        "finished_at": finished,
        "tables_json": json.dumps(outcomes),
        "vacuumed_at": None,
    }


def test_a_request_is_due_a_retention_after_it_finished_and_its_state_keys_left() -> None:
    old, recent = datetime(2026, 3, 10), datetime(2026, 3, 19)
    kept = {"status": "kept_until_delivery", "rows": 2}
    cleaned_long_ago = {"status": "deleted", "rows": 2, "cleaned_at": "2026-03-12T00:00:00"}
    cleaned_now = {"status": "deleted", "rows": 2, "cleaned_at": NOW.isoformat()}
    no_state = {"status": "missing", "rows": 0}
    assert request_due(_req("a", old, cleaned_long_ago), NOW, 168.0)
    assert not request_due(_req("b", recent, cleaned_long_ago), NOW, 168.0)  # finished 1 day ago
    assert not request_due(_req("c", old, kept), NOW, 168.0)  # a channel was not told yet
    assert not request_due(_req("d", old, cleaned_now), NOW, 168.0)  # keys deleted just now
    assert request_due(_req("d", old, cleaned_now), NOW, 0.0)  # a confirmed immediate purge
    assert request_due(_req("e", old, no_state), NOW, 168.0)
    assert not request_due(_req("f", None, no_state), NOW, 0.0)  # never finished
    reqs = [_req(r, old, s) for r, s in (("z", cleaned_long_ago), ("y", kept), ("x", no_state))]
    assert split_covered(reqs, NOW, 168.0) == (["x", "z"], ["y"])


def test_the_purge_covers_every_existing_table_the_requests_were_erased_from() -> None:
    one = _req(
        "a", NOW, {"status": "missing", "rows": 0}, **{tables.USER_TAGS: {"status": "nothing", "rows": 0}}
    )
    two = _req(
        "b", NOW, {"status": "deleted", "rows": 1}, **{tables.PERSONS: {"status": "missing", "rows": 0}}
    )
    assert purge_scope([one]) == sorted([tables.EVENTS, tables.USER_TAGS])
    assert purge_scope([one, two]) == sorted([tables.EVENTS, tables.USER_TAGS, tables.DELIVERY_STATE])
    assert purge_scope([]) == []


def test_the_daily_vacuum_task_wakes_only_for_requests_not_vacuumed() -> None:
    rows = [
        {"request_id": "r2", "vacuumed_at": None},
        {"request_id": "r1", "vacuumed_at": datetime(2026, 3, 1)},
        {"request_id": "r0", "vacuumed_at": None},
    ]
    assert waiting_erasures(rows) == ["r0", "r2"]
    assert waiting_erasures(rows[1:2]) == [] and waiting_erasures([]) == []
