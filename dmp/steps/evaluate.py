"""Uplift evaluation of an audience pack after its attribution window, or of an external experiment.

Pipeline: ``gold/audience_packs`` (segment, run_date) gives treatment and holdout users;
``silver/user_daily`` gives their orders and GMV in the spec's scope on R+1 … R+N; Spark reduces
that to one row per pack user (small), and :mod:`dmp.stats.uplift` computes the statistics in pandas.
Every pack user counts, delivered or not (intent to treat): dropping treatment users who could not
be reached would compare a selected subgroup with an unselected holdout. The same outcome over the N
days up to the run date (R-N+1 … R, before anyone was contacted) is the pre-period balance check:
a chance gap between the groups there is reported, and adjusted for (:func:`dmp.stats.uplift.adjusted_uplift`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.status import delivered_keys
from dmp.spark import lake as lk
from dmp.stats import uplift

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DEFAULT_WINDOW_DAYS = 14
SCOPE_COLUMNS = {"store_ids": "store_id", "brand_ids": "brand_id", "category_ids": "category_id"}


@dataclass
class Evaluation:
    report: dict[str, Any]
    json_path: Path
    html_path: Path
    rows_written: int = 0


# ------------------------------------------------------------------------------------------
# pure Spark transforms
# ------------------------------------------------------------------------------------------


def scope_condition(scope: dict[str, Any]) -> Any:
    """Rows of user_daily inside the outcome scope.

    ``match: all`` (default; a spec's ``scope``): every given list narrows (store AND brand AND
    category). ``match: any`` (a competitor_intercept's ``own``): a row counts when its store OR its
    brand is listed. No lists: every row counts.
    """
    from pyspark.sql import functions as F

    conds = [F.col(column).isin(list(scope[key])) for key, column in SCOPE_COLUMNS.items() if scope.get(key)]
    if not conds:
        return F.lit(True)
    combined = conds[0]
    for cond in conds[1:]:
        combined = (combined | cond) if scope.get("match") == "any" else (combined & cond)
    return F.coalesce(combined, F.lit(False))


def filter_window(daily_df: DataFrame, run_date: date, window_days: int) -> DataFrame:
    """R+1 … R+N: the attribution window starts the day after the run date."""
    from pyspark.sql import functions as F

    first, last = run_date + timedelta(days=1), run_date + timedelta(days=window_days)
    return daily_df.filter(F.col("event_date").between(F.lit(first), F.lit(last)))


def pre_window(run_date: date, window_days: int) -> tuple[date, date]:
    """R-N+1 … R: the N days up to and including the run date, before the pack was delivered."""
    return run_date - timedelta(days=window_days - 1), run_date


def _converters(daily_df: DataFrame, first: date, last: date, scope: dict[str, Any]) -> DataFrame:
    from pyspark.sql import functions as F

    return (
        daily_df.filter(F.col("event_date").between(F.lit(first), F.lit(last)) & (F.col("orders") > 0))
        .filter(scope_condition(scope))
        .select("user_id")
        .distinct()
        .withColumn("pre_converted", F.lit(1))
    )


def with_outcomes(
    pack_df: DataFrame, daily_df: DataFrame, run_date: date, window_days: int, scope: dict[str, Any]
) -> DataFrame:
    """One row per pack user: group, score, converted, value (GMV), orders, days_to_convert (1..N),
    and pre_converted (an order in scope in the N days up to the run date)."""
    from pyspark.sql import functions as F

    outcomes_df = (
        filter_window(daily_df, run_date, window_days)
        .filter(scope_condition(scope))
        .groupBy("user_id")
        .agg(
            F.sum("orders").alias("orders"),
            F.sum("gmv").alias("value"),
            F.min(F.when(F.col("orders") > 0, F.col("event_date"))).alias("first_order_date"),
        )
    )
    extra = [c for c in ("deliverable",) if c in pack_df.columns]
    pre_df = _converters(daily_df, *pre_window(run_date, window_days), scope)
    return (
        pack_df.select("user_id", "group", "score", *extra)
        .join(outcomes_df, "user_id", "left")
        .join(pre_df, "user_id", "left")
        .select(
            "user_id",
            "group",
            *extra,
            F.col("score").cast("double").alias("score"),
            (F.coalesce(F.col("orders"), F.lit(0)) > 0).cast("int").alias("converted"),
            F.coalesce(F.col("value"), F.lit(0.0)).cast("double").alias("value"),
            F.coalesce(F.col("orders"), F.lit(0)).cast("long").alias("orders"),
            F.datediff(F.col("first_order_date"), F.lit(run_date)).alias("days_to_convert"),
            F.coalesce(F.col("pre_converted"), F.lit(0)).cast("int").alias("pre_converted"),
        )
    )


# ------------------------------------------------------------------------------------------
# reading the lake
# ------------------------------------------------------------------------------------------


def _ids(obj: Any, key: str) -> list[str]:
    ids = obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)
    return [str(i) for i in ids] if ids else []


def spec_scope(spec: Any) -> dict[str, Any]:
    """Where a conversion must happen for this spec: the dict :func:`scope_condition` takes.

    store_revisit: its ``scope`` (lists ANDed). competitor_intercept: its ``own`` brands/stores
    (ORed: buying ours anywhere, or anything in our store). lookalike / rule, or no scope given:
    every order counts (an empty scope).
    """
    get = spec.get if isinstance(spec, dict) else lambda k: getattr(spec, k, None)
    if get("scope") is not None:
        scope = {key: _ids(get("scope"), key) for key in SCOPE_COLUMNS}
        return {**{k: v for k, v in scope.items() if v}, "match": "all"}
    if get("kind") == "competitor_intercept" and get("own") is not None:
        own = {key: _ids(get("own"), key) for key in ("store_ids", "brand_ids")}
        return {**{k: v for k, v in own.items() if v}, "match": "any"}
    return {}


def find_spec(segments_dir: str, segment: str) -> Any:
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
    from pyspark.sql import functions as F

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


def pack_segments(spark: SparkSession, lake: str, run_date: date) -> list[str]:
    """Segments with a pack on ``run_date`` (for evaluating every pack of a day)."""
    from pyspark.sql import functions as F

    if not lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
        return []
    df = lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(F.col("run_date") == F.lit(run_date))
    return sorted(r["segment"] for r in df.select("segment").distinct().collect())


def check_window_closed(
    daily_df: DataFrame, run_date: date, window_days: int, allow_open: bool
) -> tuple[date | None, date | None]:
    """(earliest, latest) day with data; raises unless the data reaches R+N (or ``allow_open``)."""
    from pyspark.sql import functions as F

    last_needed = run_date + timedelta(days=window_days)
    span = daily_df.agg(F.min("event_date").alias("first"), F.max("event_date").alias("last")).first()
    earliest, latest = span["first"], span["last"]
    if (latest is None or latest < last_needed) and not allow_open:
        raise DmpError(
            f"the attribution window {run_date + timedelta(days=1)} … {last_needed} has not closed: "
            f"silver/user_daily reaches {latest}; wait until it covers {last_needed} "
            "(or pass --allow-open-window for an interim look)"
        )
    return earliest, latest


def earlier_deliveries(
    spark: SparkSession, lake: str, segment: str, run_date: date, window_days: int
) -> list[date]:
    """Run dates D in R-2N+1 … R-1 on which this segment's pack was delivered (latest attempt per
    channel succeeded). Its treated users (the holdout is stable across runs) were then contacted
    during D+1 … D+N, which overlaps the pre-period R-N+1 … R."""
    first, last = run_date - timedelta(days=2 * window_days - 1), run_date - timedelta(days=1)
    return sorted({day for day, _ in successful_deliveries(spark, lake, segment, first, last)})


def load_pack(spark: SparkSession, lake: str, segment: str, run_date: date) -> DataFrame:
    from pyspark.sql import functions as F

    if not lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
        raise DmpError(
            f"{tables.table_path(lake, tables.AUDIENCE_PACKS)}: table not found; build the packs first"
        )
    return lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(
        (F.col("segment") == segment) & (F.col("run_date") == F.lit(run_date))
    )


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


def result_rows(
    report: dict[str, Any],
    segment: str,
    channel: str,
    run_date: date,
    window_days: int,
    evaluated_at: datetime,
) -> list[dict[str, Any]]:
    rows = []

    def add(metric: str, value: Any, ci: list[Any] | None = None) -> None:
        low, high = ci if ci else (None, None)
        rows.append(
            {
                "segment": segment,
                "channel": channel,
                "run_date": run_date,
                "metric": metric,
                "value": None if value is None else float(value),
                "ci_low": None if low is None else float(low),
                "ci_high": None if high is None else float(high),
                "n_treatment": int(report["n_treatment"]),
                "n_holdout": int(report["n_control"]),
                "window_days": int(window_days),
                "evaluated_at": evaluated_at,
            }
        )

    for metric, ci_key in RESULT_METRICS:
        if metric in report:
            add(metric, report[metric], report.get(ci_key) if ci_key else None)
    for k, v in (report.get("uplift_at_k") or {}).items():
        add(f"uplift_at_k_{k}", v)
    return rows


def write_results(
    spark: SparkSession, lake: str, rows: list[dict[str, Any]], segment: str, run_date: date
) -> None:
    from pyspark.sql.types import (
        DateType,
        DoubleType,
        IntegerType,
        LongType,
        StringType,
        StructField,
        StructType,
        TimestampType,
    )

    schema = StructType(
        [
            StructField("segment", StringType(), False),
            StructField("channel", StringType(), False),
            StructField("run_date", DateType(), False),
            StructField("metric", StringType(), False),
            StructField("value", DoubleType(), True),
            StructField("ci_low", DoubleType(), True),
            StructField("ci_high", DoubleType(), True),
            StructField("n_treatment", LongType(), False),
            StructField("n_holdout", LongType(), False),
            StructField("window_days", IntegerType(), False),
            StructField("evaluated_at", TimestampType(), False),
        ]
    )
    df = spark.createDataFrame(rows, schema=schema)
    condition = f"{lk.replace_where_condition('segment', [segment])} AND {lk.replace_where_condition('run_date', [run_date])}"
    lk.overwrite_partitions(df, lake, tables.UPLIFT_RESULTS, ["segment"], condition)


# ------------------------------------------------------------------------------------------
# the pipeline step
# ------------------------------------------------------------------------------------------


def evaluate_pack(
    spark: SparkSession,
    lake: str,
    segment: str,
    run_date: date,
    *,
    window_days: int = DEFAULT_WINDOW_DAYS,
    segments_dir: str = "segments",
    out_dir: str | Path | None = None,
    allow_open_window: bool = False,
    scope: dict[str, Any] | None = None,
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
        scope = spec_scope(spec)
    if not lk.table_exists(spark, lake, tables.USER_DAILY):
        raise DmpError(
            f"{tables.table_path(lake, tables.USER_DAILY)}: table not found; run dmp aggregate first"
        )
    daily_df = lk.read_table(spark, lake, tables.USER_DAILY)
    earliest, latest = check_window_closed(daily_df, run_date, window_days, allow_open_window)

    pack_df = load_pack(spark, lake, segment, run_date)
    users = with_outcomes(pack_df, daily_df, run_date, window_days, scope).toPandas()
    if users.empty:
        raise DmpError(
            f"{tables.table_path(lake, tables.AUDIENCE_PACKS)}: no pack for segment {segment!r} on {run_date}; "
            "build it with dmp segments build"
        )
    if users["user_id"].duplicated().any():
        dups = users.loc[users["user_id"].duplicated(), "user_id"].head(3).tolist()
        raise DmpError(
            f"{tables.AUDIENCE_PACKS}: pack {segment}/{run_date} lists users more than once, e.g. {dups}"
        )
    frame = users.drop(columns=[c for c in ("deliverable",) if c in users.columns])
    if frame["score"].isna().any():
        frame = frame.drop(columns=["score"])  # unscored (or partly scored) packs: no ranking metrics
    frame["days_to_convert"] = frame["days_to_convert"].astype("float")
    pre_first, pre_last = pre_window(run_date, window_days)
    contacted = earlier_deliveries(spark, lake, segment, run_date, window_days)
    if contacted:  # the pre-period is not "before the campaign" for these users
        frame = frame.drop(columns=["pre_converted"])

    channels = delivered_channels(spark, lake, segment, run_date)
    channel = "+".join(channels) if channels else "none"
    evaluated_at = datetime.now(UTC).replace(tzinfo=None, microsecond=0)

    report = uplift.evaluate_experiment(
        frame, window_days=window_days, source=f"{tables.AUDIENCE_PACKS} {segment}/{run_date}"
    )
    if not channels:
        report["warnings"].append(
            "no delivery of this pack is recorded in ops/deliveries: treatment users may never have been contacted"
        )
    if "deliverable" in users.columns and not users["deliverable"].any():
        report["warnings"].append(
            "the pack was marked not deliverable (below min_size): no one was contacted"
        )
    if not any(scope.get(key) for key in SCOPE_COLUMNS):
        report["warnings"].append(
            "the spec has no scope: an order anywhere on the platform counts as a conversion"
        )
    if latest is not None and latest < run_date + timedelta(days=window_days):
        report["warnings"].append(f"interim look: the window is still open (data up to {latest})")
    if contacted:
        dates = ", ".join(str(day) for day in contacted[-3:])
        shown = dates if len(contacted) <= 3 else f"{len(contacted)} earlier run dates, the latest {dates}"
        report["warnings"].append(
            f"no pre-period check: this segment was also delivered on {shown}, so its treated users were "
            f"already contacted during part of {pre_first} … {pre_last}"
        )
    elif earliest is not None and earliest > pre_first:
        report["warnings"].append(
            f"the pre-period check covers only {earliest} … {pre_last} of {pre_first} … {pre_last}: "
            f"silver/user_daily starts on {earliest}"
        )
    report.update(
        {
            "segment": segment,
            "run_date": run_date.isoformat(),
            "kind": getattr(spec, "kind", None) if spec is not None else None,
            "scope": scope,
            "channel": channel,
            "channels": channels,
            "window_days": window_days,
            "window": [
                (run_date + timedelta(days=1)).isoformat(),
                (run_date + timedelta(days=window_days)).isoformat(),
            ],
            "pre_window": [pre_first.isoformat(), pre_last.isoformat()],
            "outcome": "converted = at least one order in scope in the window; value = GMV in scope in the window",
            "data_until": latest.isoformat() if latest else None,
            "evaluated_at": evaluated_at.isoformat() + "Z",
            "lake": lake,
        }
    )
    report["title"] = f"Uplift report: {segment} (run {run_date})"

    rows = result_rows(report, segment, channel, run_date, window_days, evaluated_at)
    write_results(spark, lake, rows, segment, run_date)
    out = Path(out_dir) if out_dir else default_out_dir(lake, segment, run_date)
    json_path, html_path = write_report(out, report, frame)
    return Evaluation(report, json_path, html_path, len(rows))


# ------------------------------------------------------------------------------------------
# bring your own experiment
# ------------------------------------------------------------------------------------------


def _norm_label(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip().lower()


def read_table_file(path: str | Path) -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise DmpError(f"{p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
    except (ValueError, OSError) as exc:
        raise DmpError(f"{p}: cannot read as {suffix[1:]}: {exc}") from exc
    raise DmpError(f"{p}: unsupported file type {suffix!r}; expected .csv or .parquet")


def prepare_external(
    raw: pd.DataFrame,
    source: str,
    *,
    group_col: str,
    outcome_col: str,
    value_col: str | None = None,
    score_col: str | None = None,
    pre_outcome_col: str | None = None,
    treatment_value: str | None = None,
    control_value: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Map an external table to the core's columns; returns (frame, info about what was used/ignored)."""
    for option, col in (
        ("--group-col", group_col),
        ("--outcome-col", outcome_col),
        ("--value-col", value_col),
        ("--score-col", score_col),
        ("--pre-outcome-col", pre_outcome_col),
    ):
        if col is not None and col not in raw.columns:
            raise DmpError(f"{source}: column {col!r} ({option}) not found; columns are {list(raw.columns)}")

    labels = raw[group_col].map(_norm_label)
    present = sorted({v for v in labels if v is not None})
    t_val = _norm_label(treatment_value) if treatment_value is not None else None
    c_val = _norm_label(control_value) if control_value is not None else None
    if t_val is None:
        t_val = "treatment" if "treatment" in present else ("1" if "1" in present else None)
    if c_val is None:
        c_val = next((v for v in ("control", "holdout", "0") if v in present), None)
    if t_val is None or c_val is None:
        raise DmpError(
            f"{source}: cannot tell treatment from control in column {group_col!r} (values {present[:10]}); "
            "give --treatment-value and --control-value"
        )
    if t_val == c_val:
        raise DmpError(f"{source}: --treatment-value and --control-value are both {t_val!r}")

    is_t, is_c = labels == t_val, labels == c_val
    other = ~(is_t | is_c)
    other_counts = labels[other].fillna("<empty>").value_counts()
    frame = pd.DataFrame(
        {
            "group": is_t[~other].map({True: uplift.TREATMENT, False: uplift.HOLDOUT}),
            "converted": raw.loc[~other, outcome_col],
        }
    )
    if value_col:
        frame["value"] = raw.loc[~other, value_col]
    if score_col:
        frame["score"] = raw.loc[~other, score_col]
    if pre_outcome_col:
        frame["pre_converted"] = raw.loc[~other, pre_outcome_col]
    frame = frame.reset_index(drop=True)
    if not is_t.any():
        raise DmpError(
            f"{source}: no rows with {group_col} = {t_val!r} (treatment); values are {present[:10]}"
        )
    if not is_c.any():
        raise DmpError(f"{source}: no rows with {group_col} = {c_val!r} (control); values are {present[:10]}")
    info = {
        "input": source,
        "group_col": group_col,
        "outcome_col": outcome_col,
        "value_col": value_col,
        "score_col": score_col,
        "pre_outcome_col": pre_outcome_col,
        "treatment_value": t_val,
        "control_value": c_val,
        "rows_read": len(raw),
        "other_group_rows": int(other.sum()),
        "other_group_values": {str(k): int(v) for k, v in other_counts.head(10).items()},
    }
    return frame, info


def evaluate_file(
    path: str | Path,
    out_dir: str | Path,
    *,
    group_col: str,
    outcome_col: str,
    value_col: str | None = None,
    score_col: str | None = None,
    pre_outcome_col: str | None = None,
    treatment_value: str | None = None,
    control_value: str | None = None,
) -> Evaluation:
    """The same statistics on an external CSV/Parquet table; no Spark involved."""
    from dmp.reports.uplift_report import write_report

    source = str(path)
    raw = read_table_file(path)
    frame, info = prepare_external(
        raw,
        source,
        group_col=group_col,
        outcome_col=outcome_col,
        value_col=value_col,
        score_col=score_col,
        pre_outcome_col=pre_outcome_col,
        treatment_value=treatment_value,
        control_value=control_value,
    )
    try:
        report = uplift.evaluate_experiment(frame, source=source)
    except DmpError as exc:
        # name the user's columns rather than the core's
        msg = str(exc)
        for core, user in (
            ("'pre_converted'", pre_outcome_col),
            ("'converted'", outcome_col),
            ("'value'", value_col),
            ("'score'", score_col),
        ):
            if user:
                msg = msg.replace(f"column {core}", f"column {user!r}")
        raise DmpError(msg) from None
    report.update(info)
    if info["other_group_rows"]:
        report["warnings"].append(
            f"{info['other_group_rows']} row(s) in neither group were ignored: {info['other_group_values']}"
        )
    report["title"] = f"Uplift report: {Path(source).name}"
    report["evaluated_at"] = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    json_path, html_path = write_report(out_dir, report, frame)
    return Evaluation(report, json_path, html_path)
