"""``dmp evaluate``: uplift of a pack after its attribution window, or of an external experiment file."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from dmp.cli.common import LakeOpt, SegmentsDirOpt
from dmp.cli.evaluate_options import (
    AllowOpenWindowOpt,
    ControlValueOpt,
    GroupColOpt,
    InputOpt,
    OutcomeColOpt,
    OutOpt,
    PreOutcomeColOpt,
    RunDateOpt,
    ScoreColOpt,
    SegmentOpt,
    TreatmentValueOpt,
    ValueColOpt,
    WindowDaysOpt,
)
from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS
from dmp.contracts.tables import UPLIFT_RESULTS

if TYPE_CHECKING:
    from dmp.steps.evaluate import Evaluation


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("evaluate")(evaluate_cmd)


def evaluate_cmd(
    segment: SegmentOpt = None,
    run_date: RunDateOpt = None,
    window_days: WindowDaysOpt = DEFAULT_ATTRIBUTION_DAYS,
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
) -> None:
    """Measure the incremental effect of a pack (treatment vs holdout) with 95% intervals.

    Pack mode: --segment S --run-date D. Bring-your-own mode: --input FILE --group-col G
    --outcome-col Y --out DIR (no Spark needed). Writes report.json and report.html.
    """
    from dmp.contracts.errors import DmpError

    console = Console()
    if input_file:
        if segment or run_date:
            raise DmpError("give either --input FILE or --segment/--run-date, not both")
        if not (group_col and outcome_col and out):
            raise DmpError("--input needs --group-col, --outcome-col and --out")
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
        result = evaluate_file(input_file, out, columns)
    else:
        if not (segment and run_date):
            raise DmpError("give --segment S --run-date D (or --input FILE for an external experiment)")
        result = _evaluate_pack(segment, run_date, window_days, segments_dir, lake, out, allow_open_window)
        rows, day = result.rows_written, result.report["run_date"]
        console.print(f"{UPLIFT_RESULTS}: {rows} metric rows for {segment} {day}")
    print_summary(console, result.report)
    console.print(f"report: {result.html_path}")
    console.print(f"json:   {result.json_path}")


def _evaluate_pack(
    segment: str,
    run_date: str,
    window_days: int,
    segments_dir: str,
    lake: str | None,
    out: str | None,
    allow_open_window: bool,
) -> Evaluation:
    """Pack mode: the date is checked before Spark starts (a typo should not cost a JVM start)."""
    from dmp.contracts.dates import parse_date
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.evaluate import evaluate_pack

    day = parse_date(run_date, "--run-date")
    root = resolve_lake(lake)
    spark = get_spark("dmp-evaluate")
    return evaluate_pack(
        spark,
        root,
        segment,
        day,
        window_days=window_days,
        segments_dir=segments_dir,
        out_dir=out,
        allow_open_window=allow_open_window,
    )


def print_summary(console: Console, report: dict[str, Any]) -> None:
    """The verdict in a few lines: rates, p-value, the pre-period check and the warnings."""
    console.print(
        f"treatment {report['n_treatment']:,} users, rate {report['rate_treatment'] * 100:.2f}% | "
        f"holdout {report['n_control']:,} users, rate {report['rate_control'] * 100:.2f}%"
    )
    p_value = report["p_value"]
    console.print(f"[bold]{report['verdict']}[/]" + (f"  (p = {p_value:.4g})" if p_value is not None else ""))
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
    if report.get("qini_auc") is not None:
        console.print(f"qini_auc {report['qini_auc']:.3f}, uplift_auc {report['uplift_auc']:.3f}")
    for warning in report.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
