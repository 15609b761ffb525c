"""Progress of long steps: the phase a step is in, with the task counts of its running Spark stages."""

from __future__ import annotations

import io
import re
import threading
import time

import pytest

from dmp.contracts.settings import env_setting
from dmp.spark import progress
from dmp.spark.progress import Phase, Reporter, Tasks, phase, running_tasks

# Eight tasks of at least 400 ms each: on two cores the stage runs >= 1.6 s, several polls long.
RUNNING_LINE = re.compile(r" · \d+s$")
SLOW_STAGE_SQL = "SELECT reflect('java.lang.Thread', 'sleep', CAST(400 AS BIGINT)) FROM range(0, 8, 1, 8)"


@pytest.fixture()
def lines(spark, monkeypatch: pytest.MonkeyPatch):
    """This process's reporter in ``lines`` mode writing to a buffer, a line at every poll."""
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)
    monkeypatch.setattr(progress, "POLL_S", 0.01)
    out = io.StringIO()
    progress.attach(spark, mode="lines", stream=out)
    yield out
    progress.attach(spark, mode=env_setting("progress"))


def test_running_tasks_counts_the_tasks_of_the_running_stage(spark) -> None:
    assert running_tasks(spark) == Tasks()
    job = threading.Thread(target=lambda: spark.sql(SLOW_STAGE_SQL).collect())
    job.start()
    seen: list[Tasks] = []
    while job.is_alive():
        if (tasks := running_tasks(spark)).stages:
            seen.append(tasks)
        time.sleep(0.1)
    job.join()
    assert seen, "the stage ran >= 1.6 s but was never seen running"
    assert {t.total for t in seen} == {8}
    assert all(0 <= t.done <= 8 for t in seen) and len(seen[0].stages) == 1
    assert seen[0].text() == f"stage {seen[0].stages[0]}: {seen[0].done}/8 tasks"


def test_a_phase_prints_its_start_its_stage_progress_and_its_end(spark, lines: io.StringIO) -> None:
    with phase("ingest", "read, parse and check 3 file(s)", step=(2, 5)):
        spark.sql(SLOW_STAGE_SQL).collect()
    printed = lines.getvalue().splitlines()
    label = "progress: ingest · read, parse and check 3 file(s) [2/5]"
    assert printed[0] == label
    running = [line for line in printed[1:-1] if "/8 tasks" in line]
    assert running and all(line.startswith(f"{label} · stage ") for line in running)
    assert printed[-1].startswith(f"{label} done in ") and printed[-1].endswith("s")
    # the Spark UI / history server sees the phase as the job description, reset afterwards
    assert spark.sparkContext.getLocalProperty("spark.job.description") is None


def test_a_failed_phase_says_so_and_the_error_goes_through(spark, lines: io.StringIO) -> None:
    with pytest.raises(ZeroDivisionError), phase("packs", "build beauty_intercept"):
        1 / 0  # noqa: B018
    assert (
        lines.getvalue().splitlines()[-1].startswith("progress: packs · build beauty_intercept failed after ")
    )


def test_a_phase_inside_another_hands_back_to_the_outer_one(spark, lines: io.StringIO) -> None:
    with phase("tags", "outer"):
        with phase("gate", "Great Expectations suite gold_user_tags"):
            assert spark.sparkContext.getLocalProperty("spark.job.description") == (
                "gate · Great Expectations suite gold_user_tags"
            )
        assert spark.sparkContext.getLocalProperty("spark.job.description") == "tags · outer"
        assert progress._REPORTER is not None and progress._REPORTER.current is not None
        assert progress._REPORTER.current.label == "outer"
    # the start and end lines (the reporter thread may add a running line in between at any poll)
    printed = [line for line in lines.getvalue().splitlines() if not RUNNING_LINE.search(line)]
    assert [line.split(" done in ")[0] for line in printed] == [
        "progress: tags · outer",
        "progress: gate · Great Expectations suite gold_user_tags",
        "progress: gate · Great Expectations suite gold_user_tags",
        "progress: tags · outer",
    ]


def test_bar_mode_draws_the_phase_with_its_task_counts() -> None:
    out = io.StringIO()
    reporter = Reporter("bar", out)
    step = Phase("aggregate", "bronze/events -> silver/user_daily", None)
    reporter.begin(step)
    reporter.poll(Tasks((4,), 3, 8))
    assert reporter._bar.tasks[0].completed == 3 and reporter._bar.tasks[0].total == 8
    reporter.end(step, failed=False)
    text = out.getvalue()
    assert "aggregate · bronze/events -> silver/user_daily done in" in text and "8/8" in text
    assert reporter._bar.tasks == []  # the next phase gets a line of its own


def test_lines_mode_waits_between_running_lines() -> None:
    out = io.StringIO()
    reporter = Reporter("lines", out)
    reporter.begin(Phase("deliver", "x -> meta", None))
    reporter.poll(Tasks((1,), 1, 4))  # right after the start line: nothing new
    assert out.getvalue() == "progress: deliver · x -> meta\n"


def test_an_unknown_mode_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"DMP_PROGRESS: expected one of auto, bar, lines, off, got 'loud'"):
        progress.resolve_mode("loud", io.StringIO())
    assert progress.resolve_mode("auto", io.StringIO()) == "lines"  # not a terminal
