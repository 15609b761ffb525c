"""``make demo``'s live view of a DAG run: task state changes from Airflow's SQLite DB, progress lines
from the log, until the watched process ends."""

from __future__ import annotations

import io
import sqlite3
import subprocess
import sys
from pathlib import Path

from dmp.demo import watch

LOG_LINE = (
    "[2026-12-04T10:00:01.000+0000] {spark_submit.py:644} INFO - progress: ingest · read, parse and "
    "check 24 file(s) · stage 3: 10/24 tasks · 12s"
)


def _airflow_db(path: Path, states: list[tuple[str, int, str | None, str | None]]) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE IF NOT EXISTS dag_run (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT)")
        con.execute(
            "CREATE TABLE IF NOT EXISTS task_instance (id INTEGER PRIMARY KEY, dag_id TEXT, run_id TEXT, "
            "task_id TEXT, map_index INTEGER, rendered_map_index TEXT, state TEXT)"
        )
        con.execute("DELETE FROM dag_run")
        con.execute("DELETE FROM task_instance")
        con.execute("INSERT INTO dag_run (dag_id, run_id) VALUES ('other', 'x'), ('dmp_daily', 'old')")
        con.execute("INSERT INTO dag_run (dag_id, run_id) VALUES ('dmp_daily', 'new')")
        con.execute(
            "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, state) VALUES "
            "('dmp_daily', 'old', 'ingest', -1, 'failed')"
        )
        con.executemany(
            "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, rendered_map_index, state) "
            "VALUES ('dmp_daily', 'new', ?, ?, ?, ?)",
            states,
        )


def test_task_states_of_the_newest_run_with_mapped_labels(tmp_path: Path) -> None:
    db = tmp_path / "airflow.db"
    assert watch.task_states(db, "dmp_daily") == {}  # not migrated yet
    _airflow_db(
        db, [("ingest", -1, None, "success"), ("build_pack", 0, "vip", "running"), ("x", 1, None, None)]
    )
    assert watch.task_states(db, "dmp_daily") == {
        "ingest": "success",
        "build_pack[vip]": "running",
        "x[1]": "none",
    }


def test_changes_show_starts_and_ends_only() -> None:
    before = {"ingest": "running", "aggregate": "scheduled"}
    now = {"ingest": "success", "aggregate": "queued", "tags": "running"}
    assert watch.changes(before, now) == ["        success  ingest", "        running  tags"]
    assert watch.changes(now, now) == []


def test_progress_lines_keep_the_progress_part() -> None:
    assert watch.progress_lines(f"noise\n{LOG_LINE}\nmore noise\n") == [
        LOG_LINE[LOG_LINE.index("progress: ") :]
    ]
    # Airflow 3 (structlog) puts the logger and the source location after the message
    airflow3 = (
        "2026-12-04T19:16:01.123456Z [info     ] progress: ingest · dedupe 17634 rows done in 3.0s "
        "[airflow.task.hooks.dmp.orchestration.submit._Hook] loc=spark_submit.py:965"
    )
    assert watch.progress_lines(airflow3) == ["progress: ingest · dedupe 17634 rows done in 3.0s"]


def test_watch_prints_progress_and_states_until_the_process_ends(tmp_path: Path) -> None:
    db, log = tmp_path / "airflow.db", tmp_path / "dag.log"
    _airflow_db(db, [("ingest", -1, None, "success"), ("aggregate", -1, None, "failed")])
    log.write_text(f"start\n{LOG_LINE}\nprogress: tags · snapshot", encoding="utf-8")  # last line unfinished
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    out = io.StringIO()
    watch.watch(db, "dmp_daily", log, done.pid, out)
    printed = [line.split("s ", 1)[1].strip() for line in out.getvalue().splitlines()]
    # the process is gone, so the unfinished last line is read too
    assert printed == [
        "progress: ingest · read, parse and check 24 file(s) · stage 3: 10/24 tasks · 12s",
        "progress: tags · snapshot",
        "success  ingest",
        "failed  aggregate",
    ]
