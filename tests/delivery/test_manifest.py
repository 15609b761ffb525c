"""The manifest builder and the unchanged-delivery check (dmp.delivery.manifest), no Spark."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import pandas as pd
import pytest

from dmp.contracts import tables
from dmp.contracts.channels import Channel
from dmp.contracts.errors import DmpError
from dmp.delivery.manifest import (
    ManifestSource,
    MatchCounts,
    PackCounts,
    build_manifest,
    content_fingerprint,
    manifest_bytes,
    parse_manifest,
    same_content,
)
from dmp.delivery.plan import AD_COLUMNS, PreviousDelivery, plan_delivery
from dmp.delivery.targets import CouponSettings

D1, D2 = date(2026, 3, 14), date(2026, 3, 15)
A, B, C = ("oaid", "a" * 32), ("phone", "b" * 64), ("oaid", "c" * 32)
CHANNEL = Channel(
    type="ad",
    destination="file:///tmp/ads",
    id_types=["oaid", "phone"],
    hash={"oaid": "md5", "phone": "sha256"},
    phone_format="cn11",
    sync="incremental",
)
PACK = PackCounts(pack_size=10, treatment=8, holdout=2, deliverable=True, spec_hash="h1", kind="rule")


def rows(*values: tuple[str, str]) -> pd.DataFrame:
    return pd.DataFrame(list(values), columns=list(AD_COLUMNS))


def source(**overrides: object) -> ManifestSource:
    base: dict[str, object] = {
        "channel_name": "jd_ads",
        "channel": CHANNEL,
        "segment": "spring",
        "run_date": D2,
        "pack": PACK,
        "coupon": None,
        "source_tables": {tables.IDENTITIES: 3, tables.AUDIENCE_PACKS: 7},
    }
    return ManifestSource(**(base | overrides))  # type: ignore[arg-type]


def match_counts() -> MatchCounts:
    keys = pd.DataFrame([A, C, B, A], columns=["id_type", "user_key"])
    return MatchCounts.from_counts([(None, 5), ("invalid_phone", 1), ("no_id", 2)], keys)


def test_match_counts_from_reason_counts_and_keys() -> None:
    match = match_counts()
    assert match.matched_users == 5 and match.unmatched_users == 3
    assert match.unmatched_by_reason == {"invalid_phone": 1, "no_id": 2}
    assert match.rows_by_id_type == {"oaid": 2, "phone": 1}  # duplicate (id_type, key) counted once


def test_consent_exclusions_are_counted_by_reason_beside_the_match() -> None:
    keys = pd.DataFrame([A, C], columns=["id_type", "user_key"])
    match = MatchCounts.from_counts([(None, 2), ("no_id", 1)], keys, {"no_consent": 3, "revoked": 1})
    assert (match.excluded_users, match.excluded_by_reason) == (4, {"no_consent": 3, "revoked": 1})
    plan = plan_delivery(rows(A, C), None, CHANNEL)
    manifest = build_manifest(source(), plan, match)
    assert manifest["consent_purpose"] == "ad_personalization"  # the default of an ad channel
    counts = manifest["counts"]
    assert (counts["matched_users"], counts["unmatched_users"], counts["excluded_users"]) == (2, 1, 4)
    assert counts["excluded_by_reason"] == {"no_consent": 3, "revoked": 1}
    # zero counts are not listed: the reasons present are the reasons that happened
    quiet = MatchCounts.from_counts([(None, 2)], keys, {"no_consent": 0, "revoked": 2})
    assert quiet.excluded_by_reason == {"revoked": 2}


def test_incremental_manifest_fields() -> None:
    prev = PreviousDelivery(D1, "jd_ads/spring/2026-03-14", "9" * 64, rows(A, B))
    plan = plan_delivery(rows(A, C), prev, CHANNEL)
    manifest = build_manifest(source(), plan, match_counts())
    assert manifest["manifest_version"] == 1
    assert (manifest["channel"], manifest["channel_type"], manifest["segment"]) == ("jd_ads", "ad", "spring")
    assert (manifest["run_date"], manifest["sync"], manifest["mode"]) == (
        "2026-03-15",
        "incremental",
        "incremental",
    )
    assert manifest["previous"] == {
        "run_date": "2026-03-14",
        "path": "jd_ads/spring/2026-03-14",
        "manifest_sha256": "9" * 64,
    }
    assert manifest["columns"] == ["id_type", "user_key"] and manifest["key_columns"] == [
        "id_type",
        "user_key",
    ]
    assert manifest["format"] == {
        "type": "csv",
        "header": True,
        "delimiter": ",",
        "encoding": "utf-8",
        "compression": "gzip",
    }
    assert manifest["id_types"] == [
        {"id_type": "oaid", "hash": "md5", "rows": 2},
        {"id_type": "phone", "hash": "sha256", "rows": 1, "phone_format": "cn11"},
    ]
    add_bytes = plan.files["add/part-00000.csv.gz"][0]
    assert manifest["files"][0] == {
        "path": "add/part-00000.csv.gz",
        "kind": "add",
        "rows": 1,
        "bytes": len(add_bytes),
        "sha256": hashlib.sha256(add_bytes).hexdigest(),
    }
    assert [f["path"] for f in manifest["files"]] == ["add/part-00000.csv.gz", "remove/part-00000.csv.gz"]
    assert (manifest["spec_hash"], manifest["pack_kind"], manifest["coupon"]) == ("h1", "rule", None)
    assert list(manifest["source_tables"]) == sorted([tables.IDENTITIES, tables.AUDIENCE_PACKS])
    assert manifest["counts"] == {
        "pack_size": 10,
        "treatment": 8,
        "holdout": 2,
        "matched_users": 5,
        "unmatched_users": 3,
        "unmatched_by_reason": {"invalid_phone": 1, "no_id": 2},
        "excluded_users": 0,
        "excluded_by_reason": {},
        "match_rate": 0.625,
        "delivered_rows": 2,
        "added": 1,
        "removed": 1,
    }


def test_full_manifest_coupon_and_empty_treatment() -> None:
    channel = Channel(
        type="coupon", destination="file:///tmp/c", id_types=["user_id"], hash={"user_id": "none"}
    )
    coupon = CouponSettings("CP-1", 20.0, 99.5, 14)
    cur = pd.DataFrame(
        [("u1", "CP-1", "20", "99.5", "2026-03-16", "2026-03-29")],
        columns=list(("user_key", "coupon_id", "value", "threshold", "valid_from", "valid_to")),
    )
    plan = plan_delivery(cur, None, channel)
    empty_pack = PackCounts(0, 0, 0, True, "h", "rule")
    match = MatchCounts(0, {}, {})
    manifest = build_manifest(source(channel=channel, coupon=coupon, pack=empty_pack), plan, match)
    assert manifest["mode"] == "full" and manifest["previous"] is None
    assert manifest["coupon"] == {"coupon_id": "CP-1", "value": 20.0, "threshold": 99.5, "valid_days": 14}
    assert manifest["key_columns"] == ["user_key", "coupon_id"]
    assert manifest["counts"]["match_rate"] == 0.0  # no treatment users: no division
    assert (manifest["counts"]["added"], manifest["counts"]["removed"]) == (None, None)
    # An ad channel never carries the coupon, even when the spec has one.
    ad = build_manifest(source(coupon=coupon), plan_delivery(rows(A), None, CHANNEL), match)
    assert ad["coupon"] is None


def test_manifest_bytes_are_sorted_json_with_a_newline() -> None:
    data = manifest_bytes({"b": 1, "a": {"d": None, "c": [1, 2]}})
    assert data == b'{\n  "a": {\n    "c": [\n      1,\n      2\n    ],\n    "d": null\n  },\n  "b": 1\n}\n'
    assert parse_manifest(data, "x") == json.loads(data)
    with pytest.raises(DmpError, match=r"s3://b/m.json: not valid JSON"):
        parse_manifest(b"{", "s3://b/m.json")


def test_fingerprint_ignores_table_versions_but_not_content() -> None:
    plan = plan_delivery(rows(A, C), None, CHANNEL)
    first = build_manifest(source(), plan, match_counts())
    later_versions = build_manifest(source(source_tables={tables.AUDIENCE_PACKS: 8}), plan, match_counts())
    assert same_content(first, later_versions)
    assert content_fingerprint(first) == (
        [("full/part-00000.csv.gz", first["files"][0]["sha256"])],
        "h1",
        "full",
        None,
        None,
    )
    other_rows = build_manifest(source(), plan_delivery(rows(A), None, CHANNEL), match_counts())
    assert not same_content(first, other_rows)
    other_spec = build_manifest(source(pack=PackCounts(10, 8, 2, True, "h2", "rule")), plan, match_counts())
    assert not same_content(first, other_spec)
    prev = PreviousDelivery(D1, "f", "1" * 64, rows(A))
    rebased = build_manifest(source(), plan_delivery(rows(A, C), prev, CHANNEL), match_counts())
    moved = build_manifest(
        source(),
        plan_delivery(rows(A, C), PreviousDelivery(D1, "f", "2" * 64, rows(A)), CHANNEL),
        match_counts(),
    )
    assert not same_content(rebased, moved)  # same files, diffed against a rewritten previous day


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[" * 100_000, "m.json: not a readable JSON manifest (RecursionError)"),
        (b'{"rows": 1' + b"0" * 5000 + b"}", "m.json: not a readable JSON manifest (ValueError)"),
        (b"[1, 2]", "m.json: expected a JSON object, got list"),
    ],
)
def test_unreadable_manifests_are_one_line_errors(data: bytes, message: str) -> None:
    with pytest.raises(DmpError) as err:
        parse_manifest(data, "m.json")
    assert str(err.value) == message
