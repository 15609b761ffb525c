"""Raw behaviour logs -> ``bronze/events`` + ``bronze/events_quarantine``, reconciled and idempotent.

Pipeline (design.md §1): read the input as text (one record per line; Parquet rows are turned into
JSON text) -> parse into a struct of *string* fields -> type and validate (first failing check is the
row's ``reason``) -> dedupe on ``event_id`` within the batch and against the lake -> write.

Every row read ends in exactly one bucket, so ``rows_read = accepted + quarantined + duplicates``:

* ``accepted``: new events, MERGEd into ``bronze/events`` (insert when the id is not there yet);
* ``duplicates``: exact repeats of an accepted event (same id, same parsed content), either within
  this batch (``duplicates_in_batch``) or already in the lake (``duplicates_in_lake``, which is what
  every valid row becomes on a rerun);
* ``quarantined``: bad rows with a precise ``reason`` (see ``REASONS``), including rows whose id is
  already taken by an event with different content (``duplicate_event_id_conflict``). In a batch,
  the event with the earliest ``event_time`` (then smallest content hash) wins an id; the others are
  conflicts, whatever the file order, so the outcome does not depend on how files are listed.

Idempotency: quarantine rows carry a deterministic ``quarantine_id`` (source file, reason, raw line,
occurrence number) and are MERGEd insert-only, like events; a table is only written when there is
something new, so re-running the same input leaves both tables at the same version. The lake is
read at the version current when the run starts, so a recomputed partition classifies rows the same
way after the write as before it.

Transforms are pure (DataFrame in, DataFrame out); reads and writes are the ``read_*`` / ``write_*``
functions and ``run_ingest`` at the bottom.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    StringType,
    StructField,
    StructType,
)

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import EVENT_CHANNELS, EVENT_TYPES, INGEST_FORMATS, TAOBAO_BEHAVIORS
from dmp.spark import lake as lk
from dmp.spark import schemas

# Tianchi dataset 649 documents its period as 2017-11-25 .. 2017-12-03 in China time (UTC+8); rows
# outside it are known noise in the full dataset, so they are quarantined as timestamp_out_of_range.
TAOBAO_WINDOW: tuple[datetime, datetime] = (
    datetime(2017, 11, 24, 16, 0, tzinfo=UTC),  # 2017-11-25 00:00 +08:00, inclusive
    datetime(2017, 12, 3, 16, 0, tzinfo=UTC),  # 2017-12-04 00:00 +08:00, exclusive
)
DEFAULT_MIN_EVENT_TIME = datetime(2000, 1, 1, tzinfo=UTC)
DEFAULT_FUTURE_TOLERANCE = timedelta(hours=1)
# Same limits as expectations/bronze_events.json, so rows that pass ingest pass the gate.
MAX_PRICE = 1_000_000.0
MAX_QUANTITY = 10_000
# Epoch numbers at or above this are milliseconds (1e11 s is year 5138; 1e11 ms is 1973).
EPOCH_MS_THRESHOLD = 1e11
REASON_VALUE_MAX = 50

# Reasons a row can be quarantined for (`<value>` / `<n>` are filled in from the row).
REASONS: tuple[str, ...] = (
    "malformed_json",
    "bad_field_count:<n>",
    "missing_field:<name>",
    "unknown_event_type:<value>",
    "bad_timestamp",
    "timestamp_out_of_range",
    "future_timestamp",
    "bad_price",
    "negative_price",
    "price_out_of_range",
    "bad_quantity",
    "unknown_channel:<value>",
    "duplicate_event_id_conflict",
)
CONFLICT = "duplicate_event_id_conflict"

# Fields of a raw event, all parsed as strings first (JSON numbers arrive as their text).
RAW_FIELDS: tuple[str, ...] = (
    "event_id",
    "event_time",
    "user_id",
    "event_type",
    "sku_id",
    "store_id",
    "brand_id",
    "category_id",
    "price",
    "quantity",
    "channel",
    "coupon_id",
)
REQUIRED_FIELDS: tuple[str, ...] = ("event_id", "user_id", "event_type", "event_time")
# What "same event" means for dedupe: the parsed values, not the text (129 == 129.0, epoch == ISO).
CONTENT_COLUMNS: tuple[str, ...] = (
    "event_time",
    "user_id",
    "event_type",
    "sku_id",
    "store_id",
    "brand_id",
    "category_id",
    "price",
    "quantity",
    "channel",
    "coupon_id",
)
EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in schemas.EVENTS.fields)

RAW_STRUCT = StructType([StructField(name, StringType(), True) for name in RAW_FIELDS])
_JSON_SCHEMA = StructType([*RAW_STRUCT.fields, StructField("_corrupt_record", StringType(), True)])


# --------------------------------------------------------------------------------------------------
# Settings and results
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeBounds:
    """Valid event times: ``min_time <= t``, ``t < max_time`` (if set) and ``t <= future_limit``."""

    min_time: datetime
    future_limit: datetime
    max_time: datetime | None = None

    @classmethod
    def for_format(
        cls,
        fmt: str,
        now: datetime,
        min_time: datetime | None = None,
        max_time: datetime | None = None,
        future_tolerance: timedelta = DEFAULT_FUTURE_TOLERANCE,
    ) -> TimeBounds:
        """Defaults: 2000-01-01 .. now + tolerance; the Taobao format adds the dataset's own window."""
        if fmt == "taobao":
            min_time = min_time or TAOBAO_WINDOW[0]
            max_time = max_time or TAOBAO_WINDOW[1]
        return cls(min_time or DEFAULT_MIN_EVENT_TIME, now + future_tolerance, max_time)


@dataclass
class IngestResult:
    """One run's reconciliation; stored as a row of ``ops/ingest_runs``."""

    run_id: str
    source: str
    format: str
    dates: list[date] | None
    started_at: datetime
    files: int = 0
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    quarantine_new: int = 0
    duplicates_in_batch: int = 0
    duplicates_in_lake: int = 0
    out_of_scope: int = 0
    blank_lines: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    checks: str = "skipped"
    status: str = "ok"
    message: str | None = None
    table_version: int | None = None
    finished_at: datetime | None = None
    event_dates: list[date] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.duplicates_in_batch + self.duplicates_in_lake

    @property
    def reconciled(self) -> bool:
        return (
            self.rows_read == self.accepted + self.quarantined + self.duplicates
            and sum(self.reasons.values()) == self.quarantined
        )

    def as_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("event_dates")
        row.update(duplicates=self.duplicates, reconciled=self.reconciled)
        row["finished_at"] = self.finished_at or datetime.now(UTC)
        return {name: row[name] for name in schemas.INGEST_RUNS_SCHEMA.fieldNames()}


# --------------------------------------------------------------------------------------------------
# Pure transforms
# --------------------------------------------------------------------------------------------------


# Java regex ``\s``: the characters a blank line or a padded field may consist of.
WHITESPACE = " \t\n\x0b\x0c\r"


def strip_whitespace(col: Column | str) -> Column:
    """Both ends trimmed of WHITESPACE (``btrim``: a plain scan, several times cheaper than a regex)."""
    return F.btrim(col, F.lit(WHITESPACE))


def is_blank(col: Column | str) -> Column:
    """The text is empty or whitespace only."""
    return strip_whitespace(col) == ""


def clean_text(col: Column) -> Column:
    """Trim whitespace (incl. tabs/CR) and turn empty strings into null."""
    trimmed = strip_whitespace(col)
    return F.when(trimmed != "", trimmed)


def short_value(col: Column) -> Column:
    return F.substring(col, 1, REASON_VALUE_MAX)


def parse_jsonl(lines_df: DataFrame) -> DataFrame:
    """``value`` (one JSON line) + ``source_file`` -> ``raw, source_file, parse_error, f`` (string struct).

    Parsed with ``from_json`` so a malformed line keeps its text in ``raw`` and gets
    ``parse_error = malformed_json`` (also for valid JSON that is not an object, e.g. ``[1,2]``).
    """
    parsed = F.from_json("value", _JSON_SCHEMA, {"columnNameOfCorruptRecord": "_corrupt_record"})
    return lines_df.withColumn("_j", parsed).select(
        F.col("value").alias("raw"),
        "source_file",
        F.when(F.col("_j").isNull() | F.col("_j._corrupt_record").isNotNull(), F.lit("malformed_json")).alias(
            "parse_error"
        ),
        F.struct(*[F.col(f"_j.{name}").alias(name) for name in RAW_FIELDS]).alias("f"),
    )


def parquet_as_lines(parquet_df: DataFrame) -> DataFrame:
    """Parquet rows -> JSON text lines, so they go through the same parse and checks as JSON lines."""
    data_cols = [c for c in parquet_df.columns if c != "source_file"]
    return parquet_df.select(F.to_json(F.struct(*data_cols)).alias("value"), "source_file")


def taobao_event_id(
    user_id: Column, item_id: Column, category_id: Column, behavior: Column, ts: Column
) -> Column:
    """Stable id for a Taobao row (it has none): hash of its trimmed fields; same row -> same id."""
    return F.concat(
        F.lit("tb-"),
        F.substring(F.sha2(F.concat_ws(",", user_id, item_id, category_id, behavior, ts), 256), 1, 32),
    )


def parse_taobao(lines_df: DataFrame) -> DataFrame:
    """Taobao UserBehavior CSV lines (no header: user_id, item_id, category_id, behavior_type, epoch s).

    pv/cart/fav/buy map to view/cart_add/favorite/order; store, brand, price, quantity, channel and
    coupon are null. A line without exactly 5 fields gets ``bad_field_count:<n>``, an unknown
    behaviour ``unknown_event_type:<value>``.
    """
    parts = F.split(F.col("value"), ",", -1)
    fields = [clean_text(F.try_element_at(parts, F.lit(i + 1))) for i in range(5)]
    user_id, item_id, category_id, behavior, ts = fields
    mapping = F.create_map(*[F.lit(x) for kv in TAOBAO_BEHAVIORS.items() for x in kv])
    event_type = F.when(behavior.isNotNull(), F.try_element_at(mapping, behavior))
    n_fields = F.size(parts)
    parse_error = F.when(n_fields != 5, F.concat(F.lit("bad_field_count:"), n_fields.cast("string"))).when(
        behavior.isNotNull() & event_type.isNull(),
        F.concat(F.lit("unknown_event_type:"), short_value(behavior)),
    )
    values = {
        "event_id": taobao_event_id(user_id, item_id, category_id, behavior, ts),
        "event_time": ts,
        "user_id": user_id,
        "event_type": event_type,
        "sku_id": item_id,
        "category_id": category_id,
    }
    struct = F.struct(*[(values.get(name, F.lit(None).cast("string"))).alias(name) for name in RAW_FIELDS])
    return lines_df.select(
        F.col("value").alias("raw"), "source_file", parse_error.alias("parse_error"), struct.alias("f")
    )


def parse_event_time(text: Column) -> Column:
    """ISO-8601 text (``Z`` or offset; no zone = UTC) or epoch seconds / milliseconds -> timestamp.

    Null when it cannot be read. Numbers >= 1e11 are milliseconds; beyond 1e14 nothing sensible is
    left, so they stay null (and ``timestamp_seconds`` never overflows under ANSI mode).
    """
    numeric = text.rlike(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
    number = text.try_cast("double")
    seconds = F.when(F.abs(number) >= EPOCH_MS_THRESHOLD, number / 1000).otherwise(number)
    from_epoch = F.when(F.abs(seconds) < EPOCH_MS_THRESHOLD, F.timestamp_seconds(seconds))
    return F.when(numeric, from_epoch).otherwise(F.try_to_timestamp(text))


def with_typed_columns(parsed_df: DataFrame) -> DataFrame:
    """Add the typed event columns (nulls where a value cannot be read; ``reason`` says why)."""
    f = {name: clean_text(F.col(f"f.{name}")) for name in RAW_FIELDS}
    price = f["price"].try_cast("double")
    quantity = f["quantity"].try_cast("double")
    event_time = parse_event_time(f["event_time"])
    whole_quantity = F.when(
        (quantity == F.floor(quantity)) & (quantity >= 1) & (quantity <= MAX_QUANTITY), quantity.cast("int")
    )
    return parsed_df.select(
        "raw",
        "source_file",
        "parse_error",
        *[f[name].alias(f"_s_{name}") for name in ("event_time", "price", "quantity")],
        f["event_id"].alias("event_id"),
        event_time.alias("event_time"),
        F.to_date(event_time).alias("event_date"),
        *[
            f[name].alias(name)
            for name in ("user_id", "event_type", "sku_id", "store_id", "brand_id", "category_id")
        ],
        price.alias("price"),
        whole_quantity.alias("quantity"),
        f["channel"].alias("channel"),
        f["coupon_id"].alias("coupon_id"),
    )


def with_reason(typed_df: DataFrame, bounds: TimeBounds) -> DataFrame:
    """``reason`` = the first failed check (null for a valid row), in a fixed order of precedence."""
    price_text, price = F.col("_s_price"), F.col("price")
    min_time = F.lit(bounds.min_time).cast("timestamp")
    checks = [
        F.col("parse_error"),
        *[
            F.when(
                F.col(name if name != "event_time" else "_s_event_time").isNull(),
                F.lit(f"missing_field:{name}"),
            )
            for name in REQUIRED_FIELDS
        ],
        F.when(
            ~F.col("event_type").isin(*EVENT_TYPES),
            F.concat(F.lit("unknown_event_type:"), short_value(F.col("event_type"))),
        ),
        F.when(F.col("event_time").isNull(), F.lit("bad_timestamp")),
        F.when(F.col("event_time") < min_time, F.lit("timestamp_out_of_range")),
        F.when(F.col("event_time") > F.lit(bounds.future_limit).cast("timestamp"), F.lit("future_timestamp")),
    ]
    if bounds.max_time is not None:
        checks.append(
            F.when(
                F.col("event_time") >= F.lit(bounds.max_time).cast("timestamp"),
                F.lit("timestamp_out_of_range"),
            )
        )
    checks += [
        F.when(
            price_text.isNotNull() & (price.isNull() | F.isnan(price) | (F.abs(price) == float("inf"))),
            F.lit("bad_price"),
        ),
        F.when(price < 0, F.lit("negative_price")),
        F.when(price > MAX_PRICE, F.lit("price_out_of_range")),
        F.when(F.col("_s_quantity").isNotNull() & F.col("quantity").isNull(), F.lit("bad_quantity")),
        F.when(
            F.col("channel").isNotNull() & ~F.col("channel").isin(*EVENT_CHANNELS),
            F.concat(F.lit("unknown_channel:"), short_value(F.col("channel"))),
        ),
    ]
    return typed_df.withColumn("reason", F.coalesce(*checks)).drop(
        "parse_error", "_s_event_time", "_s_price", "_s_quantity"
    )


def with_content_hash(df: DataFrame) -> DataFrame:
    """``content_hash``: sha256 of the parsed event content (everything but id and provenance)."""
    return df.withColumn("content_hash", F.sha2(F.to_json(F.struct(*CONTENT_COLUMNS)), 256))


def filter_to_dates(df: DataFrame, days: Sequence[date]) -> DataFrame:
    """Keep rows of the given event dates plus rows that cannot be dated in range (bad or missing time,
    out of range), so a bad row is never lost by a ``--date`` filter; those are idempotent to quarantine."""
    undated = F.col("event_date").isNull() | F.col("reason").isin(
        "bad_timestamp", "timestamp_out_of_range", "future_timestamp"
    )
    return df.filter(undated | F.col("event_date").isin(*[F.lit(d) for d in days]))


def classify_events(batch_df: DataFrame, lake_ids_df: DataFrame) -> DataFrame:
    """Put every row of the batch in one bucket: ``status`` in accepted / duplicate_in_batch /
    duplicate_in_lake / quarantined, and ``reason`` set for quarantined rows.

    ``batch_df``: output of ``with_reason``. ``lake_ids_df``: ``event_id, content_hash`` of the events
    already in the lake (deduped here so a bad lake cannot fan rows out).
    """
    lake = lake_ids_df.groupBy("event_id").agg(F.min("content_hash").alias("_lake_hash"))
    valid = with_content_hash(batch_df.filter(F.col("reason").isNull())).join(lake, "event_id", "left")
    # One sort per id: the earliest event_time (then smallest content hash) wins the id, and the
    # winner's copies come first in this order, so "first row" = accepted, "a later row with the
    # winner's content" = duplicate, "any other content" = conflict.
    by_id = Window.partitionBy("event_id").orderBy("event_time", "content_hash", "source_file", "raw")
    winner = F.first("content_hash").over(by_id)
    status = (
        F.when(
            F.col("_lake_hash").isNotNull() & (F.col("_lake_hash") == F.col("content_hash")),
            F.lit("duplicate_in_lake"),
        )
        .when(F.col("_lake_hash").isNotNull() | (F.col("content_hash") != winner), F.lit("quarantined"))
        .when(F.row_number().over(by_id) > 1, F.lit("duplicate_in_batch"))
        .otherwise(F.lit("accepted"))
    )
    valid = (
        valid.withColumn("status", status)
        .withColumn("reason", F.when(F.col("status") == "quarantined", F.lit(CONFLICT)))
        .drop("_lake_hash")
    )
    invalid = batch_df.filter(F.col("reason").isNotNull()).withColumn("status", F.lit("quarantined"))
    return valid.unionByName(invalid, allowMissingColumns=True)


def to_quarantine_rows(classified_df: DataFrame, ingested_at: datetime, run_id: str) -> DataFrame:
    """Quarantined rows in the ``bronze/events_quarantine`` layout with a deterministic ``quarantine_id``.

    The id hashes (source file, reason, raw, occurrence number), so a rerun produces the same ids and
    inserts nothing, while identical bad lines in one file stay separate rows (nothing is lost).
    """
    return classified_df.filter(F.col("status") == "quarantined").select(
        "raw",
        "reason",
        "source_file",
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(ingested_at.date()).alias("ingest_date"),
        quarantine_id().alias("quarantine_id"),
        "event_id",
        F.lit(run_id).alias("run_id"),
    )


def quarantine_id() -> Column:
    """sha256 of (source_file, reason, raw, occurrence of that raw line in the file): stable across reruns."""
    occurrence = F.row_number().over(Window.partitionBy("source_file", "reason", "raw").orderBy("raw"))
    key = F.concat_ws(
        "\u0001", "source_file", "reason", F.coalesce("raw", F.lit("")), occurrence.cast("string")
    )
    return F.sha2(key, 256)


def to_event_rows(classified_df: DataFrame, ingested_at: datetime) -> DataFrame:
    """Accepted rows in the ``bronze/events`` layout."""
    return (
        classified_df.filter(F.col("status") == "accepted")
        .withColumn("ingested_at", F.lit(ingested_at).cast("timestamp"))
        .select(*EVENT_COLUMNS)
    )


# --------------------------------------------------------------------------------------------------
# I/O at the edges
# --------------------------------------------------------------------------------------------------

_FORMAT_GLOBS = {
    "jsonl": "*.{jsonl,json,ndjson,jsonl.gz,json.gz,ndjson.gz}",
    "parquet": "*.parquet",
    "taobao": "*.{csv,csv.gz,txt}",
}


@dataclass(frozen=True)
class InputPlan:
    """Which paths to read and whether ``--date`` selects folders (partitioned) or rows."""

    paths: list[str]
    is_dir: bool
    partitioned: bool
    missing_dates: list[date] = field(default_factory=list)


def _hadoop_path(spark: SparkSession, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    return hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), hpath


def is_dir(spark: SparkSession, path: str) -> bool:
    fs, hpath = _hadoop_path(spark, path)
    return bool(fs.exists(hpath) and fs.getFileStatus(hpath).isDirectory())


def child_dirs(spark: SparkSession, path: str) -> list[str]:
    fs, hpath = _hadoop_path(spark, path)
    return [s.getPath().getName() for s in fs.listStatus(hpath) if s.isDirectory()]


def path_exists(spark: SparkSession, path: str) -> bool:
    fs, hpath = _hadoop_path(spark, path)
    return bool(fs.exists(hpath))


def plan_input(spark: SparkSession, source: str, days: Sequence[date] | None) -> InputPlan:
    """Resolve ``--source``: a file, a plain folder of files, ``DIR/events`` or the generator's DIR.

    Partitioned input (``event_date=YYYY-MM-DD`` folders): ``--date`` reads only those folders.
    """
    source = source.rstrip("/") or "/"
    if not path_exists(spark, source):
        raise DmpError(f"--source {source}: no such file or folder")
    if not is_dir(spark, source):
        return InputPlan([source], is_dir=False, partitioned=False)
    root = source
    if "events" in child_dirs(spark, root):
        root = f"{root}/events"
    partitions = sorted(d for d in child_dirs(spark, root) if d.startswith("event_date="))
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


def read_lines(spark: SparkSession, plan: InputPlan, fmt: str) -> DataFrame:
    """``value`` (one record as text) + ``source_file`` for every input record."""
    reader = spark.read
    if plan.is_dir:
        reader = reader.option("recursiveFileLookup", "true").option("pathGlobFilter", _FORMAT_GLOBS[fmt])
    if fmt == "parquet":
        df = reader.option("mergeSchema", "true").parquet(*plan.paths)
        df = df.withColumn("source_file", F.col("_metadata.file_path"))
        return parquet_as_lines(df)
    df = reader.text(list(plan.paths))  # text(*paths) would pass the 2nd path as `wholetext`
    return df.select("value", F.col("_metadata.file_path").alias("source_file"))


def ensure_table(
    spark: SparkSession, lake: str, table: str, schema: StructType, partition_cols: list[str]
) -> None:
    from delta.tables import DeltaTable

    (
        DeltaTable.createIfNotExists(spark)
        .location(tables.table_path(lake, table))
        .addColumns(schema)
        .partitionedBy(*partition_cols)
        .execute()
    )


def merge_insert_new(
    spark: SparkSession, lake: str, table: str, new_df: DataFrame, key: str, target_filter: str | None = None
) -> None:
    """MERGE insert-when-not-matched on ``key`` (the guard against a concurrent writer of the same rows)."""
    from delta.tables import DeltaTable

    condition = f"t.`{key}` = s.`{key}`" + (f" AND ({target_filter})" if target_filter else "")
    (
        DeltaTable.forPath(spark, tables.table_path(lake, table))
        .alias("t")
        .merge(new_df.alias("s"), condition)
        .whenNotMatchedInsertAll()
        .execute()
    )


def read_pinned(spark: SparkSession, lake: str, table: str, version: int) -> DataFrame:
    return spark.read.format("delta").option("versionAsOf", version).load(tables.table_path(lake, table))


def write_run(spark: SparkSession, lake: str, result: IngestResult) -> None:
    df = spark.createDataFrame([result.as_row()], schemas.INGEST_RUNS_SCHEMA)
    ensure_table(spark, lake, tables.INGEST_RUNS, schemas.INGEST_RUNS_SCHEMA, [])
    lk.append(df, lake, tables.INGEST_RUNS)


def write_quarantine(
    spark: SparkSession, lake: str, table: str, schema: StructType, quarantine_df: DataFrame
) -> int:
    """Insert the quarantine rows whose ``quarantine_id`` is new; returns how many (0 = no write)."""
    ensure_table(spark, lake, table, schema, ["ingest_date"])
    # new_df is persisted and counted before the MERGE, so no need to pin the version here
    known = lk.read_table(spark, lake, table).select("quarantine_id")
    new_df = quarantine_df.join(known, "quarantine_id", "left_anti").select(*schema.fieldNames()).persist()
    try:
        n_new = new_df.count()
        if n_new:
            merge_insert_new(spark, lake, table, new_df, "quarantine_id")
        return n_new
    finally:
        new_df.unpersist()


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
    result = IngestResult(str(uuid.uuid4()), source, fmt, list(days) if days else None, started)
    plan = plan_input(spark, source, days)

    lines_df = read_lines(spark, plan, fmt)
    result.files = len(lines_df.inputFiles())
    if result.files == 0:
        raise DmpError(f"--source {source}: no {_FORMAT_GLOBS[fmt]} files found")
    blank = is_blank("value")
    parse = parse_taobao if fmt == "taobao" else parse_jsonl
    typed_df = (
        lines_df.filter(~blank).transform(parse).transform(with_typed_columns).transform(with_reason, bounds)
    )
    if days and not plan.partitioned:
        typed_df = typed_df.transform(filter_to_dates, days)

    ensure_table(spark, lake, tables.EVENTS, schemas.EVENTS, ["event_date"])
    events_version = lk.table_version(spark, lake, tables.EVENTS)
    assert events_version is not None
    batch_df = typed_df.persist()
    classified_df = None
    try:
        result.rows_read = batch_df.count()
        line_counts = lines_df.agg(F.count(F.lit(1)).alias("n"), F.count_if(blank).alias("blank")).first()
        assert line_counts is not None
        total_lines, result.blank_lines = int(line_counts["n"]), int(line_counts["blank"])
        result.out_of_scope = total_lines - result.blank_lines - result.rows_read
        event_dates = sorted(
            r.event_date
            for r in batch_df.filter(F.col("reason").isNull()).select("event_date").distinct().collect()
        )
        result.event_dates = event_dates
        lake_ids = read_pinned(spark, lake, tables.EVENTS, events_version)
        lake_ids = (
            with_content_hash(lake_ids.filter(_date_filter_sql(event_dates))).select(
                "event_id", "content_hash"
            )
            if event_dates
            else lake_ids.limit(0)
            .withColumn("content_hash", F.lit(None).cast("string"))
            .select("event_id", "content_hash")
        )
        classified_df = classify_events(batch_df, lake_ids).persist()
        counts = classified_df.groupBy("status", "reason").count().collect()
        by_status: dict[str, int] = {}
        for row in counts:
            by_status[row["status"]] = by_status.get(row["status"], 0) + row["count"]
            if row["status"] == "quarantined":
                result.reasons[row["reason"]] = row["count"]
        result.accepted = by_status.get("accepted", 0)
        result.quarantined = by_status.get("quarantined", 0)
        result.duplicates_in_batch = by_status.get("duplicate_in_batch", 0)
        result.duplicates_in_lake = by_status.get("duplicate_in_lake", 0)
        if not result.reconciled:
            result.status, result.message = "unreconciled", _reconcile_message(result)
            result.finished_at = datetime.now(UTC)
            write_run(spark, lake, result)
            raise DmpError(result.message)

        result.quarantine_new = write_quarantine(
            spark,
            lake,
            tables.EVENTS_QUARANTINE,
            schemas.EVENTS_QUARANTINE_SCHEMA,
            to_quarantine_rows(classified_df, started, result.run_id),
        )
        if result.accepted:
            merge_insert_new(
                spark,
                lake,
                tables.EVENTS,
                to_event_rows(classified_df, started),
                "event_id",
                target_filter=_date_filter_sql(event_dates).replace("`event_date`", "t.`event_date`"),
            )
        result.table_version = lk.table_version(spark, lake, tables.EVENTS)
    finally:
        batch_df.unpersist()
        if classified_df is not None:
            classified_df.unpersist()

    gate_error: DmpError | None = None
    if skip_checks:
        result.checks = "skipped"
    elif not result.event_dates:
        result.checks = "no_rows"
    else:
        from dmp.steps.quality import run_gate

        try:
            run_gate(
                lk.read_table(spark, lake, tables.EVENTS).filter(_date_filter_sql(result.event_dates)),
                "bronze_events",
            )
            result.checks = "passed"
        except DmpError as exc:
            result.checks, result.status, result.message = "failed", "gate_failed", str(exc)
            gate_error = exc
    result.finished_at = datetime.now(UTC)
    write_run(spark, lake, result)
    if gate_error is not None:
        raise gate_error
    return result


def _reconcile_message(result: IngestResult) -> str:
    return (
        f"ingest of {result.source} does not reconcile: rows read {result.rows_read} != accepted "
        f"{result.accepted} + quarantined {result.quarantined} + duplicates {result.duplicates} "
        f"(reasons sum to {sum(result.reasons.values())})"
    )


def reasons_json(reasons: dict[str, int]) -> str:
    return json.dumps(dict(sorted(reasons.items())), sort_keys=True)


def reconciliation_table(result: IngestResult) -> Any:
    """The run's numbers as a rich Table (printed by the CLI and the spark-submit job)."""
    from rich.table import Table

    dates = (
        "all"
        if not result.dates
        else (str(result.dates[0]) if len(result.dates) == 1 else f"{result.dates[0]} .. {result.dates[-1]}")
    )
    table = Table(title=f"ingest {result.format} {result.source} (dates: {dates})", show_header=True)
    table.add_column("bucket")
    table.add_column("rows", justify="right")
    table.add_row("files", str(result.files))
    table.add_row("rows read", str(result.rows_read))
    table.add_row("  accepted (new)", str(result.accepted))
    table.add_row("  quarantined", f"{result.quarantined} ({result.quarantine_new} new)")
    for reason, n in sorted(result.reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        table.add_row(f"    {reason}", str(n))
    table.add_row("  duplicates in batch", str(result.duplicates_in_batch))
    table.add_row("  duplicates already in lake", str(result.duplicates_in_lake))
    if result.out_of_scope:
        table.add_row("other dates (not processed)", str(result.out_of_scope))
    if result.blank_lines:
        table.add_row("blank lines (not records)", str(result.blank_lines))
    verdict = "yes" if result.reconciled else "[bold red]NO[/]"
    table.add_row(
        "reconciled",
        f"{verdict}: {result.rows_read} = {result.accepted} + {result.quarantined} + {result.duplicates}",
    )
    table.add_row("quality gate", result.checks)
    return table
