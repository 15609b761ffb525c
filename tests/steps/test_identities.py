"""Identity and suppression-list ingest: noise handled, counts reconcile, reruns are no-ops."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.tables import IDENTITIES_QUARANTINE
from dmp.spark import lake as lk
from dmp.steps.identities import run_ingest_identities
from dmp.steps.suppression import run_ingest_suppression
from tests.conftest import REPO_ROOT

GEN = REPO_ROOT / "tests" / "data" / "ingest" / "gen"

# tests/data/ingest/gen/identities/identities.jsonl: 15 records + 1 blank line.
EXPECTED_IDENTITIES = {
    ("u1", "oaid", "AB12-cd34"),  # trimmed, case kept
    ("u1", "phone", "138 0013 8000"),  # phone formats kept raw (normalised at delivery)
    ("u1", "phone", "+86 138-0013-8000"),
    ("u2", "email", "Alice@Example.COM"),  # "  Alice@Example.COM " and "Alice@Example.COM" -> one row
    ("u2", "idfa", "6d92078a-8246-4ba4-ae5b-76104861e7dc"),
    ("u3", "imei", "356938035643809"),  # listed twice
}
EXPECTED_REASONS = {
    "unknown_id_type:wechat": 1,
    "unknown_id_type:OAID": 1,  # id_type is a closed vocabulary, matched exactly
    "missing_field:user_id": 1,  # ""
    "missing_field:id_value": 2,  # "   " and absent
    "missing_field:id_type": 1,
    "malformed_json": 1,
}


def _identities(spark, lake: str) -> set[tuple[str, str, str]]:
    rows = lk.read_table(spark, lake, tables.IDENTITIES).collect()
    return {(r.user_id, r.id_type, r.id_value) for r in rows}


def test_identities_noise_dedupe_quarantine_and_noop_rerun(spark, lake):
    result = run_ingest_identities(spark, lake, str(GEN))  # the generator folder as is
    assert (result.rows_read, result.accepted, result.duplicates, result.quarantined) == (15, 6, 2, 7)
    assert result.reasons == EXPECTED_REASONS and result.reconciled and result.blank_lines == 1
    assert _identities(spark, lake) == EXPECTED_IDENTITIES
    q = lk.read_table(spark, lake, IDENTITIES_QUARANTINE)
    assert q.filter(F.col("reason") == "unknown_id_type:wechat").first().raw == (
        '{"user_id": "u3", "id_type": "wechat", "id_value": "wx123"}'
    )
    assert q.count() == 7
    versions = (
        lk.table_version(spark, lake, tables.IDENTITIES),
        lk.table_version(spark, lake, IDENTITIES_QUARANTINE),
    )

    again = run_ingest_identities(spark, lake, str(GEN / "identities" / "identities.jsonl"))
    assert (again.accepted, again.quarantined, again.quarantine_new) == (6, 7, 0)
    assert again.message == "unchanged (no write)"
    assert (
        lk.table_version(spark, lake, tables.IDENTITIES),
        lk.table_version(spark, lake, IDENTITIES_QUARANTINE),
    ) == versions
    runs = lk.read_table(spark, lake, tables.INGEST_RUNS).filter(F.col("format") == "identities").count()
    assert runs == 2


def test_identities_snapshot_replaces_table_content(spark, lake, tmp_path: Path):
    run_ingest_identities(spark, lake, str(GEN))
    snapshot = tmp_path / "ids.csv"
    snapshot.write_text("user_id,id_type,id_value\nu1,oaid, NEW-1 \nu9,email,x@y.cn\nu9,fax,123\n")
    result = run_ingest_identities(spark, lake, str(snapshot))
    assert (result.rows_read, result.accepted, result.quarantined, result.message) == (3, 2, 1, "replaced")
    assert result.reasons == {"unknown_id_type:fax": 1}
    assert _identities(spark, lake) == {("u1", "oaid", "NEW-1"), ("u9", "email", "x@y.cn")}


def test_suppression_list_replaces_only_its_own_rows(spark, lake, tmp_path: Path):
    # opt_out.csv: header, u1, " u2 ", u1, "" (empty), u3
    first = run_ingest_suppression(spark, lake, "opt_out", str(GEN))
    assert (first.rows_read, first.accepted, first.duplicates, first.quarantined) == (5, 3, 1, 1)
    assert first.reasons == {"missing_field:user_id": 1} and first.reconciled
    other = tmp_path / "vip.csv"
    other.write_text("user_id,name\nu7,Ann\n")
    run_ingest_suppression(spark, lake, "vip", str(other))
    smaller = tmp_path / "opt_out_v2.csv"
    smaller.write_text("user_id\nu3\nu4\n")
    run_ingest_suppression(spark, lake, "opt_out", str(smaller))
    rows = lk.read_table(spark, lake, tables.SUPPRESSION_LISTS).collect()
    assert sorted((r.list_name, r.user_id) for r in rows) == [
        ("opt_out", "u3"),
        ("opt_out", "u4"),
        ("vip", "u7"),
    ]
    assert {r.source_file.rsplit("/", 1)[-1] for r in rows if r.list_name == "opt_out"} == {"opt_out_v2.csv"}


def test_suppression_errors_name_file_and_field(spark, lake, tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer\nu1\n")
    with pytest.raises(DmpError, match=r"bad\.csv: expected a CSV whose header has a 'user_id' column"):
        run_ingest_suppression(spark, lake, "opt_out", str(bad))
    with pytest.raises(DmpError, match=r"--name: list names are \[a-z0-9_\]\+, got 'Opt-Out'"):
        run_ingest_suppression(spark, lake, "Opt-Out", str(bad))
    with pytest.raises(DmpError, match="no opt_out.csv or suppression/opt_out.csv"):
        run_ingest_suppression(spark, lake, "opt_out", str(tmp_path))
