"""Delivery by person (docs/identity.md): a treated account brings its person's identifiers, and
nothing of a person with an account in the pack's holdout is delivered, also when one of its
accounts was delivered before the persons merged. Known answers: tests/steps/test_delivery.py."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.contracts.vocab import CONSENT_PURPOSES as PURPOSES
from dmp.spark.schemas import PERSON_IDENTIFIERS_SCHEMA, PERSONS_SCHEMA
from dmp.steps.deliver import deliver
from dmp.transforms.stitching import person_id_for
from tests.steps.test_delivery import CHANNELS_YAML, D1, D2, IDENTITY_ROWS, JD_KEYS, TARGETS, md5, write_lake
from tests.support.delivered import csv_rows, local_channels_dir
from tests.support.factories import write_consents

FIRST = date(2026, 1, 1)
U10_OAID = "AB12CD34-0000-4000-8000-000000000010"
# u4 (treated) and u7 (the pack's holdout) turn out to be one person: u7 is the older account.
# u5 (treated, only an invalid phone) and u10 (in no pack, an OAID) are one person too.
MERGED = {"u4": "u7", "u7": "u7", "u5": "u5", "u10": "u5"}


def _write_persons(spark, lake: str) -> None:
    accounts = sorted({u for u, _, _ in IDENTITY_ROWS} | set(MERGED) | {"u6"})
    person = {u: person_id_for(MERGED.get(u, u)) for u in accounts}
    persons = [(u, person[u], FIRST) for u in accounts]
    ids = [
        (person[u], t, v) for u, t, v in IDENTITY_ROWS if not (u == "u8" and t == "oaid")
    ]  # u8's is all-zero
    ids.append((person["u10"], "oaid", U10_OAID))
    spark.createDataFrame(persons, PERSONS_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.PERSONS)
    )
    spark.createDataFrame(ids, PERSON_IDENTIFIERS_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.PERSON_IDENTIFIERS)
    )


@pytest.fixture()
def segments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DMP_TEST_ROOT", (tmp_path / "out").as_uri())
    return local_channels_dir(tmp_path, CHANNELS_YAML)


def test_a_merge_into_a_holdout_person_removes_the_treated_account_and_persons_bring_their_ids(
    spark, lake, segments_dir, tmp_path
) -> None:
    """D1 is delivered before stitching (u4's phone goes out). Then persons say u4 is the holdout
    u7's person: D2's remove holds u4's keys (and u3's, who left the pack), u4 is in no later file,
    and u5, whose own phone is invalid, is delivered with the OAID of its person's other account."""
    write_lake(spark, lake, [D1, D2], with_tiny=False)
    channels = load_channels(segments_dir)
    deliver(spark, lake, [D1], TARGETS, channels)
    jd = tmp_path / "out" / "ads/jd_ads/spring"
    assert JD_KEYS["u4"] <= csv_rows(jd / "2026-03-14/full/part-00000.csv.gz")

    _write_persons(spark, lake)
    deliver(spark, lake, [D2], TARGETS, channels)
    u10_key = {("oaid", md5(U10_OAID.lower()))}
    assert csv_rows(jd / "2026-03-15/remove/part-00000.csv.gz") == JD_KEYS["u3"] | JD_KEYS["u4"]
    assert csv_rows(jd / "2026-03-15/add/part-00000.csv.gz") == JD_KEYS["u9"] | u10_key
    manifest = json.loads((jd / "2026-03-15/manifest.json").read_text())
    assert manifest["counts"]["excluded_by_reason"] == {"holdout_person": 1}
    assert manifest["source_tables"][tables.PERSONS] == 0
    coupons = tmp_path / "out" / "coupons/coupon_center/spring/2026-03-15/full/part-00000.csv.gz"
    assert {r[0] for r in csv_rows(coupons)} == {"u1", "u2", "u5", "u6", "u8", "u9"}  # not u4, nor u7


def test_a_withdrawal_on_another_account_of_the_person_stops_the_delivery(
    spark, lake, segments_dir, tmp_path
) -> None:
    """u10, u5's other account, withdraws ad personalisation: u5 is not sent to jd_ads (revoked) and
    still gets the coupon (another purpose); the other users are untouched."""
    write_lake(spark, lake, [D1], with_tiny=False)
    _write_persons(spark, lake)
    granted = [(f"u{i}", p, True, datetime(2026, 2, 1)) for i in range(1, 10) for p in PURPOSES]
    write_consents(spark, lake, [*granted, ("u10", "ad_personalization", False, datetime(2026, 3, 1))])
    deliver(spark, lake, [D1], TARGETS, load_channels(segments_dir))
    out = tmp_path / "out"
    jd = out / "ads/jd_ads/spring/2026-03-14"
    expected = (
        JD_KEYS["u1"] | JD_KEYS["u2"] | JD_KEYS["u3"] | JD_KEYS["u8"]
    )  # not u4 (holdout person), not u5
    assert csv_rows(jd / "full/part-00000.csv.gz") == expected
    manifest = json.loads((jd / "manifest.json").read_text())
    assert manifest["counts"]["excluded_by_reason"] == {"holdout_person": 1, "revoked": 1}
    coupons = out / "coupons/coupon_center/spring/2026-03-14/full/part-00000.csv.gz"
    assert {r[0] for r in csv_rows(coupons)} == {"u1", "u2", "u3", "u5", "u6", "u8"}
