"""Where and when a row of ``silver/user_daily`` happened: scope columns and the look-back window.

One home for the two shapes a spec uses: a ``Scope`` (store_revisit's ``scope``: every list given
narrows, store AND brand AND category) and ``Targets`` (competitor_intercept's ``competitors`` /
``own``: a row matches when its brand OR its store is listed). Packs pick candidates with them and
evaluation counts conversions with them, so both read "in scope" the same way. The columns are
meant for ``filter``: a row with a null id is not in scope (null or false, both drop the row).
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.dates import window_start
from dmp.contracts.specs import Scope, Targets


def _in(column: str, values: list[str] | None) -> Column | None:
    return F.col(column).isin(values) if values else None


def _and(cols: list[Column | None]) -> Column:
    present = [c for c in cols if c is not None]
    return reduce(lambda a, b: a & b, present) if present else F.lit(True)


def _or(cols: list[Column | None]) -> Column:
    present = [c for c in cols if c is not None]
    return reduce(lambda a, b: a | b, present) if present else F.lit(False)


def scope_col(scope: Scope | None) -> Column:
    """Row in scope: every list given must match (store AND brand AND category); no scope: every row."""
    if scope is None:
        return F.lit(True)
    return _and(
        [
            _in("store_id", scope.store_ids),
            _in("brand_id", scope.brand_ids),
            _in("category_id", scope.category_ids),
        ]
    )


def targets_col(targets: Targets, categories: list[str] | None = None) -> Column:
    """Row of one of the brands OR stores, optionally limited to ``categories``."""
    hit = _or([_in("brand_id", targets.brand_ids), _in("store_id", targets.store_ids)])
    return _and([F.coalesce(hit, F.lit(False)), _in("category_id", categories)])


def filter_days_ending(daily_df: DataFrame, last_day: date, days: int) -> DataFrame:
    """Rows of the ``days`` days ending on ``last_day``, both ends inclusive (design.md §3).

    A spec's ``window_days: N`` on run date D is D-(N-1) ... D: the behaviour a pack looks back on,
    and also the pre-period an evaluation compares against. (The attribution window after a
    delivery, D+1 ... D+N, is a different window with its own name.)
    """
    start = window_start(last_day, days)
    return daily_df.filter(F.col("event_date").between(F.lit(start), F.lit(last_day)))
