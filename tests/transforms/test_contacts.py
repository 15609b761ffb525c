"""Priority groups and frequency caps (dmp.transforms.contacts) on small inline DataFrames.

Known answers worked out by hand: a Venn of three packs under A > B > C, a person qualifying every
day for 21 days under a 2-per-7-days cap (delivered on days 1, 2, 8, 9, 15, 16), a backfill of
earlier days under later deliveries, and the tie-break of unlisted packs by name.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dmp.contracts.channels import Channel, FrequencyCap
from dmp.spark.schemas import AUDIENCE_PACKS
from dmp.transforms.contacts import (
    filter_by_frequency_cap,
    filter_by_priority,
    filter_pack_treatment,
    priority_claims,
    with_contact_outcome,
)

DAY1 = date(2026, 4, 1)
CAP = FrequencyCap(max=2, days=7)


def channel(priority: list[str] | None = None, cap: FrequencyCap | None = None) -> Channel:
    return Channel(
        type="ad",
        destination="file:///tmp/ads",
        id_types=["oaid"],
        hash={"oaid": "md5"},
        priority=priority or [],
        frequency_cap=cap,
    )


def day(n: int) -> date:
    return DAY1 + timedelta(days=n - 1)


def pack_rows(
    segment: str, run_date: date, treatment: list[str], holdout: list[str] = (), persons: dict | None = None
) -> list[tuple]:
    persons = persons or {}
    return [
        (segment, run_date, u, g, 1.0, "r", f"hash-{segment}", "rule", True, persons.get(u))
        for g, users in (("treatment", treatment), ("holdout", holdout))
        for u in users
    ]


def packs(spark, rows: list[tuple]):
    return spark.createDataFrame(rows, AUDIENCE_PACKS)


def contacts(spark, delivered: list[tuple[str, date, str]]):
    """(contact_id, run_date, segment) deliveries, as the step reads them from ops/channel_contacts."""
    return spark.createDataFrame(delivered, "contact_id string, run_date date, segment string")


def serve_day(spark, packs_df, ch: Channel, run_date: date, history: list[tuple[str, date, str]]):
    """One channel's day as the delivery step runs it: packs in the channel's order, each seeing the
    deliveries of the packs before it. Returns ({segment: kept users}, {segment: {reason: users}})."""
    segments = sorted({r["segment"] for r in packs_df.select("segment").distinct().collect()})
    ranked = ch.rank_segments(segments)
    kept: dict[str, set[str]] = {}
    lost: dict[str, dict[str, int]] = {}
    today: list[tuple[str, date, str]] = []
    for i, seg in enumerate(ranked):
        claims_df = priority_claims(packs_df, run_date, ranked[:i] if ch.priority else [])
        outcome_df = with_contact_outcome(
            filter_pack_treatment(packs_df, seg, run_date),
            claims_df,
            contacts(spark, history + today),
            run_date,
            ch.frequency_cap,
        )
        rows = outcome_df.collect()
        kept[seg] = {r["user_id"] for r in rows if r["lost_to"] is None}
        counts: dict[str, int] = {}
        for r in rows:
            if r["lost_to"] is not None:
                counts[r["lost_to"]] = counts.get(r["lost_to"], 0) + 1
        lost[seg] = counts
        today += [(r["contact_id"], run_date, seg) for r in rows if r["lost_to"] is None]
    return kept, lost


# A > B > C. hA is held out of A and treated in B; hB held out of B and treated in C; the accounts
# p1a (in A) and p1b (in B) are one person P1.
VENN = {
    "a": (["a1", "a2", "ab", "abc", "ac", "p1a"], ["hA"]),
    "b": (["ab", "abc", "b1", "b2", "bc", "hA", "p1b"], ["hB"]),
    "c": (["abc", "ac", "bc", "c1", "hB"], ["hC"]),
}
PERSONS = {"p1a": "P1", "p1b": "P1"}


def venn_packs(spark):
    rows = [r for seg, (t, h) in VENN.items() for r in pack_rows(seg, DAY1, t, h, PERSONS)]
    return packs(spark, rows)


def test_rank_segments_listed_first_then_by_name() -> None:
    assert channel().rank_segments(["c", "a", "b"]) == ["a", "b", "c"]
    assert channel(["c", "zz_missing", "b"]).rank_segments(["d", "a", "b", "c"]) == ["c", "b", "a", "d"]


def test_venn_under_a_b_c_delivers_a_then_b_minus_a_then_c_minus_both(spark) -> None:
    kept, lost = serve_day(spark, venn_packs(spark), channel(["a", "b", "c"]), DAY1, [])
    treated_a = set(VENN["a"][0])
    assert kept["a"] == treated_a  # |A|
    assert kept["b"] == {"b1", "b2", "bc"}  # B minus everyone A claims (its holdout hA, person P1)
    assert kept["c"] == {"c1"}  # C minus A and B, holdout hB of B included
    assert lost == {"a": {}, "b": {"priority": 4}, "c": {"priority": 4}}
    delivered = set().union(*kept.values())
    holdouts = {u for _t, h in VENN.values() for u in h}
    assert not delivered & holdouts  # no holdout user is delivered, whatever the priority


def test_priority_order_reversed_changes_who_wins(spark) -> None:
    kept, lost = serve_day(spark, venn_packs(spark), channel(["c", "b", "a"]), DAY1, [])
    # hB is held out of B but treated in C, which now ranks first: C delivers them.
    assert kept["c"] == {"abc", "ac", "bc", "c1", "hB"}
    assert kept["b"] == {"ab", "b1", "b2", "hA", "p1b"}
    assert kept["a"] == {"a1", "a2"}  # P1 is claimed by B through p1b
    assert lost["a"] == {"priority": 4} and lost["b"] == {"priority": 2}


def test_filters_agree_with_the_outcome_column(spark) -> None:
    packs_df = venn_packs(spark)
    cand_df = filter_pack_treatment(packs_df, "c", DAY1)
    kept = filter_by_priority(cand_df, priority_claims(packs_df, DAY1, ["a", "b"]))
    assert {r["user_id"] for r in kept.collect()} == {"c1"}
    assert filter_by_frequency_cap(cand_df, contacts(spark, []), DAY1, None) is cand_df


def deliver_days(spark, days: list[int], history: list[tuple[str, date, str]]) -> list[int]:
    """Serve user u of pack "a" on ``days`` in that order, each day seeing the others' deliveries
    (its own earlier run left out, as the step reads the contacts table); returns the days delivered."""
    for n in days:
        others = [c for c in history if c[1] != day(n)]
        cand_df = filter_pack_treatment(packs(spark, pack_rows("a", day(n), ["u"])), "a", day(n))
        ok = filter_by_frequency_cap(cand_df, contacts(spark, others), day(n), CAP).count() == 1
        history[:] = others + ([("u", day(n), "a")] if ok else [])
    return sorted((c[1] - DAY1).days + 1 for c in history)


def windows_within_cap(delivered: list[int], cap: FrequencyCap) -> bool:
    return all(
        sum(1 for d in delivered if s <= d < s + cap.days) <= cap.max
        for s in range(min(delivered, default=1) - cap.days, max(delivered, default=1) + 1)
    )


@pytest.mark.slow
def test_21_days_under_two_per_seven_days(spark) -> None:
    history: list[tuple[str, date, str]] = []
    assert deliver_days(spark, list(range(1, 22)), history) == [1, 2, 8, 9, 15, 16]
    assert windows_within_cap([1, 2, 8, 9, 15, 16], CAP)
    # A rerun of any day, alone or all in order, changes nothing (it never counts itself).
    before = sorted(history)
    for n in (1, 2, 3, 8, 9, 10, 16, 21):
        assert deliver_days(spark, [n], history) == [1, 2, 8, 9, 15, 16], n
    assert sorted(history) == before


@pytest.mark.slow
@pytest.mark.parametrize("order", [[1, 2, 3], [3, 2, 1]])
def test_backfill_never_overfills_a_window_with_later_deliveries(spark, order: list[int]) -> None:
    history: list[tuple[str, date, str]] = []
    assert deliver_days(spark, list(range(8, 22)), history) == [8, 9, 15, 16]
    # Day 3 shares the window 3..9 with 8 and 9; days 1 and 2 fit (windows 1..7 and 2..8 hold <= 2).
    delivered = deliver_days(spark, order, history)
    assert delivered == [1, 2, 8, 9, 15, 16]
    assert windows_within_cap(delivered, CAP)


def test_same_day_packs_served_by_priority_then_name(spark) -> None:
    rows = pack_rows("b_pack", DAY1, ["u"]) + pack_rows("a_pack", DAY1, ["u"])
    cap = FrequencyCap(max=1, days=7)
    kept, lost = serve_day(spark, packs(spark, rows), channel(cap=cap), DAY1, [])
    assert kept == {"a_pack": {"u"}, "b_pack": set()}  # no priority list: by name
    assert lost == {"a_pack": {}, "b_pack": {"frequency_cap": 1}}
    kept, lost = serve_day(spark, packs(spark, rows), channel(["b_pack"], cap), DAY1, [])
    assert kept == {"b_pack": {"u"}, "a_pack": set()}
    assert lost == {"b_pack": {}, "a_pack": {"priority": 1}}  # claimed first: priority, not the cap
    # Without a priority list two packs may both deliver a person, up to the cap.
    kept, _lost = serve_day(spark, packs(spark, rows), channel(cap=FrequencyCap(max=2, days=7)), DAY1, [])
    assert kept == {"a_pack": {"u"}, "b_pack": {"u"}}


def test_channel_model_validates_priority_and_cap() -> None:
    with pytest.raises(ValueError, match="listed twice"):
        channel(["a", "a"])
    with pytest.raises(ValueError, match="must match"):
        channel(["Bad-Name"])
    with pytest.raises(ValueError):
        FrequencyCap(max=0, days=7)
    with pytest.raises(ValueError):
        FrequencyCap.model_validate({"max": 2, "days": 7, "weeks": 1})
    assert not channel().has_contact_rules
    assert channel(cap=CAP).has_contact_rules and channel(["a"]).has_contact_rules
