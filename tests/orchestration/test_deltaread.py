"""The no-JVM Delta readers agree with Spark on tables Spark wrote: checkpoints, replaced
partitions, deletion vectors, files without statistics, and a lake on S3 (MinIO) read as s3a://."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest

from dmp.orchestration.deltaread import (
    delta_count,
    delta_partition_values,
    delta_rows,
    open_table,
    table_location,
)
from tests.support.s3server import MinioServer

SCHEMA = "segment string, run_date date, rows int, at timestamp"
D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)


def _spark_rows(spark, path: str) -> list[tuple]:  # noqa: ANN001 - SparkSession fixture
    df = spark.read.format("delta").load(path)
    return sorted((r.segment, r.run_date, r.rows) for r in df.collect())


def _rows(path: str) -> list[tuple]:
    return sorted((r["segment"], r["run_date"], r["rows"]) for r in delta_rows(path))


@pytest.fixture(scope="module")
def tables(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:  # noqa: ANN001
    root = tmp_path_factory.mktemp("deltaread")
    at = datetime(2026, 3, 1, 1, 2, 3)
    first = [("a", D1, 3, at), ("b", D2, 5, None), ("c", D2, 6, None)]
    paths = {name: str(root / name) for name in ("log", "dv", "nostats")}

    # A checkpoint every 2 commits: versions 0-2 are in the one at 2, 3 and 4 are JSON commits.
    writer = spark.createDataFrame(first, SCHEMA).write.format("delta").partitionBy("run_date")
    writer.option("delta.checkpointInterval", "2").save(paths["log"])
    for i in range(3):
        rows = [(f"x{i}{j}", D3, j, None) for j in range(i + 2)]  # 2 + 3 + 4 rows
        spark.createDataFrame(rows, SCHEMA).write.format("delta").mode("append").save(paths["log"])
    # replace one partition: its old file is removed in the log, a new one added
    (
        spark.createDataFrame([("a2", D1, 7, None)], SCHEMA)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", f"run_date = '{D1}'")
        .save(paths["log"])
    )

    writer = spark.createDataFrame(first, SCHEMA).write.format("delta").partitionBy("run_date")
    writer.option("delta.enableDeletionVectors", "true").save(paths["dv"])
    spark.sql(f"DELETE FROM delta.`{paths['dv']}` WHERE segment = 'b'")

    spark.conf.set("spark.databricks.delta.stats.collect", "false")
    try:
        spark.createDataFrame(first, SCHEMA).write.format("delta").save(paths["nostats"])
    finally:
        spark.conf.unset("spark.databricks.delta.stats.collect")
    return paths


@pytest.mark.slow
def test_log_with_checkpoint_and_replaced_partition_reads_like_spark(spark, tables: dict[str, str]) -> None:  # noqa: ANN001
    path = tables["log"]
    assert (Path(path) / "_delta_log" / "_last_checkpoint").is_file()
    assert _rows(path) == _spark_rows(spark, path)
    assert [r for r in _rows(path) if r[1] == D1] == [("a2", D1, 7)]
    assert delta_count(path) == 12
    assert delta_count(path, {"run_date": "2026-03-02"}) == 2
    assert delta_count(path, {"run_date": "2026-03-03"}) == 9
    assert delta_partition_values(path, "run_date") == ["2026-03-01", "2026-03-02", "2026-03-03"]
    assert delta_rows(path, ["segment"])[0].keys() == {"segment"}


def test_deleted_rows_in_deletion_vectors_are_not_counted(spark, tables: dict[str, str]) -> None:  # noqa: ANN001
    path = tables["dv"]
    assert "deletionVectors" in (open_table(path).protocol().reader_features or [])
    assert _rows(path) == _spark_rows(spark, path) == [("a", D1, 3), ("c", D2, 6)]
    assert delta_count(path) == 2
    assert delta_count(path, {"run_date": "2026-03-02"}) == 1
    at = next(r["at"] for r in delta_rows(path) if r["segment"] == "a")
    assert at.replace(tzinfo=None) == datetime(2026, 3, 1, 1, 2, 3)


def test_files_without_statistics_are_counted_exactly(tables: dict[str, str]) -> None:
    path = tables["nostats"]
    assert delta_count(path) == 3
    assert delta_count(path, {"segment": "b"}) == 1


def test_missing_table_reads_as_empty(tmp_path: Path) -> None:
    assert open_table(str(tmp_path / "missing")) is None
    assert delta_rows(str(tmp_path / "missing")) == []
    assert delta_count(str(tmp_path / "missing")) == 0
    assert delta_partition_values(str(tmp_path / "missing"), "run_date") == []


def test_s3_location_takes_the_aws_environment() -> None:
    env = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9001",
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
    }
    assert table_location("s3a://lake/ops/deliveries", env) == (
        "s3://lake/ops/deliveries",
        {
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9001",  # the S3-specific endpoint wins
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_ALLOW_HTTP": "true",
            "AWS_REGION": "us-east-1",
        },
    )
    # real AWS: no endpoint, the region as configured, nothing invented
    assert table_location("s3://lake/t", {"AWS_DEFAULT_REGION": "cn-north-1"}) == (
        "s3://lake/t",
        {"AWS_REGION": "cn-north-1"},
    )
    assert table_location("relative/t", {})[0] == str(Path("relative/t").resolve())


@pytest.fixture(scope="module")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        yield server


def test_lake_on_s3_reads_through_s3a_uri(s3: MinioServer, spark, tables: dict[str, str]) -> None:  # noqa: ANN001
    s3.create_bucket("lake")
    client = s3.client()
    for name in ("log", "dv"):
        root = Path(tables[name])
        for file in root.rglob("*"):
            if file.is_file():
                client.upload_file(str(file), "lake", f"ops/{name}/{file.relative_to(root)}")
    assert _rows("s3a://lake/ops/log") == _spark_rows(spark, tables["log"])
    assert delta_count("s3a://lake/ops/log", {"run_date": "2026-03-03"}) == 9
    assert delta_partition_values("s3a://lake/ops/log", "run_date") == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
    ]
    assert delta_count("s3a://lake/ops/dv") == 2
    assert delta_rows("s3a://lake/ops/missing") == []
