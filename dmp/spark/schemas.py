"""Schemas of the lake tables (design.md §3 is the contract; columns may be added, never renamed)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

EVENTS = StructType(
    [
        StructField("event_id", StringType(), False),
        StructField("event_time", TimestampType(), False),
        StructField("event_date", DateType(), False),
        StructField("user_id", StringType(), False),
        StructField("event_type", StringType(), False),
        StructField("sku_id", StringType(), True),
        StructField("store_id", StringType(), True),
        StructField("brand_id", StringType(), True),
        StructField("category_id", StringType(), True),
        StructField("price", DoubleType(), True),
        StructField("quantity", IntegerType(), True),
        StructField("channel", StringType(), True),
        StructField("coupon_id", StringType(), True),
        StructField("source_file", StringType(), False),
        StructField("ingested_at", TimestampType(), False),
    ]
)

EVENTS_QUARANTINE = StructType(
    [
        StructField("raw", StringType(), True),
        StructField("reason", StringType(), False),
        StructField("source_file", StringType(), False),
        StructField("ingested_at", TimestampType(), False),
        StructField("ingest_date", DateType(), False),
    ]
)

IDENTITIES = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("id_value", StringType(), False),
        StructField("source_file", StringType(), True),
        StructField("ingested_at", TimestampType(), True),
    ]
)

USER_DAILY = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("event_date", DateType(), False),
        StructField("store_id", StringType(), True),
        StructField("brand_id", StringType(), True),
        StructField("category_id", StringType(), True),
        StructField("views", LongType(), False),
        StructField("clicks", LongType(), False),
        StructField("searches", LongType(), False),
        StructField("carts", LongType(), False),
        StructField("cart_removes", LongType(), False),
        StructField("favs", LongType(), False),
        StructField("orders", LongType(), False),
        StructField("gmv", DoubleType(), False),
        StructField("coupon_receives", LongType(), False),
        StructField("coupon_redeems", LongType(), False),
    ]
)

USER_TAGS = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("as_of_date", DateType(), False),
        StructField("first_seen_date", DateType(), True),
        StructField("last_active_date", DateType(), True),
        StructField("last_order_date", DateType(), True),
        StructField("recency_days", IntegerType(), True),
        StructField("frequency_90d", LongType(), False),
        StructField("monetary_90d", DoubleType(), False),
        StructField("avg_order_value_90d", DoubleType(), True),
        StructField("views_30d", LongType(), False),
        StructField("carts_30d", LongType(), False),
        StructField("orders_30d", LongType(), False),
        StructField("active_days_30d", IntegerType(), False),
        StructField("lifecycle_stage", StringType(), False),
        StructField("top_category_ids", ArrayType(StringType()), False),
        StructField("top_brand_ids", ArrayType(StringType()), False),
        StructField("top_store_ids", ArrayType(StringType()), False),
        StructField("consumption_level", IntegerType(), False),
        StructField("coupon_sensitivity", DoubleType(), True),
        StructField("is_cart_abandoner", BooleanType(), False),
    ]
)

AUDIENCE_PACKS = StructType(
    [
        StructField("segment", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("user_id", StringType(), False),
        StructField("group", StringType(), False),  # treatment | holdout
        StructField("score", DoubleType(), True),
        StructField("reason", StringType(), True),
        StructField("spec_hash", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("deliverable", BooleanType(), False),
        # The person the account belongs to (silver/persons; the account's own person id when it is
        # in no stitched person). A person is in a pack once; null in rows written before the column.
        StructField("person_id", StringType(), True),
    ]
)

INGEST_RUNS_SCHEMA = StructType(
    [
        StructField("run_id", StringType(), False),
        StructField("source", StringType(), False),
        StructField("format", StringType(), False),
        StructField("dates", ArrayType(DateType()), True),
        StructField("files", IntegerType(), False),
        # Nullable: rows of older runs, and steps that do not count files apart, have none.
        StructField("files_ingested", IntegerType(), True),
        StructField("files_quarantined", IntegerType(), True),
        StructField("file_reasons", MapType(StringType(), LongType()), True),
        StructField("rows_read", LongType(), False),
        StructField("accepted", LongType(), False),
        StructField("quarantined", LongType(), False),
        StructField("quarantine_new", LongType(), False),
        StructField("duplicates", LongType(), False),
        StructField("duplicates_in_batch", LongType(), False),
        StructField("duplicates_in_lake", LongType(), False),
        StructField("out_of_scope", LongType(), False),
        StructField("blank_lines", LongType(), False),
        StructField("reasons", MapType(StringType(), LongType()), True),
        StructField("reconciled", BooleanType(), False),
        StructField("checks", StringType(), False),
        StructField("status", StringType(), False),
        StructField("message", StringType(), True),
        StructField("table_version", LongType(), True),
        StructField("started_at", TimestampType(), False),
        StructField("finished_at", TimestampType(), False),
        # Rows of erased accounts (dmp forget) left out; null in rows written before erasure existed.
        StructField("erased", LongType(), True),
    ]
)

# bronze/events_quarantine: the contract's columns (dmp/schemas.py) plus what makes rows traceable
# and idempotent.
EVENTS_QUARANTINE_SCHEMA = StructType(
    [
        *EVENTS_QUARANTINE.fields,
        StructField("quarantine_id", StringType(), False),
        StructField("event_id", StringType(), True),
        StructField("run_id", StringType(), False),
    ]
)

IDENTITIES_QUARANTINE_SCHEMA = StructType(
    [f for f in EVENTS_QUARANTINE_SCHEMA.fields if f.name != "event_id"]
    + [StructField("user_id", StringType(), True)]
)

# ops/pack_runs: one row per (segment, run_date), replaced on rebuild.
PACK_RUNS = StructType(
    [
        StructField("segment", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("kind", StringType(), False),
        StructField("size", LongType(), False),
        StructField("holdout_size", LongType(), False),
        StructField("treatment_size", LongType(), False),
        StructField("deliverable", BooleanType(), False),
        StructField("reason", StringType(), True),
        StructField("spec_hash", StringType(), False),
        StructField("metrics_json", StringType(), True),
        StructField("built_at", TimestampType(), False),
        # An uplift pack's held-out Qini and uplift-curve areas (dmp.stats.qini; null for other
        # kinds, and in rows written before these columns existed: the write adds them, mergeSchema).
        StructField("qini_auc", DoubleType(), True),
        StructField("uplift_auc", DoubleType(), True),
        # Pack persons with an account whose own holdout hash names the other group (the person's
        # oldest account decides; docs/identity.md). Null before persons-aware packs.
        StructField("crossovers", LongType(), True),
    ]
)

# gold/pack_overlap: one row per unordered pair of a run date's packs (dmp.transforms.overlap).
PACK_OVERLAP = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("segment_a", StringType(), False),
        StructField("segment_b", StringType(), False),
        StructField("size_a", LongType(), False),
        StructField("size_b", LongType(), False),
        StructField("users_both", LongType(), False),
        StructField("share_a", DoubleType(), True),
        StructField("share_b", DoubleType(), True),
    ]
)

# ops/delivery_state: what an incremental channel holds after each run (the base of the next diff).
DELIVERY_STATE_COLUMNS: tuple[str, ...] = (
    "id_type",
    "user_key",
    "coupon_id",
    "value",
    "threshold",
    "valid_from",
    "valid_to",
)

DELIVERY_STATE_SCHEMA = StructType(
    [
        StructField("channel", StringType(), False),
        StructField("segment", StringType(), False),
        StructField("run_date", DateType(), False),
        *[StructField(c, StringType(), True) for c in DELIVERY_STATE_COLUMNS],
    ]
)

DELIVERIES_SCHEMA = StructType(
    [
        StructField("segment", StringType(), False),
        StructField("channel", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("attempt", IntegerType(), False),
        StructField("kind", StringType(), False),  # full | add | remove | manifest | none
        StructField("path", StringType(), False),
        StructField("rows", LongType(), True),
        StructField("sha256", StringType(), True),
        StructField("status", StringType(), False),  # success | failed | skipped
        StructField("delivered_at", TimestampType(), False),
        StructField("message", StringType(), True),
    ]
)

SUPPRESSION_LISTS_SCHEMA = StructType(
    [
        StructField("list_name", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("source_file", StringType(), True),
        StructField("loaded_at", TimestampType(), True),
    ]
)

# gold/uplift_results: long format, one row per (segment, channel, run_date, metric).
UPLIFT_RESULTS_SCHEMA = StructType(
    [
        StructField("segment", StringType(), False),
        StructField("channel", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("metric", StringType(), False),
        StructField("value", DoubleType(), True),
        StructField("ci_low", DoubleType(), True),
        StructField("ci_high", DoubleType(), True),
        StructField("n_treatment", LongType(), False),
        StructField("n_holdout", LongType(), False),
        StructField("window_days", IntegerType(), False),
        StructField("evaluated_at", TimestampType(), False),
    ]
)

# ------------------------------------------------------------------ identity stitching (docs/identity.md)

# silver/persons: one row per account of silver/identities; first_seen_date (the run date the account
# was first stitched) decides which member is the oldest, whose user_id names the person.
PERSONS_SCHEMA = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("person_id", StringType(), False),
        StructField("first_seen_date", DateType(), False),
    ]
)

# silver/person_identifiers: every identifier of a person's accounts (raw, as in silver/identities)
# but those in ops/identity_violations.
PERSON_IDENTIFIERS_SCHEMA = StructType(
    [
        StructField("person_id", StringType(), False),
        StructField("id_type", StringType(), False),
        StructField("id_value", StringType(), False),
    ]
)

# ops/identity_violations: identifiers a guard stopped from linking, by hash (never the raw value).
IDENTITY_VIOLATIONS_SCHEMA = StructType(
    [
        StructField("run_date", DateType(), False),
        StructField("id_type", StringType(), False),
        StructField("value_hash", StringType(), False),
        StructField("accounts", LongType(), False),
        StructField("rule", StringType(), False),
    ]
)

# silver/consents: the latest consent event per (user_id, purpose) (docs/privacy.md). ``granted``
# false = withdrawn or refused; ``at`` is when the user decided (UTC), ``source`` where (app, CRM …).
CONSENTS_SCHEMA = StructType(
    [
        StructField("user_id", StringType(), False),
        StructField("purpose", StringType(), False),
        StructField("granted", BooleanType(), False),
        StructField("at", TimestampType(), False),
        StructField("source", StringType(), True),
        StructField("source_file", StringType(), True),
        StructField("ingested_at", TimestampType(), True),
    ]
)

# bronze/consents_quarantine: a bad consent line and its reason, laid out like identities' quarantine.
CONSENTS_QUARANTINE_SCHEMA = IDENTITIES_QUARANTINE_SCHEMA


# ------------------------------------------------------------------ erasure (docs/privacy.md "Erasure")

# ops/erased_users: the tombstones. user_hash = sha256("dmp-erasure|" + user_id), never the id.
ERASED_USERS_SCHEMA = StructType(
    [
        StructField("user_hash", StringType(), False),
        StructField("request_id", StringType(), False),
        StructField("erased_at", TimestampType(), False),
    ]
)

# ops/erased_identifiers: hashes of the erased accounts' identifiers, same salt. kind "mention": the
# mention key raw text is matched by; "delivery_key": a user_key a channel may hold (delivery_state).
ERASED_IDENTIFIERS_SCHEMA = StructType(
    [
        StructField("value_hash", StringType(), False),
        StructField("kind", StringType(), False),
        StructField("request_id", StringType(), False),
        StructField("erased_at", TimestampType(), False),
    ]
)

# ops/erasure_requests: one row per request (no raw id). tables_json: {table: {"status", "rows"}}
# (status deleted | nothing | missing | kept_until_delivery); vacuum_json: what the vacuum purged.
ERASURE_REQUESTS_SCHEMA = StructType(
    [
        StructField("request_id", StringType(), False),
        StructField("requested_at", TimestampType(), False),
        StructField("accounts", LongType(), False),
        StructField("tables_json", StringType(), False),
        StructField("finished_at", TimestampType(), True),
        StructField("vacuumed_at", TimestampType(), True),
        StructField("retention_hours", DoubleType(), True),
        StructField("vacuum_json", StringType(), True),
    ]
)

# ops/channel_contacts: per channel and run date, every treated user of a pack of a channel with
# ``priority`` or ``frequency_cap`` (dmp.transforms.contacts) and what became of them: delivered, or
# lost to ``priority`` / ``frequency_cap``. Partitioned by (channel, run_date); one delivery replaces
# exactly its (channel, run_date, segment) rows, so a rerun replaces itself. The cap counts the
# ``delivered`` rows by person (person_id, else user_id).
CHANNEL_CONTACTS_PARTITIONS: tuple[str, ...] = ("channel", "run_date")
CHANNEL_CONTACTS_SCHEMA = StructType(
    [
        StructField("channel", StringType(), False),
        StructField("run_date", DateType(), False),
        StructField("segment", StringType(), False),
        StructField("user_id", StringType(), False),
        StructField("person_id", StringType(), True),
        StructField("outcome", StringType(), False),  # delivered | priority | frequency_cap
    ]
)
