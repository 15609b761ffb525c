"""``dmp site``: read the lake into :mod:`dmp.reports.site`'s dataclasses, render, write the folder.

What each number is read from:

- packs: ``ops/pack_runs`` (kind, deliverable, reason; the latest build of a pack) and
  ``gold/audience_packs`` (size, treatment and holdout counted from the rows, so the page shows what
  the table holds; an empty pack has no rows and keeps its pack run's sizes);
- deliveries: ``ops/deliveries``, the latest attempt of each (pack, channel) when it succeeded
  (:func:`dmp.contracts.status.latest_attempts`), rows = its ``full`` + ``add`` files' rows;
- uplift: ``gold/uplift_results``, metric ``uplift_abs`` of the pack's latest evaluation;
- overlap: ``gold/pack_overlap`` when the lake has it (the page says so when not);
- data quality: ``ops/ingest_runs``;
- uplift reports (:func:`dmp.steps.report_store.find_reports`) and previews saved as
  ``<lake>/reports/<segment>/[<run_date>/]preview.html`` are copied into the site, so its links
  work from ``file://`` wherever the folder is moved.

The site is built in a temporary sibling folder and swapped in, so a reader never sees half a site;
a folder is only replaced when it holds the ``.dmp-site`` marker this step writes (never a folder
of someone else's files).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dmp.contracts import tables
from dmp.contracts.channels import DELIVERED, LOST_TO_FREQUENCY_CAP, LOST_TO_PRIORITY
from dmp.contracts.errors import DmpError
from dmp.contracts.specs.loader import spec_files
from dmp.contracts.status import as_date, latest_attempts
from dmp.reports import site as rs
from dmp.spark import lake as lk
from dmp.steps import report_store

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MARKER = ".dmp-site"
SITE_FOLDER = "site"
PREVIEW_HTML = "preview.html"
UPLIFT_METRIC = "uplift_abs"
DELIVERED_KINDS = ("full", "add")
OVERLAP_COLUMNS = ("run_date", "segment_a", "segment_b", "users_both", "share_a", "share_b")
Key = tuple[str, date]


@dataclass(frozen=True)
class SiteResult:
    out: Path
    pages: int
    packs: int
    reports_copied: int


def default_out(lake: str) -> Path:
    """``<lake>/site`` for a local lake; an object-storage lake needs ``--out`` (a local folder)."""
    if "://" in lake and not lake.startswith("file://"):
        raise DmpError(
            f"{lake} is not a local folder: give dmp site --out DIR (publishing to S3 is not supported)"
        )
    return Path(lake.removeprefix("file://")) / SITE_FOLDER


# ------------------------------------------------------------------------------------------ read


def _rows(spark: SparkSession, lake: str, table: str, columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """The table's rows (only ``columns``), [] when the lake does not have it."""
    if not lk.table_exists(spark, lake, table):
        return []
    return [r.asDict() for r in lk.read_table(spark, lake, table).select(*columns).collect()]


def _pack_runs(spark: SparkSession, lake: str) -> dict[Key, dict[str, Any]]:
    """The latest pack run of every (segment, run_date)."""
    columns = ("segment", "run_date", "kind", "size", "holdout_size", "treatment_size", "deliverable")
    latest: dict[Key, dict[str, Any]] = {}
    for row in _rows(spark, lake, tables.PACK_RUNS, (*columns, "reason", "built_at")):
        key = (str(row["segment"]), as_date(row["run_date"]))
        if key not in latest or row["built_at"] >= latest[key]["built_at"]:
            latest[key] = row
    return latest


def _pack_counts(spark: SparkSession, lake: str) -> dict[Key, dict[str, Any]]:
    """Rows per group of every pack in gold/audience_packs, with its kind and deliverability."""
    from pyspark.sql import functions as F

    if not lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
        return {}
    grouped_df = (
        lk.read_table(spark, lake, tables.AUDIENCE_PACKS)
        .groupBy("segment", "run_date")
        .agg(
            F.count(F.lit(1)).alias("size"),
            F.sum(F.when(F.col("group") == "holdout", 1).otherwise(0)).alias("holdout"),
            F.first("kind").alias("kind"),
            F.first("deliverable").alias("deliverable"),
            F.first("reason").alias("reason"),
        )
    )
    return {(str(r["segment"]), as_date(r["run_date"])): r.asDict() for r in grouped_df.collect()}


def _contact_losses(spark: SparkSession, lake: str) -> dict[tuple[str, str, date], dict[str, int]]:
    """(segment, channel, run_date) -> people lost per outcome (priority, frequency cap)."""
    from pyspark.sql import functions as F

    if not lk.table_exists(spark, lake, tables.CHANNEL_CONTACTS):
        return {}
    counts = (
        lk.read_table(spark, lake, tables.CHANNEL_CONTACTS)
        .filter(F.col("outcome") != F.lit(DELIVERED))
        .groupBy("segment", "channel", "run_date", "outcome")
        .count()
        .collect()
    )
    lost: dict[tuple[str, str, date], dict[str, int]] = {}
    for r in counts:
        lost.setdefault((r["segment"], r["channel"], as_date(r["run_date"])), {})[r["outcome"]] = int(
            r["count"]
        )
    return lost


def _deliveries(spark: SparkSession, lake: str) -> dict[Key, tuple[rs.ChannelDelivery, ...]]:
    """Per pack, the channels whose latest attempt succeeded, the rows it delivered and what the
    channel's priority and frequency cap kept from it."""
    columns = ("segment", "channel", "run_date", "attempt", "kind", "rows", "status")
    losses = _contact_losses(spark, lake)
    found: dict[Key, list[rs.ChannelDelivery]] = {}
    for key, attempt in latest_attempts(_rows(spark, lake, tables.DELIVERIES, columns)).items():
        if not attempt.delivered:
            continue
        files = [r for r in attempt.rows if r.get("kind") in DELIVERED_KINDS]
        delivery = rs.ChannelDelivery(
            channel=key.channel,
            rows=sum(int(r.get("rows") or 0) for r in files),
            kinds=tuple(sorted({str(r["kind"]) for r in files})),
            lost_priority=losses.get((key.segment, key.channel, as_date(key.run_date)), {}).get(
                LOST_TO_PRIORITY, 0
            ),
            lost_cap=losses.get((key.segment, key.channel, as_date(key.run_date)), {}).get(
                LOST_TO_FREQUENCY_CAP, 0
            ),
        )
        found.setdefault((key.segment, key.run_date), []).append(delivery)
    return {k: tuple(sorted(v, key=lambda d: d.channel)) for k, v in found.items()}


def _uplifts(spark: SparkSession, lake: str) -> dict[Key, rs.Uplift]:
    """Per pack, ``uplift_abs`` (and its p-value) of its latest evaluation."""
    columns = ("segment", "channel", "run_date", "metric", "value", "ci_low", "ci_high")
    rows = _rows(spark, lake, tables.UPLIFT_RESULTS, (*columns, "n_treatment", "n_holdout", "evaluated_at"))
    latest: dict[Key, datetime] = {}
    for row in rows:
        key = (str(row["segment"]), as_date(row["run_date"]))
        if row["metric"] == UPLIFT_METRIC and (key not in latest or row["evaluated_at"] > latest[key]):
            latest[key] = row["evaluated_at"]
    metrics: dict[Key, dict[str, dict[str, Any]]] = {}
    for row in rows:
        key = (str(row["segment"]), as_date(row["run_date"]))
        if latest.get(key) == row["evaluated_at"]:
            metrics.setdefault(key, {})[str(row["metric"])] = row
    out: dict[Key, rs.Uplift] = {}
    for key, by_metric in metrics.items():
        row, p_value = by_metric[UPLIFT_METRIC], by_metric.get("p_value", {})
        out[key] = rs.Uplift(
            value=row["value"],
            ci_low=row["ci_low"],
            ci_high=row["ci_high"],
            channel=str(row["channel"]),
            n_treatment=int(row["n_treatment"]),
            n_holdout=int(row["n_holdout"]),
            p_value=p_value.get("value"),
        )
    return out


def _overlap(spark: SparkSession, lake: str) -> tuple[rs.OverlapPair, ...] | None:
    if not lk.table_exists(spark, lake, tables.PACK_OVERLAP):
        return None
    rows = _rows(spark, lake, tables.PACK_OVERLAP, OVERLAP_COLUMNS)
    return tuple(
        rs.OverlapPair(
            run_date=as_date(r["run_date"]),
            segment_a=str(r["segment_a"]),
            segment_b=str(r["segment_b"]),
            users_both=int(r["users_both"] or 0),
            share_a=r["share_a"],
            share_b=r["share_b"],
        )
        for r in rows
    )


def _ingest_runs(spark: SparkSession, lake: str) -> tuple[rs.IngestRun, ...]:
    columns = ("run_id", "source", "status", "rows_read", "accepted", "quarantined", "reasons")
    rows = _rows(spark, lake, tables.INGEST_RUNS, (*columns, "message", "started_at"))
    runs = [
        rs.IngestRun(
            run_id=str(r["run_id"]),
            source=str(r["source"]),
            status=str(r["status"]),
            rows_read=int(r["rows_read"] or 0),
            accepted=int(r["accepted"] or 0),
            quarantined=int(r["quarantined"] or 0),
            reasons={str(k): int(v or 0) for k, v in (r["reasons"] or {}).items()},
            message=r["message"],
            started_at=r["started_at"],
        )
        for r in rows
    ]
    return tuple(sorted(runs, key=lambda r: (r.started_at or datetime.min, r.run_id), reverse=True))


def read_specs(segments_dir: str | Path) -> dict[str, rs.SpecText]:
    """Each spec file's text by segment name (its ``name:``, else the file name); a file that does
    not parse is still shown, under its file name."""
    specs: dict[str, rs.SpecText] = {}
    for path in spec_files(segments_dir):
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError:
            parsed = None
        doc = parsed if isinstance(parsed, dict) else {}
        name = doc.get("name") if isinstance(doc.get("name"), str) else path.stem
        description = doc.get("description")
        specs.setdefault(
            name, rs.SpecText(name, path.name, text, description if isinstance(description, str) else "")
        )
    return specs


# ------------------------------------------------------------------------------------------ build


def _packs(spark: SparkSession, lake: str) -> list[rs.Pack]:
    runs, counts = _pack_runs(spark, lake), _pack_counts(spark, lake)
    deliveries, uplifts = _deliveries(spark, lake), _uplifts(spark, lake)
    packs = []
    for key in sorted(set(runs) | set(counts)):
        run, count = runs.get(key), counts.get(key)
        if count is not None:
            size, holdout = int(count["size"]), int(count["holdout"] or 0)
        else:
            assert run is not None
            size, holdout = int(run["size"]), int(run["holdout_size"])
        info = run if run is not None else count
        assert info is not None
        packs.append(
            rs.Pack(
                segment=key[0],
                run_date=key[1],
                kind=str(info["kind"]),
                size=size,
                holdout=holdout,
                treatment=size - holdout,
                deliverable=bool(info["deliverable"]),
                reason=info.get("reason"),
                deliveries=deliveries.get(key, ()),
                uplift=uplifts.get(key),
            )
        )
    return packs


def _copy_reports(lake: str, packs: list[rs.Pack], staging: Path) -> tuple[list[rs.Pack], int]:
    """Copy each pack's uplift report and preview into the site; the packs with their hrefs."""
    reports = report_store.find_reports(lake)
    keys = set(report_store.open_location(lake).list_keys(report_store.REPORTS_FOLDER))
    out, copied = [], 0
    for pack in packs:
        day, name = pack.run_date.isoformat(), rs.slug(pack.segment)
        report_href = preview_href = None
        location = reports.get((pack.segment, day))
        if location is not None:
            report_href = f"reports/{name}/{day}/{report_store.REPORT_HTML}"
            folder = location.rsplit("/", 1)[0]
            _save(staging / report_href, report_store.open_location(folder).get(report_store.REPORT_HTML))
            copied += 1
        folder_key = f"{report_store.REPORTS_FOLDER}/{pack.segment}"
        for key in (f"{folder_key}/{day}/{PREVIEW_HTML}", f"{folder_key}/{PREVIEW_HTML}"):
            if key in keys:
                preview_href = f"previews/{name}/{day}.html"
                _save(staging / preview_href, report_store.open_location(lake).get(key))
                break
        out.append(replace(pack, report_href=report_href, preview_href=preview_href))
    return out, copied


def _save(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def collect_site(spark: SparkSession, lake: str, segments_dir: str | Path) -> rs.SiteData:
    """Everything the site shows, read from the lake and the segments folder (no report copies)."""
    notes = []
    if not Path(segments_dir).is_dir():
        notes.append(f"Segments folder {segments_dir} not found: pack pages show no spec.")
    return rs.SiteData(
        lake=lake,
        generated_at=datetime.now(UTC),
        packs=tuple(_packs(spark, lake)),
        overlap=_overlap(spark, lake),
        specs=read_specs(segments_dir) if Path(segments_dir).is_dir() else {},
        ingest_runs=_ingest_runs(spark, lake),
        notes=tuple(notes),
    )


def _swap_in(staging: Path, out: Path) -> None:
    """Replace ``out`` by ``staging``; ``out`` must be empty, missing, or a site written here."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
            raise DmpError(f"{out} exists and is not a site written by dmp site: choose another --out")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
        os.replace(staging, out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out)


def write_site(
    spark: SparkSession, lake: str | None, segments_dir: str | Path, out: str | Path | None
) -> SiteResult:
    """What ``dmp site`` does: read, copy the reports, render every page, swap the folder in."""
    root = tables.resolve_lake(lake)
    target = Path(out).absolute() if out is not None else default_out(root).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    data = collect_site(spark, root, segments_dir)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; the site is meant to be read
    try:
        packs, copied = _copy_reports(root, list(data.packs), staging)
        pages = rs.render_site(_with_packs(data, packs))
        for rel, page in pages.items():
            _save(staging / rel, page.encode("utf-8"))
        (staging / MARKER).write_text(f"written by dmp site at {data.generated_at.isoformat()}\n")
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return SiteResult(target, len(pages), len(packs), copied)


def _with_packs(data: rs.SiteData, packs: list[rs.Pack]) -> rs.SiteData:
    return replace(data, packs=tuple(packs))
