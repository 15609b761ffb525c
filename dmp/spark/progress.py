"""What a long Spark step is doing and how far along it is, while it runs.

A step names its phases: ``with phase("ingest", "read and classify 13 files"):`` (``step=(3, 24)``
for the third date of 24). One reporter per process (started by ``dmp.spark.session.get_spark``)
polls the SparkContext's status tracker twice a second and shows the current phase with the tasks of
its running stages:

- ``bar`` (default on a terminal): a rich progress line per phase, tasks done / to do, elapsed time;
- ``lines`` (default elsewhere: Airflow task logs, spark-submit output, ``make demo``, which shows
  them live): ``progress: ingest · read and classify 13 files · stage 7: 30/40 tasks · 45s``, one
  when a phase starts, then at most one every ``LINE_EVERY_S`` while it runs, and one when it ends;
- ``off``. ``DMP_PROGRESS`` chooses (``auto`` = bar on a terminal, lines elsewhere).

Task counts are those of the stages running right now (Spark does not know how many stages a query
will have until it plans them), so the bar fills per stage; the phase and step counters say where
the step as a whole is.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from dmp.contracts.settings import env_setting

MODES: tuple[str, ...] = ("auto", "bar", "lines", "off")
POLL_S = 0.5
LINE_EVERY_S = 10.0


@dataclass
class Tasks:
    """Tasks of the stages running now: ``stages`` their ids, ``done`` / ``total`` their task counts."""

    stages: tuple[int, ...] = ()
    done: int = 0
    total: int = 0

    def text(self) -> str:
        if not self.stages:
            return ""
        names = ", ".join(str(s) for s in self.stages)
        return f"stage{'s' if len(self.stages) > 1 else ''} {names}: {self.done}/{self.total} tasks"


def running_tasks(spark: Any) -> Tasks:
    """Sum the task counts of the stages the SparkContext is running (empty when idle or stopped)."""
    tracker = spark.sparkContext.statusTracker()
    infos = [tracker.getStageInfo(s) for s in sorted(tracker.getActiveStageIds())]
    infos = [i for i in infos if i is not None]
    return Tasks(
        tuple(i.stageId for i in infos),
        sum(i.numCompletedTasks for i in infos),
        sum(i.numTasks for i in infos),
    )


@dataclass
class Phase:
    step_name: str
    label: str
    step: tuple[int, int] | None
    started: float = field(default_factory=time.monotonic)

    def text(self) -> str:
        counter = f" [{self.step[0]}/{self.step[1]}]" if self.step else ""
        return f"{self.step_name} · {self.label}{counter}"

    def elapsed(self) -> float:
        return time.monotonic() - self.started


class Reporter:
    """Shows the current phase; ``poll`` is called by the reporter thread (or a test) with the tasks."""

    def __init__(self, mode: str, stream: TextIO | None = None) -> None:
        self.mode = mode
        self.stream = stream or sys.stderr
        self.current: Phase | None = None
        self.stopped = False
        self._last_line = 0.0
        self._lock = threading.Lock()
        self._bar: Any = None
        self._bar_task: Any = None
        self._bar_total = 0
        if mode == "bar":
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("tasks"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )

    def _line(self, text: str) -> None:
        self.stream.write(f"progress: {text}\n")
        self.stream.flush()
        self._last_line = time.monotonic()

    def begin(self, phase: Phase) -> Phase | None:
        """Show ``phase``; returns the phase it replaces (a phase inside another), restored by ``end``."""
        with self._lock:
            previous, self.current = self.current, phase
            if self._bar is not None and self._bar_task is None:
                self._bar.start()
                self._bar_task, self._bar_total = self._bar.add_task(phase.text(), total=None), 0
            elif self._bar is not None:
                self._bar.update(self._bar_task, description=phase.text())
            elif self.mode == "lines":
                self._line(phase.text())
            return previous

    def end(self, phase: Phase, failed: bool, previous: Phase | None = None) -> None:
        with self._lock:
            self.current = previous
            outcome = f"{'failed after' if failed else 'done in'} {phase.elapsed():.1f}s"
            if self._bar is not None and self._bar_task is not None and previous is None:
                total = self._bar_total or 1
                self._bar.update(self._bar_task, total=total, completed=total)
                self._bar.update(self._bar_task, description=f"{phase.text()} {outcome}")
                self._bar.stop()
                self._bar.remove_task(self._bar_task)
                self._bar_task = None
            elif self._bar is not None and self._bar_task is not None:
                self._bar.update(self._bar_task, description=previous.text() if previous else "")
            elif self.mode == "lines":
                self._line(f"{phase.text()} {outcome}")

    def poll(self, tasks: Tasks) -> None:
        with self._lock:
            phase = self.current
            if phase is None:
                return
            if self._bar is not None and self._bar_task is not None:
                self._bar_total = tasks.total or self._bar_total
                self._bar.update(self._bar_task, total=tasks.total or None, completed=tasks.done)
            elif self.mode == "lines" and time.monotonic() - self._last_line >= LINE_EVERY_S:
                detail = f" · {tasks.text()}" if tasks.stages else ""
                self._line(f"{phase.text()}{detail} · {phase.elapsed():.0f}s")


_REPORTER: Reporter | None = None
_SPARK: Any = None


def resolve_mode(mode: str, stream: TextIO) -> str:
    if mode not in MODES:
        raise ValueError(f"DMP_PROGRESS: expected one of {', '.join(MODES)}, got {mode!r}")
    if mode == "auto":
        return "bar" if stream.isatty() else "lines"
    return mode


def _watch(spark: Any, reporter: Reporter) -> None:
    while not reporter.stopped and spark.sparkContext._jsc is not None:
        try:
            reporter.poll(running_tasks(spark))
        except Exception:  # noqa: BLE001 - a progress line never fails a step (the session may be stopping)
            if spark.sparkContext._jsc is None:
                return
        time.sleep(POLL_S)


def attach(spark: Any, mode: str | None = None, stream: TextIO | None = None) -> Reporter | None:
    """Start this process's reporter for ``spark``: ``DMP_PROGRESS`` on stderr by default, kept when
    the session is reused; an explicit ``mode`` or ``stream`` replaces the reporter."""
    global _REPORTER, _SPARK
    if mode is None and stream is None and _SPARK is spark:
        return _REPORTER
    out = stream or sys.stderr
    resolved = resolve_mode(mode or env_setting("progress"), out)
    detach()
    _REPORTER, _SPARK = (Reporter(resolved, out) if resolved != "off" else None), spark
    if _REPORTER is not None:
        threading.Thread(target=_watch, args=(spark, _REPORTER), name="dmp-progress", daemon=True).start()
    return _REPORTER


def detach() -> None:
    """Stop reporting (the thread also ends when its session stops)."""
    global _REPORTER, _SPARK
    if _REPORTER is not None:
        _REPORTER.stopped = True
    _REPORTER, _SPARK = None, None


@contextmanager
def phase(step_name: str, label: str, step: tuple[int, int] | None = None) -> Iterator[None]:
    """Report ``label`` as what ``step_name`` is doing until the block ends (and the Spark UI's job
    description says so too)."""
    current = Phase(step_name, label, step)
    reporter, spark = _REPORTER, _SPARK
    if spark is not None:
        spark.sparkContext.setJobDescription(current.text())
    previous = reporter.begin(current) if reporter is not None else None
    failed = True
    try:
        yield
        failed = False
    finally:
        if reporter is not None:
            reporter.end(current, failed, previous)
        if spark is not None:
            spark.sparkContext.setJobDescription(previous.text() if previous else None)
