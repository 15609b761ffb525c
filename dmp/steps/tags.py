"""silver/user_daily -> gold/user_tag_state -> gold/user_tags, one snapshot per as_of_date.

The state is built incrementally from yesterday's state and four user_daily partitions
(``dmp.transforms.tag_state``) when that state exists and was built with the same activity weights
and state format (its ``state_fingerprint``); otherwise (first run, a gap, changed weights, an older
state format) or with ``--full`` it is rebuilt from the whole user_daily history. The snapshot is
derived from the state just written (``dmp.transforms.tags``, where every tag is defined).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import TagConfig
from dmp.spark import lake as lk
from dmp.spark.progress import phase
from dmp.transforms.columns import lit_date
from dmp.transforms.tag_state import full_state_with_scores, incremental_input_days, incremental_state
from dmp.transforms.tags import build_user_tags


@dataclass(frozen=True)
class TagsResult:
    day: date
    mode: str  # "incremental" | "full"
    reason: str
    users: int


def _partition(df: DataFrame, column: str, values: list[date]) -> DataFrame:
    return df.filter(F.col(column).isin([lit_date(v) for v in values]))


def _previous_state_ok(spark: SparkSession, lake: str, prev_day: date, fingerprint: str) -> tuple[bool, str]:
    """Whether ``prev_day``'s state can be the base of an incremental run, and the reason either way."""
    if not lk.table_exists(spark, lake, tables.USER_TAG_STATE):
        return False, f"no {tables.USER_TAG_STATE} table yet (first run)"
    row = (
        lk.read_table(spark, lake, tables.USER_TAG_STATE)
        .filter(F.col("as_of_date") == lit_date(prev_day))
        .select("state_fingerprint")
        .limit(1)
        .first()
    )
    if row is None:
        return False, f"no state for {prev_day} (first run or a gap)"
    if row["state_fingerprint"] != fingerprint:
        return False, f"state for {prev_day} was built with other activity weights or an older state format"
    days = ", ".join(str(d) for d in incremental_input_days(prev_day + timedelta(days=1)))
    return True, f"state of {prev_day} + user_daily of {days}"


def _check_user_daily_present(spark: SparkSession, lake: str, day: date, user_daily_df: DataFrame) -> None:
    """Refuse to tag a day whose aggregates were never built (an empty user_daily day is fine only if
    bronze has no events that day either)."""
    if user_daily_df.filter(F.col("event_date") == lit_date(day)).limit(1).count() > 0:
        return
    if not lk.table_exists(spark, lake, tables.EVENTS):
        return
    events = lk.read_table(spark, lake, tables.EVENTS).filter(F.col("event_date") == lit_date(day))
    if events.limit(1).count() > 0:
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_DAILY)} has no rows for {day} but {tables.EVENTS} has "
            f"events that day: run `dmp aggregate --date {day}` first"
        )


def _state(
    spark: SparkSession, lake: str, day: date, config: TagConfig, user_daily_df: DataFrame, full: bool
) -> tuple[DataFrame, str, str]:
    """The state at ``day`` (not yet written), the mode it was built in and why."""
    prev = day - timedelta(days=1)
    if full:
        incremental, reason = False, "--full requested"
    else:
        incremental, reason = _previous_state_ok(spark, lake, prev, config.state_fingerprint())
    if incremental:
        days_df = _partition(user_daily_df, "event_date", incremental_input_days(day))
        prev_state = _partition(lk.read_table(spark, lake, tables.USER_TAG_STATE), "as_of_date", [prev])
        return incremental_state(prev_state, days_df, day, config.weights), "incremental", reason
    state_df = full_state_with_scores(user_daily_df, day, config.weights)
    return state_df, "full", f"full rebuild from user_daily history up to {day}: {reason}"


def run_tags(
    spark: SparkSession,
    lake: str,
    day: date,
    config: TagConfig,
    *,
    full: bool = False,
    skip_checks: bool = False,
) -> TagsResult:
    """Build state and snapshot for ``day``: incremental from ``day``-1's state when possible."""
    user_daily_df = lk.read_required(spark, lake, tables.USER_DAILY, "dmp aggregate")
    _check_user_daily_present(spark, lake, day, user_daily_df)
    state_df, mode, reason = _state(spark, lake, day, config, user_daily_df, full)

    condition = lk.replace_where_condition("as_of_date", [day])
    state_df = state_df.withColumn("as_of_date", lit_date(day)).withColumn(
        "state_fingerprint", F.lit(config.state_fingerprint())
    )
    # mergeSchema: a state table written by an older dmp (no score maps) gains the new columns; its
    # rows carry an older fingerprint, so they are never read as yesterday's state.
    with phase("tags", f"{mode} gold/user_tag_state for {day}"):
        lk.overwrite_partitions(
            state_df, lake, tables.USER_TAG_STATE, ["as_of_date"], condition, merge_schema=True
        )
    # The snapshot is derived from the state just written (read back: one row per user, no recompute).
    state_now = _partition(lk.read_table(spark, lake, tables.USER_TAG_STATE), "as_of_date", [day])
    with phase("tags", f"gold/user_tags snapshot for {day}"):
        lk.overwrite_partitions(
            build_user_tags(state_now, day, config), lake, tables.USER_TAGS, ["as_of_date"], condition
        )
    users = state_now.count()
    if not skip_checks:
        from dmp.steps.quality import run_gate

        run_gate(
            _partition(lk.read_table(spark, lake, tables.USER_TAGS), "as_of_date", [day]), "gold_user_tags"
        )
    return TagsResult(day=day, mode=mode, reason=reason, users=int(users))
