"""Great Expectations gates between the pipeline steps.

Suites are versioned JSON files in ``dmp/steps/expectations/<suite>.json``, shipped with the
package and found through it (``expectations/`` at the top of the checkout links to them; GX 1.x
suite layout: ``name``,
``meta``, ``expectations: [{type, kwargs, meta}]``). ``run_gate`` validates a Spark DataFrame with an
ephemeral context (nothing is written to disk) and raises ``QualityGateError`` naming every failed
expectation, its column(s) and a few offending values. The DataFrame is cached for the duration of
the gate because every expectation is one Spark job over it.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import date
from importlib.resources import files
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from dmp.contracts import tables
from dmp.contracts.errors import DmpError, QualityGateError
from dmp.contracts.settings import env_setting
from dmp.spark.progress import phase

# DMP_EXPECTATIONS_DIR, else the suites installed with this package (editable or not).
EXPECTATIONS_DIR = Path(env_setting("expectations_dir") or str(files("dmp.steps") / "expectations"))
# Which suite gates which lake table (used by `dmp validate --table`).
TABLE_SUITES: dict[str, str] = {
    tables.EVENTS: "bronze_events",
    tables.USER_DAILY: "silver_user_daily",
    tables.USER_TAGS: "gold_user_tags",
}
SUITES: tuple[str, ...] = tuple(TABLE_SUITES.values())
MAX_VALUES_SHOWN = 5

_context: Any = None


def _import_gx() -> Any:
    """great_expectations, imported with usage statistics off (read when it is first imported)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx

    return gx


def suite_path(suite: str) -> Path:
    return EXPECTATIONS_DIR / f"{suite}.json"


def load_suite_config(suite: str) -> dict[str, Any]:
    """The suite's JSON, checked for the fields we rely on (errors name the file and the field)."""
    path = suite_path(suite)
    if not path.is_file():
        raise DmpError(f"{path}: expectation suite {suite!r} not found (known suites: {', '.join(SUITES)})")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DmpError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("expectations"), list):
        raise DmpError(f"{path}: expected an object with an `expectations` list")
    for i, exp in enumerate(config["expectations"]):
        if (
            not isinstance(exp, dict)
            or not isinstance(exp.get("type"), str)
            or not isinstance(exp.get("kwargs"), dict)
        ):
            raise DmpError(f"{path}: expectations[{i}] needs a string `type` and an object `kwargs`")
    return config


def build_suite(suite: str) -> Any:
    """An ``ExpectationSuite`` built from the JSON; an unknown or mis-configured expectation is an error.

    (GX's own ``ExpectationSuite(expectations=[dict, ...])`` only logs bad entries and drops them,
    which would silently weaken a gate.)
    """
    gx = _import_gx()
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    config = load_suite_config(suite)
    expectations = []
    for i, exp in enumerate(config["expectations"]):
        try:
            expectations.append(
                ExpectationConfiguration(
                    type=exp["type"], kwargs=exp["kwargs"], meta=exp.get("meta")
                ).to_domain_obj()
            )
        except Exception as exc:  # GX raises several unrelated types for a bad config
            raise DmpError(
                f"{suite_path(suite)}: expectations[{i}] ({exp['type']}) is invalid: {exc}"
            ) from exc
    return gx.ExpectationSuite(
        name=config.get("name", suite), expectations=expectations, meta=config.get("meta")
    )


def _get_context() -> Any:
    global _context
    if _context is None:
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        _context = gx.get_context(mode="ephemeral")
        # Progress bars would flood the logs of every spark-submit/Airflow task.
        _context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return _context


def validate_df(df: DataFrame, suite: str) -> Any:
    """Run the suite on ``df``; returns GX's ``ExpectationSuiteValidationResult``."""
    gx_suite = build_suite(suite)
    context = _get_context()
    name = f"{suite}_{uuid.uuid4().hex[:8]}"
    source = context.data_sources.add_or_update_spark(name=f"dmp_{name}")
    batch_def = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe(name)
    cached = df.persist()
    try:
        batch = batch_def.get_batch(batch_parameters={"dataframe": cached})
        return batch.validate(
            gx_suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": MAX_VALUES_SHOWN}
        )
    finally:
        cached.unpersist()
        context.data_sources.delete(name=f"dmp_{name}")


def _describe_failure(res: Any) -> str:
    cfg = res.expectation_config
    kwargs = dict(cfg.kwargs)
    columns = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_A")
    where = (
        f" on column {columns!r}" if isinstance(columns, str) else f" on columns {columns}" if columns else ""
    )
    exc_info = res.exception_info or {}
    if exc_info.get("raised_exception"):
        return f"{cfg.type}{where}: could not run: {exc_info.get('exception_message')}"
    result = res.result or {}
    details = []
    if "unexpected_count" in result:
        details.append(f"{result.get('unexpected_count')} unexpected of {result.get('element_count')} rows")
    values = result.get("partial_unexpected_list")
    if values:
        details.append(f"e.g. {values[:MAX_VALUES_SHOWN]!r}")
    if "observed_value" in result:
        details.append(f"observed {result['observed_value']!r}")
    expected = {k: v for k, v in kwargs.items() if k not in ("column", "column_list", "batch_id")}
    if expected:
        details.append(f"expected {expected}")
    return f"{cfg.type}{where}: " + "; ".join(details)


def run_gate(df: DataFrame, suite: str) -> None:
    """Validate ``df`` against ``<suite>.json``; raise QualityGateError listing what failed."""
    with phase("gate", f"Great Expectations suite {suite}"):
        result = validate_df(df, suite)
    if result.success:
        return
    failures = [_describe_failure(r) for r in result.results if not r.success]
    raise QualityGateError(
        f"quality gate {suite!r} ({suite_path(suite)}) failed {len(failures)} of {len(result.results)} "
        "expectations:\n  - " + "\n  - ".join(failures)
    )


def validate_table(spark: SparkSession, lake: str, table: str, days: list[date]) -> tuple[int, str]:
    """Gate the date partitions ``days`` of a lake table (``dmp validate`` / jobs/validate.py).

    Returns (rows validated, suite name); raises QualityGateError on failure and DmpError when the
    table is unknown, missing, or holds no rows for those dates.
    """
    from pyspark.sql import functions as F

    from dmp.spark import lake as lk

    if table not in TABLE_SUITES:
        raise DmpError(f"--table: expected one of {', '.join(TABLE_SUITES)}, got {table!r}")
    if not lk.table_exists(spark, lake, table):
        raise DmpError(f"table {tables.table_path(lake, table)} does not exist")
    date_col = "as_of_date" if table == tables.USER_TAGS else "event_date"
    df = lk.read_table(spark, lake, table).filter(F.col(date_col).isin([F.lit(d).cast("date") for d in days]))
    rows = df.count()
    if rows == 0:
        raise DmpError(f"{tables.table_path(lake, table)} has no rows for {days[0]} .. {days[-1]}")
    suite = TABLE_SUITES[table]
    run_gate(df, suite)
    return rows, suite
