"""``dmp ingest-consents`` into silver/consents, and what delivery does with it (issue 18, consent).

Known answers by hand: the pack and identities of ``tests/steps/test_delivery.py`` (jd_ads keys of
each user written out there), consent events written here.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.orchestration.deltaread import delta_rows
from dmp.spark import lake as lk
from dmp.steps.consents import run_ingest_consents
from dmp.steps.deliver import deliver
from tests.steps.test_delivery import (
    CHANNELS_YAML,
    D1,
    D2,
    JD_KEYS,
    TARGETS,
    TREATMENT,
    coupon_expected,
    write_lake,
)
from tests.support.delivered import csv_rows, local_channels_dir

AD, MK = "ad_personalization", "marketing_messages"
NOW = datetime(2026, 9, 1)


def _event(user: str, purpose: str, granted: bool, at: str, source: str = "app") -> str:
    return json.dumps({"user_id": user, "purpose": purpose, "granted": granted, "at": at, "source": source})


def _write(folder: Path, name: str, lines: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(line + "\n" for line in lines))
    return folder


def _table(lake: str) -> dict[tuple[str, str], bool]:
    return {
        (r["user_id"], r["purpose"]): r["granted"]
        for r in delta_rows(tables.table_path(lake, tables.CONSENTS))
    }


def test_ingest_reconciles_quarantines_and_keeps_the_latest_whatever_the_order(spark, lake, tmp_path) -> None:
    newer = _write(
        tmp_path / "newer",
        "c.jsonl",
        [
            _event("u1", AD, True, "2026-08-01T10:00:00Z"),
            _event("u1", AD, False, "2026-08-20T10:00:00Z"),
            _event("u1", AD, False, "2026-08-20T10:00:00Z"),  # the same event twice
            _event("u2", MK, True, "2026-08-02T10:00:00Z"),
            "",
            "{broken",
            _event("u3", "newsletters", True, "2026-08-02T10:00:00Z"),
        ],
    )
    result = run_ingest_consents(spark, lake, str(newer), now=NOW)
    assert (result.rows_read, result.accepted, result.duplicates, result.quarantined, result.blank_lines) == (
        6,
        3,
        1,
        2,
        1,
    )
    assert result.reasons == {"malformed_json": 1, "unknown_purpose:newsletters": 1} and result.reconciled
    assert _table(lake) == {("u1", AD): False, ("u2", MK): True}
    quarantine = delta_rows(tables.table_path(lake, tables.CONSENTS_QUARANTINE))
    assert sorted(r["reason"] for r in quarantine) == ["malformed_json", "unknown_purpose:newsletters"]
    runs = delta_rows(tables.table_path(lake, tables.INGEST_RUNS))
    assert [(r["format"], r["reconciled"]) for r in runs] == [("consents", True)]

    version = lk.table_version(spark, lake, tables.CONSENTS)
    again = run_ingest_consents(spark, lake, str(newer), now=NOW)
    assert (again.message, again.quarantine_new) == ("unchanged (no write)", 0)
    # An older log loaded afterwards (u1's grant of July) does not bring the consent back.
    older = _write(tmp_path / "older", "c.jsonl", [_event("u1", AD, True, "2026-07-01T10:00:00Z")])
    late = run_ingest_consents(spark, lake, str(older), now=NOW)
    assert late.message == "unchanged (no write)"
    assert lk.table_version(spark, lake, tables.CONSENTS) == version
    # A newer grant does.
    regrant = _write(tmp_path / "regrant", "c.jsonl", [_event("u1", AD, True, "2026-08-25T10:00:00Z")])
    assert run_ingest_consents(spark, lake, str(regrant), now=NOW).message == "merged"
    assert _table(lake) == {("u1", AD): True, ("u2", MK): True}


@pytest.fixture()
def segments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DMP_TEST_ROOT", (tmp_path / "out").as_uri())
    return local_channels_dir(tmp_path, CHANNELS_YAML)


def test_a_revoked_consent_is_removed_on_the_next_delivery_of_each_channel_for_that_purpose(
    spark, lake, segments_dir, tmp_path
) -> None:
    """u2 withdraws ad personalisation after day 1: day 2's jd_ads remove file is exactly u2's keys,
    u2 is in no later add/full file of an ad channel, and still gets the coupon (other purpose)."""
    write_lake(spark, lake, [D1, D2], with_tiny=False)  # every user granted both purposes
    channels = load_channels(segments_dir)
    out = tmp_path / "out"
    deliver(spark, lake, [D1], TARGETS, channels)
    jd = out / "ads/jd_ads/spring"
    assert csv_rows(jd / "2026-03-14/full/part-00000.csv.gz") == set().union(
        *(JD_KEYS.get(u, set()) for u in TREATMENT[D1])
    )

    log = _write(tmp_path / "consents", "c.jsonl", [_event("u2", AD, False, "2026-03-14T20:00:00Z")])
    run_ingest_consents(spark, lake, str(log), now=NOW)
    deliver(spark, lake, [D2], TARGETS, channels)

    # Between D1 and D2 the pack itself gains u9 and loses u3; u2 is still in it.
    assert "u2" in TREATMENT[D2]
    assert csv_rows(jd / "2026-03-15/remove/part-00000.csv.gz") == JD_KEYS["u2"] | JD_KEYS["u3"]
    assert csv_rows(jd / "2026-03-15/add/part-00000.csv.gz") == JD_KEYS["u9"]
    manifest = json.loads((jd / "2026-03-15/manifest.json").read_text())
    assert manifest["consent_purpose"] == AD
    assert manifest["counts"]["excluded_by_reason"] == {"revoked": 1}
    assert manifest["counts"]["excluded_users"] == 1
    assert manifest["source_tables"][tables.CONSENTS] == lk.table_version(spark, lake, tables.CONSENTS)
    # The coupon channel asks for marketing messages, which u2 still allows.
    coupon = out / "coupons/coupon_center/spring/2026-03-15/full/part-00000.csv.gz"
    assert csv_rows(coupon) == coupon_expected(D2)

    # A redelivery of D2 is unchanged; a later date still leaves u2 out.
    again = deliver(spark, lake, [D2], TARGETS, channels)
    assert {(r.channel, r.message) for r in again if r.channel == "jd_ads"} == {
        ("jd_ads", "unchanged: identical delivery already complete; nothing rewritten")
    }


def test_a_lake_without_consents_delivers_nobody_and_says_why(spark, lake, segments_dir, tmp_path) -> None:
    write_lake(spark, lake, [D1], with_tiny=False)
    lk_path = Path(tables.table_path(lake, tables.CONSENTS))
    shutil.rmtree(lk_path)
    results = deliver(spark, lake, [D1], TARGETS, load_channels(segments_dir))
    jd = next(r for r in results if r.channel == "jd_ads")
    assert jd.status == "success"
    assert jd.counts["matched_users"] == 0
    assert jd.counts["excluded_by_reason"] == {"no_consent": len(TREATMENT[D1])}
    assert "silver/consents does not exist: nobody has consented" in jd.message
    full = tmp_path / "out/ads/jd_ads/spring/2026-03-14/full/part-00000.csv.gz"
    assert csv_rows(full) == set()


def test_min_size_is_checked_again_after_consent(spark, lake, segments_dir, tmp_path) -> None:
    """spring's 7 treated users pass min_size 6 at build time; 2 withdraw ad consent, so only 5 may
    be sent to jd_ads: it gets an empty audience, while the coupon channel (other purpose) gets all 7."""
    write_lake(spark, lake, [D1], with_tiny=False)
    log = _write(
        tmp_path / "consents",
        "c.jsonl",
        [_event("u2", AD, False, "2026-03-13T20:00:00Z"), _event("u3", AD, False, "2026-03-13T21:00:00Z")],
    )
    run_ingest_consents(spark, lake, str(log), now=NOW)
    targets = {"spring": replace(TARGETS["spring"], min_size=6)}
    results = {r.channel: r for r in deliver(spark, lake, [D1], targets, load_channels(segments_dir))}
    jd = results["jd_ads"]
    assert jd.status == "success"
    assert "only 5 treated users allow ad_personalization, below the spec's min_size 6" in jd.message
    assert (jd.counts["matched_users"], jd.counts["delivered_rows"]) == (0, 0)
    assert jd.counts["excluded_by_reason"] == {"below_min_size": 5, "revoked": 2}
    out = tmp_path / "out"
    assert csv_rows(out / "ads/jd_ads/spring/2026-03-14/full/part-00000.csv.gz") == set()
    coupon = results["coupon_center"]
    assert coupon.counts["excluded_users"] == 0 and "min_size" not in coupon.message
    assert csv_rows(
        out / "coupons/coupon_center/spring/2026-03-14/full/part-00000.csv.gz"
    ) == coupon_expected(D1)
