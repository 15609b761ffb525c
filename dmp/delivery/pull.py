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
from dmp.delivery.storage import ObjectStore, open_store, sha256_hex

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
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
    base = f"{channel}/{segment}"
    for name in sorted((d for d in store.list_dirs(base) if _is_date(d)), reverse=True):
        if store.exists(f"{base}/{name}/{SUCCESS}"):
            return name
    return None


def _load_delivery(store: ObjectStore, channel: str, segment: str, run_date: str) -> _Delivery:
    folder = f"{channel}/{segment}/{run_date}"
    if not store.exists(f"{folder}/{SUCCESS}"):
        raise DmpError(f"{store.url}/{folder}: not a complete delivery (no {SUCCESS}); cannot apply it")
    data = store.get(f"{folder}/{MANIFEST}")
    try:
        manifest = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DmpError(f"{store.url}/{folder}/{MANIFEST}: not valid JSON ({exc})") from None
    return _Delivery(run_date, folder, manifest, sha256_hex(data))


def _read_local_state(dest: Path) -> dict[str, Any]:
    path = dest / STATE
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=str) for c in columns})


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
        frame = pd.DataFrame(rows, columns=columns, dtype=str) if rows else _empty(columns)
        parts.setdefault(entry["kind"], []).append(frame)
    return {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}


def _apply(current: pd.DataFrame, parts: dict[str, pd.DataFrame], manifest: dict[str, Any]) -> pd.DataFrame:
    columns, keys = list(manifest["columns"]), list(manifest["key_columns"])
    if manifest["mode"] == "full":
        return parts.get("full", _empty(columns))
    current = current[columns]
    remove = parts.get("remove", _empty(columns))
    add = parts.get("add", _empty(columns))
    if len(remove):
        marked = current.merge(remove[keys].drop_duplicates(), on=keys, how="left", indicator=True)
        current = marked[marked["_merge"] == "left_only"].drop(columns="_merge")
    if len(add):
        current = pd.concat([current, add], ignore_index=True)
    return current.drop_duplicates(subset=keys, keep="last")


def pull(store: ObjectStore, channel: str, segment: str, dest: str | Path) -> PullResult:
    dest = Path(dest)
    latest = latest_complete(store, channel, segment)
    if latest is None:
        raise DmpError(
            f"{store.url}/{channel}/{segment}/: no complete delivery (no run-date folder with {SUCCESS})"
        )
    state = _read_local_state(dest)
    applied = (state.get("applied") or [None])[-1]
    top = _load_delivery(store, channel, segment, latest)
    result = PullResult(run_date=latest, path=str(dest / CURRENT))
    have_local = (dest / CURRENT).is_file()
    if have_local and applied and applied["run_date"] == latest and applied["manifest_sha256"] == top.sha256:
        result.up_to_date = True
        result.rows = int(applied.get("rows", 0))
        return result

    # Chain back to what we have locally, or to a full delivery.
    chain = [top]
    base_is_local = False
    while chain[-1].manifest["mode"] != "full":
        prev = chain[-1].manifest.get("previous")
        if not prev:
            raise DmpError(
                f"{store.url}/{chain[-1].folder}/{MANIFEST}: incremental delivery without 'previous'"
            )
        if (
            have_local
            and applied
            and prev["run_date"] == applied["run_date"]
            and prev["manifest_sha256"] == applied["manifest_sha256"]
        ):
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

    # Download and verify everything first; only then change the local copy.
    downloaded = [(d, _download_verified(store, d)) for d in chain]
    columns = list(top.manifest["columns"])
    if base_is_local:
        current = pd.read_csv(dest / CURRENT, dtype=str, keep_default_na=False)
        if list(current.columns) != columns:
            raise DmpError(
                f"{dest / CURRENT}: columns {list(current.columns)} differ from the delivery's {columns}"
            )
    else:
        current = _empty(columns)
    for delivery, parts in downloaded:
        current = _apply(current, parts, delivery.manifest)
    current = current[columns].sort_values(columns, kind="mergesort").reset_index(drop=True)

    dest.mkdir(parents=True, exist_ok=True)
    _write_atomic(dest / CURRENT, current.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    history = list(state.get("applied") or [])
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for delivery, _parts in downloaded:
        history.append(
            {
                "run_date": delivery.run_date,
                "manifest_sha256": delivery.sha256,
                "mode": delivery.manifest["mode"],
                "rows": len(current) if delivery is top else None,
                "applied_at": now,
            }
        )
    new_state = {
        "channel": channel,
        "segment": segment,
        "source": store.url,
        "columns": columns,
        "key_columns": top.manifest["key_columns"],
        "applied": history[-HISTORY_KEPT:],
    }
    _write_atomic(dest / STATE, (json.dumps(new_state, indent=2) + "\n").encode("utf-8"))
    result.applied = [d.run_date for d, _ in downloaded]
    result.rows = len(current)
    return result


def pull_channel(segments_dir: str, channel: str, segment: str, dest: str | Path) -> PullResult:
    """``dmp pull``: the channel's destination comes from ``<segments_dir>/channels.yaml``."""
    from dmp.contracts.channels import load_channels

    config = load_channels(segments_dir)
    return pull(open_store(config.get(channel).destination), channel, segment, dest)
