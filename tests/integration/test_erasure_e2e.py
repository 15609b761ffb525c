"""Erasure end to end on a delivered lake (issue 18 acceptance): deliver, ``dmp forget`` three users,
deliver again, ``dmp forget --vacuum --retention-hours 0``, then scan every file.

The lake is the hand-made one of ``tests/steps/test_delivery.py`` (its pack, identities and the
jd_ads keys worked out there), delivered to a local delivery root by the real delivery step: jd_ads
is incremental (md5 devices, sha256 E.164 phone), coupon_center full with our own user ids
(``hash: none``). Erased: u1 (an oaid), u2 (two idfas), u4 (a phone written ``138 0013 8000``).

The vacuum also scrubs the files delivered before the request (coupon_center's day-1 file held
their raw user ids, jd_ads's day-1 file their hashed keys); the day-2 jd_ads ``remove`` file keeps
their keys: it is the platform's instruction to delete them.
"""

from __future__ import annotations

import pytest

from dmp.cli import run
from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.spark import lake as lk
from dmp.steps.deliver import deliver
from dmp.steps.forget_status import request_status
from tests.steps.test_delivery import CHANNELS_YAML, D1, D2, JD_KEYS, TARGETS, TREATMENT, write_lake
from tests.support.delivered import csv_rows, local_channels_dir
from tests.support.lake_scan import find_strings

pytestmark = pytest.mark.integration

ERASED = ["u1", "u2", "u4"]
# Their raw identifiers as ingested (tests/steps/test_delivery.py IDENTITY_ROWS), as the scan looks for them.
RAW_IDS = [
    "AB12CD34-0000-4000-8000-000000000001",
    "351234567890123",
    "e2c56db5dffb48d2b060d0f5a71096e0",
    "6d92078a-8246-4ba4-ae5b-76104861e7dc",
    "138 0013 8000",
]


def test_forget_deliver_vacuum_then_no_byte_of_them_in_the_lake(spark, lake, tmp_path, monkeypatch) -> None:
    segments = local_channels_dir(tmp_path, CHANNELS_YAML)
    out = tmp_path / "out"
    monkeypatch.setenv("DMP_TEST_ROOT", out.as_uri())
    channels = load_channels(segments)
    write_lake(spark, lake, [D1, D2], with_tiny=False)
    deliver(spark, lake, [D1], TARGETS, channels)
    jd = out / "ads/jd_ads/spring"
    assert {u for u in ERASED} <= set(TREATMENT[D1])

    users = tmp_path / "request.txt"
    users.write_text("# ticket 7\n" + "\n".join(ERASED) + "\n")
    assert run(["forget", "--users", str(users), "--request-id", "t-7", "--lake", lake]) == 0
    assert [c.told_at for c in request_status(spark, lake, "t-7").channels] == [None, None]
    deliver(spark, lake, [D2], TARGETS, channels)

    # u3 leaves the pack on D2 by itself; the erased three are removed on top of it, u9 enters.
    erased_keys = set().union(*(JD_KEYS.get(u, set()) for u in ERASED))
    assert erased_keys == JD_KEYS["u1"] | JD_KEYS["u2"] | JD_KEYS["u4"] and len(erased_keys) == 4
    assert csv_rows(jd / "2026-03-15/remove/part-00000.csv.gz") == erased_keys | JD_KEYS["u3"]
    assert csv_rows(jd / "2026-03-15/add/part-00000.csv.gz") == JD_KEYS["u9"]
    coupon = out / "coupons/coupon_center/spring"
    assert not {r[0] for r in csv_rows(coupon / "2026-03-15/full/part-00000.csv.gz")} & set(ERASED)
    assert set(ERASED) <= {
        r[0] for r in csv_rows(coupon / "2026-03-14/full/part-00000.csv.gz")
    }  # sent before
    st = request_status(spark, lake, "t-7")
    assert sorted((c.channel, c.told_at is not None) for c in st.channels) == [
        ("coupon_center", True),
        ("jd_ads", True),
    ]

    before = find_strings(lake, RAW_IDS)
    assert {h.needle for h in before} == set(RAW_IDS)  # old versions of identities still hold them
    day1 = coupon / "2026-03-14/full/part-00000.csv.gz"
    coupon_before, jd_before = csv_rows(day1), csv_rows(jd / "2026-03-14/full/part-00000.csv.gz")
    assert erased_keys <= jd_before
    vacuum = ["forget", "--vacuum", "--retention-hours", "0", "--lake", lake, "--segments", str(segments)]
    assert run(vacuum) == 0
    assert find_strings(lake, RAW_IDS) == []
    assert find_strings(out, RAW_IDS) == []  # the delivered files held hashes of them only
    # The files delivered before the request were scrubbed: coupon_center's day-1 file (raw user ids)
    # lost exactly the erased accounts, jd_ads's day-1 full file exactly their keys.
    assert csv_rows(day1) == {r for r in coupon_before if r[0] not in ERASED}
    assert len(coupon_before) - len(csv_rows(day1)) == len(ERASED)
    assert csv_rows(jd / "2026-03-14/full/part-00000.csv.gz") == jd_before - erased_keys
    assert csv_rows(jd / "2026-03-15/remove/part-00000.csv.gz") == erased_keys | JD_KEYS["u3"]  # kept
    state = {
        (r["id_type"], r["user_key"]) for r in lk.read_table(spark, lake, tables.DELIVERY_STATE).collect()
    }
    assert not state & erased_keys
    assert request_status(spark, lake, "t-7").vacuumed_at is not None
