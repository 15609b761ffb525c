"""Shared fixtures: one SparkSession for the whole test session (design.md §6)."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Real Taobao behaviour (Tianchi dataset 649), copied from the shared data folder with its provenance
# (tests/data/taobao/README.md) so the test does not depend on where the clone sits.
TAOBAO_SAMPLE = REPO_ROOT / "tests" / "data" / "taobao" / "taobao_userbehavior_sample.csv"

# Small shuffles and no UI: tests run on 2 cores.
os.environ.setdefault("DMP_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("DMP_SPARK_UI", "false")
os.environ.setdefault("DMP_DRIVER_MEMORY", "2g")
# Importing Airflow creates $AIRFLOW_HOME (logs, config): a temporary one, never the user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="dmp-airflow-home-"))


@pytest.fixture(scope="session")
def spark() -> Iterator:
    from dmp.spark.session import get_spark

    session = get_spark("dmp-tests")
    yield session
    session.stop()
    # py4j logs "Closing down clientserver connection" from a finaliser at interpreter exit, after
    # pytest has closed the stream a logging handler (set up by an Airflow import) writes to.
    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture()
def lake(tmp_path: Path) -> str:
    """A fresh, empty lake root for one test."""
    root = tmp_path / "lake"
    root.mkdir()
    return str(root)


# Slowest files first: under `make test` (pytest-xdist, `--dist loadfile`) each worker starts with
# one of them while the unit tests fill the gaps, instead of both heavy files starting last.
HEAVY_FIRST = ("test_e2e_airflow.py", "test_cluster_standalone.py", "test_erasure_e2e.py", "test_forget.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return HEAVY_FIRST.index(name) if name in HEAVY_FIRST else len(HEAVY_FIRST)

    items.sort(key=rank)
