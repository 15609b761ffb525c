"""``dmp evaluate``: uplift of a pack after its attribution window, or of an external experiment file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from dmp.cli.common import LakeOpt, SegmentsDirOpt
from dmp.cli.evaluate_options import (
    AllowOpenWindowOpt,
    ControlValueOpt,
    ExpectedHoldoutShareOpt,
    GroupColOpt,
    InputOpt,
    OutcomeColOpt,
    OutOpt,
    PreOutcomeColOpt,
    PrePeriodDaysOpt,
    RunDateOpt,
    ScoreColOpt,
    SegmentOpt,
    TreatmentValueOpt,
    ValueColOpt,
    WindowDaysOpt,
)
from dmp.contracts.tables import UPLIFT_RESULTS

if TYPE_CHECKING:
    from dmp.steps.evaluate import Evaluation


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("evaluate")(evaluate_cmd)


def evaluate_cmd(
    segment: SegmentOpt = None,
    run_date: RunDateOpt = None,
    window_days: WindowDaysOpt = None,
    pre_period_days: PrePeriodDaysOpt = None,
    segments_dir: SegmentsDirOpt = "segments",
    lake: LakeOpt = None,
    out: OutOpt = None,
    allow_open_window: AllowOpenWindowOpt = False,
    input_file: InputOpt = None,
    group_col: GroupColOpt = None,
    outcome_col: OutcomeColOpt = None,
    value_col: ValueColOpt = None,
    score_col: ScoreColOpt = None,
    pre_outcome_col: PreOutcomeColOpt = None,
    treatment_value: TreatmentValueOpt = None,
    control_value: ControlValueOpt = None,
    expected_holdout_share: ExpectedHoldoutShareOpt = None,
) -> None:
    """Measure the incremental effect of a pack (treatment vs holdout) with 95% intervals.

    Pack mode: --segment S --run-date D, over the spec's attribution_days (--window-days N
    overrides); the report goes to <lake>/reports/<segment>/<run_date>/ unless --out says
    otherwise. Repeat --segment to read several packs of D together: their p-values are
    Holm-adjusted across them. Bring-your-own mode: --input FILE --group-col G --outcome-col Y
    --out DIR (no Spark needed; --expected-holdout-share runs the sample-ratio check). Writes
    report.json and report.html (--out may be a folder or an s3:// prefix).
    """
    from dmp.contracts.errors import DmpError

    console = Console()
    if input_file:
        if segment or run_date:
            raise DmpError("give either --input FILE or --segment/--run-date, not both")
        if not (group_col and outcome_col and out):
            raise DmpError("--input needs --group-col, --outcome-col and --out")
        if pre_period_days is not None:
            raise DmpError(
                "--pre-period-days is for packs; a file brings its own pre-period (--pre-outcome-col)"
            )
        from dmp.steps.evaluate_file import ExternalColumns, evaluate_file

        columns = ExternalColumns(
            group_col=group_col,
            outcome_col=outcome_col,
            value_col=value_col,
            score_col=score_col,
            pre_outcome_col=pre_outcome_col,
            treatment_value=treatment_value,
            control_value=control_value,
        )
        results = [evaluate_file(input_file, out, columns, expected_holdout_share)]
    else:
        if not (segment and run_date):
            raise DmpError("give --segment S --run-date D (or --input FILE for an external experiment)")
        if expected_holdout_share is not None:
            raise DmpError(
                "--expected-holdout-share is for --input files; a pack's spec gives its holdout share"
            )
        results = _evaluate_packs(
            segment, run_date, window_days, pre_period_days, segments_dir, lake, out, allow_open_window
        )
        for result in results:
            report = result.report
            console.print(
                f"{UPLIFT_RESULTS}: {result.rows_written} metric rows for {report['segment']} {report['run_date']}"
            )
    for result in results:
        print_summary(console, result.report)
        console.print(f"report: {result.html_path}")
        console.print(f"json:   {result.json_path}")


def _evaluate_packs(
    segments: list[str],
    run_date: str,
    window_days: int | None,
    pre_period_days: int | None,
    segments_dir: str,
    lake: str | None,
    out: str | None,
    allow_open_window: bool,
) -> list[Evaluation]:
    """Pack mode: the date is checked before Spark starts (a typo should not cost a JVM start)."""
    from dmp.contracts.dates import parse_date
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.evaluate import evaluate_packs

    day = parse_date(run_date, "--run-date")
    root = resolve_lake(lake)
    spark = get_spark("dmp-evaluate")
    return evaluate_packs(
        spark,
        root,
        segments,
        day,
        window_days=window_days,
        pre_period_days=pre_period_days,
        segments_dir=segments_dir,
        out_dir=out,
        allow_open_window=allow_open_window,
    )


def _pts_interval(value: float | None, ci: list[float | None]) -> str:
    """+1.23 points [+0.10, +2.36] (or "-" without an estimate)."""
    if value is None:
        return "-"
    low, high = ci
    tail = f" [{low * 100:+.2f}, {high * 100:+.2f}]" if low is not None and high is not None else ""
    return f"{value * 100:+.2f} points{tail}"


def print_summary(console: Console, report: dict[str, Any]) -> None:
    """The verdict in a few lines: rates, p-values, the trust checks, cost and ROI, and the warnings."""
    console.print(
        f"treatment {report['n_treatment']:,} users, rate {report['rate_treatment'] * 100:.2f}% | "
        f"holdout {report['n_control']:,} users, rate {report['rate_control'] * 100:.2f}%"
    )
    p_value = report["p_value"]
    console.print(f"[bold]{report['verdict']}[/]" + (f"  (p = {p_value:.4g})" if p_value is not None else ""))
    if report.get("srm_p_value") is not None:
        console.print(
            f"sample ratio: holdout {report['observed_holdout_share']:.2%} of users, design "
            f"{report['expected_holdout_share']:.2%} (chi-square {report['srm_chi2']:.2f}, p = {report['srm_p_value']:.3g})"
            + (" [red]MISMATCH[/]" if report.get("srm_mismatch") else ""),
            highlight=False,
        )
    if report.get("pre_rate_treatment") is not None:
        adjusted, (low, high) = report.get("uplift_abs_adjusted"), report["uplift_abs_adjusted_ci"]
        console.print(
            f"before the campaign: treatment {report['pre_rate_treatment'] * 100:.2f}%, holdout "
            f"{report['pre_rate_control'] * 100:.2f}% (p = {report['pre_p_value']:.4g})"
            + (
                f"; adjusted uplift {adjusted * 100:+.2f} points [{low * 100:+.2f}, {high * 100:+.2f}]"
                if adjusted is not None and low is not None and high is not None
                else ""
            ),
            highlight=False,
        )
    if report.get("uplift_abs_cuped") is not None:
        reduction = report.get("variance_reduction")
        console.print(
            f"CUPED uplift {_pts_interval(report['uplift_abs_cuped'], report['uplift_abs_cuped_ci'])}"
            + (f" (variance reduced by {reduction:.1%})" if reduction is not None else ""),
            highlight=False,
        )
    if report.get("cost") is not None:
        roi, (low, high) = report.get("roi"), report["roi_ci"]
        console.print(
            f"cost {report['cost']:,.2f}; incremental ROI "
            + ("-" if roi is None else f"{roi:+.1%}")
            + (f" [{low:+.1%}, {high:+.1%}]" if low is not None and high is not None else ""),
            highlight=False,
        )
    elif report.get("cost_note"):
        console.print(f"cost: {report['cost_note']}", highlight=False)
    if report.get("qini_auc") is not None:
        console.print(f"qini_auc {report['qini_auc']:.3f}, uplift_auc {report['uplift_auc']:.3f}")
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
