"""dmp_uplift: evaluate every delivered pack whose attribution window has closed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task

from dmp.contracts import tables
from dmp.orchestration.deltaread import delta_partition_values, delta_rows
from dmp.orchestration.planning import due_evaluations, evaluation_batches, list_specs, spec_info
from dmp.orchestration.settings import default_args, setting
from dmp.orchestration.submit import CLI_STEP, run_spark_job

DOC = """
### dmp_uplift

Daily. `find_due` (light, no Spark) reads `ops/deliveries` and `gold/uplift_results` with delta-rs
(no JVM) and the specs' windows, and returns every (segment, run_date) that was delivered, whose
attribution window (run_date+1 … run_date+N, N = the spec's `attribution_days`, default 14; never
its look-back `window_days`) ended on or before the run's date **and** on or before the last day
aggregated into `silver/user_daily` (so outcomes are never evaluated on incomplete data), and that
has not been evaluated yet
(`params.reevaluate` redoes them).

`evaluate` is mapped over the **run dates** of those packs, one task each: the packs of one run
date are read together, so their p-values are Holm-adjusted across them (docs/uplift-trust.md).
A run date's batch also holds its packs evaluated on earlier days (a longer attribution window
closes later): they are evaluated again, so every report of that date is adjusted for the same
packs. `jobs/evaluate.py --segment S1 --segment S2 … --run-date D` (each pack over its spec's
`attribution_days`) writes `gold/uplift_results` and the reports, under the lake's report root
`<lake>/reports/<segment>/<run_date>/` (local or `s3://`, `dmp.steps.report_store`): nothing
depends on the Spark driver's working directory, which on a cluster is a container that goes away.
Different run dates write different partitions, so their tasks run at once.

`publish_site`, once every evaluation succeeded (a failed one leaves the run failed and the last
site as it was): `dmp site` rewrites `<lake>/site/` with the new uplift numbers and reports
(docs/site.md). Nothing evaluated, nothing to publish; a lake on object storage has no local
folder for the site (run `dmp site --out DIR`).
"""


@dag(
    dag_id="dmp_uplift",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=4),
    default_args=default_args(),
    params={
        "as_of": Param(None, type=["null", "string"], format="date", description="YYYY-MM-DD; default: ds"),
        "reevaluate": Param(
            False, type="boolean", description="evaluate again pairs already in gold/uplift_results"
        ),
    },
    doc_md=DOC,
    tags=["dmp", "uplift", "spark"],
)
def dmp_uplift() -> None:
    @task(execution_timeout=timedelta(minutes=10))
    def find_due() -> list[dict[str, str]]:
        ctx = get_current_context()
        params = ctx["params"]
        as_of = date.fromisoformat(params["as_of"]) if params.get("as_of") else ctx["logical_date"].date()
        lake = setting("lake")
        aggregated = delta_partition_values(tables.table_path(lake, tables.USER_DAILY), "event_date")
        if not aggregated:
            print(f"{tables.USER_DAILY} is empty: nothing can be evaluated yet")
            return []
        as_of = min(as_of, date.fromisoformat(aggregated[-1]))
        windows = {i.name: i.attribution_days for i in map(spec_info, list_specs(setting("segments")))}
        deliveries = delta_rows(tables.table_path(lake, tables.DELIVERIES))
        done = [
            (str(r["segment"]), str(r["run_date"]))
            for r in delta_rows(tables.table_path(lake, tables.UPLIFT_RESULTS), ["segment", "run_date"])
        ]
        due = due_evaluations(deliveries, windows, as_of, [] if params.get("reevaluate") else done)
        items = evaluation_batches(due, done)
        print(
            f"as of {as_of}: {len(deliveries)} delivery rows, {len(due)} evaluations due: {due}; batches {items}"
        )
        return items

    @task(execution_timeout=timedelta(hours=1), map_index_template="{{ dmp_label }}")
    def evaluate(item: dict[str, str]) -> dict[str, str]:
        segments = item["segments"].split(",")
        get_current_context()["dmp_label"] = f"{item['run_date']}: {', '.join(segments)}"  # type: ignore[typeddict-unknown-key]
        args = ["--lake", setting("lake"), "--segments", setting("segments"), "--run-date", item["run_date"]]
        for segment in segments:
            args += ["--segment", segment]
        run_spark_job("evaluate", args)
        return item

    @task(execution_timeout=timedelta(minutes=30))
    def publish_site(evaluated: list[dict[str, str]]) -> str:
        lake = setting("lake")
        if not list(evaluated or []):
            print("nothing was evaluated: the site is unchanged")
            return ""
        if "://" in lake:
            print(
                f"{lake}: the site needs a local folder; run `dmp site --lake {lake} --out DIR` to publish it"
            )
            return ""
        run_spark_job(CLI_STEP, ["site", "--lake", lake, "--segments", setting("segments")])
        return f"{lake}/site/index.html"

    publish_site(evaluate.expand(item=find_due()))


dmp_uplift()
