"""A spec's ``where:`` tree as a Spark column over the tag columns of ``gold/user_tags``.

The semantics are the contract's (``dmp.contracts.specs.conditions``): two-valued, a leaf is true
only when the tag has a value satisfying the operator, so a user without a tag row (every tag
null) fails every leaf but ``is_null: true``. Each leaf is wrapped in ``coalesce(..., false)``,
which is what makes ``not`` of a leaf true for such users instead of null.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.specs import AllOf, AnyOf, Condition, NotOf, TagFilter, condition_tags, tag_value
from dmp.contracts.vocab import TAG_COLUMN_KINDS


def _compare(col: Column, op: str, value: Any) -> Column:
    lit = F.lit(value)
    return {
        "eq": col == lit,
        "ne": col != lit,
        "gt": col > lit,
        "gte": col >= lit,
        "lt": col < lit,
        "lte": col <= lit,
    }[op]


def _leaf_col(leaf: TagFilter) -> Column:
    """One tag filter; may be null where the tag is (the caller coalesces)."""
    kind = TAG_COLUMN_KINDS[leaf.tag]
    col = F.col(leaf.tag)
    op, raw = leaf.op, leaf.value
    value = [tag_value(kind, v) for v in raw] if isinstance(raw, list) else tag_value(kind, raw)
    if kind == "array":
        if op == "contains":
            return F.array_contains(col, F.lit(value))
        overlap = F.arrays_overlap(col, F.array(*[F.lit(v) for v in value]))
        return overlap if op == "in" else ~overlap
    if op == "in":
        return col.isin(value)
    if op == "not_in":
        return ~col.isin(value)
    if op == "between":
        return col.between(F.lit(value[0]), F.lit(value[1]))
    return _compare(col, op, value)


def where_col(cond: Condition) -> Column:
    """A ``where`` condition as a boolean column over the tag columns (never null)."""
    if isinstance(cond, AllOf):
        return reduce(lambda a, b: a & b, [where_col(c) for c in cond.all])
    if isinstance(cond, AnyOf):
        return reduce(lambda a, b: a | b, [where_col(c) for c in cond.any])
    if isinstance(cond, NotOf):
        return ~where_col(cond.not_)
    assert isinstance(cond, TagFilter)
    if cond.op == "is_null":
        col = F.col(cond.tag)
        return col.isNull() if cond.value else col.isNotNull()  # never null already
    return F.coalesce(_leaf_col(cond), F.lit(False))


def filter_where(cands_df: DataFrame, tags_df: DataFrame, cond: Condition) -> DataFrame:
    """Candidates whose tags satisfy ``cond`` (users without a tag row: every tag null)."""
    needed = sorted(condition_tags(cond))
    tag_cols_df = tags_df.select("user_id", *needed)
    joined_df = cands_df.join(tag_cols_df, "user_id", "left")
    return joined_df.filter(where_col(cond)).select(*cands_df.columns)
