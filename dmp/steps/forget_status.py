"""``dmp forget --status ID`` and ``dmp forget --vacuum``: what an erasure did, and making it final.

**Status** (:func:`request_status`): the request's rows deleted per table (``ops/erasure_requests``),
the channels told, and the vacuum. A channel holds an erased account's keys when it delivered one
of the segments whose treatment group held the account (recorded by ``dmp forget`` before the packs
were cleaned) before the request; it has been *told* once a successful delivery of that channel and
segment is recorded in ``ops/deliveries`` after the request: an incremental channel's ``remove``
file held the keys (its state still had them), a full channel's file simply no longer holds them.

**Vacuum** (:func:`run_vacuum`), for the requests not vacuumed yet: first the
``ops/delivery_state`` rows of erased keys are deleted for the (channel, segment) pairs that have
been told (the others keep them: their next diff still needs them); a request all of whose channels
were told records when (``tables_json`` ``ops/delivery_state.cleaned_at``). A request is *due* once
it finished, and its state rows were deleted, at least the retention (default
``DEFAULT_RETENTION_HOURS``; ``0`` = purge now) before the vacuum. Then
:func:`dmp.spark.purge.purge_history` removes the files and log entries older than the retention
from every table the due requests were erased from (``all_tables``: from every Delta table under
the lake), and the due requests are stamped ``vacuumed_at``: their deleted rows are in no file of
the lake any more. With no request waiting, the vacuum reads ``ops/erasure_requests`` and stops.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.channels import ChannelsConfig
from dmp.contracts.errors import DmpError
from dmp.contracts.status import DeliveryStatus
from dmp.contracts.vocab import ERASURE_RETENTION_HOURS
from dmp.spark import lake as lk
from dmp.steps.forget import DELETED, KEPT, MISSING, NOTHING, delete_matching, read_request, upsert_request
from dmp.transforms.erasure import erasure_hash_col

# One week: the time a running job, a reader or a time-travel query of the last days keeps working
# on the files an erasure deleted. 0 = a confirmed immediate purge.
DEFAULT_RETENTION_HOURS = ERASURE_RETENTION_HOURS
# Delta tables sit at <lake>/<layer>/<name>; looked for this deep at most.
TABLE_SEARCH_DEPTH = 3


@dataclass(frozen=True)
class ChannelTold:
    channel: str
    segment: str
    last_before: datetime
    told_at: datetime | None


@dataclass
class RequestStatus:
    request_id: str
    requested_at: datetime
    finished_at: datetime | None
    accounts: int
    tables: dict[str, dict[str, object]]
    channels: list[ChannelTold] = field(default_factory=list)
    vacuumed_at: datetime | None = None
    retention_hours: float | None = None


def _deliveries(spark: SparkSession, lake: str, segments: list[str]) -> DataFrame | None:
    if not segments or not lk.table_exists(spark, lake, tables.DELIVERIES):
        return None
    return (
        lk.read_table(spark, lake, tables.DELIVERIES)
        .filter((F.col("status") == DeliveryStatus.SUCCESS.value) & F.col("segment").isin(segments))
        .select("channel", "segment", "delivered_at")
    )


def channels_told(
    spark: SparkSession, lake: str, segments: list[str], requested_at: datetime
) -> list[ChannelTold]:
    """Per (channel, segment) delivered before the request: when it was told (None: not yet)."""
    df = _deliveries(spark, lake, segments)
    if df is None:
        return []
    at = F.lit(requested_at).cast("timestamp")
    rows = (
        df.groupBy("channel", "segment")
        .agg(
            F.max(F.when(F.col("delivered_at") <= at, F.col("delivered_at"))).alias("before"),
            F.min(F.when(F.col("delivered_at") > at, F.col("delivered_at"))).alias("after"),
        )
        .filter(F.col("before").isNotNull())
        .orderBy("channel", "segment")
        .collect()
    )
    return [ChannelTold(r["channel"], r["segment"], r["before"], r["after"]) for r in rows]


def request_status(spark: SparkSession, lake: str, request_id: str) -> RequestStatus:
    row = read_request(spark, lake, request_id)
    if row is None:
        raise DmpError(
            f"no erasure request {request_id!r} in {tables.table_path(lake, tables.ERASURE_REQUESTS)}"
        )
    table_outcomes = json.loads(str(row["tables_json"]))
    segments = list(table_outcomes.get(tables.AUDIENCE_PACKS, {}).get("segments", []))
    status = RequestStatus(
        request_id,
        row["requested_at"],  # type: ignore[arg-type]
        row["finished_at"],  # type: ignore[arg-type]
        int(row["accounts"]),  # type: ignore[call-overload]
        table_outcomes,
        channels_told(spark, lake, segments, row["requested_at"]),  # type: ignore[arg-type]
        row["vacuumed_at"],  # type: ignore[arg-type]
        row["retention_hours"],  # type: ignore[arg-type]
    )
    return status


# ---------------------------------------------------------------- vacuum


@dataclass
class VacuumResult:
    retention_hours: float
    tables: list[dict[str, object]] = field(default_factory=list)
    state_rows_deleted: int = 0
    requests_covered: list[str] = field(default_factory=list)
    requests_waiting: list[str] = field(default_factory=list)
    # Delivered folders rewritten without the erased accounts' rows (dmp.steps.forget_scrub);
    # None: no channels given, delivered files not looked at.
    folders_scrubbed: int | None = None
    delivered_rows_removed: int = 0


def delta_tables(spark: SparkSession, lake: str) -> list[str]:
    """Every Delta table under the lake (a folder holding ``_delta_log``), as paths relative to it."""
    fs, root = lk._hadoop_path(spark, lake)  # noqa: SLF001 - the lake module's own Hadoop handle
    if not fs.exists(root):
        return []
    found: list[str] = []

    def walk(path, rel: str, depth: int) -> None:  # noqa: ANN001 - a Hadoop Path
        children = [s for s in fs.listStatus(path) if s.isDirectory()]
        names = {s.getPath().getName() for s in children}
        if "_delta_log" in names:
            found.append(rel)
            return
        if depth >= TABLE_SEARCH_DEPTH:
            return
        for s in children:
            name = s.getPath().getName()
            if not name.startswith((".", "_")):
                walk(s.getPath(), f"{rel}/{name}" if rel else name, depth + 1)

    walk(root, "", 0)
    return sorted(found)


def _requests(spark: SparkSession, lake: str) -> list[dict[str, object]]:
    if not lk.table_exists(spark, lake, tables.ERASURE_REQUESTS):
        return []
    return [r.asDict() for r in lk.read_table(spark, lake, tables.ERASURE_REQUESTS).collect()]


def _segments(req: dict[str, object]) -> list[str]:
    return list(json.loads(str(req["tables_json"])).get(tables.AUDIENCE_PACKS, {}).get("segments", []))


def clean_delivery_state(spark: SparkSession, lake: str, requests: list[dict[str, object]]) -> int:
    """Delete the erased keys from ``ops/delivery_state`` for the (channel, segment) pairs told since."""
    return _clean_delivery_state(spark, lake, requests)[0]


def _clean_delivery_state(
    spark: SparkSession, lake: str, requests: list[dict[str, object]]
) -> tuple[int, list[str]]:
    """(state rows deleted, ids of the requests every channel of which has now been told)."""
    if not requests or not lk.table_exists(spark, lake, tables.DELIVERY_STATE):
        return 0, [str(r["request_id"]) for r in requests]
    if not lk.table_exists(spark, lake, tables.ERASED_USERS):
        return 0, []
    pairs: set[tuple[str, str]] = set()
    all_told: list[str] = []
    for req in requests:
        channels = channels_told(spark, lake, _segments(req), req["requested_at"])  # type: ignore[arg-type]
        pairs |= {(c.channel, c.segment) for c in channels if c.told_at}
        if all(c.told_at for c in channels):
            all_told.append(str(req["request_id"]))
    if not pairs:
        return 0, all_told
    hashes = lk.read_table(spark, lake, tables.ERASED_USERS).select(F.col("user_hash").alias("hash"))
    if lk.table_exists(spark, lake, tables.ERASED_IDENTIFIERS):
        more = lk.read_table(spark, lake, tables.ERASED_IDENTIFIERS).select(F.col("value_hash").alias("hash"))
        hashes = hashes.unionByName(more)
    pairs_df = spark.createDataFrame(sorted(pairs), "channel string, segment string")
    state = lk.read_table(spark, lake, tables.DELIVERY_STATE).join(
        pairs_df, ["channel", "segment"], "left_semi"
    )
    keys = state.withColumn("hash", erasure_hash_col(F.col("user_key"))).join(hashes, "hash", "left_semi")
    cols = ["channel", "segment", "run_date", "user_key"]
    return delete_matching(spark, lake, tables.DELIVERY_STATE, keys.select(*cols), cols), all_told


def _at(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def request_due(req: dict[str, object], now: datetime, retention_hours: float) -> bool:
    """Whether a purge at ``now`` with this retention makes request ``req`` final: it finished at
    least ``retention_hours`` before ``now`` and so did the deletion of its keys from
    ``ops/delivery_state`` (done once every channel that held them was told), naive UTC times."""
    horizon = now - timedelta(hours=retention_hours)
    finished = _at(req["finished_at"])
    if finished is None or finished > horizon:
        return False
    state = json.loads(str(req["tables_json"])).get(tables.DELIVERY_STATE, {})
    if state.get("status") == KEPT:
        return False
    cleaned = _at(state.get("cleaned_at"))
    return cleaned is None or cleaned <= horizon


def split_covered(
    requests: list[dict[str, object]], now: datetime, retention_hours: float
) -> tuple[list[str], list[str]]:
    """(ids of the requests a purge at ``now`` with this retention makes final, ids still waiting)."""
    covered, waiting = [], []
    for req in sorted(requests, key=lambda r: str(r["request_id"])):
        (covered if request_due(req, now, retention_hours) else waiting).append(str(req["request_id"]))
    return covered, waiting


def purge_scope(requests: list[dict[str, object]]) -> list[str]:
    """The tables whose history can hold the accounts of these requests: every table ``dmp forget``
    erased from (``tables_json``), also where it found no row (an older version, replaced by a
    rebuild before the request, can still hold them); not the ones that did not exist."""
    scope: set[str] = set()
    for req in requests:
        for table, outcome in json.loads(str(req["tables_json"])).items():
            if outcome.get("status") != MISSING:
                scope.add(table)
    return sorted(scope)


def _mark_state_cleaned(
    spark: SparkSession, lake: str, requests: list[dict[str, object]], told: list[str], stamp: datetime
) -> None:
    """Record, in each fully told request still marked ``kept_until_delivery``, that its keys left
    ``ops/delivery_state`` now (the purge can only remove those files a retention later)."""
    for req in requests:
        outcomes = json.loads(str(req["tables_json"]))
        state = outcomes.get(tables.DELIVERY_STATE, {})
        if str(req["request_id"]) not in told or state.get("status") != KEPT:
            continue
        rows = int(state.get("rows", 0))
        state = {"status": DELETED if rows else NOTHING, "rows": rows}
        if rows:
            state["cleaned_at"] = stamp.isoformat()
        outcomes[tables.DELIVERY_STATE] = state
        req["tables_json"] = json.dumps(outcomes, sort_keys=True)
        upsert_request(spark, lake, req)


def run_vacuum(
    spark: SparkSession,
    lake: str,
    retention_hours: float = DEFAULT_RETENTION_HOURS,
    *,
    now: datetime | None = None,
    all_tables: bool = False,
    channels: ChannelsConfig | None = None,
) -> VacuumResult:
    """Clean the told channels' state, purge the history of the tables the requests now due were
    erased from (``all_tables``: of every Delta table under the lake), stamp those requests.

    With ``channels`` (``channels.yaml``) and a request waiting, every folder delivered on them is
    first scrubbed of the erased accounts' rows (:func:`dmp.steps.forget_scrub.scrub_deliveries`:
    files sent before the request still hold them, raw for a ``hash: none`` channel), without
    waiting for the retention: those copies are not time travel, nothing needs them.

    Nothing to do (no request waiting for its vacuum) costs one read of ``ops/erasure_requests``."""
    from dmp.spark.purge import purge_history

    if retention_hours < 0:
        raise DmpError(f"--retention-hours: expected 0 or more, got {retention_hours}")
    stamp = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None)
    result = VacuumResult(retention_hours)
    requests = [r for r in _requests(spark, lake) if r["vacuumed_at"] is None]
    if requests and channels is not None:
        from dmp.steps.forget_scrub import scrub_deliveries

        scrub = scrub_deliveries(spark, lake, channels, now=stamp)
        result.folders_scrubbed, result.delivered_rows_removed = len(scrub.rewritten), scrub.rows_removed
    if requests:
        result.state_rows_deleted, told = _clean_delivery_state(spark, lake, requests)
        _mark_state_cleaned(spark, lake, requests, told, stamp)
    result.requests_covered, result.requests_waiting = split_covered(requests, stamp, retention_hours)
    due = [r for r in requests if str(r["request_id"]) in result.requests_covered]
    if all_tables:
        scope = delta_tables(spark, lake)
    else:
        scope = [t for t in purge_scope(due) if lk.table_exists(spark, lake, t)]
    for table in scope:
        report = purge_history(spark, tables.table_path(lake, table), retention_hours)
        result.tables.append({k: v for k, v in asdict(report).items()} | {"table": table})
    summary = json.dumps(
        {
            "tables": [t["table"] for t in result.tables],
            "files_removed": sum(int(t["files_removed"]) for t in result.tables),
            "state_rows_deleted": result.state_rows_deleted,
            "delivered_rows_removed": result.delivered_rows_removed,
        }
    )
    for req in due:
        req.update(vacuumed_at=stamp, retention_hours=retention_hours, vacuum_json=summary)
        upsert_request(spark, lake, req)
    return result
