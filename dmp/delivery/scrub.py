"""Scrub one delivered folder of erased accounts (issue 18, erasure: "every delivered file"); pure.

A delivery made before an erasure request stays on its destination (docs/downstream.md). Once the
accounts are tombstoned, :func:`scrub_folder` rewrites such a folder without their rows. It is given
the folder's stored ``manifest.json`` bytes, the bytes of its data files and ``is_erased(user_key)``
(the I/O edge, :mod:`dmp.steps.forget_scrub`, answers it from the tombstone hashes), and returns the
files and manifest to publish.

Which rows go:

- ``full`` and ``add`` files: every row whose ``user_key`` is erased;
- ``remove`` files are the sender's instruction to delete those keys downstream, so their rows are
  **kept**, except a row whose id type the channel delivers unhashed (``hash: none`` in the
  manifest's ``id_types``, e.g. coupon_center's raw ``user_id``): the raw id itself must not stay,
  so it goes too. A hashed key in a remove file is an md5/sha256 of the identifier, never the
  identifier.

What is written:

- a file with nothing erased is returned byte-identical, and so is a folder with nothing erased and
  no stale ``previous`` (a rerun changes nothing);
- a changed file is re-encoded by the delivery's own encoder (:func:`dmp.delivery.plan.encode_csv_gz`:
  same header, same sorted order, gzip ``mtime=0``), so a later re-delivery of the same day from the
  (also erased) lake finds identical bytes and leaves the folder alone; the file keeps its name,
  even when no row is left (a header-only file, as the delivery writes for an empty kind);
- the manifest's file entries (rows, bytes, sha256) and the counts that total those files
  (``added``, ``removed``, and ``delivered_rows`` of a ``full`` delivery) follow the new files. The
  other counts (pack size, match counts, ``delivered_rows`` of an incremental delivery, which counts
  the whole chain) describe the delivery as it was made and stay;
- the manifest gains ``scrubbed``: ``at`` (the last scrub that changed it), ``rows_removed`` (over
  every scrub) and ``replaced_manifest_sha256`` (the sha256 of every earlier version of this
  manifest, oldest first).

The incremental chain: a manifest names its ``previous`` by manifest sha256, which a scrub of the
earlier day changes. The scrub is applied to a segment's days oldest first, and a manifest whose
``previous.manifest_sha256`` is a *replaced* sha of that earlier day (:func:`superseded`) is
pointed at its current sha, so every later manifest changes too and the chain still verifies.
Because the newest manifest changes whenever anything older does, a client (``dmp pull``) that had
applied the old version no longer finds it and rebuilds from the ``full`` delivery: its copy loses
the erased rows as well. Keying on the replaced list (rather than on what this run changed) also
mends a chain left half-updated by an interrupted earlier scrub.
"""

from __future__ import annotations

import copy
import gzip
import io
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.delivery.manifest import manifest_bytes, parse_manifest
from dmp.delivery.plan import EncodedFiles, encode_csv_gz
from dmp.delivery.storage import sha256_hex

IsErased = Callable[[str], bool]

SCRUBBED = "scrubbed"
KEY_COLUMN = "user_key"  # the id column of both file layouts (plan.AD_COLUMNS, plan.COUPON_COLUMNS)
UNHASHED = "none"


@dataclass(frozen=True)
class ScrubbedFolder:
    """One folder after the scrub: what to publish (identical to the input when ``changed`` is False)."""

    manifest: dict[str, Any]
    manifest_data: bytes
    files: EncodedFiles  # every data file of the manifest: path -> (bytes, rows)
    rows_removed: dict[str, int]  # data file path -> rows removed by this scrub (0: untouched)
    previous_updated: bool

    @property
    def changed(self) -> bool:
        return self.previous_updated or any(self.rows_removed.values())

    @property
    def total_removed(self) -> int:
        return sum(self.rows_removed.values())

    @property
    def manifest_sha256(self) -> str:
        return sha256_hex(self.manifest_data)


def unhashed_id_types(manifest: Mapping[str, Any]) -> frozenset[str]:
    """The id types the channel delivers as they are (``hash: none``)."""
    return frozenset(
        str(t.get("id_type")) for t in manifest.get("id_types") or [] if t.get("hash") == UNHASHED
    )


def superseded(manifest: Mapping[str, Any], manifest_sha256: str) -> dict[str, str]:
    """``{replaced sha256: current sha256}`` of one folder: how later manifests re-point ``previous``."""
    replaced = (manifest.get(SCRUBBED) or {}).get("replaced_manifest_sha256") or []
    return {str(old): manifest_sha256 for old in replaced if old != manifest_sha256}


def _read_rows(data: bytes, entry: Mapping[str, Any], columns: list[str], where: str) -> pd.DataFrame:
    """The rows of one data file, checked against its manifest entry (size, sha256, header, rows)."""
    if len(data) != entry["bytes"] or sha256_hex(data) != entry["sha256"]:
        raise DmpError(
            f"{where}: does not match the manifest (size {len(data)} vs {entry['bytes']} bytes, or sha256); "
            "a folder that does not verify is not rewritten: re-deliver it"
        )
    try:
        text = gzip.decompress(data).decode("utf-8")
        rows = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, ValueError, pd.errors.ParserError) as exc:
        raise DmpError(f"{where}: not a readable delivery file ({type(exc).__name__})") from None
    if list(rows.columns) != columns:
        raise DmpError(
            f"{where}: header {list(rows.columns)} does not match the manifest's columns {columns}"
        )
    if len(rows) != entry["rows"]:
        raise DmpError(f"{where}: {len(rows)} rows, manifest says {entry['rows']}")
    return rows


def _erased_mask(rows: pd.DataFrame, kind: str, unhashed: frozenset[str], is_erased: IsErased) -> pd.Series:
    erased = rows[KEY_COLUMN].map(is_erased).astype(bool)
    if kind != "remove":
        return erased
    # A remove file tells the platform to delete the keys: kept, unless the key is a raw id.
    if "id_type" in rows.columns:
        return erased & rows["id_type"].isin(unhashed)
    return erased & bool(unhashed)  # coupon layout: every key is of the manifest's (only) id type


def _with_totals(manifest: dict[str, Any]) -> None:
    counts = manifest.get("counts")
    if not isinstance(counts, dict):
        return
    rows: dict[str, int] = {}
    for entry in manifest["files"]:
        rows[entry["kind"]] = rows.get(entry["kind"], 0) + int(entry["rows"])
    for kind, count in (("add", "added"), ("remove", "removed")):
        if kind in rows and count in counts:
            counts[count] = rows[kind]
    if manifest.get("mode") == "full" and "delivered_rows" in counts:
        counts["delivered_rows"] = rows.get("full", 0)


def scrub_folder(
    manifest_data: bytes,
    files: Mapping[str, bytes],
    is_erased: IsErased,
    *,
    now: datetime,
    renames: Mapping[str, str] | None = None,
    where: str = "",
) -> ScrubbedFolder:
    """The folder without the erased accounts' rows (module docstring).

    ``files``: data file path (as in the manifest) -> stored bytes; ``renames``: the
    :func:`superseded` map of the delivery this one may name as ``previous``; ``where``: the
    folder's URL, for messages. A file that does not match its manifest entry raises
    :class:`DmpError` (nothing is returned to publish).
    """
    manifest = parse_manifest(manifest_data, f"{where}/manifest.json")
    columns = list(manifest.get("columns") or [])
    if KEY_COLUMN not in columns:
        raise DmpError(f"{where}/manifest.json: columns {columns} have no {KEY_COLUMN!r}; not a delivery")
    unhashed = unhashed_id_types(manifest)
    new = copy.deepcopy(manifest)
    out: EncodedFiles = {}
    removed: dict[str, int] = {}
    for entry in new.get("files") or []:
        path = entry["path"]
        if path not in files:
            raise DmpError(f"{where}/{path}: listed in the manifest but not given")
        data = files[path]
        rows = _read_rows(data, entry, columns, f"{where}/{path}")
        mask = _erased_mask(rows, entry["kind"], unhashed, is_erased)
        removed[path] = int(mask.sum())
        if removed[path]:
            data = encode_csv_gz(rows[~mask].reset_index(drop=True))
            entry.update(rows=len(rows) - removed[path], bytes=len(data), sha256=sha256_hex(data))
        out[path] = (data, int(entry["rows"]))

    previous = new.get("previous")
    old_sha = previous.get("manifest_sha256") if isinstance(previous, dict) else None
    renamed = (renames or {}).get(old_sha) if old_sha else None
    if renamed:
        previous["manifest_sha256"] = renamed  # type: ignore[index]
    if not renamed and not any(removed.values()):
        return ScrubbedFolder(manifest, manifest_data, out, removed, False)

    _with_totals(new)
    before = manifest.get(SCRUBBED) or {}
    new[SCRUBBED] = {
        "at": now.isoformat(timespec="seconds"),
        "rows_removed": int(before.get("rows_removed") or 0) + sum(removed.values()),
        "replaced_manifest_sha256": [*before.get("replaced_manifest_sha256", []), sha256_hex(manifest_data)],
    }
    return ScrubbedFolder(new, manifest_bytes(new), out, removed, bool(renamed))
