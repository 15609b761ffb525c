"""Consent lines -> checked events -> the latest decision per (user, purpose) -> who may be delivered."""

from __future__ import annotations

import json
from datetime import datetime

from pyspark.sql import functions as F

from dmp.transforms.consents import (
    latest_consents,
    parse_consent_lines,
    to_consent_events,
    with_consent_reason,
    with_consent_reason_for,
    with_consent_status,
)

NOW = datetime(2026, 9, 1, 0, 0, 0)


def _line(**fields: object) -> str:
    return json.dumps(fields)


def _classify(spark, lines: list[str]):
    df = spark.createDataFrame([(v, "c.jsonl") for v in lines], "value string, source_file string")
    return df.transform(parse_consent_lines).transform(with_consent_reason).transform(with_consent_status)


GOOD = {"user_id": "u1", "purpose": "ad_personalization", "granted": True, "at": "2026-08-01T10:00:00Z"}


def test_every_bad_line_gets_its_reason_and_good_lines_are_accepted(spark) -> None:
    lines = [
        _line(**GOOD),
        _line(**GOOD),  # identical: a duplicate, not a second decision
        _line(**{**GOOD, "granted": "false", "source": "crm"}),  # the string form is accepted
        "{not json",
        _line(**{**GOOD, "purpose": "newsletters"}),
        _line(**{**GOOD, "granted": "yes"}),
        _line(**{**GOOD, "at": "last tuesday"}),
        _line(**{k: v for k, v in GOOD.items() if k != "user_id"}),
        _line(**{**GOOD, "user_id": "u" * 129}),
        _line(**{**GOOD, "user_id": "u\u202e1"}),
    ]
    rows = _classify(spark, lines).select("raw", "status", "reason").collect()
    got = [(r["status"], r["reason"]) for r in sorted(rows, key=lambda r: lines.index(r["raw"]))]
    assert got == [
        ("accepted", None),
        ("duplicate_in_batch", None),
        ("accepted", None),
        ("quarantined", "malformed_json"),
        ("quarantined", "unknown_purpose:newsletters"),
        ("quarantined", "bad_value:granted"),
        ("quarantined", "bad_timestamp:at"),
        ("quarantined", "missing_field:user_id"),
        ("quarantined", "field_too_long:user_id"),
        ("quarantined", "control_characters:user_id"),
    ]


def test_bytes_that_are_not_utf8_are_kept_as_base64(spark) -> None:
    df = spark.createDataFrame([(b'{"user_id": "\xff\xfe"}', "c.jsonl")], "value binary, source_file string")
    df = df.withColumn("value", F.col("value").cast("string"))
    row = df.transform(parse_consent_lines).transform(with_consent_reason).first()
    assert row["reason"] == "bad_encoding"
    assert row["raw"] == "base64:eyJ1c2VyX2lkIjogIv/+In0="


def _events(spark, rows: list[tuple]):
    lines = [
        _line(user_id=u, purpose=p, granted=g, at=at, **({"source": s} if s else {}))
        for u, p, g, at, s in rows
    ]
    return to_consent_events(_classify(spark, lines), NOW)


def test_the_latest_decision_wins_and_a_withdrawal_wins_a_tie(spark) -> None:
    ad, mk = "ad_personalization", "marketing_messages"
    events = _events(
        spark,
        [
            ("u1", ad, True, "2026-08-01T10:00:00Z", "app"),
            ("u1", ad, False, "2026-08-05T10:00:00+08:00", "app"),  # later: withdrawn
            ("u1", mk, True, "2026-08-02T00:00:00Z", "app"),
            ("u2", ad, False, "2026-08-01T10:00:00Z", "app"),
            ("u2", ad, True, "2026-08-09T10:00:00Z", "crm"),  # granted again later
            ("u3", ad, True, "2026-08-03T10:00:00Z", "app"),
            ("u3", ad, False, "2026-08-03T10:00:00Z", "crm"),  # same instant: the withdrawal wins
        ],
    )
    latest = {(r["user_id"], r["purpose"]): r["granted"] for r in latest_consents(events).collect()}
    assert latest == {("u1", ad): False, ("u1", mk): True, ("u2", ad): True, ("u3", ad): False}


def test_who_may_be_delivered_for_a_purpose(spark) -> None:
    ad = "ad_personalization"
    consents = latest_consents(
        _events(
            spark,
            [
                ("u1", ad, True, "2026-08-01T10:00:00Z", None),
                ("u2", ad, False, "2026-08-01T10:00:00Z", None),
                ("u3", "marketing_messages", True, "2026-08-01T10:00:00Z", None),  # another purpose only
            ],
        )
    )
    users = spark.createDataFrame([("u1",), ("u2",), ("u3",), ("u4",)], "user_id string")
    got = {r["user_id"]: r["consent_reason"] for r in with_consent_reason_for(users, consents, ad).collect()}
    assert got == {"u1": None, "u2": "revoked", "u3": "no_consent", "u4": "no_consent"}
