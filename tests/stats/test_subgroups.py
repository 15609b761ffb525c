"""Which tags earned it (dmp.stats.subgroups): per-subgroup uplift, Newcombe interval, BH q-values,
Cochran's Q with Holm, the keep / drop rule, the suggested tag, and the report's section.

Known answers come from hand computations (Wilson / Newcombe formulas, Cochran's Q on literal
numbers) and from scipy's and statsmodels' Benjamini-Hochberg on the same p-values.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control
from statsmodels.stats.multitest import multipletests

from dmp.contracts.errors import DmpError
from dmp.stats.subgroups import (
    DROP,
    KEEP,
    MIN_GROUP_SIZE,
    TOO_SMALL,
    UNCLEAR,
    cart_bands,
    category_bands,
    cochran_q,
    consumption_bands,
    coupon_bands,
    lifecycle_bands,
    subgroup_metric_values,
    subgroup_table,
)

Z = 1.959963984540054  # the 97.5% normal quantile

# (n_treatment, conversions_treatment, n_holdout, conversions_holdout) per lifecycle stage: the effect
# (+10 pts) is planted in active only; silent loses 10 pts; churned is too small to test.
PLANTED = {
    "new": (1000, 100, 1000, 100),
    "active": (1000, 200, 1000, 100),
    "silent": (1000, 50, 1000, 150),
    "churned": (10, 5, 10, 1),
}


def planted_users(cells: dict[str, tuple[int, int, int, int]] = PLANTED) -> pd.DataFrame:
    """One row per user with exactly the counts of ``cells``; the other tags alternate within each
    (stage, group, converted) cell, so they carry no effect of their own."""
    rows = []
    for stage, (n_t, x_t, n_c, x_c) in cells.items():
        for group, n, x in (("treatment", n_t, x_t), ("holdout", n_c, x_c)):
            rows += [{"lifecycle_stage": stage, "group": group, "converted": int(i < x)} for i in range(n)]
    users = pd.DataFrame(rows)
    k = users.groupby(["lifecycle_stage", "group", "converted"]).cumcount()
    return users.assign(
        consumption_level=k % 2 + 1,
        coupon_sensitivity=(k % 2) * 0.25,
        is_cart_abandoner=k % 2 == 0,
        top_category=np.where(k % 2 == 0, "C01", "C02"),
    )


def wilson(x: int, n: int) -> tuple[float, float]:
    """Wilson score interval, by its formula."""
    p = x / n
    centre = (p + Z**2 / (2 * n)) / (1 + Z**2 / n)
    half = Z / (1 + Z**2 / n) * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    return centre - half, centre + half


def newcombe(x_t: int, n_t: int, x_c: int, n_c: int) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for p_t - p_c, by its formula."""
    p_t, p_c = x_t / n_t, x_c / n_c
    (l_t, u_t), (l_c, u_c) = wilson(x_t, n_t), wilson(x_c, n_c)
    d = p_t - p_c
    return d - math.sqrt((p_t - l_t) ** 2 + (u_c - p_c) ** 2), d + math.sqrt(
        (u_t - p_t) ** 2 + (p_c - l_c) ** 2
    )


@pytest.fixture(scope="module")
def table() -> dict:
    return subgroup_table(planted_users())


def _rows(table: dict, tag: str) -> dict[str, dict]:
    return {r["subgroup"]: r for r in table["rows"] if r["tag"] == tag}


def test_planted_effect_is_kept_negative_dropped_small_not_tested(table: dict) -> None:
    stages = _rows(table, "lifecycle_stage")
    assert list(stages) == ["new", "active", "silent", "churned"]  # the tag's own order
    assert {s: r["decision"] for s, r in stages.items()} == {
        "new": UNCLEAR,
        "active": KEEP,
        "silent": DROP,
        "churned": TOO_SMALL,
    }
    active = stages["active"]
    assert (active["n"], active["n_treatment"], active["n_control"]) == (2000, 1000, 1000)
    assert (active["rate_treatment"], active["rate_control"]) == pytest.approx((0.2, 0.1))
    assert active["uplift_abs"] == pytest.approx(0.1)
    assert active["incremental_conversions"] == pytest.approx(100.0)
    assert active["share_of_pack"] == pytest.approx(2000 / 6020)
    assert active["uplift_abs_ci"] == pytest.approx(list(newcombe(200, 1000, 100, 1000)), abs=1e-9)
    assert stages["silent"]["uplift_abs_ci"] == pytest.approx(list(newcombe(50, 1000, 150, 1000)), abs=1e-9)
    assert stages["silent"]["uplift_abs_ci"][1] < 0
    # pooled z for active: p = 0.15, se = sqrt(0.15 * 0.85 * 2 / 1000)
    z = 0.1 / math.sqrt(0.15 * 0.85 * 2 / 1000)
    assert active["p_value"] == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-9)
    churned = stages["churned"]
    assert churned["n"] == 20 and churned["uplift_abs"] == pytest.approx(0.4)  # shown, not tested
    assert churned["tested"] is False and churned["p_value"] is None and churned["q_value"] is None
    assert churned["uplift_abs_ci"] == [None, None]
    # no other tag carries an effect: nothing else is kept or dropped
    others = [r for r in table["rows"] if r["tag"] != "lifecycle_stage"]
    assert others and {r["decision"] for r in others} == {UNCLEAR}


def test_q_values_are_benjamini_hochberg_over_every_tested_row(table: dict) -> None:
    tested = [r for r in table["rows"] if r["tested"]]
    assert table["family_size"] == len(tested) == 11  # 3 stages + 2 rows for each of the 4 other tags
    p = np.array([r["p_value"] for r in tested])
    q = np.array([r["q_value"] for r in tested])
    assert q == pytest.approx(false_discovery_control(p, method="bh"), rel=1e-12)
    assert q == pytest.approx(multipletests(p, method="fdr_bh")[1], rel=1e-12)
    # by hand for the smallest p (silent, rank 1 of 11): q = 11 p
    silent = _rows(table, "lifecycle_stage")["silent"]
    assert silent["p_value"] == p.min() and silent["q_value"] == pytest.approx(11 * p.min())


def test_cochran_q_known_answers() -> None:
    # equal variances: the weighted mean is 0, Q = sum(d^2) / v = 400 * 0.02 = 8; chi2 with 2 df: e^(-Q/2)
    out = cochran_q(np.array([0.1, 0.0, -0.1]), np.array([0.0025] * 3))
    assert (out["q"], out["df"], out["k"]) == (pytest.approx(8.0), 2, 3)
    assert out["p_value"] == pytest.approx(math.exp(-4.0)) and out["i2"] == pytest.approx(0.75)
    assert out["pooled"] == pytest.approx(0.0, abs=1e-15)
    # unequal: w = 100, 25; mean = 20 / 125 = 0.16; Q = 100 * 0.04^2 + 25 * 0.16^2 = 0.8 < df: I2 = 0
    out = cochran_q(np.array([0.2, 0.0]), np.array([0.01, 0.04]))
    assert out["pooled"] == pytest.approx(0.16) and out["q"] == pytest.approx(0.8)
    assert out["p_value"] == pytest.approx(math.erfc(math.sqrt(0.4))) and out["i2"] == 0.0
    # a zero variance (all 0 or all 1) takes no part; one estimate is no test
    out = cochran_q(np.array([0.2, 0.0]), np.array([0.01, 0.0]))
    assert out == {"q": None, "df": 0, "p_value": None, "i2": None, "k": 1}


def test_heterogeneity_of_the_planted_table_by_hand(table: dict) -> None:
    tags = {e["tag"]: e for e in table["tags"]}
    test = tags["lifecycle_stage"]["heterogeneity"]
    # tested stages: new d = 0, active d = 0.1, silent d = -0.1, with unpooled variances
    v = [0.1 * 0.9 / 1000 * 2, 0.2 * 0.8 / 1000 + 0.1 * 0.9 / 1000, 0.05 * 0.95 / 1000 + 0.15 * 0.85 / 1000]
    w = [1 / x for x in v]
    d = [0.0, 0.1, -0.1]
    mean = sum(wi * di for wi, di in zip(w, d, strict=True)) / sum(w)
    q = sum(wi * (di - mean) ** 2 for wi, di in zip(w, d, strict=True))
    assert test["k"] == 3 and test["df"] == 2
    assert test["pooled"] == pytest.approx(mean) and test["q"] == pytest.approx(q)
    assert test["p_value"] == pytest.approx(math.exp(-q / 2), rel=1e-9)  # chi2 sf with 2 df
    assert test["i2"] == pytest.approx((q - 2) / q)
    # Holm over the 5 tags: the smallest p times 5; the other tags have no spread (p near 1)
    ps = [tags[t]["heterogeneity"]["p_value"] for t in tags]
    assert test["p_value_holm"] == pytest.approx(5 * test["p_value"])
    assert [tags[t]["heterogeneity"]["p_value_holm"] for t in tags] == pytest.approx(
        list(multipletests(ps, method="holm")[1])
    )
    assert tags["is_cart_abandoner"]["heterogeneity"]["p_value"] > 0.99


def test_keep_sets_and_suggested_tag(table: dict) -> None:
    tags = {e["tag"]: e for e in table["tags"]}
    life = tags["lifecycle_stage"]
    assert (life["keep"], life["drop"]) == (["active"], ["silent"])
    assert (life["keep_n"], life["without_dropped_n"]) == (2000, 6020 - 2000)
    assert life["keep_share"] == pytest.approx(2000 / 6020)
    assert life["keep_incremental_conversions"] == pytest.approx(100.0) and life["writable"] is True
    assert tags["top_category"]["writable"] is True and tags["top_category"]["keep"] == []  # nothing kept
    assert table["suggested_tag"] == "lifecycle_stage"
    assert "keep active" in table["suggest_note"] and "Holm-adjusted over 5 tags" in table["suggest_note"]
    assert table["n_users"] == 6020 and table["min_group_size"] == MIN_GROUP_SIZE


def test_no_suggestion_without_heterogeneity() -> None:
    flat = {"new": (500, 50, 500, 50), "active": (500, 50, 500, 50)}
    out = subgroup_table(planted_users(flat))
    assert out["suggested_tag"] is None and "no tag qualifies" in out["suggest_note"]
    assert {r["decision"] for r in out["rows"]} == {UNCLEAR}


def test_a_kept_top_category_is_not_writable_and_not_suggested() -> None:
    users = planted_users({"new": (400, 40, 400, 40), "active": (400, 40, 400, 40)})
    # plant the effect in the users whose first category is C09 instead (treated C09 users all buy)
    c09 = users.index % 4 == 0
    users.loc[c09, "top_category"] = "C09"
    users.loc[c09 & (users["group"] == "treatment"), "converted"] = 1
    out = subgroup_table(users)
    top = {e["tag"]: e for e in out["tags"]}["top_category"]
    assert "C09" in top["keep"] and top["writable"] is False
    assert out["suggested_tag"] != "top_category"


def test_random_campaign_finds_the_planted_stage_only() -> None:
    """Seeded draws: +8 pts only in active; over 20 campaigns active is kept every time, and the
    share of kept rows that are false stays within the BH rate."""
    rng = np.random.default_rng(19)
    stages = np.array(["new", "active", "silent", "churned"])
    kept_active, false_keeps, keeps = 0, 0, 0
    for _ in range(20):
        n = 16000
        stage = stages[rng.integers(0, 4, n)]
        group = np.where(rng.random(n) < 0.5, "treatment", "holdout")
        rate = 0.1 + 0.08 * ((stage == "active") & (group == "treatment"))
        users = pd.DataFrame(
            {
                "group": group,
                "converted": (rng.random(n) < rate).astype(int),
                "lifecycle_stage": stage,
                "consumption_level": rng.integers(0, 6, n),
                "coupon_sensitivity": np.where(rng.random(n) < 0.3, np.nan, rng.random(n)),
                "is_cart_abandoner": rng.random(n) < 0.3,
                "top_category": rng.choice(["C01", "C02", "C03"], n),
            }
        )
        rows = subgroup_table(users)["rows"]
        kept = [(r["tag"], r["subgroup"]) for r in rows if r["decision"] == KEEP]
        kept_active += ("lifecycle_stage", "active") in kept
        keeps += len(kept)
        # every other row mixes active users in (a true but diluted effect) except the other stages
        false_keeps += sum(k[0] == "lifecycle_stage" and k[1] != "active" for k in kept)
    assert kept_active == 20
    assert false_keeps / keeps <= 0.05


def test_bands_and_their_conditions() -> None:
    labels, where = coupon_bands(pd.Series([None, 0.0, 0.2, 0.5, 0.9]))
    assert labels.tolist() == ["none received", "never (0)", "some (0-0.5)", "often (0.5+)", "often (0.5+)"]
    assert where["some (0-0.5)"] == {
        "all": [{"tag": "coupon_sensitivity", "gt": 0}, {"tag": "coupon_sensitivity", "lt": 0.5}]
    }
    assert where["none received"] == {"tag": "coupon_sensitivity", "is_null": True}
    labels, where = consumption_bands(pd.Series([0, 3.0, np.nan]))
    assert labels.tolist() == ["0", "3", "unknown"]
    assert where["3"] == {"tag": "consumption_level", "eq": 3} and isinstance(where["3"]["eq"], int)
    labels, where = cart_bands(pd.Series([True, False, None], dtype=object))
    assert labels.tolist() == ["yes", "no", "unknown"] and where["no"] == {
        "tag": "is_cart_abandoner",
        "eq": False,
    }
    labels, where = lifecycle_bands(pd.Series(["active", None, "dormant"]))
    assert labels.tolist() == ["active", "unknown", "dormant"]
    assert list(where)[-2:] == ["dormant", "unknown"] and where["unknown"]["is_null"] is True
    # the 2 most frequent first categories (ties by id), the rest "other", missing "none"
    labels, where = category_bands(pd.Series(["C2", "C1", "C3", "C3", "C2", None, ""]), max_categories=2)
    assert labels.tolist() == ["C2", "other", "C3", "C3", "C2", "none", "none"]
    assert where == {"C2": None, "C3": None, "other": None, "none": None}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda u: u.drop(columns=["top_category"]), "planted: subgroups need the columns top_category"),
        (
            lambda u: u.assign(group="control"),
            "planted: group: expected treatment or holdout, got ['control']",
        ),
        (lambda u: u.assign(converted=2), "planted: converted: expected 0 or 1"),
    ],
)
def test_bad_input_names_the_source_and_column(change, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DmpError) as err:
        subgroup_table(change(planted_users({"new": (40, 4, 40, 4)})), source="planted")
    assert message in str(err.value)


def test_metric_values_for_the_results_table(table: dict) -> None:
    values = {m: (v, ci) for m, v, ci in subgroup_metric_values(table)}
    active = _rows(table, "lifecycle_stage")["active"]
    assert values["subgroup_uplift_abs[lifecycle_stage=active]"] == (
        active["uplift_abs"],
        active["uplift_abs_ci"],
    )
    assert values["subgroup_q_value[lifecycle_stage=active]"] == (active["q_value"], None)
    assert "subgroup_uplift_abs[lifecycle_stage=churned]" not in values  # not tested
    assert len(values) == 2 * 11 + 5  # uplift and q per tested row, one heterogeneity p per tag
    assert values["subgroup_heterogeneity_p[lifecycle_stage]"][0] == pytest.approx(
        {e["tag"]: e for e in table["tags"]}["lifecycle_stage"]["heterogeneity"]["p_value"]
    )
    assert subgroup_metric_values({"note": "no table"}) == []


def test_report_section_shows_the_table(table: dict) -> None:
    from dmp.reports.uplift_report import render_html
    from dmp.stats.uplift import evaluate_experiment

    users = planted_users()
    report = evaluate_experiment(users[["group", "converted"]]) | {
        "segment": "spring_revisit",
        "run_date": "2026-03-15",
        "subgroups": table,
    }
    text = render_html(report)
    assert "<h2>Which tags earned it</h2>" in text
    lo, hi = _rows(table, "lifecycle_stage")["active"]["uplift_abs_ci"]
    row = (
        "<tr><td>lifecycle_stage</td><td>active</td><td>1,000 / 1,000</td><td>+10.00 pts</td>"
        f"<td>[{lo * 100:+.2f} pts, {hi * 100:+.2f} pts]</td><td>0.0000</td><td>keep</td></tr>"
    )
    assert row in text
    assert "<td>lifecycle_stage</td><td>churned</td><td>10 / 10</td><td>+40.00 pts</td><td>n/a</td>" in text
    assert "<td>too small</td>" in text and "<td>drop</td>" in text
    assert "<td>2,000 (33.2%)</td><td>4,020 (66.8%)</td>" in text  # keep-set and without-dropped sizes
    assert "over the 11 tested subgroups" in text
    assert (
        "Rule: keep: BH q-value &lt; 0.05 and uplift &gt; 0; drop: the 95% interval lies entirely at or below 0"
        in text
    )
    assert "dmp segments suggest --from-evaluation spring_revisit 2026-03-15" in text
    # a note instead of a table; no block at all: no section
    noted = render_html({**report, "subgroups": {"note": "no subgroup table: gold/user_tags does not exist"}})
    assert "<h2>Which tags earned it</h2>\n<p>no subgroup table: gold/user_tags does not exist</p>" in noted
    assert "Which tags earned it" not in render_html({k: v for k, v in report.items() if k != "subgroups"})
