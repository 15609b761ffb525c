"""``dmp evaluate``: uplift of a pack after its attribution window, or of an external experiment file."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from dmp.cli.common import LakeOpt, SegmentsDirOpt


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""

    @app.command("evaluate")
    def evaluate(
        segment: Annotated[
            str | None, typer.Option("--segment", help="Segment whose pack to evaluate.")
        ] = None,
        run_date: Annotated[
            str | None, typer.Option("--run-date", help="The pack's run date R (YYYY-MM-DD).")
        ] = None,
        window_days: Annotated[
            int, typer.Option("--window-days", help="Attribution window: days R+1 … R+N after the run date.")
        ] = 14,
        segments_dir: SegmentsDirOpt = "segments",
        lake: LakeOpt = None,
        out: Annotated[
            str | None,
            typer.Option("--out", help="Report folder (default <lake>/../reports/<segment>/<run_date>)."),
        ] = None,
        allow_open_window: Annotated[
            bool,
            typer.Option("--allow-open-window", help="Evaluate before the data reaches R+N (interim look)."),
        ] = False,
        input_file: Annotated[
            str | None, typer.Option("--input", help="Bring your own experiment: a .csv or .parquet table.")
        ] = None,
        group_col: Annotated[
            str | None, typer.Option("--group-col", help="[--input] treatment/control column.")
        ] = None,
        outcome_col: Annotated[
            str | None, typer.Option("--outcome-col", help="[--input] 0/1 conversion column.")
        ] = None,
        value_col: Annotated[
            str | None, typer.Option("--value-col", help="[--input] value (e.g. GMV) column.")
        ] = None,
        score_col: Annotated[
            str | None, typer.Option("--score-col", help="[--input] ranking score column.")
        ] = None,
        pre_outcome_col: Annotated[
            str | None,
            typer.Option(
                "--pre-outcome-col",
                help="[--input] 0/1 conversion before the campaign: balance check and adjusted uplift.",
            ),
        ] = None,
        treatment_value: Annotated[
            str | None,
            typer.Option(
                "--treatment-value", help="[--input] label of treated rows (default treatment or 1)."
            ),
        ] = None,
        control_value: Annotated[
            str | None,
            typer.Option(
                "--control-value", help="[--input] label of control rows (default control, holdout or 0)."
            ),
        ] = None,
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
            from dmp.steps.evaluate import evaluate_file

            result = evaluate_file(
                input_file,
                out,
                group_col=group_col,
                outcome_col=outcome_col,
                value_col=value_col,
                score_col=score_col,
                pre_outcome_col=pre_outcome_col,
                treatment_value=treatment_value,
                control_value=control_value,
            )
        else:
            if not (segment and run_date):
                raise DmpError("give --segment S --run-date D (or --input FILE for an external experiment)")
            from dmp.contracts.dates import parse_date
            from dmp.contracts.tables import resolve_lake
            from dmp.spark.session import get_spark
            from dmp.steps.evaluate import evaluate_pack

            day = parse_date(run_date, "--run-date")
            root = resolve_lake(lake)
            spark = get_spark("dmp-evaluate")
            result = evaluate_pack(
                spark,
                root,
                segment,
                day,
                window_days=window_days,
                segments_dir=segments_dir,
                out_dir=out,
                allow_open_window=allow_open_window,
            )
            console.print(f"gold/uplift_results: {result.rows_written} metric rows for {segment} {day}")
        print_summary(console, result.report)
        console.print(f"report: {result.html_path}")
        console.print(f"json:   {result.json_path}")


def print_summary(console: Console, report: dict) -> None:
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
