"""Writers in parallel, as Airflow's mapped tasks run them: every step its own Spark driver, one lake.

Without Airflow: 6 pack builds, then 6 deliveries, then 4 evaluations of different segments, each
batch started at the same moment as separate ``python -m dmp.cli`` processes, on a local lake and
on an ``s3a://`` lake on a real MinIO. Every process must exit 0, and every table (and every
delivered byte) must equal a sequential run of the same commands. The lake starts without any
pack, delivery or uplift table, so the first writers also race to create each table.

A separate case is issue 22's: two ``dmp deliver`` of the same pack at once on a lake without
``ops/deliveries`` (both used to commit version 0; one died with DELTA_PROTOCOL_CHANGED).

What makes it pass (infra/README.md "Concurrent writers"): tables partitioned by the writer's key
with replaceWhere confined to its partition, bounded retries on Delta's conflicts, race-safe table
creation, and on S3 the conditional-put log store. Slow by nature (each command is a JVM; 2 cores):
the base lake is built once, data are ~300 users.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dmp.contracts import tables
from dmp.orchestration.deltaread import delta_rows
from tests.support.s3server import MinioServer

pytestmark = pytest.mark.integration

PY = sys.executable
RUN_DATE = "2026-09-10"
SEGMENTS = [f"stress_{i}" for i in range(1, 7)]
EVALUATED = SEGMENTS[:4]
WINDOW_DAYS = "3"  # R+1 … R+3 lies inside the 16 generated days: the window is closed
TIMEOUT_S = 2400  # one command; six JVMs at once on 2 shared cores are slow

CHANNELS = """\
channels:
  ads_full:
    type: ad
    destination: ${DMP_DELIVERY_ROOT}/full
    id_types: [oaid, idfa, imei, phone]
    hash: {oaid: md5, idfa: md5, imei: md5, phone: sha256}
    sync: full
  ads_incr:
    type: ad
    destination: ${DMP_DELIVERY_ROOT}/incr
    id_types: [oaid, idfa, phone]
    hash: {oaid: md5, idfa: md5, phone: md5}
    sync: incremental
"""

# Columns that differ between any two runs (wall-clock times) are left out of the comparison.
TIMESTAMPS = {"built_at", "delivered_at", "evaluated_at"}
COMPARED = (
    tables.AUDIENCE_PACKS,
    tables.PACK_RUNS,
    tables.DELIVERIES,
    tables.DELIVERY_STATE,
    tables.UPLIFT_RESULTS,
)


def _spec(i: int) -> str:
    # 16 days of history: every user is still "new"; the packs differ by consumption level (1 … 5).
    return f"""\
name: stress_{i}
description: writer stress test segment {i}
kind: rule
where:
  all:
    - {{tag: consumption_level, gte: {(i - 1) % 5 + 1}}}
    - {{tag: lifecycle_stage, in: [new, active]}}
holdout: 0.2
min_size: 1
channels: [ads_full, ads_incr]
"""


def _env(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        # One core per driver: six of them share two.
        "DMP_SPARK_MASTER": "local[1]",
        "DMP_SHUFFLE_PARTITIONS": "1",
        "DMP_SPARK_UI": "false",
        "DMP_DRIVER_MEMORY": "1g",
        **extra,
    }


def _cli(*args: str) -> list[str]:
    return [PY, "-m", "dmp.cli", *args]


def _build(lake: str, segs: Path, segment: str) -> list[str]:
    spec = str(segs / f"{segment}.yaml")
    return _cli(
        "segments", "build", "--lake", lake, "--segments", str(segs), "--spec", spec, "--date", RUN_DATE
    )


def _deliver(lake: str, segs: Path, segment: str) -> list[str]:
    return _cli("deliver", "--lake", lake, "--segments", str(segs), "--segment", segment, "--date", RUN_DATE)


def _evaluate(lake: str, segs: Path, segment: str, out: Path) -> list[str]:
    return _cli(
        "evaluate",
        "--lake",
        lake,
        "--segments",
        str(segs),
        "--segment",
        segment,
        "--run-date",
        RUN_DATE,
        "--window-days",
        WINDOW_DAYS,
        "--out",
        str(out / segment),
    )


def _batch(cmds: list[list[str]], env: dict[str, str], logs: Path, name: str) -> dict[str, str]:
    """Start every command at once (one OS process, one Spark driver each); fail unless all exit 0.

    Returns each command's output by index, for the "no traceback" checks.
    """
    logs.mkdir(parents=True, exist_ok=True)
    procs = []
    for i, cmd in enumerate(cmds):
        fh = (logs / f"{name}_{i}.log").open("w")
        procs.append((cmd, fh, subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT)))
    failures, outputs = [], {}
    for i, (cmd, fh, proc) in enumerate(procs):
        rc = proc.wait(timeout=TIMEOUT_S)
        fh.close()
        outputs[str(i)] = (logs / f"{name}_{i}.log").read_text(errors="replace")
        if rc != 0:
            failures.append(f"exit {rc}: {' '.join(cmd[3:])}\n" + outputs[str(i)][-3000:])
    assert not failures, "\n\n".join(failures)
    return outputs


def _chain(cmds: list[list[str]], env: dict[str, str], log: Path) -> None:
    """The same commands one after the other in one driver (``a ::: b``): the sequential reference."""
    args = [a for cmd in cmds for a in [*cmd[3:], ":::"]][:-1]
    with log.open("w") as fh:
        rc = subprocess.run(
            _cli(*args), env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=TIMEOUT_S
        ).returncode
    assert rc == 0, log.read_text()[-3000:]


def _rows(lake: str, table: str, delivery_root: str) -> list[tuple]:
    """The table's rows without wall-clock columns, the delivery root replaced, sorted."""
    out = []
    for row in delta_rows(tables.table_path(lake, table)):
        kept = {k: v for k, v in row.items() if k not in TIMESTAMPS}
        if isinstance(kept.get("path"), str):
            kept["path"] = kept["path"].replace(delivery_root, "<root>")
        out.append(tuple(sorted((k, str(v)) for k, v in kept.items())))
    return sorted(out)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _report_numbers(out: Path) -> dict[str, dict]:
    import json

    keep = ("n_treatment", "n_control", "uplift_abs", "rate_treatment", "rate_control", "p_value")
    reports = {p.parent.name: json.loads(p.read_text()) for p in out.rglob("report.json")}
    return {seg: {k: r.get(k) for k in keep} for seg, r in reports.items()}


# ------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Landing data, specs and a lake with events, identities, user_daily and the run date's tags."""
    root = tmp_path_factory.mktemp("writers")
    landing = root / "landing"
    subprocess.run(
        _cli("generate", "--out", str(landing), "--users", "300", "--days", "16", "--seed", "3"),
        check=True,
        capture_output=True,
        timeout=600,
    )
    segs = root / "segments"
    segs.mkdir()
    (segs / "channels.yaml").write_text(CHANNELS)
    for i in range(1, 7):
        (segs / f"stress_{i}.yaml").write_text(_spec(i))
    lake = str(root / "base_lake")
    chain = [
        _cli("ingest", "--source", str(landing), "--lake", lake, "--from", "2026-09-01", "--to", "2026-09-16")
        + ["--skip-checks"],
        _cli("ingest-identities", "--source", str(landing), "--lake", lake),
        _cli("aggregate", "--lake", lake, "--from", "2026-09-01", "--to", "2026-09-16", "--skip-checks"),
        _cli("tags", "--lake", lake, "--date", RUN_DATE, "--full", "--skip-checks"),
    ]
    _chain(chain, _env(), root / "base.log")
    return root


@pytest.fixture(scope="module")
def sequential(base: Path) -> dict[str, object]:
    """The reference: the same commands one at a time in one driver, on a copy of the base lake."""
    lake = str(base / "seq_lake")
    shutil.copytree(base / "base_lake", lake)
    segs = base / "segments"
    delivery = base / "seq_delivery"
    env = _env(DMP_DELIVERY_ROOT=delivery.as_uri())
    _chain([_build(lake, segs, s) for s in SEGMENTS], env, base / "seq_build.log")
    sizes = Counter(r["segment"] for r in delta_rows(f"{lake}/{tables.AUDIENCE_PACKS}"))
    assert all(sizes[s] > 0 for s in SEGMENTS), f"every stress pack must have members: {sizes}"
    shutil.copytree(lake, base / "packs_lake")  # for the fresh-lake double delivery below
    _chain([_deliver(lake, segs, s) for s in SEGMENTS], env, base / "seq_deliver.log")
    reports = base / "seq_reports"
    _chain([_evaluate(lake, segs, s, reports) for s in EVALUATED], env, base / "seq_evaluate.log")
    return {
        "tables": {t: _rows(lake, t, delivery.as_uri()) for t in COMPARED},
        "files": _files(delivery),
        "reports": _report_numbers(reports),
    }


@pytest.fixture(scope="module")
def minio() -> Iterator[MinioServer]:
    with MinioServer() as server:
        server.create_bucket("lake")
        yield server


def _upload(server: MinioServer, folder: Path, bucket: str, prefix: str) -> None:
    client = server.client()
    for path in folder.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(folder)}")


# --------------------------------------------------------------------------------------- tests


def _concurrent_run(lake: str, base: Path, env: dict[str, str], name: str) -> dict[str, object]:
    segs = base / "segments"
    logs = base / f"{name}_logs"
    reports = base / f"{name}_reports"
    started = time.monotonic()
    _batch([_build(lake, segs, s) for s in SEGMENTS], env, logs, "build")
    _batch([_deliver(lake, segs, s) for s in SEGMENTS], env, logs, "deliver")
    _batch([_evaluate(lake, segs, s, reports) for s in EVALUATED], env, logs, "evaluate")
    print(f"{name}: 3 concurrent batches in {time.monotonic() - started:.0f} s")
    return {"reports": _report_numbers(reports), "logs": logs}


def _assert_same_as_sequential(
    lake: str, delivery: Path, run: dict[str, object], sequential: dict[str, object]
) -> None:
    expected_tables = sequential["tables"]
    assert isinstance(expected_tables, dict)
    for table in COMPARED:
        got = _rows(lake, table, delivery.as_uri())
        assert len(got) == len(set(got)), f"{table}: duplicated rows"
        assert got == expected_tables[table], f"{table} differs from the sequential run"
    segments = {dict(r)["segment"] for r in expected_tables[tables.PACK_RUNS]}
    assert segments == set(SEGMENTS)
    evaluated = {dict(r)["segment"] for r in expected_tables[tables.UPLIFT_RESULTS]}
    assert evaluated == set(EVALUATED)
    assert _files(delivery) == sequential["files"]
    assert run["reports"] == sequential["reports"]
    assert len(run["reports"]) == len(EVALUATED)


def test_concurrent_writers_on_a_local_lake(base: Path, sequential: dict[str, object]) -> None:
    lake = str(base / "conc_lake")
    shutil.copytree(base / "base_lake", lake)
    delivery = base / "conc_delivery"
    run = _concurrent_run(lake, base, _env(DMP_DELIVERY_ROOT=delivery.as_uri()), "local")
    _assert_same_as_sequential(lake, delivery, run, sequential)
    # 6 builds ran at once but each owned its (segment, run_date): one commit per build and table.
    assert len(delta_rows(f"{lake}/{tables.PACK_RUNS}")) == 6


def test_concurrent_writers_on_an_s3a_lake(
    base: Path, sequential: dict[str, object], minio: MinioServer
) -> None:
    _upload(minio, base / "base_lake", "lake", "conc")
    lake = "s3a://lake/conc"
    delivery = base / "s3a_delivery"
    env = _env(DMP_DELIVERY_ROOT=delivery.as_uri(), DMP_S3A="1")
    run = _concurrent_run(lake, base, env, "s3a")
    _assert_same_as_sequential(lake, delivery, run, sequential)


def test_two_deliveries_at_once_on_a_lake_without_ops_deliveries(
    base: Path, sequential: dict[str, object]
) -> None:
    """Issue 22 item 7: both exit 0, no traceback, and the rows are those of one delivery."""
    lake = str(base / "double_lake")
    shutil.copytree(base / "packs_lake", lake)
    assert delta_rows(f"{lake}/{tables.DELIVERIES}") == []
    delivery = base / "double_delivery"
    env = _env(DMP_DELIVERY_ROOT=delivery.as_uri())
    segs = base / "segments"
    outputs = _batch(
        [_deliver(lake, segs, "stress_1"), _deliver(lake, segs, "stress_1")], env, base / "double_logs", "d"
    )
    for text in outputs.values():
        assert "Traceback" not in text
        assert "DELTA_PROTOCOL_CHANGED" not in text
    expected = sequential["tables"]
    assert isinstance(expected, dict)
    for table in (tables.DELIVERIES, tables.DELIVERY_STATE):
        want = [r for r in expected[table] if dict(r)["segment"] == "stress_1"]
        assert _rows(lake, table, delivery.as_uri()) == want
    files = sequential["files"]
    assert isinstance(files, dict)
    assert _files(delivery) == {k: v for k, v in files.items() if "/stress_1/" in f"/{k}"}


APPENDER = """\
import sys, time
from dmp.spark import lake as lk
from dmp.spark.session import get_spark
table, proc, n, start = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
spark = get_spark("appender", conf=dict(a.split("=", 1) for a in sys.argv[5:]))
root, name = table.rsplit("/", 1)
schema = spark.createDataFrame([], "proc int, i int").schema
lk.ensure_table(spark, root, name, schema)  # the race below is on commits, not on creating the table
while time.time() < start:  # every driver is up: their commits overlap
    time.sleep(0.05)
for i in range(n):  # plain Delta appends, no dmp retry: only the log store stands between them
    spark.createDataFrame([(proc, i)], "proc int, i int").write.format("delta").mode("append").save(table)
"""


def test_s3a_log_store_keeps_every_commit_of_concurrent_drivers(base: Path, minio: MinioServer) -> None:
    """4 drivers append 8 one-row commits each to one s3a table at the same moment: all 32 land.

    Blind appends never conflict logically, so every race for a version is resolved by the log
    store alone: with S3's default (S3SingleDriverLogStore) the loser overwrites the winner's
    N.json and both report success (rows are lost; see infra/README.md for the measured loss);
    with the conditional put the loser gets a 412, Delta retries at N+1.
    """
    script = base / "appender.py"
    script.write_text(APPENDER)
    table = "s3a://lake/appends"
    start = time.time() + 150  # JVM start-up on 2 busy cores
    env = _env(DMP_S3A="1")
    cmds = [[PY, str(script), table, str(p), "8", str(start)] for p in range(4)]
    _batch(cmds, env, base / "append_logs", "append")
    rows = delta_rows(table)
    assert sorted((r["proc"], r["i"]) for r in rows) == [(p, i) for p in range(4) for i in range(8)]
