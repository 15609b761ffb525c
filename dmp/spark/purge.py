"""Purge a Delta table's history so rows removed by ``DELETE`` cannot be read back (erasure, issue #18).

A ``DELETE`` leaves the deleted rows in four places; each step below removes one of them
(docs/erasure-purge.md says why each is needed and what the CLI default retention is):

1. rows only *marked* deleted by a deletion vector, in the current data files: ``REORG TABLE ...
   APPLY (PURGE)`` rewrites those files without the rows (only on tables with deletion vectors);
2. the old data files (and deletion-vector files) that earlier versions still point to:
   ``VACUUM ... RETAIN H HOURS``;
3. the old log: every commit ``NNN.json`` before the delete holds ``add`` actions whose min/max
   statistics name the deleted rows, every older ``NNN.crc`` lists all files *with* their
   statistics (``allFiles``), and the ``DELETE`` commit itself names the ids in its predicate. So
   the latest commit is first made an empty, marked one (:func:`seal`), a fresh checkpoint at it
   makes the older log unnecessary, and the log files of versions before it are deleted (what
   Delta's metadata cleanup does, but without its cut-off rounded down to midnight: ``H = 0``
   means now);
4. re-check: the checkpoint holds ``add`` actions of the current files only, and ``remove``
   tombstones carry no statistics (path, size, deletion time, partition values).

With ``retention_hours = H > 0`` nothing younger than ``H`` hours is deleted: VACUUM keeps files
removed less than ``H`` hours ago, and the log is cut only at a checkpoint before which every log
file is older than ``H`` hours, so every version still on disk stays readable.

Everything goes through the Hadoop file system of the table path, so a local folder and an
``s3a://`` lake behave the same.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql import SparkSession

from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import ERASURE_RETENTION_HOURS

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject

log = logging.getLogger(__name__)

# What `dmp forget --vacuum` should use when no --retention-hours is given: Delta's own VACUUM
# default (7 days), so a purge never races a reader or a writer that is still on an old version.
DEFAULT_RETENTION_HOURS = ERASURE_RETENTION_HOURS
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
VACUUM_LOGGING = "spark.databricks.delta.vacuum.logging.enabled"
SKIP_EMPTY_COMMITS = "spark.databricks.delta.skipRecordingEmptyCommits"
LOG_FOLDER = "_delta_log"
PURGE_MARKER = "dmp: purge_history"  # commitInfo.userMetadata of the empty commit that seals a purge

# Log file names (PROTOCOL.md "Delta Log Entries", "Checkpoints", "Log Compaction Files"):
# NNN.json, NNN.crc, NNN.checkpoint.parquet, NNN.checkpoint.K.N.parquet, NNN.checkpoint.UUID.json|parquet,
# and FROM.TO.compacted.json; a version prefix is 20 digits. Staged commits (_staged_commits/NNN.UUID.json)
# follow the same rule. Hadoop's local checksum files (.NNN.json.crc) go with their file.
_LOG_FILE = re.compile(
    r"^(\d{20})\.(?:(\d{20})\.compacted\.json|json|crc|checkpoint(?:\.[^/]+)?\.(?:parquet|json)|[0-9a-f-]{36}\.json)$"
)
_COMMIT = re.compile(r"^\d{20}\.json$")
_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint(?:\.[^/]+)?\.(?:parquet|json)$")


@dataclass(frozen=True)
class PurgeReport:
    table: str  # the table path
    files_removed: int  # data files (and deletion-vector files) deleted by VACUUM
    log_files_removed: int  # _delta_log commits/checkpoints/crc/compacted files deleted
    version: int  # the latest version after the purge
    oldest_version: int  # the oldest version still readable (time travel cannot go further back)


@dataclass(frozen=True)
class LogFile:
    path: str  # full path, as the file system names it
    name: str
    version: int  # the last version the file describes (TO of a compacted file)
    mtime_ms: int
    checkpoint: bool
    staged: bool  # under _delta_log/_staged_commits: not (yet) a commit
    jpath: object = field(default=None, compare=False, repr=False)  # the Hadoop Path, to delete it


def purge_history(spark: SparkSession, table_path: str, retention_hours: float) -> PurgeReport:
    """Remove every trace of deleted rows older than ``retention_hours`` from the table's folder.

    ``0`` is the confirmed immediate purge: afterwards only the latest version is readable.
    """
    if retention_hours < 0:
        raise DmpError(f"retention_hours must be >= 0, got {retention_hours}")
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, table_path):
        raise DmpError(f"{table_path} is not a Delta table")
    fs, root = _file_system(spark, table_path)
    if uses_deletion_vectors(spark, table_path):
        spark.sql(f"REORG TABLE {_ident(table_path)} APPLY (PURGE)").collect()
    seal(spark, table_path)
    before = _data_files(fs, root)
    vacuum(spark, table_path, retention_hours)
    files_removed = len(before - _data_files(fs, root))
    version = checkpoint(spark, table_path)
    cutoff_ms = None if retention_hours == 0 else int(time.time() * 1000 - retention_hours * 3_600_000)
    log_removed = clean_log(fs, root, version, cutoff_ms)
    report = PurgeReport(
        table=table_path,
        files_removed=files_removed,
        log_files_removed=log_removed,
        version=version,
        oldest_version=oldest_readable_version(list_log(fs, root), version),
    )
    log.info("purged %s: %s", table_path, report)
    return report


# ------------------------------------------------------------------------------------ the steps


def uses_deletion_vectors(spark: SparkSession, table_path: str) -> bool:
    """The table writes deletion vectors now, or did once (the feature stays after the property is off)."""
    detail = spark.sql(f"DESCRIBE DETAIL {_ident(table_path)}").select("properties", "tableFeatures").first()
    if detail is None:
        return False
    enabled = (detail["properties"] or {}).get("delta.enableDeletionVectors", "false").lower() == "true"
    return enabled or "deletionVectors" in (detail["tableFeatures"] or [])


def seal(spark: SparkSession, table_path: str) -> None:
    """Make the latest commit one that names no row: an empty append marked ``PURGE_MARKER``.

    The log is cut before the latest version, whose commit stays. When that is the ``DELETE``
    itself, its ``commitInfo`` keeps the predicate (``user_id IN (u_erase_me_0001, ...)``, also
    shown by DESCRIBE HISTORY); a REORG commit keeps ``remove`` actions of the rewritten files. An
    empty blind append conflicts with no other writer; a table already sealed is left alone, so a
    second purge commits nothing.
    """
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, table_path)
    last = table.history(1).select("userMetadata").first()
    if last is not None and last["userMetadata"] == PURGE_MARKER:
        return
    empty = spark.createDataFrame([], table.toDF().schema)
    with session_conf(spark, {SKIP_EMPTY_COMMITS: "false"}):  # else Delta records no commit at all
        empty.write.format("delta").mode("append").option("userMetadata", PURGE_MARKER).save(table_path)


def vacuum(spark: SparkSession, table_path: str, retention_hours: float) -> None:
    """VACUUM with ``retention_hours``; below Delta's 168 h safety check it is lifted for this call only.

    VACUUM's own START/END commits are switched off for the call: with them every purge adds two
    versions that the next purge deletes again, so a purge would never be a no-op (the erasure's
    audit record is ``ops/erasure_requests``, and a purge at 0 h drops the history anyway).
    """
    settings = {VACUUM_LOGGING: "false"}
    if retention_hours < DEFAULT_RETENTION_HOURS:
        settings[RETENTION_CHECK] = "false"
    with session_conf(spark, settings):
        spark.sql(f"VACUUM {_ident(table_path)} RETAIN {retention_hours:g} HOURS").collect()


@contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session settings for a block; each is restored to its previous value (or unset) after."""
    explicit = spark.conf.getAll
    previous = {key: explicit.get(key) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def checkpoint(spark: SparkSession, table_path: str) -> int:
    """Write a checkpoint at the latest version (read fresh from storage); returns that version.

    There is no SQL or Python API for this in Delta 4.x; ``DeltaLog.checkpoint(snapshot, None)`` is
    what a commit itself calls every ``delta.checkpointInterval`` versions.
    """
    jvm = spark.sparkContext._jvm
    none = getattr(getattr(jvm.scala, "None$"), "MODULE$")
    delta_log = jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, table_path)
    snapshot = delta_log.update(False, none, none)
    delta_log.checkpoint(snapshot, none)
    return int(snapshot.version())


def clean_log(fs: JavaObject, root: JavaObject, version: int, cutoff_ms: int | None) -> int:
    """Delete the log files of versions before a checkpoint; returns how many files were deleted.

    The cut is the newest checkpoint (at most ``version``) before which every log file is older
    than ``cutoff_ms`` (``None``: no age limit, cut at ``version``), so the versions left are
    exactly those that can still be rebuilt from that checkpoint and the commits after it.
    """
    files = list_log(fs, root)
    boundary = log_boundary(files, version, cutoff_ms)
    removed = 0
    for f in files:
        if f.version < boundary:
            if not fs.delete(f.jpath, False):
                raise DmpError(f"could not delete {f.path}")
            removed += 1
    return removed


def log_boundary(files: list[LogFile], version: int, cutoff_ms: int | None) -> int:
    """The oldest version to keep: a checkpoint version; nothing before it is younger than the cut-off."""
    checkpoints = sorted({f.version for f in files if f.checkpoint and f.version <= version})
    if cutoff_ms is None:
        return version if version in checkpoints else (checkpoints[-1] if checkpoints else 0)
    young = [f.version for f in files if f.mtime_ms > cutoff_ms]
    first_young = min(young, default=version)
    usable = [c for c in checkpoints if c <= first_young]
    return usable[-1] if usable else 0


def oldest_readable_version(files: list[LogFile], version: int) -> int:
    """The first version a reader can rebuild: commit 0, or a checkpoint, followed by every commit to ``version``."""
    commits = {f.version for f in files if _COMMIT.match(f.name) and not f.staged}
    starts = sorted({f.version for f in files if f.checkpoint} | ({0} if 0 in commits else set()))
    for start in starts:
        if all(v in commits for v in range(start + 1, version + 1)):
            return start
    return version


# --------------------------------------------------------------------------------- file system


def list_log(fs: JavaObject, root: JavaObject) -> list[LogFile]:
    """Every Delta log file under ``_delta_log`` (staged commits included), with version and age."""
    found: list[LogFile] = []
    log_dir = fs.makeQualified(root.suffix("/" + LOG_FOLDER))
    if not fs.exists(log_dir):
        return found
    listing = fs.listFiles(log_dir, True)
    while listing.hasNext():
        status = listing.next()
        name = status.getPath().getName()
        parsed = list_log_name(name)
        if parsed is None:
            continue
        last, is_checkpoint = parsed
        staged = status.getPath().getParent().getName() == "_staged_commits"
        found.append(
            LogFile(
                path=status.getPath().toString(),
                name=name,
                version=last,
                mtime_ms=int(status.getModificationTime()),
                checkpoint=is_checkpoint and not staged,
                staged=staged,
                jpath=status.getPath(),
            )
        )
    return found


def list_log_name(name: str) -> tuple[int, bool] | None:
    """(the last version the file describes, is it a checkpoint) of a log file name; ``None`` for others."""
    match = _LOG_FILE.match(name)
    if not match:
        return None
    return int(match.group(2) or match.group(1)), bool(_CHECKPOINT.match(name))


def _data_files(fs: JavaObject, root: JavaObject) -> set[str]:
    """Every file of the table outside ``_delta_log`` (data, deletion vectors, ``_change_data``)."""
    files: set[str] = set()
    listing = fs.listFiles(root, True)
    while listing.hasNext():
        path = listing.next().getPath()
        text = path.toString()
        if f"/{LOG_FOLDER}/" in text or path.getName().startswith("."):
            continue
        files.add(text)
    return files


def _file_system(spark: SparkSession, path: str) -> tuple[JavaObject, JavaObject]:
    jvm = spark.sparkContext._jvm
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return fs, fs.makeQualified(hpath)


def _ident(table_path: str) -> str:
    return "delta.`" + table_path.replace("`", "``") + "`"
