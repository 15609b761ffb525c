"""``dmp pull``: the reference downstream client (what an ad or coupon system would write).

1. Find the latest COMPLETE delivery of ``<channel>/<segment>/`` (a run-date folder with ``_SUCCESS``),
   or the one of ``run_date`` when asked for a day.
2. Work out what to apply: if the local copy is at the delivery the latest one was diffed against
   (``previous`` in the manifest, matched by run date AND manifest sha256), just the latest; otherwise
   follow ``previous`` back to a ``full`` delivery and rebuild from it (missed days, rewritten days).
3. Download every file of those deliveries and verify size, sha256, header and row count against
   the manifests BEFORE touching the local copy; any mismatch raises (the local copy stays as it was).
4. Apply full (replace) / add / remove (by the manifest's ``key_columns``) and write
   ``DEST/current.csv`` (sorted, header) and ``DEST/.dmp_pull.json`` (what was applied) atomically.

Nothing read is trusted: the channel, segment and run-date arguments are checked against their
patterns before any path is built from them; every manifest is checked field by field (file paths
must stay inside their delivery folder, ``previous`` must be an earlier day, so a chain always
ends); data files are decompressed with a size bound; the local state file is checked too. Every
refusal is one :class:`DmpError` line naming the file, the field and what was expected.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import reprlib
import zlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dmp.contracts.channels import CHANNEL_NAME_PATTERN
from dmp.contracts.errors import DmpError
from dmp.contracts.specs import NAME_PATTERN
from dmp.delivery.layout import SUCCESS, delivery_folder, manifest_key, segment_folder, success_key
from dmp.delivery.manifest import parse_manifest
from dmp.delivery.plan import csv_text, empty_rows
from dmp.delivery.storage import ObjectStore, open_store, sha256_hex

CURRENT = "current.csv"
STATE = ".dmp_pull.json"
HISTORY_KEPT = 100
# A delivered line is ~70 (ad) to ~150 (coupon) bytes; a file expanding beyond this per line is a gzip bomb.
MAX_LINE_BYTES = 4096
# A manifest lists a few files (one per 2,000,000 rows); anything near this size is not one.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

_short = reprlib.Repr()
_short.maxstring = 80
_short.maxother = 80


def iso_day(value: object) -> str | None:
    """``value`` when it is a date written exactly ``YYYY-MM-DD`` (what folders are named), else None.

    ``date.fromisoformat`` alone also takes ``20260314`` and ``2026-W11-6``; a folder of those names
    is not a delivery.
    """
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        return value if date.fromisoformat(value).isoformat() == value else None
    except ValueError:
        return None


def check_pull_args(channel: str, segment: str, run_date: str | None = None) -> None:
    """Refuse a channel, segment or run date that does not match its pattern (before any path is built)."""
    if not re.fullmatch(CHANNEL_NAME_PATTERN, channel):
        raise DmpError(f"--channel: channel names match {CHANNEL_NAME_PATTERN}, got {_short.repr(channel)}")
    if not re.fullmatch(NAME_PATTERN, segment):
        raise DmpError(f"--segment: segment names match {NAME_PATTERN}, got {_short.repr(segment)}")
    if run_date is not None and iso_day(run_date) is None:
        raise DmpError(f"--run-date: expected a date as YYYY-MM-DD, got {_short.repr(run_date)}")


Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Count = Annotated[int, Field(ge=0)]


def _day(value: str) -> str:
    if iso_day(value) is None:
        raise ValueError(f"expected a date as YYYY-MM-DD, got {_short.repr(value)}")
    return value


class _Checked(BaseModel):
    # strict: JSON already types its values ("3" rows or true for a count is a sender's bug);
    # extra allowed: manifests and state may gain fields (docs/downstream.md).
    model_config = ConfigDict(strict=True, extra="allow")


class _FileEntry(_Checked):
    path: str
    kind: Literal["full", "add", "remove"]
    rows: Count
    bytes: Count
    sha256: Sha256

    @field_validator("path")
    @classmethod
    def _inside_folder(cls, value: str) -> str:
        parts = value.split("/")
        if value.startswith("/") or "\\" in value or any(p in ("", ".", "..") for p in parts):
            raise ValueError(
                f"must be a relative path inside the delivery folder (no '..', '.', empty or leading '/' "
                f"parts, no backslash), got {_short.repr(value)}"
            )
        return value


class _Previous(_Checked):
    run_date: str
    manifest_sha256: Sha256

    _run_date = field_validator("run_date")(_day)


class _PulledManifest(_Checked):
    """The fields of manifest.json that the client relies on (docs/downstream.md)."""

    channel: str
    segment: str
    run_date: str
    mode: Literal["full", "incremental"]
    previous: _Previous | None = None
    columns: Annotated[list[str], Field(min_length=1)]
    key_columns: Annotated[list[str], Field(min_length=1)]
    files: list[_FileEntry]

    _run_date = field_validator("run_date")(_day)

    @model_validator(mode="after")
    def _consistent(self) -> _PulledManifest:
        if len(set(self.columns)) != len(self.columns):
            raise ValueError(f"columns: a column is listed twice in {_short.repr(self.columns)}")
        if not set(self.key_columns) <= set(self.columns):
            raise ValueError(f"key_columns: {_short.repr(self.key_columns)} are not all in columns")
        allowed = {"full"} if self.mode == "full" else {"add", "remove"}
        wrong = sorted({f.kind for f in self.files} - allowed)
        if wrong:
            raise ValueError(f"files: kind {wrong} in a {self.mode} delivery (allowed: {sorted(allowed)})")
        paths = [f.path for f in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("files: a path is listed twice")
        if self.mode == "incremental" and self.previous is None:
            raise ValueError("previous: an incremental delivery must name the delivery it was diffed against")
        if self.previous is not None and self.previous.run_date >= self.run_date:
            raise ValueError(
                f"previous.run_date {self.previous.run_date} is not before run_date {self.run_date}"
            )
        return self


class _AppliedEntry(_Checked):
    run_date: str
    manifest_sha256: Sha256
    rows: Count | None = None

    _run_date = field_validator("run_date")(_day)


class _LocalState(_Checked):
    """``.dmp_pull.json`` as this client writes it."""

    channel: str | None = None
    segment: str | None = None
    applied: list[_AppliedEntry] = Field(default_factory=list)


def _one_line(exc: ValidationError, limit: int = 3) -> str:
    """The first ``limit`` errors as ``field: problem; ...`` (no input values: they may be huge)."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "value_error" and "error" in err.get("ctx", {}):
            # Our own validators' text; a model-level one already names its fields.
            msg = str(err["ctx"]["error"])
            parts.append(f"{loc}: {msg}" if loc else msg)
        else:
            parts.append(f"{loc or '(top level)'}: {err['msg']}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


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


def latest_complete(store: ObjectStore, channel: str, segment: str) -> str | None:
    """The greatest run-date folder of ``<channel>/<segment>/`` that has ``_SUCCESS``, if any."""
    base = segment_folder(channel, segment)
    for name in sorted((d for d in store.list_dirs(base) if iso_day(d)), reverse=True):
        if store.exists(success_key(f"{base}/{name}")):
            return name
    return None


def _load_delivery(store: ObjectStore, channel: str, segment: str, run_date: str) -> _Delivery:
    folder = delivery_folder(channel, segment, run_date)
    if not store.exists(success_key(folder)):
        raise DmpError(f"{store.url}/{folder}: not a complete delivery (no {SUCCESS}); cannot apply it")
    data = store.get(manifest_key(folder), max_bytes=MAX_MANIFEST_BYTES)
    where = f"{store.url}/{manifest_key(folder)}"
    if len(data) > MAX_MANIFEST_BYTES:
        raise DmpError(
            f"{where}: larger than {MAX_MANIFEST_BYTES} bytes; a manifest is a few kilobytes, refused"
        )
    return _Delivery(
        run_date, folder, _checked_manifest(data, where, (channel, segment, run_date)), sha256_hex(data)
    )


def _checked_manifest(data: bytes, where: str, expected: tuple[str, str, str]) -> dict[str, Any]:
    """The manifest as a dict once every field the client uses is checked; else one DmpError line."""
    manifest = parse_manifest(data, where)  # one DmpError line for any unreadable JSON
    try:
        _PulledManifest.model_validate(manifest)
    except ValidationError as exc:
        raise DmpError(f"{where}: invalid manifest: {_one_line(exc)}") from None
    found = (manifest["channel"], manifest["segment"], manifest["run_date"])
    if found != expected:
        raise DmpError(
            f"{where}: manifest is for {_short.repr('/'.join(found))}, but it sits in {'/'.join(expected)} "
            "(a folder copied from elsewhere?); ask the sender to re-deliver"
        )
    return manifest


def _check_dest(dest: Path) -> None:
    """DEST must be a folder (or not exist yet) and its two files, when there, files."""
    if dest.exists() and not dest.is_dir():
        raise DmpError(f"--dest {dest}: is a file, expected a folder (it holds {CURRENT} and {STATE})")
    for name in (CURRENT, STATE):
        if (dest / name).exists() and not (dest / name).is_file():
            raise DmpError(f"{dest / name}: is a folder, expected the file this client writes there")


def _read_local_state(dest: Path, channel: str, segment: str) -> dict[str, Any]:
    """``.dmp_pull.json`` checked: readable JSON of the expected shape, for this channel and segment."""
    path = dest / STATE
    if not path.is_file():
        return {}
    fix = f"delete it to rebuild {dest / CURRENT} from the latest full delivery"
    try:
        state = json.loads(path.read_bytes())
    except (RecursionError, ValueError) as exc:  # JSONDecodeError, bad UTF-8
        detail = (
            str(exc).splitlines()[0][:120] if isinstance(exc, json.JSONDecodeError) else type(exc).__name__
        )
        raise DmpError(f"{path}: not valid JSON ({detail}); {fix}") from None
    except OSError as exc:
        raise DmpError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        _LocalState.model_validate(state)
    except ValidationError as exc:
        raise DmpError(f"{path}: not a pull state file: {_one_line(exc)}; {fix}") from None
    held = (state.get("channel"), state.get("segment"))
    if None not in held and held != (channel, segment):
        raise DmpError(
            f"--dest {dest}: holds {_short.repr('/'.join(held))} (see {STATE}), not {channel}/{segment}; "
            "give each channel and segment its own --dest"
        )
    return state


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise DmpError(f"{path}: cannot write ({exc.strerror or type(exc).__name__})") from None


def _read_rows(data: bytes, entry: dict[str, Any], columns: list[str], where: str) -> list[list[str]]:
    """The rows of one verified data file: gzip (bounded), UTF-8, CSV with the manifest's header."""
    limit = (entry["rows"] + 1) * MAX_LINE_BYTES
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            raw = fh.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DmpError(f"{where}: not a readable gzip file ({type(exc).__name__})") from None
    if len(raw) > limit:
        raise DmpError(
            f"{where}: expands to more than {limit} bytes for {entry['rows']} rows "
            f"(at most {MAX_LINE_BYTES} bytes a line); refused"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DmpError(f"{where}: not UTF-8 (byte {exc.start} of the decompressed file)") from None
    try:
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        rows = list(reader)
    except csv.Error as exc:
        raise DmpError(f"{where}: not readable CSV ({exc})") from None
    if header != columns:
        raise DmpError(
            f"{where}: header {_short.repr(header)} does not match the manifest's columns {columns}"
        )
    if len(rows) != entry["rows"]:
        raise DmpError(f"{where}: {len(rows)} rows, manifest says {entry['rows']}")
    bad = next((i for i, row in enumerate(rows) if len(row) != len(columns)), None)
    if bad is not None:
        raise DmpError(
            f"{where}: line {bad + 2} has {len(rows[bad])} fields, expected {len(columns)} ({columns})"
        )
    return rows


def _download_verified(store: ObjectStore, delivery: _Delivery) -> dict[str, pd.DataFrame]:
    """``{kind: rows}`` for every file of a delivery, each checked against the manifest."""
    manifest = delivery.manifest
    columns = list(manifest["columns"])
    parts: dict[str, list[pd.DataFrame]] = {}
    for entry in manifest["files"]:
        key = f"{delivery.folder}/{entry['path']}"
        data = store.get(key, max_bytes=entry["bytes"])
        where = f"{store.url}/{key}"
        if len(data) > entry["bytes"]:
            raise DmpError(
                f"{where}: larger than the manifest's {entry['bytes']} bytes (corrupt or replaced file); "
                "not downloaded further"
            )
        if len(data) != entry["bytes"]:
            raise DmpError(
                f"{where}: size {len(data)} bytes, manifest says {entry['bytes']} (corrupt or partial file)"
            )
        got = sha256_hex(data)
        if got != entry["sha256"]:
            raise DmpError(f"{where}: sha256 mismatch: file has {got}, manifest says {entry['sha256']}")
        rows = _read_rows(data, entry, columns, where)
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
    try:
        current = pd.read_csv(dest / CURRENT, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DmpError(
            f"{dest / CURRENT}: not readable CSV ({type(exc).__name__}); delete it and {STATE} to rebuild "
            "from the latest full delivery"
        ) from None
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


def pull(
    store: ObjectStore, channel: str, segment: str, dest: str | Path, run_date: str | None = None
) -> PullResult:
    """Bring ``DEST/current.csv`` to the latest complete delivery, or to ``run_date``'s (module docstring)."""
    check_pull_args(channel, segment, run_date)
    dest = Path(dest)
    _check_dest(dest)
    state = _read_local_state(dest, channel, segment)
    target = run_date or latest_complete(store, channel, segment)
    if target is None:
        raise DmpError(
            f"{store.url}/{segment_folder(channel, segment)}/: no complete delivery "
            f"(no run-date folder with {SUCCESS})"
        )
    have_local = (dest / CURRENT).is_file()
    applied = (state.get("applied") or [None])[-1] if have_local else None
    top = _load_delivery(store, channel, segment, target)
    result = PullResult(run_date=target, path=str(dest / CURRENT))
    if applied and _is_applied(applied, target, top.sha256):
        result.up_to_date = True
        result.rows = int(applied.get("rows") or 0)
        return result

    chain, base_is_local = _chain_to_base(store, channel, segment, top, applied)
    # Download and verify everything first; only then change the local copy.
    downloaded = [(d, _download_verified(store, d)) for d in chain]
    columns = list(top.manifest["columns"])
    current = _local_base(dest, columns, base_is_local)
    for delivery, parts in downloaded:
        current = _apply(current, parts, delivery.manifest)
    current = current[columns].sort_values(columns, kind="mergesort").reset_index(drop=True)

    _write_atomic(dest / CURRENT, csv_text(current).encode("utf-8"))
    new_state = _pull_state(store, channel, segment, state, [d for d, _ in downloaded], len(current))
    _write_atomic(dest / STATE, (json.dumps(new_state, indent=2) + "\n").encode("utf-8"))
    result.applied = [d.run_date for d, _ in downloaded]
    result.rows = len(current)
    return result


def pull_channel(
    segments_dir: str, channel: str, segment: str, dest: str | Path, run_date: str | None = None
) -> PullResult:
    """``dmp pull``: the channel's destination comes from ``<segments_dir>/channels.yaml``."""
    from dmp.contracts.channels import load_channels

    check_pull_args(channel, segment, run_date)  # before channels.yaml is even read
    config = load_channels(segments_dir)
    return pull(open_store(config.get(channel).destination), channel, segment, dest, run_date)
