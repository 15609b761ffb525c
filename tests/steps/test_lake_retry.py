"""The concurrent-writer guards of ``dmp.spark.lake``: bounded retries on Delta's conflicts, race-safe
table creation, and the one-time migration of a table to the partitioning the code writes.

The retry helper is tested with Delta's own Python exception classes (``delta.exceptions``, the
ones py4j errors are converted to) and a fake clock; the migration and the partition-confined
writes with real Spark + Delta. Real conflicts between separate drivers are in
``tests/integration/test_concurrent_writers.py``.
"""

from __future__ import annotations

from datetime import date

import pytest
from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    MetadataChangedException,
    ProtocolChangedException,
)

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark import schemas

D = date(2026, 3, 20)


class Flaky:
    """A write that raises the given exceptions on its first calls, then returns ``"done"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_conflicts_are_retried_with_bounded_growing_waits() -> None:
    waits: list[float] = []
    write = Flaky(
        ProtocolChangedException("[DELTA_PROTOCOL_CHANGED] The protocol version ... concurrent update"),
        ConcurrentAppendException("[DELTA_CONCURRENT_APPEND] Files were added to partition ..."),
        MetadataChangedException("[DELTA_METADATA_CHANGED] The metadata of the Delta table has been changed"),
        ConcurrentDeleteReadException(
            "[DELTA_CONCURRENT_DELETE_READ] This transaction attempted to read ..."
        ),
    )
    assert lk.retry_conflicts(write, "ops/x: replace", sleep=waits.append) == "done"
    assert write.calls == 5
    assert len(waits) == 4
    # Full jitter: each wait is random in [0, min(8, 0.5 * 2**n)].
    for n, wait in enumerate(waits, start=1):
        assert 0 <= wait <= min(lk.CONFLICT_WAIT_MAX_S, lk.CONFLICT_WAIT_FIRST_S * 2**n)


def test_other_errors_are_not_retried() -> None:
    waits: list[float] = []
    write = Flaky(ValueError("[DELTA_REPLACE_WHERE_MISMATCH] Written data does not conform"))
    with pytest.raises(ValueError, match="DELTA_REPLACE_WHERE_MISMATCH"):
        lk.retry_conflicts(write, "ops/x: replace", sleep=waits.append)
    assert write.calls == 1 and waits == []


def test_exhausted_retries_name_the_write_and_the_last_conflict() -> None:
    waits: list[float] = []
    errors = [ConcurrentAppendException(f"[DELTA_CONCURRENT_APPEND] try {i}\ndetails") for i in range(3)]
    write = Flaky(*errors)
    with pytest.raises(lk.ConcurrentWriteConflict) as caught:
        lk.retry_conflicts(
            write, "/lake/ops/deliveries: replace `segment` = 'a'", attempts=3, sleep=waits.append
        )
    assert str(caught.value) == (
        "/lake/ops/deliveries: replace `segment` = 'a': still conflicting with concurrent writers after "
        "3 attempts (ConcurrentAppendException: [DELTA_CONCURRENT_APPEND] try 2)"
    )
    assert write.calls == 3 and len(waits) == 2
    assert isinstance(caught.value.__cause__, ConcurrentAppendException)


def _run_row(segment: str, run_date: date, size: int) -> tuple:
    from datetime import datetime

    row = (segment, run_date, "rule", size, 0, size, True, None, "h", "{}", datetime(2026, 3, 20, 8))
    return row + (None,) * (len(schemas.PACK_RUNS.fields) - len(row))  # the newer, nullable columns


def test_unpartitioned_ops_table_of_an_old_lake_is_migrated_by_the_first_write(spark, lake: str) -> None:
    path = tables.table_path(lake, tables.PACK_RUNS)
    # An ops/pack_runs as the code before partitioning wrote it: unpartitioned, two packs.
    old = [_run_row("a", D, 10), _run_row("b", D, 20)]
    spark.createDataFrame(old, schemas.PACK_RUNS).write.format("delta").save(path)
    assert lk.partition_columns(spark, lake, tables.PACK_RUNS) == []

    new_b = spark.createDataFrame([_run_row("b", D, 21)], schemas.PACK_RUNS)
    condition = "`segment` = 'b' AND `run_date` = DATE'2026-03-20'"
    lk.overwrite_partitions(new_b, lake, tables.PACK_RUNS, ["segment", "run_date"], condition)

    assert lk.partition_columns(spark, lake, tables.PACK_RUNS) == ["segment", "run_date"]
    rows = lk.read_table(spark, lake, tables.PACK_RUNS).select("segment", "size").orderBy("segment").collect()
    assert [tuple(r) for r in rows] == [("a", 10), ("b", 21)]
    # Version 0 (old layout), 1 (the migration, same rows), 2 (the write): history stays readable.
    assert lk.table_version(spark, lake, tables.PACK_RUNS) == 2
    assert sorted(r["size"] for r in lk.read_pinned(spark, lake, tables.PACK_RUNS, 1).collect()) == [10, 20]
    # Already in the new layout: nothing to migrate, no new version.
    assert lk.migrate_partitioning(spark, lake, tables.PACK_RUNS, ["segment", "run_date"]) is False
    assert lk.table_version(spark, lake, tables.PACK_RUNS) == 2


def test_missing_table_is_not_migrated(spark, lake: str) -> None:
    assert lk.partition_columns(spark, lake, tables.PACK_RUNS) is None
    assert lk.migrate_partitioning(spark, lake, tables.PACK_RUNS, ["segment"]) is False


def test_ensure_table_twice_keeps_version_zero(spark, lake: str) -> None:
    lk.ensure_table(spark, lake, tables.PACK_RUNS, schemas.PACK_RUNS, ["segment", "run_date"])
    lk.ensure_table(spark, lake, tables.PACK_RUNS, schemas.PACK_RUNS, ["segment", "run_date"])
    assert lk.table_version(spark, lake, tables.PACK_RUNS) == 0
    assert lk.partition_columns(spark, lake, tables.PACK_RUNS) == ["segment", "run_date"]
