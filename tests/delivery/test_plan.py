"""The pure file plan of a delivery (dmp.delivery.plan) on small pandas frames, no Spark."""

from __future__ import annotations

import gzip
from datetime import date

import pandas as pd
import pytest

from dmp.contracts.channels import Channel
from dmp.contracts.errors import DmpError
from dmp.delivery.plan import (
    AD_COLUMNS,
    COUPON_COLUMNS,
    PreviousDelivery,
    build_files,
    columns_for,
    diff_base_date,
    diff_rows,
    empty_rows,
    encode_csv_gz,
    later_deliveries_in_the_way,
    output_rows,
    plan_delivery,
)
from dmp.delivery.targets import CouponSettings

D1, D2, D3 = date(2026, 3, 14), date(2026, 3, 15), date(2026, 3, 16)
A, B, C = ("oaid", "a" * 32), ("oaid", "b" * 32), ("idfa", "c" * 32)


def ad_channel(sync: str = "incremental") -> Channel:
    return Channel(
        type="ad",
        destination="file:///tmp/ads",
        id_types=["oaid", "idfa"],
        hash={"oaid": "md5", "idfa": "md5"},
        sync=sync,
    )


COUPON_CHANNEL = Channel(
    type="coupon", destination="file:///tmp/coupons", id_types=["user_id"], hash={"user_id": "none"}
)
COUPON = CouponSettings("CP-1", 20.0, 99.5, 14)


def ad_rows(*rows: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(AD_COLUMNS)) if rows else empty_rows(AD_COLUMNS)


def tuples(df: pd.DataFrame) -> list[tuple[str, ...]]:
    return [tuple(r) for r in df.itertuples(index=False)]


def test_ad_rows_are_sorted_and_deduplicated() -> None:
    keys = pd.DataFrame([C, A, B, A], columns=["id_type", "user_key"])
    out = output_rows(keys, ad_channel(), None, D1)
    assert list(out.columns) == list(AD_COLUMNS)
    assert tuples(out) == [C, A, B]  # idfa < oaid, then by key
    assert list(out.index) == [0, 1, 2]


def test_coupon_rows_carry_the_coupon_and_its_validity() -> None:
    keys = pd.DataFrame(
        [("user_id", "u2"), ("user_id", "u1"), ("user_id", "u2")], columns=["id_type", "user_key"]
    )
    out = output_rows(keys, COUPON_CHANNEL, COUPON, D1)
    assert list(out.columns) == list(COUPON_COLUMNS)
    # value 20.0 is written "20", threshold keeps its decimals; valid from the day after for 14 days.
    assert tuples(out) == [
        ("u1", "CP-1", "20", "99.5", "2026-03-15", "2026-03-28"),
        ("u2", "CP-1", "20", "99.5", "2026-03-15", "2026-03-28"),
    ]
    with pytest.raises(DmpError, match="coupon channel needs the spec's coupon"):
        output_rows(keys, COUPON_CHANNEL, None, D1)


def test_columns_for_channel_types() -> None:
    assert columns_for(ad_channel()) == (("id_type", "user_key"), ("id_type", "user_key"))
    assert columns_for(COUPON_CHANNEL)[1] == ("user_key", "coupon_id")


def test_diff_rows_by_key() -> None:
    add, remove = diff_rows(ad_rows(A, C), ad_rows(A, B), ("id_type", "user_key"))
    assert tuples(add) == [C] and tuples(remove) == [B]
    # Coupon key is (user_key, coupon_id): a changed value under the same key is neither added nor removed.
    cols = list(COUPON_COLUMNS)
    today = pd.DataFrame([("u1", "CP-1", "30", "99", "x", "y")], columns=cols)
    before = pd.DataFrame([("u1", "CP-1", "20", "99", "x", "y")], columns=cols)
    add, remove = diff_rows(today, before, ("user_key", "coupon_id"))
    assert add.empty and remove.empty


def test_plan_full_channel_sends_everything_and_keeps_no_state() -> None:
    current = ad_rows(A, B)
    prev = PreviousDelivery(D1, "jd/s/2026-03-14", "f" * 64, ad_rows(A))
    plan = plan_delivery(current, prev, ad_channel("full"))
    assert plan.mode == "full" and plan.previous is None and plan.state is None
    assert list(plan.parts) == ["full"] and sorted(plan.files) == ["full/part-00000.csv.gz"]
    assert plan.files["full/part-00000.csv.gz"][1] == 2
    assert (plan.added, plan.removed) == (None, None)


def test_plan_first_incremental_delivery_is_full_and_keeps_state() -> None:
    current = ad_rows(A, B)
    plan = plan_delivery(current, None, ad_channel())
    assert plan.mode == "full" and plan.previous is None
    assert plan.state is not None and tuples(plan.state) == [A, B]


def test_plan_incremental_diffs_against_previous() -> None:
    prev = PreviousDelivery(D1, "jd/s/2026-03-14", "f" * 64, ad_rows(A, B))
    plan = plan_delivery(ad_rows(A, C), prev, ad_channel())
    assert plan.mode == "incremental" and plan.previous is prev
    assert sorted(plan.files) == ["add/part-00000.csv.gz", "remove/part-00000.csv.gz"]
    assert tuples(plan.parts["add"]) == [C] and tuples(plan.parts["remove"]) == [B]
    assert (plan.added, plan.removed) == (1, 1)
    assert tuples(plan.state) == [A, C]  # the state is what the channel holds now, not the diff
    assert prev.reference() == {
        "run_date": "2026-03-14",
        "path": "jd/s/2026-03-14",
        "manifest_sha256": "f" * 64,
    }
    # Nothing changed: both kinds still get one (header-only) file.
    same = plan_delivery(ad_rows(A, B), prev, ad_channel())
    assert {k: r for k, (_d, r) in same.files.items()} == {
        "add/part-00000.csv.gz": 0,
        "remove/part-00000.csv.gz": 0,
    }


def test_build_files_splits_into_parts_and_bytes_are_deterministic() -> None:
    rows = ad_rows(A, B, C)
    files = build_files({"full": rows}, rows_per_file=2)
    assert {k: r for k, (_d, r) in files.items()} == {
        "full/part-00000.csv.gz": 2,
        "full/part-00001.csv.gz": 1,
    }
    assert (
        gzip.decompress(files["full/part-00001.csv.gz"][0]).decode() == f"id_type,user_key\n{C[0]},{C[1]}\n"
    )
    data = encode_csv_gz(rows)
    assert data == encode_csv_gz(rows.copy())  # same rows, same bytes
    assert data[4:8] == b"\x00\x00\x00\x00" and not data[3] & 0x08  # gzip mtime 0, no file name
    empty = build_files({"remove": ad_rows()})
    assert gzip.decompress(empty["remove/part-00000.csv.gz"][0]) == b"id_type,user_key\n"


def test_diff_base_is_the_last_delivery_before_the_run_date() -> None:
    assert diff_base_date(ad_channel(), [D1, D3], D2) == D1
    assert diff_base_date(ad_channel(), [D1, D2], D3) == D2
    assert diff_base_date(ad_channel(), [D2, D3], D1) is None
    assert diff_base_date(ad_channel("full"), [D1], D2) is None


def test_rewriting_a_day_needs_its_later_days_in_the_same_batch() -> None:
    assert later_deliveries_in_the_way(D1, [D1, D2, D3], [D1]) == [D2, D3]
    assert later_deliveries_in_the_way(D1, [D1, D2, D3], [D1, D2, D3]) == []
    assert later_deliveries_in_the_way(D3, [D1, D2, D3], [D3]) == []
