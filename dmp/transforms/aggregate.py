"""bronze/events -> silver/user_daily rows: one per user x date x store x brand x category (pure).

Counters are per event type (views, clicks, searches, carts, cart_removes, favs, orders,
coupon_receives, coupon_redeems). ``gmv`` is the sum of price x quantity over ``order`` events
(quantity null -> 1, price null -> 0), computed in integer cents so that it is exact and does not
depend on the order Spark adds rows in (each event's price is rounded half-up to cents first), then
stored as a double (cents / 100) as the USER_DAILY schema says. The tag state converts it back to
integer cents with the same ``to_cents``.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.vocab import DAILY_COUNTERS
from dmp.spark.schemas import USER_DAILY
from dmp.transforms.columns import select_schema

KEY_COLS: list[str] = ["user_id", "event_date", "store_id", "brand_id", "category_id"]

# user_daily counter column -> the event type it counts.
COUNTERS: dict[str, str] = {column: event_type for event_type, column in DAILY_COUNTERS.items()}

# Money is rounded to cents as this decimal before it becomes an integer number of cents.
MONEY = "decimal(18,2)"


def to_cents(amount: Column) -> Column:
    """A money amount (double) -> integer cents, rounded half-up (a DECIMAL(18,2) cast): exact sums."""
    return (amount.cast(MONEY) * 100).cast("long")


def order_amount_cents_col() -> Column:
    """price x quantity of an order event in integer cents (quantity null -> 1, price null -> 0); 0 otherwise.

    The price is rounded half-up to cents first (a DECIMAL(18,2) cast), so the sum is exact and does
    not depend on the order rows are added in; summing longs also avoids Spark's slow wide-decimal sum.
    """
    price_cents = to_cents(F.coalesce(F.col("price"), F.lit(0.0)))
    qty = F.coalesce(F.col("quantity"), F.lit(1)).cast("long")
    return F.when(F.col("event_type") == "order", price_cents * qty).otherwise(F.lit(0).cast("long"))


def events_counted_col() -> Column:
    """Events a user_daily row stands for: the sum of its counters (every event type is counted)."""
    return sum((F.col(c) for c in COUNTERS), F.lit(0))


def build_user_daily(events_df: DataFrame) -> DataFrame:
    """Pure transform: events (dmp.spark.schemas.EVENTS columns) -> rows with exactly the USER_DAILY schema.

    ``gmv`` = exact cents / 100 as a double: the same value as the DECIMAL(18,2) sum cast to double.
    """
    aggs = [
        F.sum(F.when(F.col("event_type") == etype, F.lit(1)).otherwise(F.lit(0))).cast("long").alias(name)
        for name, etype in COUNTERS.items()
    ]
    aggs.append(F.sum(order_amount_cents_col()).alias("_gmv_cents"))
    out = (
        events_df.groupBy(*KEY_COLS)
        .agg(*aggs)
        .withColumn("gmv", F.col("_gmv_cents").cast("double") / F.lit(100.0))
    )
    return select_schema(out, USER_DAILY)
