"""bronze/events -> silver/user_daily: one row per user x date x store x brand x category.

Counters are per event type (views, clicks, searches, carts, cart_removes, favs, orders,
coupon_receives, coupon_redeems). ``gmv`` is the sum of price x quantity over ``order`` events
(quantity null -> 1, price null -> 0), computed in DECIMAL(18,2) so that it is exact and does not
depend on the order Spark adds rows in (each event's amount is rounded half-up to cents first), then
stored as a double as the USER_DAILY schema says. The tag state converts it back to integer cents.

One date partition per run, written with replaceWhere: re-running a date replaces it. A date with
no events writes an empty partition (the replaceWhere deletes whatever that date held before and
adds nothing), so re-aggregating after a bronze fix never leaves stale rows behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp import lake as lk
from dmp.errors import DmpError
from dmp.schemas import USER_DAILY

KEY_COLS: list[str] = ["user_id", "event_date", "store_id", "brand_id", "category_id"]

# user_daily counter column -> the event type it counts.
COUNTERS: dict[str, str] = {
    "views": "view",
    "clicks": "click",
    "searches": "search",
    "carts": "cart_add",
    "cart_removes": "cart_remove",
    "favs": "favorite",
    "orders": "order",
    "coupon_receives": "coupon_receive",
    "coupon_redeems": "coupon_redeem",
}

MONEY = "decimal(18,2)"


def order_amount_col() -> Column:
    """price x quantity of an order event in exact cents (quantity null -> 1, price null -> 0); 0 otherwise."""
    price = F.coalesce(F.col("price"), F.lit(0.0)).cast(MONEY)
    qty = F.coalesce(F.col("quantity"), F.lit(1)).cast("decimal(10,0)")
    return F.when(F.col("event_type") == "order", (price * qty).cast(MONEY)).otherwise(F.lit(0).cast(MONEY))


def build_user_daily(events_df: DataFrame) -> DataFrame:
    """Pure transform: events (dmp.schemas.EVENTS columns) -> rows with exactly the USER_DAILY schema."""
    aggs = [
        F.sum(F.when(F.col("event_type") == etype, F.lit(1)).otherwise(F.lit(0))).cast("long").alias(name)
        for name, etype in COUNTERS.items()
    ]
    aggs.append(F.sum(order_amount_col()).cast(MONEY).alias("_gmv_dec"))
    out = events_df.groupBy(*KEY_COLS).agg(*aggs).withColumn("gmv", F.col("_gmv_dec").cast("double"))
    return out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in USER_DAILY.fields])


@dataclass(frozen=True)
class AggregateResult:
    day: date
    events: int
    rows: int


def aggregate_day(
    spark: SparkSession, lake: str, day: date, *, skip_checks: bool = False
) -> AggregateResult:
    """Read bronze/events for ``day``, write its silver/user_daily partition, gate it, return counts."""
    if not lk.table_exists(spark, lake, lk.EVENTS):
        raise DmpError(
            f"table {lk.table_path(lake, lk.EVENTS)} does not exist: run `dmp ingest` before `dmp aggregate`"
        )
    events_df = lk.read_table(spark, lake, lk.EVENTS).filter(F.col("event_date") == F.lit(day))
    daily_df = build_user_daily(events_df).persist()
    try:
        n_rows = daily_df.count()
        lk.overwrite_partitions(
            daily_df,
            lake,
            lk.USER_DAILY,
            ["event_date"],
            lk.replace_where_condition("event_date", [day]),
        )
        n_events = (
            daily_df.agg(
                F.coalesce(F.sum(sum((F.col(c) for c in COUNTERS), F.lit(0))), F.lit(0)).alias("n")
            ).first()["n"]
        )
    finally:
        daily_df.unpersist()
    if not skip_checks:
        from dmp.quality import run_gate

        written = lk.read_table(spark, lake, lk.USER_DAILY).filter(F.col("event_date") == F.lit(day))
        run_gate(written, "silver_user_daily")
    return AggregateResult(day=day, events=int(n_events), rows=int(n_rows))
