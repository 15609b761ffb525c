"""Delivery against a real MinIO over HTTP, pulled back with the reference client (dmp pull).

Expected keys are computed here by hand: hashlib over the normalised forms written out literally.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import load_channels
from dmp.contracts.errors import DmpError, SpecError
from dmp.delivery.pull import pull
from dmp.delivery.storage import open_store
from dmp.delivery.targets import CouponSettings, DeliveryTarget
from dmp.spark import lake as lk
from dmp.spark.schemas import AUDIENCE_PACKS, IDENTITIES
from dmp.steps.deliver import DeliveryFailed, deliver, run_delivery
from tests.support.factories import grant_all, padded
from tests.support.s3server import MinioServer

BUCKET = "dmp-test"
D1, D2, D3 = date(2026, 3, 14), date(2026, 3, 15), date(2026, 3, 16)


def md5(s: str) -> str:
    return hashlib.md5(s.encode()).hexdigest()


def sha256(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


# raw identities: (user_id, id_type, raw value)
IDENTITY_ROWS = [
    ("u1", "oaid", " AB12CD34-0000-4000-8000-000000000001 "),
    ("u1", "imei", "351234567890123"),  # less preferred than oaid for jd_ads: never sent
    ("u2", "idfa", "e2c56db5dffb48d2b060d0f5a71096e0"),  # two devices -> two rows
    ("u2", "idfa", " 6d92078a-8246-4ba4-ae5b-76104861e7dc "),
    ("u3", "imei", " 35-209900-176148-1 "),
    ("u3", "email", " Foo.Bar@Example.COM "),
    ("u4", "phone", "138 0013 8000"),
    ("u5", "phone", "12345"),  # invalid: unmatched, never delivered
    ("u7", "oaid", "FFFF0000-0000-4000-8000-000000000007"),  # holdout user
    ("u8", "oaid", "00000000-0000-0000-0000-000000000000"),  # limit-ad-tracking: falls back to phone
    ("u8", "phone", "+86 139-0013-9000"),
    ("u9", "oaid", "AB12CD34-0000-4000-8000-000000000009"),
]
# jd_ads key of each user (md5 devices, sha256 E.164 phone), hand-normalised.
JD_KEYS = {
    "u1": {("oaid", md5("ab12cd34-0000-4000-8000-000000000001"))},
    "u2": {
        ("idfa", md5("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0")),
        ("idfa", md5("6D92078A-8246-4BA4-AE5B-76104861E7DC")),
    },
    "u3": {("imei", md5("35-209900-176148-1"))},
    "u4": {("phone", sha256("+8613800138000"))},
    "u8": {("phone", sha256("+8613900139000"))},
    "u9": {("oaid", md5("ab12cd34-0000-4000-8000-000000000009"))},
}
TREATMENT = {
    D1: ["u1", "u2", "u3", "u4", "u5", "u6", "u8"],
    D2: ["u1", "u2", "u4", "u5", "u6", "u8", "u9"],  # u3 leaves, u9 enters
    D3: ["u2", "u3", "u4", "u5", "u6", "u8", "u9"],  # u1 leaves, u3 is back
}
HOLDOUT = ["u7"]
COUPON = CouponSettings("CP-SPRING", 20.0, 99.5, 14)

CHANNELS_YAML = """
channels:
  jd_ads:
    type: ad
    destination: ${DMP_TEST_ROOT:-file:///nonexistent}/ads
    id_types: [oaid, idfa, imei, phone]
    hash: {oaid: md5, idfa: md5, imei: md5, phone: sha256}
    phone_format: e164
    sync: incremental
  tencent_ads:
    type: ad
    destination: ${DMP_TEST_ROOT:-file:///nonexistent}/ads
    id_types: [oaid, idfa, phone, email]
    hash: {oaid: md5, idfa: md5, phone: md5, email: sha256}
    phone_format: cn11
    sync: full
  coupon_center:
    type: coupon
    destination: ${DMP_TEST_ROOT:-file:///nonexistent}/coupons
    id_types: [user_id]
    hash: {user_id: none}
    sync: full
"""


def jd_expected(day: date) -> set[tuple[str, str]]:
    return set().union(*(JD_KEYS.get(u, set()) for u in TREATMENT[day]))


def coupon_expected(day: date) -> set[tuple[str, ...]]:
    start, end = (day + timedelta(days=1)).isoformat(), (day + timedelta(days=14)).isoformat()
    return {(u, "CP-SPRING", "20", "99.5", start, end) for u in TREATMENT[day]}


def write_lake(spark, lake: str, days: list[date], with_tiny: bool = True) -> None:
    grant_all(spark, lake, [u for u, _, _ in IDENTITY_ROWS] + [u for d in days for u in TREATMENT[d]])
    ids = [(u, t, v, "identities.jsonl", None) for u, t, v in IDENTITY_ROWS]
    spark.createDataFrame(ids, IDENTITIES).write.format("delta").mode("overwrite").save(
        tables.table_path(lake, tables.IDENTITIES)
    )
    rows = []
    for day in days:
        rows += [
            ("spring", day, u, "treatment", 1.0, "r", "hash-spring", "rule", True) for u in TREATMENT[day]
        ]
        rows += [("spring", day, u, "holdout", 1.0, "r", "hash-spring", "rule", True) for u in HOLDOUT]
        if with_tiny:  # under min_size: never delivered
            rows += [
                ("tiny", day, u, "treatment", 1.0, "r", "hash-tiny", "rule", False) for u in ("u1", "u2")
            ]
    df = spark.createDataFrame(padded(rows, AUDIENCE_PACKS), AUDIENCE_PACKS)
    lk.overwrite_partitions(
        df, lake, tables.AUDIENCE_PACKS, ["segment", "run_date"], lk.replace_where_condition("run_date", days)
    )


TARGETS = {
    "spring": DeliveryTarget("spring", ("jd_ads", "coupon_center"), COUPON),
    "tiny": DeliveryTarget("tiny", ("jd_ads",), None),
}


def read_csv_set(path: Path) -> set[tuple[str, ...]]:
    lines = path.read_text().splitlines()
    return {tuple(line.split(",")) for line in lines[1:]}


def object_bytes(store) -> dict[str, bytes]:
    return {k: store.get(k) for k in store.list_keys("")}


@pytest.fixture(scope="module")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        server.create_bucket(BUCKET)
        yield server


@pytest.fixture()
def segments_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "channels.yaml").write_text(CHANNELS_YAML)
    monkeypatch.setenv("DMP_TEST_ROOT", f"s3://{BUCKET}/{tmp_path.name}")
    return folder


def test_three_days_incremental_and_full_pulled_back(spark, lake, s3, segments_dir, tmp_path) -> None:
    write_lake(spark, lake, [D1, D2, D3])
    channels = load_channels(segments_dir)
    ads = open_store(channels.channels["jd_ads"].destination)
    coupons = open_store(channels.channels["coupon_center"].destination)
    for day in (D1, D2, D3):
        results = deliver(spark, lake, [day], TARGETS, channels)
        by = {(r.segment, r.channel): r for r in results}
        assert by[("tiny", "jd_ads")].status == "skipped"
        assert by[("spring", "jd_ads")].status == "success"
        assert by[("spring", "jd_ads")].mode == ("full" if day == D1 else "incremental")
        # The reference client reproduces exactly the treatment users' hashed ids.
        pull(ads, "jd_ads", "spring", tmp_path / "pull_jd")
        assert read_csv_set(tmp_path / "pull_jd" / "current.csv") == jd_expected(day)
        pull(coupons, "coupon_center", "spring", tmp_path / "pull_cp")
        assert read_csv_set(tmp_path / "pull_cp" / "current.csv") == coupon_expected(day)

    # Layout and diff contents, day 2 and 3 (u3 out then back, u9 in, u1 out).
    keys = ads.list_keys("jd_ads")
    assert "jd_ads/spring/2026-03-14/full/part-00000.csv.gz" in keys
    assert {k for k in keys if k.startswith("jd_ads/spring/2026-03-15/")} == {
        f"jd_ads/spring/2026-03-15/{n}"
        for n in ("add/part-00000.csv.gz", "remove/part-00000.csv.gz", "manifest.json", "_SUCCESS")
    }

    def rows(key: str) -> set[tuple[str, ...]]:
        lines = gzip.decompress(ads.get(key)).decode().splitlines()
        assert lines[0] == "id_type,user_key"
        return {tuple(x.split(",")) for x in lines[1:]}

    assert rows("jd_ads/spring/2026-03-15/add/part-00000.csv.gz") == JD_KEYS["u9"]
    assert rows("jd_ads/spring/2026-03-15/remove/part-00000.csv.gz") == JD_KEYS["u3"]
    assert rows("jd_ads/spring/2026-03-16/add/part-00000.csv.gz") == JD_KEYS["u3"]
    assert rows("jd_ads/spring/2026-03-16/remove/part-00000.csv.gz") == JD_KEYS["u1"]

    manifest = json.loads(ads.get("jd_ads/spring/2026-03-14/manifest.json"))
    assert manifest["counts"] == {
        "pack_size": 8,
        "treatment": 7,
        "holdout": 1,
        "matched_users": 5,
        "unmatched_users": 2,
        "unmatched_by_reason": {"invalid_phone": 1, "no_id": 1},
        "excluded_users": 0,
        "excluded_by_reason": {},
        "match_rate": round(5 / 7, 6),
        "delivered_rows": 6,
        "added": None,
        "removed": None,
    }
    assert manifest["spec_hash"] == "hash-spring"
    assert set(manifest["source_tables"]) == {tables.AUDIENCE_PACKS, tables.IDENTITIES, tables.CONSENTS}
    assert all(isinstance(v, int) for v in manifest["source_tables"].values())
    assert [(f["path"], f["rows"]) for f in manifest["files"]] == [("full/part-00000.csv.gz", 6)]
    m3 = json.loads(ads.get("jd_ads/spring/2026-03-16/manifest.json"))
    m2_sha = hashlib.sha256(ads.get("jd_ads/spring/2026-03-15/manifest.json")).hexdigest()
    assert m3["previous"] == {
        "run_date": "2026-03-15",
        "path": "jd_ads/spring/2026-03-15",
        "manifest_sha256": m2_sha,
    }
    assert (m3["counts"]["added"], m3["counts"]["removed"]) == (1, 1)

    # Holdout users and packs under min_size never appear; no raw id in any delivered byte.
    assert ads.list_keys("jd_ads/tiny") == []
    everything = {**object_bytes(ads), **{("coupons", k): v for k, v in object_bytes(coupons).items()}}
    holdout_key = md5("ffff0000-0000-4000-8000-000000000007").encode()
    raw_values = {v for _u, _t, v in IDENTITY_ROWS} | {v.strip() for _u, _t, v in IDENTITY_ROWS}
    raw_values |= {v.strip().lower() for _u, _t, v in IDENTITY_ROWS} | {
        v.strip().upper() for _u, _t, v in IDENTITY_ROWS
    }
    raw_values |= {
        "+8613800138000",
        "13800138000",
        "+8613900139000",
        "13900139000",
        "foo.bar@example.com",
        "E2C56DB5-DFFB-48D2-B060-D0F5A71096E0",
        "6D92078A-8246-4BA4-AE5B-76104861E7DC",
    }
    for key, data in everything.items():
        text = gzip.decompress(data) if str(key).endswith(".gz") else data
        assert holdout_key not in text, key
        assert b"u7" not in text, key
        for raw in raw_values:
            assert raw.encode() not in text, (key, raw)
        if not isinstance(key, tuple):  # ad files: not even our own user ids
            assert b"u1," not in text and b",u1" not in text

    # ops/deliveries: one successful attempt per (channel, date), a skipped one for tiny.
    ops = lk.read_table(spark, lake, tables.DELIVERIES)
    jd = {
        (r["run_date"], r["kind"]): (r["rows"], r["status"], r["attempt"])
        for r in ops.filter((F.col("channel") == "jd_ads") & (F.col("segment") == "spring")).collect()
    }
    assert jd[(D1, "full")] == (6, "success", 1)
    assert jd[(D2, "add")] == (1, "success", 1) and jd[(D2, "remove")] == (1, "success", 1)
    assert jd[(D1, "manifest")][1:] == ("success", 1)
    tiny = ops.filter(F.col("segment") == "tiny").select("status", "kind").distinct().collect()
    assert [tuple(r) for r in tiny] == [("skipped", "none")]

    # Re-running the last date changes nothing downstream: same objects, same bytes, "unchanged".
    before = object_bytes(ads)
    etags = {o["Key"]: o["ETag"] for o in s3.client().list_objects_v2(Bucket=BUCKET)["Contents"]}
    again = deliver(spark, lake, [D3], TARGETS, channels, segment="spring", channel="jd_ads")
    assert [r.status for r in again] == ["success"] and again[0].message.startswith("unchanged")
    assert object_bytes(ads) == before
    assert {o["Key"]: o["ETag"] for o in s3.client().list_objects_v2(Bucket=BUCKET)["Contents"]} == etags
    d3 = lk.read_table(spark, lake, tables.DELIVERIES).filter(
        (F.col("channel") == "jd_ads") & (F.col("run_date") == F.lit(D3)) & (F.col("segment") == "spring")
    )
    assert sorted({(r["attempt"], r["status"]) for r in d3.collect()}) == [(1, "success"), (2, "success")]
    res = pull(ads, "jd_ads", "spring", tmp_path / "pull_jd")
    assert res.up_to_date

    # A client that missed days catches up from the full delivery through the chain.
    late = pull(ads, "jd_ads", "spring", tmp_path / "late_client")
    assert late.applied == ["2026-03-14", "2026-03-15", "2026-03-16"]
    assert read_csv_set(tmp_path / "late_client" / "current.csv") == jd_expected(D3)


def test_server_down_mid_upload_then_retry_completes(spark, lake, s3, segments_dir, tmp_path) -> None:
    write_lake(spark, lake, [D1], with_tiny=False)
    channels = load_channels(segments_dir)
    ads = open_store(channels.channels["jd_ads"].destination)
    folder = "jd_ads/spring/2026-03-14"
    targets = {"spring": DeliveryTarget("spring", ("jd_ads",), None)}

    def stop_after_first_data_file(key: str) -> None:
        if key.endswith(".csv.gz"):
            s3.stop()

    with pytest.raises(DeliveryFailed, match="jd_ads"):
        deliver(spark, lake, [D1], targets, channels, after_put=stop_after_first_data_file)
    s3.start()
    assert not ads.exists(f"{folder}/_SUCCESS")
    assert not ads.exists(f"{folder}/manifest.json")
    assert ads.exists(f"{folder}/full/part-00000.csv.gz")  # the part that got through
    assert ads.list_dirs("jd_ads/spring") == ["2026-03-14"]
    with pytest.raises(DmpError, match="no complete delivery"):
        pull(ads, "jd_ads", "spring", tmp_path / "client")

    results = deliver(spark, lake, [D1], targets, channels)
    assert [r.status for r in results] == ["success"]
    assert ads.exists(f"{folder}/_SUCCESS")
    pull(ads, "jd_ads", "spring", tmp_path / "client")
    assert read_csv_set(tmp_path / "client" / "current.csv") == jd_expected(D1)
    ops = lk.read_table(spark, lake, tables.DELIVERIES).filter(F.col("channel") == "jd_ads")
    assert sorted({(r["attempt"], r["status"]) for r in ops.collect()}) == [(1, "failed"), (2, "success")]
    failed = ops.filter(F.col("status") == "failed").first()
    assert "failed after retries" in failed["message"] and "dmp-test-secret" not in failed["message"]


def test_file_destination_specs_and_deterministic_bytes(spark, lake, tmp_path, monkeypatch) -> None:
    """file:// destination through the spec loader (run_delivery), tencent cn11 + email, byte-identical redo."""
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "channels.yaml").write_text(CHANNELS_YAML)
    (folder / "spring.yaml").write_text(
        "name: spring\nkind: rule\nwhere: {tag: lifecycle_stage, in: [active]}\nholdout: 0.1\n"
        "channels: [tencent_ads, coupon_center]\n"
        "coupon: {coupon_id: CP-SPRING, value: 20, threshold: 99.5, valid_days: 14}\n"
    )
    monkeypatch.setenv("DMP_TEST_ROOT", f"file://{tmp_path}/out")
    write_lake(spark, lake, [D1], with_tiny=False)
    results = run_delivery(spark, lake, [D1], str(folder), segment="spring")
    assert {(r.channel, r.status, r.mode) for r in results} == {
        ("tencent_ads", "success", "full"),
        ("coupon_center", "success", "full"),
    }
    part = tmp_path / "out" / "ads" / "tencent_ads" / "spring" / "2026-03-14" / "full" / "part-00000.csv.gz"
    assert (part.parent.parent / "_SUCCESS").read_bytes() == b""
    got = {tuple(x.split(",")) for x in gzip.decompress(part.read_bytes()).decode().splitlines()[1:]}
    assert got == {
        ("oaid", md5("ab12cd34-0000-4000-8000-000000000001")),
        ("idfa", md5("E2C56DB5-DFFB-48D2-B060-D0F5A71096E0")),
        ("idfa", md5("6D92078A-8246-4BA4-AE5B-76104861E7DC")),
        ("email", sha256("foo.bar@example.com")),
        ("phone", md5("13800138000")),
        ("phone", md5("13900139000")),
    }
    first = part.read_bytes()
    assert first[4:8] == b"\x00\x00\x00\x00" and not first[3] & 0x08  # gzip mtime 0, no file name
    # Wipe the destination and the delivery records: the redo writes byte-identical files.
    import shutil

    shutil.rmtree(tmp_path / "out")
    shutil.rmtree(tables.table_path(lake, tables.DELIVERIES))
    assert not Path(
        tables.table_path(lake, tables.DELIVERY_STATE)
    ).exists()  # full channels keep no key state
    run_delivery(spark, lake, [D1], str(folder), segment="spring", channel="tencent_ads")
    assert part.read_bytes() == first
    with pytest.raises(DmpError, match="no valid spec"):
        run_delivery(spark, lake, [D1], str(folder), segment="nope")


def test_channels_errors_name_file_field_and_allowed(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "channels.yaml").write_text(
        "channels:\n  x:\n    type: tv\n    destination: ftp://h/p\n    id_types: [oaid, mac]\n"
        "    hash: {oaid: md5}\n    colour: red\n"
    )
    with pytest.raises(SpecError) as err:
        load_channels(bad)
    msg = str(err.value)
    assert str(bad / "channels.yaml") in msg
    assert "channels.x.type: got 'tv', allowed: 'ad' or 'coupon'" in msg
    assert "channels.x.destination" in msg and "s3://bucket/prefix or file:///absolute/path" in msg
    assert "channels.x.id_types.1" in msg and "'user_id'" in msg
    assert "channels.x.colour: unknown field" in msg
    (bad / "channels.yaml").write_text(
        "channels:\n  y:\n    type: ad\n    destination: ${NOPE_UNSET_VAR}/x\n    id_types: [phone]\n    hash: {phone: none}\n"
    )
    monkeypatch.delenv("NOPE_UNSET_VAR", raising=False)
    with pytest.raises(
        SpecError, match=r"channels.y.destination: environment variable NOPE_UNSET_VAR is not set"
    ):
        load_channels(bad)
    monkeypatch.setenv("NOPE_UNSET_VAR", "s3://b")
    with pytest.raises(SpecError, match=r"channels.y: .*\['phone'\] must be hashed"):
        load_channels(bad)
