"""Where uplift reports live: under the lake's report root, local or on S3 (design.md §7).

A report is written by the Spark driver, which on a cluster (or under spark-submit from an
Airflow worker) runs in a working directory nobody reads again. So the default location is
derived from the lake, never from the working directory:

    <lake>/reports/<segment>/<run_date>/report.json + report.html

A local lake keeps its reports in a folder of the lake; an ``s3a://bucket/lake`` (Spark's scheme)
or ``s3://`` lake keeps them at ``s3://bucket/lake/reports/…``, written with the same boto3 client
as deliveries (:func:`dmp.delivery.storage.s3_client`: the AWS chain or ``DMP_AWS_CONN_ID``,
botocore's standard retries). ``dmp evaluate --out`` still names another folder or ``s3://`` prefix.
``dmp summary`` lists the reports of the root with :func:`find_reports`, wherever it is.

No pyspark here: ``dmp summary`` uses it without a JVM.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dmp.contracts.errors import DmpError
from dmp.delivery.storage import ObjectStore, open_store

if TYPE_CHECKING:
    import pandas as pd

REPORTS_FOLDER = "reports"
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def _remote_url(location: str) -> str | None:
    """``s3://…`` for an S3 location (``s3a://`` is the same bucket for boto3), None for a local
    path; any other scheme is an error: a report written there could not be read back."""
    if "://" not in location:
        return None
    if location.startswith(("s3://", "s3a://")):
        return re.sub(r"^s3a://", "s3://", location).rstrip("/")
    if location.startswith("file://"):
        return location.rstrip("/")
    raise DmpError(
        f"{location}: reports can be written to a local folder, file:// or s3:// (s3a://) only; "
        "give dmp evaluate --out DIR"
    )


def report_root(lake: str) -> str:
    """``<lake>/reports``: a local folder (made absolute) or ``s3://bucket/prefix/reports``."""
    url = _remote_url(lake)
    if url is None:
        return str(Path(os.path.abspath(lake)) / REPORTS_FOLDER)
    return f"{url}/{REPORTS_FOLDER}"


def report_location(lake: str, segment: str, run_date: date) -> str:
    """The folder (or S3 prefix) of one pack's report: ``<lake>/reports/<segment>/<run_date>``."""
    return f"{report_root(lake)}/{segment}/{run_date.isoformat()}"


def open_location(location: str) -> ObjectStore:
    """The store holding ``location``: a folder (created on write) or an S3 prefix."""
    url = _remote_url(location)
    return open_store(url if url is not None else Path(os.path.abspath(location)).as_uri())


def _display(location: str, name: str) -> str:
    """Where a written file is, as a reader would type it: a local path or an ``s3://`` URL."""
    url = _remote_url(location)
    if url is None:
        return str(Path(os.path.abspath(location)) / name)
    return f"{url}/{name}"


def write_report(
    location: str, report: Mapping[str, Any], frame: pd.DataFrame | None = None
) -> tuple[str, str]:
    """Render one evaluation and write report.json, then report.html, into ``location``.

    Returns where they went (paths or ``s3://`` URLs). Local files are replaced atomically
    (tmp + rename) and S3 objects are single PUTs, so a reader sees the old report or the new one,
    never half of one; report.html goes last because it is what :func:`find_reports` lists, so a
    listed report always has its report.json.
    """
    from dmp.reports.uplift_report import report_files  # matplotlib and pandas only when writing

    store = open_location(location)  # an unsupported scheme fails before anything is rendered
    body, page = report_files(dict(report), frame)
    store.put(REPORT_JSON, body)
    store.put(REPORT_HTML, page)
    return _display(location, REPORT_JSON), _display(location, REPORT_HTML)


def find_reports(lake: str) -> dict[tuple[str, str], str]:
    """``(segment, run_date) -> report.html`` location for every report under the lake's root."""
    root = report_root(lake)
    # Listed from the lake's store ("reports/…" keys): a store's own root is not a key to list.
    found: dict[tuple[str, str], str] = {}
    for key in open_location(lake).list_keys(REPORTS_FOLDER):
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == REPORTS_FOLDER and parts[3] == REPORT_HTML:
            found[(parts[1], parts[2])] = _display(f"{root}/{parts[1]}/{parts[2]}", REPORT_HTML)
    return found
