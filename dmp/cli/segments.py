"""``dmp segments validate | schema | build | estimate | overlap | preview | suggest``: marketers' specs -> audience packs.

``suggest`` writes the spec of a pack's kept sub-audience from its evaluation's subgroup table
(:mod:`dmp.contracts.specs.suggest`), validated, not built.

Every text printed here that comes from a spec, a path or a pattern goes through
``rich.markup.escape``: rich reads ``[a-z0-9_]`` in ``^[a-z0-9_]+$`` as a style tag and drops it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dmp.cli.common import DateOpt, FromOpt, LakeOpt, SegmentsDirOpt, ToOpt
from dmp.contracts import tables
from dmp.contracts.errors import DmpError

if TYPE_CHECKING:  # pyspark only when a command needs it: `dmp --help` stays fast
    from datetime import date

    from dmp.steps.overlap import OverlapPair
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


SampleOpt = Annotated[
    float, typer.Option("--sample", help="Share of people the estimate reads (0 < share <= 1).")
]


@segments_app.command("estimate")
def estimate(
    path: Annotated[Path, typer.Argument(help="The spec to size.")],
    lake: LakeOpt = None,
    date: DateOpt = None,
    sample: SampleOpt = 0.05,
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
) -> None:
    """Expected size, holdout and deliverable verdict of a spec from a hash sample, with a 95% interval."""
    import time

    from dmp.contracts.dates import parse_date
    from dmp.spark.session import get_spark
    from dmp.steps.estimate import estimate_spec

    spark = get_spark("dmp-segments-estimate")
    started = time.monotonic()
    res = estimate_spec(
        spark, tables.resolve_lake(lake), path, segments, parse_date(date) if date else None, sample
    )
    est = res.estimate
    table = Table(title=escape(f"estimate of {res.segment} ({res.kind}) for {res.run_date}"))
    for col in ("sampled people", "size", f"{est.confidence:.0%} interval", "holdout", "min_size", "verdict"):
        table.add_column(col)
    verdict = {"deliverable": "[green]deliverable[/]", "too small": "[red]too small[/]"}.get(
        est.verdict, "[yellow]uncertain[/]"
    )
    table.add_row(
        f"{est.sampled:,} of a {est.fraction:.1%} sample",
        f"{est.size:,}",
        f"{est.low:,} .. {est.high:,}",
        f"{est.holdout:,}",
        f"{est.min_size:,}",
        verdict,
    )
    console.print(table)
    console.print(f"estimated in {time.monotonic() - started:.1f}s; nothing written", highlight=False)


@segments_app.command("overlap")
def overlap(lake: LakeOpt = None, date: DateOpt = None, from_: FromOpt = None, to: ToOpt = None) -> None:
    """People in both of every pair of a run date's packs (treatment groups) into gold/pack_overlap."""
    from dmp.contracts.dates import resolve_dates
    from dmp.spark.session import get_spark
    from dmp.steps.overlap import run_overlap

    days = resolve_dates(date, from_, to)
    root = tables.resolve_lake(lake)
    pairs = run_overlap(get_spark("dmp-segments-overlap"), root, days)
    for day in days:
        print_overlap(day, [p for p in pairs if p.run_date == day])
    console.print(escape(f"pairs in {tables.table_path(root, tables.PACK_OVERLAP)}"), highlight=False)


def print_overlap(day: date, pairs: list[OverlapPair]) -> None:
    """One date's pairs, the largest overlaps first (shares of each pack's treatment group)."""
    if not pairs:
        console.print(escape(f"{day}: fewer than two packs built, no pairs"), highlight=False)
        return
    table = Table(title=escape(f"pack overlap {day} (treatment groups, people)"))
    for col in ("pack a", "pack b", "size a", "size b", "in both", "share of a", "share of b"):
        table.add_column(col)
    from dmp.reports.numbers import pct

    for p in sorted(pairs, key=lambda p: (-p.users_both, p.segment_a, p.segment_b)):
        table.add_row(
            escape(p.segment_a),
            escape(p.segment_b),
            f"{p.size_a:,}",
            f"{p.size_b:,}",
            f"{p.users_both:,}",
            pct(p.share_a, 1),
            pct(p.share_b, 1),
        )
    console.print(table)


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


FromEvaluationOpt = Annotated[
    tuple[str, str],
    typer.Option(
        "--from-evaluation",
        metavar="SEGMENT RUN_DATE",
        help="The evaluated pack whose subgroup table is read (its report.json under the lake's reports).",
    ),
]


def read_evaluation(
    lake: str, segment: str, run_date: str, report_dir: str | None
) -> tuple[dict[str, Any], str]:
    """(report.json, where it was read) of one evaluation: ``report_dir`` (an ``dmp evaluate --out``
    folder) or ``<lake>/reports/<segment>/<run_date>``."""
    import json

    from dmp.contracts.dates import parse_date
    from dmp.steps.report_store import REPORT_JSON, open_location, report_location

    location = report_dir or report_location(lake, segment, parse_date(run_date))
    store = open_location(location)
    where = f"{location.rstrip('/')}/{REPORT_JSON}"
    if not store.exists(REPORT_JSON):
        raise DmpError(f"{where}: no evaluation of {segment} on {run_date}; run dmp evaluate first")
    try:
        report = json.loads(store.get(REPORT_JSON))
    except ValueError as exc:
        raise DmpError(f"{where}: not a JSON report ({exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("subgroups"), dict):
        raise DmpError(f"{where}: subgroups: missing; re-run dmp evaluate to compute the subgroup table")
    if report.get("segment") not in (None, segment):
        raise DmpError(f"{where}: segment: the report is of {report.get('segment')!r}, expected {segment!r}")
    return report, where


@segments_app.command("suggest")
def suggest(
    from_evaluation: FromEvaluationOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Folder for <segment>_suggested.yaml (not the segments folder: not built)."
        ),
    ] = Path("suggestions"),
    tag: Annotated[
        str | None,
        typer.Option("--tag", help="Keep the kept subgroups of this tag (default: the table's suggestion)."),
    ] = None,
    report_dir: Annotated[
        str | None,
        typer.Option("--report", help="The evaluation's folder when dmp evaluate --out put it elsewhere."),
    ] = None,
    lake: LakeOpt = None,
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
) -> None:
    """Write the spec of the sub-audience a pack's evaluation says to keep (validated, not built)."""
    from dmp.contracts.specs.suggest import original_spec, suggest_spec, write_suggestion

    segment, run_date = from_evaluation
    report, where = read_evaluation(tables.resolve_lake(lake), segment, run_date, report_dir)
    raw = original_spec(segments, segment)
    suggestion = suggest_spec(raw, report["subgroups"], source=where, run_date=run_date, tag=tag)
    path = write_suggestion(suggestion, out, segments)
    share = suggestion.keep_n / suggestion.n_users if suggestion.n_users else 0.0
    console.print(
        escape(
            f"{path}: {suggestion.name} keeps {suggestion.tag} = {', '.join(suggestion.kept)} "
            f"({suggestion.keep_n:,} of {suggestion.n_users:,} users on {run_date}, {share:.1%}); validated, not built"
        ),
        highlight=False,
        soft_wrap=True,
    )
    for note in suggestion.notes:
        console.print(f"[yellow]![/] {escape(note)}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.add_typer(segments_app, name="segments")
