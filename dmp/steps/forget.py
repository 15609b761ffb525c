"""``dmp forget --users FILE --request-id ID``: erase accounts from every table that can hold them.

Order of work (docs/privacy.md "Erasure"):

1. **Tombstones first** (``ops/erased_users``, ``ops/erased_identifiers``: hashes only, see
   :mod:`dmp.transforms.erasure`), so an ingest that runs from then on already keeps them out.
2. **Deletes**, one Delta commit per table that holds a matching row (a MERGE ... WHEN MATCHED
   DELETE on the matched keys), none where nothing matches (a rerun writes nothing):
   ``USER_ID_TABLES`` by ``user_id``; the quarantine tables by ``user_id`` (when they have one) or
   by a token of ``raw`` that hashes like an erased id or identifier; ``silver/person_identifiers``
   loses the erased accounts' identifiers in their persons, unless another (kept) account of that
   person holds the same value. Persons are not re-stitched: the next ``dmp identities stitch``
   recomputes the components from ``silver/identities`` (where the accounts are gone).
3. ``ops/delivery_state`` is **kept** (status ``kept_until_delivery``): it is the base of the next
   incremental diff, which must find the erased keys there to send their ``remove``. ``dmp forget
   --vacuum`` deletes them once the channel has delivered after the request
   (:mod:`dmp.steps.forget_status`).
4. The request's record in ``ops/erasure_requests``: rows deleted per table, no raw id.

A rerun of the same request id deletes whatever came back (nothing, normally: then no table gets a
new version and the record is left as it was).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import TREATMENT
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.transforms.erasure import (
    DELIVERY_KEY,
    MENTION,
    delivery_keys,
    erasure_hash,
    erasure_hash_col,
    identifier_mention_keys,
    with_erased_flag,
)
from dmp.transforms.persons import expand_to_persons

REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
# Tables whose rows are an account's (by its user_id column).
USER_ID_TABLES: tuple[str, ...] = (
    tables.EVENTS,
    tables.IDENTITIES,
    tables.PERSONS,
    tables.CONSENTS,
    tables.USER_DAILY,
    tables.USER_TAGS,
    tables.USER_TAG_STATE,
    tables.AUDIENCE_PACKS,
    tables.SUPPRESSION_LISTS,
    # Who a capped or prioritised channel reached on which day (dmp.steps.deliver_contacts): an
    # erased account is never delivered again, so its rows go and its cap history with them.
    tables.CHANNEL_CONTACTS,
)
QUARANTINE_TABLES: tuple[str, ...] = (
    tables.EVENTS_QUARANTINE,
    tables.IDENTITIES_QUARANTINE,
    tables.CONSENTS_QUARANTINE,
)
DELETED, NOTHING, MISSING, KEPT = "deleted", "nothing", "missing", "kept_until_delivery"


@dataclass
class ForgetResult:
    request_id: str
    requested_at: datetime
    accounts: int
    tables: dict[str, dict[str, object]] = field(default_factory=dict)
    wrote: list[str] = field(default_factory=list)
    rerun: bool = False


@dataclass(frozen=True)
class Erased:
    """The request's accounts while their raw ids are in memory, and the hashes kept of them."""

    users: list[str]
    identifiers: list[tuple[str, str]]
    user_hashes: list[str]
    mention_hashes: list[str]
    delivery_hashes: list[str]


def _hash_df(spark: SparkSession, hashes: Sequence[str]) -> DataFrame:
    return spark.createDataFrame([(h,) for h in hashes], "hash string")


def collect_erased(spark: SparkSession, lake: str, users: Sequence[str]) -> Erased:
    """The accounts' identifiers (``silver/identities``) and every hash the tombstones keep."""
    identifiers: set[tuple[str, str]] = set()
    if lk.table_exists(spark, lake, tables.IDENTITIES):
        users_df = spark.createDataFrame([(u,) for u in users], "user_id string")
        rows = (
            lk.read_table(spark, lake, tables.IDENTITIES)
            .join(users_df, "user_id", "left_semi")
            .select("id_type", "id_value")
            .distinct()
            .collect()
        )
        identifiers = {(r["id_type"], r["id_value"]) for r in rows}
    mentions: set[str] = set()
    deliveries: set[str] = set()
    for id_type, value in identifiers:
        mentions |= identifier_mention_keys(id_type, value)
        deliveries |= delivery_keys(id_type, value)
    for user in users:
        deliveries |= delivery_keys("user_id", user)
    user_hashes = sorted({erasure_hash(u) for u in users})
    return Erased(
        sorted(users),
        sorted(identifiers),
        user_hashes,
        sorted({erasure_hash(k) for k in mentions}),
        sorted({erasure_hash(k) for k in deliveries} - set(user_hashes)),
    )


def person_accounts(spark: SparkSession, lake: str, users: Sequence[str]) -> list[str]:
    """``users`` and every other account stitched to the same persons (``silver/persons``)."""
    if not lk.table_exists(spark, lake, tables.PERSONS):
        return sorted(set(users))
    keys_df = lk.read_table(spark, lake, tables.PERSONS).select("user_id", "person_id")
    users_df = spark.createDataFrame([(u,) for u in users], "user_id string")
    return sorted(r["user_id"] for r in expand_to_persons(users_df, keys_df).collect())


def write_tombstones(spark: SparkSession, lake: str, erased: Erased, request_id: str, now: datetime) -> int:
    """Insert the hashes not yet tombstoned; returns how many rows were new (0 = no write)."""
    users = spark.createDataFrame(
        [(h, request_id, now) for h in erased.user_hashes], schemas.ERASED_USERS_SCHEMA
    )
    n = lk.insert_new_rows(spark, lake, tables.ERASED_USERS, schemas.ERASED_USERS_SCHEMA, users, "user_hash")
    ids = [(h, MENTION, request_id, now) for h in erased.mention_hashes]
    seen = set(erased.mention_hashes)
    ids += [(h, DELIVERY_KEY, request_id, now) for h in erased.delivery_hashes if h not in seen]
    if ids:
        ids_df = spark.createDataFrame(ids, schemas.ERASED_IDENTIFIERS_SCHEMA)
        n += lk.insert_new_rows(
            spark, lake, tables.ERASED_IDENTIFIERS, schemas.ERASED_IDENTIFIERS_SCHEMA, ids_df, "value_hash"
        )
    return n


def delete_matching(spark: SparkSession, lake: str, table: str, keys_df: DataFrame, on: Sequence[str]) -> int:
    """Delete the rows of ``table`` whose ``on`` columns match a row of ``keys_df``: one commit, or
    none when nothing matches. Returns the rows deleted."""
    from delta.tables import DeltaTable

    keys = keys_df.select(*on).distinct().persist()
    try:
        n = lk.read_table(spark, lake, table).join(keys, list(on), "left_semi").count()
        if not n:
            return 0
        condition = " AND ".join(f"t.`{c}` = s.`{c}`" for c in on)

        def _delete() -> None:
            target = DeltaTable.forPath(spark, tables.table_path(lake, table)).alias("t")
            target.merge(keys.alias("s"), condition).whenMatchedDelete().execute()

        lk.retry_conflicts(_delete, f"{tables.table_path(lake, table)}: erase {n} rows")
        return n
    finally:
        keys.unpersist()


def _outcome(n: int | None) -> dict[str, object]:
    if n is None:
        return {"status": MISSING, "rows": 0}
    return {"status": DELETED if n else NOTHING, "rows": n}


def _erase_quarantine(spark: SparkSession, lake: str, table: str, erased: Erased) -> int:
    rows = lk.read_table(spark, lake, table)
    cols = ["quarantine_id", "raw"] + (["user_id"] if "user_id" in rows.columns else [])
    flagged = with_erased_flag(
        rows.select(*cols),
        _hash_df(spark, erased.user_hashes),
        _hash_df(spark, erased.user_hashes + erased.mention_hashes),
    )
    return delete_matching(spark, lake, table, flagged.filter(F.col("erased")), ["quarantine_id"])


def _person_identifier_keys(spark: SparkSession, lake: str, users_df: DataFrame) -> DataFrame:
    """(person_id, id_type, id_value) of the erased accounts' identifiers that no kept account of
    the same person also holds (read before persons and identities are deleted)."""
    persons = lk.read_table(spark, lake, tables.PERSONS).select("user_id", "person_id")
    if not lk.table_exists(spark, lake, tables.IDENTITIES):
        return spark.createDataFrame([], "person_id string, id_type string, id_value string")
    ids = lk.read_table(spark, lake, tables.IDENTITIES).select("user_id", "id_type", "id_value")
    owned = ids.join(persons, "user_id")
    erased = owned.join(users_df, "user_id", "left_semi").select("person_id", "id_type", "id_value")
    kept = owned.join(users_df, "user_id", "left_anti").select("person_id", "id_type", "id_value")
    return erased.subtract(kept)


def _pack_segments(spark: SparkSession, lake: str, users_df: DataFrame) -> list[str]:
    """Segments whose treatment group held an erased account (their channels hold its keys)."""
    packs = lk.read_table(spark, lake, tables.AUDIENCE_PACKS)
    rows = packs.filter(F.col("group") == TREATMENT).join(users_df, "user_id", "left_semi").select("segment")
    return sorted(r["segment"] for r in rows.distinct().collect())


def _state_rows(spark: SparkSession, lake: str, erased: Erased) -> int:
    hashes = _hash_df(spark, erased.user_hashes + erased.delivery_hashes)
    state = lk.read_table(spark, lake, tables.DELIVERY_STATE)
    keyed = state.withColumn("hash", erasure_hash_col(F.col("user_key")))
    return keyed.join(F.broadcast(hashes), "hash", "left_semi").count()


def erase_tables(spark: SparkSession, lake: str, erased: Erased) -> dict[str, dict[str, object]]:
    """Delete the accounts from every table (module docstring); the outcome per table."""
    users_df = spark.createDataFrame([(u,) for u in erased.users], "user_id string").persist()
    exists = {t: lk.table_exists(spark, lake, t) for t in (*USER_ID_TABLES, *QUARANTINE_TABLES)}
    exists[tables.PERSON_IDENTIFIERS] = lk.table_exists(spark, lake, tables.PERSON_IDENTIFIERS)
    out: dict[str, dict[str, object]] = {}
    segments: list[str] = []
    try:
        if exists[tables.PERSON_IDENTIFIERS] and exists[tables.PERSONS]:
            keys = _person_identifier_keys(spark, lake, users_df)
            cols = ["person_id", "id_type", "id_value"]
            out[tables.PERSON_IDENTIFIERS] = _outcome(
                delete_matching(spark, lake, tables.PERSON_IDENTIFIERS, keys, cols)
            )
        else:
            out[tables.PERSON_IDENTIFIERS] = _outcome(None if not exists[tables.PERSON_IDENTIFIERS] else 0)
        if exists[tables.AUDIENCE_PACKS]:
            segments = _pack_segments(spark, lake, users_df)
        for table in USER_ID_TABLES:
            n = delete_matching(spark, lake, table, users_df, ["user_id"]) if exists[table] else None
            out[table] = _outcome(n)
        out[tables.AUDIENCE_PACKS]["segments"] = segments
        for table in QUARANTINE_TABLES:
            out[table] = _outcome(_erase_quarantine(spark, lake, table, erased) if exists[table] else None)
        if lk.table_exists(spark, lake, tables.DELIVERY_STATE):
            out[tables.DELIVERY_STATE] = {"status": KEPT, "rows": _state_rows(spark, lake, erased)}
        else:
            out[tables.DELIVERY_STATE] = _outcome(None)
    finally:
        users_df.unpersist()
    return out


def read_request(spark: SparkSession, lake: str, request_id: str) -> dict[str, object] | None:
    if not lk.table_exists(spark, lake, tables.ERASURE_REQUESTS):
        return None
    rows = lk.read_table(spark, lake, tables.ERASURE_REQUESTS).filter(F.col("request_id") == request_id)
    row = rows.first()
    return row.asDict() if row else None


def upsert_request(spark: SparkSession, lake: str, row: dict[str, object]) -> None:
    """Insert or replace the request's record (MERGE on request_id: one commit)."""
    from delta.tables import DeltaTable

    schema = schemas.ERASURE_REQUESTS_SCHEMA
    lk.ensure_table(spark, lake, tables.ERASURE_REQUESTS, schema)
    src = spark.createDataFrame([{c: row.get(c) for c in schema.fieldNames()}], schema)

    def _merge() -> None:
        (
            DeltaTable.forPath(spark, tables.table_path(lake, tables.ERASURE_REQUESTS))
            .alias("t")
            .merge(src.alias("s"), "t.request_id = s.request_id")
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        )

    lk.retry_conflicts(_merge, f"{tables.table_path(lake, tables.ERASURE_REQUESTS)}: record request")


def _merged_tables(
    before: dict[str, dict[str, object]], now: dict[str, dict[str, object]]
) -> dict[str, dict[str, object]]:
    """A rerun's outcome added to the first run's: rows summed, ``deleted`` wins over ``nothing``."""
    merged = {t: dict(v) for t, v in before.items()}
    for table, outcome in now.items():
        old = merged.get(table)
        if old is None or (table == tables.DELIVERY_STATE and old.get("status") in (KEPT, MISSING)):
            merged[table] = dict(outcome)
            continue
        if int(outcome["rows"]) and table != tables.DELIVERY_STATE:  # type: ignore[call-overload]
            old["rows"] = int(old["rows"]) + int(outcome["rows"])  # type: ignore[call-overload]
            old["status"] = DELETED
        if "segments" in outcome:
            old["segments"] = sorted(set(old.get("segments", [])) | set(outcome["segments"]))  # type: ignore[arg-type]
    return merged


def run_forget(
    spark: SparkSession,
    lake: str,
    users: Sequence[str],
    request_id: str,
    *,
    now: datetime | None = None,
    whole_persons: bool = False,
) -> ForgetResult:
    """Tombstone, then delete ``users`` everywhere, then record the request (module docstring).

    ``whole_persons``: also every other account stitched to the same persons. Without it those
    accounts are kept and counted (``tables_json`` ``silver/persons.other_accounts``), so the
    status can say that the person still has data under them."""
    if not REQUEST_ID.match(request_id):
        raise DmpError(f"--request-id: expected 1-64 characters of [A-Za-z0-9_.:-], got {request_id!r}")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    before = read_request(spark, lake, request_id)
    requested_at = before["requested_at"] if before else stamp
    linked = person_accounts(spark, lake, users)
    others = len(set(linked) - set(users))
    if whole_persons:
        users, others = linked, 0
    erased = collect_erased(spark, lake, users)
    new_tombstones = write_tombstones(spark, lake, erased, request_id, stamp)
    outcome = erase_tables(spark, lake, erased)
    if outcome[tables.PERSONS]["status"] != MISSING:
        outcome[tables.PERSONS]["other_accounts"] = others
    result = ForgetResult(request_id, requested_at, len(erased.users), outcome)  # type: ignore[arg-type]
    result.wrote = [t for t, o in outcome.items() if o["status"] == DELETED]
    if before is not None:
        result.rerun = True
        previous = json.loads(str(before["tables_json"]))
        result.tables = _merged_tables(previous, outcome)
        result.accounts = max(int(before["accounts"]), len(erased.users))  # type: ignore[call-overload]
        if not result.wrote and not new_tombstones:
            result.tables = previous  # nothing left to delete: the record stays as it is
            return result
    row = dict(before or {})
    row.update(
        request_id=request_id,
        requested_at=requested_at,
        accounts=result.accounts,
        tables_json=json.dumps(result.tables, sort_keys=True),
        finished_at=before["finished_at"] if before and not result.wrote else stamp,
    )
    if result.wrote:  # rows deleted now are in old versions again: the request needs a new vacuum
        row.update(vacuumed_at=None, retention_hours=None, vacuum_json=None)
    upsert_request(spark, lake, row)
    return result
