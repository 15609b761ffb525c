"""docs/quarantine.md stays complete and true: every reason is listed with an example that gets it.

Record examples are run through the ingest transforms (identity examples through the identity
transforms); file examples of the two schema reasons through ``parquet_schema_problem``. The record
table's order is the order of precedence, so it must be the order of ``REASONS``.
"""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from dmp.transforms.identities import (
    parse_identity_lines,
    with_identity_reason,
    with_is_csv,
)
from dmp.transforms.ingest import (
    FIELD_MAX_CHARS,
    FILE_REASONS,
    REASONS,
    TimeBounds,
    parquet_schema_problem,
    parse_jsonl,
    parse_taobao,
    with_event_status,
    with_reason,
    with_typed_columns,
)
from dmp.transforms.quarantine import RAW_BASE64_PREFIX
from tests.conftest import REPO_ROOT

# Every documented example goes through a real ingest (~5 s each): make test runs them, make test-fast does not.
pytestmark = pytest.mark.slow

DOC = (REPO_ROOT / "docs" / "quarantine.md").read_text(encoding="utf-8")
NOW = datetime(2026, 3, 10, tzinfo=UTC)
CODE = re.compile(r"`([^`]+)`")


def _section(heading: str) -> list[list[str]]:
    """The table rows (cells, header and rule excluded) of the ``## heading`` section."""
    body = DOC.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in body.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:] if not row[0].strip().startswith("---")]


def _reason_cell(cell: str) -> str:
    match = CODE.fullmatch(cell)
    assert match, f"the reason cell {cell!r} is not one code span"
    return match.group(1)


def _pattern(reason: str) -> re.Pattern[str]:
    """``missing_field:<name>`` -> a regex matching ``missing_field:user_id``."""
    return re.compile(
        "".join(".+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[^>]+>)", reason))
    )


RECORDS = _section("Record reasons")
FILES = _section("File reasons")
IDENTITIES = _section("Identity and suppression files")


def test_every_record_and_file_reason_is_documented_in_order():
    assert [_reason_cell(row[0]) for row in RECORDS] == list(REASONS)
    assert [_reason_cell(row[0]) for row in FILES] == list(FILE_REASONS)
    # record and identity rows: reason | format | meaning | example; file rows: reason | meaning | example | raw
    for reason, meaning, example in [(r[0], r[2], r[3]) for r in RECORDS + IDENTITIES] + [
        (r[0], r[1], r[2]) for r in FILES
    ]:
        assert meaning, f"{reason}: no meaning"
        assert CODE.findall(example), f"{reason}: no example"


def test_field_limits_table_equals_the_code():
    assert {row[0]: int(row[1]) for row in _section("Field limits")} == FIELD_MAX_CHARS


def _lines(spark: SparkSession, values: list[str], source_file: str) -> DataFrame:
    return spark.createDataFrame([(v, source_file) for v in values], "value string, source_file string")


def _unbased(raw: str) -> str:
    if raw.startswith(RAW_BASE64_PREFIX):
        return base64.b64decode(raw.removeprefix(RAW_BASE64_PREFIX), validate=True).decode("utf-8")
    return raw


def _event_reasons(spark: SparkSession, fmt: str, values: list[str]) -> list[str | None]:
    """Each example line's reason (None = accepted), through the same transforms as the step."""
    parse = parse_taobao if fmt == "taobao" else parse_jsonl
    checked = (
        _lines(spark, values, "doc.txt")
        .transform(parse)
        .transform(with_typed_columns)
        .transform(with_reason, TimeBounds.for_format(fmt, NOW))
    )
    empty_lake = spark.createDataFrame([], "event_id string, content_hash string")
    rows = with_event_status(checked, empty_lake).select("raw", "reason").collect()
    # a bad_encoding row keeps its bytes as base64: decoded, it is the example line again
    by_raw = {_unbased(r.raw): r.reason for r in rows}
    return [by_raw[v] for v in values]


@pytest.mark.parametrize("row", RECORDS, ids=lambda row: _reason_cell(row[0]))
def test_each_record_example_gets_its_reason(spark, row):
    reason, formats, _, example = row
    expected = _pattern(_reason_cell(reason))
    values = CODE.findall(example)
    fmt = "taobao" if formats.split(",")[0].strip() == "taobao" else "jsonl"
    got = _event_reasons(spark, fmt, values)
    # every line but the last is accepted (the conflict's winner); the last gets the reason
    assert got[:-1] == [None] * (len(values) - 1)
    assert got[-1] is not None and expected.fullmatch(got[-1]), (got, example)


@pytest.mark.parametrize("row", IDENTITIES, ids=lambda row: f"{_reason_cell(row[0])}-{row[1]}")
def test_each_identity_example_gets_its_reason(spark, row):
    reason, formats, _, example = row
    source_file = "ids.csv" if "csv" in formats.split(",")[0] else "ids.jsonl"
    checked = (
        _lines(spark, CODE.findall(example), source_file)
        .transform(with_is_csv)
        .transform(parse_identity_lines)
        .transform(with_identity_reason)
    )
    got = [r.reason for r in checked.collect()]
    assert len(got) == 1 and got[0] is not None and _pattern(_reason_cell(reason)).fullmatch(got[0]), got


@pytest.mark.parametrize(
    "row",
    [r for r in FILES if _reason_cell(r[0]).startswith(("bad_schema:missing", "bad_schema:bad_type"))],
    ids=lambda row: _reason_cell(row[0]),
)
def test_schema_examples_get_their_file_reason(spark, row):
    (ddl,) = CODE.findall(row[2])
    got = parquet_schema_problem(spark.createDataFrame([], ddl).schema)
    assert got is not None and _pattern(_reason_cell(row[0])).fullmatch(got), got
