"""``dmp pull``: the reference downstream client (what an ad or coupon system would write).

1. Find the latest COMPLETE delivery of ``<channel>/<segment>/`` (a run-date folder with ``_SUCCESS``).
2. Work out what to apply: if the local copy is at the delivery the latest one was diffed against
   (``previous`` in the manifest, matched by run date AND manifest sha256), just the latest; otherwise
   follow ``previous`` back to a ``full`` delivery and rebuild from it (missed days, rewritten days).
3. Download every file of those deliveries and verify size, sha256, header and row count against
   the manifests BEFORE touching the local copy; any mismatch raises (the local copy stays as it was).
4. Apply full (replace) / add / remove (by the manifest's ``key_columns``) and write
   ``DEST/current.csv`` (sorted, header) and ``DEST/.dmp_pull.json`` (what was applied) atomically.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.delivery.layout import SUCCESS, delivery_folder, manifest_key, segment_folder, success_key
from dmp.delivery.manifest import parse_manifest
from dmp.delivery.plan import csv_text, empty_rows
from dmp.delivery.storage import ObjectStore, open_store, sha256_hex

CURRENT = "current.csv"
STATE = ".dmp_pull.json"
HISTORY_KEPT = 100


@dataclass
class PullResult:
    run_date: str
    applied: list[str] = field(default_factory=list)  # run dates applied, oldest first
    rows: int = 0
    path: str = ""
    up_to_date: bool = False


@dataclass
class _Delivery:
    run_date: str
    folder: str
    manifest: dict[str, Any]
    sha256: str


def _is_date(name: str) -> bool:
    try:
        date.fromisoformat(name)
    except ValueError:
        return False
    return True


def latest_complete(store: ObjectStore, channel: str, segment: str) -> str | None:
    """The greatest run-date folder of ``<channel>/<segment>/`` that has ``_SUCCESS``, if any."""
    base = segment_folder(channel, segment)
    for name in sorted((d for d in store.list_dirs(base) if _is_date(d)), reverse=True):
        if store.exists(success_key(f"{base}/{name}")):
            return name
    return None


def _load_delivery(store: ObjectStore, channel: str, segment: str, run_date: str) -> _Delivery:
    folder = delivery_folder(channel, segment, run_date)
    if not store.exists(success_key(folder)):
        raise DmpError(f"{store.url}/{folder}: not a complete delivery (no {SUCCESS}); cannot apply it")
    data = store.get(manifest_key(folder))
    return _Delivery(
        run_date, folder, parse_manifest(data, f"{store.url}/{manifest_key(folder)}"), sha256_hex(data)
    )


def _read_local_state(dest: Path) -> dict[str, Any]:
    path = dest / STATE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _download_verified(store: ObjectStore, delivery: _Delivery) -> dict[str, pd.DataFrame]:
    """``{kind: rows}`` for every file of a delivery, each checked against the manifest."""
    manifest = delivery.manifest
    columns = list(manifest["columns"])
    parts: dict[str, list[pd.DataFrame]] = {}
    for entry in manifest["files"]:
        key = f"{delivery.folder}/{entry['path']}"
        data = store.get(key)
        where = f"{store.url}/{key}"
        if len(data) != entry["bytes"]:
            raise DmpError(
                f"{where}: size {len(data)} bytes, manifest says {entry['bytes']} (corrupt or partial file)"
            )
        got = sha256_hex(data)
        if got != entry["sha256"]:
            raise DmpError(f"{where}: sha256 mismatch: file has {got}, manifest says {entry['sha256']}")
        text = gzip.decompress(data).decode("utf-8")
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        if header != columns:
            raise DmpError(f"{where}: header {header} does not match the manifest's columns {columns}")
        rows = list(reader)
        if len(rows) != entry["rows"]:
            raise DmpError(f"{where}: {len(rows)} rows, manifest says {entry['rows']}")
        frame = pd.DataFrame(rows, columns=columns, dtype=str) if rows else empty_rows(columns)
        parts.setdefault(entry["kind"], []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}


def _apply(current: pd.DataFrame, parts: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> pd.DataFrame:
    columns, keys = list(manifest["columns"]), list(manifest["key_columns"])
    if manifest["mode"] == "full":
        return parts.get("full", empty_rows(columns))
    current = current[columns]
    remove = parts.get("remove", empty_rows(columns))
    add = parts.get("add", empty_rows(columns))
    if len(remove):
        marked = current.merge(remove[keys].drop_duplicates(), on=keys, how="left", indicator=True)
        current = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    if len(add):
        current = pd.concat([current, add], ignore_index=True)
    return current.drop_duplicates(subset=keys, keep="last")


def _is_applied(applied: dict[str, Any] | None, run_date: str, manifest_sha256: str) -> bool:
    """Whether the local copy's last applied delivery is exactly this one (date and manifest)."""
    if not applied:
        return False
    return applied["run_date"] == run_date and applied["manifest_sha256"] == manifest_sha256


def _chain_to_base(
    store: ObjectStore, channel: str, segment: str, top: _Delivery, applied: dict[str, Any] | None
) -> tuple[list[_Delivery], bool]:
    """(deliveries to apply, oldest first; True when they build on the local copy).

    Follows ``previous`` back from ``top`` until the delivery the local copy is at (``applied``;
    None when there is no local copy), else to a ``full`` one. Each step checks that the older
    manifest is still the one the newer delivery was diffed against.
    """
    chain = [top]
    base_is_local = False
    while chain[-1].manifest["mode"] != "full":
        prev = chain[-1].manifest.get("previous")
        if not prev:
            raise DmpError(
                f"{store.url}/{manifest_key(chain[-1].folder)}: incremental delivery without 'previous'"
            )
        if _is_applied(applied, prev["run_date"], prev["manifest_sha256"]):
            base_is_local = True
            break
        older = _load_delivery(store, channel, segment, prev["run_date"])
        if older.sha256 != prev["manifest_sha256"]:
            raise DmpError(
                f"{store.url}/{older.folder}: manifest changed since {chain[-1].run_date} was diffed against it "
                "(re-delivered without the later days); ask the sender to re-deliver the later days"
            )
        chain.append(older)
    chain.reverse()
    return chain, base_is_local


def _local_base(dest: Path, columns: list[str], base_is_local: bool) -> pd.DataFrame:
    """The rows the chain applies to: the local current.csv, or nothing when rebuilding from full."""
    if not base_is_local:
        return empty_rows(columns)
    current = pd.read_csv(dest / CURRENT, dtype=str, keep_default_na=False)
    if list(current.columns) != columns:
        raise DmpError(
            f"{dest / CURRENT}: columns {list(current.columns)} differ from the delivery's {columns}"
        )
    return current


def _pull_state(
    store: ObjectStore,
    channel: str,
    segment: str,
    previous: dict[str, Any],
    downloaded: list[_Delivery],
    rows: int,
) -> dict[str, Any]:
    """The new ``.dmp_pull.json``: what was applied (the last ``HISTORY_KEPT`` deliveries)."""
    top = downloaded[-1]
    history = list(previous.get("applied") or [])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for delivery in downloaded:
        history.append(
            {
                "run_date": delivery.run_date,
                "manifest_sha256": delivery.sha256,
                "mode": delivery.manifest["mode"],
                "rows": rows if delivery is top else None,
                "applied_at": now,
            }
        )
    return {
        "channel": channel,
        "segment": segment,
        "source": store.url,
        "columns": list(top.manifest["columns"]),
        "key_columns": top.manifest["key_columns"],
        "applied": history[-HISTORY_KEPT:],
    }


def pull(store: ObjectStore, channel: str, segment: str, dest: str | Path) -> PullResult:
    """Bring ``DEST/current.csv`` up to the latest complete delivery (see the module docstring)."""
    dest = Path(dest)
    latest = latest_complete(store, channel, segment)
    if latest is None:
        raise DmpError(
            f"{store.url}/{segment_folder(channel, segment)}/: no complete delivery "
            f"(no run-date folder with {SUCCESS})"
        )
    state = _read_local_state(dest)
    have_local = (dest / CURRENT).is_file()
    applied = (state.get("applied") or [None])[-1] if have_local else None
    top = _load_delivery(store, channel, segment, latest)
    result = PullResult(run_date=latest, path=str(dest / CURRENT))
    if applied and _is_applied(applied, latest, top.sha256):
        result.up_to_date = True
        result.rows = int(applied.get("rows", 0))
        return result

    chain, base_is_local = _chain_to_base(store, channel, segment, top, applied)
    # Download and verify everything first; only then change the local copy.
    downloaded = [(d, _download_verified(store, d)) for d in chain]
    columns = list(top.manifest["columns"])
    current = _local_base(dest, columns, base_is_local)
    for delivery, parts in downloaded:
        current = _apply(current, parts, delivery.manifest)
    current = current[columns].sort_values(columns, kind="mergesort").reset_index(drop=True)

    dest.mkdir(parents=True, exist_ok=True)
    _write_atomic(dest / CURRENT, csv_text(current).encode("utf-8"))
    new_state = _pull_state(store, channel, segment, state, [d for d, _ in downloaded], len(current))
    _write_atomic(dest / STATE, (json.dumps(new_state, indent=2) + "\n").encode("utf-8"))
    result.applied = [d.run_date for d, _ in downloaded]
    result.rows = len(current)
    return result


def pull_channel(segments_dir: str, channel: str, segment: str, dest: str | Path) -> PullResult:
    """``dmp pull``: the channel's destination comes from ``<segments_dir>/channels.yaml``."""
    from dmp.contracts.channels import load_channels

    config = load_channels(segments_dir)
    return pull(open_store(config.get(channel).destination), channel, segment, dest)
