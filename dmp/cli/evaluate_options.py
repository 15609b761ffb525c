"""Options of ``dmp evaluate`` (typer ``Annotated`` aliases): pack mode, then bring-your-own mode."""

from __future__ import annotations

from typing import Annotated

import typer

# pack mode
SegmentOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--segment",
        help="Segment whose pack to evaluate; repeat it to read several packs of the run date together "
        "(their p-values are Holm-adjusted across them).",
    ),
]
RunDateOpt = Annotated[str | None, typer.Option("--run-date", help="The pack's run date R (YYYY-MM-DD).")]
WindowDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--window-days",
        help="Attribution window N: days R+1 … R+N after the run date (default: the spec's attribution_days).",
    ),
]
PrePeriodDaysOpt = Annotated[
    int | None,
    typer.Option(
        "--pre-period-days",
        help="Pre-period P: days R-P+1 … R before the run date, for the balance check and CUPED "
        "(default: the attribution window).",
    ),
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Report folder or s3:// prefix (default <lake>/reports/<segment>/<run_date>, next to the data).",
    ),
]
AllowOpenWindowOpt = Annotated[
    bool, typer.Option("--allow-open-window", help="Evaluate before the data reaches R+N (interim look).")
]

# bring your own experiment
InputOpt = Annotated[
    str | None, typer.Option("--input", help="Bring your own experiment: a .csv or .parquet table.")
]
GroupColOpt = Annotated[str | None, typer.Option("--group-col", help="[--input] treatment/control column.")]
OutcomeColOpt = Annotated[str | None, typer.Option("--outcome-col", help="[--input] 0/1 conversion column.")]
ValueColOpt = Annotated[str | None, typer.Option("--value-col", help="[--input] value (e.g. GMV) column.")]
ScoreColOpt = Annotated[str | None, typer.Option("--score-col", help="[--input] ranking score column.")]
PreOutcomeColOpt = Annotated[
    str | None,
    typer.Option(
        "--pre-outcome-col",
        help="[--input] 0/1 conversion before the campaign: balance check and adjusted uplift.",
    ),
]
ExpectedHoldoutShareOpt = Annotated[
    float | None,
    typer.Option(
        "--expected-holdout-share",
        help="[--input] the holdout share the design asked for (e.g. 0.1): the sample-ratio check. "
        "Packs take their spec's holdout.",
    ),
]
TreatmentValueOpt = Annotated[
    str | None,
    typer.Option("--treatment-value", help="[--input] label of treated rows (default treatment or 1)."),
]
ControlValueOpt = Annotated[
    str | None,
    typer.Option("--control-value", help="[--input] label of control rows (default control, holdout or 0)."),
]
