"""Connection lookups from the DAG tasks: a default only when the connection is not defined, any
other failure fails the task naming the connection; the S3 connection handed to the driver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook
from airflow.sdk import Connection
from airflow.sdk.exceptions import AirflowNotFoundException

from dmp.orchestration import submit

S3_CONN = Connection(
    conn_id="dmp_s3",
    conn_type="aws",
    login="AKIDEXAMPLE",
    password="s3cr3t/with+chars",
    extra=json.dumps({"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"}),
)


def _lookup(known: dict[str, Any], error: Exception | None = None):  # noqa: ANN202 - a get_connection
    calls: list[str] = []

    def get(conn_id: str) -> Any:
        calls.append(conn_id)
        if error is not None:
            raise error
        if conn_id not in known:
            raise AirflowNotFoundException(f"The conn_id `{conn_id}` isn't defined")
        return known[conn_id]

    get.calls = calls  # type: ignore[attr-defined]
    return get


def _patch_hook_lookup(monkeypatch: pytest.MonkeyPatch, get: Any) -> None:
    """What the provider's hook inherits from BaseHook (the metadata DB / API server in a task)."""
    monkeypatch.setattr(SparkSubmitHook, "get_connection", classmethod(lambda cls, conn_id: get(conn_id)))


def test_a_missing_spark_connection_falls_back_to_the_master_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _patch_hook_lookup(monkeypatch, _lookup({}))
    hook = submit.spark_submit_hook("dmp_spark", "local[3]", name="dmp-x")
    assert (hook._connection["master"], hook._connection["deploy_mode"]) == ("local[3]", None)
    assert "Airflow connection 'dmp_spark' is not defined: submitting to local[3]" in capsys.readouterr().out


def test_a_defined_spark_connection_is_used() -> None:
    conn = Connection(conn_id="dmp_spark", conn_type="spark", host="spark://10.0.0.5", port=7077)
    got = submit.lookup_connection(_lookup({"dmp_spark": conn}), "dmp_spark")
    assert got is conn


def test_any_other_lookup_error_fails_naming_the_connection_and_never_runs_locally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _patch_hook_lookup(monkeypatch, _lookup({}, ConnectionError("api-server: 503 postgres://u:pw@db")))
    with pytest.raises(submit.ConnectionLookupError) as err:
        submit.spark_submit_hook("dmp_spark", "local[3]", name="dmp-x")
    assert (
        str(err.value)
        == "Airflow connection 'dmp_spark': lookup failed (ConnectionError); not using a default"
    )
    assert "pw@db" not in str(err.value)  # the original message may carry a URI with a password
    assert isinstance(err.value.__cause__, ConnectionError)


def test_driver_environment_carries_the_s3_connection_as_json_not_on_the_command_line() -> None:
    get = _lookup({"dmp_s3": S3_CONN})
    env = submit.driver_environment("dmp_s3", None, get, environ={})
    assert sorted(env) == ["AIRFLOW_CONN_DMP_S3", "DMP_AWS_CONN_ID"]
    assert env["DMP_AWS_CONN_ID"] == "dmp_s3"
    back = Connection.from_json(env["AIRFLOW_CONN_DMP_S3"], conn_id="dmp_s3")
    assert (back.login, back.password, back.conn_type) == ("AKIDEXAMPLE", "s3cr3t/with+chars", "aws")
    assert back.extra_dejson == {"endpoint_url": "http://127.0.0.1:9000", "region_name": "us-east-1"}
    # the command line the hook builds and logs has neither the secret nor the variable
    hook_cmd = submit.spark_job("deliver", ["--lake", "/l"]).command("local[1]")
    assert not any("s3cr3t" in part or "AIRFLOW_CONN" in part for part in hook_cmd)


def test_driver_environment_without_a_connection_setting_is_empty() -> None:
    get = _lookup({})
    assert submit.driver_environment("", "cluster", get, environ={}) == {}
    assert get.calls == []  # type: ignore[attr-defined]


def test_an_environment_connection_is_inherited_as_it_is() -> None:
    get = _lookup({})
    env = submit.driver_environment("dmp_s3", "client", get, environ={"AIRFLOW_CONN_DMP_S3": "{}"})
    assert env == {"DMP_AWS_CONN_ID": "dmp_s3"}
    assert get.calls == []  # type: ignore[attr-defined]


def test_a_named_s3_connection_that_does_not_exist_fails_the_task() -> None:
    with pytest.raises(submit.ConnectionLookupError) as err:
        submit.driver_environment("dmp_s3", None, _lookup({}), environ={})
    assert str(err.value) == (
        "dmp_aws_conn_id='dmp_s3': Airflow connection 'dmp_s3' is not defined "
        "(define it, or leave dmp_aws_conn_id empty to use the standard AWS chain)"
    )
    with pytest.raises(
        submit.ConnectionLookupError, match=r"^Airflow connection 'dmp_s3': lookup failed \(TimeoutError\)"
    ):
        submit.driver_environment("dmp_s3", None, _lookup({}, TimeoutError("slow")), environ={})


def test_cluster_deploy_mode_cannot_hand_over_the_connection_and_says_what_to_do() -> None:
    with pytest.raises(submit.ConnectionLookupError) as err:
        submit.driver_environment("dmp_s3", "cluster", _lookup({"dmp_s3": S3_CONN}), environ={})
    message = str(err.value)
    assert message.startswith(
        "dmp_aws_conn_id='dmp_s3' with deploy-mode cluster: the Spark driver runs on the cluster"
    )
    assert "AIRFLOW_CONN_DMP_S3 / DMP_AWS_CONN_ID from a secret" in message
    assert "docs/credentials.md" in message
