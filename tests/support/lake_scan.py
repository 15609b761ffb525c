"""Find values (user ids, phones, e-mails) anywhere under a lake folder or bucket prefix: the erasure check.

A byte search alone misses most of a lake: Parquet pages are snappy/zstd-compressed, so a deleted
id in an old data file or in a checkpoint's ``stats_parsed`` column is not a byte string on disk,
and ``.gz`` files hide their text. So every file is looked at four ways:

- ``bytes``: the raw bytes;
- Parquet (magic ``PAR1``): every column decoded with pyarrow, nested struct/list/map values
  flattened (``parquet column a.b``), the row groups' footer statistics min/max
  (``parquet footer stats``) and the footer's key/value metadata (``parquet footer metadata``);
  a file pyarrow cannot read is reported (``parquet unreadable``): the scan fails closed;
- JSON (one document or JSON lines: ``_delta_log/*.json``, ``*.crc``, ``_last_checkpoint``):
  parsed and searched unescaped, so a ``\\u0075``-escaped id is still found (``json``); other
  UTF-8 text as is (``text``);
- gzip (magic ``1f 8b``): decompressed and scanned again (``gzip/...``).
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, order=True)
class Hit:
    path: str  # the file (local path or s3://bucket/key)
    where: str  # how it was found: "bytes", "parquet column user_id", "parquet footer stats", "json", ...
    needle: str


def find_strings(root: str | Path, needles: Iterable[str]) -> list[Hit]:
    """Every place a needle occurs in any file under ``root`` (hidden files and folders included)."""
    wanted = _needles(needles)
    hits: list[Hit] = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        hits.extend(scan_bytes(str(path), path.read_bytes(), wanted))
    return sorted(set(hits))


def find_strings_s3(client: Any, bucket: str, prefix: str, needles: Iterable[str]) -> list[Hit]:
    """The same for every object under ``prefix`` in ``bucket`` (a boto3 S3 client; objects read into memory)."""
    wanted = _needles(needles)
    hits: list[Hit] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            data = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            hits.extend(scan_bytes(f"s3://{bucket}/{obj['Key']}", data, wanted))
    return sorted(set(hits))


def scan_bytes(path: str, data: bytes, needles: list[str], prefix: str = "") -> list[Hit]:
    """The hits of ``needles`` in one file's content (``prefix`` names the container, e.g. ``gzip/``)."""
    hits = [Hit(path, f"{prefix}bytes", n) for n in needles if n.encode() in data]
    if data[:4] == PARQUET_MAGIC and data[-4:] == PARQUET_MAGIC:
        hits.extend(Hit(path, prefix + where, n) for where, n in _scan_parquet(data, needles))
    elif data[:2] == GZIP_MAGIC:
        try:
            inner = gzip.decompress(data)
        except (OSError, EOFError):
            hits.extend(Hit(path, f"{prefix}gzip unreadable", n) for n in needles)
        else:
            hits.extend(scan_bytes(path, inner, needles, f"{prefix}gzip/"))
    else:
        hits.extend(Hit(path, prefix + where, n) for where, n in _scan_text(data, needles))
    return hits


# ------------------------------------------------------------------------------------ Parquet


def _scan_parquet(data: bytes, needles: list[str]) -> Iterator[tuple[str, str]]:
    try:
        parquet = pq.ParquetFile(io.BytesIO(data))
        table = parquet.read()
    except (pa.ArrowException, OSError, ValueError):
        for n in needles:
            yield "parquet unreadable", n
        return
    for name in table.column_names:
        values = list(_leaves(table.column(name).to_pylist()))
        for n in needles:
            if any(_contains(v, n) for v in values):
                yield f"parquet column {name}", n
    stats = list(_footer_stats(parquet.metadata))
    metadata = [k + v for k, v in (parquet.metadata.metadata or {}).items()]
    for n in needles:
        if any(_contains(v, n) for v in stats):
            yield "parquet footer stats", n
        if any(_contains(v, n) for v in metadata):
            yield "parquet footer metadata", n


def _footer_stats(metadata: pq.FileMetaData) -> Iterator[object]:
    for g in range(metadata.num_row_groups):
        group = metadata.row_group(g)
        for c in range(group.num_columns):
            stats = group.column(c).statistics
            if stats is not None and stats.has_min_max:
                yield stats.min
                yield stats.max


def _leaves(value: object) -> Iterator[object]:
    """Scalars of a nested value: struct fields, list items, map keys and values (pairs) all flattened."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _leaves(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _leaves(item)
    elif value is not None:
        yield value


def _contains(value: object, needle: str) -> bool:
    if isinstance(value, bytes | bytearray):
        return needle.encode() in value
    return needle in str(value)


# --------------------------------------------------------------------------------- JSON, text


def _scan_text(data: bytes, needles: list[str]) -> Iterator[tuple[str, str]]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    documents = _json_documents(text)
    if documents is None:
        for n in needles:
            if n in text:
                yield "text", n
        return
    flat = "\n".join(json.dumps(d, ensure_ascii=False) for d in documents)
    for n in needles:
        if n in flat:
            yield "json", n


def _json_documents(text: str) -> list[object] | None:
    """The file as one JSON document or as JSON lines; ``None`` when it is neither."""
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines] or None
    except ValueError:
        return None


def _needles(needles: Iterable[str]) -> list[str]:
    wanted = sorted(set(needles))
    if not wanted or any(not n for n in wanted):
        raise ValueError("needles must be non-empty strings")
    return wanted
