"""Identity stitching on a hand-made identity graph: exact components, violations and stable ids.

The fixture: a chain acc_a -phone- acc_b -device- acc_c (the phone written two ways, the device in
two cases), a hub phone on 500 accounts, an all-zero IDFA on two accounts, a blocked test phone,
a repeated-digit IMEI, and two persons (x, y) that merge on day 2, y being the older one.
"""

from __future__ import annotations

import random
from datetime import date

import pytest
from pyspark.sql import DataFrame, SparkSession

from dmp.contracts.identity_guards import (
    RULE_BLOCKED_PATTERN,
    RULE_BLOCKED_VALUE,
    RULE_IDENTIFIER_CAP,
    RULE_PERSON_CAP,
    ZERO_DEVICE_ID,
    IdentityGuards,
)
from dmp.transforms.stitching import (
    Stitched,
    connected_components,
    match_key,
    person_id_for,
    stitch_identities,
    value_hash_for,
)

DAY0, DAY1, DAY2 = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)
HUB_PHONE = "+86 139-0000-0001"
HUB = [f"hub{i:03d}" for i in range(500)]
DEVICE = "6f1e0a4c-3b2d-4e5f-8a9b-0c1d2e3f4a5b"

Y_PERSON = [("y1", "imei", "356938035643809"), ("y2", "imei", " 356938035643809 ")]
CHAIN = [
    ("acc_a", "phone", "138 1234 5678"),
    ("acc_a", "email", "Anna@Example.com"),
    ("acc_b", "phone", "+86 138-1234-5678"),
    ("acc_b", "oaid", DEVICE),
    ("acc_c", "oaid", DEVICE.upper()),
]
X_PERSON = [("x1", "email", "xi@qq.com"), ("x2", "email", " XI@qq.com")]
NOISE = [
    *[(u, "phone", HUB_PHONE) for u in HUB],
    ("hub000", "email", "hub.owner@163.com"),  # the hub does not link this email's account to others
    ("z1", "idfa", ZERO_DEVICE_ID),
    ("z2", "idfa", "00000000000000000000000000000000"),  # all zero without dashes: the same value
    ("z2", "phone", "13800138000"),  # blocked test number
    ("z3", "imei", "111111111111111"),  # one digit repeated
    ("solo", "email", "solo@sina.com"),
    ("bad", "phone", "12345"),  # not a phone number: no key, links nobody, kept as the account's
]
MERGE = [
    ("x2", "oaid", "aa11bb22-cc33-dd44-ee55-ff6677889900"),
    ("y2", "oaid", "AA11BB22-CC33-DD44-EE55-FF6677889900"),
]


def _ids(spark: SparkSession, rows: list[tuple[str, str, str]]) -> DataFrame:
    return spark.createDataFrame(rows, "user_id string, id_type string, id_value string")


def _run(
    spark: SparkSession,
    rows: list[tuple[str, str, str]],
    previous: DataFrame | None,
    day: date,
    guards: IdentityGuards | None = None,
) -> tuple[Stitched, dict[str, tuple[str, date]]]:
    out = stitch_identities(_ids(spark, rows), previous, day, guards or IdentityGuards())
    persons = {r.user_id: (r.person_id, r.first_seen_date) for r in out.persons_df.collect()}
    return out, persons


def _components(persons: dict[str, tuple[str, date]]) -> set[frozenset[str]]:
    by_person: dict[str, set[str]] = {}
    for user, (pid, _seen) in persons.items():
        by_person.setdefault(pid, set()).add(user)
    return {frozenset(members) for members in by_person.values()}


def _violations(out: Stitched) -> set[tuple]:
    return {(r.run_date, r.id_type, r.value_hash, r.accounts, r.rule) for r in out.violations_df.collect()}


def _identifiers(out: Stitched) -> set[tuple[str, str, str]]:
    return {(r.person_id, r.id_type, r.id_value) for r in out.person_identifiers_df.collect()}


def _singletons(users: list[str]) -> set[frozenset[str]]:
    return {frozenset([u]) for u in users}


def test_match_keys_join_formats_and_name_zero_devices() -> None:
    assert match_key("phone", "138 1234 5678") == match_key("phone", "+86 138-1234-5678") == "+8613812345678"
    assert match_key("oaid", DEVICE.upper()) == DEVICE
    assert match_key("idfa", "00000000000000000000000000000000") == ZERO_DEVICE_ID
    assert match_key("phone", "12345") is None


def test_day_by_day_components_violations_and_stable_ids(spark: SparkSession) -> None:
    day0, p0 = _run(spark, Y_PERSON, None, DAY0)
    assert p0 == {"y1": (person_id_for("y1"), DAY0), "y2": (person_id_for("y1"), DAY0)}
    assert _violations(day0) == set()

    day1_rows = [*Y_PERSON, *CHAIN, *X_PERSON, *NOISE]
    day1, p1 = _run(spark, day1_rows, day0.persons_df, DAY1)
    assert _components(p1) == {
        frozenset({"y1", "y2"}),
        frozenset({"acc_a", "acc_b", "acc_c"}),  # phone in two formats, device in two cases
        frozenset({"x1", "x2"}),
        *_singletons([*HUB, "z1", "z2", "z3", "solo", "bad"]),  # the hub and the blocked values link nobody
    }
    assert p1["y1"] == (person_id_for("y1"), DAY0)  # unchanged person, unchanged id and first_seen
    assert p1["acc_c"] == (person_id_for("acc_a"), DAY1)  # oldest member: same day, smallest user_id
    assert p1["x2"] == (person_id_for("x1"), DAY1)
    assert p1["hub499"] == (person_id_for("hub499"), DAY1)
    assert _violations(day1) == {
        (DAY1, "phone", value_hash_for("+8613900000001"), 500, RULE_IDENTIFIER_CAP),
        (DAY1, "idfa", value_hash_for(ZERO_DEVICE_ID), 2, RULE_BLOCKED_VALUE),
        (DAY1, "phone", value_hash_for("+8613800138000"), 1, RULE_BLOCKED_VALUE),
        (DAY1, "imei", value_hash_for("111111111111111"), 1, RULE_BLOCKED_PATTERN),
    }
    identifiers = _identifiers(day1)
    # no violating identifier is anybody's; everything else is, raw as in silver/identities
    assert {(t, v) for _p, t, v in identifiers} >= {("phone", "12345"), ("email", "hub.owner@163.com")}
    assert not {(t, v) for _p, t, v in identifiers} & {("phone", HUB_PHONE), ("idfa", ZERO_DEVICE_ID)}
    assert {(t, v) for p, t, v in identifiers if p == person_id_for("acc_a")} == {
        (t, v) for _u, t, v in CHAIN
    }
    assert len(identifiers) == len(day1_rows) - 500 - 4  # hub phones, both zero idfas, 138…, 111…

    # Day 2: x and y merge through a shared device; acc_c drops the shared device (split) and a new
    # account acc_0 joins acc_a through acc_a's email.
    day2_rows = [r for r in day1_rows if r != ("acc_c", "oaid", DEVICE.upper())]
    day2_rows += [*MERGE, ("acc_c", "email", "c@126.com"), ("acc_0", "email", "anna@example.com")]
    day2, p2 = _run(spark, day2_rows, day1.persons_df, DAY2)
    assert _components(p2) == {
        frozenset({"x1", "x2", "y1", "y2"}),
        frozenset({"acc_0", "acc_a", "acc_b"}),
        frozenset({"acc_c"}),
        *_singletons([*HUB, "z1", "z2", "z3", "solo", "bad"]),
    }
    # the merge keeps the oldest member's id: y1 was first seen on day 0, x1 only on day 1
    assert {p2[u][0] for u in ("x1", "x2", "y1", "y2")} == {person_id_for("y1")}
    assert p2["x1"][1] == DAY1 and p2["y2"][1] == DAY0
    # a newer account joining keeps the person's id although "acc_0" < "acc_a"; the split-off part
    # without the oldest member gets its own
    assert p2["acc_0"] == (person_id_for("acc_a"), DAY2)
    assert p2["acc_c"] == (person_id_for("acc_c"), DAY1)
    assert _violations(day2) == {(DAY2, *v[1:]) for v in _violations(day1)}
    # every other person keeps its id
    assert {u: p2[u] for u in p1 if u not in {"x1", "x2", "acc_c"}} == {
        u: p1[u] for u in p1 if u not in {"x1", "x2", "acc_c"}
    }


def test_person_cap_unlinks_an_oversized_component(spark: SparkSession) -> None:
    # six accounts chained by five phones: one component of 6 > 4 accounts; s and t stay a pair
    chain = [(f"c{i}", "phone", f"1391000000{i}") for i in range(5)]
    chain += [(f"c{i + 1}", "phone", f"+86 1391000000{i}") for i in range(5)]
    pair = [("s", "email", "s@qq.com"), ("t", "email", "S@qq.com")]
    guards = IdentityGuards(max_accounts_per_identifier=3, max_accounts_per_person=4)
    out, persons = _run(spark, [*chain, *pair], None, DAY1, guards)
    assert _components(persons) == {frozenset({"s", "t"}), *_singletons([f"c{i}" for i in range(6)])}
    assert persons["c3"] == (person_id_for("c3"), DAY1)
    assert _violations(out) == {
        (DAY1, "phone", value_hash_for(f"+861391000000{i}"), 2, RULE_PERSON_CAP) for i in range(5)
    }
    assert {(p, v) for p, _t, v in _identifiers(out)} == {
        (person_id_for("s"), "s@qq.com"),
        (person_id_for("s"), "S@qq.com"),
    }
    # with the default caps the chain is one person
    _out, persons = _run(spark, [*chain, *pair], None, DAY1)
    assert {persons[f"c{i}"][0] for i in range(6)} == {person_id_for("c0")}


def _union_find(edges: list[tuple[int, int]]) -> dict[int, int]:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return {x: find(x) for x in parent}


@pytest.mark.parametrize("shape", ["path", "random"])
def test_connected_components_match_union_find(spark: SparkSession, shape: str) -> None:
    rng = random.Random(5)
    if shape == "path":  # a long chain in shuffled order: the worst case for label propagation
        order = rng.sample(range(10_000, 10_300), 300)
        edges = list(zip(order, order[1:], strict=False))
    else:
        edges = [(rng.randrange(400), rng.randrange(400)) for _ in range(300)]
    df = spark.createDataFrame(edges, "src long, dst long")
    labels, rounds = connected_components(df)
    got = {r.node: r.component for r in labels.collect()}
    expected = _union_find([(a, b) for a, b in edges if a != b])
    assert got == expected
    assert 1 <= rounds <= 12


def test_connected_components_of_a_star_and_of_nothing(spark: SparkSession) -> None:
    star = spark.createDataFrame([(5, 1), (1, 9), (7, 1)], "src long, dst long")
    labels, rounds = connected_components(star)
    assert {r.node: r.component for r in labels.collect()} == {1: 1, 5: 1, 7: 1, 9: 1}
    assert rounds == 1
    empty = spark.createDataFrame([], "src long, dst long")
    labels, rounds = connected_components(empty)
    assert labels.count() == 0 and rounds == 0
