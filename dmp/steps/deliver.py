"""Deliver audience packs to ad and coupon channels (design.md §1, §4; docs/downstream.md).

For each (segment, channel, run_date):

1. **Select** the pack's treatment users (never the holdout; a pack with ``deliverable = false``,
   i.e. under ``min_size``, is skipped), join ``silver/identities``, keep every value of the most
   preferred id type each user has (several devices -> several rows), normalise and hash
   (:mod:`dmp.transforms.ids`). Users without a usable id are counted by reason, never delivered.
2. **Collect** the result to the driver (Arrow ``toPandas``). A pack is at most a few million short
   rows (an md5/sha256 hex string and an id type), i.e. a few hundred MB at most: cheaper and far
   more predictable to sort, diff and gzip in one process than to coordinate Spark part files, and it
   gives byte-identical files for identical input (sorted rows, gzip ``mtime=0``, no file name).
3. **Diff** (incremental channels) against the last *successful* delivery of that channel+segment
   before this run date, whose delivered rows are kept in ``ops/delivery_state``; the first
   incremental delivery is a ``full`` one.
4. **Publish** to ``<destination>/<channel>/<segment>/<run_date>/``: data files, then
   ``manifest.json``, then an empty ``_SUCCESS`` last. No ``_SUCCESS`` = no delivery. A retry
   skips objects already stored intact (sha256 in object metadata) and finishes the job. Re-running
   an unchanged delivery touches nothing (status ``success``, message ``unchanged``).
5. **Record** the delivered rows in ``ops/delivery_state`` (incremental channels only: the next
   diff needs them) and every attempt in ``ops/deliveries``
   (one row per file, or one ``kind = none`` row for skipped/failed attempts), both with
   replaceWhere on their keys so a repeated write replaces instead of duplicating.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import Channel, ChannelsConfig
from dmp.contracts.errors import DmpError
from dmp.contracts.status import DeliveryStatus, latest_attempts
from dmp.delivery.storage import ObjectStore, open_store, sha256_hex
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.transforms.ids import NO_ID, user_key_col, with_normalised_id

MANIFEST = "manifest.json"
SUCCESS = "_SUCCESS"
MANIFEST_VERSION = 1
ROWS_PER_FILE = 2_000_000

AD_COLUMNS = ("id_type", "user_key")
AD_KEY = ("id_type", "user_key")
COUPON_COLUMNS = ("user_key", "coupon_id", "value", "threshold", "valid_from", "valid_to")
COUPON_KEY = ("user_key", "coupon_id")
STATE_COLUMNS = schemas.DELIVERY_STATE_COLUMNS


@dataclass(frozen=True)
class CouponSettings:
    coupon_id: str
    value: float
    threshold: float
    valid_days: int


@dataclass(frozen=True)
class DeliveryTarget:
    """What delivery needs from a segment spec."""

    segment: str
    channels: tuple[str, ...]
    coupon: CouponSettings | None = None
    source: str = ""  # spec file, for messages


@dataclass
class DeliveryResult:
    segment: str
    channel: str
    run_date: date
    status: DeliveryStatus
    path: str = ""
    mode: str = ""  # full | incremental
    message: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)
    counts: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- pure transforms


def filter_deliverable_treatment(packs_df: DataFrame, segment: str, run_date: date) -> DataFrame:
    """Users that may be delivered: the pack's treatment group, only when the pack is deliverable."""
    return (
        packs_df.filter(
            (F.col("segment") == segment)
            & (F.col("run_date") == F.lit(run_date))
            & (F.col("group") == "treatment")
            & F.col("deliverable")
        )
        .select("user_id")
        .distinct()
    )


def with_id_rank(ids_df: DataFrame, id_types: list[str]) -> DataFrame:
    """``id_rank`` = position of the row's id type in the channel's preference list (0 = best)."""
    rank = F.lit(None).cast("int")
    for i, typ in reversed(list(enumerate(id_types))):
        rank = F.when(F.col("id_type") == typ, F.lit(i)).otherwise(rank)
    return ids_df.withColumn("id_rank", rank)


def resolve_user_keys(treatment_df: DataFrame, identities_df: DataFrame, channel: Channel) -> DataFrame:
    """One row per delivered (user, key) and one row per unmatched user.

    Columns: user_id, id_type, user_key (null when unmatched), reason (null when matched). A user
    gets every valid value of the most preferred id type they have; an invalid value never counts.
    The unmatched reason is the invalid reason of the user's most preferred id, else ``no_id``.
    """
    accepted = [t for t in channel.id_types if t != "user_id"]
    ids_df = (
        identities_df.filter(F.col("id_type").isin(accepted))
        .select("user_id", "id_type", "id_value")
        .join(treatment_df, "user_id", "left_semi")  # normalise only what can be delivered
    )
    if "user_id" in channel.id_types:
        own = treatment_df.select(
            "user_id", F.lit("user_id").alias("id_type"), F.col("user_id").alias("id_value")
        )
        ids_df = ids_df.unionByName(own)
    norm_df = ids_df.transform(with_normalised_id, channel.phone_format).transform(
        with_id_rank, list(channel.id_types)
    )
    per_user = Window.partitionBy("user_id")
    cand_df = treatment_df.join(norm_df, "user_id", "left").withColumn(
        "best_rank", F.min(F.when(F.col("norm_value").isNotNull(), F.col("id_rank"))).over(per_user)
    )
    matched_df = cand_df.filter(
        F.col("norm_value").isNotNull() & (F.col("id_rank") == F.col("best_rank"))
    ).select(
        "user_id",
        "id_type",
        user_key_col(F.col("id_type"), F.col("norm_value"), dict(channel.hash)).alias("user_key"),
        F.lit(None).cast("string").alias("reason"),
    )
    unmatched_df = (
        cand_df.filter(F.col("best_rank").isNull())
        .groupBy("user_id")
        .agg(
            F.min_by(
                F.coalesce(F.col("invalid_reason"), F.lit(NO_ID)),
                F.coalesce(F.col("id_rank"), F.lit(1 << 20)),
            ).alias("reason")
        )
        .select(
            "user_id",
            F.lit(None).cast("string").alias("id_type"),
            F.lit(None).cast("string").alias("user_key"),
            "reason",
        )
    )
    return matched_df.unionByName(unmatched_df).distinct()


# ---------------------------------------------------------------- files (driver side, deterministic)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def output_rows(
    keys_pdf: pd.DataFrame, channel: Channel, coupon: CouponSettings | None, run_date: date
) -> pd.DataFrame:
    """Sorted, de-duplicated delivery rows (all strings) in the channel's column order.

    Coupons are valid from the day after the run date for ``valid_days`` days (the same days as the
    attribution window that evaluates the campaign).
    """
    if channel.type == "coupon":
        if coupon is None:
            raise DmpError(
                "coupon channel needs the spec's coupon: {coupon_id, value, threshold, valid_days}"
            )
        out = pd.DataFrame({"user_key": keys_pdf["user_key"].astype(str)})
        out["coupon_id"] = coupon.coupon_id
        out["value"] = _num(coupon.value)
        out["threshold"] = _num(coupon.threshold)
        out["valid_from"] = (run_date + timedelta(days=1)).isoformat()
        out["valid_to"] = (run_date + timedelta(days=coupon.valid_days)).isoformat()
        cols = list(COUPON_COLUMNS)
    else:
        out = keys_pdf[list(AD_COLUMNS)].astype(str)
        cols = list(AD_COLUMNS)
    out = out[cols].drop_duplicates().sort_values(cols, kind="mergesort").reset_index(drop=True)
    return out


def columns_for(channel: Channel) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (COUPON_COLUMNS, COUPON_KEY) if channel.type == "coupon" else (AD_COLUMNS, AD_KEY)


def diff_rows(
    current: pd.DataFrame, previous: pd.DataFrame, key: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(add, remove): rows whose key is new today / rows whose key was delivered last time but not today."""
    keys = list(key)
    cur_keys = current[keys].drop_duplicates()
    prev_keys = previous[keys].drop_duplicates()
    add = current.merge(prev_keys, on=keys, how="left", indicator=True)
    add = add[add["_merge"] == "left_only"].drop(columns="_merge")
    remove = previous.merge(cur_keys, on=keys, how="left", indicator=True)
    remove = remove[remove["_merge"] == "left_only"].drop(columns="_merge")
    cols = list(current.columns)
    return (
        add[cols].sort_values(cols, kind="mergesort").reset_index(drop=True),
        remove[cols].sort_values(cols, kind="mergesort").reset_index(drop=True),
    )


def encode_csv_gz(rows: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a header, ``\\n`` line ends, gzip with mtime 0 and no file name: same rows, same bytes."""
    text = rows.to_csv(index=False, lineterminator="\n")
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def build_files(
    parts: dict[str, pd.DataFrame], rows_per_file: int = ROWS_PER_FILE
) -> dict[str, tuple[bytes, int]]:
    """``{kind: rows}`` -> ``{"kind/part-00000.csv.gz": (bytes, rows)}``; an empty kind still gets one file."""
    files: dict[str, tuple[bytes, int]] = {}
    for kind, rows in parts.items():
        chunks = max(1, -(-len(rows) // rows_per_file))
        for i in range(chunks):
            chunk = rows.iloc[i * rows_per_file : (i + 1) * rows_per_file]
            files[f"{kind}/part-{i:05d}.csv.gz"] = (encode_csv_gz(chunk), len(chunk))
    return files


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def content_fingerprint(manifest: dict[str, Any]) -> Any:
    """What makes two deliveries the same for downstream (table versions may differ harmlessly)."""
    files = sorted((f["path"], f["sha256"]) for f in manifest.get("files", []))
    prev = manifest.get("previous") or {}
    return (
        files,
        manifest.get("spec_hash"),
        manifest.get("mode"),
        prev.get("run_date"),
        prev.get("manifest_sha256"),
    )


# ---------------------------------------------------------------- lake I/O


@contextlib.contextmanager
def _arrow(spark: SparkSession) -> Iterator[None]:
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        yield
    finally:
        spark.conf.set(key, before)


def _read_at(spark: SparkSession, lake: str, table: str, version: int | None) -> DataFrame:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return reader.load(tables.table_path(lake, table))


def _empty_identities(spark: SparkSession) -> DataFrame:
    return spark.createDataFrame([], "user_id string, id_type string, id_value string")


def _cond(**values: Any) -> str:
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


def _record_attempt(spark: SparkSession, lake: str, result: DeliveryResult, attempt: int) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        (
            result.segment,
            result.channel,
            result.run_date,
            attempt,
            f["kind"],
            f["path"],
            f["rows"],
            f["sha256"],
            result.status.value,
            now,
            result.message or None,
        )
        for f in result.files
    ] or [
        (
            result.segment,
            result.channel,
            result.run_date,
            attempt,
            "none",
            result.path,
            None,
            None,
            result.status.value,
            now,
            result.message or None,
        )
    ]
    df = spark.createDataFrame(rows, schemas.DELIVERIES_SCHEMA)
    cond = _cond(segment=result.segment, channel=result.channel, run_date=result.run_date, attempt=attempt)
    lk.overwrite_partitions(df, lake, tables.DELIVERIES, [], cond)


def _read_state(
    spark: SparkSession, lake: str, channel: str, segment: str, run_date: date, cols: tuple[str, ...]
) -> pd.DataFrame:
    if not lk.table_exists(spark, lake, tables.DELIVERY_STATE):
        return pd.DataFrame({c: pd.Series(dtype=str) for c in cols})
    df = (
        lk.read_table(spark, lake, tables.DELIVERY_STATE)
        .filter(
            (F.col("channel") == channel)
            & (F.col("segment") == segment)
            & (F.col("run_date") == F.lit(run_date))
        )
        .select(*cols)
    )
    with _arrow(spark):
        pdf = df.toPandas()
    return pdf.astype(str) if len(pdf) else pd.DataFrame({c: pd.Series(dtype=str) for c in cols})


def _write_state(
    spark: SparkSession, lake: str, channel: str, segment: str, run_date: date, rows: pd.DataFrame
) -> None:
    pdf = pd.DataFrame({c: rows.get(c) for c in STATE_COLUMNS}, dtype=object)
    pdf.insert(0, "run_date", run_date)
    pdf.insert(0, "segment", segment)
    pdf.insert(0, "channel", channel)
    with _arrow(spark):
        df = (
            spark.createDataFrame(pdf, schemas.DELIVERY_STATE_SCHEMA)
            if len(pdf)
            else spark.createDataFrame([], schemas.DELIVERY_STATE_SCHEMA)
        )
    cond = _cond(channel=channel, segment=segment, run_date=run_date)
    lk.overwrite_partitions(df, lake, tables.DELIVERY_STATE, ["channel", "segment"], cond)


# ---------------------------------------------------------------- publishing


def _publish(
    store: ObjectStore,
    folder: str,
    files: dict[str, tuple[bytes, int]],
    manifest: bytes,
    after_put: Callable[[str], None] | None,
) -> None:
    """Data files, then the manifest, then ``_SUCCESS``; objects already stored intact are kept."""
    store.delete(f"{folder}/{SUCCESS}")  # an incomplete folder must never look complete
    wanted = {f"{folder}/{name}" for name in files}
    for key in store.list_keys(folder):
        if key not in wanted:  # stale parts of an older version of this delivery, old manifest
            store.delete(key)
    for name, (data, _rows) in sorted(files.items()):
        key = f"{folder}/{name}"
        if store.stored_sha256(key) != sha256_hex(data):
            store.put(key, data)
        if after_put:
            after_put(key)
    store.put(f"{folder}/{MANIFEST}", manifest)
    if after_put:
        after_put(f"{folder}/{MANIFEST}")
    store.put(f"{folder}/{SUCCESS}", b"")
    if after_put:
        after_put(f"{folder}/{SUCCESS}")


def _existing_manifest(store: ObjectStore, folder: str) -> tuple[dict[str, Any], str] | None:
    """The manifest of a COMPLETE delivery in ``folder`` (and its sha256), else None."""
    if not store.exists(f"{folder}/{SUCCESS}"):
        return None
    data = store.get(f"{folder}/{MANIFEST}")
    return json.loads(data), sha256_hex(data)


# ---------------------------------------------------------------- one delivery


@dataclass
class _Context:
    spark: SparkSession
    lake: str
    packs_df: DataFrame
    identities_df: DataFrame
    versions: dict[str, int | None]
    run_dates: list[date]
    after_put: Callable[[str], None] | None = None
    stores: dict[str, ObjectStore] = field(default_factory=dict)

    def store(self, url: str) -> ObjectStore:
        if url not in self.stores:
            self.stores[url] = open_store(url)
        return self.stores[url]


def _pack_counts(ctx: _Context, segment: str, run_date: date) -> dict[str, Any]:
    row = (
        ctx.packs_df.filter((F.col("segment") == segment) & (F.col("run_date") == F.lit(run_date)))
        .agg(
            F.count("*").alias("pack_size"),
            F.sum(F.when(F.col("group") == "treatment", 1).otherwise(0)).alias("treatment"),
            F.sum(F.when(F.col("group") == "holdout", 1).otherwise(0)).alias("holdout"),
            F.bool_and("deliverable").alias("deliverable"),
            F.min("spec_hash").alias("spec_hash"),
            F.min("kind").alias("kind"),
        )
        .first()
    )
    return row.asDict() if row is not None else {}


def deliver_one(
    ctx: _Context,
    target: DeliveryTarget,
    channel_name: str,
    channel: Channel,
    run_date: date,
) -> DeliveryResult:
    segment = target.segment
    folder = f"{channel_name}/{segment}/{run_date.isoformat()}"
    path = f"{channel.destination}/{folder}"
    result = DeliveryResult(segment, channel_name, run_date, DeliveryStatus.FAILED, path=path)
    history = attempt_history(ctx.spark, ctx.lake, segment, channel_name)
    attempt = history.get(run_date, (0, ""))[0] + 1
    try:
        _deliver(ctx, target, channel_name, channel, run_date, folder, result, delivered_dates(history))
    except Exception as exc:
        result.status = DeliveryStatus.FAILED
        result.files = []
        result.message = str(exc) if isinstance(exc, DmpError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):  # the lake may be the thing that failed; keep the first error
            _record_attempt(ctx.spark, ctx.lake, result, attempt)
        if isinstance(exc, DmpError):
            raise
        raise DmpError(f"delivery {segment} -> {channel_name} {run_date}: {result.message}") from exc
    _record_attempt(ctx.spark, ctx.lake, result, attempt)
    return result


def _deliver(
    ctx: _Context,
    target: DeliveryTarget,
    channel_name: str,
    channel: Channel,
    run_date: date,
    folder: str,
    result: DeliveryResult,
    delivered: list[date],
) -> None:
    spark, segment = ctx.spark, target.segment
    pack = _pack_counts(ctx, segment, run_date)
    if not pack.get("pack_size"):
        raise DmpError(
            f"no pack for segment {segment!r} on {run_date} in {tables.AUDIENCE_PACKS} (build it first)"
        )
    if not pack["deliverable"]:
        result.status = DeliveryStatus.SKIPPED
        result.message = (
            f"pack {segment} {run_date} is not deliverable (below the spec's min_size: "
            f"{pack['treatment']} treatment users); nothing sent"
        )
        return
    if channel.type == "coupon" and target.coupon is None:
        raise DmpError(f"{target.source or segment}: coupon: required by coupon channel {channel_name!r}")

    cols, key = columns_for(channel)
    treatment_df = filter_deliverable_treatment(ctx.packs_df, segment, run_date)
    resolved_df = resolve_user_keys(treatment_df, ctx.identities_df, channel).persist()
    try:
        with _arrow(spark):
            keys_pdf = (
                resolved_df.filter(F.col("user_key").isNotNull()).select("id_type", "user_key").toPandas()
            )
        stats = resolved_df.groupBy("reason").agg(F.countDistinct("user_id").alias("users")).collect()
    finally:
        resolved_df.unpersist()
    unmatched = {r["reason"]: int(r["users"]) for r in stats if r["reason"] is not None}
    matched_users = sum(int(r["users"]) for r in stats if r["reason"] is None)
    current = output_rows(keys_pdf, channel, target.coupon, run_date)

    # Incremental: diff against the last successful delivery before this date.
    earlier = [d for d in delivered if d < run_date]
    previous: dict[str, Any] | None = None
    store = ctx.store(channel.destination)
    prev_manifest: tuple[dict[str, Any], str] | None = None
    if channel.sync == "incremental" and earlier:
        prev_date = earlier[-1]
        prev_folder = f"{channel_name}/{segment}/{prev_date.isoformat()}"
        prev_manifest = _existing_manifest(store, prev_folder)
        if prev_manifest is None:
            raise DmpError(
                f"{channel.destination}/{prev_folder}: recorded as delivered in {tables.DELIVERIES} but has no "
                f"{SUCCESS} (was the destination cleaned?); re-deliver {prev_date} first"
            )
    # Delivered rows are kept only for incremental channels; a channel that just switched from full
    # to incremental has no state for its last delivery, so it starts with a full one.
    if prev_manifest is not None and prev_manifest[0].get("sync") == "incremental":
        previous = {
            "run_date": prev_date.isoformat(),
            "path": prev_folder,
            "manifest_sha256": prev_manifest[1],
        }
        prev_rows = _read_state(spark, ctx.lake, channel_name, segment, prev_date, cols)
        add, remove = diff_rows(current, prev_rows, key)
        parts = {"add": add, "remove": remove}
        mode = "incremental"
    else:
        parts = {"full": current}
        mode = "full"
    files = build_files(parts)

    id_counts = keys_pdf.drop_duplicates()["id_type"].value_counts().to_dict()
    treatment = int(pack["treatment"])
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "channel": channel_name,
        "channel_type": channel.type,
        "segment": segment,
        "run_date": run_date.isoformat(),
        "sync": channel.sync,
        "mode": mode,
        "previous": previous,
        "columns": list(cols),
        "key_columns": list(key),
        "format": {
            "type": "csv",
            "header": True,
            "delimiter": ",",
            "encoding": "utf-8",
            "compression": "gzip",
        },
        "id_types": [
            {"id_type": t, "hash": channel.hash[t], "rows": int(id_counts.get(t, 0))}
            | ({"phone_format": channel.phone_format} if t == "phone" else {})
            for t in channel.id_types
        ],
        "files": [
            {
                "path": name,
                "kind": name.split("/", 1)[0],
                "rows": rows,
                "bytes": len(data),
                "sha256": sha256_hex(data),
            }
            for name, (data, rows) in sorted(files.items())
        ],
        "spec_hash": pack["spec_hash"],
        "pack_kind": pack["kind"],
        "coupon": None
        if target.coupon is None or channel.type != "coupon"
        else {
            "coupon_id": target.coupon.coupon_id,
            "value": target.coupon.value,
            "threshold": target.coupon.threshold,
            "valid_days": target.coupon.valid_days,
        },
        "source_tables": {t: v for t, v in sorted(ctx.versions.items())},
        "counts": {
            "pack_size": int(pack["pack_size"]),
            "treatment": treatment,
            "holdout": int(pack["holdout"]),
            "matched_users": matched_users,
            "unmatched_users": sum(unmatched.values()),
            "unmatched_by_reason": dict(sorted(unmatched.items())),
            "match_rate": round(matched_users / treatment, 6) if treatment else 0.0,
            "delivered_rows": len(current),
            "added": len(parts["add"]) if "add" in parts else None,
            "removed": len(parts["remove"]) if "remove" in parts else None,
        },
    }
    result.mode = mode
    result.counts = manifest["counts"]
    result.files = [
        {
            "kind": f["kind"],
            "path": f"{channel.destination}/{folder}/{f['path']}",
            "rows": f["rows"],
            "sha256": f["sha256"],
        }
        for f in manifest["files"]
    ]

    existing = _existing_manifest(store, folder)
    if existing is not None and content_fingerprint(existing[0]) == content_fingerprint(manifest):
        result.status = DeliveryStatus.SUCCESS
        result.message = "unchanged: identical delivery already complete; nothing rewritten"
        result.files.append(_manifest_file(channel, folder, existing[1]))
    else:
        later = [d for d in delivered if d > run_date]
        if existing is not None and later and not set(later) <= set(ctx.run_dates):
            raise DmpError(
                f"{channel.destination}/{folder} is already delivered with different content and later deliveries "
                f"exist ({', '.join(d.isoformat() for d in later)}); re-deliver {run_date} through {later[-1]} "
                "together (--from/--to) so the incremental chain stays consistent"
            )
        data = manifest_bytes(manifest)
        _publish(store, folder, files, data, ctx.after_put)
        result.status = DeliveryStatus.SUCCESS
        result.message = "replaced an older version" if existing is not None else ""
        result.files.append(_manifest_file(channel, folder, sha256_hex(data)))
    if channel.sync == "incremental":
        _write_state(spark, ctx.lake, channel_name, segment, run_date, current)


def _manifest_file(channel: Channel, folder: str, sha: str) -> dict[str, Any]:
    return {
        "kind": "manifest",
        "path": f"{channel.destination}/{folder}/{MANIFEST}",
        "rows": None,
        "sha256": sha,
    }


# ---------------------------------------------------------------- entry points


def targets_from_specs(segments_dir: str) -> tuple[dict[str, DeliveryTarget], list[str]]:
    """Delivery targets of the valid specs in ``segments_dir`` and the spec errors (one line each)."""
    from dmp.contracts.specs import load_specs

    spec_set = load_specs(segments_dir)
    targets: dict[str, DeliveryTarget] = {}
    for name, spec in spec_set.specs.items():
        coupon = None
        if spec.coupon is not None:
            coupon = CouponSettings(
                coupon_id=spec.coupon.coupon_id,
                value=float(spec.coupon.value),
                threshold=float(spec.coupon.threshold),
                valid_days=int(spec.coupon.valid_days),
            )
        targets[name] = DeliveryTarget(
            name, tuple(spec.channels), coupon, str(spec_set.path_of.get(name, ""))
        )
    return targets, [str(e) for e in spec_set.errors]


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
    if not lk.table_exists(spark, lake, tables.AUDIENCE_PACKS):
        raise DmpError(
            f"{tables.table_path(lake, tables.AUDIENCE_PACKS)}: no audience packs table (run build-packs first)"
        )
    if channel is not None:
        channels.get(channel)
    if segment is not None and segment not in targets:
        raise DmpError(f"segment {segment!r}: no valid spec with that name (see `dmp segments validate`)")
    versions = {
        tables.AUDIENCE_PACKS: lk.table_version(spark, lake, tables.AUDIENCE_PACKS),
        tables.IDENTITIES: lk.table_version(spark, lake, tables.IDENTITIES),
    }
    # Pin the versions read, so the manifest names exactly the data that was delivered.
    packs_df = _read_at(spark, lake, tables.AUDIENCE_PACKS, versions[tables.AUDIENCE_PACKS])
    identities_df = (
        _read_at(spark, lake, tables.IDENTITIES, versions[tables.IDENTITIES])
        if versions[tables.IDENTITIES] is not None
        else _empty_identities(spark)
    )
    ctx = _Context(spark, lake, packs_df, identities_df, versions, sorted(run_dates), after_put)

    results: list[DeliveryResult] = []
    failures: list[str] = []
    for run_date in sorted(run_dates):
        on_date = sorted(
            r["segment"]
            for r in packs_df.filter(F.col("run_date") == F.lit(run_date))
            .select("segment")
            .distinct()
            .collect()
        )
        if segment is not None:
            if segment not in on_date:
                failures.append(f"{run_date}: no pack for segment {segment!r} (build it first)")
                continue
            on_date = [segment]
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
            for name in wanted:
                try:
                    results.append(deliver_one(ctx, target, name, channels.get(name), run_date))
                except DmpError as exc:
                    failures.append(f"{run_date} {seg} -> {name}: {exc}")
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


def use_this_python_for_workers() -> None:
    """The phone UDF needs pandas + phonenumbers in Spark's Python workers: run them on this interpreter.

    Must happen before the SparkContext starts; an explicit PYSPARK_PYTHON wins.
    """
    import os
    import sys

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


class DeliveryFailed(DmpError):
    def __init__(self, results: list[DeliveryResult], failures: list[str]) -> None:
        self.results = results
        self.failures = failures
        super().__init__("delivery failed for:\n  " + "\n  ".join(failures))
