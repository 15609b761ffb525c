"""dmp_audiences: every segment spec -> gold/audience_packs, then one delivery per channel."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import Asset, Param, TriggerRule, dag, get_current_context, task

from dmp.orchestration.planning import (
    USER_TAGS_ASSET,
    asset_run_dates,
    date_args,
    date_ranges,
    list_channels,
    list_specs,
    spec_info,
    spec_levels,
)
from dmp.orchestration.settings import default_args, setting
from dmp.orchestration.submit import CLI_STEP, SEPARATOR, run_spark_job

USER_TAGS = Asset(**USER_TAGS_ASSET)

DOC = """
### dmp_audiences

Runs when `dmp_daily` publishes a validated tag snapshot (asset `dmp_user_tags`), or by hand with
`params.run_date`. The run dates are **every** day the triggering asset events cover
(`date_from` … `date_to` of each event's extra), sorted, each once: after a catch-up Airflow hands
one run all the queued events, and each of their days gets its packs and deliveries, in date order.

1. `run_dates`, `list_specs`, `list_dependent_specs`: light tasks (no Spark). Every `*.yaml` in the segments folder
   (Variable `dmp_segments`, env `DMP_SEGMENTS`) becomes one mapped task. Specs that reference
   another segment (lookalike seed, `exclude.segments`) go to the second wave so their input pack
   is built first.
2. `build_pack` / `build_dependent_pack` (dynamic task mapping, one instance per spec): the spec is
   validated first (`dmp segments validate`, no JVM); an invalid spec fails **its own** instance
   with the validation message and is not retried (`AirflowFailException`); a valid one runs
   `jobs/build_packs.py --spec PATH` (`dmp segments build`) with spark-submit, one job per run of
   consecutive dates (`--from A --to B` processes them in order). Specs in a
   reference cycle or naming an unknown segment are planned last and fail their own validation.
3. `plan_deliveries` (trigger rule `all_done`): the channels named by the packs that were built.
4. `deliver` (mapped per channel): `jobs/deliver.py --channel C` writes the files, manifest and
   `_SUCCESS` for each run date in order; so valid packs are delivered even when another spec failed.
5. `publish_site` (`all_done`): one Spark application runs `dmp segments overlap` for the run
   dates (gold/pack_overlap: people shared by every pair of packs) and then `dmp site`, the static
   pages marketers open (`<lake>/site/index.html`, docs/site.md). A lake on object storage has no
   local folder for the site: the task says so and publishes nothing (run `dmp site --out DIR`).
6. `audit` (`all_done`, last): fails the run if any spec, delivery or the site failed, naming them,
   so a broken spec is visible in the run state while everything else still went out.
"""


@task(execution_timeout=timedelta(minutes=5))
def run_dates() -> list[str]:
    """The pack dates: [params.run_date], else every day of the triggering asset events, else [ds]."""
    ctx = get_current_context()
    if ctx["params"].get("run_date"):
        return [str(ctx["params"]["run_date"])]
    events = ctx.get("triggering_asset_events") or {}
    from_assets = asset_run_dates(e.extra for evs in events.values() for e in evs)
    if from_assets:
        print(f"{len(from_assets)} run date(s) from the queued {USER_TAGS.name} events: {from_assets}")
        return from_assets
    logical = ctx.get("logical_date") or datetime.now(UTC)
    return [logical.date().isoformat()]


def _waves() -> list[list[str]]:
    return spec_levels([spec_info(p) for p in list_specs(setting("segments"))])


@task(task_id="list_specs", execution_timeout=timedelta(minutes=5))
def independent_specs() -> list[str]:
    """Specs that reference no other segment: built first, in parallel."""
    waves = _waves()
    return waves[0] if waves else []


@task(execution_timeout=timedelta(minutes=5))
def list_dependent_specs() -> list[str]:
    """Specs that reference other segments (seed, exclusions): built after the first wave."""
    return [p for wave in _waves()[1:] for p in wave]


def _validate(spec: str, segments: str) -> None:
    """Fail this spec's task at once, without retries, when ``dmp segments validate`` rejects it."""
    from airflow.exceptions import AirflowFailException

    check = subprocess.run(
        [sys.executable, "-m", "dmp.cli", "segments", "validate", spec, "--segments", segments],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        # `dmp segments validate` prints one line per problem (file, field, what is allowed).
        message = [ln for ln in (check.stdout + "\n" + check.stderr).splitlines() if ln.strip()]
        # A spec error will not fix itself on retry: fail this instance only, right away.
        raise AirflowFailException(f"{spec}: invalid segment spec:\n" + "\n".join(message[-30:]))


def _build(spec: str, days: list[str]) -> dict[str, Any]:
    get_current_context()["dmp_label"] = spec.rsplit("/", 1)[-1]  # type: ignore[typeddict-unknown-key]
    segments = setting("segments")
    _validate(spec, segments)
    info = spec_info(spec)
    for start, end in date_ranges(days):
        args = ["--lake", setting("lake"), "--segments", segments, "--spec", spec, *date_args(start, end)]
        run_spark_job("build_packs", args)
    return {"segment": info.name, "channels": info.channels, "spec": spec}


@task(execution_timeout=timedelta(hours=1), map_index_template="{{ dmp_label }}")
def build_pack(spec: str, days: list[str]) -> dict[str, Any]:
    return _build(spec, days)


@task(
    execution_timeout=timedelta(hours=1),
    trigger_rule=TriggerRule.ALL_DONE,
    map_index_template="{{ dmp_label }}",
)
def build_dependent_pack(spec: str, days: list[str]) -> dict[str, Any]:
    return _build(spec, days)


@task(execution_timeout=timedelta(minutes=5), trigger_rule=TriggerRule.ALL_DONE)
def plan_deliveries(first: list[dict[str, Any]], second: list[dict[str, Any]]) -> list[str]:
    """Channels named by the packs that were built (failed specs have no result here)."""
    known = set(list_channels(setting("segments")))
    wanted = {c for r in [*(first or []), *(second or [])] if r for c in r["channels"]}
    return sorted(wanted & known) if known else sorted(wanted)


@task(execution_timeout=timedelta(hours=1), map_index_template="{{ dmp_label }}")
def deliver(channel: str, days: list[str]) -> dict[str, str]:
    get_current_context()["dmp_label"] = channel  # type: ignore[typeddict-unknown-key]
    for start, end in date_ranges(days):
        args = ["--lake", setting("lake"), "--segments", setting("segments"), *date_args(start, end)]
        run_spark_job("deliver", [*args, "--channel", channel])
    return {"channel": channel}


@task(execution_timeout=timedelta(minutes=30), trigger_rule=TriggerRule.ALL_DONE)
def publish_site(days: list[str], delivered: list[dict[str, str]]) -> dict[str, str]:
    """After the deliveries (``delivered`` orders it; the site shows what went out)."""
    lake = setting("lake")
    args: list[str] = []
    for start, end in date_ranges(days):
        args += [
            *([SEPARATOR] if args else []),
            "segments",
            "overlap",
            "--lake",
            lake,
            *date_args(start, end),
        ]
    if "://" in lake:
        print(f"{lake}: the site needs a local folder; run `dmp site --lake {lake} --out DIR` to publish it")
    else:
        args += [*([SEPARATOR] if args else []), "site", "--lake", lake, "--segments", setting("segments")]
    if args:
        run_spark_job(CLI_STEP, args)
    return {"site": "" if "://" in lake else f"{lake}/site/index.html"}


@task(execution_timeout=timedelta(minutes=5), trigger_rule=TriggerRule.ALL_DONE, retries=0)
def audit(
    independent: list[str],
    dependent: list[str],
    first: list[dict[str, Any]],
    second: list[dict[str, Any]],
    channels: list[str],
    delivered: list[dict[str, str]],
    site: dict[str, str] | None,
) -> dict[str, Any]:
    from airflow.exceptions import AirflowFailException

    built = {r["spec"] for r in [*(first or []), *(second or [])] if r}
    failed_specs = sorted({*(independent or []), *(dependent or [])} - built)
    failed_channels = sorted(set(channels or []) - {d["channel"] for d in delivered or [] if d})
    if failed_specs or failed_channels or not site:
        raise AirflowFailException(
            f"failed specs: {failed_specs or 'none'}; failed deliveries: {failed_channels or 'none'}; "
            f"overlap and site: {'published' if site else 'failed'} "
            f"(the other {len(built)} packs were built and delivered; see the failed tasks' logs)"
        )
    return {"built": sorted(built), "delivered": sorted(channels or [])}


@dag(
    dag_id="dmp_audiences",
    schedule=[USER_TAGS],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=6),
    default_args=default_args(),
    params={
        "run_date": Param(
            None,
            type=["null", "string"],
            format="date",
            description="YYYY-MM-DD; default: the asset event's date",
        ),
    },
    doc_md=DOC,
    tags=["dmp", "audiences", "spark", "delivery"],
)
def dmp_audiences() -> None:
    days = run_dates()
    independent = independent_specs()
    dependent = list_dependent_specs()
    first = build_pack.partial(days=days).expand(spec=independent)
    second = build_dependent_pack.partial(days=days).expand(spec=dependent)
    first >> second
    channels = plan_deliveries(first, second)
    delivered = deliver.partial(days=days).expand(channel=channels)
    site = publish_site(days, delivered)
    audit(independent, dependent, first, second, channels, delivered, site)


dmp_audiences()
