"""Who of a pack is delivered to a channel, and with which keys (the Spark side of step 1 of
:mod:`dmp.steps.deliver`).

The pack's treatment users (deliverable packs only), then:

- **by person** (docs/identity.md): with ``silver/persons`` (``dmp identities stitch``), a treated
  account is delivered with every identifier of its person (``silver/person_identifiers``, which
  leaves out what a stitching guard stopped), and not at all when its person, as stitched when the
  delivery runs, also has an account in the pack's holdout (persons merged after the pack was
  built): counted as ``holdout_person``. Without persons each account brings its own
  ``silver/identities`` rows, as before stitching;
- **consent**: only users whose latest decision grants the channel's purpose (the others counted as
  ``no_consent`` / ``revoked``); with persons, a withdrawal or refusal on any account of a person
  counts for all of the person's accounts (``revoked``);
- **keys**: every valid value of the most preferred id type, normalised and hashed
  (:mod:`dmp.transforms.audience_ids`); users without a usable id are counted by reason.

Every exclusion is counted in the manifest's ``excluded_by_reason``; nobody excluded reaches a file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import Channel
from dmp.contracts.vocab import HOLDOUT_PERSON
from dmp.delivery.manifest import MatchCounts
from dmp.spark import lake as lk
from dmp.transforms.audience_ids import (
    filter_deliverable_treatment,
    filter_matched_keys,
    resolve_user_keys,
    users_by_reason,
)
from dmp.transforms.consents import with_consent_reason_for
from dmp.transforms.persons import holdout_person_users, person_consents, person_identities, person_keys

PERSON_TABLES = (tables.PERSONS, tables.PERSON_IDENTIFIERS)


@contextlib.contextmanager
def arrow(spark: SparkSession) -> Iterator[None]:
    """Arrow-backed ``toPandas`` for the block, then the session's setting as it was."""
    key = "spark.sql.execution.arrow.pyspark.enabled"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")
    try:
        yield
    finally:
        spark.conf.set(key, before)


@dataclass(frozen=True)
class DeliveryInputs:
    """The lake tables a delivery reads, pinned at the versions its manifest names."""

    spark: SparkSession
    packs_df: DataFrame
    identities_df: DataFrame
    consents_df: DataFrame
    person_keys_df: DataFrame | None  # (user_id, person_id, holdout_key); None: never stitched
    person_ids_df: DataFrame | None


def read_person_tables(
    spark: SparkSession, lake: str, versions: dict[str, int | None]
) -> tuple[DataFrame | None, DataFrame | None]:
    """``silver/persons`` as person keys and ``silver/person_identifiers``, pinned; (None, None) unless both exist."""
    if any(versions.get(t) is None for t in PERSON_TABLES):
        return None, None
    persons_df = lk.read_pinned(spark, lake, tables.PERSONS, versions[tables.PERSONS] or 0)
    ids_df = lk.read_pinned(spark, lake, tables.PERSON_IDENTIFIERS, versions[tables.PERSON_IDENTIFIERS] or 0)
    return person_keys(persons_df), ids_df


def _by_person(
    inputs: DeliveryInputs, treatment_df: DataFrame, segment: str, run_date: date
) -> tuple[DataFrame, DataFrame, DataFrame, int]:
    """(treated users still to deliver, their identity rows, the consents to check them against,
    users left out as ``holdout_person``)."""
    keys_df, person_ids_df = inputs.person_keys_df, inputs.person_ids_df
    if keys_df is None or person_ids_df is None:
        return treatment_df, inputs.identities_df, inputs.consents_df, 0
    pack_df = inputs.packs_df.filter((F.col("segment") == segment) & (F.col("run_date") == F.lit(run_date)))
    crossed_df = holdout_person_users(pack_df, treatment_df, keys_df).persist()
    crossed = crossed_df.count()
    kept_df = treatment_df.join(crossed_df, "user_id", "left_anti")
    ids_df = person_identities(kept_df, keys_df, person_ids_df, inputs.identities_df)
    return kept_df, ids_df, person_consents(inputs.consents_df, keys_df), crossed


def resolve_keys(
    inputs: DeliveryInputs,
    channel: Channel,
    segment: str,
    run_date: date,
    allowed_df: DataFrame | None = None,
    lost: dict[str, int] | None = None,
) -> tuple[pd.DataFrame, MatchCounts, list[str] | None]:
    """The matched (id_type, user_key) rows on the driver, the match counts by reason and, when
    ``allowed_df`` is given, the user ids delivered.

    ``allowed_df`` (user_id): the treated users a channel's priority and frequency cap let through
    (:mod:`dmp.steps.deliver_contacts`); ``lost`` counts the others by reason, reported with the
    other exclusions. Without them every treated user is a candidate, as before.
    """
    treatment_df = filter_deliverable_treatment(inputs.packs_df, segment, run_date)
    if allowed_df is not None:
        treatment_df = treatment_df.join(allowed_df.select("user_id"), "user_id", "left_semi")
    treatment_df, ids_df, consents_df, crossed = _by_person(inputs, treatment_df, segment, run_date)
    checked_df = with_consent_reason_for(treatment_df, consents_df, channel.consent_purpose).persist()
    try:
        excluded = (
            (lost or {})
            | ({HOLDOUT_PERSON: crossed} if crossed else {})
            | {
                r["consent_reason"]: int(r["users"])
                for r in checked_df.filter(F.col("consent_reason").isNotNull())
                .groupBy("consent_reason")
                .agg(F.count("*").alias("users"))
                .collect()
            }
        )
        consented_df = checked_df.filter(F.col("consent_reason").isNull()).select("user_id")
        resolved_df = resolve_user_keys(consented_df, ids_df, channel).persist()
        try:
            with arrow(inputs.spark):
                keys_pdf = filter_matched_keys(resolved_df).toPandas()
            stats = users_by_reason(resolved_df).collect()
            delivered = None if allowed_df is None else _matched_users(resolved_df)
        finally:
            resolved_df.unpersist()
    finally:
        checked_df.unpersist()
    pairs = ((r["reason"], r["users"]) for r in stats)
    return keys_pdf, MatchCounts.from_counts(pairs, keys_pdf, excluded), delivered


def _matched_users(resolved_df: DataFrame) -> list[str]:
    """The user ids with at least one delivered key, sorted."""
    rows = resolved_df.filter(F.col("user_key").isNotNull()).select("user_id").distinct().collect()
    return sorted(r["user_id"] for r in rows)
