"""Audience pack transforms: candidates per spec kind, then the steps every kind shares.

Every kind first produces *candidates* ``(user_id, score, reason, last_active)`` (``CANDIDATE_COLS``)
from ``silver/user_daily`` (behaviour in a window) or ``gold/user_tags`` (the snapshot with
``as_of_date`` = run date); then, in this order (``dmp.steps.packs`` reads the inputs):

1. ``where`` tag filters (``dmp.transforms.where``);
2. exclusions (:func:`filter_excluded`): users of the excluded segments' packs and of the named
   suppression lists;
3. ``max_size`` (:func:`limit_size`): keep the best score, then the most recent activity, then the
   smallest user_id (a total order, so the cut is deterministic);
4. holdout (:func:`with_group`): ``dmp.contracts.holdout.group_col(salt, segment, holdout)``,
   stable across days and reruns;
5. :func:`to_pack_rows`: the ``gold/audience_packs`` columns.

With ``silver/persons`` the step works on persons between 2 and 3 (``dmp.transforms.persons``):
exclusions reach a person's other accounts, one account per person is kept, and the holdout hash is
keyed on the person's oldest account (``holdout_key``; the account itself when it is alone).

Windows follow design.md §3: ``window_days: N`` covers run_date-(N-1) ... run_date inclusive.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dmp.contracts.holdout import group_col
from dmp.contracts.specs import SegmentSpec, spec_hash
from dmp.contracts.vocab import DAILY_COUNTERS, HOLDOUT
from dmp.spark.schemas import AUDIENCE_PACKS
from dmp.transforms.persons import best_first
from dmp.transforms.scope import filter_days_ending, scope_col, targets_col
from dmp.transforms.where import where_col

# user_daily counter per behaviour (spec ``behaviors`` use event type names).
BEHAVIOR_COLUMNS: dict[str, str] = DAILY_COUNTERS

CANDIDATE_COLS = ["user_id", "score", "reason", "last_active"]


def store_revisit_candidates(daily_df: DataFrame, spec: SegmentSpec, run_date: date) -> DataFrame:
    """Users with the spec's behaviours in scope within the window, minus in-scope purchasers.

    score = number of those behaviour events; last_active = last day with one of them.
    """
    assert spec.scope is not None and spec.window_days is not None and spec.behaviors is not None
    in_scope_df = daily_df.transform(filter_days_ending, run_date, spec.window_days).filter(
        scope_col(spec.scope)
    )
    counters = [BEHAVIOR_COLUMNS[b] for b in spec.behaviors]
    behaviour = reduce(lambda a, b: a + b, [F.col(c) for c in counters])
    per_user_df = in_scope_df.groupBy("user_id").agg(
        *[F.sum(c).alias(c) for c in counters],
        F.sum(behaviour).cast("double").alias("score"),
        F.max(F.when(behaviour > 0, F.col("event_date"))).alias("last_active"),
        F.sum("orders").alias("_orders"),
    )
    out_df = per_user_df.filter(F.col("score") > 0)
    if spec.exclude_purchasers:
        out_df = out_df.filter(F.col("_orders") == 0)
    detail = F.concat_ws(
        ", ", *[F.format_string(f"{b}=%d", F.col(c)) for b, c in zip(spec.behaviors, counters, strict=True)]
    )
    reason = F.format_string(
        f"store_revisit: %s in scope over {spec.window_days}d, last %s",
        detail,
        F.col("last_active").cast("string"),
    )
    return out_df.select("user_id", "score", reason.alias("reason"), "last_active")


def competitor_intercept_candidates(daily_df: DataFrame, spec: SegmentSpec, run_date: date) -> DataFrame:
    """Users who ordered (or viewed) a competitor in the window, minus users who ordered ours.

    ``categories`` limits both sides (buying our brand in another category does not make a user
    ours for this one). score = number of competitor orders (views for ``action: view``).
    """
    assert spec.competitors is not None and spec.window_days is not None
    window_df = daily_df.transform(filter_days_ending, run_date, spec.window_days)
    counter = "orders" if spec.action == "order" else "views"
    comp_df = (
        window_df.filter(targets_col(spec.competitors, spec.categories) & (F.col(counter) > 0))
        .groupBy("user_id")
        .agg(
            F.sum(counter).cast("double").alias("score"),
            F.sum("gmv").alias("_gmv"),
            F.max("event_date").alias("last_active"),
            F.array_sort(F.collect_set(F.coalesce(F.col("brand_id"), F.col("store_id")))).alias("_who"),
        )
    )
    if spec.own is not None:
        ours_df = window_df.filter(targets_col(spec.own, spec.categories) & (F.col("orders") > 0)).select(
            "user_id"
        )
        comp_df = comp_df.join(ours_df, "user_id", "left_anti")
    verb = "ordered" if spec.action == "order" else "viewed"
    reason = F.format_string(
        f"competitor_intercept: {verb} %s %dx over {spec.window_days}d",
        F.concat_ws(",", F.col("_who")),
        F.col("score").cast("long"),
    )
    if spec.action == "order":
        reason = F.concat(reason, F.format_string(", gmv %.2f", F.col("_gmv")))
    return comp_df.select("user_id", "score", reason.alias("reason"), "last_active")


def rule_candidates(tags_df: DataFrame, spec: SegmentSpec) -> DataFrame:
    """Users of the tag snapshot matching ``where``; no score, recency from ``last_active_date``."""
    assert spec.where is not None
    return tags_df.filter(where_col(spec.where)).select(
        "user_id",
        F.lit(None).cast("double").alias("score"),
        F.lit("rule: matched where").alias("reason"),
        F.col("last_active_date").alias("last_active"),
    )


def lookalike_candidates(scored_df: DataFrame, tags_df: DataFrame) -> DataFrame:
    """The lookalike's scored users (``user_id, score, reason``) with their recency from the tags."""
    return scored_df.join(
        tags_df.select("user_id", F.col("last_active_date").alias("last_active")), "user_id", "left"
    ).select(*CANDIDATE_COLS)


def seed_rule_users(tags_df: DataFrame, spec: SegmentSpec) -> DataFrame:
    """``user_id`` of the tag snapshot matching an inline ``seed.where`` (a lookalike's seed)."""
    assert spec.seed is not None and spec.seed.where is not None
    return tags_df.filter(where_col(spec.seed.where)).select("user_id")


def filter_excluded(cands_df: DataFrame, excluded_df: DataFrame) -> DataFrame:
    """Candidates not in ``excluded_df`` (any frame with a user_id column)."""
    return cands_df.join(excluded_df.select("user_id").distinct(), "user_id", "left_anti")


def limit_size(cands_df: DataFrame, max_size: int | None) -> DataFrame:
    """At most ``max_size`` users: best score, then most recent activity, then smallest user_id."""
    if max_size is None:
        return cands_df
    return cands_df.orderBy(*best_first()).limit(max_size)


def with_group(cands_df: DataFrame, spec: SegmentSpec) -> DataFrame:
    """Adds ``group`` (treatment / holdout) by the spec's salt and holdout share, stable across runs.

    The hash is keyed on ``holdout_key`` (the person's oldest account) when the candidates have one,
    else on ``user_id``."""
    key = "holdout_key" if "holdout_key" in cands_df.columns else "user_id"
    return cands_df.withColumn("group", group_col(spec.holdout_salt, spec.name, spec.holdout, key))


def group_sizes_df(grouped_df: DataFrame) -> DataFrame:
    """One row: ``size`` (all users) and ``holdout`` (users in the holdout group) of a grouped pack."""
    return grouped_df.agg(
        F.count(F.lit(1)).alias("size"), F.sum((F.col("group") == HOLDOUT).cast("long")).alias("holdout")
    )


def to_pack_rows(cands_df: DataFrame, spec: SegmentSpec, run_date: date, deliverable: bool) -> DataFrame:
    """The AUDIENCE_PACKS columns, in order, with their types."""
    values = {
        "segment": F.lit(spec.name),
        "run_date": F.lit(run_date),
        "spec_hash": F.lit(spec_hash(spec)),
        "kind": F.lit(spec.kind),
        "deliverable": F.lit(deliverable),
    }
    if "person_id" not in cands_df.columns:
        values["person_id"] = F.lit(None)
    return cands_df.select(
        *[
            (values[f.name] if f.name in values else F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in AUDIENCE_PACKS.fields
        ]
    )
