"""The DuckDB ingest twin must compute what ``dmp ingest`` computes, or its ratio means nothing: ingest
a small generated dataset with both and check the outputs row for row, and the buckets reason by reason."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench.bench_ingest import compare_ingest, duck_ingest, input_files, spark_ingest
from dmp.transforms.ingest import CONFLICT, TimeBounds
from dmp.transforms.quarantine import DUPLICATE_IN_BATCH

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def _spark_duplicates(
    spark: SparkSession, files: list[str], bounds: TimeBounds
) -> list[tuple[str, str, str]]:
    """(source_file, raw, event_id) of the rows the product's transforms call duplicate_in_batch (the
    step only counts them), from the same lines into an empty lake."""
    from pyspark.sql import functions as F

    from dmp.transforms.columns import is_blank
    from dmp.transforms.ingest import parse_jsonl, with_event_status, with_reason, with_typed_columns

    lines = spark.read.text(files).select("value", F.col("_metadata.file_path").alias("source_file"))
    batch = (
        lines.filter(~is_blank("value"))
        .transform(parse_jsonl)
        .transform(with_typed_columns)
        .transform(with_reason, bounds)
    )
    no_lake = spark.createDataFrame([], "event_id string, content_hash string")
    dups = with_event_status(batch, no_lake).filter(F.col("status") == DUPLICATE_IN_BATCH)
    return sorted(tuple(r) for r in dups.select("source_file", "raw", "event_id").collect())


def test_duckdb_ingest_twin_matches_dmp_ingest_row_for_row(spark, tmp_path: Path) -> None:
    from dmp.demo.generate import generate

    data = tmp_path / "data"
    # a high bad rate so that every kind of bad line the generator writes occurs, on little data
    generate(
        data, users=300, days=5, seed=11, start=date(2026, 9, 1), bad_rate=0.05, campaign=False, workers=1
    )
    now = datetime(2026, 10, 1, tzinfo=UTC)
    bounds = TimeBounds.for_format("jsonl", now)
    result, _ = spark_ingest(spark, str(tmp_path / "lake"), data, now)
    duck = duck_ingest(input_files(data), tmp_path / "duck", bounds, 2, now)
    check = compare_ingest(spark, str(tmp_path / "lake"), result, duck, 2)

    spark_counts, duck_counts = check["counts_spark"], check["counts_duckdb"]
    assert duck_counts == spark_counts, check
    assert check["events_rows"]["only_spark"] == check["events_rows"]["only_duckdb"] == 0, check
    assert check["quarantine_rows"]["only_spark"] == check["quarantine_rows"]["only_duckdb"] == 0, check
    assert check["content_hash_digest"]["spark"] == check["content_hash_digest"]["duckdb"], check
    assert check["same"] is True
    # the data is not trivial: many events, several reasons, both kinds of duplicate
    assert spark_counts["accepted"] > 1_000 and check["events_rows"]["duckdb"] == spark_counts["accepted"]
    reasons = spark_counts["reasons"]
    assert len(reasons) >= 3 and all(n > 0 for n in reasons.values()), reasons
    assert {"malformed_json", "future_timestamp", "bad_price", CONFLICT} <= set(reasons), reasons
    assert spark_counts["duplicates_in_batch"] > 0
    assert spark_counts["rows_read"] == (
        spark_counts["accepted"] + spark_counts["duplicates_in_batch"] + spark_counts["quarantined"]
    )
    assert check["quarantine_rows"]["duckdb"] == spark_counts["quarantined"] > 0
    # the duplicates are the same rows too (the product does not write them: its transforms say which)
    import duckdb

    duck_dups = duckdb.sql(f"SELECT source_file, raw, event_id FROM '{duck['duplicates_file']}'").fetchall()
    spark_dups = _spark_duplicates(spark, input_files(data), bounds)
    assert sorted(duck_dups) == spark_dups and len(spark_dups) == spark_counts["duplicates_in_batch"]


# Hostile lines of the checks the twin claims to implement beyond the demo's reasons (its module
# docstring): each line's bucket and reason must be the product's, and accepted values hash alike.
_OK = '"event_type": "view", "event_time": "2026-09-01T10:00:00Z"'
HOSTILE_LINES: tuple[str, ...] = (
    '{"event_id": "h1", "event_id": "h1b", "user_id": "u", ' + _OK + "}",  # duplicate_key
    '{"event_id": "h2", "user_id": {"a": 1}, ' + _OK + "}",  # bad_type:user_id
    '{"event_id": "h3", "user_id": "[1, 2]", ' + _OK + "}",  # bad_type:user_id (as text)
    '{"event_id": "h4", "user_id": "u", "sku_id": "' + "s" * 200 + '", ' + _OK + "}",  # field_too_long
    '{"event_id": "h5", "user_id": "u\\u200b1", ' + _OK + "}",  # control_characters (zero width)
    '\ufeff{"event_id": "h6", "user_id": "u", ' + _OK + "}",  # a BOM: accepted
    '{"event_id": "h7", "user_id": "u\ufffd", ' + _OK + "}",  # bad_encoding (U+FFFD)
    '{"event_id": "h8", "user_id": "u\\ud800", ' + _OK + "}",  # bad_encoding (lone surrogate)
    '{"event_id": "h9", "user_id": "u", "price": "NaN", ' + _OK + "}",  # bad_price
    '{"event_id": "h10", "user_id": "u", "price": -1, ' + _OK + "}",  # negative_price
    '{"event_id": "h11", "user_id": "u", "price": 2e6, ' + _OK + "}",  # price_out_of_range
    '{"event_id": "h12", "user_id": "u", "quantity": 1.5, ' + _OK + "}",  # bad_quantity
    '{"event_id": "h13", "user_id": "u", "channel": "tv", ' + _OK + "}",  # unknown_channel:tv
    '{"event_id": "h14", "user_id": "u", "event_type": "view", "event_time": "2026-13-01"}',
    '{"event_id": "h15", "user_id": "u", "event_type": "view", "event_time": "1999-01-01T00:00:00Z"}',
    '{"event_id": "h16", "user_id": "u", "event_type": "view", "event_time": 1788000000}',
    '{"event_id": "h17", "user_id": "u", "event_type": "view", "event_time": "2026-09-01T10:00:00+08:00"}',
    "[1, 2]",  # malformed_json
    '{"user_id": "u", ' + _OK + "}",  # missing_field:event_id
    "   ",  # blank: not a record
    '{"event_id": "h18", "user_id": "  u1 ", "coupon_id": "\\ud83d\\ude00", ' + _OK + "}",
    '{"event_id": "h19", "user_id": "a\\"b\\\\c", "price": 0.0001, "quantity": 2.0, ' + _OK + "}",
    '{"event_id": "h20", "user_id": "u", "price": -0.0, ' + _OK + "}",
    '{"event_id": "h21", "user_id": "u", "price": 0, ' + _OK + "}",
)


def test_duckdb_ingest_twin_matches_on_hostile_lines(spark, tmp_path: Path) -> None:
    data = tmp_path / "landing"
    data.mkdir()
    (data / "hostile.jsonl").write_text("\n".join(HOSTILE_LINES) + "\n", encoding="utf-8")
    now = datetime(2026, 10, 1, tzinfo=UTC)
    result, _ = spark_ingest(spark, str(tmp_path / "lake"), data, now)
    duck = duck_ingest(input_files(data), tmp_path / "duck", TimeBounds.for_format("jsonl", now), 2, now)
    check = compare_ingest(spark, str(tmp_path / "lake"), result, duck, 2)
    assert check["counts_duckdb"] == check["counts_spark"], check
    assert check["same"] is True, check
    assert len(check["counts_spark"]["reasons"]) >= 12 and check["counts_spark"]["accepted"] >= 6, check


def test_the_comparison_catches_a_check_the_twin_lacks(spark, tmp_path: Path) -> None:
    """A trailing comma: Jackson (the product) refuses it as malformed_json, DuckDB's JSON reader takes
    it (the twin does not implement that difference, its docstring says so): the check must say so."""
    data = tmp_path / "landing"
    data.mkdir()
    lines = [
        '{"event_id": "t1", "user_id": "u", ' + _OK + "}",
        '{"event_id": "t2", "user_id": "u", ' + _OK + ", }",
    ]
    (data / "trailing.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    now = datetime(2026, 10, 1, tzinfo=UTC)
    result, _ = spark_ingest(spark, str(tmp_path / "lake"), data, now)
    duck = duck_ingest(input_files(data), tmp_path / "duck", TimeBounds.for_format("jsonl", now), 2, now)
    check = compare_ingest(spark, str(tmp_path / "lake"), result, duck, 2)
    assert check["counts_spark"]["reasons"] == {"malformed_json": 1}, check
    assert check["counts_duckdb"]["reasons"] == {}, check
    assert check["same_counts"] is False and check["same"] is False
    assert check["events_rows"]["only_duckdb"] == 1 and check["quarantine_rows"]["only_spark"] == 1
