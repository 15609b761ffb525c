"""The fixed cost of the scheduled path (issue #21): the demo's three DAGs through Airflow against the
same Spark work in one Python process with one SparkSession, on the same data.

``python -m bench.bench_overhead [--users 12000] [--days 24] [--seed 42] [--out bench_out/overhead]``

1. **scheduled**: ``infra/demo.sh`` as ``make demo`` runs it (``airflow dags test`` of dmp_daily,
   dmp_audiences and dmp_uplift; one spark-submit, so one JVM, Ivy resolve and Delta start-up, per
   task). Timed: the three DAG runs as the demo reports them (data generation and ``airflow db
   migrate`` are printed apart and left out).
2. **in-process**: every ``Spark-Submit cmd:`` the DAG logs recorded, replayed in the same order in
   this process: the same ``jobs/<step>.py`` (or chained ``dmp`` commands) with the same arguments,
   the lake and delivery folder pointed at a fresh folder, one SparkSession for all. Timed: the
   replay (the session's start-up printed apart and included once, as a one-process pipeline pays it).
3. Both lakes must hold the same results (``dmp summary`` equal once the two roots are aligned),
   else the ratio means nothing and the bench says so and exits 1.

Prints ``scheduled / in-process`` (the demo-overhead ratio; the issue's target is <= 1.5) and writes
``<out>/overhead.json``. Tasks that run no Spark job (plan_deliveries, audit, a vacuum with nothing
to do) are Airflow's cost only and are not replayed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from dmp.demo.watch import AIRFLOW_LOG_SUFFIX

REPO = Path(__file__).resolve().parents[1]
DAGS: tuple[str, ...] = ("dmp_daily", "dmp_audiences", "dmp_uplift")
_SUBMIT = re.compile(r"Spark-Submit cmd: (.*)$")
_DAG_TIME = re.compile(r"^\s+(dmp_\w+) finished in (\d+)s")


def run_demo(out: Path, users: int, days: int, seed: int) -> dict[str, Any]:
    """``infra/demo.sh`` into ``out``; its output is streamed and kept, the DAG times parsed from it."""
    env = os.environ | {
        "DMP_DEMO_OUT": str(out),
        "DMP_DEMO_USERS": str(users),
        "DMP_DEMO_DAYS": str(days),
        "DMP_DEMO_SEED": str(seed),
    }
    t0 = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(
        ["bash", str(REPO / "infra" / "demo.sh")], env=env, stdout=subprocess.PIPE, text=True, cwd=REPO
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(f"  demo | {line}", end="", flush=True)
            lines.append(line)
    if proc.returncode != 0:
        raise SystemExit(f"make demo failed (exit {proc.returncode}); its logs are in {out}/logs")
    dag_s = {m.group(1): int(m.group(2)) for line in lines if (m := _DAG_TIME.match(line))}
    if set(dag_s) != set(DAGS):
        raise SystemExit(f"could not read the DAG times from the demo's output (found {sorted(dag_s)})")
    return {"wall_s": round(time.perf_counter() - t0, 1), "dag_s": dag_s, "dags_total_s": sum(dag_s.values())}


def submitted_commands(logs: Path) -> list[tuple[str, list[str]]]:
    """(application, arguments) of every spark-submit the DAG logs recorded, in run order."""
    commands: list[tuple[str, list[str]]] = []
    for dag in DAGS:
        for line in (logs / f"{dag}.log").read_text(encoding="utf-8", errors="replace").splitlines():
            if (m := _SUBMIT.search(line)) is None:
                continue
            tokens = shlex.split(AIRFLOW_LOG_SUFFIX.sub("", m.group(1)))
            app = next(i for i, t in enumerate(tokens) if t.endswith(".py"))
            commands.append((tokens[app], tokens[app + 1 :]))
    return commands


def _moved(args: list[str], moves: dict[str, str]) -> list[str]:
    out = []
    for arg in args:
        for old, new in moves.items():
            arg = arg.replace(old, new)
        out.append(arg)
    return out


def replay(commands: list[tuple[str, list[str]]], moves: dict[str, str]) -> dict[str, Any]:
    """Run the commands here, one SparkSession for all; each must succeed as it did under Airflow."""
    from dmp.cli import run_commands
    from dmp.spark.session import get_spark

    t0 = time.perf_counter()
    get_spark("dmp-bench-overhead")  # the jobs' get_spark() calls reuse it
    start_s = time.perf_counter() - t0
    steps: list[dict[str, Any]] = []
    for app, args in commands:
        args = _moved(args, moves)
        t1 = time.perf_counter()
        if app.endswith(os.path.join("cli", "__main__.py")):
            rc = run_commands(args)
        else:
            rc = runpy.run_path(app, run_name="dmp_bench_job")["main"](args)
        steps.append({"job": Path(app).stem, "args": args, "s": round(time.perf_counter() - t1, 2), "rc": rc})
        print(f"  replay | {Path(app).stem:<18} {steps[-1]['s']:7.1f}s  rc={rc}", flush=True)
        if rc != 0:
            raise SystemExit(f"replayed {app} {' '.join(args)} failed (exit {rc})")
    total = time.perf_counter() - t0
    return {
        "session_start_s": round(start_s, 1),
        "total_s": round(total, 1),
        "jobs": len(steps),
        "steps": steps,
    }


def comparable_summary(lake: Path, roots: dict[str, str]) -> dict[str, Any]:
    """``dmp summary`` of ``lake`` with every path rewritten to one root, so two lakes compare."""
    from dmp.cli.ops import collect_summary

    text = json.dumps(collect_summary(str(lake)), sort_keys=True, default=str)
    for old, new in roots.items():
        text = text.replace(old, new)
    return json.loads(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=12000)
    parser.add_argument("--days", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="bench_out/overhead")
    parser.add_argument(
        "--reuse-scheduled",
        action="store_true",
        help="keep the scheduled run of an earlier call (<out>/scheduled.json) and replay only",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    demo_out, replay_out = out / "scheduled", out / "in_process"
    shutil.rmtree(replay_out, ignore_errors=True)
    saved = out / "scheduled.json"
    if args.reuse_scheduled:
        scheduled = json.loads(saved.read_text())
        print(f"scheduled: reused {saved} ({scheduled['dags_total_s']} s)", flush=True)
    else:
        print(
            f"scheduled: make demo's DAGs on {args.users} users x {args.days} days -> {demo_out}", flush=True
        )
        scheduled = run_demo(demo_out, args.users, args.days, args.seed)
        saved.write_text(json.dumps(scheduled | {"users": args.users, "days": args.days, "seed": args.seed}))
    commands = submitted_commands(demo_out / "logs")
    print(
        f"in-process: {len(commands)} spark-submit jobs replayed in one process -> {replay_out}", flush=True
    )
    moves = {str(demo_out / "lakehouse"): str(replay_out / "lakehouse")}
    os.environ.update(
        {
            "DMP_LAKE": str(replay_out / "lakehouse"),
            "DMP_DELIVERY_ROOT": f"file://{replay_out / 'delivery'}",
            "DMP_SHUFFLE_PARTITIONS": os.environ.get("DMP_SHUFFLE_PARTITIONS", "4"),  # as demo.sh sets it
            "DMP_DRIVER_MEMORY": os.environ.get("DMP_DRIVER_MEMORY", "2g"),  # a submitted job's driver
            "DMP_LANDING": str(demo_out / "landing"),
            "DMP_SEGMENTS": str(REPO / "segments"),
        }
    )
    in_process = replay(commands, moves)
    roots = {str(replay_out): "<out>", str(demo_out): "<out>"}
    same = comparable_summary(demo_out / "lakehouse", roots) == comparable_summary(
        replay_out / "lakehouse", roots
    )
    ratio = round(scheduled["dags_total_s"] / in_process["total_s"], 2)
    report = {
        "users": args.users,
        "days": args.days,
        "seed": args.seed,
        "scheduled": scheduled,
        "in_process": in_process,
        "same_results": same,
        "ratio_scheduled_over_in_process": ratio,
    }
    (out / "overhead.json").write_text(json.dumps(report, indent=2, default=str))
    print(
        f"\nscheduled (3 DAGs, {in_process['jobs']} spark-submits): {scheduled['dags_total_s']} s  "
        f"{scheduled['dag_s']}\nin-process (one session, start-up {in_process['session_start_s']} s): "
        f"{in_process['total_s']} s\nsame results: {same}\ndemo-overhead ratio scheduled / in-process: {ratio}\n"
        f"report: {out / 'overhead.json'}"
    )
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
