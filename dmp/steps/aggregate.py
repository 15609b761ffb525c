"""bronze/events -> silver/user_daily (the rows are ``dmp.transforms.aggregate.build_user_daily``).

Each date is its own partition, written with replaceWhere on exactly the dates being processed:
re-running a date replaces it. A date with no events writes an empty partition (the replaceWhere
deletes whatever that date held before and adds nothing), so re-aggregating after a bronze fix never
leaves stale rows behind. A ``--from/--to`` range is computed in one Spark pass (dates are
independent, so this equals running them one by one, minus 30 job start-ups for a month).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark.progress import phase
from dmp.transforms.aggregate import build_user_daily, events_counted_col
from dmp.transforms.columns import lit_date


@dataclass(frozen=True)
class AggregateResult:
    day: date
    events: int
    rows: int


def _per_day_counts(written_df: DataFrame) -> dict[date, tuple[int, int]]:
    """(events, rows) per date of the user_daily rows just written."""
    per_day = written_df.groupBy("event_date").agg(
        F.sum(events_counted_col()).alias("events"), F.count(F.lit(1)).alias("rows")
    )
    return {r["event_date"]: (int(r["events"]), int(r["rows"])) for r in per_day.collect()}


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
    wanted = [lit_date(d) for d in sorted(set(days))]
    events_df = lk.read_required(spark, lake, tables.EVENTS, "dmp ingest").filter(
        F.col("event_date").isin(wanted)
    )
    span = f"{min(days)} .. {max(days)}" if len(set(days)) > 1 else str(days[0])
    with phase("aggregate", f"bronze/events -> silver/user_daily, {len(wanted)} date(s) {span}"):
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
    per_day = _per_day_counts(written)
    if not skip_checks:
        from dmp.steps.quality import run_gate

        run_gate(written, "silver_user_daily")
    return [AggregateResult(d, *per_day.get(d, (0, 0))) for d in days]


def aggregate_day(spark: SparkSession, lake: str, day: date, *, skip_checks: bool = False) -> AggregateResult:
    """One date: bronze/events of ``day`` -> its silver/user_daily partition."""
    return aggregate_days(spark, lake, [day], skip_checks=skip_checks)[0]
