"""``dmp forget`` on a small hand-made lake (issue 18, erasure): what goes, what stays, the record,
the status, an idempotent rerun, and re-ingest of the original sources keeping the accounts out.

Accounts: ``u0000042`` (phone 13800138000, oaid shared with ``u0000099``) and ``u0000007`` (an
email) are erased; ``u00000420`` (an id that *contains* ``u0000042``) and ``u0000099`` stay.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from rich.console import Console

from dmp.cli import run
from dmp.cli.ingest import reconciliation_table
from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.identity_guards import IdentityGuards
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.consents import run_ingest_consents
from dmp.steps.forget import run_forget
from dmp.steps.forget_status import clean_delivery_state, request_status
from dmp.steps.identities import run_ingest_identities
from dmp.steps.ingest import run_ingest
from dmp.steps.stitch import run_stitch
from dmp.steps.suppression import run_ingest_suppression
from dmp.transforms.erasure import erasure_hash

GONE = ["u0000007", "u0000042"]
KEPT = ["u00000420", "u0000099"]
DAY = date(2026, 3, 1)
INGEST_AT = datetime(2026, 3, 5, tzinfo=UTC)
FORGET_AT = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PHONE_KEY_42 = hashlib.sha256(b"+8613800138000").hexdigest()  # jd_ads: phone sha256, e164
PHONE_KEY_420 = hashlib.sha256(b"+8613900139000").hexdigest()


def _ev(eid: str, user: str, etype: str = "view") -> str:
    return json.dumps(
        {"event_id": eid, "event_time": "2026-03-01T10:00:00Z", "user_id": user, "event_type": etype,
         "sku_id": "K1", "store_id": "S001", "brand_id": "B001", "category_id": "C01", "price": 1.0,
         "quantity": 1, "channel": "app", "coupon_id": None}
    )  # fmt: skip


EVENT_LINES = [
    _ev("e1", "u0000042"),
    _ev("e2", "u0000042", "order"),
    _ev("e3", "u0000042"),
    _ev("e4", "u0000007"),
    _ev("e5", "u0000007"),
    _ev("e6", "u00000420"),
    _ev("e7", "u00000420"),
    _ev("e8", "u0000099"),
    '{"event_id": "b1", "user_id": "u0000042"',  # malformed, names an erased account
    "not json: call 138-0013-8000",  # malformed, names an erased account's phone
    _ev("b2", "u00000420", "bogus"),  # a kept account's bad line
]
IDENTITY_LINES = [
    '{"user_id": "u0000042", "id_type": "phone", "id_value": "13800138000"}',
    '{"user_id": "u0000042", "id_type": "oaid", "id_value": "oaid-shared-1"}',
    '{"user_id": "u0000099", "id_type": "oaid", "id_value": "oaid-shared-1"}',
    '{"user_id": "u0000007", "id_type": "email", "id_value": "Seven@Example.com"}',
    '{"user_id": "u00000420", "id_type": "phone", "id_value": "13900139000"}',
    '{"user_id": "u0000007", "id_type": "fax", "id_value": "1"}',  # quarantined, user_id kept
    "broken seven@example.com",  # quarantined, names an erased email
    '{"user_id": "u0000099", "id_type": "fax", "id_value": "2"}',  # quarantined, stays
]
CONSENT_LINES = [
    json.dumps({"user_id": u, "purpose": "ad_personalization", "granted": True, "at": "2026-01-01T00:00:00Z"})
    for u in GONE + KEPT
] + ['{"user_id": "u0000042", "purpose": "telepathy", "granted": true, "at": "2026-01-01T00:00:00Z"}']


def _write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)


def _users(spark, lake: str, table: str) -> list[str]:
    return sorted(r["user_id"] for r in lk.read_table(spark, lake, table).select("user_id").collect())


def _printed(renderable: object) -> str:
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def _versions(spark, lake: str) -> dict[str, int | None]:
    names = [v for k, v in vars(tables).items() if k.isupper() and isinstance(v, str) and "/" in v]
    return {t: lk.table_version(spark, lake, t) for t in names}


def _gold_tables(spark, lake: str) -> None:
    everyone = GONE + KEPT
    daily = spark.createDataFrame(
        [(u, DAY, 1) for u in everyone], "user_id string, event_date date, views long"
    )
    lk.overwrite_table(daily, lake, tables.USER_DAILY)
    tags = spark.createDataFrame(
        [(u, DAY, "active") for u in everyone], "user_id string, as_of_date date, stage string"
    )
    lk.overwrite_table(tags, lake, tables.USER_TAGS)
    lk.overwrite_table(tags, lake, tables.USER_TAG_STATE)
    pack = [
        dict.fromkeys(schemas.AUDIENCE_PACKS.fieldNames())
        | {
            "segment": "s1",
            "run_date": DAY,
            "user_id": u,
            "group": "treatment" if u != "u0000099" else "holdout",
        }
        | {"spec_hash": "h", "kind": "rule", "deliverable": True}
        for u in everyone
    ]
    lk.overwrite_table(spark.createDataFrame(pack, schemas.AUDIENCE_PACKS), lake, tables.AUDIENCE_PACKS)
    state = [
        ("jd_ads", "s1", DAY, "phone", k, None, None, None, None, None) for k in (PHONE_KEY_42, PHONE_KEY_420)
    ]
    lk.overwrite_table(
        spark.createDataFrame(state, schemas.DELIVERY_STATE_SCHEMA), lake, tables.DELIVERY_STATE
    )
    contacts = [("jd_ads", DAY, "s1", u, None, "delivered") for u in everyone if u != "u0000099"]
    lk.overwrite_table(
        spark.createDataFrame(contacts, schemas.CHANNEL_CONTACTS_SCHEMA), lake, tables.CHANNEL_CONTACTS
    )
    _delivered(spark, lake, datetime(2026, 3, 9, 8, 0))


def _delivered(spark, lake: str, at: datetime) -> None:
    row = ("s1", "jd_ads", at.date(), 1, "add", "file:///x", 2, "0" * 64, "success", at, None)
    lk.append_rows(
        spark,
        lake,
        tables.DELIVERIES,
        schemas.DELIVERIES_SCHEMA,
        [dict(zip(schemas.DELIVERIES_SCHEMA.fieldNames(), row, strict=True))],
    )


def _person_identifiers(spark, lake: str) -> set[tuple[str, str, str]]:
    rows = lk.read_table(spark, lake, tables.PERSON_IDENTIFIERS).collect()
    return {(r["person_id"], r["id_type"], r["id_value"]) for r in rows}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("forget-src")
    return {
        "events": _write(root / "events" / "e.jsonl", EVENT_LINES),
        "identities": _write(root / "identities" / "i.jsonl", IDENTITY_LINES),
        "consents": _write(root / "consents" / "c.jsonl", CONSENT_LINES),
        "suppression": _write(root / "opt_out.csv", ["user_id", "u0000007", "u0000099"]),
    }


@pytest.fixture(scope="module")
def forgotten(spark, tmp_path_factory, sources) -> tuple[str, object, dict]:
    lake = str(tmp_path_factory.mktemp("forget-lake"))
    run_ingest(spark, lake, sources["events"], "jsonl", skip_checks=True, now=INGEST_AT)
    run_ingest_identities(spark, lake, sources["identities"], now=INGEST_AT)
    run_ingest_consents(spark, lake, sources["consents"], now=INGEST_AT)
    run_ingest_suppression(spark, lake, "opt_out", sources["suppression"], now=INGEST_AT)
    run_stitch(spark, lake, DAY, IdentityGuards())
    _gold_tables(spark, lake)
    persons_before = {
        r["user_id"]: r["person_id"] for r in lk.read_table(spark, lake, tables.PERSONS).collect()
    }
    persons_before["identifiers"] = _person_identifiers(spark, lake)
    result = run_forget(spark, lake, GONE, "req-1", now=FORGET_AT)
    return lake, result, persons_before


def test_the_accounts_are_gone_from_every_table_and_the_others_untouched(spark, forgotten) -> None:
    lake, result, persons_before = forgotten
    assert _users(spark, lake, tables.EVENTS) == ["u00000420", "u00000420", "u0000099"]
    for table in (
        tables.IDENTITIES,
        tables.CONSENTS,
        tables.USER_DAILY,
        tables.USER_TAGS,
        tables.USER_TAG_STATE,
    ):
        assert sorted(set(_users(spark, lake, table))) == KEPT, table
    assert _users(spark, lake, tables.AUDIENCE_PACKS) == KEPT
    assert _users(spark, lake, tables.SUPPRESSION_LISTS) == ["u0000099"]
    persons = {r["user_id"]: r["person_id"] for r in lk.read_table(spark, lake, tables.PERSONS).collect()}
    assert persons == {u: persons_before[u] for u in KEPT}
    # the oaid u0000042 shared with u0000099 stays with that person; the erased phone and email go
    p42, p7 = persons_before["u0000042"], persons_before["u0000007"]
    assert p42 == persons["u0000099"]
    assert _person_identifiers(spark, lake) == persons_before["identifiers"] - {
        (p42, "phone", "13800138000"),
        (p7, "email", "Seven@Example.com"),
    }
    assert (p42, "oaid", "oaid-shared-1") in persons_before["identifiers"]
    raws = sorted(r["raw"] for r in lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).collect())
    assert raws == [EVENT_LINES[-1]]
    id_q = sorted(r["raw"] for r in lk.read_table(spark, lake, tables.IDENTITIES_QUARANTINE).collect())
    assert id_q == [IDENTITY_LINES[-1]]
    assert lk.read_table(spark, lake, tables.CONSENTS_QUARANTINE).count() == 0
    assert lk.read_table(spark, lake, tables.DELIVERY_STATE).count() == 2  # kept until the next delivery
    assert result.tables == {
        tables.EVENTS: {"status": "deleted", "rows": 5},
        tables.EVENTS_QUARANTINE: {"status": "deleted", "rows": 2},
        tables.IDENTITIES: {"status": "deleted", "rows": 3},
        tables.IDENTITIES_QUARANTINE: {"status": "deleted", "rows": 2},
        tables.CONSENTS: {"status": "deleted", "rows": 2},
        tables.CONSENTS_QUARANTINE: {"status": "deleted", "rows": 1},
        tables.PERSONS: {"status": "deleted", "rows": 2, "other_accounts": 1},  # u0000099, u0000042's person
        tables.PERSON_IDENTIFIERS: {"status": "deleted", "rows": 1},
        tables.USER_DAILY: {"status": "deleted", "rows": 2},
        tables.USER_TAGS: {"status": "deleted", "rows": 2},
        tables.USER_TAG_STATE: {"status": "deleted", "rows": 2},
        tables.AUDIENCE_PACKS: {"status": "deleted", "rows": 2, "segments": ["s1"]},
        tables.SUPPRESSION_LISTS: {"status": "deleted", "rows": 1},
        tables.CHANNEL_CONTACTS: {"status": "deleted", "rows": 2},
        tables.DELIVERY_STATE: {"status": "kept_until_delivery", "rows": 1},
    }
    assert _users(spark, lake, tables.CHANNEL_CONTACTS) == ["u00000420"]


def test_tombstones_and_record_hold_hashes_only(spark, forgotten) -> None:
    lake, _result, _ = forgotten
    hashes = sorted(r["user_hash"] for r in lk.read_table(spark, lake, tables.ERASED_USERS).collect())
    assert hashes == sorted(erasure_hash(u) for u in GONE)
    kinds = {r["kind"] for r in lk.read_table(spark, lake, tables.ERASED_IDENTIFIERS).collect()}
    assert kinds == {"mention", "delivery_key"}
    for table in (tables.ERASED_USERS, tables.ERASED_IDENTIFIERS, tables.ERASURE_REQUESTS):
        text = json.dumps([r.asDict() for r in lk.read_table(spark, lake, table).collect()], default=str)
        assert not any(v in text for v in ["u0000042", "u0000007", "13800138000", "seven@example.com"]), table
    req = lk.read_table(spark, lake, tables.ERASURE_REQUESTS).collect()
    assert [(r["request_id"], r["accounts"], r["vacuumed_at"]) for r in req] == [("req-1", 2, None)]


def test_status_says_which_channels_were_told_and_the_rerun_changes_nothing(spark, forgotten, capsys) -> None:
    lake, result, _ = forgotten
    before = _versions(spark, lake)
    again = run_forget(spark, lake, GONE, "req-1", now=datetime(2026, 3, 10, 13, 0, tzinfo=UTC))
    assert _versions(spark, lake) == before
    assert again.tables == result.tables and again.wrote == []
    st = request_status(spark, lake, "req-1")
    assert st.requested_at == datetime(2026, 3, 10, 12, 0)
    assert [(c.channel, c.segment, c.told_at) for c in st.channels] == [("jd_ads", "s1", None)]
    assert run(["forget", "--status", "req-1", "--lake", lake]) == 0
    out = capsys.readouterr().out
    assert "erasure request req-1: 2 accounts" in out
    assert "jd_ads" in out and "not yet" in out and "vacuum: pending" in out
    assert "kept: 1 other account(s) stitched to the same persons" in out
    assert (
        clean_delivery_state(
            spark, lake, [r.asDict() for r in lk.read_table(spark, lake, tables.ERASURE_REQUESTS).collect()]
        )
        == 0
    )
    _delivered(spark, lake, datetime(2026, 3, 11, 8, 0))
    told = request_status(spark, lake, "req-1").channels
    assert [(c.channel, c.told_at) for c in told] == [("jd_ads", datetime(2026, 3, 11, 8, 0))]
    requests = [r.asDict() for r in lk.read_table(spark, lake, tables.ERASURE_REQUESTS).collect()]
    assert clean_delivery_state(spark, lake, requests) == 1
    keys = [r["user_key"] for r in lk.read_table(spark, lake, tables.DELIVERY_STATE).collect()]
    assert keys == [PHONE_KEY_420]
    with pytest.raises(DmpError, match="no erasure request 'nope'"):
        request_status(spark, lake, "nope")


def test_reingest_of_the_original_sources_keeps_them_out_and_reconciles(spark, forgotten, sources) -> None:
    lake, _result, _ = forgotten
    events = run_ingest(spark, lake, sources["events"], "jsonl", skip_checks=True, now=INGEST_AT)
    assert (events.rows_read, events.erased, events.accepted, events.duplicates, events.quarantined) == (
        11,
        7,
        0,
        3,
        1,
    )
    assert events.reconciled
    printed = _printed(reconciliation_table(events))
    assert re.search(r"erased accounts \(dmp forget\)\s*│\s*7\s*│", printed), printed
    assert "11 = 0 + 1 + 3 + 7 erased" in printed
    assert _users(spark, lake, tables.EVENTS) == ["u00000420", "u00000420", "u0000099"]
    assert lk.read_table(spark, lake, tables.EVENTS_QUARANTINE).count() == 1
    ids = run_ingest_identities(spark, lake, sources["identities"], now=INGEST_AT)
    assert (ids.rows_read, ids.erased, ids.accepted, ids.quarantined) == (8, 5, 2, 1) and ids.reconciled
    assert sorted(set(_users(spark, lake, tables.IDENTITIES))) == KEPT
    consents = run_ingest_consents(spark, lake, sources["consents"], now=INGEST_AT)
    assert (consents.rows_read, consents.erased, consents.accepted) == (5, 3, 2) and consents.reconciled
    assert _users(spark, lake, tables.CONSENTS) == KEPT
    supp = run_ingest_suppression(spark, lake, "opt_out", sources["suppression"], now=INGEST_AT)
    assert (supp.rows_read, supp.erased, supp.accepted) == (2, 1, 1) and supp.reconciled
    assert _users(spark, lake, tables.SUPPRESSION_LISTS) == ["u0000099"]
    runs = lk.read_table(spark, lake, tables.INGEST_RUNS).filter("erased > 0").count()
    assert runs == 4


# Raw values of the erased accounts that no kept account's data contains ("u0000042" is inside the
# kept "u00000420", so a byte scan cannot look for it; its rows are checked by value above).
NEEDLES = ["u0000007", "13800138000", "Seven@Example.com", "seven@example.com"]


def test_vacuum_leaves_no_byte_of_them_in_any_file_of_the_lake(spark, forgotten) -> None:
    from dmp.steps.forget_status import run_vacuum
    from tests.support.lake_scan import find_strings

    lake, _result, _ = forgotten
    before = find_strings(lake, NEEDLES)
    assert {h.needle for h in before} == set(NEEDLES)  # old versions still hold them
    # A week's retention: the request finished long ago, but its delivery_state keys are deleted by
    # this very vacuum (jd_ads was told), so it waits a week for them and nothing is purged yet.
    waiting = run_vacuum(spark, lake)
    assert (waiting.requests_waiting, waiting.tables, waiting.state_rows_deleted) == (["req-1"], [], 0)
    assert find_strings(lake, NEEDLES) != []
    res = run_vacuum(spark, lake, 0.0)
    assert res.requests_covered == ["req-1"]
    # Only the tables dmp forget erased from are purged (they are the ones that can hold them).
    erased_from = {t for t, o in _result.tables.items() if o["status"] != "missing"}
    assert {t["table"] for t in res.tables} == erased_from
    assert tables.DELIVERY_STATE in erased_from and tables.ERASURE_REQUESTS not in erased_from
    assert find_strings(lake, NEEDLES) == []
    st = request_status(spark, lake, "req-1")
    assert st.vacuumed_at is not None and st.retention_hours == 0.0
    assert st.tables[tables.DELIVERY_STATE]["status"] == "deleted"
    # Nothing waits any more: the next vacuum purges nothing and writes no table version.
    versions = _versions(spark, lake)
    again = run_vacuum(spark, lake, 0.0)
    assert (again.tables, again.requests_covered, again.requests_waiting) == ([], [], [])
    assert _versions(spark, lake) == versions
    assert _users(spark, lake, tables.EVENTS) == ["u00000420", "u00000420", "u0000099"]


def test_whole_persons_erases_every_account_stitched_to_them(spark, tmp_path) -> None:
    """Persons {a1, a2} and {b1}: erasing a1 by account keeps a2 (counted as another account of the
    person); with ``whole_persons`` a2 goes too, and b1 stays either way."""
    persons = [("a1", "a1", DAY), ("a2", "a1", DAY), ("b1", "b1", DAY)]
    daily = [(u, DAY, 1) for u in ("a1", "a2", "b1")]
    for name, whole, left, others in (("by-account", False, ["a2", "b1"], 1), ("whole", True, ["b1"], 0)):
        lake = str(tmp_path / name)
        lk.overwrite_table(spark.createDataFrame(persons, schemas.PERSONS_SCHEMA), lake, tables.PERSONS)
        lk.overwrite_table(
            spark.createDataFrame(daily, "user_id string, event_date date, views long"),
            lake,
            tables.USER_DAILY,
        )
        res = run_forget(spark, lake, ["a1"], f"r-{name}", now=FORGET_AT, whole_persons=whole)
        assert _users(spark, lake, tables.USER_DAILY) == left, name
        assert _users(spark, lake, tables.PERSONS) == left, name
        assert res.accounts == (2 if whole else 1)
        assert res.tables[tables.PERSONS]["other_accounts"] == others
