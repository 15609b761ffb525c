"""dmp_daily: behaviour logs of a day -> bronze/events -> silver/user_daily -> gold/user_tags, gated by GX."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, CronDataIntervalTimetable, Metadata, Param, dag, get_current_context, task

from dmp.contracts import tables
from dmp.contracts.vocab import ERASURE_RETENTION_HOURS
from dmp.orchestration.deltaread import delta_rows, open_table
from dmp.orchestration.planning import USER_TAGS_ASSET, run_dates, waiting_erasures
from dmp.orchestration.settings import default_args, setting
from dmp.orchestration.submit import CLI_STEP, reference_commands, run_spark_job

# Emitted when the day's tag snapshot passed its quality gate; dmp_audiences is scheduled on it.
USER_TAGS = Asset(**USER_TAGS_ASSET)

DOC = """
### dmp_daily

One run per day (`ds` = the day whose events are processed; `params.date_from/date_to` process a
range of days in one run, which is how the demo and the end-to-end test load history cheaply):

`ingest` → `validate_events` → `aggregate` → `validate_user_daily` → `tags` → `validate_user_tags`,
and beside them `ingest_reference` (identities, suppression lists and consents of the landing folder,
loaded with `dmp ingest-identities` / `ingest-suppression` / `ingest-consents` in one Spark application) → `stitch_identities`
(`dmp identities stitch --date <last day>`: accounts → `silver/persons`, guarded; docs/identity.md).
Last, `vacuum_erasures` (`dmp forget --vacuum`, docs/privacy.md "Erasure") purges the old versions
of the tables an erasure request deleted rows from, once the retention has passed, so time travel
cannot bring the rows back, and scrubs the files delivered before the request on every channel of
`channels.yaml` (Variable `dmp_segments`): hours from `params.erasure_retention_hours`, else Variable
`dmp_erasure_retention_hours`, else 168 (one week; `0` only for a confirmed immediate purge). While
no request waits for its vacuum (read with delta-rs) it starts no Spark job.
Identities are a snapshot, so a range run stitches once, as of its last day; a lake without
`silver/identities` (a landing that never had identity files) has nothing to stitch.

Each task submits one Spark job (`jobs/<step>.py`) with `spark-submit` to the master of the Airflow
connection **`dmp_spark`** (host `local[2]`, `spark://host:7077`, `yarn` or `k8s://…`); without that
connection, Variable `dmp_spark_master` / env `DMP_SPARK_MASTER` / `local[2]`. Paths come from
Variables `dmp_lake`, `dmp_landing`, `dmp_landing_format` (env `DMP_LAKE`, `DMP_LANDING`, …).

Every step rewrites only its own date partitions (Delta `replaceWhere`), so re-running a day,
`airflow backfill create --dag-id dmp_daily --from-date … --to-date …` or clearing a task is safe.
The `validate_*` tasks are the Great Expectations gates: a failing suite fails the run before the
next layer is built. When the tag gate passes, the asset `dmp_user_tags` is updated with the dates
in its extra, which triggers `dmp_audiences`.
"""


def _date_param() -> Param:
    # One Param object per key: a shared instance would make date_from and date_to one value.
    return Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD; default: ds")


def _dates() -> tuple[str, str]:
    ctx = get_current_context()
    return run_dates(ctx["params"], ctx.get("logical_date"))


def _range_args() -> list[str]:
    start, end = _dates()
    return ["--lake", setting("lake"), "--from", start, "--to", end]


def _vacuum_args() -> list[str] | None:
    """``dmp forget --vacuum`` for the requests waiting for it; None (and a message) when none does."""
    from airflow.sdk import Variable

    lake = setting("lake")
    waiting = waiting_erasures(delta_rows(tables.table_path(lake, tables.ERASURE_REQUESTS)))
    if not waiting:
        print(f"{tables.table_path(lake, tables.ERASURE_REQUESTS)}: no erasure request waits for a vacuum")
        return None
    hours = get_current_context()["params"].get("erasure_retention_hours")
    if hours is None:
        hours = Variable.get("dmp_erasure_retention_hours", default=None) or ERASURE_RETENTION_HOURS
    print(f"erasure requests waiting for their vacuum: {', '.join(waiting)}")
    args = ["forget", "--lake", lake, "--segments", setting("segments"), "--vacuum"]
    return [*args, "--retention-hours", str(float(hours))]


@dag(
    dag_id="dmp_daily",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    # Tags are built incrementally from the previous day's snapshot: one run at a time, in order.
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=default_args(),
    params={
        "date_from": _date_param(),
        "date_to": _date_param(),
        "source": Param(
            None, type=["null", "string"], description="landing folder; default Variable dmp_landing"
        ),
        "erasure_retention_hours": Param(
            None,
            type=["null", "number"],
            minimum=0,
            description=f"vacuum_erasures: history kept; default Variable dmp_erasure_retention_hours, "
            f"else {ERASURE_RETENTION_HOURS:g}",
        ),
    },
    doc_md=DOC,
    tags=["dmp", "daily", "spark", "gx"],
)
def dmp_daily() -> None:
    @task(execution_timeout=timedelta(hours=2))
    def ingest() -> None:
        """Landing JSON lines of the day(s) -> bronze/events (+ quarantine, ops/ingest_runs)."""
        source = get_current_context()["params"].get("source") or setting("landing")
        args = [
            *_range_args(),
            "--source",
            source,
            "--format",
            setting("landing_format"),
            "--skip-checks",
        ]
        run_spark_job("ingest", args)

    @task(execution_timeout=timedelta(minutes=30))
    def ingest_reference() -> None:
        """Identities, suppression lists and consents of the landing folder (small)."""
        source = get_current_context()["params"].get("source") or setting("landing")
        args = reference_commands(source, setting("lake"))
        if not args:
            print(f"{source}: no identities/, suppression/ or consents/ to load")
            return
        run_spark_job(CLI_STEP, args)

    @task(execution_timeout=timedelta(hours=1))
    def stitch_identities() -> None:
        """silver/identities -> silver/persons, silver/person_identifiers, ops/identity_violations."""
        _start, end = _dates()
        lake = setting("lake")
        if open_table(tables.table_path(lake, tables.IDENTITIES)) is None:  # a landing without identities
            print(f"{tables.table_path(lake, tables.IDENTITIES)} does not exist: no identities to stitch")
            return
        run_spark_job("stitch_identities", ["--lake", lake, "--date", end])

    @task(execution_timeout=timedelta(minutes=30))
    def validate_events() -> None:
        run_spark_job("validate", [*_range_args(), "--table", tables.EVENTS])

    @task(execution_timeout=timedelta(hours=1))
    def aggregate() -> None:
        run_spark_job("aggregate", [*_range_args(), "--skip-checks"])

    @task(execution_timeout=timedelta(minutes=30))
    def validate_user_daily() -> None:
        run_spark_job("validate", [*_range_args(), "--table", tables.USER_DAILY])

    @task(execution_timeout=timedelta(hours=1))
    def tags() -> None:
        run_spark_job("tags", [*_range_args(), "--skip-checks"])

    @task(execution_timeout=timedelta(minutes=30), outlets=[USER_TAGS])
    def validate_user_tags():  # noqa: ANN202 - a generator task: yields the asset event's metadata
        run_spark_job("validate", [*_range_args(), "--table", tables.USER_TAGS])
        start, end = _dates()
        yield Metadata(USER_TAGS, extra={"date_from": start, "date_to": end, "lake": setting("lake")})

    @task(execution_timeout=timedelta(hours=2))
    def vacuum_erasures() -> None:
        """dmp forget --vacuum, when an erasure request waits for it (none: no Spark job)."""
        args = _vacuum_args()
        if args:
            run_spark_job(CLI_STEP, args)

    gate = validate_user_tags()
    ingest() >> validate_events() >> aggregate() >> validate_user_daily() >> tags() >> gate
    # Packs need the suppression lists and persons, delivery needs identities: load them before publishing.
    ingest_reference() >> stitch_identities() >> gate
    gate >> vacuum_erasures()  # after the day's tables are written and gated


dmp_daily()
