"""Which tags earned it: the Spark part of the subgroup table of a pack evaluation.

Joins the pack's users to their ``gold/user_tags`` row as of the run date (the snapshot the pack
was built from), collects one small row per user (tags only; the outcomes are already in the
evaluation's per-user frame) and hands them to :func:`dmp.stats.subgroups.subgroup_table`. A
lake without ``gold/user_tags``, or without a snapshot for the run date covering the pack, gets a
note instead of a table: the rest of the evaluation does not need tags.

The table goes into report.json (``subgroups``) and, as long rows, into ``gold/uplift_results``
(:func:`subgroup_result_rows`; no schema change: the n columns stay the pack's, the subgroups'
sizes are in report.json).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.stats.subgroups import subgroup_metric_values, subgroup_table

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The tag columns read from gold/user_tags; top_category is derived from top_category_ids.
TAG_COLUMNS = ("lifecycle_stage", "consumption_level", "coupon_sensitivity", "is_cart_abandoner")


def with_top_category(tags_df: DataFrame) -> DataFrame:
    """``top_category``: the first of ``top_category_ids`` (null when the list is empty or null)."""
    ids = F.col("top_category_ids")
    return tags_df.withColumn("top_category", F.when(F.size(ids) > 0, ids.getItem(0)))


def pack_user_tags(spark: SparkSession, lake: str, pack_df: DataFrame, run_date: date) -> pd.DataFrame | None:
    """One row per pack user: user_id, spec_hash and the subgroup tags as of ``run_date`` (null
    without a tag row); None when the lake has no ``gold/user_tags``."""
    if not lk.table_exists(spark, lake, tables.USER_TAGS):
        return None
    tags_df = (
        lk.read_table(spark, lake, tables.USER_TAGS)
        .filter(F.col("as_of_date") == F.lit(run_date))
        .transform(with_top_category)
        .select("user_id", *TAG_COLUMNS, "top_category")
    )
    users_df = pack_df.select("user_id", "spec_hash").dropDuplicates(["user_id"])
    return users_df.join(tags_df, "user_id", "left").toPandas()


def pack_subgroups(
    spark: SparkSession, lake: str, pack_df: DataFrame, frame: pd.DataFrame, run_date: date
) -> dict[str, Any]:
    """The report's ``subgroups`` block for one pack (``frame``: the evaluation's per-user table)."""
    where = tables.table_path(lake, tables.USER_TAGS)
    tags = pack_user_tags(spark, lake, pack_df, run_date)
    if tags is None:
        return {"note": f"no subgroup table: {where} does not exist"}
    if tags["lifecycle_stage"].isna().all():
        return {
            "note": f"no subgroup table: {where} has no tag row for as_of_date {run_date} for this pack's users"
        }
    users = frame[["user_id", "group", "converted"]].merge(tags, on="user_id", how="left")
    block = subgroup_table(users, source=f"{tables.AUDIENCE_PACKS} x {tables.USER_TAGS} on {run_date}")
    block["as_of_date"] = run_date.isoformat()
    block["spec_hashes"] = sorted(str(h) for h in tags["spec_hash"].dropna().unique())
    return block


def subgroup_result_rows(
    block: dict[str, Any] | None, pack_rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The subgroup table as ``gold/uplift_results`` rows, keyed like the pack's own rows."""
    if not block or not pack_rows:
        return []
    template = pack_rows[0]
    return [
        {
            **template,
            "metric": metric,
            "value": None if value is None else float(value),
            "ci_low": None if not ci or ci[0] is None else float(ci[0]),
            "ci_high": None if not ci or ci[1] is None else float(ci[1]),
        }
        for metric, value, ci in subgroup_metric_values(block)
    ]
