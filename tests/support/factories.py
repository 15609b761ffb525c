"""Shared row builders and hand-made histories for the tests (events, user_daily, tag answers).

Two histories with answers worked out by hand:

* ``EVENT_ROWS``: two days of events whose user_daily rows are known (tests of the aggregate and of
  the bronze gate);
* ``TAG_ROWS``: one user per tag edge case around as_of date ``T`` (7-day: T-6 in, T-7 out; 30-day:
  T-29 in, T-30 out; 90-day: T-89 in, T-90 out) and the expected snapshot, by column group
  (``RFM``, ``ACTIVITY``, ``STAGES``, ``TOPS``) so a failure names the tags that differ.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
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
)

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark.schemas import CONSENTS_SCHEMA, EVENTS, USER_TAGS
from dmp.transforms.tag_state import SCORE_COLUMNS

D1 = date(2026, 3, 1)
D2 = date(2026, 3, 2)
STAMP = datetime(2026, 3, 20, 0, 0, 0)
CONSENTED_AT = datetime(2026, 1, 1, 9, 0, 0)
BOTH_PURPOSES = ("ad_personalization", "marketing_messages")


def write_consents(spark: SparkSession, lake: str, rows: list[tuple[str, str, bool, datetime]]) -> None:
    """Replace ``silver/consents`` with ``(user_id, purpose, granted, at)`` rows (source ``test``)."""
    full = [(u, p, g, at, "test", "consents.jsonl", STAMP) for u, p, g, at in rows]
    df = spark.createDataFrame(full, CONSENTS_SCHEMA)
    df.write.format("delta").mode("overwrite").save(tables.table_path(lake, tables.CONSENTS))


def grant_all(spark: SparkSession, lake: str, user_ids: list[str]) -> None:
    """Every user has granted both purposes (tests that are not about consent)."""
    write_consents(
        spark, lake, [(u, p, True, CONSENTED_AT) for u in sorted(set(user_ids)) for p in BOTH_PURPOSES]
    )


def make_event(
    event_id: str,
    day: date,
    user: str,
    etype: str,
    store: str | None = "S001",
    brand: str | None = "B001",
    category: str | None = "C01",
    price: float | None = None,
    quantity: int | None = None,
    coupon: str | None = None,
) -> tuple:
    """One bronze/events row (EVENTS schema order)."""
    ts = datetime(day.year, day.month, day.day, 10, 0, 0)
    return (
        event_id,
        ts,
        day,
        user,
        etype,
        "K1",
        store,
        brand,
        category,
        price,
        quantity,
        "app",
        coupon,
        "t.jsonl",
        STAMP,
    )


def write_events(spark: SparkSession, lake: str, rows: list[tuple]) -> DataFrame:
    df = spark.createDataFrame(rows, EVENTS)
    days = sorted({r[2] for r in rows})
    lk.overwrite_partitions(
        df, lake, tables.EVENTS, ["event_date"], lk.replace_where_condition("event_date", days)
    )
    return df


def write_user_daily(lake: str, user_daily_df: DataFrame, days: list[date]) -> None:
    """Replace those days of silver/user_daily with ``user_daily_df`` (as the aggregate step does)."""
    lk.overwrite_partitions(
        user_daily_df, lake, tables.USER_DAILY, ["event_date"], lk.replace_where_condition("event_date", days)
    )


def delta_file_stats(table_path: str) -> list[dict]:
    """The statistics of every file a local Delta table's log has added."""
    log = Path(table_path) / "_delta_log"
    return [
        json.loads(json.loads(line)["add"]["stats"])
        for f in sorted(log.glob("*.json"))
        for line in f.read_text().splitlines()
        if line.startswith('{"add"')
    ]


def comparable_state(df: DataFrame) -> DataFrame:
    """The state's ranked score arrays as strings (chispa sorts rows by hashing array columns)."""
    for c in SCORE_COLUMNS.values():
        if c in df.columns:
            df = df.withColumn(c, F.to_json(c))
    return df


def check(df: DataFrame, schema: StructType, rows: list[tuple]) -> None:
    """``df``'s columns of ``schema`` hold exactly ``rows`` (any row order)."""
    expected = df.sparkSession.createDataFrame(rows, schema)
    assert_df_equality(df.select(*schema.fieldNames()), expected, ignore_row_order=True, ignore_nullable=True)


# ------------------------------------------------------------------------ aggregate history (D1, D2)

EVENT_ROWS = [
    make_event("e01", D1, "u1", "view"),
    make_event("e02", D1, "u1", "view"),
    make_event("e03", D1, "u1", "cart_add", price=10.5, quantity=1),
    make_event("e04", D1, "u1", "order", price=10.5, quantity=2),  # 21.00
    make_event("e05", D1, "u1", "order", price=None, quantity=3),  # price null -> 0
    make_event("e06", D1, "u1", "order", price=3.33, quantity=None),  # quantity null -> 1: 3.33
    make_event("e07", D1, "u1", "view", store="S101", brand="B101", category="C02", price=99.0),
    make_event("e08", D1, "u2", "search", store=None, brand=None, category=None),
    make_event("e09", D1, "u2", "click", store=None, brand=None, category=None),
    make_event("e10", D1, "u2", "coupon_receive", category=None, coupon="CP1"),
    make_event("e11", D1, "u2", "coupon_redeem", category=None, coupon="CP1"),
    make_event("e12", D1, "u2", "favorite"),
    make_event("e13", D1, "u2", "cart_remove"),
    make_event("e14", D1, "u2", "favorite"),
    make_event("e15", D2, "u1", "order", price=1.0, quantity=1),
]


#          user  date store  brand  cat    views clicks searches carts c_rem favs orders gmv  c_rec c_red
EXPECTED_D1 = [
    ("u1", D1, "S001", "B001", "C01", 2, 0, 0, 1, 0, 0, 3, 24.33, 0, 0),
    ("u1", D1, "S101", "B101", "C02", 1, 0, 0, 0, 0, 0, 0, 0.0, 0, 0),
    ("u2", D1, None, None, None, 0, 1, 1, 0, 0, 0, 0, 0.0, 0, 0),
    ("u2", D1, "S001", "B001", None, 0, 0, 0, 0, 0, 0, 0, 0.0, 1, 1),
    ("u2", D1, "S001", "B001", "C01", 0, 0, 0, 0, 1, 2, 0, 0.0, 0, 0),
]


# ------------------------------------------------------------------------------ tag history (at T)

T = date(2026, 6, 30)


def d(n: int) -> date:
    """T - n days."""
    return T - timedelta(days=n)


def ev(
    i: int, n: int, user: str, etype: str, store="S001", brand="B001", cat="C01", price=None, qty=None
) -> tuple:
    return make_event(f"e{i:03d}", d(n), user, etype, store, brand, cat, price, qty)


TAG_ROWS = [
    # ua: long-time buyer. order at T-95 is outside 90d, T-89 inside; view T-30 (C05) outside 30d, T-29 inside.
    ev(1, 100, "ua", "view"),
    ev(2, 95, "ua", "order", price=50.0, qty=1),
    ev(3, 89, "ua", "order", price=20.0, qty=1),
    ev(4, 30, "ua", "view", cat="C05"),
    ev(5, 29, "ua", "view"),
    ev(6, 10, "ua", "order", price=30.0, qty=2),
    ev(7, 5, "ua", "coupon_receive", cat=None),
    ev(8, 5, "ua", "coupon_receive", cat=None),
    ev(9, 3, "ua", "coupon_redeem", cat=None),
    ev(10, 1, "ua", "view", store="S101", brand="B101", cat="C03"),
    # ub: new, carted at T-6 (inside 7d), never ordered; top-id ties broken by id.
    ev(11, 6, "ub", "cart_add", store="S002", brand="B002", cat="C02", price=15.0),
    ev(12, 2, "ub", "view", store="S102", brand="B102", cat="C04"),
    ev(13, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(14, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(15, 2, "ub", "view", store="S103", brand="B103", cat="C06"),
    ev(16, 2, "ub", "view", store="S101", brand="B101", cat="C05"),
    # uc: carted at T-7 (outside 7d): not an abandoner.
    ev(17, 40, "uc", "order", store="S002", brand="B002", cat="C02", price=5.0, qty=1),
    ev(18, 7, "uc", "cart_add", store="S002", brand="B002", cat="C02"),
    # ud: silent (last event 60 days ago).
    ev(19, 120, "ud", "view"),
    ev(20, 60, "ud", "order", price=100.0, qty=1),
    # ue: only activity at T-90, just outside every window: churned.
    ev(21, 90, "ue", "order", store="S101", brand="B101", cat="C03", price=7.5, qty=1),
    ev(22, 90, "ue", "coupon_receive", store="S101", brand="B101", cat=None),
    # ug: ordered at T-7 (outside 7d), carted today: abandoner; same spend as ua (tie).
    ev(23, 7, "ug", "order", price=80.0, qty=1),
    ev(24, 0, "ug", "cart_add"),
    ev(25, 1, "ug", "coupon_receive", cat=None),
    ev(26, 1, "ug", "coupon_receive", cat=None),
    ev(27, 1, "ug", "coupon_receive", cat=None),
    ev(28, 1, "ug", "coupon_receive", cat=None),
    ev(29, 0, "ug", "coupon_redeem", cat=None),
    # uh: first seen yesterday.
    ev(30, 1, "uh", "view"),
    # uf: only after T: not in T's snapshot.
    ev(31, -1, "uf", "view"),
]

RFM = StructType(
    [
        StructField("user_id", StringType()),
        StructField("first_seen_date", DateType()),
        StructField("last_active_date", DateType()),
        StructField("last_order_date", DateType()),
        StructField("recency_days", IntegerType()),
        StructField("frequency_90d", LongType()),
        StructField("monetary_90d", DoubleType()),
        StructField("avg_order_value_90d", DoubleType()),
    ]
)
EXPECTED_RFM = [
    ("ua", d(100), d(1), d(10), 10, 2, 80.0, 40.0),
    ("ub", d(6), d(2), None, None, 0, 0.0, None),
    ("uc", d(40), d(7), d(40), 40, 1, 5.0, 5.0),
    ("ud", d(120), d(60), d(60), 60, 1, 100.0, 100.0),
    ("ue", d(90), d(90), d(90), 90, 0, 0.0, None),
    ("ug", d(7), d(0), d(7), 7, 1, 80.0, 80.0),
    ("uh", d(1), d(1), None, None, 0, 0.0, None),
]

ACTIVITY = StructType(
    [
        StructField("user_id", StringType()),
        StructField("views_30d", LongType()),
        StructField("carts_30d", LongType()),
        StructField("orders_30d", LongType()),
        StructField("active_days_30d", IntegerType()),
        StructField("is_cart_abandoner", BooleanType()),
        StructField("coupon_sensitivity", DoubleType()),
    ]
)
EXPECTED_ACTIVITY = [
    ("ua", 2, 0, 1, 5, False, 0.5),  # active days: T-29, T-10, T-5, T-3, T-1
    ("ub", 5, 1, 0, 2, True, None),
    ("uc", 0, 1, 0, 1, False, None),
    ("ud", 0, 0, 0, 0, False, None),
    ("ue", 0, 0, 0, 0, False, None),  # its coupon_receive at T-90 is outside 90d
    ("ug", 0, 1, 1, 3, True, 0.25),
    ("uh", 1, 0, 0, 1, False, None),
]

STAGES = StructType(
    [
        StructField("user_id", StringType()),
        StructField("lifecycle_stage", StringType()),
        StructField("consumption_level", IntegerType()),
    ]
)
# spenders (cents): uc 500 (rank 1), ua 8000 and ug 8000 (rank 2, tie), ud 10000 (rank 4); n = 4:
# level = 1 + floor(5 * (rank - 1) / 4) -> uc 1, ua 2, ug 2, ud 4
EXPECTED_STAGES = [
    ("ua", "active", 2),
    ("ub", "new", 0),
    ("uc", "active", 1),
    ("ud", "silent", 4),
    ("ue", "churned", 0),
    ("ug", "new", 2),
    ("uh", "new", 0),
]

TOPS = StructType(
    [
        StructField("user_id", StringType()),
        StructField("top_category_ids", ArrayType(StringType())),
        StructField("top_brand_ids", ArrayType(StringType())),
        StructField("top_store_ids", ArrayType(StringType())),
    ]
)
# default weights: view 1, cart_add 3, order 5, coupon_receive 1, coupon_redeem 2
EXPECTED_TOPS = [
    ("ua", ["C01", "C03"], ["B001", "B101"], ["S001", "S101"]),  # C01 = 1 + 5; B001 = 1 + 5 + 1 + 1 + 2
    ("ub", ["C02", "C06", "C04"], ["B002", "B103", "B101"], ["S002", "S103", "S101"]),  # 3, 3, 1 (id order)
    ("uc", ["C02"], ["B002"], ["S002"]),
    ("ud", [], [], []),
    ("ue", [], [], []),
    ("ug", ["C01"], ["B001"], ["S001"]),
    ("uh", ["C01"], ["B001"], ["S001"]),
]


# ---------------------------------------------------------------------------------------------
# gold/user_tags and silver/user_daily rows for the pack, lookalike and preview tests


def tag_row(user_id: str, as_of: date, **overrides: Any) -> dict[str, Any]:
    """One gold/user_tags row: seen 100 days ago, active yesterday, never ordered; override the rest."""
    row: dict[str, Any] = {
        "user_id": user_id,
        "as_of_date": as_of,
        "first_seen_date": as_of - timedelta(days=100),
        "last_active_date": as_of - timedelta(days=1),
        "last_order_date": None,
        "recency_days": None,
        "frequency_90d": 0,
        "monetary_90d": 0.0,
        "avg_order_value_90d": None,
        "views_30d": 0,
        "carts_30d": 0,
        "orders_30d": 0,
        "active_days_30d": 1,
        "lifecycle_stage": "active",
        "top_category_ids": [],
        "top_brand_ids": [],
        "top_store_ids": [],
        "consumption_level": 1,
        "coupon_sensitivity": None,
        "is_cart_abandoner": False,
    }
    unknown = set(overrides) - set(row)
    assert not unknown, f"not user_tags columns: {unknown}"
    row.update(overrides)
    return row


def tag_tuple(user_id: str, as_of: date, **overrides: Any) -> tuple:
    """:func:`tag_row` as a tuple in USER_TAGS column order."""
    row = tag_row(user_id, as_of, **overrides)
    return tuple(row[f.name] for f in USER_TAGS.fields)


def daily(
    user: str, day: date, store: str | None, brand: str | None, category: str | None, **counts: Any
) -> tuple:
    """One USER_DAILY row; counters default to 0, gmv to 10.0 per order."""
    cols = ["views", "clicks", "searches", "carts", "cart_removes", "favs", "orders"]
    vals = [int(counts.get(c, 0)) for c in cols]
    gmv = float(counts.get("gmv", 10.0 * counts.get("orders", 0)))
    return (user, day, store, brand, category, *vals, gmv, 0, 0)


def padded(rows: list[tuple], schema: StructType) -> list[tuple]:
    """Rows written for an older, shorter schema, with None for the nullable columns added since
    (e.g. gold/audience_packs' person_id)."""
    return [row + (None,) * (len(schema.fields) - len(row)) for row in rows]
