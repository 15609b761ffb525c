"""The S3 connection named by DMP_AWS_CONN_ID reaches a real spark-submit driver (docs/credentials.md).

The task resolves the connection (in Airflow 3 only the task can: the driver has no metadata
database or API-server access) and :func:`dmp.orchestration.submit.run_spark_job` hands it to the
spark-submit process environment. The driver here is a real ``spark-submit --master local[1]``
Python application writing to a real MinIO through :class:`dmp.delivery.storage.S3Store`, with no
AWS keys or endpoint in its environment: it can only succeed through the handed-over connection.
The lookup in this test process is patched (it stands in for the task's API-server access); the
driver runs unpatched code.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk import BaseHook, Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from dmp.orchestration import submit
from tests.support.s3server import TEST_SECRET, TEST_USER, MinioServer

# The driver: no SparkSession needed, it is spark-submit's Python application all the same.
PROBE = """
import sys
from dmp.delivery.storage import S3Store

S3Store(sys.argv[1]).put("probe.txt", b"written by the driver")
print("probe: wrote", sys.argv[1])
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[MinioServer]:
    with MinioServer() as server:
        server.create_bucket("drv")
        yield server


@pytest.fixture()
def driver_setup(s3: MinioServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A jobs folder with the probe, no Spark connection (local[1]), and no AWS keys anywhere but
    in the Airflow connection ``drv_s3`` that only the (patched) task-side lookup can see."""
    (tmp_path / "probe.py").write_text(PROBE)
    # spark-submit of the pip pyspark, next to this interpreter (what `dmp airflow-env` puts on PATH)
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("DMP_JOBS_DIR", str(tmp_path))
    monkeypatch.setenv("DMP_SPARK_MASTER", "local[1]")
    monkeypatch.setenv("DMP_SPARK_CONN_ID", "dmp_spark_not_defined")
    monkeypatch.setenv("DMP_AWS_CONN_ID", "drv_s3")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_DRV_S3", raising=False)
    conn = Connection(
        conn_id="drv_s3",
        conn_type="aws",
        login=TEST_USER,
        password=TEST_SECRET,
        extra=json.dumps({"endpoint_url": s3.endpoint, "region_name": "us-east-1"}),
    )
    looked_up: list[str] = []

    def task_side_lookup(cls: Any, conn_id: str) -> Connection:
        looked_up.append(conn_id)
        if conn_id == "drv_s3":
            return conn
        raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")

    monkeypatch.setattr(BaseHook, "get_connection", classmethod(task_side_lookup))
    return looked_up


def _keys(s3: MinioServer) -> list[str]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        aws_access_key_id=TEST_USER,
        aws_secret_access_key=TEST_SECRET,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="drv").get("Contents", []))


@pytest.mark.slow
def test_a_connection_made_in_the_metadata_db_reaches_the_driver(
    s3: MinioServer, driver_setup: list[str]
) -> None:
    submit.run_spark_job("probe", ["s3://drv/handed-over"])
    assert "handed-over/probe.txt" in _keys(s3)
    assert driver_setup == [
        "dmp_spark_not_defined",
        "drv_s3",
    ]  # the Spark conn fell back, the S3 conn resolved


@pytest.mark.slow
def test_without_handing_it_over_the_driver_cannot_see_the_connection(
    s3: MinioServer, driver_setup: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What happened before: the driver inherits DMP_AWS_CONN_ID and looks the connection up itself.
    monkeypatch.setattr(submit, "driver_environment", lambda conn_id, *_a, **_k: {"DMP_AWS_CONN_ID": conn_id})
    with pytest.raises(
        Exception,
        match=r"(?s)Error code is: 1\..*DMP_AWS_CONN_ID=drv_s3: Airflow connection could not be loaded \(AirflowNotFoundException\)",
    ):
        submit.run_spark_job("probe", ["s3://drv/not-handed-over"])
    assert "not-handed-over/probe.txt" not in _keys(s3)
