"""A real (non-editable) wheel install finds everything it reads at run time through the package.

The wheel is built from a copy of the sources and installed without dependencies into a fresh venv
that sees this environment's site-packages (for pyspark, GX, ...) only after its own, so ``dmp``
is the installed copy, not the checkout. The commands run from a folder outside the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark.schemas import EVENTS
from dmp.transforms.aggregate import build_user_daily
from tests.support.factories import D1, EVENT_ROWS

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("dmp", "setup.cfg", "pyproject.toml", "README.md")

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a venv with the dmp wheel installed."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    for name in SOURCES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy(source, src / name)
    dist = root / "dist"
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(dist)]
    subprocess.run([*build, str(src)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("dmp-*.whl"))

    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # After the venv's own packages: pyspark, GX & co. from here, dmp from the wheel.
    Path(site, "dmp_test_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, timeout=600)
    return venv / "bin"


def _run(bin_dir: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DMP_EXPECTATIONS", "PYSPARK_PYTHON"))}
    # COLUMNS: rich would wrap the lines asserted on at 80 columns when piped
    env.update({"DMP_SHUFFLE_PARTITIONS": "2", "COLUMNS": "250", "PATH": f"{bin_dir}:{env.get('PATH', '')}"})
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_the_installed_package_is_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    probe = "import dmp.steps.quality as q; print(q.__file__); print(q.EXPECTATIONS_DIR)"
    out = _run(installed, tmp_path, "python", "-c", probe)
    assert out.returncode == 0, out.stderr
    module, suites = out.stdout.split()
    assert not module.startswith(str(REPO_ROOT)) and "site-packages" in module
    assert sorted(p.name for p in Path(suites).iterdir()) == [
        "bronze_events.json",
        "gold_user_tags.json",
        "silver_user_daily.json",
    ]


def test_segments_validate_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "segments", tmp_path / "segments")
    out = _run(installed, tmp_path, "dmp", "segments", "validate", "--segments", "segments")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "5 spec(s) valid in segments" in out.stdout
    assert "segments/spring_revisit.yaml (store_revisit)" in out.stdout


def test_validate_gates_a_lake_with_the_packaged_suite(installed: Path, tmp_path: Path, spark) -> None:  # noqa: ANN001
    lake = str(tmp_path / "lake")
    daily = build_user_daily(spark.createDataFrame(EVENT_ROWS, EVENTS))
    lk.overwrite_partitions(
        daily, lake, tables.USER_DAILY, ["event_date"], lk.replace_where_condition("event_date", [D1])
    )
    args = ("dmp", "validate", "--lake", lake, "--table", tables.USER_DAILY, "--date", D1.isoformat())
    out = _run(installed, tmp_path, *args)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"passed suite silver_user_daily on {tables.USER_DAILY} (5 rows, {D1} .. {D1})" in out.stdout
    missing = _run(installed, tmp_path, *args[:-3], tables.USER_TAGS, "--date", D1.isoformat())
    assert missing.returncode == 1
    assert f"error: table {lake}/{tables.USER_TAGS} does not exist" in missing.stderr
