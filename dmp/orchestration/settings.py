"""Settings of the Airflow side: Airflow Variable ``dmp_<name>``, else environment, else default.

The environment variables and defaults are those of ``dmp.contracts.settings`` (one table for the
whole package); this module only puts the Airflow Variable in front, and the DAG-wide task defaults.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from dmp.contracts.settings import env_setting


class SettingLookupError(RuntimeError):
    """An Airflow Variable could not be read (other than "not set"): the task fails, naming it."""


def _variable(name: str) -> str | None:
    """Airflow Variable ``dmp_<name>``; None when it is not set or Airflow is not installed."""
    try:
        from airflow.sdk import Variable
    except ImportError:  # the CLI and the Spark jobs run without Airflow too
        return None
    key = f"dmp_{name}"
    try:
        value = Variable.get(key, default=None)
    except Exception as exc:  # a backend refused or failed: never silently use the default instead
        raise SettingLookupError(
            f"Airflow Variable {key}: lookup failed ({type(exc).__name__}: {exc})"
        ) from exc
    return None if value in (None, "") else str(value)


def setting(name: str) -> str:
    """Airflow Variable ``dmp_<name>`` if set, else :func:`dmp.contracts.settings.env_setting`.

    Falls back only when the Variable does not exist (design.md §7); call it inside tasks, not at
    DAG parse time (a Variable lookup per parse would load the metadata database).
    """
    return _variable(name) or env_setting(name)


def default_args(owner: str = "dmp-data-eng") -> dict[str, Any]:
    """Retries with exponential backoff for every task; knobs so tests can fail fast.

    ``DMP_AIRFLOW_RETRIES`` / ``DMP_AIRFLOW_RETRY_DELAY`` (seconds) are read when the DAG file is
    parsed; production keeps the defaults (2 retries, 1 min then 2 min, capped at 30 min).
    """
    return {
        "owner": owner,
        "retries": int(env_setting("airflow_retries")),
        "retry_delay": timedelta(seconds=float(env_setting("airflow_retry_delay"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        "execution_timeout": timedelta(hours=2),
    }
