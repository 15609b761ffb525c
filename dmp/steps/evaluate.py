"""Uplift evaluation of an audience pack after its attribution window (the Spark step).

Pipeline: ``gold/audience_packs`` (segment, run_date) gives treatment and holdout users;
``silver/user_daily`` gives their orders and GMV in the spec's scope on R+1 … R+N; Spark reduces
that to one row per pack user (small, :func:`dmp.transforms.outcomes.with_outcomes`), and
:mod:`dmp.stats.uplift` computes the statistics in pandas. Every pack user counts, delivered or not
(intent to treat): dropping treatment users who could not be reached would compare a selected
subgroup with an unselected holdout. The same outcome over the N days up to the run date
(R-N+1 … R, before anyone was contacted) is the pre-period balance check: a chance gap between the
groups there is reported, and adjusted for (:func:`dmp.stats.uplift.adjusted_uplift`).

This module reads the lake, calls the transforms and the statistics, writes
``gold/uplift_results`` (replaceWhere segment + run_date) and the report. An external experiment
file (no Spark) is :mod:`dmp.steps.evaluate_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS
from dmp.contracts.errors import DmpError
from dmp.contracts.status import delivered_keys
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.stats import uplift
from dmp.transforms.outcomes import OutcomeScope, attribution_window, pre_window, with_outcomes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from dmp.contracts.specs import SegmentSpec

OUTCOME_TEXT = "converted = at least one order in scope in the window; value = GMV in scope in the window"


@dataclass
class Evaluation:
    """What one evaluation produced: the report (as written to report.json) and where it went."""

    report: dict[str, Any]
    json_path: Path
    html_path: Path
    rows_written: int = 0


# ------------------------------------------------------------------------------------------
# reading the lake
# ------------------------------------------------------------------------------------------


def find_spec(segments_dir: str, segment: str) -> SegmentSpec:
    """The segment's spec: its scope defines what counts as a conversion, so a missing spec is an error."""
    from dmp.contracts.specs import load_specs

    spec_set = load_specs(segments_dir)
    spec = spec_set.specs.get(segment)
    if spec is None:
        problems = [str(i) for i in spec_set.errors if segment in str(i)]
        detail = f": {problems[0]}" if problems else ""
        raise DmpError(
            f"{segments_dir}: no valid spec named {segment!r} (its scope defines what counts as a conversion){detail}"
        )
    return spec


def successful_deliveries(
    spark: SparkSession, lake: str, segment: str, first: date, last: date
) -> list[tuple[date, str]]:
    """(run_date, channel) of this segment's deliveries in first … last whose latest attempt
    succeeded (``dmp.contracts.status.delivered_keys`` over ops/deliveries)."""
    if not lk.table_exists(spark, lake, tables.DELIVERIES):
        return []
    rows = (
        lk.read_table(spark, lake, tables.DELIVERIES)
        .filter((F.col("segment") == segment) & F.col("run_date").between(F.lit(first), F.lit(last)))
        .select("segment", "channel", "run_date", "attempt", "status")
        .collect()
    )
    return sorted((k.run_date, k.channel) for k in delivered_keys(r.asDict() for r in rows))


def delivered_channels(spark: SparkSession, lake: str, segment: str, run_date: date) -> list[str]:
    """Channels whose latest delivery attempt of this pack succeeded."""
    return sorted({channel for _, channel in successful_deliveries(spark, lake, segment, run_date, run_date)})


def earlier_deliveries(
    spark: SparkSession, lake: str, segment: str, run_date: date, window_days: int
) -> list[date]:
    """Run dates D in R-2N+1 … R-1 on which this segment's pack was delivered (latest attempt per
    channel succeeded). Its treated users (the holdout is stable across runs) were then contacted
    during D+1 … D+N, which overlaps the pre-period R-N+1 … R."""
    first, last = run_date - timedelta(days=2 * window_days - 1), run_date - timedelta(days=1)
    return sorted({day for day, _ in successful_deliveries(spark, lake, segment, first, last)})


def pack_segments(spark: SparkSession, lake: str, run_date: date) -> list[str]:
    """Segments with a pack on ``run_date`` (for evaluating every pack of a day)."""
    if not lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
        return []
    df = lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(F.col("run_date") == F.lit(run_date))
    return sorted(r["segment"] for r in df.select("segment").distinct().collect())


def load_pack(spark: SparkSession, lake: str, segment: str, run_date: date) -> DataFrame:
    """Every user of the pack, treatment and holdout (an unknown pack is an empty frame)."""
    return lk.read_required(spark, lake, tables.AUDIENCE_PACKS, "dmp segments build").filter(
        (F.col("segment") == segment) & (F.col("run_date") == F.lit(run_date))
    )


def load_user_daily(spark: SparkSession, lake: str) -> DataFrame:
    """Outcomes come from silver/user_daily; without it nothing can be evaluated."""
    return lk.read_required(spark, lake, tables.USER_DAILY, "dmp aggregate")


def check_window_closed(
    daily_df: DataFrame, run_date: date, window_days: int, allow_open: bool
) -> tuple[date | None, date | None]:
    """(earliest, latest) day with data; raises unless the data reaches R+N (or ``allow_open``)."""
    first_needed, last_needed = attribution_window(run_date, window_days)
    span = daily_df.agg(F.min("event_date").alias("first"), F.max("event_date").alias("last")).first()
    earliest, latest = span["first"], span["last"]
    if (latest is None or latest < last_needed) and not allow_open:
        raise DmpError(
            f"the attribution window {first_needed} … {last_needed} has not closed: "
            f"{tables.USER_DAILY} reaches {latest}; wait until it covers {last_needed} "
            "(or pass --allow-open-window for an interim look)"
        )
    return earliest, latest


def default_out_dir(lake: str, segment: str, run_date: date) -> Path:
    """Reports sit next to the lake: <lake>/../reports/<segment>/<run_date>/ (./reports for remote lakes)."""
    base = Path(lake).parent / "reports" if "://" not in lake else Path("reports")
    return base / segment / run_date.isoformat()


# ------------------------------------------------------------------------------------------
# gold/uplift_results
# ------------------------------------------------------------------------------------------

RESULT_METRICS = (
    ("rate_treatment", "rate_treatment_ci"),
    ("rate_control", "rate_control_ci"),
    ("uplift_abs", "uplift_abs_ci"),
    ("uplift_rel", "uplift_rel_ci"),
    ("p_value", None),
    ("incremental_conversions", "incremental_conversions_ci"),
    ("value_per_user_treatment", None),
    ("value_per_user_control", None),
    ("incremental_value", "incremental_value_ci"),
    ("mde", None),
    ("pre_rate_treatment", None),
    ("pre_rate_control", None),
    ("pre_diff_abs", "pre_diff_abs_ci"),
    ("pre_p_value", None),
    ("uplift_abs_adjusted", "uplift_abs_adjusted_ci"),
    ("qini_auc", None),
    ("uplift_auc", None),
)


def _float(value: Any) -> float | None:
    """numpy scalars and ints become plain floats (the Delta schema is double); None stays None."""
    return None if value is None else float(value)


def metric_values(report: dict[str, Any]) -> list[tuple[str, Any, list[Any] | None]]:
    """(metric, value, interval) for every metric the report has, in RESULT_METRICS order, then
    ``uplift_at_k_<k>`` for each k."""
    found = [
        (metric, report[metric], report.get(ci_key) if ci_key else None)
        for metric, ci_key in RESULT_METRICS
        if metric in report
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
    lk.overwrite_partitions(df, lake, tables.UPLIFT_RESULTS, ["segment"], condition)


# ------------------------------------------------------------------------------------------
# the pipeline step
# ------------------------------------------------------------------------------------------


def experiment_frame(users: pd.DataFrame, source: str, *, pre_period: bool) -> pd.DataFrame:
    """The per-user table :func:`dmp.stats.uplift.evaluate_experiment` takes, from the pack's outcomes.

    A partly scored pack has no ranking metrics (score dropped); without a clean pre-period (the
    segment was delivered shortly before) ``pre_converted`` is dropped: it is not "before the
    campaign" for these users.
    """
    if users["user_id"].duplicated().any():
        dups = users.loc[users["user_id"].duplicated(), "user_id"].head(3).tolist()
        raise DmpError(f"{source} lists users more than once, e.g. {dups}")
    frame = users.drop(columns=[c for c in ("deliverable",) if c in users.columns])
    if frame["score"].isna().any():
        frame = frame.drop(columns=["score"])
    frame["days_to_convert"] = frame["days_to_convert"].astype("float")
    if not pre_period:
        frame = frame.drop(columns=["pre_converted"])
    return frame


def pack_warnings(
    users: pd.DataFrame,
    scope: OutcomeScope,
    channels: list[str],
    contacted: list[date],
    span: tuple[date | None, date | None],
    run_date: date,
    window_days: int,
) -> list[str]:
    """What a reader must know about this pack's evaluation, beyond the statistics' own warnings."""
    earliest, latest = span
    pre_first, pre_last = pre_window(run_date, window_days)
    warnings = []
    if not channels:
        warnings.append(
            f"no delivery of this pack is recorded in {tables.DELIVERIES}: "
            "treatment users may never have been contacted"
        )
    if "deliverable" in users.columns and not users["deliverable"].any():
        warnings.append("the pack was marked not deliverable (below min_size): no one was contacted")
    if scope.everywhere:
        warnings.append("the spec has no scope: an order anywhere on the platform counts as a conversion")
    if latest is not None and latest < attribution_window(run_date, window_days)[1]:
        warnings.append(f"interim look: the window is still open (data up to {latest})")
    if contacted:
        dates = ", ".join(str(day) for day in contacted[-3:])
        shown = dates if len(contacted) <= 3 else f"{len(contacted)} earlier run dates, the latest {dates}"
        warnings.append(
            f"no pre-period check: this segment was also delivered on {shown}, so its treated users were "
            f"already contacted during part of {pre_first} … {pre_last}"
        )
    elif earliest is not None and earliest > pre_first:
        warnings.append(
            f"the pre-period check covers only {earliest} … {pre_last} of {pre_first} … {pre_last}: "
            f"{tables.USER_DAILY} starts on {earliest}"
        )
    return warnings


def pack_context(
    segment: str,
    run_date: date,
    window_days: int,
    spec: SegmentSpec | None,
    scope: OutcomeScope,
    channels: list[str],
    latest: date | None,
) -> dict[str, Any]:
    """The report's description of what was evaluated (everything but the statistics)."""
    first, last = attribution_window(run_date, window_days)
    pre_first, pre_last = pre_window(run_date, window_days)
    return {
        "segment": segment,
        "run_date": run_date.isoformat(),
        "kind": spec.kind if spec is not None else None,
        "scope": scope.as_report(),
        "channel": "+".join(channels) if channels else "none",
        "channels": channels,
        "window_days": window_days,
        "window": [first.isoformat(), last.isoformat()],
        "pre_window": [pre_first.isoformat(), pre_last.isoformat()],
        "outcome": OUTCOME_TEXT,
        "data_until": latest.isoformat() if latest else None,
    }


def evaluate_pack(
    spark: SparkSession,
    lake: str,
    segment: str,
    run_date: date,
    *,
    window_days: int = DEFAULT_ATTRIBUTION_DAYS,
    segments_dir: str = "segments",
    out_dir: str | Path | None = None,
    allow_open_window: bool = False,
    scope: OutcomeScope | None = None,
) -> Evaluation:
    """Evaluate one pack; writes gold/uplift_results (replaceWhere segment+run_date) and the report.

    ``scope`` overrides the spec lookup (tests, or a pack whose spec was since deleted).
    """
    from dmp.reports.uplift_report import write_report

    if window_days < 1:
        raise DmpError(f"--window-days must be >= 1, got {window_days}")
    spec = None
    if scope is None:
        spec = find_spec(segments_dir, segment)
        scope = OutcomeScope.of_spec(spec)
    daily_df = load_user_daily(spark, lake)
    span = check_window_closed(daily_df, run_date, window_days, allow_open_window)

    pack_df = load_pack(spark, lake, segment, run_date)
    users = with_outcomes(pack_df, daily_df, run_date, window_days, scope).toPandas()
    if users.empty:
        raise DmpError(
            f"{tables.table_path(lake, tables.AUDIENCE_PACKS)}: no pack for segment {segment!r} on {run_date}; "
            "build it with dmp segments build"
        )
    contacted = earlier_deliveries(spark, lake, segment, run_date, window_days)
    frame = experiment_frame(
        users, f"{tables.AUDIENCE_PACKS}: pack {segment}/{run_date}", pre_period=not contacted
    )
    channels = delivered_channels(spark, lake, segment, run_date)
    evaluated_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    report = uplift.evaluate_experiment(
        frame, window_days=window_days, source=f"{tables.AUDIENCE_PACKS} {segment}/{run_date}"
    )
    report["warnings"] += pack_warnings(users, scope, channels, contacted, span, run_date, window_days)
    context = pack_context(segment, run_date, window_days, spec, scope, channels, span[1])
    report.update({**context, "evaluated_at": evaluated_at.isoformat() + "Z", "lake": lake})
    report["title"] = f"Uplift report: {segment} (run {run_date})"

    rows = result_rows(report, segment, context["channel"], run_date, window_days, evaluated_at)
    write_results(spark, lake, rows, segment, run_date)
    out = Path(out_dir) if out_dir else default_out_dir(lake, segment, run_date)
    json_path, html_path = write_report(out, report, frame)
    return Evaluation(report, json_path, html_path, len(rows))
