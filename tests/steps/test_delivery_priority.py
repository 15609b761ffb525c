"""Priority groups and frequency caps through the real delivery step (docs/priority_caps.md).

A small lake (packs + consents; the channels deliver our own ``user_id``, so every delivered row
names its user) and ``file://`` destinations. Known answers as in tests/transforms/test_contacts.py:
a Venn of three packs under ``priority: [a, b, c]``, and one user in a pack every day for 21 days
under ``frequency_cap: {max: 2, days: 7}``, delivered on days 1, 2, 8, 9, 15, 16 even when days 8-21
are delivered first and 1-7 backfilled after; reruns change no byte and no count.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.delivery.targets import DeliveryTarget
from dmp.spark import lake as lk
from dmp.spark.schemas import AUDIENCE_PACKS
from dmp.steps.deliver import deliver
from tests.support.delivered import csv_rows, local_channels_dir
from tests.support.factories import grant_all, padded

DAY1 = date(2026, 4, 1)

CHANNELS_YAML = """
channels:
  ranked:
    type: ad
    destination: ${DMP_TEST_ROOT}/ads
    id_types: [user_id]
    hash: {user_id: none}
    sync: full
    priority: [a, b, c]
  plain:
    type: ad
    destination: ${DMP_TEST_ROOT}/ads
    id_types: [user_id]
    hash: {user_id: none}
    sync: full
  capped:
    type: ad
    destination: ${DMP_TEST_ROOT}/ads
    id_types: [user_id]
    hash: {user_id: none}
    sync: full
    frequency_cap: {max: 2, days: 7}
"""

# A > B > C; hA is held out of A and treated in B, hB held out of B and treated in C.
VENN = {
    "a": (["a1", "a2", "ab", "abc", "ac"], ["hA"]),
    "b": (["ab", "abc", "b1", "b2", "bc", "hA"], ["hB"]),
    "c": (["abc", "ac", "bc", "c1", "hB"], ["hC"]),
}


def day(n: int) -> date:
    return DAY1 + timedelta(days=n - 1)


@pytest.fixture()
def segments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DMP_TEST_ROOT", (tmp_path / "out").as_uri())
    return local_channels_dir(tmp_path, CHANNELS_YAML)


def write_packs(spark, lake: str, packs: dict[date, dict[str, tuple[list[str], list[str]]]]) -> None:
    rows = [
        (seg, d, u, group, 1.0, "r", f"hash-{seg}", "rule", True)
        for d, by_seg in packs.items()
        for seg, (treated, held) in by_seg.items()
        for group, users in (("treatment", treated), ("holdout", held))
        for u in users
    ]
    grant_all(spark, lake, [r[2] for r in rows])
    df = spark.createDataFrame(padded(rows, AUDIENCE_PACKS), AUDIENCE_PACKS)
    lk.overwrite_partitions(
        df,
        lake,
        tables.AUDIENCE_PACKS,
        ["segment", "run_date"],
        lk.replace_where_condition("run_date", packs),
    )


def folder(tmp_path: Path, channel: str, segment: str, run_date: date) -> Path:
    return tmp_path / "out" / "ads" / channel / segment / run_date.isoformat()


def delivered_users(tmp_path: Path, channel: str, segment: str, run_date: date) -> set[str]:
    rows = csv_rows(folder(tmp_path, channel, segment, run_date) / "full" / "part-00000.csv.gz")
    assert {t for t, _u in rows} <= {"user_id"}
    return {u for _t, u in rows}


def shas(tmp_path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((tmp_path / "out").rglob("*"))
        if p.is_file()
    }


def contacts(spark, lake: str) -> set[tuple]:
    df = lk.read_table(spark, lake, tables.CHANNEL_CONTACTS)
    return {(r["channel"], r["run_date"], r["segment"], r["user_id"], r["outcome"]) for r in df.collect()}


def test_priority_venn_delivers_a_then_b_minus_a_then_c_minus_both(
    spark, lake, segments_dir, tmp_path
) -> None:
    write_packs(spark, lake, {DAY1: VENN})
    channels = load_channels(segments_dir)
    targets = {s: DeliveryTarget(s, ("plain", "ranked")) for s in VENN}
    results = deliver(spark, lake, [DAY1], targets, channels)
    # One channel's packs are delivered in its priority order (c before b would see no claims).
    assert [r.segment for r in results if r.channel == "ranked"] == ["a", "b", "c"]

    assert delivered_users(tmp_path, "ranked", "a", DAY1) == set(VENN["a"][0])
    assert delivered_users(tmp_path, "ranked", "b", DAY1) == {"b1", "b2", "bc"}
    assert delivered_users(tmp_path, "ranked", "c", DAY1) == {"c1"}
    for seg in VENN:  # a channel without rules delivers every treated user, as before
        assert delivered_users(tmp_path, "plain", seg, DAY1) == set(VENN[seg][0])
    every_file = set().union(
        *(delivered_users(tmp_path, c, s, DAY1) for c in ("ranked", "plain") for s in VENN)
    )
    assert "hC" not in every_file  # held out of its only pack: never delivered anywhere
    assert not {u for s in VENN for u in delivered_users(tmp_path, "ranked", s, DAY1)} & {"hA", "hB", "hC"}

    def counts(channel: str, seg: str) -> dict:
        manifest = json.loads((folder(tmp_path, channel, seg, DAY1) / "manifest.json").read_text())
        return manifest["counts"]

    assert counts("ranked", "a")["excluded_by_reason"] == {}
    assert counts("ranked", "b")["excluded_by_reason"] == {"priority": 3}  # ab, abc, hA (held out of A)
    assert counts("ranked", "c")["excluded_by_reason"] == {"priority": 4}  # abc, ac, bc, hB (held out of B)
    assert (counts("ranked", "c")["excluded_users"], counts("ranked", "c")["delivered_rows"]) == (4, 1)
    assert all(counts("plain", s)["excluded_by_reason"] == {} for s in VENN)

    recorded = contacts(spark, lake)
    assert {r for r in recorded if r[2] == "c"} == {
        ("ranked", DAY1, "c", "c1", "delivered"),
        *(("ranked", DAY1, "c", u, "priority") for u in ("abc", "ac", "bc", "hB")),
    }
    assert {r[0] for r in recorded} == {"ranked"}  # plain has no rules: nothing recorded

    # A rerun, and a delivery of one segment alone, change no byte and no count.
    before = shas(tmp_path)
    again = deliver(spark, lake, [DAY1], targets, channels, channel="ranked")
    assert all(r.message.startswith("unchanged") for r in again)
    only_c = deliver(spark, lake, [DAY1], targets, channels, segment="c", channel="ranked")
    assert only_c[0].counts == next(r.counts for r in results if (r.segment, r.channel) == ("c", "ranked"))
    assert shas(tmp_path) == before
    assert contacts(spark, lake) == recorded


def test_cap_two_per_seven_days_with_backfill_and_reruns(spark, lake, segments_dir, tmp_path) -> None:
    """u is in pack a every day for 21 days. Days 8-21 are delivered first (8, 9, 15, 16), then
    1-7 backfilled: 1 and 2 fit, 3-7 would put a third delivery into a window with 1, 2 or 8, 9."""
    write_packs(spark, lake, {day(n): {"a": (["u"], [])} for n in range(1, 22)})
    channels = load_channels(segments_dir)
    targets = {"a": DeliveryTarget("a", ("capped",))}
    deliver(spark, lake, [day(n) for n in range(8, 22)], targets, channels)
    results = deliver(spark, lake, [day(n) for n in range(1, 8)], targets, channels)
    assert [r.status for r in results] == ["success"] * 7

    sent = [n for n in range(1, 22) if delivered_users(tmp_path, "capped", "a", day(n)) == {"u"}]
    assert sent == [1, 2, 8, 9, 15, 16]
    for n in range(1, 22):
        manifest = json.loads((folder(tmp_path, "capped", "a", day(n)) / "manifest.json").read_text())
        lost = {} if n in sent else {"frequency_cap": 1}
        assert manifest["counts"]["excluded_by_reason"] == lost, n
    outcomes = {r[1]: r[4] for r in contacts(spark, lake)}
    assert outcomes == {day(n): "delivered" if n in sent else "frequency_cap" for n in range(1, 22)}

    before, recorded = shas(tmp_path), contacts(spark, lake)
    again = deliver(spark, lake, [day(n) for n in (2, 3, 9, 10)], targets, channels)
    assert all(r.message.startswith("unchanged") for r in again)
    assert shas(tmp_path) == before
    assert contacts(spark, lake) == recorded
    ops = lk.read_table(spark, lake, tables.DELIVERIES).filter(F.col("kind") == "full")
    assert {(r["run_date"], r["rows"]) for r in ops.collect()} == {
        (day(n), int(n in sent)) for n in range(1, 22)
    }
