"""``dmp site``: the static web pages marketers open (packs, uplift, overlap, data quality).

Reads the lake with Spark (:mod:`dmp.steps.site`) and writes a folder of self-contained pages
(:mod:`dmp.reports.site`) that opens from ``file://`` offline; docs/site.md says what is on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from dmp.cli.common import LakeOpt, SegmentsDirOpt

DEFAULT_SEGMENTS = "segments"

console = Console()


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("site")(site_cmd)


def site_cmd(
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Folder to write the site into (default <lake>/site; replaced as a whole)."
        ),
    ] = None,
    lake: LakeOpt = None,
    segments: SegmentsDirOpt = DEFAULT_SEGMENTS,
) -> None:
    """Write the static site: packs by run date, uplift forest plots, overlap heatmaps, ingest runs."""
    from dmp.contracts import tables
    from dmp.spark.session import get_spark
    from dmp.steps.site import write_site

    spark = get_spark("dmp-site")
    result = write_site(spark, tables.resolve_lake(lake), segments, out)
    console.print(
        escape(
            f"site written to {result.out / 'index.html'} "
            f"({result.packs} pack(s), {result.pages} page(s), {result.reports_copied} report(s) copied)"
        ),
        highlight=False,
        soft_wrap=True,
    )
