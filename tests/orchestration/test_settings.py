"""Settings: Airflow Variable, else DMP_* environment, else the one table's default (design.md §7)."""

from __future__ import annotations

import sys
import types
from datetime import timedelta
from pathlib import Path

import pytest

from dmp.contracts.settings import SETTINGS, env_setting, source_checkout
from dmp.orchestration import settings


def test_env_setting_uses_the_environment_else_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMP_LANDING_FORMAT", raising=False)
    assert env_setting("landing_format") == "jsonl"
    monkeypatch.setenv("DMP_LANDING_FORMAT", "taobao")
    assert env_setting("landing_format") == "taobao"
    monkeypatch.setenv("DMP_LANDING_FORMAT", "")  # empty is unset
    assert env_setting("landing_format") == "jsonl"


def test_path_settings_are_absolute_and_uris_untouched(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DMP_LAKE", "lake")
    assert env_setting("lake") == str(tmp_path / "lake")
    monkeypatch.setenv("DMP_LAKE", "s3a://bucket/lake")
    assert env_setting("lake") == "s3a://bucket/lake"
    monkeypatch.delenv("DMP_LAKE")
    root = source_checkout()
    assert root is not None and (root / "dags").is_dir()  # the tests run from the checkout
    assert env_setting("lake") == str(root / "lakehouse")
    assert env_setting("jobs_dir") == str(root / "jobs")


def test_every_setting_has_a_dmp_or_spark_variable_and_help() -> None:
    for name, spec in SETTINGS.items():
        assert spec.env.startswith(("DMP_", "PYSPARK_")), name
        assert spec.help, name


def _fake_airflow(monkeypatch: pytest.MonkeyPatch, get) -> None:  # noqa: ANN001 - Variable.get stand-in
    sdk = types.ModuleType("airflow.sdk")
    sdk.Variable = types.SimpleNamespace(get=get)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "airflow.sdk", sdk)


def test_variable_wins_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DMP_SPARK_MASTER", "spark://env:7077")
    _fake_airflow(monkeypatch, lambda key, default=None: {"dmp_spark_master": "yarn"}.get(key, default))
    assert settings.setting("spark_master") == "yarn"
    assert settings.setting("landing_format") == env_setting("landing_format")


def test_a_failed_variable_lookup_fails_instead_of_using_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(key: str, default: object = None) -> object:
        raise PermissionError("secrets backend denied access")

    _fake_airflow(monkeypatch, refuse)
    with pytest.raises(settings.SettingLookupError, match="Airflow Variable dmp_lake: lookup failed"):
        settings.setting("lake")


def test_default_args_read_the_retry_knobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DMP_AIRFLOW_RETRIES", raising=False)
    monkeypatch.setenv("DMP_AIRFLOW_RETRY_DELAY", "2")
    args = settings.default_args()
    assert (args["retries"], args["retry_delay"], args["owner"]) == (2, timedelta(seconds=2), "dmp-data-eng")
