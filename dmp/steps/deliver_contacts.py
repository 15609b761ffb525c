"""Priority groups and frequency caps in the delivery step: the Spark I/O around
:mod:`dmp.transforms.contacts` (docs/priority_caps.md).

Only channels with ``priority`` or ``frequency_cap`` in ``channels.yaml`` come here; the others are
delivered exactly as before and write nothing new. For one (segment, channel, run_date):

1. :func:`select_contacts` ranks the segments whose specs list the channel
   (:meth:`~dmp.contracts.channels.Channel.rank_segments`), takes the pack's treatment, drops whom a
   higher-ranked pack of the day claims (``priority``, holdout included) and whom the cap holds back
   (``frequency_cap``), counting both; the kept users go on to consent, persons and id matching
   (:func:`dmp.steps.deliver_keys.resolve_keys`).
2. :func:`record_contacts`, after the files are published, replaces the delivery's rows of
   ``ops/channel_contacts``: every candidate, ``delivered`` (a key was sent) or lost by reason.
   The rows replaced are exactly (channel, run_date, segment), so a rerun replaces itself, and a
   delivery of one segment (``--segment``) leaves the channel's other packs of that day alone.

The cap reads the channel's ``delivered`` rows of the D−1 days on either side of the run date,
without the run date's own rows except those of higher-ranked packs (delivered first, in the
same task: :func:`order_pairs`). One task delivers all packs of a channel (the DAG maps deliveries
per channel), so the packs of a day are written one after the other, never at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import DELIVERED, Channel, ChannelsConfig
from dmp.delivery.targets import DeliveryTarget
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.transforms.contacts import (
    CONTACT_ID,
    filter_pack_treatment,
    priority_claims,
    with_contact_id,
    with_contact_outcome,
)


@dataclass
class ContactSelection:
    """Who of one pack the channel's rules let through, and who they did not (by reason)."""

    channel_name: str
    segment: str
    run_date: date
    outcome_df: DataFrame  # user_id, person_id, contact_id, lost_to (null: may be delivered); persisted
    lost: dict[str, int]

    @property
    def allowed_df(self) -> DataFrame:
        return self.outcome_df.filter(F.col("lost_to").isNull()).select("user_id")


def channel_segments(targets: Mapping[str, DeliveryTarget], channel_name: str, channel: Channel) -> list[str]:
    """The segments whose specs list the channel, in the channel's delivery order."""
    return channel.rank_segments(s for s, t in targets.items() if channel_name in t.channels)


def order_pairs(pairs: list[tuple[str, str]], channels: ChannelsConfig) -> list[tuple[str, str]]:
    """(segment, channel) pairs with each ruled channel's segments in its priority order.

    Only the pairs of channels with contact rules move, and only among the places they already
    hold: every other delivery keeps its place (and the run its order).
    """
    out = list(pairs)
    for name in dict.fromkeys(n for _s, n in pairs):
        channel = channels.channels.get(name)
        if channel is None or not channel.has_contact_rules:
            continue
        places = [i for i, (_s, n) in enumerate(out) if n == name]
        for i, segment in zip(places, channel.rank_segments(out[i][0] for i in places), strict=True):
            out[i] = (segment, name)
    return out


def _recorded_contacts(
    spark: SparkSession, lake: str, channel_name: str, channel: Channel, run_date: date, higher: list[str]
) -> DataFrame:
    """(contact_id, run_date, segment) deliveries the cap counts for ``run_date`` (see the module doc)."""
    empty = spark.createDataFrame([], schemas.CHANNEL_CONTACTS_SCHEMA)
    cap = channel.frequency_cap
    if cap is None or not lk.table_exists(spark, lake, tables.CHANNEL_CONTACTS):
        return with_contact_id(empty).select(CONTACT_ID, "run_date", "segment")
    span = timedelta(days=cap.days - 1)
    df = lk.read_table(spark, lake, tables.CHANNEL_CONTACTS).filter(
        (F.col("channel") == channel_name)
        & (F.col("outcome") == DELIVERED)
        & F.col("run_date").between(F.lit(run_date - span), F.lit(run_date + span))
        & ((F.col("run_date") != F.lit(run_date)) | F.col("segment").isin(list(higher)))
    )
    return with_contact_id(df).select(CONTACT_ID, "run_date", "segment")


def select_contacts(
    spark: SparkSession,
    lake: str,
    packs_df: DataFrame,
    targets: Mapping[str, DeliveryTarget],
    channel_name: str,
    channel: Channel,
    segment: str,
    run_date: date,
) -> ContactSelection:
    """The pack's treatment users with what the channel's priority and cap decide for each."""
    ranked = channel_segments(targets, channel_name, channel)
    before = ranked[: ranked.index(segment)] if segment in ranked else []
    candidates_df = filter_pack_treatment(packs_df, segment, run_date)
    # Without a priority list packs do not exclude each other; the cap still serves them in order.
    claims_df = priority_claims(packs_df, run_date, before if channel.priority else [])
    contacts_df = _recorded_contacts(spark, lake, channel_name, channel, run_date, before)
    outcome_df = with_contact_outcome(
        candidates_df, claims_df, contacts_df, run_date, channel.frequency_cap
    ).persist()
    lost = {
        r["lost_to"]: int(r["users"])
        for r in outcome_df.filter(F.col("lost_to").isNotNull())
        .groupBy("lost_to")
        .agg(F.countDistinct("user_id").alias("users"))
        .collect()
    }
    return ContactSelection(channel_name, segment, run_date, outcome_df, lost)


def _write(
    spark: SparkSession, lake: str, channel_name: str, segment: str, run_date: date, df: DataFrame
) -> None:
    partitions = list(schemas.CHANNEL_CONTACTS_PARTITIONS)
    lk.ensure_table(spark, lake, tables.CHANNEL_CONTACTS, schemas.CHANNEL_CONTACTS_SCHEMA, partitions)
    cond = " AND ".join(
        lk.replace_where_condition(k, [v])
        for k, v in (("channel", channel_name), ("run_date", run_date), ("segment", segment))
    )
    lk.overwrite_partitions(df, lake, tables.CHANNEL_CONTACTS, partitions, cond)


def record_contacts(
    spark: SparkSession, lake: str, selection: ContactSelection, delivered: list[str]
) -> None:
    """Replace the delivery's ops/channel_contacts rows: ``delivered`` for ``delivered`` user ids,
    the reason for the users lost; candidates kept but not delivered (no consent, no id, below
    ``min_size``) are not contacts and get no row."""
    delivered_df = spark.createDataFrame([(u,) for u in delivered], "user_id string")
    outcome_df = selection.outcome_df
    sent_df = (
        outcome_df.filter(F.col("lost_to").isNull())
        .join(delivered_df, "user_id", "left_semi")
        .withColumn("outcome", F.lit(DELIVERED))
    )
    lost_df = outcome_df.filter(F.col("lost_to").isNotNull()).withColumn("outcome", F.col("lost_to"))
    rows_df = sent_df.unionByName(lost_df).select(
        F.lit(selection.channel_name).alias("channel"),
        F.lit(selection.run_date).alias("run_date"),
        F.lit(selection.segment).alias("segment"),
        "user_id",
        "person_id",
        "outcome",
    )
    try:
        _write(spark, lake, selection.channel_name, selection.segment, selection.run_date, rows_df)
    finally:
        outcome_df.unpersist()


def clear_contacts(spark: SparkSession, lake: str, channel_name: str, segment: str, run_date: date) -> None:
    """No contacts for a delivery that sent nothing (a skipped pack): an earlier run's rows go."""
    if lk.table_exists(spark, lake, tables.CHANNEL_CONTACTS):
        empty_df = spark.createDataFrame([], schemas.CHANNEL_CONTACTS_SCHEMA)
        _write(spark, lake, channel_name, segment, run_date, empty_df)
