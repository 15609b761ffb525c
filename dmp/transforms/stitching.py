"""Identity stitching: accounts that share an identifier are one person (docs/identity.md).

Input: ``silver/identities`` rows (``user_id, id_type, id_value``); output: ``silver/persons``
(one row per account), ``silver/person_identifiers`` and the day's ``ops/identity_violations``.

1. **Match key** (:func:`with_match_key`): ``id_key`` is the value normalised as delivery
   normalises it (``dmp.transforms.ids``: phone E.164, idfa upper-case, the others lower-case), so
   ``138 0013 8000`` and ``+86 138-0013-8000`` are one identifier. An all-zero OAID / IDFA keys as
   ``ZERO_DEVICE_ID`` (for the guards to name it); any other value that cannot be normalised has
   no key and links nobody.
2. **Guards** (:func:`with_violation_rule`, ``dmp.contracts.identity_guards``): an identifier
   (``id_type, id_key``) that is blocked by value or pattern, or is on more accounts than
   ``max_accounts_per_identifier``, is a violation and links nobody.
3. **Links** (:func:`link_edges`): every other identifier on two or more accounts links each of
   them to its smallest ``user_id`` (a star: k - 1 edges for k accounts, never a k² clique).
4. **Components** (:func:`connected_components`): large-star / small-star (Kiveris et al.,
   "Connected Components in MapReduce and Beyond", SoCC 2014) on the account graph, alternated
   until the edges form a star forest; O(log² n) rounds, in practice 2-4 on identity graphs.
5. **Person cap**: a component of more than ``max_accounts_per_person`` accounts is not a
   person: each identifier that linked it is a violation and each of its accounts is its own person.
6. **Person id** (:func:`person_id_col`): ``p-`` + the first 24 hex digits of sha256 of the
   user_id of the component's oldest member: earliest ``first_seen_date`` (carried over from the
   previous ``silver/persons``; the run date for a new account), then the smallest user_id. An
   unchanged component keeps its id, an account joining a person keeps the person's id (it is
   newer than every member), a merge keeps the id of the oldest member, and of the parts of a
   split the one with the oldest member keeps it. Ids are unique within a run because every
   account is in exactly one component, so no collision handling is needed; an account in no
   component (no identities at all) would be ``person_id_for(user_id)`` too.

Violations carry ``sha256(id_key)`` (lower-case hex), never the raw value; their identifiers are
left out of ``person_identifiers``, so whatever is delivered from persons never carries them.
The components step runs one small Spark job per round to test convergence (an action in a
transform, but no read or write); every round's edges are local checkpoints so the plan stays flat.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from dmp.contracts.errors import DmpError
from dmp.contracts.identity_guards import (
    RULE_BLOCKED_PATTERN,
    RULE_BLOCKED_VALUE,
    RULE_IDENTIFIER_CAP,
    RULE_PERSON_CAP,
    ZERO_DEVICE_ID,
    IdentityGuards,
)
from dmp.contracts.vocab import ID_TYPES
from dmp.spark.schemas import IDENTITY_VIOLATIONS_SCHEMA, PERSON_IDENTIFIERS_SCHEMA, PERSONS_SCHEMA
from dmp.transforms import ids
from dmp.transforms.columns import lit_date

PERSON_ID_PREFIX = "p-"
PERSON_ID_HEX_DIGITS = 24  # 96 bits: ~1e-15 chance of two equal ids among 10M persons
# Large-star / small-star needs O(log² n) rounds; far more than this means a bug, not a big graph.
MAX_ROUNDS = 64
IDENTIFIER_KEY = ("id_type", "id_key")


# ---------------------------------------------------------------- plain Python twins (tests, docs)


def person_id_for(user_id: str) -> str:
    """The person id of a component whose oldest member is ``user_id`` (the Python twin of :func:`person_id_col`)."""
    return PERSON_ID_PREFIX + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:PERSON_ID_HEX_DIGITS]


def value_hash_for(id_key: str) -> str:
    """``ops/identity_violations.value_hash`` of a normalised value."""
    return hashlib.sha256(id_key.encode("utf-8")).hexdigest()


def match_key(id_type: str, raw: str) -> str | None:
    """The Python twin of :func:`with_match_key` for one value."""
    value, reason = ids.normalise_value(id_type, raw, "e164")
    return ZERO_DEVICE_ID if reason == ids.ZERO_DEVICE_ID else value


# ---------------------------------------------------------------- Spark


def person_id_col(user_id: Column) -> Column:
    return F.concat(F.lit(PERSON_ID_PREFIX), F.substring(F.sha2(user_id, 256), 1, PERSON_ID_HEX_DIGITS))


def with_match_key(identities_df: DataFrame) -> DataFrame:
    """``user_id, id_type, id_value`` + ``id_key``: the normalised value (null: links nobody)."""
    normalised = ids.with_normalised_id(identities_df.select("user_id", "id_type", "id_value"), "e164")
    zero = F.col("invalid_reason") == ids.ZERO_DEVICE_ID
    return normalised.select(
        "user_id",
        "id_type",
        "id_value",
        F.when(zero, F.lit(ZERO_DEVICE_ID)).otherwise(F.col("norm_value")).alias("id_key"),
    )


def identifier_accounts(keyed_df: DataFrame) -> DataFrame:
    """One row per identifier with a key: ``id_type, id_key, accounts`` and ``anchor`` (smallest user_id)."""
    return (
        keyed_df.filter(F.col("id_key").isNotNull())
        .groupBy(*IDENTIFIER_KEY)
        .agg(F.countDistinct("user_id").alias("accounts"), F.min("user_id").alias("anchor"))
    )


def _any(conditions: list[Column]) -> Column:
    out = F.lit(False)
    for cond in conditions:
        out = out | cond
    return out


def with_violation_rule(identifiers_df: DataFrame, guards: IdentityGuards) -> DataFrame:
    """``rule``: the first guard the identifier breaks (``VIOLATION_RULES`` order), null if none."""
    id_type, key = F.col("id_type"), F.col("id_key")
    blocked = _any(
        [
            (id_type == t) & key.isin(list(guards.blocked_values.of(t)))
            for t in ID_TYPES
            if guards.blocked_values.of(t)
        ]
    )
    # Spark's rlike finds a match anywhere; the guards' patterns must match the whole value.
    pattern = _any(
        [(id_type == t) & key.rlike(f"^(?:{p})$") for t in ID_TYPES for p in guards.blocked_patterns.of(t)]
    )
    rule = (
        F.when(blocked, F.lit(RULE_BLOCKED_VALUE))
        .when(pattern, F.lit(RULE_BLOCKED_PATTERN))
        .when(F.col("accounts") > guards.max_accounts_per_identifier, F.lit(RULE_IDENTIFIER_CAP))
    )
    return identifiers_df.withColumn("rule", rule)


def link_edges(keyed_df: DataFrame, linking_df: DataFrame) -> DataFrame:
    """``src, dst``: each account of a linking identifier -> the identifier's anchor (other than itself)."""
    return (
        keyed_df.join(linking_df.select(*IDENTIFIER_KEY, "anchor"), list(IDENTIFIER_KEY))
        .filter(F.col("user_id") != F.col("anchor"))
        .select(F.col("user_id").alias("src"), F.col("anchor").alias("dst"))
        .distinct()
    )


# ------------------------------------------------------------------------ connected components


def _large_star(edges_df: DataFrame) -> DataFrame:
    """Every node's larger neighbours -> the smallest of the node and its neighbours."""
    both = edges_df.select(F.col("src").alias("u"), F.col("dst").alias("v")).unionByName(
        edges_df.select(F.col("dst").alias("u"), F.col("src").alias("v"))
    )
    smallest = F.least(F.col("u"), F.min("v").over(Window.partitionBy("u")))
    return (
        both.withColumn("m", smallest)
        .filter(F.col("v") > F.col("u"))
        .select(F.col("v").alias("src"), F.col("m").alias("dst"))
    )  # duplicates are fine: small-star keeps one of each edge


def _small_star(edges_df: DataFrame) -> DataFrame:
    """Every node and its smaller neighbours -> the smallest of them."""
    oriented = edges_df.select(
        F.greatest("src", "dst").alias("u"), F.least("src", "dst").alias("v")
    ).withColumn("m", F.min("v").over(Window.partitionBy("u")))
    neighbours = oriented.filter(F.col("v") != F.col("m")).select(
        F.col("v").alias("src"), F.col("m").alias("dst")
    )
    return neighbours.unionByName(
        oriented.select(F.col("u").alias("src"), F.col("m").alias("dst"))
    ).distinct()


def _is_star_forest(edges_df: DataFrame) -> bool:
    """Each src has one dst and no dst is a src: every component is a star around its smallest node."""
    roles = edges_df.select(
        F.col("src").alias("node"), F.lit(1).alias("out"), F.lit(0).alias("inn")
    ).unionByName(edges_df.select(F.col("dst").alias("node"), F.lit(0).alias("out"), F.lit(1).alias("inn")))
    bad = (
        roles.groupBy("node")
        .agg(F.sum("out").alias("out"), F.max("inn").alias("inn"))
        .filter((F.col("out") > 1) | ((F.col("out") > 0) & (F.col("inn") > 0)))
    )
    return bad.limit(1).count() == 0


def connected_components(edges_df: DataFrame, max_rounds: int = MAX_ROUNDS) -> tuple[DataFrame, int]:
    """``node, component`` (the smallest node of its component) for every node of ``edges_df``
    (``src, dst``, undirected), and the number of large-star + small-star rounds it took."""
    edges = edges_df.select("src", "dst").filter(F.col("src") != F.col("dst")).localCheckpoint()
    rounds = 0
    if not edges.isEmpty():
        converged = False
        while not converged:
            if rounds == max_rounds:
                raise DmpError(f"connected components did not converge in {max_rounds} rounds")
            edges = _small_star(_large_star(edges)).localCheckpoint()
            rounds += 1
            converged = _is_star_forest(edges)
    leaves = edges.select(F.col("src").alias("node"), F.col("dst").alias("component"))
    centres = edges.select(F.col("dst").alias("node"), F.col("dst").alias("component"))
    return leaves.unionByName(centres).distinct(), rounds


# ----------------------------------------------------------------------------------- the whole


@dataclass(frozen=True)
class Stitched:
    """The three outputs (contract schemas) and how the components converged."""

    persons_df: DataFrame
    person_identifiers_df: DataFrame
    violations_df: DataFrame
    rounds: int


def _with_first_seen(
    accounts_df: DataFrame, previous_persons_df: DataFrame | None, run_date: date
) -> DataFrame:
    today = lit_date(run_date)
    if previous_persons_df is None:
        return accounts_df.withColumn("first_seen_date", today)
    previous = previous_persons_df.groupBy("user_id").agg(F.min("first_seen_date").alias("prev"))
    return (
        accounts_df.join(previous, "user_id", "left")
        .withColumn("first_seen_date", F.least(F.coalesce("prev", today), today))
        .drop("prev")
    )


def _components_with_cap(accounts_df: DataFrame, labels_df: DataFrame, cap: int) -> DataFrame:
    """``user_id, first_seen_date, component, oversize``: accounts of a component over ``cap``
    accounts are their own component (``oversize`` marks them, to name the identifiers that linked them)."""
    labelled = accounts_df.join(
        labels_df.select(F.col("node").alias("user_id"), "component"), "user_id", "left"
    ).withColumn("component", F.coalesce("component", "user_id"))
    oversize = F.count(F.lit(1)).over(Window.partitionBy("component")) > cap
    return labelled.withColumn("oversize", oversize).withColumn(
        "component", F.when(F.col("oversize"), F.col("user_id")).otherwise(F.col("component"))
    )


def with_person_id(components_df: DataFrame) -> DataFrame:
    """``person_id`` from the component's oldest member (earliest first_seen_date, then user_id)."""
    oldest = F.min(F.struct("first_seen_date", "user_id")).over(Window.partitionBy("component"))
    return components_df.withColumn("person_id", person_id_col(oldest["user_id"]))


def stitch_identities(
    identities_df: DataFrame,
    previous_persons_df: DataFrame | None,
    run_date: date,
    guards: IdentityGuards,
) -> Stitched:
    """silver/identities (+ the previous silver/persons) -> persons, person identifiers, violations.

    The keyed identities and the identifiers' counts are materialised once (local checkpoints): the
    phone parser and the aggregation over every identifier are the costly parts, read several times.
    """
    keyed = with_match_key(identities_df).localCheckpoint()
    # read three times (edges, violations, the person cap): one aggregation over all identifiers
    flagged = with_violation_rule(identifier_accounts(keyed), guards).localCheckpoint()
    linking = flagged.filter(F.col("rule").isNull() & (F.col("accounts") >= 2))
    labels, rounds = connected_components(link_edges(keyed, linking))

    accounts = _with_first_seen(keyed.select("user_id").distinct(), previous_persons_df, run_date)
    components = _components_with_cap(accounts, labels, guards.max_accounts_per_person)
    persons = with_person_id(components).localCheckpoint()

    oversize_anchors = persons.filter("oversize").select(F.col("user_id").alias("anchor"))
    person_cap = linking.join(oversize_anchors, "anchor", "left_semi").withColumn(
        "rule", F.lit(RULE_PERSON_CAP)
    )
    cols = [*IDENTIFIER_KEY, "accounts", "rule"]
    violations = flagged.filter(F.col("rule").isNotNull()).select(*cols).unionByName(person_cap.select(*cols))

    kept = keyed.join(violations.select(*IDENTIFIER_KEY), list(IDENTIFIER_KEY), "left_anti")
    person_identifiers = kept.join(persons.select("user_id", "person_id"), "user_id").select(
        *PERSON_IDENTIFIERS_SCHEMA.fieldNames()
    )
    return Stitched(
        persons_df=persons.select(*PERSONS_SCHEMA.fieldNames()),
        person_identifiers_df=person_identifiers.distinct(),
        violations_df=violations.select(
            lit_date(run_date).alias("run_date"),
            "id_type",
            F.sha2("id_key", 256).alias("value_hash"),
            F.col("accounts").cast("long").alias("accounts"),
            "rule",
        ).select(*IDENTITY_VIOLATIONS_SCHEMA.fieldNames()),
        rounds=rounds,
    )
