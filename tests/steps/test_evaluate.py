"""dmp evaluate: the pack step on a tiny lake, bring-your-own files, and the planted demo effect."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dmp.contracts import tables
from dmp.contracts.errors import DmpError
from dmp.contracts.specs import Scope
from dmp.spark import lake as lk
from dmp.stats import uplift
from dmp.transforms.outcomes import OutcomeScope

R = date(2026, 3, 15)
S001 = OutcomeScope(Scope(store_ids=["S001"]))  # the spring_revisit spec's scope, given directly


def d(offset: int) -> date:
    return R + timedelta(days=offset)


# ---------------------------------------------------------------------------------------------
# the pipeline step on a tiny lake
# ---------------------------------------------------------------------------------------------


SPEC = """
name: spring_revisit
description: visited our flagship store in 14 days, did not buy
kind: store_revisit
scope: {store_ids: [S001]}
window_days: 14
behaviors: [view, cart_add, favorite]
exclude_purchasers: true
holdout: 0.2
"""


def _daily_row(user: str, day: date, store: str, orders: int = 0, gmv: float = 0.0, views: int = 0) -> tuple:
    brand = "B001" if store in ("S001", "S002") else "B101"
    return (user, day, store, brand, "C01", views, 0, 0, 0, 0, 0, orders, gmv, 0, 0)


def write_tiny_lake(spark, lake: str) -> None:  # type: ignore[no-untyped-def]
    from dmp.spark.schemas import AUDIENCE_PACKS, USER_DAILY
    from tests.support.factories import padded

    daily = [
        _daily_row("t1", d(1), "S001", orders=1, gmv=100.0),  # converts on day 1
        _daily_row("t2", d(2), "S002", orders=1, gmv=70.0),  # other store: out of scope
        _daily_row("t2", d(2), "S001", views=3),  # visit only
        _daily_row("t3", d(0), "S001", orders=1, gmv=60.0),  # on the run date: before the window
        _daily_row("t4", d(2), "S001", orders=1, gmv=30.0),  # converts on day 2 ...
        _daily_row("t4", d(3), "S001", orders=2, gmv=50.0),  # ... and again on day 3
        _daily_row("t5", d(4), "S001", orders=1, gmv=90.0),  # after a 3-day window
        _daily_row("h1", d(2), "S001", orders=1, gmv=40.0),  # holdout converts on day 2
        _daily_row("h2", d(1), "S001", views=1),
        _daily_row("x1", d(1), "S001", orders=1, gmv=500.0),  # not in the pack
        _daily_row("h3", d(-3), "S001", orders=1, gmv=20.0),  # before a 3-day pre-period (R-2 … R)
        _daily_row("h4", d(-2), "S001", orders=1, gmv=25.0),  # inside it
        _daily_row("t3", d(-1), "S001", orders=2, gmv=80.0),  # t3 again: one user, one pre-period flag
        _daily_row("h1", d(-1), "S002", orders=1, gmv=15.0),  # out of scope
        _daily_row("h2", d(-1), "S001", views=4),  # a visit is not a conversion
    ]
    spark.createDataFrame(daily, USER_DAILY).write.format("delta").partitionBy("event_date").save(
        tables.table_path(lake, tables.USER_DAILY)
    )
    pack = [
        (seg, R, u, g, score, "visited S001", "hash", "store_revisit", g == "treatment")
        for seg in ("spring_revisit", "other_segment", "interim")
        for u, g, score in [
            ("t1", "treatment", 0.9),
            ("t2", "treatment", 0.8),
            ("t3", "treatment", 0.7),
            ("t4", "treatment", 0.7),
            ("t5", "treatment", 0.2),
            ("t6", "treatment", 0.1),
            ("h1", "holdout", 0.6),
            ("h2", "holdout", 0.5),
            ("h3", "holdout", 0.4),
            ("h4", "holdout", 0.3),
        ]
    ]
    spark.createDataFrame(padded(pack, AUDIENCE_PACKS), AUDIENCE_PACKS).write.format("delta").partitionBy(
        "segment", "run_date"
    ).save(tables.table_path(lake, tables.AUDIENCE_PACKS))
    from dmp.spark.schemas import DELIVERIES_SCHEMA

    at = datetime(2026, 3, 15, 8, 0)
    deliveries = [  # latest attempt per channel counts: jd_ads and coupon_center delivered, sms not
        ("spring_revisit", "jd_ads", R, 1, "full", "p", 8, None, "failed", at, "timeout"),
        ("spring_revisit", "jd_ads", R, 2, "full", "p", 8, "abc", "success", at, None),
        ("spring_revisit", "coupon_center", R, 1, "full", "p", 8, "abd", "success", at, None),
        ("spring_revisit", "sms", R, 1, "full", "p", 8, "abe", "success", at, None),
        ("spring_revisit", "sms", R, 2, "full", "p", 8, None, "failed", at, "quota"),
        # the day before: its treated users were contacted during other_segment's pre-period R-2 … R
        ("other_segment", "jd_ads", d(-1), 1, "full", "p", 8, "abf", "success", at, None),
        # edges of the 2N-1 days before R (N = 3: R-5 … R-1) for test_earlier_deliveries_window
        ("edges", "jd_ads", d(-6), 1, "full", "p", 8, "e6", "success", at, None),
        ("edges", "jd_ads", d(-5), 1, "full", "p", 8, "e5", "success", at, None),
        ("edges", "jd_ads", d(-4), 1, "full", "p", 8, "e4", "success", at, None),
        ("edges", "jd_ads", d(-4), 2, "full", "p", 8, None, "failed", at, "timeout"),
        # an unchanged re-delivery is recorded as a success (dmp.contracts.status.DeliveryStatus)
        (
            "edges",
            "jd_ads",
            d(-1),
            1,
            "manifest",
            "p",
            0,
            "e1",
            "success",
            at,
            "unchanged: identical delivery already complete; nothing rewritten",
        ),
        ("edges", "jd_ads", d(0), 1, "full", "p", 8, "e0", "success", at, None),
    ]
    spark.createDataFrame(deliveries, DELIVERIES_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.DELIVERIES)
    )


@pytest.fixture(scope="module")
def tiny_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> str:  # type: ignore[no-untyped-def]
    """Written once for the module (Delta writes dominate the runtime on 2 shared cores)."""
    lake = str(tmp_path_factory.mktemp("tiny") / "lake")
    write_tiny_lake(spark, lake)
    return lake


def test_evaluate_pack_on_tiny_lake(spark, tiny_lake: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dmp.steps.evaluate import evaluate_pack

    lake = tiny_lake
    out = tmp_path / "report"
    segments = tmp_path / "segments"
    segments.mkdir()
    (segments / "spring_revisit.yaml").write_text(SPEC)
    result = evaluate_pack(
        spark, lake, "spring_revisit", R, window_days=3, out_dir=out, segments_dir=str(segments)
    )
    r = result.report
    assert r["scope"] == {"store_ids": ["S001"], "match": "all"} and r["kind"] == "store_revisit"
    scope = r["scope"]

    # treatment: t1 and t4 converted in S001 on R+1..R+3 (t2 bought elsewhere, t3 too early, t5 too late)
    assert (r["n_treatment"], r["n_control"]) == (6, 4)
    assert r["rate_treatment"] == pytest.approx(2 / 6)
    assert r["rate_control"] == pytest.approx(1 / 4)
    assert r["uplift_abs"] == pytest.approx(2 / 6 - 1 / 4)
    assert r["value_per_user_treatment"] == pytest.approx((100 + 30 + 50) / 6)
    assert r["value_per_user_control"] == pytest.approx(40 / 4)
    assert r["incremental_value"] == pytest.approx((30 - 10) * 6)
    assert r["channel"] == "coupon_center+jd_ads"
    assert r["window"] == ["2026-03-16", "2026-03-18"]
    assert [row["rate_treatment"] for row in r["cumulative_uplift"]] == pytest.approx([1 / 6, 2 / 6, 2 / 6])
    assert [row["rate_control"] for row in r["cumulative_uplift"]] == pytest.approx([0, 1 / 4, 1 / 4])
    assert r["qini_auc"] is not None and set(r["uplift_at_k"]) == {"0.1", "0.2", "0.3", "0.5"}
    assert any(w.startswith("holdout too small to conclude") for w in r["warnings"])
    # pre-period R-2 … R in scope: t3 (on R) and h4 (on R-2) converted; h3 is before it
    assert r["pre_window"] == ["2026-03-13", "2026-03-15"]
    assert (r["pre_rate_treatment"], r["pre_rate_control"]) == pytest.approx((1 / 6, 1 / 4))
    assert r["pre_diff_abs"] == pytest.approx(1 / 6 - 1 / 4)
    assert r["imbalanced"] is False and not any("before the campaign" in w for w in r["warnings"])
    assert not any(w.startswith("the pre-period check covers only") for w in r["warnings"])
    # sample ratio: 6 / 4 against the spec's holdout 0.2 (8 / 2 expected): (6-8)²/8 + (4-2)²/2 = 2.5
    assert (r["expected_holdout_share"], r["observed_holdout_share"]) == (0.2, 0.4)
    assert r["srm_chi2"] == pytest.approx(2.5) and r["srm_p_value"] == pytest.approx(0.113846, abs=1e-6)
    assert r["srm_mismatch"] is False and not any("sample ratio" in w for w in r["warnings"])
    # CUPED on the 3-day pre-period (t3 and h4 bought before), beside the plain estimate
    assert r["cuped_covariate"] == "pre_converted" and r["uplift_abs"] == pytest.approx(1 / 12)
    assert r["uplift_abs_cuped"] is not None and r["variance_reduction"] is not None
    # a pack evaluated alone is its own Holm family; no cost without channels.yaml
    assert r["p_value_holm"] == pytest.approx(r["p_value"]) and r["multiple_testing"]["family_size"] == 1
    assert r["cost"] is None and r["roi"] is None and "no channels file" in r["cost_note"]

    # gold/uplift_results: one row per metric, keyed by segment + run_date
    all_res = lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas()
    res = all_res[all_res["segment"] == "spring_revisit"].set_index("metric")
    assert len(res) == result.rows_written
    low, high = uplift.diff_interval(2, 6, 1, 4)
    assert res.loc["uplift_abs", "value"] == pytest.approx(1 / 12)
    assert res.loc["uplift_abs", ["ci_low", "ci_high"]].tolist() == pytest.approx([low, high])
    assert res.loc["incremental_value", "value"] == pytest.approx(120.0)
    assert res.loc["rate_control", "value"] == pytest.approx(0.25)
    assert set(res["n_treatment"]) == {6} and set(res["n_holdout"]) == {4}
    assert set(res["window_days"]) == {3} and set(res["channel"]) == {"coupon_center+jd_ads"}
    assert "uplift_at_k_0.3" in res.index and "qini_auc" in res.index
    assert res.loc["pre_rate_control", "value"] == pytest.approx(0.25)
    assert res.loc["pre_diff_abs", ["ci_low", "ci_high"]].tolist() == pytest.approx(
        list(uplift.diff_interval(1, 6, 1, 4))
    )
    assert res.loc["uplift_abs_adjusted", "value"] == pytest.approx(r["uplift_abs_adjusted"])
    assert res.loc["srm_chi2", "value"] == pytest.approx(2.5)
    assert res.loc["srm_p_value", "value"] == pytest.approx(r["srm_p_value"])
    assert res.loc["expected_holdout_share", "value"] == pytest.approx(0.2)
    assert res.loc["uplift_abs_cuped", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx(
        [r["uplift_abs_cuped"], *r["uplift_abs_cuped_ci"]]
    )
    assert res.loc["variance_reduction", "value"] == pytest.approx(r["variance_reduction"])
    assert res.loc["p_value_holm", "value"] == pytest.approx(r["p_value"])
    assert res.loc["holm_family_size", "value"] == 1.0
    assert res.loc["cost", "value"] is None or pd.isna(res.loc["cost", "value"])

    # the report files
    saved = json.loads((out / "report.json").read_text())
    assert saved["uplift_abs_ci"] == pytest.approx([low, high])
    assert saved["srm_chi2"] == pytest.approx(2.5) and saved["srm_p_value"] == pytest.approx(r["srm_p_value"])
    for key in ("n_treatment", "n_control", "rate_treatment", "rate_control", "uplift_abs", "uplift_abs_ci",
                "uplift_rel", "p_value", "incremental_conversions", "incremental_value", "incremental_value_ci",
                "mde", "qini_auc", "uplift_auc", "uplift_at_k", "pre_rate_treatment", "pre_p_value",
                "uplift_abs_adjusted", "uplift_abs_adjusted_ci", "srm_chi2", "srm_p_value", "uplift_abs_cuped",
                "uplift_abs_cuped_ci", "variance_reduction", "p_value_holm", "cost", "roi", "roi_ci"):  # fmt: skip
        assert key in saved, key
    page = (out / "report.html").read_text()
    assert "Before the campaign: gap between the groups" in page and "2026-03-13" in page
    assert "Holdout share (observed / design)" in page and "40.00% / 20.00%" in page
    assert "Sample ratio check (chi-square, p-value)" in page and "2.50, p = 0.1138" in page
    assert (
        len(re.findall(r'src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', page)) == 3
    )  # rates, days, qini
    assert (
        "spring_revisit" in page and "<script" not in page and "http" not in page.split("</style>")[1][:2000]
    )

    # rerun for another segment, then this one again: replaceWhere keeps one copy of each
    other_report = evaluate_pack(
        spark, lake, "other_segment", R, window_days=3, out_dir=tmp_path / "o", scope=S001
    ).report
    assert other_report["scope"] == scope
    assert "pre_rate_treatment" not in other_report and "imbalanced" not in other_report
    assert (
        "no pre-period check: this segment was also delivered on 2026-03-14, so its treated users were "
        "already contacted during part of 2026-03-13 … 2026-03-15"
    ) in other_report["warnings"]
    # the spark-submit entry point (same session: get_spark reuses it), as the uplift DAG calls it
    from jobs.evaluate import main as job_main

    args = ["--lake", lake, "--segments", str(segments), "--segment", "spring_revisit", "--run-date", str(R)]
    assert job_main([*args, "--window-days", "3", "--out", str(out)]) == 0
    assert job_main([*args, "--window-days", "30", "--out", str(out)]) == 1  # window still open: exit 1
    both = lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas()
    other = both[both["segment"] == "other_segment"].set_index("metric")
    # other_segment was delivered on R-1: no pre-period metrics, everything else once
    assert both[both["segment"] == "spring_revisit"]["metric"].is_unique and other.index.is_unique
    assert set(other.index) == {
        m for m in res.index if not m.startswith("pre_") and m != "uplift_abs_adjusted"
    }
    assert {m for m in res.index if m.startswith("pre_")} == {
        "pre_rate_treatment", "pre_rate_control", "pre_diff_abs", "pre_p_value"}  # fmt: skip
    assert other.loc["uplift_abs", "value"] == pytest.approx(1 / 12)
    assert set(other["channel"]) == {"none"}  # never delivered: said so
    assert other.loc["p_value", "value"] == pytest.approx(res.loc["p_value", "value"])


def test_earlier_deliveries_window(spark, tiny_lake: str) -> None:  # type: ignore[no-untyped-def]
    from dmp.steps.evaluate import earlier_deliveries

    # a delivery on D contacts users during D+1 … D+N: it reaches the pre-period R-N+1 … R when
    # R-2N+1 <= D <= R-1; R-6 is too early, R-4's latest attempt failed, R is this run itself
    assert earlier_deliveries(spark, tiny_lake, "edges", R, 3) == [d(-5), d(-1)]
    assert earlier_deliveries(spark, tiny_lake, "edges", R, 1) == [d(-1)]
    assert earlier_deliveries(spark, tiny_lake, "spring_revisit", R, 3) == []


def test_window_not_closed_is_an_error(spark, tiny_lake: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dmp.steps.evaluate import evaluate_pack

    lake = tiny_lake
    scope = S001
    with pytest.raises(
        DmpError, match=r"2026-03-16 … 2026-03-20 has not closed: silver/user_daily reaches 2026-03-19"
    ):
        evaluate_pack(spark, lake, "spring_revisit", R, window_days=5, out_dir=tmp_path, scope=scope)
    # an interim look evaluates a copy of the lake's pack under another name so the main test's rows stay put
    r = evaluate_pack(
        spark, lake, "interim", R, window_days=5, out_dir=tmp_path, scope=scope, allow_open_window=True
    ).report
    assert r["rate_treatment"] == pytest.approx(3 / 6)  # t5's order on R+4 now counts
    assert any(w.startswith("interim look") for w in r["warnings"])
    # a 5-day pre-period (R-4 … R) starts before the data: said so
    assert (
        "the pre-period check covers only 2026-03-12 … 2026-03-15 of 2026-03-11 … 2026-03-15: "
        "silver/user_daily starts on 2026-03-12"
    ) in r["warnings"]
    with pytest.raises(DmpError, match="no pack for segment 'nope' on 2026-03-15"):
        evaluate_pack(spark, lake, "nope", R, window_days=3, out_dir=tmp_path, scope=scope)
    with pytest.raises(DmpError, match="no valid spec named 'interim'"):
        evaluate_pack(spark, lake, "interim", R, window_days=3, out_dir=tmp_path, segments_dir=str(tmp_path))


# ---------------------------------------------------------------------------------------------
# the step's pure parts: the experiment frame, warnings, context and result rows
# ---------------------------------------------------------------------------------------------


def _users(**columns: list) -> pd.DataFrame:  # type: ignore[type-arg]
    base = {
        "user_id": ["t1", "h1"],
        "group": ["treatment", "holdout"],
        "score": [0.9, 0.2],
        "converted": [1, 0],
        "value": [10.0, 0.0],
        "orders": [1, 0],
        "days_to_convert": [2, None],
        "pre_converted": [0, 1],
    }
    return pd.DataFrame({**base, **columns})


def test_experiment_frame() -> None:
    from dmp.steps.evaluate import experiment_frame

    frame = experiment_frame(_users(deliverable=[True, True]), "pack s/d", pre_period=True)
    assert list(frame.columns) == [
        "user_id", "group", "score", "converted", "value", "orders", "days_to_convert", "pre_converted"]  # fmt: skip
    assert frame["days_to_convert"].dtype == "float64" and frame["days_to_convert"].isna().tolist() == [
        False,
        True,
    ]
    # a partly scored pack has no ranking metrics; an earlier delivery spoils the pre-period
    frame = experiment_frame(_users(score=[0.9, None]), "pack s/d", pre_period=False)
    assert "score" not in frame.columns and "pre_converted" not in frame.columns
    with pytest.raises(DmpError, match=r"pack s/d lists users more than once, e.g. \['t1'\]"):
        experiment_frame(_users(user_id=["t1", "t1"]), "pack s/d", pre_period=True)


def test_pack_warnings() -> None:
    from dmp.steps.evaluate import pack_warnings

    users = _users(deliverable=[True, True])
    span = (d(-10), d(3))
    assert pack_warnings(users, S001, ["jd_ads"], [], span, R, 3) == []
    warnings = pack_warnings(_users(deliverable=[False, False]), OutcomeScope(), [], [], (d(-1), d(2)), R, 3)
    assert warnings == [
        "no delivery of this pack is recorded in ops/deliveries: treatment users may never have been contacted",
        "the pack was marked not deliverable (below min_size): no one was contacted",
        "the spec has no scope: an order anywhere on the platform counts as a conversion",
        "interim look: the window is still open (data up to 2026-03-17)",
        "the pre-period check covers only 2026-03-14 … 2026-03-15 of 2026-03-13 … 2026-03-15: "
        "silver/user_daily starts on 2026-03-14",
    ]
    contacted = [d(-5), d(-4), d(-2), d(-1)]
    (warning,) = pack_warnings(users, S001, ["jd_ads"], contacted, (d(-1), d(3)), R, 3)
    assert warning == (
        "no pre-period check: this segment was also delivered on 4 earlier run dates, the latest "
        "2026-03-11, 2026-03-13, 2026-03-14, so its treated users were already contacted during part of "
        "2026-03-13 … 2026-03-15"
    )


def test_pack_context_and_result_rows() -> None:
    from dmp.steps.evaluate import pack_context
    from dmp.steps.uplift_results import metric_values, result_rows

    context = pack_context("s", R, 3, None, S001, ["coupon_center", "jd_ads"], d(3))
    assert context == {
        "segment": "s",
        "run_date": "2026-03-15",
        "kind": None,
        "scope": {"store_ids": ["S001"], "match": "all"},
        "channel": "coupon_center+jd_ads",
        "channels": ["coupon_center", "jd_ads"],
        "window_days": 3,
        "window": ["2026-03-16", "2026-03-18"],
        "pre_period_days": 3,
        "pre_window": ["2026-03-13", "2026-03-15"],
        "outcome": "converted = at least one order in scope in the window; value = GMV in scope in the window",
        "data_until": "2026-03-18",
    }
    assert pack_context("s", R, 3, None, OutcomeScope(), [], None)["channel"] == "none"
    longer = pack_context("s", R, 3, None, S001, [], None, pre_period_days=7)
    assert (longer["pre_period_days"], longer["pre_window"]) == (7, ["2026-03-09", "2026-03-15"])

    report = {
        "n_treatment": 6, "n_control": 4, "uplift_abs": 0.25, "uplift_abs_ci": [-0.1, 0.6], "rate_treatment": 0.5,
        "rate_treatment_ci": None, "p_value": None, "verdict": "not a metric", "uplift_at_k": {"0.1": 1}}  # fmt: skip
    assert metric_values(report) == [
        ("rate_treatment", 0.5, None), ("uplift_abs", 0.25, [-0.1, 0.6]), ("p_value", None, None),
        ("uplift_at_k_0.1", 1, None)]  # fmt: skip
    at = datetime(2026, 3, 20, 8, 0)
    rows = result_rows(report, "s", "jd_ads", R, 3, at)
    assert [(r["metric"], r["value"], r["ci_low"], r["ci_high"]) for r in rows] == [
        ("rate_treatment", 0.5, None, None), ("uplift_abs", 0.25, -0.1, 0.6), ("p_value", None, None, None),
        ("uplift_at_k_0.1", 1.0, None, None)]  # fmt: skip
    assert rows[3] == {
        "segment": "s", "channel": "jd_ads", "run_date": R, "metric": "uplift_at_k_0.1", "value": 1.0,
        "ci_low": None, "ci_high": None, "n_treatment": 6, "n_holdout": 4, "window_days": 3, "evaluated_at": at}  # fmt: skip
    assert isinstance(rows[3]["value"], float)


# ---------------------------------------------------------------------------------------------
# bring your own experiment
# ---------------------------------------------------------------------------------------------


def _byo_csv(path: Path) -> Path:
    rows = (
        [("A", 1, 50.0, 0.9)] * 100
        + [("A", 0, 0.0, 0.1)] * 900
        + [("B", 1, 50.0, 0.8)] * 80
        + [("B", 0, 0.0, 0.2)] * 920
        + [("pilot", 1, 10.0, 0.5)] * 7
    )
    pd.DataFrame(rows, columns=["arm", "bought", "gmv", "propensity"]).to_csv(path, index=False)
    return path


def test_byo_cli_on_csv(tmp_path: Path) -> None:
    from dmp.cli import app

    csv = _byo_csv(tmp_path / "exp.csv")
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        ["evaluate", "--input", str(csv), "--group-col", "arm", "--outcome-col", "bought", "--value-col", "gmv",
         "--score-col", "propensity", "--treatment-value", "A", "--control-value", "B", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "report.html" in res.output
    r = json.loads((out / "report.json").read_text())
    assert (r["n_treatment"], r["n_control"]) == (1000, 1000)
    assert r["other_group_rows"] == 7 and r["other_group_values"] == {"pilot": 7}
    assert r["uplift_abs"] == pytest.approx(0.02)
    assert r["uplift_abs_ci"] == pytest.approx([-0.005161, 0.045273], abs=1e-6)
    assert r["p_value"] == pytest.approx(0.118125, abs=1e-6)
    assert r["incremental_value"] == pytest.approx((5.0 - 4.0) * 1000)
    assert r["qini_auc"] is not None
    assert (out / "report.html").stat().st_size > 10_000


def test_byo_cli_with_a_pre_period_column(tmp_path: Path) -> None:
    from dmp.cli import app

    # earlier buyers: 60% of the control, 30% of the treated; +10 points among both kinds of user
    rows = (
        [("A", 1, 1)] * 72 + [("A", 1, 0)] * 48 + [("A", 0, 1)] * 56 + [("A", 0, 0)] * 224
        + [("B", 1, 1)] * 30 + [("B", 1, 0)] * 30 + [("B", 0, 1)] * 4 + [("B", 0, 0)] * 36
    )  # fmt: skip
    csv = tmp_path / "exp.csv"
    pd.DataFrame(rows, columns=["arm", "bought_before", "bought"]).to_csv(csv, index=False)
    base = ["evaluate", "--input", str(csv), "--group-col", "arm", "--outcome-col", "bought",
            "--treatment-value", "A", "--control-value", "B"]  # fmt: skip
    res = CliRunner().invoke(app, [*base, "--pre-outcome-col", "bought_before", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "o" / "report.json").read_text())
    assert r["uplift_abs"] == pytest.approx(-0.02) and r["uplift_abs_adjusted"] == pytest.approx(0.10)
    assert (r["pre_rate_treatment"], r["pre_rate_control"]) == pytest.approx((0.3, 0.6))
    assert r["pre_outcome_col"] == "bought_before" and r["imbalanced"] is True
    printed = " ".join(res.output.split())  # rich wraps at the runner's 80 columns
    assert "differed before the campaign" in printed
    assert "before the campaign: treatment 30.00%, holdout 60.00% (p = " in printed
    assert "adjusted uplift +10.00 points" in printed
    assert "Uplift adjusted for the pre-period" in (tmp_path / "o" / "report.html").read_text()

    pd.DataFrame(rows, columns=["arm", "bought_before", "bought"]).assign(bought_before="maybe").to_csv(
        csv, index=False
    )
    res = CliRunner().invoke(app, [*base, "--pre-outcome-col", "bought_before", "--out", str(tmp_path / "b")])
    assert res.exit_code != 0 and isinstance(res.exception, DmpError)  # dmp.cli.main prints it, exits 1
    assert f"{csv}: column 'bought_before' is not binary: found ['maybe']" in str(res.exception)
    res = CliRunner().invoke(app, [*base, "--pre-outcome-col", "nope", "--out", str(tmp_path / "c")])
    assert res.exit_code != 0 and "column 'nope' (--pre-outcome-col) not found" in str(res.exception)


def test_byo_expected_holdout_share_runs_the_sample_ratio_check(tmp_path: Path) -> None:
    from scipy.stats import chi2

    from dmp.cli import app

    csv = _byo_csv(tmp_path / "exp.csv")
    base = ["evaluate", "--input", str(csv), "--group-col", "arm", "--outcome-col", "bought",
            "--treatment-value", "A", "--control-value", "B"]  # fmt: skip
    # 1000 / 1000 as designed (50 %): chi2 0, p 1
    res = CliRunner().invoke(app, [*base, "--expected-holdout-share", "0.5", "--out", str(tmp_path / "even")])
    assert res.exit_code == 0, res.output
    even = json.loads((tmp_path / "even" / "report.json").read_text())
    assert (even["srm_chi2"], even["srm_p_value"], even["srm_mismatch"]) == (0.0, 1.0, False)
    assert "sample ratio: holdout 50.00% of users, design 50.00% (chi-square 0.00, p = 1)" in " ".join(
        res.output.split()
    )
    # the same file read as a 30 % holdout design: expected 1400 / 600
    res = CliRunner().invoke(app, [*base, "--expected-holdout-share", "0.3", "--out", str(tmp_path / "off")])
    assert res.exit_code == 0, res.output
    off = json.loads((tmp_path / "off" / "report.json").read_text())
    want = 400**2 / 1400 + 400**2 / 600
    assert off["srm_chi2"] == pytest.approx(want) and off["srm_p_value"] == pytest.approx(chi2.sf(want, 1))
    assert off["srm_mismatch"] is True and off["conclusive"] is False
    assert off["warnings"][0].startswith("sample ratio mismatch: the holdout is 50.00% of the users")
    assert "MISMATCH" in res.output
    # without it the check is not run, and the report says so
    res = CliRunner().invoke(app, [*base, "--out", str(tmp_path / "none")])
    plain = json.loads((tmp_path / "none" / "report.json").read_text())
    assert (
        plain["srm_p_value"] is None
        and plain["srm_note"] == "not checked: no expected holdout share was given"
    )
    assert (
        "not checked: no expected holdout share was given" in (tmp_path / "none" / "report.html").read_text()
    )
    for bad in ("1.5", "0"):
        res = CliRunner().invoke(
            app, [*base, "--expected-holdout-share", bad, "--out", str(tmp_path / "bad")]
        )
        assert res.exit_code != 0 and isinstance(res.exception, DmpError)
        assert str(res.exception).startswith(
            f"--expected-holdout-share: got {float(bad)!r}; expected a share"
        )
    assert not (tmp_path / "bad").exists()
    res = CliRunner().invoke(
        app, ["evaluate", "--segment", "s", "--run-date", "2026-03-15", "--expected-holdout-share", "0.1"]
    )
    assert "--expected-holdout-share is for --input files" in str(res.exception)


def test_byo_srm_known_answer(tmp_path: Path) -> None:
    """Fabijan et al.'s example through evaluate_file: 821,588 vs 815,482 users in a 50/50 design."""
    from dmp.steps.evaluate_file import ExternalColumns, evaluate_file

    n_t, n_c = 821_588, 815_482
    df = pd.DataFrame({"arm": np.repeat(np.array([1, 0], dtype=np.int8), [n_t, n_c]), "y": np.int8(0)})
    df.loc[::50, "y"] = 1
    path = tmp_path / "big.parquet"
    df.to_parquet(path)
    r = evaluate_file(path, tmp_path / "o", ExternalColumns("arm", "y"), expected_holdout_share=0.5).report
    assert (r["n_treatment"], r["n_control"]) == (n_t, n_c)
    assert r["srm_chi2"] == pytest.approx(22.77, abs=0.005) and r["srm_p_value"] == pytest.approx(
        1.82e-6, rel=0.01
    )
    assert r["srm_mismatch"] is True and r["conclusive"] is False


def test_byo_parquet_with_default_labels(tmp_path: Path) -> None:
    from dmp.steps.evaluate_file import ExternalColumns, evaluate_file

    df = pd.DataFrame({"treated": [1] * 50 + [0] * 50, "y": [1] * 10 + [0] * 40 + [1] * 5 + [0] * 45})
    path = tmp_path / "exp.parquet"
    df.to_parquet(path)
    r = evaluate_file(path, tmp_path / "o", ExternalColumns(group_col="treated", outcome_col="y")).report
    assert (r["treatment_value"], r["control_value"]) == ("1", "0")
    assert r["rate_treatment"] == pytest.approx(0.2) and r["rate_control"] == pytest.approx(0.1)
    assert r["incremental_value"] is None and "qini_auc" not in r


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--outcome-col", "bougth"], "exp.csv: column 'bougth' (--outcome-col) not found; columns are"),
        (["--outcome-col", "gmv"], "exp.csv: column 'gmv' is not binary"),
        (["--outcome-col", "bought", "--score-col", "nope"], "column 'nope' (--score-col) not found"),
        (["--outcome-col", "bought", "--control-value", "C"], "no rows with arm = 'c' (control)"),
        (["--outcome-col", "bought", "--control-value", "A"], "are both 'a'"),
    ],
)
def test_byo_cli_errors_name_file_and_column(tmp_path: Path, extra: list[str], message: str) -> None:
    from dmp.cli import app

    csv = _byo_csv(tmp_path / "exp.csv")
    args = ["evaluate", "--input", str(csv), "--group-col", "arm", "--treatment-value", "A"]
    args += ["--out", str(tmp_path / "o"), *extra]
    if "--control-value" not in extra:
        args += ["--control-value", "B"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code != 0
    assert isinstance(res.exception, DmpError)  # dmp.cli.main prints it in red and exits 1
    assert message in str(res.exception)
    assert not (tmp_path / "o" / "report.json").exists()


def test_prepare_external_labels_and_ignored_rows() -> None:
    from dmp.steps.evaluate_file import ExternalColumns, prepare_external

    raw = pd.DataFrame(
        {
            "arm": [1.0, 1.0, 0.0, 0.0, None, 2.0],  # floats read from a CSV with a gap
            "y": [1, 0, 0, 1, 1, 0],
            "pre": [0, 0, 1, 1, 0, 0],
        }
    )
    frame, info = prepare_external(
        raw, "x.csv", ExternalColumns(group_col="arm", outcome_col="y", pre_outcome_col="pre")
    )
    assert frame.to_dict("list") == {
        "group": ["treatment", "treatment", "holdout", "holdout"],
        "converted": [1, 0, 0, 1],
        "pre_converted": [0, 0, 1, 1],
    }
    assert (info["treatment_value"], info["control_value"]) == ("1", "0")
    assert (info["rows_read"], info["other_group_rows"], info["other_group_values"]) == (
        6,
        2,
        {"<empty>": 1, "2": 1},
    )
    assert (info["value_col"], info["pre_outcome_col"]) == (None, "pre")

    labelled = pd.DataFrame({"arm": [" Treatment", "HOLDOUT ", "control"], "y": [1, 0, 0]})
    frame, info = prepare_external(labelled, "x.csv", ExternalColumns(group_col="arm", outcome_col="y"))
    # control is preferred over holdout when both are present
    assert (info["treatment_value"], info["control_value"]) == ("treatment", "control")
    assert frame["group"].tolist() == ["treatment", "holdout"] and info["other_group_values"] == {
        "holdout": 1
    }
    with pytest.raises(
        DmpError, match=r"x.csv: cannot tell treatment from control in column 'arm' \(values \['a', 'b'\]\)"
    ):
        prepare_external(pd.DataFrame({"arm": ["a", "b"], "y": [1, 0]}), "x.csv", ExternalColumns("arm", "y"))


def test_read_table_file_errors(tmp_path: Path) -> None:
    from dmp.steps.evaluate_file import read_table_file

    with pytest.raises(DmpError, match="nope.csv: file not found"):
        read_table_file(tmp_path / "nope.csv")
    (tmp_path / "exp.xlsx").write_text("x")
    with pytest.raises(DmpError, match=r"exp.xlsx: unsupported file type '.xlsx'; expected .csv or .parquet"):
        read_table_file(tmp_path / "exp.xlsx")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DmpError, match="bad.parquet: cannot read as parquet"):
        read_table_file(tmp_path / "bad.parquet")


# ---------------------------------------------------------------------------------------------
# the planted demo effect: coverage of the 95% intervals over 20 generated datasets
# ---------------------------------------------------------------------------------------------


def planted_experiment(out: Path, seed: int) -> tuple[pd.DataFrame, dict]:
    """Realised outcomes of the generator's campaign: y1/value1 for treatment, y0/value0 for holdout."""
    from dmp.demo.generate import generate

    generate(out, users=2000, days=16, seed=seed, bad_rate=0.0)
    truth = json.loads((out / "truth" / "campaigns.json").read_text())[0]
    users = pd.read_csv(out / "truth" / "campaign_users.csv")
    users = users[users["segment"] == truth["segment"]]
    treated = users["group"] == "treatment"
    frame = pd.DataFrame(
        {
            "group": users["group"],
            "converted": users["y1"].where(treated, users["y0"]),
            "value": users["value1"].where(treated, users["value0"]),
        }
    )
    return frame, truth


def test_planted_effect_is_covered_by_the_95_interval(tmp_path: Path) -> None:
    seeds = range(20)
    hits_rate = hits_value = 0
    for seed in seeds:
        frame, truth = planted_experiment(tmp_path / f"gen{seed}", seed)
        r = uplift.evaluate_experiment(frame)
        # the core sees exactly the generator's realised groups
        assert r["rate_treatment"] == pytest.approx(truth["realised_rate_treatment"], abs=1e-6)
        assert r["rate_control"] == pytest.approx(truth["realised_rate_holdout"], abs=1e-6)
        low, high = r["uplift_abs_ci"]
        hits_rate += low <= truth["true_uplift_abs"] <= high
        v_low, v_high = r["incremental_value_ci"]
        hits_value += v_low <= truth["true_uplift_value"] * r["n_treatment"] <= v_high
    print(f"\nplanted effect inside the 95% CI: conversion {hits_rate}/20, value {hits_value}/20")
    assert hits_rate >= 17
    assert hits_value >= 16
