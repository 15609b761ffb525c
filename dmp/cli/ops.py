"""``dmp summary`` (what the pipeline produced, read from the lake) and ``dmp airflow-env``.

Both are light: ``summary`` reads the Delta tables with delta-rs (no JVM), so the demo can print
it in a second after the DAGs ran.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from dmp.cli.common import LakeOpt
from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.settings import source_checkout
from dmp.contracts.status import latest_attempts
from dmp.orchestration.deltaread import delta_count, delta_partition_values, delta_rows
from dmp.steps.report_store import find_reports


def register(app: typer.Typer) -> None:
    """Add this area's commands to the dmp app."""
    app.command("summary")(summary_cmd)
    app.command("airflow-env")(airflow_env_cmd)


def airflow_env(
    home: str,
    lake: str | None = None,
    landing: str | None = None,
    segments: str | None = None,
    delivery_root: str | None = None,
) -> dict[str, str]:
    """Environment for running the repo's DAGs with ``airflow dags test`` on a SQLite metadata DB.

    The Spark jobs' Python needs no variable: it defaults to the interpreter running Airflow.
    """
    root = source_checkout()
    if root is None:
        raise DmpError("dmp airflow-env runs the DAGs of a source checkout (dags/); none found next to dmp")
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    env = {
        "AIRFLOW_HOME": os.path.abspath(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        # spark-submit (pyspark's) next to the interpreter with dmp installed, for the Spark jobs.
        "PATH": bin_dir if not path else f"{bin_dir}:{path}" if bin_dir not in path.split(":") else path,
    }
    for key, value in {
        "DMP_LAKE": lake,
        "DMP_LANDING": landing,
        "DMP_SEGMENTS": segments,
        "DMP_DELIVERY_ROOT": delivery_root,
    }.items():
        if value:
            env[key] = value if "://" in value else os.path.abspath(value)
    return env


def airflow_env_cmd(
    home: Annotated[
        str, typer.Option("--home", help="AIRFLOW_HOME (SQLite metadata DB, logs).")
    ] = "airflow_home",
    lake: LakeOpt = None,
    landing: Annotated[str | None, typer.Option("--landing", help="Folder the daily ingest reads.")] = None,
    segments: Annotated[str | None, typer.Option("--segments", help="Segment specs + channels.yaml.")] = None,
    delivery_root: Annotated[
        str | None,
        typer.Option("--delivery-root", help="DMP_DELIVERY_ROOT for channels.yaml (file:// or s3://)."),
    ] = None,
) -> None:
    """Print `export` lines to run the DAGs locally: eval "$(dmp airflow-env --home demo_out/airflow)"."""
    for key, value in airflow_env(home, lake, landing, segments, delivery_root).items():
        typer.echo(f"export {key}={shlex.quote(value)}")


# ----------------------------------------------------------------------------- summary


def _local_path(url: str) -> Path | None:
    if url.startswith("file://"):
        return Path(url.removeprefix("file://"))
    return None if "://" in url else Path(url)


def _manifest(path: str) -> dict[str, Any]:
    """A delivery's manifest.json, local or on S3; {} when it cannot be read (shown as "-")."""
    from dmp.delivery.storage import open_store

    local = _local_path(path)
    try:
        if local is not None:
            return json.loads(local.read_text()) if local.is_file() else {}
        if path.startswith("s3://"):
            folder, name = path.rsplit("/", 1)
            return json.loads(open_store(folder).get(name))
    except (OSError, ValueError, DmpError):
        return {}
    return {}


def collect_summary(lake: str) -> dict[str, Any]:
    """Everything ``dmp summary`` prints, as plain data (also used by the end-to-end test)."""
    out: dict[str, Any] = {"lake": lake}
    out.update(_layer_counts(lake))
    out["packs"] = _packs(lake)
    out["deliveries"] = _deliveries(lake)
    out["uplift"] = _uplift(lake)
    return out


def _layer_counts(lake: str) -> dict[str, Any]:
    """Rows of the bronze/silver/gold tables, quarantine reasons, event dates and tag snapshots."""

    def table(name: str) -> str:
        return tables.table_path(lake, name)

    quarantine = delta_rows(table(tables.EVENTS_QUARANTINE), ["reason"])
    snapshots = delta_partition_values(table(tables.USER_TAGS), "as_of_date")
    return {
        "events": delta_count(table(tables.EVENTS)),
        "quarantined": len(quarantine),
        "quarantine_reasons": dict(Counter(str(r["reason"]).split(":")[0] for r in quarantine).most_common()),
        "identities": delta_count(table(tables.IDENTITIES)),
        "user_daily": delta_count(table(tables.USER_DAILY)),
        "event_dates": delta_partition_values(table(tables.EVENTS), "event_date"),
        "tag_rows": delta_count(table(tables.USER_TAGS)),
        "tag_snapshots": len(snapshots),
        "tags_latest": snapshots[-1] if snapshots else None,
        "tags_latest_users": (
            delta_count(table(tables.USER_TAGS), {"as_of_date": snapshots[-1]}) if snapshots else 0
        ),
    }


def _packs(lake: str) -> list[dict[str, Any]]:
    """One entry per (segment, run_date): group sizes from the pack rows, else from its pack run."""
    packs: dict[tuple[str, str], dict[str, Any]] = {}
    columns = ["segment", "run_date", "group", "deliverable"]
    for row in delta_rows(tables.table_path(lake, tables.AUDIENCE_PACKS), columns):
        key = (str(row["segment"]), str(row["run_date"]))
        pack = packs.setdefault(key, {"segment": key[0], "run_date": key[1], "treatment": 0, "holdout": 0})
        pack[str(row["group"])] = pack.get(str(row["group"]), 0) + 1
        pack["deliverable"] = bool(row["deliverable"])
    for pack in packs.values():
        pack["size"] = pack["treatment"] + pack["holdout"]
    # An empty pack has no rows in gold/audience_packs; ops/pack_runs records every build.
    for row in delta_rows(tables.table_path(lake, tables.PACK_RUNS)):
        key = (str(row["segment"]), str(row["run_date"]))
        if key not in packs:
            packs[key] = {
                "segment": key[0],
                "run_date": key[1],
                "treatment": int(row.get("treatment_size") or 0),
                "holdout": int(row.get("holdout_size") or 0),
                "deliverable": bool(row.get("deliverable")),
                "size": int(row.get("size") or 0),
            }
    return [packs[k] for k in sorted(packs)]


def _deliveries(lake: str) -> list[dict[str, Any]]:
    """The latest attempt of every (segment, channel, run_date), with its manifest's counts."""
    deliveries = []
    attempts = latest_attempts(delta_rows(tables.table_path(lake, tables.DELIVERIES)))
    for key in sorted(attempts, key=lambda k: (k.segment, k.channel, k.run_date)):
        rows = list(attempts[key].rows)
        manifest_row = next((r for r in rows if r.get("kind") == "manifest"), None)
        manifest = _manifest(str(manifest_row["path"])) if manifest_row else {}
        counts = manifest.get("counts") or {}
        deliveries.append(
            {
                "segment": key.segment,
                "channel": key.channel,
                "run_date": key.run_date.isoformat(),
                "status": attempts[key].status.value,
                "kinds": sorted({str(r["kind"]) for r in rows if r.get("kind") not in ("manifest", "none")}),
                "rows": sum(int(r.get("rows") or 0) for r in rows if r.get("kind") in ("full", "add")),
                "match_rate": counts.get("match_rate"),
                "matched": counts.get("matched_users", counts.get("matched")),
                "folder": str(manifest_row["path"]).rsplit("/", 1)[0]
                if manifest_row
                else rows[0].get("path"),
                "message": rows[0].get("message"),
            }
        )
    return deliveries


def _uplift(lake: str) -> list[dict[str, Any]]:
    """One entry per evaluated (segment, run_date): metric -> (value, ci_low, ci_high), its
    report.html under the lake's report root (a path or an ``s3://`` URL; None if there is none),
    and ``holm`` / ``verdict`` read across every pack of its run date (:func:`with_holm`)."""
    uplift: dict[tuple[str, str], dict[str, Any]] = {}
    for row in delta_rows(tables.table_path(lake, tables.UPLIFT_RESULTS)):
        key = (str(row["segment"]), str(row["run_date"]))
        entry = uplift.setdefault(
            key,
            {
                "segment": key[0],
                "run_date": key[1],
                "n_treatment": row.get("n_treatment"),
                "n_holdout": row.get("n_holdout"),
            },
        )
        entry[str(row["metric"])] = (row.get("value"), row.get("ci_low"), row.get("ci_high"))
    reports = find_reports(lake) if uplift else {}
    for key, entry in uplift.items():
        entry["report"] = reports.get(key)
    return with_holm([uplift[k] for k in sorted(uplift)])


def _value(entry: dict[str, Any], metric: str) -> Any:
    return (entry.get(metric) or (None,))[0]


def with_holm(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry with ``holm`` (its p-value Holm-adjusted across the packs of its run date, and that
    family's size) and a one-line ``verdict`` that uses it.

    Read-time, from the p-value rows alone, so the family is every pack of the run date in the
    table, whichever order or batches they were evaluated in; lakes written before the adjustment
    existed get it too. A pack whose sample ratio check failed is flagged first: its numbers are
    not to be trusted.
    """
    from dmp.stats.intervals import ALPHA
    from dmp.stats.multiple import HOLM_METHOD, holm_by_group, holm_clause
    from dmp.stats.srm import SRM_ALPHA

    adjusted = holm_by_group([e["run_date"] for e in entries], [_value(e, "p_value") for e in entries])
    out = []
    for entry, (p_holm, family) in zip(entries, adjusted, strict=True):
        value, low, high = entry.get("uplift_abs") or (None, None, None)
        if value is None or low is None or high is None:
            effect = "no estimate"
        elif low > 0 or high < 0:
            effect = f"{'raised' if low > 0 else 'lowered'} conversion by {value * 100:+.2f} points"
        else:
            effect = "no effect detected"
        significant = low is not None and high is not None and (low > 0 or high < 0)
        verdict = effect
        if p_holm is not None and family > 1:
            verdict += f"; {holm_clause(p_holm, family, ALPHA, significant)}"
        srm = _value(entry, "srm_p_value")
        if srm is not None and srm < SRM_ALPHA:
            verdict = f"SAMPLE RATIO MISMATCH (p = {srm:.3g}): not to be trusted; {verdict}"
        holm = {"p_value": p_holm, "family_size": family, "method": HOLM_METHOD}
        out.append({**entry, "holm": holm, "verdict": verdict})
    return out


def _fmt_interval(metric: tuple[Any, Any, Any] | None) -> str:
    value, low, high = metric or (None, None, None)
    if value is None:
        return "-"
    return f"{value:+.2%}" + ("" if low is None or high is None else f" [{low:+.2%}, {high:+.2%}]")


def _fmt_rate(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1%}"


def _fmt_p(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3g}"


def summary_cmd(lake: LakeOpt = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """What the pipeline produced: events, quarantine, tags, packs, deliveries, uplift reports."""
    from rich.console import Console
    from rich.table import Table

    from dmp.contracts.tables import resolve_lake

    root = resolve_lake(lake)
    data = collect_summary(root)
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
        return
    # Piped into a log (make demo), rich would wrap every table to 80 columns.
    console = Console() if sys.stdout.isatty() else Console(width=200)
    dates = data["event_dates"]
    span = f"{dates[0]} … {dates[-1]} ({len(dates)} days)" if dates else "no events"
    lines = Table(title=f"dmp summary — lake {root}", show_header=False)
    lines.add_column("what")
    lines.add_column("value", justify="right")
    lines.add_row("events ingested (bronze/events)", f"{data['events']:,}  [{span}]")
    reasons = ", ".join(f"{k} {v}" for k, v in data["quarantine_reasons"].items())
    lines.add_row("events quarantined", f"{data['quarantined']:,}" + (f"  ({reasons})" if reasons else ""))
    lines.add_row("identities (silver/identities)", f"{data['identities']:,}")
    lines.add_row("silver/user_daily rows", f"{data['user_daily']:,}")
    lines.add_row(
        tables.USER_TAGS,
        f"{data['tag_rows']:,} rows, {data['tag_snapshots']} snapshots; "
        f"{data['tags_latest_users']:,} users on {data['tags_latest']}",
    )
    console.print(lines)

    packs = Table(title="audience packs (gold/audience_packs)")
    for col in ("segment", "run_date", "size", "treatment", "holdout", "holdout %", "deliverable"):
        packs.add_column(col, justify="right" if col not in ("segment", "run_date") else "left")
    for p in data["packs"]:
        share = p["holdout"] / p["size"] if p["size"] else None
        packs.add_row(
            p["segment"], p["run_date"], f"{p['size']:,}", f"{p['treatment']:,}", f"{p['holdout']:,}",
            _fmt_rate(share), "yes" if p.get("deliverable") else "no (under min_size)",
        )  # fmt: skip
    console.print(packs)

    deliveries = Table(title="deliveries (ops/deliveries, latest attempt)")
    for col in ("segment", "channel", "run_date", "status", "sync", "rows", "match rate", "files in"):
        deliveries.add_column(col, overflow="fold")
    for d in data["deliveries"]:
        deliveries.add_row(
            d["segment"], d["channel"], d["run_date"], str(d["status"]), "+".join(d["kinds"]) or "-",
            f"{d['rows']:,}", _fmt_rate(d["match_rate"]), str(d["folder"]),
        )  # fmt: skip
    console.print(deliveries)

    uplift = Table(
        title="uplift (gold/uplift_results; p-values Holm-adjusted across the packs of each run date)"
    )
    columns = ("segment", "run_date", "n treat / hold", "uplift (abs, 95% CI)", "p-value", "p (Holm)",
               "SRM p", "gap before (p)", "adjusted for it (95% CI)", "CUPED (95% CI)", "cost", "ROI (95% CI)",
               "verdict", "report")  # fmt: skip
    for col in columns:
        uplift.add_column(col, overflow="fold")
    for u in data["uplift"]:
        gap, pre_p = _value(u, "pre_diff_abs"), _value(u, "pre_p_value")
        holm = u["holm"]
        cost = _value(u, "cost")
        uplift.add_row(
            u["segment"], u["run_date"], f"{u['n_treatment']} / {u['n_holdout']}",
            _fmt_interval(u.get("uplift_abs")), _fmt_p(_value(u, "p_value")),
            "-" if holm["p_value"] is None else f"{holm['p_value']:.3g} ({holm['family_size']} packs)",
            _fmt_p(_value(u, "srm_p_value")),
            "-" if gap is None or pre_p is None else f"{gap:+.2%} ({pre_p:.3g})",
            _fmt_interval(u.get("uplift_abs_adjusted")), _fmt_interval(u.get("uplift_abs_cuped")),
            "-" if cost is None else f"{cost:,.2f}", _fmt_interval(u.get("roi")),
            u["verdict"], str(u["report"] or "-"),
        )  # fmt: skip
    console.print(uplift)
