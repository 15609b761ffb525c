"""What a pack's deliveries cost, for its incremental ROI (``channels.yaml`` ``cost:``; docs/uplift.md).

``per_user`` / ``per_mille`` are paid on each delivery's matched users, read from its manifest;
``coupon_redemptions`` on each redemption of the spec's coupon by a treated user in the attribution
window (``bronze/events``). A channel whose cost cannot be known makes the pack's cost unknown,
never 0. Used by :mod:`dmp.steps.evaluate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import CHANNELS_FILE
from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import TREATMENT
from dmp.spark import lake as lk
from dmp.transforms.outcomes import filter_attribution_window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from dmp.contracts.channels import ChannelsConfig
    from dmp.contracts.specs import SegmentSpec

COUPON_REDEEM = "coupon_redeem"  # the bronze/events type whose coupon_id names the pack's coupon


def coupon_redemptions(events_df: DataFrame, run_date: date, window_days: int, coupon_id: str) -> DataFrame:
    """user_id, redemptions: ``coupon_redeem`` events of ``coupon_id`` in the attribution window."""
    return (
        events_df.transform(filter_attribution_window, run_date, window_days)
        .filter((F.col("event_type") == COUPON_REDEEM) & (F.col("coupon_id") == coupon_id))
        .groupBy("user_id")
        .agg(F.count(F.lit(1)).alias("redemptions"))
    )


@dataclass
class PackCost:
    """What the deliveries of one pack cost: ``fixed`` (None: not known, ``note`` says why), each
    treated user's coupon cost, and the breakdown per channel for the report."""

    fixed: float | None
    coupon_by_user: dict[str, float] = field(default_factory=dict)
    by_channel: dict[str, dict[str, Any]] = field(default_factory=dict)
    note: str | None = None
    warnings: list[str] = field(default_factory=list)


def read_delivered_users(path: str) -> int:
    """``counts.matched_users`` of a delivery manifest (a local path, ``file://`` or ``s3://`` URL)."""
    from dmp.delivery.manifest import parse_manifest
    from dmp.delivery.pull import MAX_MANIFEST_BYTES
    from dmp.delivery.storage import open_store

    folder, name = path.rstrip("/").rsplit("/", 1)
    if "://" in folder:
        data = open_store(folder).get(name, max_bytes=MAX_MANIFEST_BYTES)
    else:
        with Path(path).open("rb") as fh:
            data = fh.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise DmpError(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes; a manifest is a few kilobytes")
    counts = parse_manifest(data, path).get("counts")
    users = counts.get("matched_users") if isinstance(counts, dict) else None
    if isinstance(users, bool) or not isinstance(users, int) or users < 0:
        raise DmpError(f"{path}: counts.matched_users is {users!r}; expected a count of delivered users")
    return users


def _coupon_costs(
    redemptions: pd.DataFrame, spec: SegmentSpec, entry: dict[str, Any], warnings: list[str]
) -> dict[str, float]:
    """Each treated user's coupon cost (redemptions x the coupon's value); fills the channel's entry."""
    assert spec.coupon is not None
    treated = redemptions[redemptions["group"] == TREATMENT]
    coupon_by_user = {
        str(u): float(n) * spec.coupon.value
        for u, n in zip(treated["user_id"], treated["redemptions"], strict=True)
    }
    entry["coupon_id"] = spec.coupon.coupon_id
    entry["coupon_value"] = spec.coupon.value
    entry["redemptions"] = int(treated["redemptions"].sum())
    entry["coupons"] = float(sum(coupon_by_user.values()))
    held_out = int(redemptions.loc[redemptions["group"] != TREATMENT, "redemptions"].sum())
    if held_out:
        warnings.append(
            f"{held_out} redemption(s) of coupon {spec.coupon.coupon_id} by holdout users: the holdout "
            "should never have received it; check the coupon channel's delivery"
        )
    return coupon_by_user


def pack_cost(
    channels: list[str],
    config: ChannelsConfig | None,
    manifests: dict[str, str | None],
    spec: SegmentSpec | None,
    redemptions: pd.DataFrame | None,
    where: str,
) -> PackCost:
    """The cost of the channels this pack was delivered to, from their ``channels.yaml`` ``cost:``.

    ``per_user`` / ``per_mille`` are paid on the manifest's delivered (matched) users;
    ``coupon_redemptions`` on each redemption of the spec's coupon by a treated user (``redemptions``:
    user_id, group, redemptions), counted once however many coupon channels carried it. Any
    channel whose cost is not known makes the pack's cost unknown (None), never 0.
    """
    if not channels:
        return PackCost(
            None, note="no delivery of this pack is recorded, so nothing was spent that we know of"
        )
    if config is None:
        return PackCost(None, note=f"{where}: no channels file, so the channels' costs are not known")
    by_channel: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    warnings: list[str] = []
    coupons_counted = False
    coupon_by_user: dict[str, float] = {}
    for name in channels:
        channel = config.channels.get(name)
        if channel is None or channel.cost is None:
            missing.append(name)
            continue
        cost = channel.cost
        entry: dict[str, Any] = {"delivered_users": None, "delivery": 0.0, "coupons": 0.0}
        if cost.per_user is not None or cost.per_mille is not None:
            path = manifests.get(name)
            try:
                if path is None:
                    raise DmpError(f"{tables.DELIVERIES} names no manifest for this delivery")
                users = read_delivered_users(path)
            except (DmpError, OSError) as exc:
                warnings.append(f"cost of {name} not known: its delivered users could not be read ({exc})")
                missing.append(name)
                continue
            entry["delivered_users"] = users
            entry["delivery"] = cost.delivery_cost(users)
        if cost.coupon_redemptions and not coupons_counted:
            if spec is None or spec.coupon is None:
                warnings.append(
                    f"cost of {name} not known: the spec has no coupon whose redemptions to price"
                )
                missing.append(name)
                continue
            if redemptions is None:
                warnings.append(
                    f"cost of {name} not known: {tables.EVENTS} is missing, so redemptions are unknown"
                )
                missing.append(name)
                continue
            coupon_by_user = _coupon_costs(redemptions, spec, entry, warnings)
            coupons_counted = True
        entry["total"] = entry["delivery"] + entry["coupons"]
        by_channel[name] = entry
    if missing:
        note = (
            f"cost not known for {', '.join(missing)} (set channels.<name>.cost in {where}: per_user, "
            "per_mille or coupon_redemptions), so no ROI"
        )
        return PackCost(None, by_channel=by_channel, note=note, warnings=warnings)
    fixed = float(sum(e["delivery"] for e in by_channel.values()))
    return PackCost(fixed, coupon_by_user, by_channel, warnings=warnings)


def channels_config(segments_dir: str, channels: list[str]) -> tuple[ChannelsConfig | None, list[str]]:
    """channels.yaml when this pack was delivered and the file exists (a broken file is a warning:
    it costs the ROI, not the uplift)."""
    from dmp.contracts.channels import load_channels
    from dmp.contracts.errors import SpecError

    if not channels or not (Path(segments_dir) / CHANNELS_FILE).is_file():
        return None, []
    try:
        return load_channels(segments_dir), []
    except SpecError as exc:
        return None, [f"cost not known: {exc}"]


def pack_redemptions(
    spark: SparkSession, lake: str, pack_df: DataFrame, run_date: date, window_days: int, coupon_id: str
) -> pd.DataFrame | None:
    """user_id, group, redemptions of the pack's users who redeemed ``coupon_id`` (None without events)."""
    if not lk.table_exists(spark, lake, tables.EVENTS):
        return None
    events = lk.read_table(spark, lake, tables.EVENTS)
    return (
        pack_df.select("user_id", "group")
        .join(coupon_redemptions(events, run_date, window_days, coupon_id), "user_id")
        .toPandas()
    )


def priced_coupon(config: ChannelsConfig | None, channels: list[str], spec: SegmentSpec | None) -> str | None:
    """The spec's coupon id when a delivered channel prices its redemptions (else None: no events read)."""
    if config is None or spec is None or spec.coupon is None:
        return None
    priced = any(
        (c := config.channels.get(name)) is not None and c.cost is not None and c.cost.coupon_redemptions
        for name in channels
    )
    return spec.coupon.coupon_id if priced else None
