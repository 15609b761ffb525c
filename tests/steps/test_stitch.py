"""The stitch step on small lakes: tables, idempotent reruns (same versions, same rows), stable ids,
the CLI command, and the generator's planted persons and hubs found exactly."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import typer
from pyspark.sql import SparkSession
from typer.testing import CliRunner

from dmp.cli.identities import register
from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.identity_guards import (
    RULE_BLOCKED_VALUE,
    RULE_IDENTIFIER_CAP,
    ZERO_DEVICE_ID,
    IdentityGuards,
)
from dmp.demo.generate import generate
from dmp.demo.identities import HUB_ACCOUNTS, planted_truth
from dmp.spark import lake as lk
from dmp.spark import schemas
from dmp.steps.identities import run_ingest_identities
from dmp.steps.stitch import run_stitch
from dmp.transforms.stitching import person_id_for, value_hash_for

D1, D2, D3 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
HUB = [f"h{i:02d}" for i in range(25)]
ROWS = [
    ("a", "phone", "138 1234 5678"),
    ("b", "phone", "+8613812345678"),
    ("b", "oaid", "9b1d0c3e-2f4a-4b5c-8d6e-7f8091a2b3c4"),
    ("c", "oaid", "9B1D0C3E-2F4A-4B5C-8D6E-7F8091A2B3C4"),
    ("d", "email", "dora@qq.com"),
    ("e", "idfa", ZERO_DEVICE_ID),
    *[(u, "phone", "+86 139 0000 0002") for u in HUB],
]
OUTPUTS = (tables.PERSONS, tables.PERSON_IDENTIFIERS, tables.IDENTITY_VIOLATIONS)


def _write_identities(spark: SparkSession, lake: str, rows: list[tuple[str, str, str]]) -> None:
    df = spark.createDataFrame([(*r, "ids.jsonl", None) for r in rows], schemas.IDENTITIES)
    lk.overwrite_table(df, lake, tables.IDENTITIES)


def _persons(spark: SparkSession, lake: str) -> dict[str, tuple[str, date]]:
    return {
        r.user_id: (r.person_id, r.first_seen_date)
        for r in lk.read_table(spark, lake, tables.PERSONS).collect()
    }


def _rows(spark: SparkSession, lake: str) -> dict[str, set[tuple]]:
    return {t: {tuple(r) for r in lk.read_table(spark, lake, t).collect()} for t in OUTPUTS}


def _versions(spark: SparkSession, lake: str) -> dict[str, int | None]:
    return {t: lk.table_version(spark, lake, t) for t in OUTPUTS}


def test_stitch_writes_persons_and_reruns_write_nothing(spark: SparkSession, lake: str) -> None:
    with pytest.raises(
        DmpError, match=r"silver/identities does not exist: run `dmp ingest-identities` first"
    ):
        run_stitch(spark, lake, D1, IdentityGuards())
    _write_identities(spark, lake, ROWS)

    first = run_stitch(spark, lake, D1, IdentityGuards())
    abc = person_id_for("a")
    assert (first.accounts, first.persons, first.multi_account_persons) == (5 + 25, 3 + 25, 1)
    assert first.violations == {RULE_IDENTIFIER_CAP: 1, RULE_BLOCKED_VALUE: 1}
    assert first.person_identifiers == len(ROWS) - 25 - 1
    assert first.written == dict.fromkeys(OUTPUTS, True)
    persons = _persons(spark, lake)
    assert {u: persons[u] for u in "abcde"} == {
        "a": (abc, D1), "b": (abc, D1), "c": (abc, D1), "d": (person_id_for("d"), D1), "e": (person_id_for("e"), D1)
    }  # fmt: skip
    assert persons["h07"] == (person_id_for("h07"), D1)
    violations = lk.read_table(spark, lake, tables.IDENTITY_VIOLATIONS).collect()
    assert {tuple(r) for r in violations} == {
        (D1, "phone", value_hash_for("+8613900000002"), 25, RULE_IDENTIFIER_CAP),
        (D1, "idfa", value_hash_for(ZERO_DEVICE_ID), 1, RULE_BLOCKED_VALUE),
    }
    versions, rows = _versions(spark, lake), _rows(spark, lake)

    again = run_stitch(spark, lake, D1, IdentityGuards())
    assert again.written == dict.fromkeys(OUTPUTS, False)
    assert _versions(spark, lake) == versions and _rows(spark, lake) == rows
    assert (again.persons, again.rounds, again.violations) == (first.persons, first.rounds, first.violations)

    # the next day with the same identities: the snapshots stay (first_seen carried), a new partition
    next_day = run_stitch(spark, lake, D2, IdentityGuards())
    assert next_day.written == {
        tables.PERSONS: False,
        tables.PERSON_IDENTIFIERS: False,
        tables.IDENTITY_VIOLATIONS: True,
    }
    assert _rows(spark, lake)[tables.PERSONS] == rows[tables.PERSONS]
    dates = {r.run_date for r in lk.read_table(spark, lake, tables.IDENTITY_VIOLATIONS).collect()}
    assert dates == {D1, D2}

    # day 3: d joins a..c (merge keeps a's id), the hub shrinks under the cap and becomes one person
    _write_identities(spark, lake, [*ROWS[:-10], ("d", "email", "x@qq.com"), ("c", "email", " X@QQ.com")])
    third = run_stitch(spark, lake, D3, IdentityGuards())
    assert third.written == dict.fromkeys(OUTPUTS, True)
    persons = _persons(spark, lake)
    assert {persons[u][0] for u in "abcd"} == {abc} and persons["d"][1] == D1
    assert {persons[u] for u in HUB[:15]} == {(person_id_for("h00"), D1)}
    assert third.violations == {RULE_BLOCKED_VALUE: 1}
    d3 = {
        tuple(r) for r in lk.read_table(spark, lake, tables.IDENTITY_VIOLATIONS).collect() if r.run_date == D3
    }
    assert d3 == {(D3, "idfa", value_hash_for(ZERO_DEVICE_ID), 1, RULE_BLOCKED_VALUE)}


def test_cli_stitches_each_date_with_the_guards_file(spark: SparkSession, lake: str, tmp_path: Path) -> None:
    _write_identities(spark, lake, ROWS)
    app = typer.Typer()
    register(app)
    guards = tmp_path / "guards.yaml"
    guards.write_text("max_accounts_per_identifier: 30\n")  # the 25-account phone links
    result = CliRunner().invoke(
        app,
        [
            "identities",
            "stitch",
            "--lake",
            lake,
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-02",
            "--guards",
            str(guards),
        ],
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "stitch 2026-03-01: 30 accounts -> 4 persons (2 with several accounts)" in out
    assert "stitch 2026-03-02: 30 accounts -> 4 persons" in out and "wrote ops/identity_violations" in out
    assert "violations: blocked_value 1;" in out
    guards.write_text("max_accounts_per_identifier: 0\n")
    bad = CliRunner().invoke(
        app, ["identities", "stitch", "--lake", lake, "--date", "2026-03-01", "--guards", str(guards)]
    )
    assert isinstance(bad.exception, DmpError)
    assert str(bad.exception).startswith(f"{guards}: invalid identity guards: max_accounts_per_identifier:")


def test_the_generators_planted_persons_and_hubs_are_found_exactly(
    spark: SparkSession, lake: str, tmp_path: Path
) -> None:
    out = tmp_path / "gen"
    # three chunks (one of them short), so the planting runs per chunk as in big datasets
    generate(out, 500, 2, seed=5, campaign=False, chunk_users=200)
    truth = planted_truth(out)
    assert len(truth.persons) >= 3 and max(len(p) for p in truth.persons) >= 3
    # one device farm per chunk: each holds at least HUB_ACCOUNTS Android users
    hubs = [n for (t, _v), (n, rule) in truth.violations.items() if rule == RULE_IDENTIFIER_CAP]
    assert hubs == [HUB_ACCOUNTS] * 3
    assert {k[0] for k, (_n, rule) in truth.violations.items() if rule == RULE_BLOCKED_VALUE} == {
        "idfa",
        "oaid",
    }

    run_ingest_identities(spark, lake, str(out))
    result = run_stitch(spark, lake, D1, IdentityGuards())
    by_person: dict[str, set[str]] = {}
    for user, (pid, _seen) in _persons(spark, lake).items():
        by_person.setdefault(pid, set()).add(user)
    multi = {frozenset(m) for m in by_person.values() if len(m) > 1}
    assert multi == truth.persons
    assert result.multi_account_persons == len(truth.persons)
    violations = {
        (r.id_type, r.value_hash): (r.accounts, r.rule)
        for r in lk.read_table(spark, lake, tables.IDENTITY_VIOLATIONS).collect()
    }
    assert violations == {(t, value_hash_for(v)): n_rule for (t, v), n_rule in truth.violations.items()}
