"""Scrubbing one delivered folder of erased accounts (dmp.delivery.scrub), on hand-made bytes.

The data files are written here as literal CSV text, gzipped the way the contract says (level 6,
``mtime=0``, no file name), so the expected bytes after a scrub are known without the encoder.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dmp.contracts.errors import DmpError
from dmp.delivery.manifest import manifest_bytes
from dmp.delivery.publish import publish
from dmp.delivery.pull import pull
from dmp.delivery.scrub import scrub_folder, superseded, unhashed_id_types
from dmp.delivery.storage import FileStore

NOW = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
ERASED = {"k2", "k9", "u2", "+8613800138000"}


def is_erased(key: str) -> bool:
    return key in ERASED


def gz(text: str) -> bytes:
    return gzip.compress(text.encode(), compresslevel=6, mtime=0)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(path: str, data: bytes, rows: int) -> dict[str, Any]:
    return {"path": path, "kind": path.split("/")[0], "rows": rows, "bytes": len(data), "sha256": sha(data)}


AD_HEADER = "id_type,user_key\n"
ADD = gz(AD_HEADER + "oaid,k1\noaid,k2\nphone,k3\n")
REMOVE = gz(AD_HEADER + "oaid,k9\n")
AD_ID_TYPES = [
    {"id_type": "oaid", "hash": "md5", "rows": 2},
    {"id_type": "phone", "hash": "sha256", "rows": 1, "phone_format": "e164"},
]


def ad_manifest(
    run_date: str, mode: str, files: dict[str, tuple[bytes, int]], previous: tuple[str, str] | None = None
) -> dict[str, Any]:
    kinds = {p.split("/")[0]: n for p, (_d, n) in files.items()}
    return {
        "manifest_version": 1,
        "channel": "jd_ads",
        "segment": "spring",
        "run_date": run_date,
        "mode": mode,
        "sync": "incremental",
        "previous": None
        if previous is None
        else {
            "run_date": previous[0],
            "path": f"jd_ads/spring/{previous[0]}",
            "manifest_sha256": previous[1],
        },
        "columns": ["id_type", "user_key"],
        "key_columns": ["id_type", "user_key"],
        "id_types": AD_ID_TYPES,
        "files": [entry(p, d, n) for p, (d, n) in sorted(files.items())],
        "counts": {"pack_size": 9, "matched_users": 3, "delivered_rows": 3}
        | ({"added": kinds["add"], "removed": kinds["remove"]} if mode == "incremental" else {}),
    }


def test_add_rows_go_remove_rows_of_hashed_keys_stay_and_the_manifest_follows() -> None:
    files = {"add/part-00000.csv.gz": (ADD, 3), "remove/part-00000.csv.gz": (REMOVE, 1)}
    old = manifest_bytes(ad_manifest("2026-03-15", "incremental", files, ("2026-03-14", "a" * 64)))
    out = scrub_folder(
        old, {p: d for p, (d, _n) in files.items()}, is_erased, now=NOW, where="file:///x/jd_ads/spring/d"
    )

    new_add = gz(AD_HEADER + "oaid,k1\nphone,k3\n")
    assert out.files["add/part-00000.csv.gz"] == (new_add, 2)
    assert out.files["remove/part-00000.csv.gz"][0] is REMOVE  # k9 is an md5: the instruction stays
    assert out.rows_removed == {"add/part-00000.csv.gz": 1, "remove/part-00000.csv.gz": 0}
    assert out.changed and not out.previous_updated and out.total_removed == 1
    m = out.manifest
    assert m["files"] == [
        entry("add/part-00000.csv.gz", new_add, 2),
        entry("remove/part-00000.csv.gz", REMOVE, 1),
    ]
    assert m["counts"] == {"pack_size": 9, "matched_users": 3, "delivered_rows": 3, "added": 2, "removed": 1}
    assert m["scrubbed"] == {
        "at": "2026-03-20T09:30:00+00:00",
        "rows_removed": 1,
        "replaced_manifest_sha256": [sha(old)],
    }
    assert m["previous"]["manifest_sha256"] == "a" * 64  # not a replaced sha: left alone
    assert out.manifest_data == manifest_bytes(m) and out.manifest_sha256 == sha(out.manifest_data)
    assert json.loads(out.manifest_data) == m

    # The scrub of the scrubbed folder changes nothing, not a byte.
    again = scrub_folder(out.manifest_data, {p: d for p, (d, _n) in out.files.items()}, is_erased, now=NOW)
    assert not again.changed and again.manifest_data is out.manifest_data
    assert again.files == out.files and again.rows_removed == dict.fromkeys(out.files, 0)


def test_a_folder_with_nothing_erased_is_returned_byte_identical() -> None:
    files = {"full/part-00000.csv.gz": (gz(AD_HEADER + "oaid,k1\nphone,k3\n"), 2)}
    old = manifest_bytes(ad_manifest("2026-03-14", "full", files))
    out = scrub_folder(old, {p: d for p, (d, _n) in files.items()}, is_erased, now=NOW)
    assert not out.changed and out.manifest_data is old and "scrubbed" not in out.manifest
    assert out.files == files


COUPON_HEADER = "user_key,coupon_id,value,threshold,valid_from,valid_to\n"


def coupon_manifest(mode: str, files: dict[str, tuple[bytes, int]]) -> dict[str, Any]:
    return {
        "channel": "coupon_center",
        "segment": "spring",
        "run_date": "2026-03-14",
        "mode": mode,
        "previous": None if mode == "full" else {"run_date": "2026-03-13", "manifest_sha256": "b" * 64},
        "columns": COUPON_HEADER.strip().split(","),
        "key_columns": ["user_key", "coupon_id"],
        "id_types": [{"id_type": "user_id", "hash": "none", "rows": 3}],
        "files": [entry(p, d, n) for p, (d, n) in sorted(files.items())],
        "counts": {"delivered_rows": 3, "matched_users": 3},
    }


def test_raw_user_ids_go_from_full_files_and_from_remove_files() -> None:
    line = ",CP-SPRING,20,99.5,2026-03-15,2026-03-28\n"
    full = gz(COUPON_HEADER + "u1" + line + "u2" + line + "u3" + line)
    out = scrub_folder(
        manifest_bytes(coupon_manifest("full", {"full/part-00000.csv.gz": (full, 3)})),
        {"full/part-00000.csv.gz": full},
        is_erased,
        now=NOW,
    )
    kept = gz(COUPON_HEADER + "u1" + line + "u3" + line)
    assert out.files == {"full/part-00000.csv.gz": (kept, 2)}
    assert out.manifest["counts"] == {"delivered_rows": 2, "matched_users": 3}
    assert b"u2" not in gzip.decompress(out.files["full/part-00000.csv.gz"][0])

    # An incremental coupon channel: a raw id in a remove file is a raw id all the same.
    add, remove = gz(COUPON_HEADER + "u4" + line), gz(COUPON_HEADER + "u1" + line + "u2" + line)
    files = {"add/part-00000.csv.gz": (add, 1), "remove/part-00000.csv.gz": (remove, 2)}
    out = scrub_folder(
        manifest_bytes(coupon_manifest("incremental", files)),
        {p: d for p, (d, _n) in files.items()},
        is_erased,
        now=NOW,
    )
    assert out.files == {
        "add/part-00000.csv.gz": (add, 1),
        "remove/part-00000.csv.gz": (gz(COUPON_HEADER + "u1" + line), 1),
    }
    assert out.rows_removed == {"add/part-00000.csv.gz": 0, "remove/part-00000.csv.gz": 1}


def test_in_an_ad_remove_file_only_the_unhashed_id_types_go() -> None:
    id_types = [{"id_type": "oaid", "hash": "md5"}, {"id_type": "phone", "hash": "none"}]
    remove = gz(AD_HEADER + "oaid,k2\nphone,+8613800138000\nphone,+8613900139000\n")
    files = {"add/part-00000.csv.gz": (gz(AD_HEADER), 0), "remove/part-00000.csv.gz": (remove, 3)}
    manifest = ad_manifest("2026-03-15", "incremental", files, ("2026-03-14", "a" * 64)) | {
        "id_types": id_types
    }
    assert unhashed_id_types(manifest) == {"phone"}
    out = scrub_folder(manifest_bytes(manifest), {p: d for p, (d, _n) in files.items()}, is_erased, now=NOW)
    left = gz(AD_HEADER + "oaid,k2\nphone,+8613900139000\n")
    assert out.files["remove/part-00000.csv.gz"] == (left, 2)
    assert out.files["add/part-00000.csv.gz"] == files["add/part-00000.csv.gz"]  # empty file untouched
    assert out.manifest["counts"]["removed"] == 2 and out.manifest["counts"]["added"] == 0


def test_a_file_that_does_not_match_its_manifest_is_refused() -> None:
    files = {"full/part-00000.csv.gz": (ADD, 3)}
    manifest = manifest_bytes(ad_manifest("2026-03-14", "full", files))
    with pytest.raises(DmpError, match="full/part-00000.csv.gz: does not match the manifest"):
        scrub_folder(manifest, {"full/part-00000.csv.gz": ADD[:-1] + b"\x01"}, is_erased, now=NOW)
    with pytest.raises(DmpError, match="listed in the manifest but not given"):
        scrub_folder(manifest, {}, is_erased, now=NOW)


def test_the_chain_is_re_pointed_and_the_reference_client_still_pulls(tmp_path: Path) -> None:
    """D1 full (k1 k2 k3), D2 add k4 / remove k3: k2 is erased after a client pulled D2."""
    store = FileStore(root=tmp_path / "dest", url=(tmp_path / "dest").as_uri())
    d1_files = {"full/part-00000.csv.gz": (ADD, 3)}
    d1 = manifest_bytes(ad_manifest("2026-03-14", "full", d1_files))
    add4, remove3 = gz(AD_HEADER + "oaid,k4\n"), gz(AD_HEADER + "phone,k3\n")
    d2_files = {"add/part-00000.csv.gz": (add4, 1), "remove/part-00000.csv.gz": (remove3, 1)}
    d2 = manifest_bytes(ad_manifest("2026-03-15", "incremental", d2_files, ("2026-03-14", sha(d1))))
    publish(store, "jd_ads/spring/2026-03-14", d1_files, d1)
    publish(store, "jd_ads/spring/2026-03-15", d2_files, d2)
    dest = tmp_path / "client"
    pull(store, "jd_ads", "spring", dest)
    assert (dest / "current.csv").read_text() == "id_type,user_key\noaid,k1\noaid,k2\noaid,k4\n"

    s1 = scrub_folder(d1, {p: d for p, (d, _n) in d1_files.items()}, is_erased, now=NOW)
    renames = superseded(s1.manifest, s1.manifest_sha256)
    assert renames == {sha(d1): s1.manifest_sha256}
    s2 = scrub_folder(d2, {p: d for p, (d, _n) in d2_files.items()}, is_erased, now=NOW, renames=renames)
    assert s2.previous_updated and s2.rows_removed == dict.fromkeys(d2_files, 0)
    assert s2.files == d2_files  # only the manifest changes
    assert s2.manifest["previous"]["manifest_sha256"] == s1.manifest_sha256
    assert s2.manifest["scrubbed"] == {
        "at": "2026-03-20T09:30:00+00:00",
        "rows_removed": 0,
        "replaced_manifest_sha256": [sha(d2)],
    }
    publish(store, "jd_ads/spring/2026-03-14", s1.files, s1.manifest_data)
    publish(store, "jd_ads/spring/2026-03-15", s2.files, s2.manifest_data)

    # The client's D2 is not the current D2 any more: it rebuilds from D1 and loses k2.
    result = pull(store, "jd_ads", "spring", dest)
    assert result.applied == ["2026-03-14", "2026-03-15"]
    assert (dest / "current.csv").read_text() == "id_type,user_key\noaid,k1\noaid,k4\n"

    # A D2 left un-pointed by an interrupted earlier scrub is mended by the next one.
    mended = scrub_folder(d2, {p: d for p, (d, _n) in d2_files.items()}, is_erased, now=NOW, renames=renames)
    assert mended.manifest_data == s2.manifest_data
    # And the rerun over the scrubbed chain changes neither folder.
    again1 = scrub_folder(s1.manifest_data, {p: d for p, (d, _n) in s1.files.items()}, is_erased, now=NOW)
    again2 = scrub_folder(
        s2.manifest_data,
        {p: d for p, (d, _n) in s2.files.items()},
        is_erased,
        now=NOW,
        renames=superseded(again1.manifest, again1.manifest_sha256),
    )
    assert not again1.changed and not again2.changed
