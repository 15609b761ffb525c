"""The reference downstream client on hand-built deliveries (file:// store, no Spark needed).

The S3 round trip (deliver -> MinIO -> pull) is in test_delivery.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dmp.contracts.errors import DmpError
from dmp.delivery.layout import MANIFEST, SUCCESS
from dmp.delivery.manifest import manifest_bytes
from dmp.delivery.plan import AD_COLUMNS, build_files
from dmp.delivery.pull import latest_complete, pull
from dmp.delivery.storage import FileStore, sha256_hex

CH, SEG = "jd_ads", "spring"


@pytest.fixture()
def store(tmp_path: Path) -> FileStore:
    return FileStore(root=tmp_path / "dest", url=f"file://{tmp_path}/dest")


def publish(
    store: FileStore,
    run_date: str,
    mode: str,
    parts: dict[str, list[tuple[str, str]]],
    previous: tuple[str, str] | None = None,
    complete: bool = True,
) -> str:
    """Write a delivery folder like dmp.delivery.publish does; returns the manifest's sha256."""
    frames = {k: pd.DataFrame(rows, columns=list(AD_COLUMNS)) for k, rows in parts.items()}
    files = build_files(frames)
    folder = f"{CH}/{SEG}/{run_date}"
    for name, (data, _rows) in files.items():
        store.put(f"{folder}/{name}", data)
    manifest = {
        "manifest_version": 1,
        "channel": CH,
        "segment": SEG,
        "run_date": run_date,
        "mode": mode,
        "columns": list(AD_COLUMNS),
        "key_columns": list(AD_COLUMNS),
        "previous": None
        if previous is None
        else {"run_date": previous[0], "path": f"{CH}/{SEG}/{previous[0]}", "manifest_sha256": previous[1]},
        "files": [
            {"path": n, "kind": n.split("/")[0], "rows": r, "bytes": len(d), "sha256": sha256_hex(d)}
            for n, (d, r) in sorted(files.items())
        ],
    }
    data = manifest_bytes(manifest)
    store.put(f"{folder}/{MANIFEST}", data)
    if complete:
        store.put(f"{folder}/{SUCCESS}", b"")
    return sha256_hex(data)


def current(dest: Path) -> list[str]:
    return (dest / "current.csv").read_text().splitlines()


A, B, C, D = ("oaid", "a" * 32), ("oaid", "b" * 32), ("idfa", "c" * 32), ("phone", "d" * 64)


def test_chain_applied_in_order_then_up_to_date(store: FileStore, tmp_path: Path) -> None:
    dest = tmp_path / "client"
    m1 = publish(store, "2026-03-14", "full", {"full": [A, B]})
    first = pull(store, CH, SEG, dest)
    assert first.applied == ["2026-03-14"] and current(dest) == ["id_type,user_key", ",".join(A), ",".join(B)]
    m2 = publish(store, "2026-03-15", "incremental", {"add": [C], "remove": [A]}, ("2026-03-14", m1))
    publish(store, "2026-03-16", "incremental", {"add": [D, A], "remove": [B]}, ("2026-03-15", m2))
    # Only the two new deliveries are applied, oldest first, on top of the local copy.
    res = pull(store, CH, SEG, dest)
    assert res.applied == ["2026-03-15", "2026-03-16"] and res.rows == 3
    assert current(dest) == ["id_type,user_key", ",".join(C), ",".join(A), ",".join(D)]
    again = pull(store, CH, SEG, dest)
    assert again.up_to_date and again.applied == []
    state = json.loads((dest / ".dmp_pull.json").read_text())
    assert [a["run_date"] for a in state["applied"]] == ["2026-03-14", "2026-03-15", "2026-03-16"]


def test_incomplete_latest_is_ignored(store: FileStore, tmp_path: Path) -> None:
    m1 = publish(store, "2026-03-14", "full", {"full": [A]})
    publish(
        store, "2026-03-15", "incremental", {"add": [B], "remove": []}, ("2026-03-14", m1), complete=False
    )
    assert latest_complete(store, CH, SEG) == "2026-03-14"
    res = pull(store, CH, SEG, tmp_path / "c")
    assert res.run_date == "2026-03-14" and current(tmp_path / "c") == ["id_type,user_key", ",".join(A)]


def test_checksum_mismatch_fails_loudly_and_keeps_local_copy(store: FileStore, tmp_path: Path) -> None:
    dest = tmp_path / "c"
    m1 = publish(store, "2026-03-14", "full", {"full": [A, B]})
    pull(store, CH, SEG, dest)
    publish(store, "2026-03-15", "incremental", {"add": [C], "remove": [A]}, ("2026-03-14", m1))
    part = store.root / CH / SEG / "2026-03-15" / "add" / "part-00000.csv.gz"
    # Same size, one byte flipped: only the sha256 check can catch it.
    original = part.read_bytes()
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF
    part.write_bytes(bytes(flipped))
    with pytest.raises(DmpError, match=r"add/part-00000.csv.gz: sha256 mismatch"):
        pull(store, CH, SEG, dest)
    assert current(dest) == ["id_type,user_key", ",".join(A), ",".join(B)]
    # Truncated upload: size check.
    part.write_bytes(original[:10])
    with pytest.raises(DmpError, match="size 10 bytes, manifest says"):
        pull(store, CH, SEG, dest)


def test_row_count_and_header_checked(store: FileStore, tmp_path: Path) -> None:
    publish(store, "2026-03-14", "full", {"full": [A, B]})
    mpath = store.root / CH / SEG / "2026-03-14" / MANIFEST
    manifest = json.loads(mpath.read_text())
    manifest["files"][0]["rows"] = 3
    mpath.write_bytes(manifest_bytes(manifest))
    with pytest.raises(DmpError, match="2 rows, manifest says 3"):
        pull(store, CH, SEG, tmp_path / "c")
    manifest["files"][0]["rows"] = 2
    manifest["columns"] = ["user_key", "id_type"]
    mpath.write_bytes(manifest_bytes(manifest))
    with pytest.raises(DmpError, match="header"):
        pull(store, CH, SEG, tmp_path / "c")


def test_rewritten_previous_breaks_chain_and_missing_delivery(store: FileStore, tmp_path: Path) -> None:
    with pytest.raises(DmpError, match="no complete delivery"):
        pull(store, CH, SEG, tmp_path / "c")
    publish(store, "2026-03-14", "full", {"full": [A]})
    publish(store, "2026-03-15", "incremental", {"add": [B], "remove": []}, ("2026-03-14", "0" * 64))
    with pytest.raises(DmpError, match="manifest changed"):
        pull(store, CH, SEG, tmp_path / "c")


def test_cli_pull_uses_channels_yaml(
    store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from dmp.cli import app

    segs = tmp_path / "segments"
    segs.mkdir()
    (segs / "channels.yaml").write_text(
        "channels:\n  jd_ads:\n    type: ad\n    destination: ${PULL_TEST_ROOT}\n    id_types: [oaid]\n"
        "    hash: {oaid: md5}\n    sync: incremental\n"
    )
    monkeypatch.setenv("PULL_TEST_ROOT", store.url)
    publish(store, "2026-03-14", "full", {"full": [A, B]})
    args = ["pull", "--channel", CH, "--segment", SEG, "--dest", str(tmp_path / "c"), "--segments", str(segs)]
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 0, out.output
    assert "applied 2026-03-14" in out.output and "2 rows" in out.output
    assert current(tmp_path / "c") == ["id_type,user_key", ",".join(A), ",".join(B)]
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "up to date" in again.output


def test_airflow_connection_supplies_endpoint_and_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    from dmp.delivery.storage import s3_client

    monkeypatch.setenv(
        "AIRFLOW_CONN_DMP_S3_TEST",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIATEST",
                "password": "not-logged",
                "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "cn-north-1"},
            }
        ),
    )
    monkeypatch.setenv("DMP_AWS_CONN_ID", "dmp_s3_test")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = s3_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:9"
    assert client.meta.region_name == "cn-north-1"
    assert client._request_signer._credentials.access_key == "AKIATEST"
    monkeypatch.setenv("DMP_AWS_CONN_ID", "no_such_conn")
    with pytest.raises(
        DmpError, match="DMP_AWS_CONN_ID=no_such_conn: Airflow connection could not be loaded"
    ):
        s3_client()
