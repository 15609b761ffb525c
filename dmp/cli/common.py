"""Options shared by every command (typer ``Annotated`` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

from dmp.contracts.settings import SETTINGS

LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake", envvar=SETTINGS["lake"].env, help="Lake root (default ./lakehouse); local path or s3a://."
    ),
]
DateOpt = Annotated[str | None, typer.Option("--date", help="Run date YYYY-MM-DD.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="First date of a range (inclusive).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Last date of a range (inclusive).")]
SegmentsDirOpt = Annotated[
    str,
    typer.Option(
        "--segments", envvar=SETTINGS["segments"].env, help="Folder of segment specs and channels.yaml."
    ),
]
SkipChecksOpt = Annotated[
    bool,
    typer.Option("--skip-checks", help="Skip the Great Expectations gate (the DAG runs it as its own task)."),
]
