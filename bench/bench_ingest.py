"""A DuckDB twin of ``dmp ingest`` (JSON lines -> bronze/events + quarantine) and its equality check.

``duck_ingest`` reads the same raw JSON-lines files (plain or ``.gz``) the product reads and computes,
in DuckDB SQL, what ``dmp.steps.ingest.run_ingest`` computes for them into an empty lake: the same
parse (``parse_jsonl``), typing (``with_typed_columns``), first failing check (``with_reason``, same
precedence), content hash and bucket per row (``with_event_status``: the earliest ``event_time``, then
the smallest content hash, then ``source_file``, then ``raw`` wins an id; a later copy with the
winner's content is ``duplicate_in_batch``, any other content is ``duplicate_event_id_conflict``).
It writes the accepted events (bronze/events columns, Parquet by ``event_date``) and the quarantined
rows (``raw``, ``reason``, ``source_file``, ``event_id``), and returns the reconciliation counts.

The content hash is ``sha256`` of Spark's ``to_json(struct(CONTENT_COLUMNS))`` text, rebuilt by hand
as Spark writes it (checked by trying it): compact, null fields left out, timestamps as
``yyyy-MM-ddTHH:mm:ss.SSSZ`` (always three fraction digits, truncated), doubles as Java's
``Double.toString`` (``129.0``, ``-0.0``, ``1.0E-4`` below 1e-3; accepted prices never reach 1e7),
strings with ``"`` and ``\\`` escaped (accepted values hold no control characters).

Which checks the twin implements (the demo data, ``dmp/demo/bad_records.py``, holds malformed JSON
(cut lines, an HTML page, a single-quoted object), unknown event types, missing user_id, exact and
conflicting duplicates, future timestamps and unparseable prices; nothing else):

- implemented exactly as the product: malformed_json (not JSON, or not an object), duplicate_key,
  bad_type:<field>, field_too_long:<field>, control_characters:<field> (the same RE2 / Java class),
  every value check of ``with_reason`` (missing_field, unknown_event_type, bad_timestamp,
  timestamp_out_of_range, future_timestamp, bad_price, negative_price, price_out_of_range,
  bad_quantity, unknown_channel), duplicate_event_id_conflict, duplicate_in_batch, a leading BOM;
- implemented in part: bad_encoding only for text holding U+FFFD or a lossy ``\\u`` escape (``raw`` =
  ``base64:`` + the UTF-8 bytes); a line that is not UTF-8 makes DuckDB's reader fail (loud, never a
  silent mismatch). Jackson's single-quoted JSON is accepted by re-reading the line with ``'`` -> ``"``
  (exact for the demo's line, not for single-quoted text holding a ``"``);
- not implemented (the data has none): Jackson's other leniencies (NaN / Infinity tokens, text after
  the object) and DuckDB's own (a trailing comma: valid for DuckDB, malformed_json for the product; a
  test shows the comparison catches it), Java-only number texts (``1d``, hex floats), time texts DuckDB reads and Spark does not
  (``epoch``, ``infinity``), duplicate_in_lake and erased users (the bench ingests into an empty lake),
  Parquet / Taobao input, whole-file reasons (unreadable .gz), ``--date`` filters.

``tests/bench/test_bench_ingest.py`` checks these claims: the demo data, and hand-written lines of
each implemented check beyond the demo's (BOM, U+FFFD, lone surrogate, duplicate key, nested values,
long and zero-width fields, NaN / negative / huge prices, fractional quantity, unknown channel, bad,
old, epoch and offset times, escaped quotes, emoji, 1e-4, -0.0).

``compare_ingest`` then checks the twin against what Spark wrote, row for row: the accepted events
(every bronze column but ``ingested_at``) and the quarantine rows (``source_file, reason, raw``) by
``EXCEPT ALL`` both ways in DuckDB over the Delta tables' active Parquet files, the per-status and
per-reason counts (a reason the twin lacks shows up as a count mismatch), and a digest of the content
hashes Spark computes (``event_hashes``) against the twin's.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dmp.contracts import tables
from dmp.contracts.vocab import EVENT_CHANNELS, EVENT_TYPES
from dmp.steps.ingest import FORMAT_GLOBS
from dmp.transforms.columns import (
    _ESCAPED_BACKSLASH_RE,
    _LOSSY_ESCAPE_RE,
    _SURROGATE_PAIR_RE,
    CONTROL_CHARACTERS_RE,
    REASON_VALUE_MAX,
    WHITESPACE,
)
from dmp.transforms.ingest import (
    CONFLICT,
    CONTENT_COLUMNS,
    EPOCH_MS_THRESHOLD,
    EVENT_COLUMNS,
    FIELD_MAX_CHARS,
    MAX_PRICE,
    MAX_QUANTITY,
    RAW_FIELDS,
    REQUIRED_FIELDS,
    TimeBounds,
)
from dmp.transforms.quarantine import ACCEPTED, DUPLICATE_IN_BATCH, QUARANTINED

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from dmp.steps.ingest_runs import IngestResult

# The extensions of the product's ``*.{jsonl,json,...}`` glob; DuckDB decompresses ``.gz`` itself.
JSONL_SUFFIXES: tuple[str, ...] = tuple(
    "." + ext for ext in FORMAT_GLOBS["jsonl"].removeprefix("*.{").removesuffix("}").split(",")
)
# Characters java.net.URI keeps in a path: what Spark's ``_metadata.file_path`` leaves unescaped.
_URI_PATH_SAFE = "/:@&=+$,;!~*'()-_."
# A delimiter no line holds (a line holding it fails the read: strict mode, never a silent split).
_NO_DELIMITER = "\x01"
# The product's Java regexes (dmp/transforms/columns.py) are also valid RE2, DuckDB's dialect.
_CONTROL_RE = CONTROL_CHARACTERS_RE
# parse_event_time's "is a number" regex (inline there), as a full match.
_EPOCH_RE = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _ws() -> str:
    """WHITESPACE as a SQL expression (it holds tabs, CR, LF, VT, FF)."""
    return " || ".join(f"chr({ord(c)})" for c in WHITESPACE)


def _ts(value: datetime) -> str:
    """A TIMESTAMP literal of the UTC wall time (the session's zone, as Spark's is)."""
    return f"TIMESTAMP '{value.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def input_files(data: Path) -> list[str]:
    """The files ``run_ingest(source=data, fmt="jsonl")`` reads: ``data/events`` when the generator's
    folder is given, recursively, by extension, without hidden (``.``/``_``) files or folders."""
    root = data / "events" if (data / "events").is_dir() else data
    if root.is_file():
        return [str(root)]
    return sorted(
        str(p)
        for p in root.rglob("*")
        if p.is_file()
        and p.name.endswith(JSONL_SUFFIXES)
        and not any(part.startswith((".", "_")) for part in p.relative_to(root).parts)
    )


def spark_source_file(path: str) -> str:
    """How Spark's ``_metadata.file_path`` names a local file: ``file:`` + the escaped absolute path."""
    return "file:" + quote(str(Path(path).resolve()), safe=_URI_PATH_SAFE)


# ---------------------------------------------------------------------------------------- SQL


def _lines_sql(files: list[str]) -> str:
    listing = "[" + ", ".join(_lit(f) for f in files) + "]"
    return f"""
CREATE OR REPLACE TABLE lines AS
SELECT l.value, s.source_file, l.value IS NULL OR trim(l.value, {_ws()}) = '' AS blank
FROM read_csv({listing}, columns = {{'value': 'VARCHAR'}}, delim = {_lit(_NO_DELIMITER)}, quote = '',
  escape = '', header = false, auto_detect = false, filename = true, strict_mode = true) l
JOIN src s ON l.filename = s.path
"""


def _parse_sql() -> str:
    """``parse_jsonl``: unreadable text, malformed JSON, the keys and the cleaned text of each field."""
    paths = "[" + ", ".join(f"'$.{name}'" for name in RAW_FIELDS) + "]"
    cleaned = ",\n  ".join(
        f"CASE WHEN NOT _malformed THEN nullif(trim(_v[{i + 1}], {_ws()}), '') END AS {name}"
        for i, name in enumerate(RAW_FIELDS)
    )
    unreadable = (
        f"instr(value, chr(65533)) > 0 OR (instr(value, '\\u') > 0 AND regexp_matches(regexp_replace("
        f"regexp_replace(value, {_lit(_ESCAPED_BACKSLASH_RE)}, '', 'g'), {_lit(_SURROGATE_PAIR_RE)}, '', 'g'), "
        f"{_lit(_LOSSY_ESCAPE_RE)}))"
    )
    return f"""
CREATE OR REPLACE TABLE parsed AS
WITH t AS (
  SELECT value, source_file,
    CASE WHEN starts_with(value, chr(65279)) THEN substr(value, 2) ELSE value END AS _text,
    {unreadable} AS _unreadable
  FROM lines WHERE NOT blank
), j AS (
  SELECT *, CASE WHEN _unreadable THEN NULL WHEN json_valid(_text) THEN _text
    WHEN json_valid(replace(_text, '''', '"')) THEN replace(_text, '''', '"') END AS _json
  FROM t
), o AS (
  SELECT *, _json IS NULL OR json_type(_json) <> 'OBJECT' AS _malformed FROM j
), v AS (
  SELECT *, CASE WHEN NOT _malformed THEN json_extract_string(_json, {paths}) END AS _v,
    CASE WHEN NOT _malformed THEN json_keys(_json) END AS _keys
  FROM o
)
SELECT CASE WHEN _unreadable THEN 'base64:' || to_base64(encode(value)) ELSE value END AS raw,
  source_file, _unreadable, _malformed, len(_keys) <> len(list_distinct(_keys)) AS _dup_key,
  {cleaned}
FROM v
"""


def _parse_error_sql() -> str:
    """The first of bad_encoding, malformed_json, duplicate_key, bad_type, field_too_long,
    control_characters (``parse_jsonl``'s ``parse_error``), fields in RAW_FIELDS order."""
    bad_type = [
        f"CASE WHEN (starts_with({n}, '{{') OR starts_with({n}, '[')) AND json_valid({n}) THEN "
        f"CASE WHEN json_type({n}) IN ('OBJECT', 'ARRAY') THEN 'bad_type:{n}' END END"
        for n in RAW_FIELDS
    ]
    too_long = [
        f"CASE WHEN length({n}) > {FIELD_MAX_CHARS[n]} THEN 'field_too_long:{n}' END" for n in RAW_FIELDS
    ]
    control = [
        f"CASE WHEN regexp_matches({n}, {_lit(_CONTROL_RE)}) THEN 'control_characters:{n}' END"
        for n in RAW_FIELDS
    ]
    any_control = f"regexp_matches(concat_ws(' ', {', '.join(RAW_FIELDS)}), {_lit(_CONTROL_RE)})"
    return (
        "coalesce(CASE WHEN _unreadable THEN 'bad_encoding' END, CASE WHEN _malformed THEN 'malformed_json' END,"
        " CASE WHEN _dup_key THEN 'duplicate_key' END, "
        + ", ".join(bad_type + too_long)
        + f", CASE WHEN {any_control} THEN coalesce({', '.join(control)}) END)"
    )


def _event_time_sql(text: str) -> str:
    """``parse_event_time``: epoch seconds / milliseconds (>= 1e11) or ISO-8601 text (no zone = UTC).

    Spark's ``timestamp_seconds(double)`` keeps ``(long) (seconds * 1e6)`` microseconds: the same
    double arithmetic and truncation here."""
    number = f"TRY_CAST({text} AS DOUBLE)"
    seconds = f"(CASE WHEN abs({number}) >= {EPOCH_MS_THRESHOLD} THEN {number} / 1000 ELSE {number} END)"
    return (
        f"CASE WHEN regexp_full_match({text}, {_lit(_EPOCH_RE)}) THEN "
        f"CASE WHEN abs({seconds}) < {EPOCH_MS_THRESHOLD} THEN make_timestamp(trunc({seconds} * 1000000)::BIGINT) END "
        f"ELSE TRY_CAST({text} AS TIMESTAMPTZ)::TIMESTAMP END"
    )


def _typed_sql(bounds: TimeBounds) -> str:
    """``with_typed_columns`` + ``with_reason``: typed values and the first failing check."""
    missing = [
        f"CASE WHEN {'_s_event_time' if n == 'event_time' else n} IS NULL THEN 'missing_field:{n}' END"
        for n in REQUIRED_FIELDS
    ]
    types = ", ".join(_lit(t) for t in EVENT_TYPES)
    channels = ", ".join(_lit(c) for c in EVENT_CHANNELS)
    time_checks = [
        "CASE WHEN event_time IS NULL THEN 'bad_timestamp' END",
        f"CASE WHEN event_time < {_ts(bounds.min_time)} THEN 'timestamp_out_of_range' END",
        f"CASE WHEN event_time > {_ts(bounds.future_limit)} THEN 'future_timestamp' END",
    ]
    if bounds.max_time is not None:
        time_checks.append(
            f"CASE WHEN event_time >= {_ts(bounds.max_time)} THEN 'timestamp_out_of_range' END"
        )
    checks = [
        "parse_error",
        *missing,
        f"CASE WHEN event_type NOT IN ({types}) THEN 'unknown_event_type:' || substr(event_type, 1, {REASON_VALUE_MAX}) END",
        *time_checks,
        "CASE WHEN _s_price IS NOT NULL AND (price IS NULL OR isnan(price) OR isinf(price)) THEN 'bad_price' END",
        "CASE WHEN price < 0 THEN 'negative_price' END",
        f"CASE WHEN price > {MAX_PRICE} THEN 'price_out_of_range' END",
        "CASE WHEN _s_quantity IS NOT NULL AND quantity IS NULL THEN 'bad_quantity' END",
        f"CASE WHEN channel IS NOT NULL AND channel NOT IN ({channels}) THEN 'unknown_channel:' || substr(channel, 1, {REASON_VALUE_MAX}) END",
    ]
    q = "TRY_CAST(quantity AS DOUBLE)"
    strings = ", ".join(
        ("user_id", "event_type", "sku_id", "store_id", "brand_id", "category_id", "channel", "coupon_id")
    )
    return f"""
CREATE OR REPLACE TABLE typed AS
WITH p AS (
  SELECT raw, source_file, {_parse_error_sql()} AS parse_error,
    event_time AS _s_event_time, price AS _s_price, quantity AS _s_quantity,
    event_id, {_event_time_sql("event_time")} AS event_time, {strings},
    TRY_CAST(price AS DOUBLE) AS price,
    CASE WHEN {q} = floor({q}) AND {q} >= 1 AND {q} <= {MAX_QUANTITY} THEN {q}::INTEGER END AS quantity
  FROM parsed
)
SELECT * EXCLUDE (parse_error, _s_event_time, _s_price, _s_quantity), event_time::DATE AS event_date,
  coalesce({", ".join(checks)}) AS reason
FROM p
"""


def _java_double_sql(x: str) -> str:
    """Java's ``Double.toString`` of a double for the values an accepted price can hold (0 .. 1e6):
    decimal text from 1e-3 on, ``d.dddE-n`` below (DuckDB prints both digit strings shortest-first)."""
    frac = f"split_part(abs({x})::VARCHAR, '.', 2)"
    digits = f"ltrim({frac}, '0')"
    small = (
        f"(CASE WHEN {x} < 0 THEN '-' ELSE '' END) || {digits}[1] || '.' || coalesce(nullif({digits}[2:], ''), '0')"
        f" || 'E-' || (length({frac}) - length({digits}) + 1)::VARCHAR"
    )
    return (
        f"CASE WHEN {x} = 0 THEN CASE WHEN signbit({x}) THEN '-0.0' ELSE '0.0' END "
        f"WHEN abs({x}) < 0.001 AND abs({x})::VARCHAR LIKE '0.%' THEN {small} ELSE {x}::VARCHAR END"
    )


def _content_json_sql() -> str:
    """Spark's ``to_json(struct(CONTENT_COLUMNS))`` text of the typed values (nulls left out)."""
    parts = []
    for name in CONTENT_COLUMNS:
        if name == "event_time":
            value = "'\"' || strftime(event_time, '%Y-%m-%dT%H:%M:%S.%g') || 'Z\"'"
        elif name == "price":
            value = _java_double_sql("price")
        elif name == "quantity":
            value = "quantity::VARCHAR"
        else:
            value = f"'\"' || replace(replace({name}, '\\', '\\\\'), '\"', '\\\"') || '\"'"
        parts.append(f"CASE WHEN {name} IS NOT NULL THEN '\"{name}\":' || {value} END")
    return "'{' || concat_ws(',', " + ", ".join(parts) + ") || '}'"


def _classified_sql() -> str:
    """``with_event_status`` into an empty lake: one bucket per row, the conflict reason."""
    order = "PARTITION BY event_id ORDER BY event_time, content_hash, source_file, raw"
    return f"""
CREATE OR REPLACE TABLE classified AS
WITH v AS (
  SELECT * EXCLUDE (reason), sha256({_content_json_sql()}) AS content_hash FROM typed WHERE reason IS NULL
), w AS (
  SELECT *, row_number() OVER win AS _rn, first_value(content_hash) OVER win AS _winner
  FROM v WINDOW win AS ({order})
), s AS (
  SELECT * EXCLUDE (_rn, _winner),
    CASE WHEN content_hash <> _winner THEN '{QUARANTINED}' WHEN _rn > 1 THEN '{DUPLICATE_IN_BATCH}'
         ELSE '{ACCEPTED}' END AS status
  FROM w
)
SELECT *, CASE WHEN status = '{QUARANTINED}' THEN '{CONFLICT}' END AS reason FROM s
UNION ALL BY NAME
SELECT *, '{QUARANTINED}' AS status FROM typed WHERE reason IS NOT NULL
"""


# ------------------------------------------------------------------------------------ DuckDB run


def _bucket_counts(con: Any) -> dict[str, Any]:
    """The reconciliation, as ``IngestResult`` holds it."""
    lines, blank = con.execute("SELECT count(*), count(*) FILTER (WHERE blank) FROM lines").fetchone()
    rows = con.execute("SELECT status, reason, count(*) FROM classified GROUP BY ALL").fetchall()
    by_status: dict[str, int] = {}
    reasons: dict[str, int] = {}
    for status, reason, n in rows:
        by_status[status] = by_status.get(status, 0) + int(n)
        if status == QUARANTINED:
            reasons[reason] = reasons.get(reason, 0) + int(n)
    rows_read = int(lines) - int(blank)
    counts = {
        "rows_read": rows_read,
        "blank_lines": int(blank),
        "accepted": by_status.get(ACCEPTED, 0),
        "duplicates_in_batch": by_status.get(DUPLICATE_IN_BATCH, 0),
        "quarantined": by_status.get(QUARANTINED, 0),
        "reasons": dict(sorted(reasons.items())),
    }
    counts["reconciled"] = (
        rows_read == counts["accepted"] + counts["duplicates_in_batch"] + counts["quarantined"]
    )
    return counts


def fresh_duckdb(out_dir: Path, threads: int) -> Any:
    """A DuckDB connection with ``threads`` threads (Spark's cores) writing into an emptied ``out_dir``."""
    import duckdb

    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    return con


def duck_ingest(
    files: list[str], out_dir: Path, bounds: TimeBounds, threads: int, ingested_at: datetime
) -> dict[str, Any]:
    """Ingest ``files`` with DuckDB into ``out_dir`` (``events/`` by event_date, ``quarantine.parquet``).

    Timed from reading the first line to the last file written; returns the counts, the content-hash
    digest of the accepted events and the output paths."""
    con = fresh_duckdb(out_dir, threads)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE TABLE src (path VARCHAR, source_file VARCHAR)")
    con.executemany("INSERT INTO src VALUES (?, ?)", [(f, spark_source_file(f)) for f in files])
    event_cols = ", ".join(
        c if c != "ingested_at" else f"{_ts(ingested_at)} AS ingested_at" for c in EVENT_COLUMNS
    )
    t0 = time.perf_counter()
    for sql in (_lines_sql(files), _parse_sql(), _typed_sql(bounds), _classified_sql()):
        con.execute(sql)
    con.execute(
        f"COPY (SELECT {event_cols} FROM classified WHERE status = '{ACCEPTED}') TO '{out_dir}/events' "
        "(FORMAT parquet, PARTITION_BY (event_date))"
    )
    con.execute(
        f"COPY (SELECT raw, reason, source_file, event_id FROM classified WHERE status = '{QUARANTINED}') "
        f"TO '{out_dir}/quarantine.parquet' (FORMAT parquet)"
    )
    seconds = round(time.perf_counter() - t0, 3)
    # not part of the product's output (it only counts them): written for the tests, not timed
    con.execute(
        f"COPY (SELECT source_file, raw, event_id FROM classified WHERE status = '{DUPLICATE_IN_BATCH}') "
        f"TO '{out_dir}/duplicates.parquet' (FORMAT parquet)"
    )
    result = {"ingest_s": seconds, "files": len(files), **_bucket_counts(con)}
    result["content_hash_digest"] = _duck_digest(con, f"classified WHERE status = '{ACCEPTED}'")
    result["events_dir"], result["quarantine_file"] = f"{out_dir}/events", f"{out_dir}/quarantine.parquet"
    result["duplicates_file"] = f"{out_dir}/duplicates.parquet"
    con.close()
    return result


# An order-independent digest of (event_id, content_hash) pairs: the sum of their sha256's first 15
# hex digits (60 bits), as an exact decimal in both engines.
def _duck_digest(con: Any, relation: str) -> str:
    row = con.execute(
        "SELECT count(*), sum(('0x' || substr(sha256(event_id || ':' || content_hash), 1, 15))::BIGINT::HUGEINT) "
        f"FROM {relation}"
    ).fetchone()
    return f"{int(row[0])}:{int(row[1] or 0)}"


# ------------------------------------------------------------------------------------- Spark side


def spark_ingest(spark: SparkSession, lake: str, data: Path, now: datetime) -> tuple[IngestResult, float]:
    """``dmp ingest --format jsonl`` of ``data`` into ``lake`` (the step function, gate skipped), timed."""
    from dmp.steps.ingest import run_ingest

    t0 = time.perf_counter()
    result = run_ingest(spark, lake, str(data), "jsonl", skip_checks=True, now=now)
    return result, round(time.perf_counter() - t0, 3)


def spark_counts(result: IngestResult) -> dict[str, Any]:
    """The product's reconciliation in the twin's shape."""
    return {
        "rows_read": result.rows_read,
        "blank_lines": result.blank_lines,
        "accepted": result.accepted,
        "duplicates_in_batch": result.duplicates_in_batch,
        "quarantined": result.quarantined,
        "reasons": dict(sorted(result.reasons.items())),
        "reconciled": result.reconciled,
    }


def _spark_digest(spark: SparkSession, lake: str) -> str:
    from pyspark.sql import functions as F

    from dmp.spark import lake as lk
    from dmp.transforms.ingest import event_hashes

    pair = F.sha2(F.concat_ws(":", "event_id", "content_hash"), 256)
    value = F.conv(F.substring(pair, 1, 15), 16, 10).cast("decimal(38,0)")
    row = event_hashes(lk.read_table(spark, lake, tables.EVENTS)).agg(F.count("*"), F.sum(value)).first()
    assert row is not None
    return f"{int(row[0])}:{int(row[1] or 0)}"


def _active_files(spark: SparkSession, lake: str, table: str) -> list[str]:
    from dmp.spark import lake as lk

    return [
        f.removeprefix("file://").removeprefix("file:")
        for f in lk.read_table(spark, lake, table).inputFiles()
    ]


def _except_both_ways(con: Any, cols: str, spark_rel: str, duck_rel: str) -> dict[str, int]:
    """Rows only Spark has and rows only the twin has (multisets: a row twice counts twice)."""

    def count(a: str, b: str) -> int:
        return int(
            con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {a} EXCEPT ALL SELECT {cols} FROM {b})"
            ).fetchone()[0]
        )

    return {"only_spark": count(spark_rel, duck_rel), "only_duckdb": count(duck_rel, spark_rel)}


def _files_sql(files: list[str]) -> str:
    return "[" + ", ".join(_lit(f) for f in files) + "]"


def compare_ingest(
    spark: SparkSession, lake: str, result: IngestResult, duck: dict[str, Any], threads: int
) -> dict[str, Any]:
    """Row-for-row equality of the twin's outputs with what ``run_ingest`` wrote to ``lake``.

    ``same`` is True only when the counts (per status and per reason), the accepted events (every
    column but ``ingested_at``), the quarantine rows and the content-hash digest are all equal."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET TimeZone = 'UTC'")
    event_files = _active_files(spark, lake, tables.EVENTS)
    quarantine_files = _active_files(spark, lake, tables.EVENTS_QUARANTINE)
    con.execute(
        "CREATE VIEW spark_events AS SELECT * REPLACE (event_date::DATE AS event_date) "
        f"FROM read_parquet({_files_sql(event_files)}, hive_partitioning = true)"
    )
    con.execute(
        "CREATE VIEW duck_events AS SELECT * REPLACE (event_date::DATE AS event_date) "
        f"FROM read_parquet('{duck['events_dir']}/**/*.parquet', hive_partitioning = true)"
    )
    empty = "SELECT NULL::VARCHAR AS raw, NULL::VARCHAR AS reason, NULL::VARCHAR AS source_file WHERE false"
    spark_q = (
        f"read_parquet({_files_sql(quarantine_files)}, hive_partitioning = true)"
        if quarantine_files
        else f"({empty})"
    )
    con.execute(f"CREATE VIEW spark_quarantine AS SELECT raw, reason, source_file FROM {spark_q}")
    con.execute(
        f"CREATE VIEW duck_quarantine AS SELECT raw, reason, source_file FROM read_parquet('{duck['quarantine_file']}')"
    )
    event_cols = ", ".join(c for c in EVENT_COLUMNS if c != "ingested_at")
    events = _except_both_ways(con, event_cols, "spark_events", "duck_events")
    quarantine = _except_both_ways(con, "source_file, reason, raw", "spark_quarantine", "duck_quarantine")
    written = con.execute(
        "SELECT (SELECT count(*) FROM spark_events), (SELECT count(*) FROM duck_events), "
        "(SELECT count(*) FROM spark_quarantine), (SELECT count(*) FROM duck_quarantine)"
    ).fetchone()
    con.close()
    spark_side = spark_counts(result)
    duck_side = {k: duck[k] for k in spark_side}
    digest = {"spark": _spark_digest(spark, lake), "duckdb": duck["content_hash_digest"]}
    check = {
        "same_counts": spark_side == duck_side,
        "counts_spark": spark_side,
        "counts_duckdb": duck_side,
        "events_rows": {"spark": int(written[0]), "duckdb": int(written[1]), **events},
        "quarantine_rows": {"spark": int(written[2]), "duckdb": int(written[3]), **quarantine},
        "content_hash_digest": digest,
        "same_content_hashes": digest["spark"] == digest["duckdb"],
    }
    check["same"] = bool(
        check["same_counts"]
        and check["same_content_hashes"]
        and events["only_spark"] == events["only_duckdb"] == 0
        and quarantine["only_spark"] == quarantine["only_duckdb"] == 0
        and written[0] == written[1] == spark_side["accepted"]
        and written[2] == written[3] == spark_side["quarantined"]
        and spark_side["reconciled"]
        and duck_side["reconciled"]
    )
    return check


# ------------------------------------------------------------- in the pipeline bench


def ingest_twin(
    spark: Any, lake: str, data: Path, ing: Any, now: datetime, out_dir: Path, threads: int
) -> dict[str, Any]:
    """The DuckDB ingest twin on the same files, twice (cold: the one whose time is compared, as the
    Spark ingest runs once; warm: how noisy the machine is), and its row-for-row check against what the
    Spark ingest wrote."""
    files, bounds = input_files(data), TimeBounds.for_format("jsonl", now)
    duck = duck_ingest(files, out_dir, bounds, threads, now)
    duck["warm_ingest_s"] = duck_ingest(files, out_dir, bounds, threads, now)["ingest_s"]
    check = compare_ingest(spark, lake, ing, duck, threads)
    return {"duckdb": duck, "check": check, "same": check["same"]}


def whole_pipeline(result: dict[str, Any]) -> None:
    """Ingest, aggregate + tags and whole-pipeline ratios (cold), when ingest was run and timed."""
    s, d, ingest = result["spark"], result["duckdb"], result.get("ingest")
    if ingest is None:
        return
    spark_ingest_s, duck_ingest_s = s["ingest_s"], ingest["duckdb"]["ingest_s"]
    ingest["ratio_spark_over_duckdb"] = round(spark_ingest_s / duck_ingest_s, 2)
    spark_total = spark_ingest_s + s["aggregate_tags_s"]
    duck_total = duck_ingest_s + d["total_with_state_s"]
    result["whole_pipeline"] = {
        "spark_s": round(spark_total, 3),
        "duckdb_s": round(duck_total, 3),
        "ratio_spark_over_duckdb": round(spark_total / duck_total, 2),
    }


def ingest_lines(run: dict[str, Any]) -> str:
    """The ingest twin's and the whole pipeline's lines of the printout."""
    ingest = run.get("ingest")
    if ingest is None:
        return (
            "  ingest: reused from an earlier run (--reuse-bronze): not run, not timed; no ingest or"
            " whole-pipeline ratio"
        )
    s, d, check, w = run["spark"], ingest["duckdb"], ingest["check"], run["whole_pipeline"]
    q, e = check["quarantine_rows"], check["events_rows"]
    return (
        f"  ingest: spark {s['ingest_s']}s / duckdb {d['ingest_s']}s = {ingest['ratio_spark_over_duckdb']}x"
        f" (duckdb again: {d['warm_ingest_s']}s);"
        f" {d['rows_read']:,} lines = {d['accepted']:,} accepted + {d['duplicates_in_batch']:,} duplicates"
        f" + {d['quarantined']:,} quarantined ({len(d['reasons'])} reasons);"
        f" same as spark: {ingest['same']} (counts per reason {check['same_counts']},"
        f" events only spark/only duckdb {e['only_spark']}/{e['only_duckdb']},"
        f" quarantine {q['only_spark']}/{q['only_duckdb']}, content hashes {check['same_content_hashes']})\n"
        f"  whole pipeline (ingest + aggregate + tags, cold, duckdb same outputs): spark {w['spark_s']}s"
        f" / duckdb {w['duckdb_s']}s = {w['ratio_spark_over_duckdb']}x"
    )
