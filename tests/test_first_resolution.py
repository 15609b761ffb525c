"""The first Maven resolution of the Spark packages is serialised across processes (a cold Ivy cache
raced by two JVMs leaves a 0-byte jar and fails both); once done, nobody waits for the lock."""

from __future__ import annotations

import fcntl
import threading
from pathlib import Path

import pytest

from dmp.spark import session


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(session, "cache_folder", lambda: tmp_path)
    return tmp_path


def markers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("resolved-*"))


def test_a_successful_start_leaves_a_marker_per_package_list(cache: Path) -> None:
    with session.first_resolution("io.delta:delta-spark_4.2_2.13:4.4.0"):
        pass
    with session.first_resolution("io.delta:delta-spark_4.2_2.13:4.4.0,org.apache.hadoop:hadoop-aws:3.4.2"):
        pass
    assert len(markers(cache)) == 2


def test_a_failed_start_leaves_no_marker(cache: Path) -> None:
    with pytest.raises(RuntimeError), session.first_resolution("p"):
        raise RuntimeError("JAVA_GATEWAY_EXITED")
    assert markers(cache) == []


def test_a_second_process_waits_for_the_first(cache: Path) -> None:
    entered = threading.Event()
    with (cache / "maven-resolve.lock").open("w") as other:  # another process is resolving
        fcntl.flock(other, fcntl.LOCK_EX)

        def start() -> None:
            with session.first_resolution("p"):
                entered.set()

        waiter = threading.Thread(target=start)
        waiter.start()
        assert not entered.wait(0.5)  # blocked on the lock while the other resolves
        fcntl.flock(other, fcntl.LOCK_UN)
    waiter.join(60)
    assert entered.is_set()
    assert len(markers(cache)) == 1


def test_after_a_marker_nobody_takes_the_lock(cache: Path) -> None:
    with session.first_resolution("p"):
        pass
    with (cache / "maven-resolve.lock").open("w") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        done = threading.Event()

        def start() -> None:
            with session.first_resolution("p"):
                done.set()

        thread = threading.Thread(target=start)
        thread.start()
        thread.join(60)
        assert done.is_set()
