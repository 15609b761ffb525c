"""Delivery profiles (dmp/delivery/profiles/): known answers, exact layouts, drops, privacy. No Spark.

Known answers come from the platforms' own pages (docs/platforms.md cites them): Tencent's HASH_IDFA
and HASH_IMEI examples, Meta's published email example; the rest are digests of hand-written
normalised values, computed with coreutils ``md5sum`` / ``sha256sum``.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import subprocess
import sys
import zipfile
from collections import Counter
from io import BytesIO

import pandas as pd
import pytest

from dmp.delivery.plan import build_files
from dmp.delivery.profiles import (
    CONSENT_DENIED,
    DUPLICATE_KEY,
    PROFILES,
    Consent,
    Dropped,
    GenericProfile,
    KeyRow,
    Profile,
    get_profile,
    key_rows,
    profile_from_manifest,
)
from dmp.delivery.profiles.base import balanced_chunks, session_id, zip_bound
from dmp.transforms.ids import normalise_email_google, normalise_phone_digits, normalise_value

# Tencent "客户文件人群" (developers.e.qq.com/docs/audience_management/file): published examples.
TENCENT_IDFA, TENCENT_IDFA_MD5 = "FF1999CD-7177-4937-A474-74937A102630", "2c010ed96aef2fc34983e1e7e9176b7e"
TENCENT_IMEI, TENCENT_IMEI_MD5 = "a000002c9060f7", "f2d5a650733ca8c27d502b1c08da14e5"
# Meta Conversions API customer information parameters: published em example.
META_EMAIL_SHA256 = "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"  # john_smith@gmail.com
# printf %s VALUE | md5sum / sha256sum
CN11_MD5 = "7945bd83237335e5376ff44d62e4f0ae"  # 13800138000
CN11_SHA256 = "a6942f9771d67f34034d2f1926988ed3fad3bf1b4e7cedb9a31f31398dea43bc"
META_PHONE_SHA256 = "bf08aacce7f9b2452863cf99373043c3333f0e3127f1f787c4abb46ab6cf2b83"  # 8613800138000
E164_SHA256 = "ec61f3c620a98bdead8c1f1f0ae747abd1b62a0c2dba4fd4bc22cf0d1d8653e5"  # +8613800138000
GMAIL_SHA256 = "e220b217317ab3bee8516c5875b87837e6a242d5ae9cdab9249adfb2233a9c4c"  # janedoe+x@googlemail.com

PHONE = "+86 138-0013-8000"
CD_MD5 = "749d7048edd2de31c2c7a88d4d196254"  # ab12


def hexkey(i: int, size: int = 32) -> str:
    return f"{i:0{size}x}"


def md5_rows(id_type: str, n: int) -> list[KeyRow]:
    return [KeyRow(id_type, hexkey(i)) for i in range(n)]


def unzip(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# ---------------------------------------------------------------- Tencent


def test_tencent_known_answers() -> None:
    tencent = PROFILES["tencent"]
    assert tencent.prepare("idfa", TENCENT_IDFA) == KeyRow("idfa", TENCENT_IDFA_MD5)
    assert tencent.prepare("idfa", TENCENT_IDFA.lower().replace("-", "")) == KeyRow("idfa", TENCENT_IDFA_MD5)
    assert tencent.prepare("imei", TENCENT_IMEI) == KeyRow("imei", TENCENT_IMEI_MD5)
    assert tencent.prepare("imei", " A000002C9060F7 ") == KeyRow("imei", TENCENT_IMEI_MD5)
    assert tencent.prepare("phone", PHONE) == KeyRow("phone", CN11_MD5)
    sha = get_profile("tencent", phone_hash="sha256")
    assert sha.prepare("phone", "13800138000") == KeyRow("phone", CN11_SHA256)
    assert sha.rules["phone"].platform_id_type == "SHA256_MOBILE_PHONE"
    assert tencent.rules["phone"].platform_id_type == "HASH_MOBILE_PHONE"
    assert [r.platform_id_type for r in tencent.rules.values()] == [
        "HASH_IMEI",
        "HASH_IDFA",
        "HASH_OAID",
        "HASH_MOBILE_PHONE",
    ]


def test_tencent_layout_one_id_type_per_zip_one_id_a_line() -> None:
    tencent = PROFILES["tencent"]
    imei = tencent.prepare("imei", TENCENT_IMEI)
    idfa = tencent.prepare("idfa", TENCENT_IDFA)
    phone = tencent.prepare("phone", PHONE)
    layout = tencent.layout({"add": [phone, idfa, imei], "remove": [KeyRow("imei", "0" * 31 + "1")]})
    assert [(f.name, f.rows, f.kind) for f in layout.files] == [
        ("add/HASH_IMEI.APPEND.part-00000.zip", 1, "add"),
        ("add/HASH_IDFA.APPEND.part-00000.zip", 1, "add"),
        ("add/HASH_MOBILE_PHONE.APPEND.part-00000.zip", 1, "add"),
        ("remove/HASH_IMEI.REDUCE.part-00000.zip", 1, "remove"),
    ]
    contents = {f.name: unzip(f.data) for f in layout.files}
    assert contents["add/HASH_IMEI.APPEND.part-00000.zip"] == {
        "HASH_IMEI.APPEND.part-00000.txt": (TENCENT_IMEI_MD5 + "\n").encode()
    }
    assert contents["add/HASH_IDFA.APPEND.part-00000.zip"] == {
        "HASH_IDFA.APPEND.part-00000.txt": (TENCENT_IDFA_MD5 + "\n").encode()
    }
    assert contents["remove/HASH_IMEI.REDUCE.part-00000.zip"] == {
        "HASH_IMEI.REDUCE.part-00000.txt": ("0" * 31 + "1\n").encode()
    }
    assert layout.files[3].meta == {
        "id_type": "imei",
        "user_id_type": "HASH_IMEI",
        "operation_type": "REDUCE",
        "entry": "HASH_IMEI.REDUCE.part-00000.txt",
    }
    # Same rows in any order -> the same bytes (sorted, fixed zip dates); a full part uploads with APPEND.
    again = tencent.layout({"add": [imei, phone, idfa], "remove": [KeyRow("imei", "0" * 31 + "1")]})
    assert again.encoded() == layout.encoded()
    full = tencent.layout({"full": [imei, imei]})
    assert [f.name for f in full.files] == ["full/HASH_IMEI.APPEND.part-00000.zip"]
    assert full.dropped == {DUPLICATE_KEY: 1}
    assert tencent.layout({"add": [], "remove": []}).files == ()


def test_tencent_size_split_at_a_small_limit() -> None:
    entry = "HASH_IMEI.APPEND.part-00000.txt"  # 31 characters; every archive's entry name has this length
    limit = zip_bound(33 * 10, entry)  # exactly ten 33-byte lines (32 hex + newline) fit
    assert limit == 330 + 7 + 162 + 62  # deflate bound (n < 4096: n + 7) + zip framing + the name twice
    tencent = get_profile("tencent", max_archive_bytes=limit)
    rows = md5_rows("imei", 25)
    layout = tencent.layout({"full": rows})
    assert [(f.name, f.rows) for f in layout.files] == [
        ("full/HASH_IMEI.APPEND.part-00000.zip", 10),
        ("full/HASH_IMEI.APPEND.part-00001.zip", 10),
        ("full/HASH_IMEI.APPEND.part-00002.zip", 5),
    ]
    assert all(len(f.data) <= limit for f in layout.files)
    lines = [unzip(f.data)[f.meta["entry"]].decode().split("\n")[:-1] for f in layout.files]
    assert lines == [[r.key for r in rows[0:10]], [r.key for r in rows[10:20]], [r.key for r in rows[20:25]]]
    assert layout.limits == {"max_archive_bytes": limit}
    # One byte less and only nine lines fit.
    assert [
        f.rows for f in get_profile("tencent", max_archive_bytes=limit - 1).layout({"full": rows}).files
    ] == [
        9,
        9,
        7,
    ]
    with pytest.raises(
        ValueError, match=r"max_archive_bytes=200 cannot hold even one HASH_IMEI key \(264 bytes"
    ):
        get_profile("tencent", max_archive_bytes=200).layout({"full": rows})


def test_tencent_archive_stays_under_the_limit_for_incompressible_data() -> None:
    # Random-looking keys barely compress; the bound still holds (SHA-256 keys of 0..1999).
    import hashlib

    rows = [KeyRow("phone", hashlib.sha256(str(i).encode()).hexdigest()) for i in range(2000)]
    limit = 20_000
    layout = get_profile("tencent", phone_hash="sha256", max_archive_bytes=limit).layout({"full": rows})
    assert sum(f.rows for f in layout.files) == 2000
    assert max(len(f.data) for f in layout.files) <= limit
    assert [f.rows for f in layout.files][:2] == [303, 303]  # (20000 - 7 - 162 - 70 - 4) // 65


# ---------------------------------------------------------------- Meta


def test_meta_phone_and_email_format() -> None:
    meta = PROFILES["meta"]
    assert normalise_phone_digits(PHONE) == ("8613800138000", None)
    assert meta.prepare("phone", PHONE) == KeyRow("phone", META_PHONE_SHA256)
    assert meta.prepare("phone", "+8613800138000") == KeyRow("phone", META_PHONE_SHA256)
    assert meta.prepare("email", " John_Smith@gmail.com ") == KeyRow("email", META_EMAIL_SHA256)
    assert meta.prepare("phone", "+0000000000") == Dropped("phone", "invalid_phone")


def test_meta_batches_with_session_numbering() -> None:
    meta = get_profile("meta", rows_per_batch=10)
    rows = md5_rows("email", 0) + [KeyRow("email", hexkey(i, 64)) for i in range(20)]
    rows += [KeyRow("phone", hexkey(i, 64)) for i in range(5)]
    layout = meta.layout({"full": rows}, session_seed="meta_ads/spring/2026-03-14")
    sid = session_id("meta_ads/spring/2026-03-14", "full")
    assert [(f.name, f.rows) for f in layout.files] == [
        ("full/batch-00001.json", 10),
        ("full/batch-00002.json", 10),
        ("full/batch-00003.json", 5),
    ]
    bodies = [json.loads(f.data) for f in layout.files]
    assert [b["session"] for b in bodies] == [
        {"session_id": sid, "batch_seq": 1, "last_batch_flag": False, "estimated_num_total": 25},
        {"session_id": sid, "batch_seq": 2, "last_batch_flag": False, "estimated_num_total": 25},
        {"session_id": sid, "batch_seq": 3, "last_batch_flag": True, "estimated_num_total": 25},
    ]
    assert all(b["payload"]["schema"] == ["EMAIL", "PHONE"] for b in bodies)
    assert bodies[0]["payload"]["data"][0] == [hexkey(0, 64), ""]
    assert bodies[2]["payload"]["data"] == [["", hexkey(i, 64)] for i in range(5)]
    assert layout.files[0].meta["method"] == "POST" and layout.files[0].meta["edge"] == "usersreplace"
    assert 0 < sid < 2**60 and sid == session_id("meta_ads/spring/2026-03-14", "full")
    inc = meta.layout({"add": rows[:3], "remove": rows[3:4]}, session_seed="s")
    assert [(f.name, f.meta["method"], f.meta["edge"]) for f in inc.files] == [
        ("add/batch-00001.json", "POST", "users"),
        ("remove/batch-00001.json", "DELETE", "users"),
    ]
    assert inc.files[0].meta["session"]["session_id"] != inc.files[1].meta["session"]["session_id"]
    with pytest.raises(ValueError, match=r"meta: rows_per_batch must be 1\.\.10000, got 10001"):
        get_profile("meta", rows_per_batch=10001).layout({"full": rows})


# ---------------------------------------------------------------- Google


def test_google_gmail_rule_keeps_plus_suffix() -> None:
    google = PROFILES["google"]
    assert normalise_email_google("Jane.Doe+x@GoogleMail.com") == ("janedoe+x@googlemail.com", None)
    assert google.prepare("email", "  Jane.Doe+x@GoogleMail.com ") == KeyRow("email", GMAIL_SHA256)
    assert normalise_email_google("j.a.n.e@gmail.com") == ("jane@gmail.com", None)
    assert normalise_email_google("Jane.Doe@Example.com") == ("jane.doe@example.com", None)
    assert normalise_email_google("jane.doe@gmail.com.cn") == ("jane.doe@gmail.com.cn", None)
    assert normalise_email_google("...@gmail.com") == (None, "invalid_email")
    assert google.prepare("phone", PHONE) == KeyRow("phone", E164_SHA256)


def test_google_consent_per_row_and_removals_in_their_own_files() -> None:
    google = get_profile("google", rows_per_file=2)
    granted, denied = Consent("GRANTED", "GRANTED"), Consent("DENIED", "GRANTED")
    e1, e2, p1 = hexkey(1, 64), hexkey(2, 64), hexkey(3, 64)
    layout = google.layout(
        {
            "add": [KeyRow("email", e1, granted), KeyRow("email", e2, denied), KeyRow("phone", p1)],
            "remove": [KeyRow("email", e2, denied)],
        }
    )
    assert [(f.name, f.rows, f.meta["operations"]) for f in layout.files] == [
        ("add/part-00000.csv.gz", 2, ["create"]),
        ("remove/part-00000.csv.gz", 1, ["remove"]),
    ]
    assert gzip.decompress(layout.files[0].data).decode() == (
        f"hashed_email,hashed_phone_number,ad_user_data,ad_personalization\n{e1},,GRANTED,GRANTED\n,{p1},,\n"
    )
    assert gzip.decompress(layout.files[1].data).decode() == (
        f"hashed_email,hashed_phone_number,ad_user_data,ad_personalization\n{e2},,DENIED,GRANTED\n"
    )
    assert layout.dropped == {CONSENT_DENIED: 1}
    # No consent data anywhere: no consent columns; a full part is remove_all then create.
    plain = google.layout({"full": [KeyRow("phone", p1), KeyRow("email", e1), KeyRow("email", e2)]})
    assert [(f.name, f.rows) for f in plain.files] == [
        ("full/part-00000.csv.gz", 2),
        ("full/part-00001.csv.gz", 1),
    ]
    assert (
        gzip.decompress(plain.files[0].data).decode() == f"hashed_email,hashed_phone_number\n{e1},\n{e2},\n"
    )
    assert plain.files[0].meta == {"operations": ["remove_all", "create"], "consent_columns": False}
    assert plain.dropped == {}
    with pytest.raises(
        ValueError, match=r"consent.ad_user_data must be one of \['GRANTED', 'DENIED', 'UNSPECIFIED'\]"
    ):
        Consent("YES")


def test_key_rows_reads_plan_parts_with_optional_consent() -> None:
    frame = pd.DataFrame(
        {
            "id_type": ["email", "phone"],
            "user_key": [hexkey(1, 64), hexkey(2, 64)],
            "ad_user_data": ["GRANTED", None],
            "ad_personalization": ["DENIED", float("nan")],
        }
    )
    assert key_rows(frame) == [KeyRow("email", hexkey(1, 64)), KeyRow("phone", hexkey(2, 64))]
    assert [r.consent for r in key_rows(frame)] == [Consent("GRANTED", "DENIED"), None]
    assert [r.consent for r in key_rows(frame[["id_type", "user_key"]])] == [None, None]


# ---------------------------------------------------------------- Alibaba


def test_alibaba_hashes_and_per_push_split() -> None:
    alibaba = get_profile("alibaba", max_ids_per_push=4, min_ids_per_push=4)
    assert alibaba.prepare("phone", PHONE) == KeyRow("phone", CN11_SHA256)
    assert get_profile("alibaba", phone_hash="md5").prepare("phone", PHONE) == KeyRow("phone", CN11_MD5)
    assert alibaba.prepare("idfa", TENCENT_IDFA) == KeyRow("idfa", TENCENT_IDFA_MD5)
    assert alibaba.rules["email"].hash == "md5" and alibaba.rules["imei"].platform_id_type == "IMEI_MD5"
    phones = [KeyRow("phone", hexkey(i, 64)) for i in range(10)]
    layout = alibaba.layout({"full": phones + md5_rows("email", 2)})
    assert [(f.name, f.rows) for f in layout.files] == [
        ("full/PHONE_SHA256.push-00000.zip", 4),
        ("full/PHONE_SHA256.push-00001.zip", 3),
        ("full/PHONE_SHA256.push-00002.zip", 3),
        ("full/EMAIL_MD5.push-00000.zip", 2),
    ]
    assert unzip(layout.files[1].data) == {
        "PHONE_SHA256.push-00001.txt": "".join(r.key + "\n" for r in phones[4:7]).encode()
    }
    assert layout.files[1].meta == {
        "id_type": "phone",
        "push_id_type": "PHONE",
        "encryption": "SHA256",
        "push": 2,
        "pushes": 3,
        "entry": "PHONE_SHA256.push-00001.txt",
    }
    assert layout.warnings == (
        "full/PHONE_SHA256.push-00001.zip: 3 ids, below Damengpan's minimum of 4 per push; the push will be refused",
        "full/PHONE_SHA256.push-00002.zip: 3 ids, below Damengpan's minimum of 4 per push; the push will be refused",
        "full/EMAIL_MD5.push-00000.zip: 2 ids, below Damengpan's minimum of 4 per push; the push will be refused",
    )
    assert [len(c) for c in balanced_chunks(range(10_000_001), 10_000_000)] == [5_000_001, 5_000_000]
    with pytest.raises(ValueError, match=r"alibaba: part 'add' is not one of \['full'\]"):
        alibaba.layout({"add": phones})
    assert alibaba.check_channel(["phone", "oaid"], "incremental") == [
        "id type 'oaid' is not accepted by format 'alibaba' (accepted: ['phone', 'email', 'imei', 'idfa'])",
        "format 'alibaba' takes whole audiences only: use sync: full",
    ]
    assert PROFILES["tencent"].check_channel(["imei", "phone"], "incremental") == []


# ---------------------------------------------------------------- drops, guards, generic, registry


def test_drop_reasons_counted_exactly() -> None:
    raw = [
        ("phone", "+0000000000"),
        ("phone", "+44 20 7183 8750"),  # valid, but not a mainland number
        ("phone", PHONE),
        ("phone", "13800138000"),  # the same number again
        ("imei", "   "),
        ("imei", "abc"),
        ("imei", "000000000000000"),
        ("imei", TENCENT_IMEI),
        ("idfa", "00000000-0000-0000-0000-000000000000"),
        ("idfa", "not-an-idfa"),
        ("oaid", None),
    ]
    prepared = PROFILES["tencent"].prepare_all(raw)
    assert prepared.dropped == Counter(
        {
            "invalid_phone": 1,
            "phone_not_cn": 1,
            "duplicate_key": 1,
            "empty_value": 2,
            "invalid_imei": 1,
            "zero_device_id": 2,
            "invalid_idfa": 1,
        }
    )
    assert prepared.rows == [KeyRow("imei", TENCENT_IMEI_MD5), KeyRow("phone", CN11_MD5)]
    google = PROFILES["google"].prepare_all(
        [
            ("email", ""),
            ("email", "no-at-sign"),
            ("email", "Jane.Doe+x@gmail.com"),
            ("email", "janedoe+x@gmail.com"),
        ]
    )
    assert google.dropped == Counter({"empty_value": 1, "invalid_email": 1, "duplicate_key": 1})
    assert len(google.rows) == 1


def test_a_raw_id_never_passes_the_layout() -> None:
    for name in ("tencent", "meta", "google", "alibaba"):
        with pytest.raises(ValueError, match=r"phone key must be (32|64) lower-case hex characters"):
            PROFILES[name].layout({"full": [KeyRow("phone", "13800138000")]})
    with pytest.raises(ValueError, match=r"profile 'meta' does not accept id type 'imei'"):
        PROFILES["meta"].prepare("imei", TENCENT_IMEI)


def test_generic_profile_writes_todays_bytes() -> None:
    rows = [KeyRow("oaid", "b" * 32), KeyRow("idfa", "c" * 32), KeyRow("oaid", "a" * 32)]
    profile = GenericProfile.from_channel(["oaid", "idfa"], {"oaid": "md5", "idfa": "md5"}, "e164")
    layout = profile.layout({"add": rows, "remove": []})
    frame = pd.DataFrame(
        [("idfa", "c" * 32), ("oaid", "a" * 32), ("oaid", "b" * 32)], columns=["id_type", "user_key"]
    )
    expected = build_files({"add": frame, "remove": frame.iloc[0:0]})
    assert layout.encoded() == expected
    assert sorted(layout.encoded()) == ["add/part-00000.csv.gz", "remove/part-00000.csv.gz"]
    assert profile.id_types == ("oaid", "idfa") and profile.prepare("oaid", " AB12 ") == KeyRow(
        "oaid", CD_MD5
    )
    cn11 = GenericProfile.from_channel(["phone"], {"phone": "md5"}, "cn11")
    assert cn11.prepare("phone", PHONE) == KeyRow("phone", CN11_MD5)
    split = get_profile("generic", rows_per_file=2).layout({"full": rows})
    assert [(f.name, f.rows) for f in split.files] == [
        ("full/part-00000.csv.gz", 2),
        ("full/part-00001.csv.gz", 1),
    ]


@pytest.mark.parametrize("name", ["generic", "tencent", "meta", "google", "alibaba"])
def test_prepare_is_the_same_on_raw_and_on_normalised_values(name: str) -> None:
    profile = PROFILES[name]
    raw = {
        "phone": PHONE,
        "email": " Jane.Doe@Example.COM",
        "imei": " A000002C9060F7",
        "idfa": TENCENT_IDFA.lower(),
    }
    for id_type in profile.id_types:
        value = raw.get(id_type, " 1FAB-OAID-9 ")
        normalised, _reason = normalise_value(id_type, value)
        assert profile.prepare(id_type, normalised) == profile.prepare(id_type, value)


@pytest.mark.parametrize("name", ["generic", "tencent", "meta", "google", "alibaba"])
def test_read_file_inverts_layout_and_the_manifest_rebuilds_the_profile(name: str) -> None:
    profile = dataclasses.replace(PROFILES[name], **{"generic": {"rows_per_file": 3}}.get(name, {}))
    raw = [("phone", PHONE), ("phone", "13912345678"), ("email", "a.b@gmail.com"), ("email", "x@example.com")]
    raw += [("imei", TENCENT_IMEI), ("idfa", TENCENT_IDFA), ("oaid", "1fab-oaid-9")]
    rows = profile.prepare_all((t, v) for t, v in raw if t in profile.rules).rows
    if name == "google":
        rows = [dataclasses.replace(rows[0], consent=Consent("GRANTED", None)), *rows[1:]]
    layout = profile.layout({"full": rows}, session_seed="c/s/2026-03-14")
    manifest = json.loads(json.dumps({"profile": profile.describe()}))
    rebuilt = profile_from_manifest(manifest)
    assert rebuilt == profile
    back = sorted(r for f in layout.files for r in rebuilt.read_file(f.name, f.data))
    assert back == rows
    if name == "google":
        assert [r.consent for r in back if r.consent] == [Consent("GRANTED", None)]


def test_read_file_errors_name_the_file() -> None:
    with pytest.raises(ValueError, match=r"^add/HASH_IMEI\.APPEND\.part-00000\.zip: not a zip archive"):
        PROFILES["tencent"].read_file("add/HASH_IMEI.APPEND.part-00000.zip", b"nope")
    with pytest.raises(
        ValueError, match=r"^remove/HASH_IMEI\.APPEND\.part-00000\.zip: a remove file must be REDUCE"
    ):
        PROFILES["tencent"].read_file("remove/HASH_IMEI.APPEND.part-00000.zip", b"")
    bad = gzip.compress(b"hashed_email,hashed_phone_number\n13800138000,\n")
    with pytest.raises(
        ValueError, match=r"^full/part-00000\.csv\.gz: line 2: email key must be 64 lower-case hex"
    ):
        PROFILES["google"].read_file("full/part-00000.csv.gz", bad)
    with pytest.raises(
        ValueError, match=r"^full/batch-00001\.json: payload\.schema must be \['EMAIL', 'PHONE'\]"
    ):
        PROFILES["meta"].read_file("full/batch-00001.json", b'{"payload": {"schema": ["EMAIL"], "data": []}}')


def test_old_manifest_is_generic_with_its_own_hashes() -> None:
    old = {
        "id_types": [
            {"id_type": "phone", "hash": "md5", "phone_format": "cn11"},
            {"id_type": "oaid", "hash": "md5"},
        ]
    }
    profile = profile_from_manifest(old)
    assert profile == GenericProfile(hashes=(("phone", "md5"), ("oaid", "md5")), phone_format="cn11")
    with pytest.raises(
        ValueError, match=r"^m\.json: profile: format must be one of \['generic', 'tencent', 'meta'"
    ):
        profile_from_manifest({"profile": {"name": "tiktok"}}, "m.json")


def test_get_profile_refuses_unknown_formats_and_settings() -> None:
    with pytest.raises(ValueError, match=r"format 'tencent': unknown settings \['rows_per_batch'\]"):
        get_profile("tencent", rows_per_batch=5)
    with pytest.raises(
        ValueError, match=r"tencent: phone_hash must be one of \['md5', 'sha256'\], got 'sha1'"
    ):
        get_profile("tencent", phone_hash="sha1")
    assert isinstance(get_profile("meta"), Profile)


# ---------------------------------------------------------------- privacy


RAW_IDS = {
    "phone": ["+86 138-0013-8000", "13912345678", "+8615000000001"],
    "email": ["Jane.Doe+x@GoogleMail.com", "li.lei@example.cn"],
    "imei": ["a000002c9060f7", "860000000000001"],
    "idfa": ["FF1999CD-7177-4937-A474-74937A102630"],
    "oaid": ["1fab2c3d-oaid-4e5f"],
}


def _plain_bytes(data: bytes) -> bytes:
    """Everything a file holds once opened: zip entries, gzip content, or the bytes themselves."""
    if data[:2] == b"PK":
        return b"".join(unzip(data).values())
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data)
    return data


def _forms(raw: str) -> set[str]:
    """The raw value and every spelling a leak could take (normalised, digits only, undashed)."""
    digits = "".join(c for c in raw if c.isdigit())
    forms = {raw, raw.lower(), raw.upper(), raw.replace("-", ""), raw.lower().replace("-", "")}
    if "@" in raw:
        forms |= {raw.split("@")[0].lower(), raw.lower().replace(".", "")}
    else:
        forms |= {digits, digits[-11:]} if len(digits) >= 11 else set()
    return {f for f in forms if len(f) >= 6}


@pytest.mark.parametrize("name", ["generic", "tencent", "meta", "google", "alibaba"])
def test_no_raw_id_in_any_delivered_byte(name: str) -> None:
    profile = PROFILES[name]
    pairs = [(t, v) for t, values in RAW_IDS.items() if t in profile.rules for v in values]
    prepared = profile.prepare_all(pairs)
    assert len(prepared.rows) == len(pairs)  # every raw value above is valid for the profile
    kinds = ("full",) if "add" not in profile.kinds else ("add", "remove")
    layout = profile.layout({k: prepared.rows for k in kinds}, session_seed="c/s/2026-03-14")
    delivered = [(f.name, _plain_bytes(f.data)) for f in layout.files]
    assert delivered and sum(f.rows for f in layout.files) == len(pairs) * len(kinds)
    leaks = [
        (n, form) for n, data in delivered for _t, v in pairs for form in _forms(v) if form.encode() in data
    ]
    assert leaks == []
    # The scan itself finds a planted raw id (so an empty result means something).
    planted = _plain_bytes(layout.files[0].data) + b"13912345678"
    assert any(form.encode() in planted for form in _forms("13912345678"))


def test_profiles_import_without_pyspark() -> None:
    code = (
        "import sys, dmp.delivery.profiles; print(sorted(m for m in sys.modules if m.startswith('pyspark')))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
