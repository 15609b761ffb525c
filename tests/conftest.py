"""Shared fixtures: one SparkSession for the whole test session (design.md §6)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TAOBAO_SAMPLE = SHARED_DATA / "taobao_userbehavior_sample.csv"

# Small shuffles and no UI: tests run on 2 cores.
os.environ.setdefault("DMP_SHUFFLE_PARTITIONS", "2")
os.environ.setdefault("DMP_SPARK_UI", "false")
os.environ.setdefault("DMP_DRIVER_MEMORY", "2g")


@pytest.fixture(scope="session")
def spark() -> Iterator:
    from dmp.spark import get_spark

    session = get_spark("dmp-tests")
    yield session
    session.stop()


@pytest.fixture()
def lake(tmp_path: Path) -> str:
    """A fresh, empty lake root for one test."""
    root = tmp_path / "lake"
    root.mkdir()
    return str(root)
