"""Issue 22 item 7: two ``dmp deliver`` of one pack started at once on a lake without ops tables.

Both drivers used to commit version 0 of ``ops/deliveries``; one died with a raw
``DELTA_PROTOCOL_CHANGED`` traceback. Now table creation is race-safe and conflicts are retried
(``dmp.spark.lake.ensure_table`` / ``retry_conflicts``): both processes exit 0 without a traceback,
and the lake and the delivered files are exactly those of one delivery made alone.

Real processes (``python -m dmp.cli deliver``, one Spark driver each), not threads: the race is
between two JVMs, as between two Airflow tasks. The pack and identities are written by the test's
own session from the rows of ``tests/steps/test_delivery.py``; the reference delivery runs in that
session too, on a copy of the same lake.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.orchestration.deltaread import delta_rows
from dmp.steps.deliver import run_delivery
from tests.steps.test_delivery import D1, JD_KEYS, TREATMENT, write_lake

pytestmark = pytest.mark.integration

TIMEOUT_S = 900  # two JVMs at once on 2 shared cores
START_AFTER_S = 60  # both JVMs are up by then on a loaded machine (if not, the race is only less likely)
CHANNELS = """\
channels:
  jd_ads:
    type: ad
    destination: ${DMP_DELIVERY_ROOT}/ads
    id_types: [oaid, idfa, imei, phone]
    hash: {oaid: md5, idfa: md5, imei: md5, phone: sha256}
    phone_format: e164
    sync: incremental
"""
SPEC = """\
name: spring
description: the pack written by the test
kind: rule
where: {tag: lifecycle_stage, in: [active]}
holdout: 0.1
min_size: 1
channels: [jd_ads]
"""
TIMESTAMPS = {"delivered_at", "updated_at"}
# The later of the two finds the identical delivery complete and says so; the rest is equal.
UNCHANGED = "unchanged: identical delivery already complete; nothing rewritten"


def _rows(lake: str, table: str, root: str) -> list[tuple]:
    """The table's rows without wall-clock columns and with the delivery root replaced, sorted."""
    out = []
    for row in delta_rows(tables.table_path(lake, table)):
        kept = {k: v for k, v in row.items() if k not in TIMESTAMPS}
        assert kept.get("message") in (None, UNCHANGED), kept
        kept.pop("message", None)
        if isinstance(kept.get("path"), str):
            kept["path"] = kept["path"].replace(root, "<root>")
        out.append(tuple(sorted((k, str(v)) for k, v in kept.items())))
    return sorted(out)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ``dmp deliver`` itself, behind a start line: each driver first starts its JVM (tens of seconds on
# a busy machine, never the same for two), then both deliver at the same moment, so that their
# first commits to the missing ops tables really overlap.
DRIVER = """\
import sys, time
from dmp.cli import main
from dmp.spark.session import get_spark
start = float(sys.argv[1])
get_spark("deliver")
while time.time() < start:
    time.sleep(0.02)
main(sys.argv[2:])
"""


def _deliver_cmd(script: Path, start: float, lake: str, segs: Path) -> list[str]:
    return [
        sys.executable, str(script), str(start), "deliver", "--lake", lake, "--segments", str(segs),
        "--segment", "spring", "--date", D1.isoformat(),
    ]  # fmt: skip


def test_two_deliveries_at_once_on_a_lake_without_ops_tables(
    spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    segs = tmp_path / "segments"
    segs.mkdir()
    (segs / "channels.yaml").write_text(CHANNELS)
    (segs / "spring.yaml").write_text(SPEC)
    base = str(tmp_path / "base_lake")
    write_lake(spark, base, [D1], with_tiny=False)
    racing, alone = str(tmp_path / "racing_lake"), str(tmp_path / "alone_lake")
    shutil.copytree(base, racing)
    shutil.copytree(base, alone)
    assert not Path(racing, tables.DELIVERIES).exists()
    assert not Path(racing, tables.DELIVERY_STATE).exists()

    # The reference: one delivery alone, in this process's session.
    alone_root = tmp_path / "alone_out"
    monkeypatch.setenv("DMP_DELIVERY_ROOT", alone_root.as_uri())
    results = run_delivery(spark, alone, [D1], str(segs), segment="spring")
    assert [(r.channel, r.status) for r in results] == [("jd_ads", "success")]

    # Two drivers at once, one core each.
    racing_root = tmp_path / "racing_out"
    env = {
        **os.environ,
        "DMP_DELIVERY_ROOT": racing_root.as_uri(),
        "DMP_SPARK_MASTER": "local[1]",
        "DMP_SHUFFLE_PARTITIONS": "1",
        "DMP_DRIVER_MEMORY": "1g",
    }
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    start = time.time() + START_AFTER_S
    procs = [
        subprocess.Popen(
            _deliver_cmd(script, start, racing, segs),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=TIMEOUT_S)[0] for p in procs]
    for text in outputs:  # whether the commits did collide this time (timing; not asserted)
        print([line for line in text.splitlines() if "conflict" in line or "unchanged" in line])
    for proc, text in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, text[-3000:]
        assert "Traceback" not in text
        assert "DELTA_PROTOCOL_CHANGED" not in text

    for table in (tables.DELIVERIES, tables.DELIVERY_STATE):
        want = _rows(alone, table, alone_root.as_uri())
        assert want, f"the reference wrote no {table} rows"
        assert _rows(racing, table, racing_root.as_uri()) == want
    assert _files(racing_root) == _files(alone_root)
    # And what was delivered is the pack's treatment users' keys (not only "the same as alone").
    full = racing_root / "ads/jd_ads/spring" / D1.isoformat() / "full/part-00000.csv.gz"
    lines = gzip.decompress(full.read_bytes()).decode().splitlines()
    assert lines[0] == "id_type,user_key"
    assert {tuple(line.split(",")) for line in lines[1:]} == set().union(
        *(JD_KEYS.get(u, set()) for u in TREATMENT[D1])
    )
