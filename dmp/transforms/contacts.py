"""Who of a pack a channel may contact today: priority groups and frequency caps (pure transforms).

A channel in ``segments/channels.yaml`` may rank its segments (``priority: [a, b, c]``; segments not
listed rank after the listed ones, by name: :meth:`dmp.contracts.channels.Channel.rank_segments`) and
cap contacts (``frequency_cap: {max: N, days: D}``). The delivery step
(:mod:`dmp.steps.deliver_contacts`) delivers the packs of one channel and run date in that order and
calls these functions where a pack's treatment users are chosen; they read and write nothing.

People, not rows: every rule is applied to the **contact** ``coalesce(person_id, user_id)``
(:func:`with_contact_id`), so two accounts of one person are one contact.

**Priority.** A person is delivered only by the highest-ranked pack they *qualify* for on the
channel that day. Qualifying means being in the pack at all (treatment **or holdout**) of a
deliverable pack of that run date whose spec lists the channel: :func:`priority_claims`. It is a
property of the packs only (not of what a delivery did), so delivering one segment alone
(``--segment``) chooses exactly what the channel's whole run chooses. A treated user claimed by a
higher pack is lost by the lower one, counted as ``priority``.

*Holdout users stay holdout.* A holdout user is never delivered by their own pack (the pack's
treatment is all that is ever selected), and a user held out of a higher pack is **not** delivered
by a lower one either: the higher pack *claims* its holdout as it claims its treatment. Why: each
pack's uplift is treatment minus holdout on the channel. If the lower pack delivered the higher
pack's holdout, that control group would be contacted on the very channel it is the control for
(only the part of it in the lower pack, a non-random part), biasing the higher pack's uplift towards
zero. Claiming the holdout keeps every control uncontacted on the channel by any pack. The lower
pack's own evaluation stays unbiased too: whether one of its users is claimed depends only on the
higher pack (its members and its own holdout hash), never on the lower pack's treatment/holdout
hash (salted by segment), so claims fall on its treatment and holdout alike; its contrast measures
its effect on the users no higher pack claimed, diluted by the claimed share.

**Frequency cap.** At most N deliveries of a person to the channel in any D consecutive days,
across all packs. A delivery is a (run date, segment) in which the person was actually delivered
(``ops/channel_contacts`` outcome ``delivered``: matched, consented, not held back by
``min_size``). Packs of one day are served in the channel's order, so a person in two packs of the
same day, both admitted by priority (no ``priority`` list covering them), goes to the first by
priority then by name. The rule (:func:`over_cap_contacts`) is backfill-safe: a candidate of day
*t* is delivered only if **every** D-day window containing *t* holds fewer than N deliveries
without *t*'s own, i.e. counting the days before and **after** *t* already delivered, and the
deliveries of *t* by packs ranked higher. Day *t*'s own earlier run is left out by the caller, so a
rerun never counts itself. Forward runs (no later day yet) reduce to "fewer than N in the D−1 days
before and today so far". A rerun with unchanged packs changes nothing: a delivered day was within
the cap in every window containing it, a capped day still sees the deliveries that capped it.
Capped users are counted as ``frequency_cap``; priority is checked first, so a user both claimed
and over the cap counts as ``priority``.

On an incremental channel a capped user is simply not in that day's audience (``remove`` if they
were delivered the day before, ``add`` again when the cap lets them back).
"""

from __future__ import annotations

from datetime import date, timedelta

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from dmp.contracts.channels import LOST_TO_FREQUENCY_CAP, LOST_TO_PRIORITY, FrequencyCap
from dmp.transforms.audience_ids import deliverable_treatment_rows

CONTACT_ID = "contact_id"


def with_contact_id(df: DataFrame) -> DataFrame:
    """``contact_id`` = the row's person (``person_id``), else its account (``user_id``)."""
    person = F.col("person_id") if "person_id" in df.columns else F.lit(None).cast("string")
    return df.withColumn(CONTACT_ID, F.coalesce(person, F.col("user_id")))


def filter_pack_treatment(packs_df: DataFrame, segment: str, run_date: date) -> DataFrame:
    """(user_id, person_id, contact_id) of a deliverable pack's treatment: the candidates of a delivery."""
    if "person_id" not in packs_df.columns:
        packs_df = packs_df.withColumn("person_id", F.lit(None).cast("string"))
    return (
        deliverable_treatment_rows(packs_df, segment, run_date)
        .transform(with_contact_id)
        .select("user_id", "person_id", CONTACT_ID)
        .distinct()
    )


def priority_claims(packs_df: DataFrame, run_date: date, higher: list[str]) -> DataFrame:
    """``contact_id`` of everyone in a deliverable pack of ``higher`` on ``run_date``, holdout included."""
    return (
        packs_df.filter(
            F.col("segment").isin(list(higher))
            & (F.col("run_date") == F.lit(run_date))
            & F.col("deliverable")
        )
        .transform(with_contact_id)
        .select(CONTACT_ID)
        .distinct()
    )


def filter_by_priority(candidates_df: DataFrame, claims_df: DataFrame) -> DataFrame:
    """The candidates (with ``contact_id``) no higher-ranked pack claims."""
    return candidates_df.join(claims_df.select(CONTACT_ID).distinct(), CONTACT_ID, "left_anti")


def over_cap_contacts(contacts_df: DataFrame, run_date: date, cap: FrequencyCap) -> DataFrame:
    """``contact_id`` of the people who may not be delivered on ``run_date`` under ``cap``.

    ``contacts_df``: (contact_id, run_date, segment) deliveries that count, i.e. every recorded
    delivery of the channel except ``run_date``'s own earlier run, plus ``run_date``'s deliveries
    by higher-ranked packs. A delivery on day r shares the windows starting in
    [max(r, t) - D + 1, min(r, t)] with day t; a person is over the cap when one of those windows
    already holds N deliveries (today's would be the N+1st).
    """
    span = cap.days - 1
    t = F.lit(run_date)
    near_df = (
        contacts_df.filter(
            F.col("run_date").between(
                F.lit(run_date - timedelta(days=span)), F.lit(run_date + timedelta(days=span))
            )
        )
        .select(CONTACT_ID, "run_date", "segment")
        .distinct()
    )
    starts = F.sequence(F.date_sub(F.greatest(t, F.col("run_date")), span), F.least(t, F.col("run_date")))
    return (
        near_df.withColumn("window_start", F.explode(starts))
        .groupBy(CONTACT_ID, "window_start")
        .agg(F.count("*").alias("deliveries"))
        .filter(F.col("deliveries") >= cap.max)
        .select(CONTACT_ID)
        .distinct()
    )


def filter_by_frequency_cap(
    candidates_df: DataFrame, contacts_df: DataFrame, run_date: date, cap: FrequencyCap | None
) -> DataFrame:
    """The candidates (with ``contact_id``) the cap still lets through on ``run_date`` (all without a cap)."""
    if cap is None:
        return candidates_df
    return candidates_df.join(over_cap_contacts(contacts_df, run_date, cap), CONTACT_ID, "left_anti")


def with_contact_outcome(
    candidates_df: DataFrame,
    claims_df: DataFrame,
    contacts_df: DataFrame,
    run_date: date,
    cap: FrequencyCap | None,
) -> DataFrame:
    """``lost_to``: ``priority``, ``frequency_cap`` or null (may be delivered) for each candidate.

    The same decision as :func:`filter_by_priority` then :func:`filter_by_frequency_cap`, kept on
    every row so the losses can be counted and recorded.
    """
    claimed_df = claims_df.select(CONTACT_ID).distinct().withColumn("_claimed", F.lit(True))
    df = candidates_df.join(claimed_df, CONTACT_ID, "left")
    lost = F.when(F.col("_claimed").isNotNull(), F.lit(LOST_TO_PRIORITY))
    drop = ["_claimed"]
    if cap is not None:
        over_df = over_cap_contacts(contacts_df, run_date, cap).withColumn("_over", F.lit(True))
        df = df.join(over_df, CONTACT_ID, "left")
        lost = lost.when(F.col("_over").isNotNull(), F.lit(LOST_TO_FREQUENCY_CAP))
        drop.append("_over")
    return df.withColumn("lost_to", lost.otherwise(F.lit(None).cast("string"))).drop(*drop)
