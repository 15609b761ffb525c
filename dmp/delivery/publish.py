"""Put a planned delivery on its destination so that no client ever reads half of it.

Order (docs/downstream.md): remove ``_SUCCESS`` first (an incomplete folder must never look
complete), delete stale objects of an older version, write the data files, then ``manifest.json``,
then the empty ``_SUCCESS`` last. A retry after a failure skips data files already stored intact
(same sha256 in the object's metadata) and finishes the folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dmp.delivery.layout import manifest_key, success_key
from dmp.delivery.manifest import parse_manifest
from dmp.delivery.plan import EncodedFiles
from dmp.delivery.storage import ObjectStore, sha256_hex

AfterPut = Callable[[str], None]  # called with each key just stored (tests stop the server there)


def _put(store: ObjectStore, key: str, data: bytes, after_put: AfterPut | None) -> None:
    store.put(key, data)
    if after_put:
        after_put(key)


def publish(
    store: ObjectStore,
    folder: str,
    files: EncodedFiles,
    manifest: bytes,
    after_put: AfterPut | None = None,
) -> None:
    """Data files, then the manifest, then ``_SUCCESS``; objects already stored intact are kept."""
    store.delete(success_key(folder))  # an incomplete folder must never look complete
    wanted = {f"{folder}/{name}" for name in files}
    for key in store.list_keys(folder):
        if key not in wanted:  # stale parts of an older version of this delivery, old manifest
            store.delete(key)
    for name, (data, _rows) in sorted(files.items()):
        key = f"{folder}/{name}"
        if store.stored_sha256(key) != sha256_hex(data):
            store.put(key, data)
        if after_put:
            after_put(key)
    _put(store, manifest_key(folder), manifest, after_put)
    _put(store, success_key(folder), b"", after_put)


def read_complete_manifest(store: ObjectStore, folder: str) -> tuple[dict[str, Any], str] | None:
    """The manifest of a COMPLETE delivery in ``folder`` and its sha256; None without ``_SUCCESS``."""
    if not store.exists(success_key(folder)):
        return None
    data = store.get(manifest_key(folder))
    return parse_manifest(data, f"{store.url}/{manifest_key(folder)}"), sha256_hex(data)
