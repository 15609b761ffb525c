"""Raw behaviour logs -> ``bronze/events`` + ``bronze/events_quarantine``, reconciled and idempotent.

The step reads the input as text (``plan_input`` / ``read_input``), runs the pure transforms of
``dmp.transforms.ingest`` (parse, type, validate, bucket), writes, and gates. Every row read ends in
exactly one bucket, so ``rows_read = accepted + quarantined + duplicates``: accepted rows are MERGEd
into ``bronze/events`` (insert when the id is not there yet), quarantined rows into
``bronze/events_quarantine``, duplicates are only counted.

Parquet is checked file by file before the batch read (``classify_parquet_files``): a file whose
footer cannot be read (``unreadable_file``) or whose schema cannot hold events (``bad_schema:...``)
becomes one quarantine row naming the file, and the readable files are still ingested; so
``files = files_ingested + files_quarantined`` too. The footers are read on the driver through
Hadoop's file system (``s3a://`` as well), a few in parallel: no Spark job per file. A file whose
footer is fine but whose data is not (a corrupt page) only fails when its records are read: Spark's
``FAILED_READ_FILE`` names it, so it is quarantined as ``unreadable_file`` and the batch is read
again without it, before anything is written (one more pass per such file, none when all are good).

Idempotency: quarantine rows carry a deterministic ``quarantine_id`` (source file, reason, raw line,
occurrence number) and are MERGEd insert-only, like events; a table is only written when there is
something new, so re-running the same input leaves both tables at the same version. The lake is
read at the version current when the run starts, so a recomputed partition classifies rows the same
way after the write as before it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import reduce
from typing import TYPE_CHECKING

from py4j.protocol import Py4JJavaError
from pyspark.errors import PySparkException
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import INGEST_FORMATS
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.spark.progress import phase
from dmp.steps.ingest_runs import (
    IngestResult,
    apply_tombstones,
    bucket_counts,
    finish_run,
    line_counts,
    read_tombstones,
    require_source,
    write_quarantine,
)
from dmp.transforms.columns import is_blank
from dmp.transforms.ingest import (
    DEFAULT_FUTURE_TOLERANCE,
    SCHEMA_UNSUPPORTED,
    TimeBounds,
    event_hashes,
    filter_to_dates,
    parquet_as_lines,
    parquet_schema_problem,
    parse_jsonl,
    parse_taobao,
    to_event_rows,
    with_event_status,
    with_reason,
    with_typed_columns,
)
from dmp.transforms.quarantine import QUARANTINED, UNREADABLE_FILE

if TYPE_CHECKING:
    from py4j.java_gateway import JavaObject

FORMAT_GLOBS: dict[str, str] = {
    "jsonl": "*.{jsonl,json,ndjson,jsonl.gz,json.gz,ndjson.gz}",
    "parquet": "*.parquet",
    "taobao": "*.{csv,csv.gz,txt}",
}
assert tuple(FORMAT_GLOBS) == INGEST_FORMATS


@dataclass(frozen=True)
class InputPlan:
    """Which paths to read and whether ``--date`` selects folders (partitioned) or rows."""

    paths: list[str]
    is_dir: bool
    partitioned: bool
    missing_dates: list[date] = field(default_factory=list)


def plan_input(spark: SparkSession, source: str, days: Sequence[date] | None) -> InputPlan:
    """Resolve ``--source``: a file, a plain folder of files, ``DIR/events`` or the generator's DIR.

    Partitioned input (``event_date=YYYY-MM-DD`` folders): ``--date`` reads only those folders.
    """
    source = require_source(spark, source)
    if not lk.is_dir(spark, source):
        return InputPlan([source], is_dir=False, partitioned=False)
    root = source
    if "events" in lk.child_dirs(spark, root):
        root = f"{root}/events"
    partitions = sorted(d for d in lk.child_dirs(spark, root) if d.startswith("event_date="))
    if not partitions:
        return InputPlan([root], is_dir=True, partitioned=False)
    if not days:
        return InputPlan([root], is_dir=True, partitioned=True)
    wanted = {f"event_date={d.isoformat()}": d for d in days}
    found = [f"{root}/{name}" for name in sorted(wanted) if name in partitions]
    missing = [d for name, d in sorted(wanted.items()) if name not in partitions]
    if not found:
        raise DmpError(
            f"--source {source}: no input for {', '.join(str(d) for d in days)} "
            f"(expected folders like {root}/event_date={days[0].isoformat()}/)"
        )
    return InputPlan(found, is_dir=True, partitioned=True, missing_dates=missing)


# Footers read at once on the driver (each is one or two small reads; on S3 mostly waiting).
FOOTER_READ_THREADS = 8
# Java errors that say the landing folder is not reachable, not that the file is bad: the run fails.
_ACCESS_ERRORS = (
    "java.io.FileNotFoundException",
    "java.nio.file.AccessDeniedException",
    "org.apache.hadoop.security.AccessControlException",
)
# A file's error as kept in ``raw``: its first line, this long at most.
FILE_ERROR_MAX_CHARS = 500
_GLOB_CHARACTERS = re.compile(r"([\\{}\[\]*?])")
LINES_DDL = "value string, source_file string"


@dataclass(frozen=True)
class FileProblem:
    """A whole input file quarantined: its ``source_file`` (as ``_metadata.file_path`` names it)."""

    source_file: str
    reason: str
    raw: str


@dataclass
class InputLines:
    """The records of the readable files as text, and what was found: files listed, files refused."""

    lines: DataFrame
    files: int
    problems: list[FileProblem] = field(default_factory=list)


def _reader(spark: SparkSession, plan: InputPlan, fmt: str):  # noqa: ANN202 - a DataFrameReader
    reader = spark.read
    if plan.is_dir:
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", FORMAT_GLOBS[fmt])
    return reader


def _listed_files(spark: SparkSession, plan: InputPlan, fmt: str) -> list[JavaObject]:
    """Hadoop Paths of the files the format's reader would read (same listing: glob, hidden files).

    ``inputFiles`` gives URIs (``file:///a%20b``); a Path parsed from its decoded text
    (``file:/a b``) names the file as ``_metadata.file_path`` does (``file:/a%20b``) in ``toUri``.
    """
    listing = _reader(spark, plan, fmt).format("binaryFile").load(list(plan.paths))  # lists, reads nothing
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    return [
        hadoop_path(hadoop_path(jvm.java.net.URI(uri)).toString()) for uri in sorted(listing.inputFiles())
    ]


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def _short_error(exc: Py4JJavaError | PySparkException) -> str:
    """``<Java class>: <first line>`` of a reader error, or Spark's ``[CONDITION] message`` line."""
    if isinstance(exc, PySparkException):
        return _first_line(str(exc))[:FILE_ERROR_MAX_CHARS]
    java = exc.java_exception
    return f"{java.getClass().getName()}: {_first_line(str(java.getMessage() or ''))}"[:FILE_ERROR_MAX_CHARS]


def _read_failure(spark: SparkSession, exc: Exception) -> tuple[str, str] | None:
    """(the file as its listed Hadoop Path names it, ``<root cause class>: <first line>``) when
    ``exc`` is Spark's ``FAILED_READ_FILE`` (a file whose footer was readable but whose data is not,
    e.g. a corrupt Parquet page); None for any other error."""
    if not isinstance(exc, Py4JJavaError):
        return None
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    failed, cause = None, exc.java_exception
    while cause is not None:
        if failed is None and cause.getClass().getName() == "org.apache.spark.SparkException":
            condition = cause.getCondition()
            if condition is not None and str(condition).startswith("FAILED_READ_FILE"):
                failed = cause
        root, cause = cause, cause.getCause()
    if failed is None or (path := failed.getMessageParameters().get("path")) is None:
        return None
    if root.getClass().getName() in _ACCESS_ERRORS:  # gone or not allowed: not the file's fault
        raise DmpError(f"--source: cannot read {path}: {_short_error(exc)}") from exc
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    name = str(hadoop_path(hadoop_path(jvm.java.net.URI(path)).toString()).toString())
    error = f"{root.getClass().getName()}: {_first_line(str(root.getMessage() or ''))}"
    return name, error[:FILE_ERROR_MAX_CHARS]


def _footer_reader(spark: SparkSession) -> Callable[[JavaObject], tuple[str | None, str | None]]:
    """A function: Hadoop Path -> (the file's Parquet schema as text, None), or (None, the reader's
    error) when the footer cannot be read. The Java classes are looked up once (each lookup is a
    round trip to the JVM)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    input_file = jvm.org.apache.parquet.hadoop.util.HadoopInputFile
    parquet_reader = jvm.org.apache.parquet.hadoop.ParquetFileReader

    def read(path: JavaObject) -> tuple[str | None, str | None]:
        try:
            reader = parquet_reader.open(input_file.fromPath(path, conf))
            try:
                return str(reader.getFooter().getFileMetaData().getSchema().toString()), None
            finally:
                reader.close()
        except Py4JJavaError as exc:
            if exc.java_exception.getClass().getName() in _ACCESS_ERRORS:
                raise DmpError(f"--source: cannot read {path.toString()}: {_short_error(exc)}") from exc
            return None, _short_error(exc)

    return read


def _spark_path(path: JavaObject) -> str:
    """A path Spark reads as exactly this file (its reader expands glob characters: escaped here)."""
    return _GLOB_CHARACTERS.sub(r"\\\1", str(path.toString()))


def classify_parquet_files(
    spark: SparkSession, plan: InputPlan, failed: dict[str, str] | None = None
) -> InputLines:
    """Read every Parquet footer; quarantine the files that cannot hold events, read the others.

    Files of one Parquet schema are read together (one schema inference each, no mergeSchema: two
    files whose types differ are two reads whose rows are unioned as JSON text), so a type conflict
    between files can no longer fail the batch. Unreadable footer -> ``unreadable_file`` (``raw`` =
    the reader's error); a schema Spark cannot map -> ``bad_schema:unsupported`` (``raw`` = Spark's
    error); one without a required column or with a nested field -> ``parquet_schema_problem``
    (``raw`` = the file's schema). ``failed``: files (Hadoop Path text -> error) whose data could not
    be read by an earlier attempt (``unreadable_file``, not read again).
    """
    listed = _listed_files(spark, plan, "parquet")
    failed = failed or {}
    problems = [
        FileProblem(str(p.toUri().toString()), UNREADABLE_FILE, failed[str(p.toString())])
        for p in listed
        if str(p.toString()) in failed
    ]
    paths = [p for p in listed if str(p.toString()) not in failed]
    with ThreadPoolExecutor(max_workers=FOOTER_READ_THREADS) as pool:
        footers = list(pool.map(_footer_reader(spark), paths))
    groups: dict[str, list[JavaObject]] = {}
    for path, (parquet_schema, error) in zip(paths, footers, strict=True):
        if parquet_schema is None:
            problems.append(FileProblem(str(path.toUri().toString()), UNREADABLE_FILE, error or ""))
        else:
            groups.setdefault(parquet_schema, []).append(path)
    parts: list[DataFrame] = []
    for group in groups.values():
        refused: tuple[str, str] | None = None
        try:
            df = _reader(spark, plan, "parquet").parquet(*[_spark_path(p) for p in group])
            problem = parquet_schema_problem(df.schema)
            if problem is not None:
                refused = (problem, df.schema.simpleString()[:FILE_ERROR_MAX_CHARS])
        except (PySparkException, Py4JJavaError) as exc:  # [PARQUET_TYPE_ILLEGAL], [COLUMN_ALREADY_EXISTS]
            refused = (SCHEMA_UNSUPPORTED, _short_error(exc))
        if refused is not None:
            problems.extend(FileProblem(str(p.toUri().toString()), *refused) for p in group)
        else:
            parts.append(parquet_as_lines(df.withColumn("source_file", F.col("_metadata.file_path"))))
    lines = reduce(DataFrame.unionByName, parts) if parts else spark.createDataFrame([], LINES_DDL)
    return InputLines(lines, len(listed), sorted(problems, key=lambda p: p.source_file))


def _gzip_checker(spark: SparkSession) -> Callable[[JavaObject], str | None]:
    """A function: Hadoop Path of a ``.gz`` file -> None when it decompresses to its end, else the
    reader's error (``java.io.EOFException: Unexpected end of ZLIB input stream`` for a truncated
    file, ``java.util.zip.ZipException`` for a corrupt one). Streams through the JVM on the driver
    (commons-io ``skip``: one call per file, no bytes cross to Python)."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    gzip_stream, io_utils = jvm.java.util.zip.GZIPInputStream, jvm.org.apache.commons.io.IOUtils

    def check(path: JavaObject) -> str | None:
        try:
            raw = path.getFileSystem(conf).open(path)
            try:
                io_utils.skip(gzip_stream(raw, 1 << 16), jvm.java.lang.Long.MAX_VALUE)
                return None
            finally:
                raw.close()
        except Py4JJavaError as exc:
            if exc.java_exception.getClass().getName() in _ACCESS_ERRORS:
                raise DmpError(f"--source: cannot read {path.toString()}: {_short_error(exc)}") from exc
            return _short_error(exc)

    return check


def read_input(
    spark: SparkSession, plan: InputPlan, fmt: str, failed: dict[str, str] | None = None
) -> InputLines:
    """``value`` (one record as text) + ``source_file`` for every record of every readable file.

    Gzipped text files are decompressed once on the driver first: one that is truncated or corrupt
    would fail the whole batch when Spark reads it, so it is quarantined as a file
    (``unreadable_file``, ``raw`` = the error) and the others are read. The cost is a second
    decompression of the ``.gz`` inputs (plain text files are not checked). ``failed``: files
    (Hadoop Path text -> error) an earlier attempt could not read, quarantined the same way.
    """
    if fmt == "parquet":
        return classify_parquet_files(spark, plan, failed)
    listed = _listed_files(spark, plan, fmt)
    bad = dict(failed or {})
    gz = [p for p in listed if str(p.getName()).endswith(".gz") and str(p.toString()) not in bad]
    if gz:
        with ThreadPoolExecutor(max_workers=FOOTER_READ_THREADS) as pool:
            errors = list(pool.map(_gzip_checker(spark), gz))
        bad.update((str(p.toString()), e) for p, e in zip(gz, errors, strict=True) if e is not None)
    problems = [
        FileProblem(str(p.toUri().toString()), UNREADABLE_FILE, bad[str(p.toString())])
        for p in listed
        if str(p.toString()) in bad
    ]
    paths = [_spark_path(p) for p in listed if str(p.toString()) not in bad] if bad else list(plan.paths)
    if not paths:
        return InputLines(spark.createDataFrame([], LINES_DDL), len(listed), problems)
    df = _reader(spark, plan, fmt).text(paths)  # text(list): text(*paths)'s 2nd path is `wholetext`
    lines = df.select("value", F.col("_metadata.file_path").alias("source_file"))
    return InputLines(lines, len(listed), sorted(problems, key=lambda p: p.source_file))


def file_quarantine_df(spark: SparkSession, problems: Sequence[FileProblem]) -> DataFrame:
    """The quarantined files as classified rows (``status`` quarantined, no event id)."""
    rows = [(p.raw, p.reason, p.source_file, QUARANTINED, None) for p in problems]
    ddl = "raw string, reason string, source_file string, status string, event_id string"
    return spark.createDataFrame(rows, ddl)


def _parse_time_option(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise DmpError(f"{name}: expected an ISO date or timestamp (e.g. 2000-01-01), got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _date_filter_sql(days: Iterable[date]) -> str:
    return lk.replace_where_condition("event_date", list(days))


def _checked_batch(
    lines_df: DataFrame, fmt: str, bounds: TimeBounds, row_days: list[date] | None
) -> DataFrame:
    """Non-blank lines parsed, typed and checked; ``row_days``: keep only those dates' rows (and undatable ones)."""
    parse = parse_taobao if fmt == "taobao" else parse_jsonl
    typed_df = (
        lines_df.filter(~is_blank("value"))
        .transform(parse)
        .transform(with_typed_columns)
        .transform(with_reason, bounds)
    )
    return typed_df.transform(filter_to_dates, row_days) if row_days else typed_df


def _count_lines(result: IngestResult, lines_df: DataFrame, batch_df: DataFrame) -> None:
    result.rows_read = batch_df.count()
    total_lines, result.blank_lines = line_counts(lines_df, is_blank("value"))
    result.out_of_scope = total_lines - result.blank_lines - result.rows_read
    valid_dates = batch_df.filter(F.col("reason").isNull()).select("event_date").distinct().collect()
    result.event_dates = sorted(r.event_date for r in valid_dates)


class _UnreadableData(Exception):
    """A file failed while its records were read (after its footer or gzip check passed)."""

    def __init__(self, path: str, error: str) -> None:
        super().__init__(path)
        self.path, self.error = path, error


def _lake_hashes(spark: SparkSession, lake: str, version: int, event_dates: list[date]) -> DataFrame:
    """``event_id, content_hash`` of the events already stored for the batch's dates (at ``version``)."""
    pinned = lk.read_pinned(spark, lake, tables.EVENTS, version)
    return event_hashes(pinned.filter(_date_filter_sql(event_dates)) if event_dates else pinned.limit(0))


def _write_batch(
    spark: SparkSession, lake: str, result: IngestResult, classified_df: DataFrame, files_df: DataFrame
) -> None:
    """Insert the new quarantine rows (records and whole files) and the accepted events; a table
    without news is not written."""
    write_quarantine(
        spark,
        lake,
        result,
        tables.EVENTS_QUARANTINE,
        schemas.EVENTS_QUARANTINE_SCHEMA,
        classified_df.unionByName(files_df, allowMissingColumns=True),
        ["event_id"],
    )
    if result.accepted:
        lk.merge_insert_new(
            spark,
            lake,
            tables.EVENTS,
            to_event_rows(classified_df, result.started_at),
            "event_id",
            target_filter=_date_filter_sql(result.event_dates).replace("`event_date`", "t.`event_date`"),
        )
    result.table_version = lk.table_version(spark, lake, tables.EVENTS)


def _classify_and_write(
    spark: SparkSession,
    lake: str,
    result: IngestResult,
    lines_df: DataFrame,
    typed_df: DataFrame,
    files_df: DataFrame,
) -> None:
    """Count, bucket and write the batch; an unreconciled batch is recorded and raised, not written."""
    lk.ensure_table(spark, lake, tables.EVENTS, schemas.EVENTS, ["event_date"])
    events_version = lk.table_version(spark, lake, tables.EVENTS)
    assert events_version is not None
    batch_df = typed_df.persist()
    classified_df = None
    try:
        try:
            with phase("ingest", f"read, parse and check {result.files_ingested} file(s)"):
                _count_lines(result, lines_df, batch_df)  # the first full read of every input record
        except Py4JJavaError as exc:
            if (failure := _read_failure(spark, exc)) is None:
                raise
            raise _UnreadableData(*failure) from exc
        lake_ids = _lake_hashes(spark, lake, events_version, result.event_dates)
        tombstones = read_tombstones(spark, lake)
        classified_df = apply_tombstones(with_event_status(batch_df, lake_ids), tombstones).persist()
        with phase("ingest", f"dedupe {result.rows_read} rows against the batch and the lake"):
            result.add_bucket_counts(bucket_counts(classified_df))
        if not result.reconciled:
            result.status, result.message = "unreconciled", _reconcile_message(result)
            finish_run(spark, lake, result)
            raise DmpError(result.message)
        with phase("ingest", f"write {result.accepted} events, {result.quarantined} quarantined rows"):
            _write_batch(spark, lake, result, classified_df, files_df)
    finally:
        batch_df.unpersist()
        if classified_df is not None:
            classified_df.unpersist()


def _gate(spark: SparkSession, lake: str, result: IngestResult, skip_checks: bool) -> DmpError | None:
    """Run the bronze gate on the dates written; the failure is returned so the run is recorded first."""
    if skip_checks:
        result.checks = "skipped"
        return None
    if not result.event_dates:
        result.checks = "no_rows"
        return None
    from dmp.steps.quality import run_gate

    try:
        run_gate(
            lk.read_table(spark, lake, tables.EVENTS).filter(_date_filter_sql(result.event_dates)),
            "bronze_events",
        )
    except DmpError as exc:
        result.checks, result.status, result.message = "failed", "gate_failed", str(exc)
        return exc
    result.checks = "passed"
    return None


def run_ingest(
    spark: SparkSession,
    lake: str,
    source: str,
    fmt: str,
    days: Sequence[date] | None = None,
    *,
    skip_checks: bool = False,
    min_event_time: str | None = None,
    max_event_time: str | None = None,
    future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    now: datetime | None = None,
) -> IngestResult:
    """Ingest ``source`` into the lake and return the reconciliation (also stored in ops/ingest_runs).

    ``days``: partitioned input reads only those ``event_date=`` folders; a single file or a plain
    folder is read whole and only rows whose event date (UTC) is one of ``days`` are processed (plus
    rows that cannot be dated in range, so bad rows are never skipped). Raises DmpError when the
    numbers do not reconcile or the quality gate fails (after recording the run).
    """
    if fmt not in INGEST_FORMATS:
        raise DmpError(f"--format: expected one of {', '.join(INGEST_FORMATS)}, got {fmt!r}")
    started = (now or datetime.now(UTC)).astimezone(UTC)
    bounds = TimeBounds.for_format(
        fmt,
        started,
        _parse_time_option(min_event_time, "--min-event-time"),
        _parse_time_option(max_event_time, "--max-event-time"),
        future_tolerance,
    )
    days = sorted(set(days)) if days else None
    run_id = str(uuid.uuid4())
    plan = plan_input(spark, source, days)
    failed: dict[str, str] = {}  # files whose data could not be read: quarantined, the rest re-read
    while True:
        result = IngestResult(run_id, source, fmt, list(days) if days else None, started)
        try:
            _read_and_write(spark, lake, result, read_input(spark, plan, fmt, failed), plan, bounds)
            break
        except _UnreadableData as bad:
            if bad.path in failed:  # cannot happen: a quarantined file is not read again
                raise
            failed[bad.path] = bad.error
    gate_error = _gate(spark, lake, result, skip_checks)
    finish_run(spark, lake, result)
    if gate_error is not None:
        raise gate_error
    return result


def _read_and_write(
    spark: SparkSession,
    lake: str,
    result: IngestResult,
    found: InputLines,
    plan: InputPlan,
    bounds: TimeBounds,
) -> None:
    """Record what was found, then parse, classify and write the readable files' records."""
    if found.files == 0:
        raise DmpError(f"--source {result.source}: no {FORMAT_GLOBS[result.format]} files found")
    lines_df = found.lines
    result.files = found.files
    result.files_ingested = len(lines_df.inputFiles())
    result.add_file_reasons(p.reason for p in found.problems)
    if found.problems:
        result.message = (
            f"{result.files_quarantined} of {result.files} files quarantined "
            f"({', '.join(sorted(result.file_reasons))}): see {tables.EVENTS_QUARANTINE}"
        )
    days = result.dates
    row_days = days if days and not plan.partitioned else None
    _classify_and_write(
        spark,
        lake,
        result,
        lines_df,
        _checked_batch(lines_df, result.format, bounds, row_days),
        file_quarantine_df(spark, found.problems),
    )


def _reconcile_message(result: IngestResult) -> str:
    return (
        f"ingest of {result.source} does not reconcile: rows read {result.rows_read} != accepted "
        f"{result.accepted} + quarantined {result.quarantined} + duplicates {result.duplicates} "
        f"+ erased {result.erased} (reasons sum to {sum(result.reasons.values())}), or files {result.files} != ingested "
        f"{result.files_ingested} + quarantined {result.files_quarantined}"
    )
