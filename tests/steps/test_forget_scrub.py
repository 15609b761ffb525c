"""``scrub_deliveries`` on real deliveries (issue 18: "scanning every delivered file finds no byte of
the accounts' ids"): the hand-made lake of ``tests/steps/test_delivery.py`` delivered by the real
delivery step to a file:// root (jd_ads incremental, hashed; coupon_center full, raw user ids) on
D1..D3, ``run_forget`` for u2 (two idfas) and u4 (a phone), one more delivery D4 (jd_ads' remove
file then holds u2's and u4's hashed keys, the platform's instruction), then the scrub.
"""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.delivery.pull import pull
from dmp.delivery.storage import open_store
from dmp.delivery.targets import DeliveryTarget
from dmp.spark import lake as lk
from dmp.spark.schemas import AUDIENCE_PACKS
from dmp.steps.deliver import deliver
from dmp.steps.forget import run_forget
from dmp.steps.forget_scrub import scrub_deliveries
from tests.steps.test_consents import segments_dir  # noqa: F401 - the file:// delivery root fixture
from tests.steps.test_delivery import (
    COUPON,
    D1,
    D2,
    D3,
    HOLDOUT,
    JD_KEYS,
    TARGETS,
    TREATMENT,
    coupon_expected,
    jd_expected,
    read_csv_set,
    write_lake,
)
from tests.support.factories import padded
from tests.support.lake_scan import find_strings

D4 = D3 + timedelta(days=1)
GONE = ["u2", "u4"]
GONE_KEYS = {k for u in GONE for _t, k in JD_KEYS[u]}
# The raw identifiers of u2 and u4 as ingested (test_delivery.IDENTITY_ROWS) and as normalised.
RAW_IDS = [
    "e2c56db5dffb48d2b060d0f5a71096e0",
    "6d92078a-8246-4ba4-ae5b-76104861e7dc",
    "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0",
    "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    "138 0013 8000",
    "+8613800138000",
    "13800138000",
]


GONE_PAIRS = JD_KEYS["u2"] | JD_KEYS["u4"]


def _coupon_rows(day, d4_users: list[str]) -> set[tuple[str, ...]]:
    """coupon_expected without the erased users; D4's pack is D3's without them."""
    if day != D4:
        return {r for r in coupon_expected(day) if r[0] not in GONE}
    start, end = (D4 + timedelta(days=1)).isoformat(), (D4 + timedelta(days=14)).isoformat()
    return {(u, "CP-SPRING", "20", "99.5", start, end) for u in d4_users}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(data: bytes) -> list[str]:
    return gzip.decompress(data).decode().splitlines()


def _erased_line(line: str) -> bool:
    fields = line.split(",")
    return fields[0] in GONE or (len(fields) > 1 and fields[1] in GONE_KEYS)


def _write_pack(spark, lake: str, day, users: list[str]) -> None:
    rows = [("spring", day, u, "treatment", 1.0, "r", "hash-spring", "rule", True) for u in users]
    rows += [("spring", day, u, "holdout", 1.0, "r", "hash-spring", "rule", True) for u in HOLDOUT]
    df = spark.createDataFrame(padded(rows, AUDIENCE_PACKS), AUDIENCE_PACKS)
    lk.overwrite_partitions(
        df,
        lake,
        tables.AUDIENCE_PACKS,
        ["segment", "run_date"],
        lk.replace_where_condition("run_date", [day]),
    )


def test_scrub_leaves_no_raw_id_keeps_everyone_else_and_pull_still_works(
    spark,
    lake,
    segments_dir,  # noqa: F811
    tmp_path,
) -> None:
    out = tmp_path / "out"
    channels = load_channels(segments_dir)
    write_lake(spark, lake, [D1, D2, D3], with_tiny=False)
    deliver(spark, lake, [D1, D2, D3], TARGETS, channels)
    ads = open_store(channels.channels["jd_ads"].destination)
    coupons = open_store(channels.channels["coupon_center"].destination)
    old_client = tmp_path / "client_jd"
    pull(ads, "jd_ads", "spring", old_client)  # a client that applied D3 before the request
    assert read_csv_set(old_client / "current.csv") == jd_expected(D3)

    run_forget(spark, lake, GONE, "req-scrub")
    d4_users = [u for u in TREATMENT[D3] if u not in GONE]
    _write_pack(spark, lake, D4, d4_users)
    deliver(spark, lake, [D4], TARGETS, channels)
    jd, cp = "ads/jd_ads/spring", "coupons/coupon_center/spring"
    before = _tree(out)
    remove_d4 = f"{jd}/{D4}/remove/part-00000.csv.gz"
    assert {tuple(x.split(",")) for x in _lines(before[remove_d4])[1:]} == GONE_PAIRS
    assert {h.needle for h in find_strings(out, GONE)} == set(GONE)  # coupon files sent before hold them

    report = scrub_deliveries(spark, lake, channels)

    # No raw id or identifier of theirs in any byte of any file (gzip and JSON looked into).
    assert find_strings(out, GONE + RAW_IDS) == []
    after = _tree(out)
    assert sorted(after) == sorted(before)
    for name, data in after.items():
        if not name.endswith(".csv.gz"):
            continue
        old, new = _lines(before[name]), _lines(data)
        if name == remove_d4:  # hashed keys: the instruction to delete them stays
            assert new == old
            continue
        assert new == [line for line in old if not _erased_line(line)], name  # all the others' lines
        assert not GONE_KEYS & {line.split(",")[-1] for line in new}, name

    rows = {f.url.split("/out/", 1)[1]: (f.rows, f.rewritten) for f in report.folders}
    assert rows == {
        f"{jd}/{D1}": (3, True),  # u2's two idfas, u4's phone
        f"{jd}/{D2}": (0, True),  # previous re-pointed at the new D1
        f"{jd}/{D3}": (0, True),
        f"{jd}/{D4}": (0, True),
        f"{cp}/{D1}": (2, True),
        f"{cp}/{D2}": (2, True),
        f"{cp}/{D3}": (2, True),
        f"{cp}/{D4}": (0, False),  # delivered after the request: not a byte changed
    }
    assert after[f"{cp}/{D4}/manifest.json"] == before[f"{cp}/{D4}/manifest.json"]
    assert report.incomplete == [] and report.failed == [] and report.rows_removed == 9

    # The reference client pulls every folder; the one holding the old D3 rebuilds without them.
    for day in (D1, D2, D3, D4):
        got = tmp_path / f"fresh_jd_{day}"
        pull(ads, "jd_ads", "spring", got, run_date=day.isoformat())
        assert read_csv_set(got / "current.csv") == jd_expected(min(day, D3)) - GONE_PAIRS, day
        got = tmp_path / f"fresh_cp_{day}"
        pull(coupons, "coupon_center", "spring", got, run_date=day.isoformat())
        assert read_csv_set(got / "current.csv") == _coupon_rows(day, d4_users), day
    result = pull(ads, "jd_ads", "spring", old_client)
    assert result.applied == [str(d) for d in (D1, D2, D3, D4)]
    assert read_csv_set(old_client / "current.csv") == jd_expected(D3) - GONE_PAIRS

    # A second scrub changes no byte.
    again = scrub_deliveries(spark, lake, channels)
    assert _tree(out) == after
    assert again.rewritten == [] and again.rows_removed == 0 and len(again.folders) == 8

    # The scrubbed files are what the delivery itself writes for the same rows: re-delivering D3's
    # coupons from the (erased) lake finds them identical and rewrites nothing.
    coupon_only = {"spring": DeliveryTarget("spring", ("coupon_center",), COUPON)}
    res = deliver(spark, lake, [D3], coupon_only, channels, channel="coupon_center")
    assert [r.message for r in res] == ["unchanged: identical delivery already complete; nothing rewritten"]
    assert _tree(out) == after
