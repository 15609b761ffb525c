"""Schemas of the lake tables (design.md §3 is the contract; columns may be added, never renamed)."""

from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
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
    ]
)
