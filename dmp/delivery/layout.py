"""Where a delivery sits on its destination (docs/downstream.md, the downstream contract).

``<destination>/<channel>/<segment>/<run_date>/`` holds the data files, then ``manifest.json``,
then an empty ``_SUCCESS`` written last. The sender (:mod:`dmp.steps.deliver`) and the reference
client (:mod:`dmp.delivery.pull`) both name folders and marker files through this module, so the
two sides cannot drift apart.
"""

from __future__ import annotations

from datetime import date

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"  # empty; its presence is what makes a folder a delivery


def segment_folder(channel: str, segment: str) -> str:
    """``<channel>/<segment>``: the parent of one segment's run-date folders on a channel."""
    return f"{channel}/{segment}"


def delivery_folder(channel: str, segment: str, run_date: date | str) -> str:
    """``<channel>/<segment>/<run_date>``; the reference client passes folder names (ISO strings)."""
    day = run_date.isoformat() if isinstance(run_date, date) else run_date
    return f"{segment_folder(channel, segment)}/{day}"


def manifest_key(folder: str) -> str:
    return f"{folder}/{MANIFEST}"


def success_key(folder: str) -> str:
    return f"{folder}/{SUCCESS}"
