"""The identity transforms on inline lines: JSON and CSV parsing, reasons, first-of-duplicates wins."""

from __future__ import annotations

from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession

from dmp.transforms.identities import (
    filter_csv_headers,
    parse_identity_lines,
    to_identity_rows,
    with_identity_reason,
    with_identity_status,
    with_is_csv,
)

LINES = [
    ('{"user_id": "u1", "id_type": "oaid", "id_value": " AB-cd "}', "a.jsonl"),
    ('{"user_id": "u1", "id_type": "oaid", "id_value": "AB-cd"}', "b.jsonl"),
    ('{"user_id": "u2", "id_type": "OAID", "id_value": "x"}', "a.jsonl"),
    ('{"user_id": "", "id_type": "email", "id_value": "a@b.c"}', "a.jsonl"),
    ('{"user_id": "u3", "id_type": "phone"', "a.jsonl"),
    ("User_Id, id_type, id_value", "c.CSV"),
    ("u4,imei,356938035643809", "c.CSV"),
    ("u4,imei", "c.CSV"),
]


def _checked(spark: SparkSession) -> DataFrame:
    lines = spark.createDataFrame(LINES, "value string, source_file string")
    return (
        lines.transform(with_is_csv)
        .transform(filter_csv_headers)
        .transform(parse_identity_lines)
        .transform(with_identity_reason)
        .transform(with_identity_status)
    )


def test_every_line_gets_a_status_and_bad_ones_a_reason(spark):
    got = sorted((r.source_file, r.raw, r.status, r.reason) for r in _checked(spark).collect())
    assert [(s, st, reason) for s, _, st, reason in got] == [
        ("a.jsonl", "quarantined", "missing_field:user_id"),
        ("a.jsonl", "accepted", None),  # " AB-cd " trimmed: the same identity as b.jsonl's
        ("a.jsonl", "quarantined", "unknown_id_type:OAID"),  # id types match exactly
        ("a.jsonl", "quarantined", "malformed_json"),
        ("b.jsonl", "duplicate_in_batch", None),
        ("c.CSV", "quarantined", "bad_field_count:2"),
        ("c.CSV", "accepted", None),  # the header line is dropped, whatever its case and spaces
    ]


def test_accepted_rows_have_the_identities_layout(spark):
    rows = to_identity_rows(_checked(spark), datetime(2026, 3, 1, tzinfo=UTC)).collect()
    assert sorted((r.user_id, r.id_type, r.id_value, r.source_file) for r in rows) == [
        ("u1", "oaid", "AB-cd", "a.jsonl"),
        ("u4", "imei", "356938035643809", "c.CSV"),
    ]
    assert rows[0].asDict().keys() == {"user_id", "id_type", "id_value", "source_file", "ingested_at"}
