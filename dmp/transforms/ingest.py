"""Raw behaviour records -> typed, validated and bucketed event rows (pure; the step does the I/O).

Pipeline (design.md §1): one record as text per row (Parquet rows are turned into JSON text) ->
parse into a struct of cleaned *string* fields (``parse_jsonl`` / ``parse_taobao``) -> type
(``with_typed_columns``) and validate (``with_reason``: the first failing check is the row's
``reason``) -> bucket every row against the batch and the lake (``with_event_status``).

Buckets (``dmp.transforms.quarantine``): ``accepted`` new events; ``duplicate_in_batch`` /
``duplicate_in_lake`` exact repeats of an accepted event (same id, same parsed content);
``quarantined`` bad rows with a precise ``reason`` (see ``REASONS``), including rows whose id is
already taken by an event with different content (``duplicate_event_id_conflict``). In a batch, the
event with the earliest ``event_time`` (then smallest content hash) wins an id; the others are
conflicts, whatever the file order, so the outcome does not depend on how files are listed.

Hostile text is refused before any value is used (docs/quarantine.md lists every reason with an
example). Precedence, first match wins: ``bad_encoding`` (the line is not UTF-8, or holds U+FFFD or a
JSON escape that decodes to it or to a lone surrogate; ``raw`` keeps the bytes as base64) >
``malformed_json`` / ``bad_field_count:<n>`` > ``duplicate_key`` > ``bad_type:<field>`` >
``field_too_long:<field>`` (``FIELD_MAX_CHARS``) > ``control_characters:<field>`` > the value checks
of ``with_reason`` (Taobao: ``unknown_event_type`` of its behaviour code comes right after the
text checks) > ``duplicate_event_id_conflict``. Within one kind, fields go in ``RAW_FIELDS`` order.
So a value that reaches a reason (``unknown_event_type:<value>``) or a table is readable text, a
scalar, within its limit and free of control characters. Whole Parquet files are refused before
any of this (``FILE_REASONS``, ``parquet_schema_problem``; the step reads the footers).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BinaryType,
    DataType,
    MapType,
    StringType,
    StructField,
    StructType,
    VariantType,
)

from dmp.contracts.vocab import EVENT_CHANNELS, EVENT_TYPES, TAOBAO_BEHAVIORS
from dmp.spark import schemas
from dmp.transforms.columns import (
    clean_text,
    first_text_problem,
    has_lossy_json_escape,
    is_unreadable_text,
    reason_with_value,
    without_bom,
)
from dmp.transforms.quarantine import (
    ACCEPTED,
    BAD_ENCODING,
    DUPLICATE_IN_BATCH,
    DUPLICATE_IN_LAKE,
    DUPLICATE_KEY,
    MALFORMED_JSON,
    QUARANTINED,
    UNREADABLE_FILE,
    bad_field_count,
    bad_schema,
    bad_type,
    missing_field,
    raw_kept,
)

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
TAOBAO_FIELD_COUNT = 5

# Reasons a row can be quarantined for, in order of precedence (`<value>` / `<n>` / `<field>` are
# filled in from the row); docs/quarantine.md has an example line of each (a test keeps it complete).
REASONS: tuple[str, ...] = (
    BAD_ENCODING,
    MALFORMED_JSON,
    "bad_field_count:<n>",
    DUPLICATE_KEY,
    "bad_type:<field>",
    "field_too_long:<field>",
    "control_characters:<field>",
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
# Reasons a whole input file is quarantined for (Parquet: one quarantine row per file, ``raw`` = the
# reader's error or the file's schema; its readable neighbours are still ingested). Checked in this
# order: the footer cannot be read; Spark cannot map the schema (a type it does not support, two
# columns of one name in any case); a required column is missing (REQUIRED_FIELDS order); a field
# column is not a scalar (RAW_FIELDS order).
SCHEMA_UNSUPPORTED = bad_schema("unsupported")
FILE_REASONS: tuple[str, ...] = (
    UNREADABLE_FILE,
    SCHEMA_UNSUPPORTED,
    bad_schema("missing_column:<name>"),
    bad_schema("bad_type:<field>"),
)
# Reasons of rows whose event date cannot be trusted: kept by a ``--date`` filter (see filter_to_dates).
UNDATED_REASONS: tuple[str, ...] = ("bad_timestamp", "timestamp_out_of_range", "future_timestamp")

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
CONTENT_COLUMNS: tuple[str, ...] = tuple(name for name in RAW_FIELDS if name != "event_id")
EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in schemas.EVENTS.fields)

RAW_STRUCT = StructType([StructField(name, StringType(), True) for name in RAW_FIELDS])
_CORRUPT = "_corrupt_record"
_JSON_SCHEMA = StructType([*RAW_STRUCT.fields, StructField(_CORRUPT, StringType(), True)])
# Longest text a field may hold, in characters after trimming. Ids 128: twice a hex sha256 (64), the
# longest id we know of (UUIDs 36, OAIDs up to 64, Taobao ids 10); anything longer is a pasted blob,
# not an id, and would be copied into every table and delivery file. event_time 64 (ISO-8601 with
# nanoseconds and an offset is 35); event_type / channel 32 (the longest word is 14); price / quantity
# 32 (the longest text of a double, -1.7976931348623157E308, is 24).
ID_MAX_CHARS = 128
FIELD_MAX_CHARS: dict[str, int] = {name: ID_MAX_CHARS for name in RAW_FIELDS} | {
    "event_time": 64,
    "event_type": 32,
    "channel": 32,
    "price": 32,
    "quantity": 32,
}
# Taobao's five columns, named by the event field each fills (item_id -> sku_id, behavior -> event_type).
TAOBAO_FIELDS: tuple[str, ...] = ("user_id", "sku_id", "category_id", "event_type", "event_time")


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


# ------------------------------------------------------------------------------------------ parse


def _cleaned(name: str) -> str:
    return f"_c_{name}"


def _bad_type(name: str) -> Column:
    """``bad_type:<name>`` when the field's text is a JSON object or array.

    ``from_json`` gives an object or array as its JSON text, so that text parses as one; so does a
    string holding such text (``"{\\"id\\": 1}"``), refused too: no accepted value is a JSON object.
    A string that merely starts with a brace (``"{abc"``) parses as neither and is kept. Only text
    starting with "{" or "[" is parsed again.
    """
    text = F.col(_cleaned(name))
    is_object = text.startswith("{") & F.json_object_keys(text).isNotNull()
    is_array = text.startswith("[") & F.json_array_length(text).isNotNull()
    return F.when(is_object | is_array, F.lit(bad_type(name)))


def parse_jsonl(lines_df: DataFrame) -> DataFrame:
    """``value`` (one JSON line) + ``source_file`` -> ``raw, source_file, parse_error, f`` (string struct).

    Parsed once with ``from_json`` (a malformed line keeps its text in ``raw``); ``parse_error`` is the
    first of: bad_encoding, malformed_json (also valid JSON that is not an object, e.g. ``[1,2]``),
    duplicate_key (a top-level key twice: ``from_json`` would keep the last silently), bad_type,
    field_too_long, control_characters. ``f`` holds the cleaned text of each field.

    Each costly value (the parse, the keys, each cleaned field) is its own column, computed once and
    referenced by the checks: written inline, Spark repeats it in every check that uses it.
    """
    value = F.col("value")
    unreadable = is_unreadable_text(value) | has_lossy_json_escape(value)
    parsed = F.from_json("_text", _JSON_SCHEMA, {"columnNameOfCorruptRecord": _CORRUPT})
    malformed = F.col("_j").isNull() | F.col(f"_j.{_CORRUPT}").isNotNull()
    cleaned = {name: F.col(_cleaned(name)) for name in RAW_FIELDS}
    parse_error = F.coalesce(
        F.when(F.col("_unreadable"), F.lit(BAD_ENCODING)),
        F.when(F.col("_malformed"), F.lit(MALFORMED_JSON)),
        F.when(F.size("_keys") != F.size(F.array_distinct("_keys")), F.lit(DUPLICATE_KEY)),
        *[_bad_type(name) for name in RAW_FIELDS],
        first_text_problem(cleaned, FIELD_MAX_CHARS),
    )
    return (
        lines_df.withColumn("_text", without_bom(value))
        .withColumn("_unreadable", unreadable)
        .withColumn("_j", F.when(~F.col("_unreadable"), parsed))
        .select(
            "value",
            "source_file",
            "_unreadable",
            malformed.alias("_malformed"),
            F.when(~malformed, F.json_object_keys("_text")).alias("_keys"),
            *[clean_text(F.col(f"_j.{name}")).alias(_cleaned(name)) for name in RAW_FIELDS],
        )
        .select(
            raw_kept(value, F.col("_unreadable")).alias("raw"),
            "source_file",
            parse_error.alias("parse_error"),
            F.struct(*[col.alias(name) for name, col in cleaned.items()]).alias("f"),
        )
    )


# Spark types that cannot hold one event field: nested values, and bytes (BINARY without a STRING
# annotation), whose JSON text would be base64, not the id that was meant.
_NOT_SCALAR: tuple[type[DataType], ...] = (StructType, ArrayType, MapType, VariantType, BinaryType)


def parquet_schema_problem(schema: StructType) -> str | None:
    """The file-level reason a Parquet file of this (Spark) schema cannot hold events, None if it can.

    ``bad_schema:missing_column:<name>`` for the first REQUIRED_FIELDS column it lacks (names match
    exactly, as the parser does), then ``bad_schema:bad_type:<field>`` for the first RAW_FIELDS column
    of a nested or binary type. Other columns are not events' business and are ignored.
    """
    types = {f.name: f.dataType for f in schema.fields}
    for name in REQUIRED_FIELDS:
        if name not in types:
            return bad_schema(f"missing_column:{name}")
    for name in RAW_FIELDS:
        if isinstance(types.get(name), _NOT_SCALAR):
            return bad_schema(f"bad_type:{name}")
    return None


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
    coupon are null. ``parse_error`` is the first of: bad_encoding, ``bad_field_count:<n>`` (not
    exactly 5 fields), field_too_long / control_characters (fields named as in TAOBAO_FIELDS),
    ``unknown_event_type:<value>`` (a behaviour code outside pv/cart/fav/buy). The split and the
    cleaned fields are columns of their own, computed once (see ``parse_jsonl``).
    """
    parts = F.split(without_bom(F.col("value")), ",", -1)
    fields = {name: F.col(_cleaned(name)) for name in TAOBAO_FIELDS}
    user_id, item_id, category_id, behavior, ts = fields.values()
    mapping = F.create_map(*[F.lit(x) for kv in TAOBAO_BEHAVIORS.items() for x in kv])
    event_type = F.when(behavior.isNotNull(), F.try_element_at(mapping, behavior))
    parse_error = F.coalesce(
        F.when(F.col("_unreadable"), F.lit(BAD_ENCODING)),
        F.when(F.col("_n") != TAOBAO_FIELD_COUNT, bad_field_count(F.col("_n"))),
        first_text_problem(fields, FIELD_MAX_CHARS),
        F.when(behavior.isNotNull() & event_type.isNull(), reason_with_value("unknown_event_type", behavior)),
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
    return (
        lines_df.select("value", "source_file", is_unreadable_text(F.col("value")).alias("_unreadable"))
        .withColumn("_parts", parts)
        .select(
            "value",
            "source_file",
            "_unreadable",
            F.size("_parts").alias("_n"),
            *[
                clean_text(F.try_element_at("_parts", F.lit(i + 1))).alias(_cleaned(name))
                for i, name in enumerate(TAOBAO_FIELDS)
            ],
        )
        .select(
            raw_kept(F.col("value"), F.col("_unreadable")).alias("raw"),
            "source_file",
            parse_error.alias("parse_error"),
            struct.alias("f"),
        )
    )


# ---------------------------------------------------------------------------------- type, check


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
    """Add the typed event columns (nulls where a value cannot be read; ``reason`` says why).

    ``f`` holds cleaned text (the parsers trim it). The text of event_time, price and quantity is kept
    as ``_s_*`` so ``with_reason`` can tell a missing value from one that does not parse.
    """
    f = {name: F.col(f"f.{name}") for name in RAW_FIELDS}
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


def _time_checks(bounds: TimeBounds) -> list[Column]:
    event_time = F.col("event_time")
    checks = [
        F.when(event_time.isNull(), F.lit("bad_timestamp")),
        F.when(event_time < F.lit(bounds.min_time).cast("timestamp"), F.lit("timestamp_out_of_range")),
        F.when(event_time > F.lit(bounds.future_limit).cast("timestamp"), F.lit("future_timestamp")),
    ]
    if bounds.max_time is not None:
        checks.append(
            F.when(event_time >= F.lit(bounds.max_time).cast("timestamp"), F.lit("timestamp_out_of_range"))
        )
    return checks


def with_reason(typed_df: DataFrame, bounds: TimeBounds) -> DataFrame:
    """``reason`` = the first failed check (null for a valid row), in a fixed order of precedence."""
    price_text, price = F.col("_s_price"), F.col("price")
    checks = [
        F.col("parse_error"),
        *[
            F.when(
                F.col(name if name != "event_time" else "_s_event_time").isNull(),
                F.lit(missing_field(name)),
            )
            for name in REQUIRED_FIELDS
        ],
        F.when(
            ~F.col("event_type").isin(*EVENT_TYPES),
            reason_with_value("unknown_event_type", F.col("event_type")),
        ),
        *_time_checks(bounds),
        F.when(
            price_text.isNotNull() & (price.isNull() | F.isnan(price) | (F.abs(price) == float("inf"))),
            F.lit("bad_price"),
        ),
        F.when(price < 0, F.lit("negative_price")),
        F.when(price > MAX_PRICE, F.lit("price_out_of_range")),
        F.when(F.col("_s_quantity").isNotNull() & F.col("quantity").isNull(), F.lit("bad_quantity")),
        F.when(
            F.col("channel").isNotNull() & ~F.col("channel").isin(*EVENT_CHANNELS),
            reason_with_value("unknown_channel", F.col("channel")),
        ),
    ]
    return typed_df.withColumn("reason", F.coalesce(*checks)).drop(
        "parse_error", "_s_event_time", "_s_price", "_s_quantity"
    )


def filter_to_dates(df: DataFrame, days: Sequence[date]) -> DataFrame:
    """Keep rows of the given event dates plus rows that cannot be dated in range (bad or missing time,
    out of range), so a bad row is never lost by a ``--date`` filter; those are idempotent to quarantine."""
    undated = F.col("event_date").isNull() | F.col("reason").isin(*UNDATED_REASONS)
    return df.filter(undated | F.col("event_date").isin(*[F.lit(d) for d in days]))


# ---------------------------------------------------------------------------------- dedupe, rows


def with_content_hash(df: DataFrame) -> DataFrame:
    """``content_hash``: sha256 of the parsed event content (everything but id and provenance)."""
    return df.withColumn("content_hash", F.sha2(F.to_json(F.struct(*CONTENT_COLUMNS)), 256))


def event_hashes(events_df: DataFrame) -> DataFrame:
    """``event_id, content_hash`` of bronze/events rows: what ``with_event_status`` compares against."""
    return with_content_hash(events_df).select("event_id", "content_hash")


def with_event_status(batch_df: DataFrame, lake_ids_df: DataFrame) -> DataFrame:
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
            F.lit(DUPLICATE_IN_LAKE),
        )
        .when(F.col("_lake_hash").isNotNull() | (F.col("content_hash") != winner), F.lit(QUARANTINED))
        .when(F.row_number().over(by_id) > 1, F.lit(DUPLICATE_IN_BATCH))
        .otherwise(F.lit(ACCEPTED))
    )
    valid = (
        valid.withColumn("status", status)
        .withColumn("reason", F.when(F.col("status") == QUARANTINED, F.lit(CONFLICT)))
        .drop("_lake_hash")
    )
    invalid = batch_df.filter(F.col("reason").isNotNull()).withColumn("status", F.lit(QUARANTINED))
    return valid.unionByName(invalid, allowMissingColumns=True)


def to_event_rows(classified_df: DataFrame, ingested_at: datetime) -> DataFrame:
    """Accepted rows in the ``bronze/events`` layout."""
    return (
        classified_df.filter(F.col("status") == ACCEPTED)
        .withColumn("ingested_at", F.lit(ingested_at).cast("timestamp"))
        .select(*EVENT_COLUMNS)
    )
