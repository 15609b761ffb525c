"""Publish order and retries (dmp.delivery.publish) on a file:// store that records every call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dmp.contracts.errors import DmpError
from dmp.delivery.layout import MANIFEST, SUCCESS, delivery_folder
from dmp.delivery.publish import publish, read_complete_manifest
from dmp.delivery.storage import FileStore, sha256_hex

FOLDER = delivery_folder("jd_ads", "spring", "2026-03-14")
FILES = {"add/part-00000.csv.gz": (b"add-bytes", 3), "remove/part-00000.csv.gz": (b"remove-bytes", 1)}
MANIFEST_BYTES = b'{"mode": "incremental"}\n'


@dataclass
class RecordingStore(FileStore):
    calls: list[tuple[str, str]] = field(default_factory=list)

    def put(self, key: str, data: bytes) -> None:
        self.calls.append(("put", key))
        super().put(key, data)

    def delete(self, key: str) -> None:
        self.calls.append(("delete", key))
        super().delete(key)


@pytest.fixture()
def store(tmp_path: Path) -> RecordingStore:
    return RecordingStore(root=tmp_path / "dest", url=f"file://{tmp_path}/dest")


def test_folder_layout() -> None:
    assert FOLDER == "jd_ads/spring/2026-03-14"
    assert (MANIFEST, SUCCESS) == ("manifest.json", "_SUCCESS")


def test_data_files_then_manifest_then_success(store: RecordingStore) -> None:
    seen: list[str] = []
    publish(store, FOLDER, FILES, MANIFEST_BYTES, after_put=seen.append)
    assert store.calls == [
        ("delete", f"{FOLDER}/_SUCCESS"),
        ("put", f"{FOLDER}/add/part-00000.csv.gz"),
        ("put", f"{FOLDER}/remove/part-00000.csv.gz"),
        ("put", f"{FOLDER}/manifest.json"),
        ("put", f"{FOLDER}/_SUCCESS"),
    ]
    assert seen == [key for _op, key in store.calls[1:]]
    assert store.get(f"{FOLDER}/_SUCCESS") == b""
    assert store.get(f"{FOLDER}/manifest.json") == MANIFEST_BYTES
    assert read_complete_manifest(store, FOLDER) == ({"mode": "incremental"}, sha256_hex(MANIFEST_BYTES))


def test_retry_keeps_intact_files_and_drops_stale_ones(store: RecordingStore) -> None:
    store.put(f"{FOLDER}/add/part-00000.csv.gz", b"add-bytes")  # arrived before the failure
    store.put(f"{FOLDER}/remove/part-00000.csv.gz", b"trunc")  # partial upload
    store.put(f"{FOLDER}/full/part-00000.csv.gz", b"old version")  # an older full delivery
    store.calls.clear()
    seen: list[str] = []
    publish(store, FOLDER, FILES, MANIFEST_BYTES, after_put=seen.append)
    assert store.calls == [
        ("delete", f"{FOLDER}/_SUCCESS"),
        ("delete", f"{FOLDER}/full/part-00000.csv.gz"),
        ("put", f"{FOLDER}/remove/part-00000.csv.gz"),
        ("put", f"{FOLDER}/manifest.json"),
        ("put", f"{FOLDER}/_SUCCESS"),
    ]
    # The hook still sees every key of the delivery, also the one that was kept.
    assert seen[0] == f"{FOLDER}/add/part-00000.csv.gz"
    assert store.list_keys(FOLDER) == sorted(
        [f"{FOLDER}/{n}" for n in FILES] + [f"{FOLDER}/manifest.json", f"{FOLDER}/_SUCCESS"]
    )


def test_failure_before_the_manifest_leaves_no_success(store: RecordingStore) -> None:
    def boom(key: str) -> None:
        if key.endswith(".csv.gz"):
            raise OSError("server gone")

    publish(store, FOLDER, FILES, MANIFEST_BYTES)
    with pytest.raises(OSError):
        publish(store, FOLDER, FILES, b"{}\n", after_put=boom)
    assert not store.exists(f"{FOLDER}/_SUCCESS")
    assert read_complete_manifest(store, FOLDER) is None


def test_complete_folder_with_broken_manifest_is_an_error(store: RecordingStore) -> None:
    store.put(f"{FOLDER}/manifest.json", b"not json")
    store.put(f"{FOLDER}/_SUCCESS", b"")
    with pytest.raises(DmpError, match="manifest.json: not valid JSON"):
        read_complete_manifest(store, FOLDER)
