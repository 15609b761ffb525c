"""``gold/uplift_results``: one row per (segment, run_date, channel, metric) of an uplift report.

The table is long (metric, value, ci_low, ci_high), so a new metric is a new row, never a new
column, and lakes written before it stay readable. Written by :mod:`dmp.steps.evaluate`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark import schemas

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


# (metric, its interval's report field): one gold/uplift_results row each, when the report has it.
# The table is long (metric, value, ci_low, ci_high), so a new metric is a new row, never a new
# column: lakes written before it stay readable.
RESULT_METRICS = (
    ("rate_treatment", "rate_treatment_ci"),
    ("rate_control", "rate_control_ci"),
    ("uplift_abs", "uplift_abs_ci"),
    ("uplift_rel", "uplift_rel_ci"),
    ("p_value", None),
    ("p_value_holm", None),
    ("holm_family_size", None),
    ("incremental_conversions", "incremental_conversions_ci"),
    ("value_per_user_treatment", None),
    ("value_per_user_control", None),
    ("incremental_value", "incremental_value_ci"),
    ("mde", None),
    ("expected_holdout_share", None),
    ("observed_holdout_share", None),
    ("srm_chi2", None),
    ("srm_p_value", None),
    ("pre_rate_treatment", None),
    ("pre_rate_control", None),
    ("pre_diff_abs", "pre_diff_abs_ci"),
    ("pre_p_value", None),
    ("uplift_abs_adjusted", "uplift_abs_adjusted_ci"),
    ("uplift_abs_cuped", "uplift_abs_cuped_ci"),
    ("variance_reduction", None),
    ("incremental_value_cuped", "incremental_value_cuped_ci"),
    ("value_variance_reduction", None),
    ("cost", None),
    ("cost_delivery", None),
    ("cost_coupons", None),
    ("roi", "roi_ci"),
    ("qini_auc", None),
    ("uplift_auc", None),
)


def _float(value: Any) -> float | None:
    """numpy scalars and ints become plain floats (the Delta schema is double); None stays None."""
    return None if value is None else float(value)


def metric_values(report: dict[str, Any]) -> list[tuple[str, Any, list[Any] | None]]:
    """(metric, value, interval) for every metric the report has, in RESULT_METRICS order, then
    ``uplift_at_k_<k>`` for each k. ``holm_family_size`` is the report's
    ``multiple_testing.family_size``."""
    flat = dict(report)
    if isinstance(report.get("multiple_testing"), dict):
        flat["holm_family_size"] = report["multiple_testing"].get("family_size")
    found = [
        (metric, flat[metric], flat.get(ci_key) if ci_key else None)
        for metric, ci_key in RESULT_METRICS
        if metric in flat
    ]
    return found + [(f"uplift_at_k_{k}", v, None) for k, v in (report.get("uplift_at_k") or {}).items()]


def result_rows(
    report: dict[str, Any],
    segment: str,
    channel: str,
    run_date: date,
    window_days: int,
    evaluated_at: datetime,
) -> list[dict[str, Any]]:
    """One gold/uplift_results row per metric of the report."""
    rows = []
    for metric, value, ci in metric_values(report):
        low, high = ci if ci else (None, None)
        rows.append(
            {
                "segment": segment,
                "channel": channel,
                "run_date": run_date,
                "metric": metric,
                "value": _float(value),
                "ci_low": _float(low),
                "ci_high": _float(high),
                "n_treatment": int(report["n_treatment"]),
                "n_holdout": int(report["n_control"]),
                "window_days": int(window_days),
                "evaluated_at": evaluated_at,
            }
        )
    return rows


def write_results(
    spark: SparkSession, lake: str, rows: list[dict[str, Any]], segment: str, run_date: date
) -> None:
    """Replace this pack's rows (replaceWhere segment + run_date): a re-evaluation keeps one copy."""
    df = spark.createDataFrame(rows, schema=schemas.UPLIFT_RESULTS_SCHEMA)
    condition = " AND ".join(
        [lk.replace_where_condition("segment", [segment]), lk.replace_where_condition("run_date", [run_date])]
    )
    # Partitioned by the pack's key, so evaluations of different packs run at once (the uplift DAG
    # maps one task per run date) replace disjoint partitions; an older lake partitioned by segment
    # alone is migrated by the first write (lk.migrate_partitioning).
    lk.overwrite_partitions(df, lake, tables.UPLIFT_RESULTS, ["segment", "run_date"], condition)


# ------------------------------------------------------------------------------------------
# the pipeline step
# ------------------------------------------------------------------------------------------
