"""What ``make demo`` shows while a DAG runs: each task as its state changes, and the steps' progress.

``python -m dmp.demo.watch AIRFLOW_DB DAG LOG PID`` follows ``airflow dags test``'s output file
(``LOG``) and the task instances of the DAG's newest run in Airflow's SQLite metadata database
until process ``PID`` ends: a ``progress:`` line of a Spark job (``dmp.spark.progress``, relayed into
the task log by spark-submit) is printed as it arrives; a task is printed when it starts and when it
ends, with its state. The full log stays in the file.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
import time
from pathlib import Path
from typing import TextIO

POLL_S = 1.0
_RUN_TASKS = (
    "SELECT task_id, map_index, rendered_map_index, state FROM task_instance WHERE dag_id = ? AND run_id = "
    "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1) ORDER BY id"
)


def task_states(db: Path, dag: str) -> dict[str, str]:
    """``task[label]`` -> state of the DAG's newest run (empty while the database or run is not there)."""
    if not db.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            rows = con.execute(_RUN_TASKS, (dag, dag)).fetchall()
    except sqlite3.Error:  # locked or not migrated yet: try again at the next poll
        return {}
    return {
        (task if index < 0 else f"{task}[{label or index}]"): state or "none"
        for task, index, label, state in rows
    }


# Airflow 3's task log adds the logger and the source location after the message.
AIRFLOW_LOG_SUFFIX = re.compile(r"\s+\[[\w.]+\]\s+loc=\S+\s*$")


def progress_lines(chunk: str) -> list[str]:
    """The ``progress: ...`` message of each line of the log that carries one."""
    return [
        AIRFLOW_LOG_SUFFIX.sub("", line[line.index("progress: ") :])
        for line in chunk.splitlines()
        if "progress: " in line
    ]


def changes(before: dict[str, str], now: dict[str, str]) -> list[str]:
    """A line per task that started or ended since ``before`` (queued / scheduled are not news)."""
    shown = ("running", "success", "failed", "upstream_failed", "skipped", "up_for_retry")
    return [
        f"{state:>15}  {task}" for task, state in now.items() if state != before.get(task) and state in shown
    ]


def watch(db: Path, dag: str, log: Path, pid: int, out: TextIO = sys.stdout) -> None:
    seen: dict[str, str] = {}
    offset = 0
    started = time.monotonic()
    while True:
        alive = _alive(pid)
        if log.exists():
            with log.open("rb") as fh:
                fh.seek(offset)
                chunk = fh.read()
            complete = chunk[: chunk.rfind(b"\n") + 1] if alive else chunk  # a line still being written waits
            offset += len(complete)
            for line in progress_lines(complete.decode("utf-8", errors="replace")):
                out.write(f"   {time.monotonic() - started:5.0f}s  {line}\n")
        now = task_states(db, dag)
        for line in changes(seen, now):
            out.write(f"   {time.monotonic() - started:5.0f}s {line}\n")
        seen = now or seen
        out.flush()
        if not alive:
            return
        time.sleep(POLL_S)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


if __name__ == "__main__":
    db_path, dag_id, log_path, watched = sys.argv[1:5]
    watch(Path(db_path), dag_id, Path(log_path), int(watched))
