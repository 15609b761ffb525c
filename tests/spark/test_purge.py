"""purge_history: after DELETE + purge at 0 h no file of the table holds a deleted row's value (issue #18)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.errors import AnalysisException

from dmp.spark.purge import (
    LogFile,
    PurgeReport,
    list_log_name,
    log_boundary,
    oldest_readable_version,
    purge_history,
)
from tests.support.lake_scan import find_strings

# Real Delta rewrites and vacuums, several minutes in all: make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

ERASED = ["u_erase_me_0001", "u_erase_me_0002"]
PHONE = "13900000001"  # an identifier of an erased user, in a map column
NEEDLES = [*ERASED, PHONE]
SCHEMA = "user_id string, n int, ids map<string,string>"
KEPT = [("u_keep_0001", 12), ("u_keep_0002", 14), ("u_keep_0003", 30)]


def _table(spark, path: str, deletion_vectors: bool = False) -> None:
    """Three commits (append, append, merge), then the DELETE of the two erased users."""
    from delta.tables import DeltaTable

    first = spark.createDataFrame(
        [("u_erase_me_0001", 1, {"phone": PHONE}), ("u_keep_0001", 2, {"phone": "13900000009"})], SCHEMA
    )
    writer = first.write.format("delta")
    if deletion_vectors:
        writer = writer.option("delta.enableDeletionVectors", "true")
    writer.save(path)
    second = spark.createDataFrame([("u_erase_me_0002", 3, {}), ("u_keep_0002", 4, {})], SCHEMA)
    second.write.format("delta").mode("append").save(path)
    changes = spark.createDataFrame(
        [
            ("u_keep_0001", 12, {}),
            ("u_keep_0002", 14, {}),
            ("u_keep_0003", 30, {}),
            ("u_erase_me_0001", 11, {}),
        ],
        SCHEMA,
    )
    (
        DeltaTable.forPath(spark, path)
        .alias("t")
        .merge(changes.alias("c"), "t.user_id = c.user_id")
        .whenMatchedUpdate(set={"n": "c.n"})
        .whenNotMatchedInsertAll()
        .execute()
    )
    spark.sql(f"DELETE FROM delta.`{path}` WHERE user_id IN ('u_erase_me_0001', 'u_erase_me_0002')")


def _rows(spark, path: str, **options: object) -> list[tuple[str, int]]:
    df = spark.read.format("delta").options(**options).load(path)
    return sorted((r["user_id"], r["n"]) for r in df.collect())


def _latest_version(spark, path: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).first()["version"])


def _checkpoint_actions(path: str) -> tuple[set[str], list[dict]]:
    """(paths of the `add` actions, the `remove` tombstones) of the table's checkpoints."""
    adds: set[str] = set()
    removes: list[dict] = []
    for file in (Path(path) / "_delta_log").glob("*.checkpoint*.parquet"):
        table = pq.read_table(file)
        assert "stats" not in table.schema.field("remove").type.names  # tombstones carry no statistics
        for row in table.to_pylist():
            if row["add"]:
                adds.add(row["add"]["path"])
            if row["remove"]:
                removes.append(row["remove"])
    return adds, removes


def _assert_purged(spark, path: str, report: PurgeReport) -> None:
    assert find_strings(path, NEEDLES) == []
    assert _rows(spark, path) == KEPT
    assert report.version == _latest_version(spark, path)
    assert report.oldest_version == report.version
    with pytest.raises(
        AnalysisException, match=f"DELTA_VERSION_NOT_FOUND.*Available versions: \\[{report.version}, "
    ):
        spark.read.format("delta").option("versionAsOf", 0).load(path).collect()
    adds, _ = _checkpoint_actions(path)
    current = {Path(f).name for f in spark.read.format("delta").load(path).inputFiles()}
    assert adds == current  # the checkpoint's `add` stats describe the current files only


def test_purge_at_zero_hours_leaves_no_trace_of_deleted_rows(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "t")
    _table(spark, path)
    before = find_strings(path, NEEDLES)
    # The test can fail: the ids are in old data files (decoded columns) and in the log's statistics.
    assert {"u_erase_me_0001", "u_erase_me_0002", PHONE} == {h.needle for h in before}
    assert any(h.where.startswith("parquet column") and "_delta_log" not in h.path for h in before)
    assert any(h.path.endswith(".json") and "_delta_log" in h.path for h in before)
    assert any(h.path.endswith(".crc") for h in before)  # older checksums list every file with its stats

    report = purge_history(spark, path, 0)

    _assert_purged(spark, path, report)
    assert report.table == path
    assert report.files_removed >= 4  # the two first appends' files and the merge's rewritten ones
    assert report.log_files_removed >= 6  # commits 0..2 and their .crc at least
    assert report.version == 4  # the DELETE (3), then the purge's empty sealing commit


def test_purge_rewrites_rows_hidden_by_deletion_vectors(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "dv")
    _table(spark, path, deletion_vectors=True)
    assert list(Path(path).glob("deletion_vector_*.bin"))  # the DELETE only marked the rows
    hits = find_strings(path, NEEDLES)
    assert any("_delta_log" not in h.path and "deletion_vector" not in h.path for h in hits)

    report = purge_history(spark, path, 0)

    _assert_purged(spark, path, report)
    assert not list(Path(path).glob("deletion_vector_*.bin"))
    assert report.files_removed > 0 and report.log_files_removed > 0
    assert report.version == 5  # the DELETE (3), REORG ... APPLY (PURGE) (4), the sealing commit


def test_retention_keeps_everything_younger(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "kept")
    _table(spark, path)
    before = find_strings(path, NEEDLES)

    report = purge_history(spark, path, 1000)

    assert (report.files_removed, report.log_files_removed, report.oldest_version) == (0, 0, 0)
    assert report.version == 4
    assert {h.needle for h in find_strings(path, NEEDLES)} == {h.needle for h in before}
    assert _rows(spark, path, versionAsOf=0) == [("u_erase_me_0001", 1), ("u_keep_0001", 2)]
    assert _rows(spark, path) == KEPT


def test_second_purge_is_a_no_op(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "twice")
    _table(spark, path)
    first = purge_history(spark, path, 0)
    files = sorted(p.name for p in Path(path).rglob("*") if p.is_file() and "checkpoint" not in p.name)

    second = purge_history(spark, path, 0)

    assert (second.files_removed, second.log_files_removed) == (0, 0)
    assert (second.version, second.oldest_version) == (first.version, first.oldest_version)
    assert (
        sorted(p.name for p in Path(path).rglob("*") if p.is_file() and "checkpoint" not in p.name) == files
    )
    _assert_purged(spark, path, second)


def test_retention_check_setting_is_restored(spark, tmp_path: Path) -> None:
    path = str(tmp_path / "conf")
    spark.createDataFrame([("u_keep_0001", 1, {})], SCHEMA).write.format("delta").save(path)
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    assert key not in spark.conf.getAll
    purge_history(spark, path, 0)
    assert key not in spark.conf.getAll
    with pytest.raises(Exception, match="retention_hours"):
        purge_history(spark, path, -1)


# ----------------------------------------------------------------- the log cut, without Spark

HOUR_MS = 3_600_000


def _log(name: str, age_hours: float, now_ms: int = 1_000 * HOUR_MS) -> LogFile:
    version, checkpoint = list_log_name(name)
    return LogFile(
        path=name,
        name=name,
        version=version,
        mtime_ms=int(now_ms - age_hours * HOUR_MS),
        checkpoint=checkpoint,
        staged=False,
    )


def _v(version: int, suffix: str) -> str:
    return f"{version:020d}.{suffix}"


def test_log_cut_keeps_every_version_younger_than_the_retention() -> None:
    now = 1_000 * HOUR_MS
    cutoff = now - 10 * HOUR_MS
    files = [_log(_v(v, "json"), age) for v, age in [(0, 50), (1, 40), (2, 30), (3, 5), (4, 1)]]
    files += [_log(_v(2, "checkpoint.parquet"), 30), _log(_v(4, "checkpoint.parquet"), 0)]

    # Version 3 is 5 h old: the cut is the newest checkpoint not after it (2), so 2..4 stay readable.
    assert log_boundary(files, 4, cutoff) == 2
    assert log_boundary(files, 4, None) == 4  # 0 h: cut at the latest checkpoint
    assert log_boundary(files, 4, now - 100 * HOUR_MS) == 0  # everything young: nothing goes
    kept = [f for f in files if f.version >= 2]
    assert oldest_readable_version(kept, 4) == 2
    assert oldest_readable_version(files, 4) == 0
    assert oldest_readable_version([f for f in files if f.version >= 3], 4) == 4  # no checkpoint at 3


def test_log_file_names() -> None:
    assert list_log_name(_v(7, "json")) == (7, False)
    assert list_log_name(_v(7, "crc")) == (7, False)
    assert list_log_name(_v(7, "checkpoint.parquet")) == (7, True)
    assert list_log_name(_v(7, "checkpoint.0000000001.0000000002.parquet")) == (7, True)
    assert list_log_name(_v(7, "checkpoint.3a0d65cd-4056-49b8-937b-95f9e3ee90e5.json")) == (7, True)
    assert list_log_name(f"{3:020d}.{9:020d}.compacted.json") == (9, False)
    assert list_log_name("_last_checkpoint") is None
    assert list_log_name(".00000000000000000007.json.crc") is None  # Hadoop's checksum goes with its file
