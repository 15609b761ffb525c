"""The erasure scanner finds what a byte search misses: compressed Parquet, nested columns, escaped JSON, gzip."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.support.lake_scan import Hit, find_strings, find_strings_s3

NEEDLE = "u_erase_me_0001"
OTHER = "13800138000"


def _parquet(path: Path, table: pa.Table, **options: object) -> None:
    pq.write_table(table, path, **options)


def _many_users(needle_at: int = 7) -> pa.Table:
    """400 similar ids: snappy encodes the needle as back-references into its neighbours, not as a literal."""
    ids = [NEEDLE if i == needle_at else f"u_keep_{i:04d}" for i in range(400)]
    return pa.table({"user_id": ids, "n": list(range(400))})


def test_snappy_parquet_column_is_found_where_a_byte_search_is_blind(tmp_path: Path) -> None:
    path = tmp_path / "part-0.snappy.parquet"
    _parquet(path, _many_users(), compression="snappy", write_statistics=False)  # Spark's and Delta's default

    assert NEEDLE.encode() not in path.read_bytes()  # the plain check misses it...
    assert find_strings(tmp_path, [NEEDLE]) == [
        Hit(str(path), "parquet column user_id", NEEDLE)
    ]  # ...we do not


def test_footer_statistics_and_nested_columns(tmp_path: Path) -> None:
    stats_only = tmp_path / "stats.parquet"
    _parquet(stats_only, pa.table({"user_id": [NEEDLE, "u_zz"]}), compression="zstd")
    nested = tmp_path / "nested.parquet"
    ids = pa.array([[("phone", OTHER)], []], type=pa.map_(pa.string(), pa.string()))
    person = pa.array(
        [{"tags": ["a", NEEDLE]}, {"tags": []}], type=pa.struct([("tags", pa.list_(pa.string()))])
    )
    _parquet(nested, pa.table({"ids": ids, "person": person}), compression="zstd", use_dictionary=False)

    hits = find_strings(tmp_path, [NEEDLE, OTHER])

    wheres = {(Path(h.path).name, h.where, h.needle) for h in hits}
    assert ("stats.parquet", "parquet column user_id", NEEDLE) in wheres
    assert ("stats.parquet", "parquet footer stats", NEEDLE) in wheres  # min of the column
    assert ("nested.parquet", "parquet column ids", OTHER) in wheres
    assert ("nested.parquet", "parquet column person", NEEDLE) in wheres
    assert {h.needle for h in hits if h.path.endswith("nested.parquet")} == {NEEDLE, OTHER}


def test_escaped_json_gzip_and_hidden_files(tmp_path: Path) -> None:
    log = tmp_path / "_delta_log"
    log.mkdir()
    escaped = json.dumps(
        {"add": {"stats": json.dumps({"minValues": {"user_id": NEEDLE}})}}, ensure_ascii=True
    )
    escaped = escaped.replace("u_erase", "\\u0075_erase")  # valid JSON, no needle bytes
    (log / "00000000000000000000.json").write_text(escaped + "\n" + json.dumps({"commitInfo": {}}) + "\n")
    (tmp_path / "export.csv.gz").write_bytes(gzip.compress(f"user_id\n{OTHER}\n".encode()))
    (tmp_path / ".hidden.txt").write_text(f"x {OTHER} y")
    (tmp_path / "clean.json").write_text(json.dumps({"user_id": "u_keep_0001"}))

    hits = find_strings(tmp_path, [NEEDLE, OTHER])

    assert NEEDLE.encode() not in (log / "00000000000000000000.json").read_bytes()
    assert sorted((Path(h.path).name, h.where, h.needle) for h in hits) == [
        (".hidden.txt", "bytes", OTHER),
        (".hidden.txt", "text", OTHER),
        ("00000000000000000000.json", "json", NEEDLE),
        ("export.csv.gz", "gzip/bytes", OTHER),
        ("export.csv.gz", "gzip/text", OTHER),
    ]


def test_unreadable_parquet_fails_closed(tmp_path: Path) -> None:
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet PAR1")
    assert [h.where for h in find_strings(tmp_path, [NEEDLE])] == ["parquet unreadable"]


class _FakeS3:
    """The two calls the scanner makes on a boto3 client, over an in-memory bucket."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_paginator(self, name: str) -> _FakeS3:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> list[dict[str, list[dict[str, str]]]]:  # noqa: N803 (boto3 names)
        keys = sorted(k for k in self.objects if k.startswith(Prefix))
        return [{"Contents": [{"Key": k} for k in keys[:1]]}, {"Contents": [{"Key": k} for k in keys[1:]]}]

    def get_object(self, Bucket: str, Key: str) -> dict[str, io.BytesIO]:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[Key])}


def test_s3_scan_reads_every_object_under_the_prefix() -> None:
    sink = io.BytesIO()
    pq.write_table(_many_users(), sink, compression="snappy", write_statistics=False)
    client = _FakeS3(
        {
            "lake/silver/t/part-0.parquet": sink.getvalue(),
            "lake/silver/t/_delta_log/00000000000000000000.json": b'{"add":{"path":"p"}}\n',
            "other/x.txt": NEEDLE.encode(),
        }
    )

    hits = find_strings_s3(client, "dmp", "lake/", [NEEDLE])

    assert NEEDLE.encode() not in client.objects["lake/silver/t/part-0.parquet"]
    assert hits == [Hit("s3://dmp/lake/silver/t/part-0.parquet", "parquet column user_id", NEEDLE)]
