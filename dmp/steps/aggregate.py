"""bronze/events -> silver/user_daily: one row per user x date x store x brand x category.

Counters are per event type (views, clicks, searches, carts, cart_removes, favs, orders,
coupon_receives, coupon_redeems). ``gmv`` is the sum of price x quantity over ``order`` events
(quantity null -> 1, price null -> 0), computed in integer cents so that it is exact and does not
depend on the order Spark adds rows in (each event's price is rounded half-up to cents first), then
stored as a double (cents / 100) as the USER_DAILY schema says. The tag state converts it back to integer cents.

Each date is its own partition, written with replaceWhere on exactly the dates being processed:
re-running a date replaces it. A date with no events writes an empty partition (the replaceWhere
deletes whatever that date held before and adds nothing), so re-aggregating after a bronze fix never
leaves stale rows behind. A ``--from/--to`` range is computed in one Spark pass (dates are
independent, so this equals running them one by one, minus 30 job start-ups for a month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk
from dmp.spark.schemas import USER_DAILY

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


def order_amount_cents_col() -> Column:
    """price x quantity of an order event in integer cents (quantity null -> 1, price null -> 0); 0 otherwise.

    The price is rounded half-up to cents first (a DECIMAL(18,2) cast), so the sum is exact and does
    not depend on the order rows are added in; summing longs also avoids Spark's slow wide-decimal sum.
    """
    price_cents = (F.coalesce(F.col("price"), F.lit(0.0)).cast(MONEY) * 100).cast("long")
    qty = F.coalesce(F.col("quantity"), F.lit(1)).cast("long")
    return F.when(F.col("event_type") == "order", price_cents * qty).otherwise(F.lit(0).cast("long"))


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
    return out.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in USER_DAILY.fields])


@dataclass(frozen=True)
class AggregateResult:
    day: date
    events: int
    rows: int


def aggregate_days(
    spark: SparkSession, lake: str, days: list[date], *, skip_checks: bool = False
) -> list[AggregateResult]:
    """Read bronze/events for ``days``, replace exactly those silver/user_daily partitions, gate them.

    All given days go through one Spark job (a backfill of a month is one scan, not 30 start-ups);
    the replaceWhere covers every given day, so a day without events ends up as an empty partition.
    Days are independent, so this is the same result as running them one at a time.
    """
    if not days:
        return []
    if not lk.table_exists(spark, lake, tables.EVENTS):
        raise DmpError(
            f"table {tables.table_path(lake, tables.EVENTS)} does not exist: run `dmp ingest` before `dmp aggregate`"
        )
    wanted = [F.lit(d).cast("date") for d in sorted(set(days))]
    events_df = lk.read_table(spark, lake, tables.EVENTS).filter(F.col("event_date").isin(wanted))
    lk.overwrite_partitions(
        build_user_daily(events_df),
        lake,
        tables.USER_DAILY,
        ["event_date"],
        lk.replace_where_condition("event_date", days),
    )
    # Per-day counts from the partitions just written (a narrow read of the counter columns): cheaper
    # than caching the aggregate to count it, and it reports what the table really holds.
    written = lk.read_table(spark, lake, tables.USER_DAILY).filter(F.col("event_date").isin(wanted))
    n_events = sum((F.col(c) for c in COUNTERS), F.lit(0))
    per_day = {
        r["event_date"]: (int(r["events"]), int(r["rows"]))
        for r in written.groupBy("event_date")
        .agg(F.sum(n_events).alias("events"), F.count(F.lit(1)).alias("rows"))
        .collect()
    }
    if not skip_checks:
        from dmp.steps.quality import run_gate

        run_gate(written, "silver_user_daily")
    return [
        AggregateResult(day=d, events=per_day.get(d, (0, 0))[0], rows=per_day.get(d, (0, 0))[1]) for d in days
    ]


def aggregate_day(spark: SparkSession, lake: str, day: date, *, skip_checks: bool = False) -> AggregateResult:
    """One date: bronze/events of ``day`` -> its silver/user_daily partition."""
    return aggregate_days(spark, lake, [day], skip_checks=skip_checks)[0]
