"""Packs and delivery by person, not by account (docs/identity.md, "Packs and holdout by person").

``silver/persons`` maps every stitched account to its person. Packs use it so that:

- **a person is in a pack once** (:func:`one_per_person`): of a person's qualifying accounts the
  pack keeps the best one by the order ``max_size`` uses (best score, then most recent activity,
  then the smallest user_id);
- **the holdout is decided per person** (:func:`with_person_keys`): the hash is keyed on the
  person's *oldest account* (earliest ``first_seen_date``, then smallest user_id: the member whose
  user_id names the person, ``dmp.transforms.stitching``). For a one-account person that is the
  account itself, so accounts that stitching never joined keep exactly the group they always had;
  when persons merge, the group of the oldest member wins;
- **exclusions reach the whole person** (:func:`expand_to_persons`): excluding one account (a
  suppression list, another segment's pack) excludes the person's other accounts too;
- **crossovers are counted** (:func:`crossovers`): pack persons with an account whose own hash
  would have put it in the other group, the accounts a per-account holdout would have split.

Delivery (:func:`person_identities`, :func:`holdout_person_users`) sends a treated person's
identifiers from ``silver/person_identifiers`` (every identifier of every account, but those a
stitching guard stopped) and nothing of a person who, by the persons current at delivery time,
also has an account in the pack's holdout (a merge after the pack was built).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dmp.contracts.holdout import group_col
from dmp.contracts.vocab import HOLDOUT
from dmp.transforms.stitching import person_id_col

PERSON_COLS = ["person_id", "holdout_key"]


def person_keys(persons_df: DataFrame) -> DataFrame:
    """(user_id, person_id, holdout_key): each stitched account, its person and the person's oldest account."""
    oldest = F.min(F.struct(F.col("first_seen_date"), F.col("user_id"))).over(Window.partitionBy("person_id"))
    return persons_df.select("user_id", "person_id", oldest["user_id"].alias("holdout_key"))


def with_person_keys(cands_df: DataFrame, keys_df: DataFrame | None) -> DataFrame:
    """Adds ``person_id`` and ``holdout_key``; an account in no stitched person is its own person."""
    own_person = person_id_col(F.col("user_id"))
    if keys_df is None:
        return cands_df.withColumn("person_id", own_person).withColumn("holdout_key", F.col("user_id"))
    joined = cands_df.join(keys_df.select("user_id", *PERSON_COLS), "user_id", "left")
    return joined.withColumn("person_id", F.coalesce(F.col("person_id"), own_person)).withColumn(
        "holdout_key", F.coalesce(F.col("holdout_key"), F.col("user_id"))
    )


def best_first() -> list[Column]:
    """The pack's total order: best score, then most recent activity, then the smallest user_id."""
    return [F.col("score").desc_nulls_last(), F.col("last_active").desc_nulls_last(), F.col("user_id").asc()]


def one_per_person(cands_df: DataFrame) -> DataFrame:
    """One candidate per ``person_id``: the first by :func:`best_first`."""
    rank = F.row_number().over(Window.partitionBy("person_id").orderBy(*best_first()))
    return cands_df.withColumn("_rank", rank).filter(F.col("_rank") == 1).drop("_rank")


def expand_to_persons(users_df: DataFrame, keys_df: DataFrame | None) -> DataFrame:
    """``user_id`` of the given accounts and of every other account of their persons."""
    users_df = users_df.select("user_id").distinct()
    if keys_df is None:
        return users_df
    persons_df = users_df.join(keys_df, "user_id").select("person_id").distinct()
    others_df = keys_df.join(persons_df, "person_id", "left_semi").select("user_id")
    return users_df.unionByName(others_df).distinct()


def group_by_person(cands_df: DataFrame, salt: str, segment: str, holdout: float) -> DataFrame:
    """Adds ``group`` from the hash of the person's oldest account (``holdout_key``)."""
    return cands_df.withColumn("group", group_col(salt, segment, holdout, "holdout_key"))


def crossovers(
    grouped_df: DataFrame, keys_df: DataFrame | None, salt: str, segment: str, holdout: float
) -> int:
    """Pack persons with an account whose own hash names the other group (0 without persons)."""
    if keys_df is None:
        return 0
    accounts_df = keys_df.join(grouped_df.select("person_id", "group"), "person_id")
    own = group_col(salt, segment, holdout, "user_id")
    return accounts_df.filter(own != F.col("group")).select("person_id").distinct().count()


def holdout_person_users(pack_df: DataFrame, treatment_df: DataFrame, keys_df: DataFrame) -> DataFrame:
    """``user_id`` of treated accounts whose current person has an account in the pack's holdout."""
    holdout_persons_df = (
        pack_df.filter(F.col("group") == HOLDOUT)
        .select("user_id")
        .join(keys_df, "user_id")
        .select("person_id")
    )
    return (
        treatment_df.select("user_id")
        .join(keys_df, "user_id")
        .join(holdout_persons_df, "person_id", "left_semi")
        .select("user_id")
        .distinct()
    )


def person_identities(
    treatment_df: DataFrame, keys_df: DataFrame, person_ids_df: DataFrame, identities_df: DataFrame
) -> DataFrame:
    """(user_id, id_type, id_value): each treated account gets every identifier of its person.

    ``silver/person_identifiers`` already leaves out what a guard stopped. An account that is in no
    stitched person (its identities arrived after the last stitch) keeps its own rows of
    ``silver/identities``.
    """
    treated_df = treatment_df.select("user_id")
    stitched_df = (
        treated_df.join(keys_df.select("user_id", "person_id"), "user_id")
        .join(person_ids_df.select("person_id", "id_type", "id_value"), "person_id")
        .select("user_id", "id_type", "id_value")
    )
    unstitched_df = (
        identities_df.select("user_id", "id_type", "id_value")
        .join(treated_df, "user_id", "left_semi")
        .join(keys_df, "user_id", "left_anti")
    )
    return stitched_df.unionByName(unstitched_df).distinct()


def person_consents(consents_df: DataFrame, keys_df: DataFrame) -> DataFrame:
    """(user_id, purpose, granted) with a person's refusal standing for all of the person's accounts.

    A withdrawal or refusal on any account of a person is that person's decision: every account of
    the person reads as not granted for that purpose. Grants stay per account (an account that never
    decided has no consent, whatever its person's other accounts allowed).
    """
    decisions_df = consents_df.select("user_id", "purpose", "granted")
    refused_df = (
        decisions_df.filter(~F.col("granted"))
        .join(keys_df, "user_id")
        .select("person_id", "purpose")
        .distinct()
    )
    refused_accounts_df = keys_df.join(refused_df, "person_id").select(
        "user_id", "purpose", F.lit(False).alias("granted")
    )
    kept_df = decisions_df.join(
        refused_accounts_df.select("user_id", "purpose"), ["user_id", "purpose"], "left_anti"
    )
    return kept_df.unionByName(refused_accounts_df.distinct())
