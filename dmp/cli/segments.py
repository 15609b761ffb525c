"""``dmp segments validate | schema | build | preview``: marketers' specs -> audience packs.

Every text printed here that comes from a spec, a path or a pattern goes through
``rich.markup.escape``: rich reads ``[a-z0-9_]`` in ``^[a-z0-9_]+$`` as a style tag and drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SegmentsDirOpt, ToOpt
from dmp.contracts import tables
from dmp.contracts.errors import DmpError

if TYPE_CHECKING:  # pyspark only when a command needs it: `dmp --help` stays fast
    from dmp.steps.packs import BuildReport

DEFAULT_SEGMENTS = "segments"
SCHEMA_FILE = "schema.json"

console = Console()
segments_app = typer.Typer(
    help="Segment specs (YAML) and the audience packs built from them.", no_args_is_help=True
)

PathsArg = Annotated[
    list[Path] | None, typer.Argument(help="Spec files to check (default: every spec in --segments).")
]
SpecOpt = Annotated[
    list[Path] | None,
    typer.Option("--spec", help="Build only this spec (and what it depends on); repeatable."),
]


@segments_app.command("validate")
def validate(paths: PathsArg = None, segments: SegmentsDirOpt = DEFAULT_SEGMENTS) -> None:
    """Check specs and channels.yaml: fields, types, tags, operators, channels, references, cycles."""
    from dmp.contracts.specs import load_specs

    spec_set = load_specs(segments, list(paths) if paths else None)
    for issue in spec_set.errors:
        console.print(f"[red]✗[/] {escape(str(issue))}", highlight=False, soft_wrap=True)
    for name in spec_set.selected:
        shown = escape(f"{spec_set.path_of[name]} ({spec_set.specs[name].kind})")
        console.print(f"[green]✓[/] {shown}", highlight=False, soft_wrap=True)
    if spec_set.errors:
        raise DmpError(f"{len(spec_set.errors)} problem(s) in the segment specs of {segments}")
    console.print(escape(f"{len(spec_set.selected)} spec(s) valid in {segments}"), highlight=False)


@segments_app.command("schema")
def schema(
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write here instead of <segments>/schema.json.")
    ] = None,
) -> None:
    """(Re)generate the JSON Schema editors use to autocomplete and check specs."""
    from dmp.contracts.specs import json_schema_text

    target = out or Path(segments) / SCHEMA_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json_schema_text(), encoding="utf-8")
    console.print(escape(f"JSON Schema written to {target}"), highlight=False)


@segments_app.command("build")
def build(
    lake: LakeOpt = None,
    date: DateOpt = None,
    from_: FromOpt = None,
    to: ToOpt = None,
    spec: SpecOpt = None,
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
) -> None:
    """Build the audience packs for a date (or range) into gold/audience_packs and ops/pack_runs."""
    from dmp.contracts.dates import resolve_dates
    from dmp.spark.session import get_spark
    from dmp.steps.packs import build_packs

    days = resolve_dates(date, from_, to)
    root = tables.resolve_lake(lake)
    spark = get_spark("dmp-segments-build")
    problems = 0
    for day in days:
        report = build_packs(spark, root, segments, day, list(spec) if spec else None)
        print_report(report)
        problems += len(report.invalid) + len(report.failed)
    packs_at, runs_at = (
        tables.table_path(root, tables.AUDIENCE_PACKS),
        tables.table_path(root, tables.PACK_RUNS),
    )
    console.print(escape(f"packs in {packs_at}, runs in {runs_at}"), highlight=False)
    if problems:
        raise DmpError(f"{problems} spec(s) invalid or failed; the valid packs were built")


def print_report(report: BuildReport) -> None:
    """Rich table of one date's build (``segments build``, also under spark-submit)."""
    table = Table(title=escape(f"audience packs {report.run_date}"))
    for col in ("segment", "kind", "size", "holdout", "deliverable", "note"):
        table.add_column(col)
    for res in report.results:
        if res.status == "built":
            note = res.reason or ("" if res.requested else "built as a dependency")
            lookalike = res.metrics.get("lookalike") if res.metrics else None
            if lookalike and lookalike.get("recall_at_k") is not None:
                note = (
                    f"recall@k {lookalike['recall_at_k']:.3f}, lift {lookalike.get('lift') or 0:.2f} " + note
                )
            table.add_row(
                escape(res.segment),
                escape(res.kind),
                str(res.size),
                str(res.holdout_size),
                "yes" if res.deliverable else "[yellow]no[/]",
                escape(note),
            )
        else:
            table.add_row(
                escape(res.segment), escape(res.kind), "-", "-", "[red]failed[/]", escape(res.error or "")
            )
    console.print(table)
    for line in report.invalid:
        console.print(f"[red]✗[/] {escape(line)}", highlight=False, soft_wrap=True)


@segments_app.command("preview")
def preview(
    path: Annotated[Path, typer.Argument(help="The spec to preview.")],
    lake: LakeOpt = None,
    date: DateOpt = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report with charts.")
    ] = None,
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
) -> None:
    """Size, holdout, overlap with other packs and audience profile of one spec, without writing it."""
    from dmp.contracts.dates import parse_date
    from dmp.contracts.tables import resolve_lake
    from dmp.spark.session import get_spark
    from dmp.steps.preview import run_preview

    # No --date: run_preview uses the latest tag snapshot.
    spark = get_spark("dmp-segments-preview")
    run_preview(spark, resolve_lake(lake), path, segments, parse_date(date) if date else None, html)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.add_typer(segments_app, name="segments")
