"""Deliver audience packs to ad and coupon channels (design.md §1, §4; docs/downstream.md).

For each (segment, channel, run_date):

1. **Select** the pack's treatment users (never the holdout; a pack with ``deliverable = false``,
   i.e. under ``min_size``, is skipped) whose latest consent in ``silver/consents`` grants the
   channel's purpose (the others are counted as ``no_consent`` / ``revoked``; a lake without that
   table delivers nobody), with the identifiers of their person (``silver/persons``; nothing of a
   person who also has an account in the holdout), keep every value of the most preferred id type
   each user has (several devices -> several rows), normalise and hash
   (:mod:`dmp.steps.deliver_keys`). Users without a usable id are counted by reason, never delivered.
   A channel with ``priority`` / ``frequency_cap`` delivers its packs of a date in priority order and
   only the users those rules let through (:mod:`dmp.steps.deliver_contacts`, docs/priority_caps.md).
2. **Collect** the result to the driver (Arrow ``toPandas``). A pack is at most a few million short
   rows (an md5/sha256 hex string and an id type), i.e. a few hundred MB at most: cheaper and far
   more predictable to sort, diff and gzip in one process than to coordinate Spark part files, and it
   gives byte-identical files for identical input (sorted rows, gzip ``mtime=0``, no file name).
3. **Plan** (:mod:`dmp.delivery.plan`): incremental channels diff against the last *successful*
   delivery of that channel+segment before this run date, whose delivered rows are kept in
   ``ops/delivery_state``; the first incremental delivery is a ``full`` one. The manifest is built
   from the plan (:mod:`dmp.delivery.manifest`).
4. **Publish** (:mod:`dmp.delivery.publish`) to ``<destination>/<channel>/<segment>/<run_date>/``:
   data files, then ``manifest.json``, then an empty ``_SUCCESS`` last. No ``_SUCCESS`` = no
   delivery. A retry skips objects already stored intact (sha256 in object metadata) and finishes
   the job. Re-running an unchanged delivery touches nothing (status ``success``, message
   ``unchanged``).
5. **Record** the delivered rows in ``ops/delivery_state`` (incremental channels only: the next
   diff needs them) and every attempt in ``ops/deliveries``
   (one row per file, or one ``kind = none`` row for skipped/failed attempts), both with
   replaceWhere on their keys so a repeated write replaces instead of duplicating. Both tables are
   partitioned so that deliveries of different channels or segments, run at once by separate
   drivers, write disjoint partitions (no Delta conflict); see ``DELIVERIES_PARTITIONS``.

This module is the Spark I/O around those pure parts: it reads packs, identities and state, and
writes the two ops tables.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from dmp.contracts import tables
from dmp.contracts.channels import Channel, ChannelsConfig
from dmp.contracts.errors import DmpError
from dmp.contracts.status import DeliveryStatus, latest_attempts
from dmp.contracts.vocab import HOLDOUT, TREATMENT
from dmp.delivery.consent_gate import ConsentGate
from dmp.delivery.layout import SUCCESS, delivery_folder, manifest_key
from dmp.delivery.manifest import (
    ManifestSource,
    PackCounts,
    build_manifest,
    manifest_bytes,
    same_content,
)
from dmp.delivery.plan import (
    DeliveryPlan,
    PreviousDelivery,
    columns_for,
    diff_base_date,
    empty_rows,
    later_deliveries_in_the_way,
    output_rows,
    plan_delivery,
)
from dmp.delivery.publish import publish, read_complete_manifest
from dmp.delivery.storage import ObjectStore, open_store, sha256_hex
from dmp.delivery.targets import DeliveryTarget, targets_from_specs
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.spark.progress import phase
from dmp.steps.deliver_contacts import clear_contacts, order_pairs, record_contacts, select_contacts
from dmp.steps.deliver_keys import PERSON_TABLES, DeliveryInputs, arrow, read_person_tables, resolve_keys


@dataclass(frozen=True)
class DeliveredFile:
    """One object of a delivery as ops/deliveries records it (``rows`` is None for the manifest)."""

    kind: str  # full | add | remove | manifest
    path: str  # full URL: <destination>/<channel>/<segment>/<run_date>/<name>
    rows: int | None
    sha256: str | None  # None only for the ``kind = none`` row of an attempt without files


@dataclass
class DeliveryResult:
    segment: str
    channel: str
    run_date: date
    status: DeliveryStatus
    path: str = ""
    mode: str = ""  # full | incremental
    message: str = ""
    files: list[DeliveredFile] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)  # the manifest's counts


class DeliveryFailed(DmpError):
    def __init__(self, results: list[DeliveryResult], failures: list[str]) -> None:
        self.results = results
        self.failures = failures
        super().__init__("delivery failed for:\n  " + "\n  ".join(failures))


# ---------------------------------------------------------------- lake I/O


def _cond(**values: str | date | int) -> str:
    return " AND ".join(lk.replace_where_condition(k, [v]) for k, v in values.items())


def attempt_history(
    spark: SparkSession, lake: str, segment: str, channel: str
) -> dict[date, tuple[int, DeliveryStatus]]:
    """run_date -> (latest attempt number, its status) for one segment + channel."""
    if not lk.table_exists(spark, lake, tables.DELIVERIES):
        return {}
    rows = (
        lk.read_table(spark, lake, tables.DELIVERIES)
        .filter((F.col("segment") == segment) & (F.col("channel") == channel))
        .select("segment", "channel", "run_date", "attempt", "status")
        .collect()
    )
    attempts = latest_attempts(r.asDict() for r in rows)
    return {k.run_date: (a.attempt, a.status) for k, a in attempts.items()}


def delivered_dates(history: dict[date, tuple[int, DeliveryStatus]]) -> list[date]:
    """Run dates whose latest attempt succeeded (a complete delivery downstream can rely on)."""
    return sorted(d for d, (_attempt, status) in history.items() if status is DeliveryStatus.SUCCESS)


def _attempt_rows(result: DeliveryResult, attempt: int, now: datetime) -> list[tuple[object, ...]]:
    """ops/deliveries rows of one attempt: one per file, or one ``kind = none`` row without files."""
    files = result.files or [DeliveredFile("none", result.path, None, None)]
    return [
        (
            result.segment,
            result.channel,
            result.run_date,
            attempt,
            f.kind,
            f.path,
            f.rows,
            f.sha256,
            result.status.value,
            now,
            result.message or None,
        )
        for f in files
    ]


# ops/deliveries is partitioned by the delivery's key without the attempt: every concurrent
# `deliver` task (the DAG maps one per channel; by hand, one per segment) replaces rows in its own
# (segment, channel, run_date) partitions only, so Delta sees no conflict between them. Lakes
# written before were unpartitioned; the first write migrates the table (lk.migrate_partitioning).
DELIVERIES_PARTITIONS = ["segment", "channel", "run_date"]
DELIVERY_STATE_PARTITIONS = ["channel", "segment"]


def _record_attempt(spark: SparkSession, lake: str, result: DeliveryResult, attempt: int) -> None:
    rows = _attempt_rows(result, attempt, datetime.now(UTC).replace(tzinfo=None))
    df = spark.createDataFrame(rows, schemas.DELIVERIES_SCHEMA)
    cond = _cond(segment=result.segment, channel=result.channel, run_date=result.run_date, attempt=attempt)
    lk.overwrite_partitions(df, lake, tables.DELIVERIES, DELIVERIES_PARTITIONS, cond)


def _read_state(
    spark: SparkSession, lake: str, channel: str, segment: str, run_date: date, cols: tuple[str, ...]
) -> pd.DataFrame:
    if not lk.table_exists(spark, lake, tables.DELIVERY_STATE):
        return empty_rows(cols)
    df = (
        lk.read_table(spark, lake, tables.DELIVERY_STATE)
        .filter(
            (F.col("channel") == channel)
            & (F.col("segment") == segment)
            & (F.col("run_date") == F.lit(run_date))
        )
        .select(*cols)
    )
    with arrow(spark):
        pdf = df.toPandas()
    return pdf.astype(str) if len(pdf) else empty_rows(cols)


def _write_state(
    spark: SparkSession, lake: str, channel: str, segment: str, run_date: date, rows: pd.DataFrame
) -> None:
    pdf = pd.DataFrame({c: rows.get(c) for c in schemas.DELIVERY_STATE_COLUMNS}, dtype=object)
    pdf.insert(0, "run_date", run_date)
    pdf.insert(0, "segment", segment)
    pdf.insert(0, "channel", channel)
    with arrow(spark):
        df = (
            spark.createDataFrame(pdf, schemas.DELIVERY_STATE_SCHEMA)
            if len(pdf)
            else spark.createDataFrame([], schemas.DELIVERY_STATE_SCHEMA)
        )
    cond = _cond(channel=channel, segment=segment, run_date=run_date)
    lk.overwrite_partitions(df, lake, tables.DELIVERY_STATE, DELIVERY_STATE_PARTITIONS, cond)


# ---------------------------------------------------------------- one delivery


@dataclass
class _Context:
    spark: SparkSession
    lake: str
    packs_df: DataFrame
    identities_df: DataFrame
    consents_df: DataFrame
    versions: dict[str, int | None]
    run_dates: list[date]
    after_put: Callable[[str], None] | None = None
    stores: dict[str, ObjectStore] = field(default_factory=dict)
    person_keys_df: DataFrame | None = None  # silver/persons (dmp.steps.deliver_keys); None: never stitched
    person_ids_df: DataFrame | None = None
    targets: dict[str, DeliveryTarget] = field(default_factory=dict)  # every valid spec (priority ranks them)

    def inputs(self) -> DeliveryInputs:
        return DeliveryInputs(
            self.spark,
            self.packs_df,
            self.identities_df,
            self.consents_df,
            self.person_keys_df,
            self.person_ids_df,
        )

    def store(self, url: str) -> ObjectStore:
        if url not in self.stores:
            self.stores[url] = open_store(url)
        return self.stores[url]


@dataclass(frozen=True)
class _Job:
    """One (segment, channel, run_date) to deliver and where it goes."""

    target: DeliveryTarget
    channel_name: str
    channel: Channel
    run_date: date

    @property
    def segment(self) -> str:
        return self.target.segment

    @property
    def folder(self) -> str:
        return delivery_folder(self.channel_name, self.segment, self.run_date)

    @property
    def url(self) -> str:
        return f"{self.channel.destination}/{self.folder}"


def _pack_counts(ctx: _Context, segment: str, run_date: date) -> PackCounts | None:
    """The pack's sizes and spec hash; None when there is no pack for (segment, run_date)."""
    row = (
        ctx.packs_df.filter((F.col("segment") == segment) & (F.col("run_date") == F.lit(run_date)))
        .agg(
            F.count("*").alias("pack_size"),
            F.sum(F.when(F.col("group") == TREATMENT, 1).otherwise(0)).alias("treatment"),
            F.sum(F.when(F.col("group") == HOLDOUT, 1).otherwise(0)).alias("holdout"),
            F.bool_and("deliverable").alias("deliverable"),
            F.min("spec_hash").alias("spec_hash"),
            F.min("kind").alias("kind"),
        )
        .first()
    )
    if row is None or not row["pack_size"]:
        return None
    return PackCounts(
        pack_size=int(row["pack_size"]),
        treatment=int(row["treatment"]),
        holdout=int(row["holdout"]),
        deliverable=bool(row["deliverable"]),
        spec_hash=row["spec_hash"],
        kind=row["kind"],
    )


def _skip_reason(pack: PackCounts | None, job: _Job) -> str | None:
    """Why nothing is sent (None: deliver); raises when the pack or the spec's coupon is missing."""
    if pack is None:
        raise DmpError(
            f"no pack for segment {job.segment!r} on {job.run_date} in {tables.AUDIENCE_PACKS} (build it first)"
        )
    if not pack.deliverable:
        return (
            f"pack {job.segment} {job.run_date} is not deliverable (below the spec's min_size: "
            f"{pack.treatment} treatment users); nothing sent"
        )
    if job.channel.type == "coupon" and job.target.coupon is None:
        raise DmpError(
            f"{job.target.source or job.segment}: coupon: required by coupon channel {job.channel_name!r}"
        )
    return None


def _previous_delivery(
    ctx: _Context, store: ObjectStore, job: _Job, delivered: list[date]
) -> PreviousDelivery | None:
    """The delivery to diff against, with its rows from ops/delivery_state (None: send it full)."""
    prev_date = diff_base_date(job.channel, delivered, job.run_date)
    if prev_date is None:
        return None
    prev_folder = delivery_folder(job.channel_name, job.segment, prev_date)
    found = read_complete_manifest(store, prev_folder)
    if found is None:
        raise DmpError(
            f"{job.channel.destination}/{prev_folder}: recorded as delivered in {tables.DELIVERIES} but has no "
            f"{SUCCESS} (was the destination cleaned?); re-deliver {prev_date} first"
        )
    manifest, sha = found
    # Delivered rows are kept only for incremental channels; a channel that just switched from full
    # to incremental has no state for its last delivery, so it starts with a full one.
    if manifest.get("sync") != "incremental":
        return None
    cols, _key = columns_for(job.channel)
    rows = _read_state(ctx.spark, ctx.lake, job.channel_name, job.segment, prev_date, cols)
    return PreviousDelivery(prev_date, prev_folder, sha, rows)


def _manifest_file(job: _Job, sha: str) -> DeliveredFile:
    return DeliveredFile("manifest", f"{job.channel.destination}/{manifest_key(job.folder)}", None, sha)


def _data_files(job: _Job, manifest: dict[str, Any]) -> list[DeliveredFile]:
    return [
        DeliveredFile(f["kind"], f"{job.url}/{f['path']}", f["rows"], f["sha256"]) for f in manifest["files"]
    ]


def _publish_unless_unchanged(
    ctx: _Context,
    store: ObjectStore,
    job: _Job,
    plan: DeliveryPlan,
    manifest: dict[str, Any],
    delivered: list[date],
) -> tuple[str, DeliveredFile]:
    """Publish the planned folder unless an identical one is complete; (message, manifest file)."""
    existing = read_complete_manifest(store, job.folder)
    if existing is not None and same_content(existing[0], manifest):
        return "unchanged: identical delivery already complete; nothing rewritten", _manifest_file(
            job, existing[1]
        )
    later = later_deliveries_in_the_way(job.run_date, delivered, ctx.run_dates)
    if existing is not None and later:
        raise DmpError(
            f"{job.url} is already delivered with different content and later deliveries "
            f"exist ({', '.join(d.isoformat() for d in later)}); re-deliver {job.run_date} through {later[-1]} "
            "together (--from/--to) so the incremental chain stays consistent"
        )
    data = manifest_bytes(manifest)
    publish(store, job.folder, plan.files, data, ctx.after_put)
    return ("replaced an older version" if existing is not None else ""), _manifest_file(
        job, sha256_hex(data)
    )


def _deliver(ctx: _Context, job: _Job, result: DeliveryResult, delivered: list[date]) -> None:
    pack = _pack_counts(ctx, job.segment, job.run_date)
    skipped = _skip_reason(pack, job)
    if pack is None or skipped is not None:
        result.status = DeliveryStatus.SKIPPED
        result.message = skipped or ""
        if job.channel.has_contact_rules:  # nothing sent: no contacts left from an earlier run
            clear_contacts(ctx.spark, ctx.lake, job.channel_name, job.segment, job.run_date)
        return
    selection = None
    if job.channel.has_contact_rules:  # priority groups, frequency caps (docs/priority_caps.md)
        selection = select_contacts(
            ctx.spark,
            ctx.lake,
            ctx.packs_df,
            ctx.targets,
            job.channel_name,
            job.channel,
            job.segment,
            job.run_date,
        )
    rules = (selection.allowed_df, selection.lost) if selection is not None else ()
    keys_pdf, match, sent_users = resolve_keys(ctx.inputs(), job.channel, job.segment, job.run_date, *rules)
    gate = ConsentGate(
        int(pack.treatment) - match.excluded_users,
        job.target.min_size,
        job.channel.consent_purpose,
        ctx.versions[tables.CONSENTS] is None,
    )
    keys_pdf, match = gate.apply(keys_pdf, match)  # min_size holds for the people sent, not only the pack
    current = output_rows(keys_pdf, job.channel, job.target.coupon, job.run_date)
    store = ctx.store(job.channel.destination)
    plan = plan_delivery(current, _previous_delivery(ctx, store, job, delivered), job.channel)
    source = ManifestSource(
        job.channel_name, job.channel, job.segment, job.run_date, pack, job.target.coupon, ctx.versions
    )
    manifest = build_manifest(source, plan, match)
    result.mode = plan.mode
    result.counts = manifest["counts"]
    result.files = _data_files(job, manifest)
    message, manifest_file = _publish_unless_unchanged(ctx, store, job, plan, manifest, delivered)
    result.status = DeliveryStatus.SUCCESS
    result.message = "; ".join(m for m in (message, *gate.notes()) if m)
    result.files.append(manifest_file)
    if plan.state is not None:
        _write_state(ctx.spark, ctx.lake, job.channel_name, job.segment, job.run_date, plan.state)
    if selection is not None:
        record_contacts(ctx.spark, ctx.lake, selection, [] if gate.withheld else (sent_users or []))


def deliver_one(
    ctx: _Context,
    target: DeliveryTarget,
    channel_name: str,
    channel: Channel,
    run_date: date,
) -> DeliveryResult:
    job = _Job(target, channel_name, channel, run_date)
    result = DeliveryResult(job.segment, channel_name, run_date, DeliveryStatus.FAILED, path=job.url)
    history = attempt_history(ctx.spark, ctx.lake, job.segment, channel_name)
    attempt = history.get(run_date, (0, ""))[0] + 1
    try:
        with phase("deliver", f"{job.segment} -> {channel_name} for {run_date}"):
            _deliver(ctx, job, result, delivered_dates(history))
    except Exception as exc:
        result.status = DeliveryStatus.FAILED
        result.files = []
        result.message = str(exc) if isinstance(exc, DmpError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # the lake may be the thing that failed; keep the first error
            _record_attempt(ctx.spark, ctx.lake, result, attempt)
        if isinstance(exc, DmpError):
            raise
        raise DmpError(f"delivery {job.segment} -> {channel_name} {run_date}: {result.message}") from exc
    _record_attempt(ctx.spark, ctx.lake, result, attempt)
    return result


# ---------------------------------------------------------------- entry points


def _read_at(spark: SparkSession, lake: str, table: str, version: int | None) -> DataFrame:
    if version is None:
        return lk.read_table(spark, lake, table)
    return lk.read_pinned(spark, lake, table, version)


def _open_context(
    spark: SparkSession, lake: str, run_dates: list[date], after_put: Callable[[str], None] | None
) -> _Context:
    """Packs, identities and consents pinned at their current versions, so the manifest names exactly
    the data that was delivered. A lake without ``silver/consents`` has no consent: nobody is
    delivered (every treated user is counted as ``no_consent``; docs/privacy.md)."""
    versions = {
        table: lk.table_version(spark, lake, table)
        for table in (tables.AUDIENCE_PACKS, tables.IDENTITIES, tables.CONSENTS)
    }
    # The persons tables are named in the manifest only when the lake has them (it was stitched).
    versions |= {t: v for t in PERSON_TABLES if (v := lk.table_version(spark, lake, t)) is not None}
    packs_df = _read_at(spark, lake, tables.AUDIENCE_PACKS, versions[tables.AUDIENCE_PACKS])

    def pinned(table: str, schema: StructType) -> DataFrame:
        if versions[table] is None:
            return spark.createDataFrame([], schema)
        return _read_at(spark, lake, table, versions[table])

    person_keys_df, person_ids_df = read_person_tables(spark, lake, versions)
    return _Context(
        spark,
        lake,
        packs_df,
        pinned(tables.IDENTITIES, schemas.IDENTITIES),
        pinned(tables.CONSENTS, schemas.CONSENTS_SCHEMA),
        versions,
        sorted(run_dates),
        after_put,
        person_keys_df=person_keys_df,
        person_ids_df=person_ids_df,
    )


def _segments_on(packs_df: DataFrame, run_date: date) -> list[str]:
    rows = packs_df.filter(F.col("run_date") == F.lit(run_date)).select("segment").distinct().collect()
    return sorted(r["segment"] for r in rows)


def _deliver_date(
    ctx: _Context,
    run_date: date,
    targets: dict[str, DeliveryTarget],
    channels: ChannelsConfig,
    segment: str | None,
    channel: str | None,
) -> tuple[list[DeliveryResult], list[str]]:
    """Every wanted (segment, channel) of one run date: (results, failure lines)."""
    results: list[DeliveryResult] = []
    failures: list[str] = []
    on_date = _segments_on(ctx.packs_df, run_date)
    if segment is not None:
        if segment not in on_date:
            return results, [f"{run_date}: no pack for segment {segment!r} (build it first)"]
        on_date = [segment]
    pairs: list[tuple[str, str]] = []
    for seg in on_date:
        target = targets.get(seg)
        if target is None:
            failures.append(
                f"{run_date} {seg}: pack exists but the spec is missing or invalid; not delivered"
            )
            continue
        wanted = [c for c in target.channels if channel is None or c == channel]
        if segment is not None and channel is not None and not wanted:
            failures.append(
                f"{seg}: spec does not list channel {channel!r} (channels: {list(target.channels)})"
            )
        pairs += [(seg, name) for name in wanted]
    for seg, name in order_pairs(pairs, channels):  # a channel's packs in its priority order
        try:
            results.append(deliver_one(ctx, targets[seg], name, channels.get(name), run_date))
        except DmpError as exc:
            failures.append(f"{run_date} {seg} -> {name}: {exc}")
    return results, failures


def deliver(
    spark: SparkSession,
    lake: str,
    run_dates: list[date],
    targets: dict[str, DeliveryTarget],
    channels: ChannelsConfig,
    segment: str | None = None,
    channel: str | None = None,
    after_put: Callable[[str], None] | None = None,
) -> list[DeliveryResult]:
    """Deliver every deliverable pack of ``run_dates`` (optionally one segment / one channel).

    Dates are processed in order (incremental diffs chain). A failing (segment, channel) does not
    stop the others; a DmpError listing all failures is raised at the end.
    """
    lk.read_required(spark, lake, tables.AUDIENCE_PACKS, "dmp segments build")
    if channel is not None:
        channels.get(channel)
    if segment is not None and segment not in targets:
        raise DmpError(f"segment {segment!r}: no valid spec with that name (see `dmp segments validate`)")
    ctx = _open_context(spark, lake, run_dates, after_put)
    ctx.targets = dict(targets)
    results: list[DeliveryResult] = []
    failures: list[str] = []
    for run_date in sorted(run_dates):
        done, failed = _deliver_date(ctx, run_date, targets, channels, segment, channel)
        results += done
        failures += failed
    if failures:
        raise DeliveryFailed(results, failures)
    return results


def run_delivery(
    spark: SparkSession,
    lake: str | None,
    run_dates: list[date],
    segments_dir: str,
    segment: str | None = None,
    channel: str | None = None,
) -> list[DeliveryResult]:
    """What ``dmp deliver`` and ``jobs/deliver.py`` do: load channels + specs, deliver, raise on failures."""
    from dmp.contracts.channels import load_channels

    channels = load_channels(segments_dir)
    targets, spec_errors = targets_from_specs(segments_dir)
    try:
        return deliver(spark, tables.resolve_lake(lake), run_dates, targets, channels, segment, channel)
    except DeliveryFailed as exc:
        if spec_errors:
            exc.failures.extend(f"spec error: {e}" for e in spec_errors)
            exc.args = ("delivery failed for:\n  " + "\n  ".join(exc.failures),)
        raise
