"""Uplift evaluation of audience packs after their attribution window (the Spark step).

Pipeline: ``gold/audience_packs`` (segment, run_date) gives treatment and holdout users;
``silver/user_daily`` gives their orders and GMV in the spec's scope on R+1 … R+N; Spark reduces
that to one row per pack user (small, :func:`dmp.transforms.outcomes.with_outcomes`), and
:mod:`dmp.stats.uplift` computes the statistics in pandas. Every pack user counts, delivered or not
(intent to treat): dropping treatment users who could not be reached would compare a selected
subgroup with an unselected holdout.

N is the spec's ``attribution_days`` (default 14), never its look-back ``window_days``: a spec
that looks back 30 days to select its users can run a 14-day campaign; ``--window-days`` overrides
it for one evaluation.

The pre-period is the P days up to the run date (R-P+1 … R, before anyone was contacted), P =
``--pre-period-days`` (default N). The same outcome there is the balance check (a chance gap
between the groups is reported, and adjusted for: :func:`dmp.stats.uplift.adjusted_uplift`) and
the covariate of CUPED (:mod:`dmp.stats.cuped`: ``pre_converted`` for the conversion uplift,
``pre_value`` for the incremental GMV). A segment delivered during R-P-N+1 … R-1 had its treated
users contacted during that pre-period, so it is dropped then.

Trust checks (docs/uplift-trust.md): the group sizes are tested against the spec's ``holdout``
(sample ratio mismatch); the packs evaluated together for one run date (:func:`evaluate_packs`,
the uplift DAG) get Holm-adjusted p-values; the cost of the deliveries (``channels.yaml``
``cost:``, :func:`pack_cost`) gives the incremental ROI. Which tags earned the uplift (the
subgroup table, :mod:`dmp.steps.evaluate_subgroups`) goes into report.json and the results.

This module reads the lake, calls the transforms and the statistics, writes
``gold/uplift_results`` (replaceWhere segment + run_date) and the report, under the lake's report
root (:mod:`dmp.steps.report_store`; local or S3, never the driver's working directory). An
external experiment file (no Spark) is :mod:`dmp.steps.evaluate_file`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import CHANNELS_FILE
from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS, MAX_ATTRIBUTION_DAYS
from dmp.contracts.errors import DmpError
from dmp.contracts.status import delivered_keys, latest_attempts
from dmp.contracts.vocab import TREATMENT
from dmp.spark import lake as lk
from dmp.stats import uplift
from dmp.stats.multiple import apply_holm
from dmp.steps.evaluate_cost import channels_config, pack_cost, pack_redemptions, priced_coupon
from dmp.steps.evaluate_subgroups import pack_subgroups, subgroup_result_rows
from dmp.steps.uplift_results import result_rows, write_results
from dmp.transforms.outcomes import (
    OutcomeScope,
    attribution_window,
    pre_window,
    window_outcomes,
    with_outcomes,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from dmp.contracts.specs import SegmentSpec

OUTCOME_TEXT = "converted = at least one order in scope in the window; value = GMV in scope in the window"
MANIFEST_KIND = "manifest"  # the ops/deliveries row of an attempt that names its manifest.json


@dataclass
class Evaluation:
    """What one evaluation produced: the report (as written to report.json) and where it went
    (local paths or ``s3://`` URLs)."""

    report: dict[str, Any]
    json_path: str
    html_path: str
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


def _delivery_rows(
    spark: SparkSession, lake: str, segment: str, first: date, last: date
) -> list[dict[str, Any]]:
    """This segment's ops/deliveries rows with a run date in first … last (none without the table)."""
    if not lk.table_exists(spark, lake, tables.DELIVERIES):
        return []
    rows = (
        lk.read_table(spark, lake, tables.DELIVERIES)
        .filter((F.col("segment") == segment) & F.col("run_date").between(F.lit(first), F.lit(last)))
        .select("segment", "channel", "run_date", "attempt", "kind", "path", "status")
        .collect()
    )
    return [r.asDict() for r in rows]


def successful_deliveries(
    spark: SparkSession, lake: str, segment: str, first: date, last: date
) -> list[tuple[date, str]]:
    """(run_date, channel) of this segment's deliveries in first … last whose latest attempt
    succeeded (``dmp.contracts.status.delivered_keys`` over ops/deliveries)."""
    rows = _delivery_rows(spark, lake, segment, first, last)
    return sorted((k.run_date, k.channel) for k in delivered_keys(rows))


def delivered_channels(spark: SparkSession, lake: str, segment: str, run_date: date) -> list[str]:
    """Channels whose latest delivery attempt of this pack succeeded."""
    return sorted({channel for _, channel in successful_deliveries(spark, lake, segment, run_date, run_date)})


def manifest_paths(spark: SparkSession, lake: str, segment: str, run_date: date) -> dict[str, str | None]:
    """Channel -> the manifest.json of its latest successful delivery of this pack (None if not recorded)."""
    attempts = latest_attempts(_delivery_rows(spark, lake, segment, run_date, run_date))
    return {
        key.channel: next((str(r["path"]) for r in a.rows if r.get("kind") == MANIFEST_KIND), None)
        for key, a in attempts.items()
        if a.delivered
    }


def earlier_deliveries(
    spark: SparkSession,
    lake: str,
    segment: str,
    run_date: date,
    window_days: int,
    pre_period_days: int | None = None,
) -> list[date]:
    """Run dates D in R-P-N+1 … R-1 on which this segment's pack was delivered (latest attempt per
    channel succeeded; P defaults to N). Its treated users (the holdout is stable across runs) were
    then contacted during D+1 … D+N, which overlaps the pre-period R-P+1 … R."""
    pre = window_days if pre_period_days is None else pre_period_days
    first, last = run_date - timedelta(days=pre + window_days - 1), run_date - timedelta(days=1)
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


def _days_option(value: int, option: str) -> int:
    if not 1 <= value <= MAX_ATTRIBUTION_DAYS:
        raise DmpError(f"{option}: expected 1 … {MAX_ATTRIBUTION_DAYS} days, got {value}")
    return value


def attribution_days_for(spec: SegmentSpec | None, window_days: int | None) -> int:
    """The attribution window N: ``--window-days`` when given, else the spec's ``attribution_days``
    (the default when the pack is evaluated without its spec)."""
    if window_days is None:
        return spec.attribution_days if spec is not None else DEFAULT_ATTRIBUTION_DAYS
    return _days_option(window_days, "--window-days")


def pre_period_days_for(window_days: int, pre_period_days: int | None) -> int:
    """The pre-period P: ``--pre-period-days`` when given, else the attribution window N."""
    return window_days if pre_period_days is None else _days_option(pre_period_days, "--pre-period-days")


# ------------------------------------------------------------------------------------------
# the pre-period and the cost (pure DataFrame transforms over the lake's tables)
# ------------------------------------------------------------------------------------------


def with_pre_period(
    users_df: DataFrame, daily_df: DataFrame, run_date: date, pre_period_days: int, scope: OutcomeScope
) -> DataFrame:
    """``pre_converted`` (an order in scope) and ``pre_value`` (GMV in scope) over R-P+1 … R.

    The P days up to R are the attribution window of R-P (:func:`window_outcomes`), so "in scope"
    and "an order" mean exactly what they mean after the run date; users without a row get 0.
    """
    before = window_outcomes(daily_df, run_date - timedelta(days=pre_period_days), pre_period_days, scope)
    pre = before.select(
        "user_id",
        (F.col("orders") > 0).cast("int").alias("pre_converted"),
        F.col("value").cast("double").alias("pre_value"),
    )
    return (
        users_df.drop("pre_converted", "pre_value")
        .join(pre, "user_id", "left")
        .withColumn("pre_converted", F.coalesce(F.col("pre_converted"), F.lit(0)))
        .withColumn("pre_value", F.coalesce(F.col("pre_value"), F.lit(0.0)))
    )


def experiment_frame(users: pd.DataFrame, source: str, *, pre_period: bool) -> pd.DataFrame:
    """The per-user table :func:`dmp.stats.uplift.evaluate_experiment` takes, from the pack's outcomes.

    A partly scored pack has no ranking metrics (score dropped); without a clean pre-period (the
    segment was delivered shortly before) ``pre_converted`` and ``pre_value`` are dropped: they are
    not "before the campaign" for these users.
    """
    if users["user_id"].duplicated().any():
        dups = users.loc[users["user_id"].duplicated(), "user_id"].head(3).tolist()
        raise DmpError(f"{source} lists users more than once, e.g. {dups}")
    frame = users.drop(columns=[c for c in ("deliverable",) if c in users.columns])
    if frame["score"].isna().any():
        frame = frame.drop(columns=["score"])
    frame["days_to_convert"] = frame["days_to_convert"].astype("float")
    if not pre_period:
        frame = frame.drop(columns=[c for c in ("pre_converted", "pre_value") if c in frame.columns])
    return frame


def pack_warnings(
    users: pd.DataFrame,
    scope: OutcomeScope,
    channels: list[str],
    contacted: list[date],
    span: tuple[date | None, date | None],
    run_date: date,
    window_days: int,
    pre_period_days: int | None = None,
) -> list[str]:
    """What a reader must know about this pack's evaluation, beyond the statistics' own warnings."""
    earliest, latest = span
    pre_first, pre_last = pre_window(run_date, window_days if pre_period_days is None else pre_period_days)
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
    pre_period_days: int | None = None,
) -> dict[str, Any]:
    """The report's description of what was evaluated (everything but the statistics)."""
    pre_days = window_days if pre_period_days is None else pre_period_days
    first, last = attribution_window(run_date, window_days)
    pre_first, pre_last = pre_window(run_date, pre_days)
    return {
        "segment": segment,
        "run_date": run_date.isoformat(),
        "kind": spec.kind if spec is not None else None,
        "scope": scope.as_report(),
        "channel": "+".join(channels) if channels else "none",
        "channels": channels,
        "window_days": window_days,
        "window": [first.isoformat(), last.isoformat()],
        "pre_period_days": pre_days,
        "pre_window": [pre_first.isoformat(), pre_last.isoformat()],
        "outcome": OUTCOME_TEXT,
        "data_until": latest.isoformat() if latest else None,
    }


@dataclass
class PackResult:
    """One pack evaluated but not yet written: :func:`evaluate_packs` adjusts the p-values of a
    run date's packs together before anything is written."""

    segment: str
    run_date: date
    window_days: int
    location: str
    report: dict[str, Any]
    frame: pd.DataFrame
    evaluated_at: datetime


def _changed_spec_warning(pack_df: DataFrame, spec: SegmentSpec) -> list[str]:
    """A mismatch may come from a spec edited since the build (its holdout then was another share)."""
    from dmp.contracts.specs import spec_hash

    built = sorted(r["spec_hash"] for r in pack_df.select("spec_hash").distinct().collect())
    if built == [spec_hash(spec)]:
        return []
    return [
        f"the spec changed since this pack was built (spec_hash {', '.join(built)} then, {spec_hash(spec)} now): "
        f"the sample ratio check used today's holdout {spec.holdout}; if the holdout was changed, the mismatch "
        "may be that edit"
    ]


def compute_pack(
    spark: SparkSession,
    lake: str,
    segment: str,
    run_date: date,
    *,
    window_days: int | None = None,
    pre_period_days: int | None = None,
    segments_dir: str = "segments",
    out_dir: str | Path | None = None,
    allow_open_window: bool = False,
    scope: OutcomeScope | None = None,
    expected_holdout_share: float | None = None,
) -> PackResult:
    """Evaluate one pack without writing anything (see :func:`evaluate_pack` for the options)."""
    from dmp.steps.report_store import open_location, report_location

    spec = None
    if scope is None:
        spec = find_spec(segments_dir, segment)
        scope = OutcomeScope.of_spec(spec)
    if expected_holdout_share is None and spec is not None and spec.holdout > 0:
        expected_holdout_share = spec.holdout
    window_days = attribution_days_for(spec, window_days)
    pre_days = pre_period_days_for(window_days, pre_period_days)
    location = str(out_dir) if out_dir else report_location(lake, segment, run_date)
    open_location(location)  # an unusable report location fails before any Spark work
    daily_df = load_user_daily(spark, lake)
    span = check_window_closed(daily_df, run_date, window_days, allow_open_window)

    pack_df = load_pack(spark, lake, segment, run_date)
    users_df = with_outcomes(pack_df, daily_df, run_date, window_days, scope)
    users = with_pre_period(users_df, daily_df, run_date, pre_days, scope).toPandas()
    if users.empty:
        raise DmpError(
            f"{tables.table_path(lake, tables.AUDIENCE_PACKS)}: no pack for segment {segment!r} on {run_date}; "
            "build it with dmp segments build"
        )
    contacted = earlier_deliveries(spark, lake, segment, run_date, window_days, pre_days)
    frame = experiment_frame(
        users, f"{tables.AUDIENCE_PACKS}: pack {segment}/{run_date}", pre_period=not contacted
    )
    channels = delivered_channels(spark, lake, segment, run_date)
    config, config_warnings = channels_config(segments_dir, channels)
    coupon_id = priced_coupon(config, channels, spec)
    redemptions = None
    if coupon_id is not None:
        redemptions = pack_redemptions(spark, lake, pack_df, run_date, window_days, coupon_id)
    where = str(Path(segments_dir) / CHANNELS_FILE)
    cost = pack_cost(
        channels, config, manifest_paths(spark, lake, segment, run_date), spec, redemptions, where
    )
    if cost.fixed is not None:
        frame["cost"] = (
            frame["user_id"].map(cost.coupon_by_user).fillna(0.0).where(frame["group"] == TREATMENT, 0.0)
        )
    evaluated_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    report = uplift.evaluate_experiment(
        frame,
        window_days=window_days,
        source=f"{tables.AUDIENCE_PACKS} {segment}/{run_date}",
        expected_holdout_share=expected_holdout_share,
        fixed_cost=cost.fixed,
    )
    if report.get("srm_mismatch") and spec is not None:
        report["warnings"] += _changed_spec_warning(pack_df, spec)
    report["subgroups"] = pack_subgroups(spark, lake, pack_df, frame, run_date)
    report["cost_by_channel"] = cost.by_channel
    report["cost_note"] = cost.note
    report["warnings"] += pack_warnings(
        users, scope, channels, contacted, span, run_date, window_days, pre_days
    )
    report["warnings"] += config_warnings + cost.warnings
    context = pack_context(segment, run_date, window_days, spec, scope, channels, span[1], pre_days)
    report.update({**context, "evaluated_at": evaluated_at.isoformat() + "Z", "lake": lake})
    report["title"] = f"Uplift report: {segment} (run {run_date})"
    return PackResult(segment, run_date, window_days, location, report, frame, evaluated_at)


def write_pack(spark: SparkSession, lake: str, result: PackResult) -> Evaluation:
    """gold/uplift_results (replaceWhere segment + run_date), then report.json and report.html."""
    from dmp.steps.report_store import write_report

    report = result.report
    rows = result_rows(
        report, result.segment, report["channel"], result.run_date, result.window_days, result.evaluated_at
    )
    rows += subgroup_result_rows(report.get("subgroups"), rows)
    write_results(spark, lake, rows, result.segment, result.run_date)
    json_path, html_path = write_report(result.location, report, result.frame)
    return Evaluation(report, json_path, html_path, len(rows))


def evaluate_packs(
    spark: SparkSession,
    lake: str,
    segments: list[str],
    run_date: date,
    *,
    window_days: int | None = None,
    pre_period_days: int | None = None,
    segments_dir: str = "segments",
    out_dir: str | Path | None = None,
    allow_open_window: bool = False,
    scope: OutcomeScope | None = None,
    expected_holdout_share: float | None = None,
) -> list[Evaluation]:
    """Evaluate several packs of one run date and adjust their p-values together (Holm).

    The packs are the family: each report gets ``p_value_holm`` over all of them, and its verdict
    says for how many packs it was adjusted. A pack that cannot be evaluated is left out of the
    family; the others are written, then the failures are raised together. ``out_dir`` (several
    packs) holds one folder per segment. The other options are :func:`evaluate_pack`'s, applied
    to every pack (``window_days`` None: each spec's own ``attribution_days``).
    """
    if not segments:
        raise DmpError("no segment to evaluate: give at least one --segment")
    dupes = sorted({s for s in segments if segments.count(s) > 1})
    if dupes:
        raise DmpError(f"--segment: {', '.join(dupes)} given twice")
    results: list[PackResult] = []
    failures: list[str] = []
    for segment in segments:
        where = out_dir if out_dir is None or len(segments) == 1 else f"{str(out_dir).rstrip('/')}/{segment}"
        try:
            results.append(
                compute_pack(
                    spark,
                    lake,
                    segment,
                    run_date,
                    window_days=window_days,
                    pre_period_days=pre_period_days,
                    segments_dir=segments_dir,
                    out_dir=where,
                    allow_open_window=allow_open_window,
                    scope=scope,
                    expected_holdout_share=expected_holdout_share,
                )
            )
        except DmpError as exc:
            if len(segments) == 1:
                raise
            failures.append(f"{segment}: {exc}")
    adjusted = apply_holm([r.report for r in results])
    written = []
    for result, report in zip(results, adjusted, strict=True):
        result.report = report
        written.append(write_pack(spark, lake, result))
    if failures:
        done = ", ".join(r.segment for r in results) or "none"
        raise DmpError(
            f"{len(failures)} of {len(segments)} packs of {run_date} could not be evaluated (written: {done}; "
            "their Holm adjustment leaves these out):\n" + "\n".join(f"  {f}" for f in failures)
        )
    return written


def evaluate_pack(
    spark: SparkSession,
    lake: str,
    segment: str,
    run_date: date,
    *,
    window_days: int | None = None,
    pre_period_days: int | None = None,
    segments_dir: str = "segments",
    out_dir: str | Path | None = None,
    allow_open_window: bool = False,
    scope: OutcomeScope | None = None,
    expected_holdout_share: float | None = None,
) -> Evaluation:
    """Evaluate one pack; writes gold/uplift_results (replaceWhere segment+run_date) and the report.

    ``window_days`` is the attribution window (default: the spec's ``attribution_days``);
    ``pre_period_days`` the pre-period of the balance check and CUPED (default: the window);
    ``out_dir`` a folder or ``s3://`` prefix (default: ``<lake>/reports/<segment>/<run_date>``);
    ``scope`` overrides the spec lookup (tests, or a pack whose spec was since deleted);
    ``expected_holdout_share`` the share the sample-ratio check expects (default: the spec's
    ``holdout``; without a spec and without it, the check is not run). A pack evaluated alone is
    its own family for the Holm adjustment (:func:`evaluate_packs` reads several together).
    """
    [evaluation] = evaluate_packs(
        spark,
        lake,
        [segment],
        run_date,
        window_days=window_days,
        pre_period_days=pre_period_days,
        segments_dir=segments_dir,
        out_dir=out_dir,
        allow_open_window=allow_open_window,
        scope=scope,
        expected_holdout_share=expected_holdout_share,
    )
    return evaluation
