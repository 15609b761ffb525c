"""Issue 19 wired into the pack step: the sample ratio check, Holm across the packs of a run date
(``dmp evaluate`` with several ``--segment`` and ``dmp summary``), CUPED on a chosen pre-period,
and the cost of the deliveries with the incremental ROI, on a small lake with known answers."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dmp.contracts import tables
from dmp.contracts.channels import parse_channels
from dmp.contracts.errors import DmpError
from dmp.spark import lake as lk

R = date(2026, 3, 15)
SEGMENTS = ["strong", "weak", "costly", "skewed"]
Z = 1.959963984540054


def d(offset: int) -> date:
    return R + timedelta(days=offset)


def _daily(user: str, day: date, gmv: float) -> tuple:
    return (user, day, "S001", "B001", "C01", 0, 0, 0, 0, 0, 0, 1, gmv, 0, 0)


def _event(i: int, user: str, day: date, coupon: str) -> tuple:
    at = datetime(day.year, day.month, day.day, 10)
    return (
        f"e{i}",
        at,
        day,
        user,
        "coupon_redeem",
        None,
        "S001",
        None,
        None,
        None,
        None,
        "app",
        coupon,
        "x",
        at,
    )


def _spec(name: str, holdout: float, extra: str = "") -> str:
    return f"""
name: {name}
description: trust test pack {name}
kind: store_revisit
scope: {{store_ids: [S001]}}
window_days: 14
behaviors: [view]
attribution_days: 3
holdout: {holdout}
{extra}"""


CHANNELS = """
channels:
  jd_ads:
    type: ad
    destination: file:///tmp/dmp-trust/ads
    id_types: [oaid]
    hash: {oaid: md5}
    cost: {per_mille: 20}
  coupon_center:
    type: coupon
    destination: file:///tmp/dmp-trust/coupons
    id_types: [user_id]
    hash: {user_id: none}
    cost: {per_user: 0.5, coupon_redemptions: true}
"""


def _group(prefix: str, n_t: int, n_h: int) -> list[tuple[str, str]]:
    return [(f"{prefix}_t{i}", "treatment") for i in range(n_t)] + [
        (f"{prefix}_h{i}", "holdout") for i in range(n_h)
    ]


# the costly pack: treated GMV 100, 0, 0, 80, 0, 0; holdout 40, 0, 0, 0 (R+1 … R+3)
COSTLY_T = [100.0, 0.0, 0.0, 80.0, 0.0, 0.0]
COSTLY_H = [40.0, 0.0, 0.0, 0.0]
COUPONS_T = [10.0, 0.0, 0.0, 20.0, 0.0, 0.0]  # c_t0 redeemed once, c_t3 twice, coupon value 10


def write_trust_lake(spark, root: Path) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    from dmp.spark.schemas import AUDIENCE_PACKS, DELIVERIES_SCHEMA, EVENTS, USER_DAILY
    from tests.support.factories import padded

    lake = str(root / "lake")
    packs = {
        "strong": _group("s", 100, 100),
        "weak": _group("w", 100, 100),
        "costly": _group("c", 6, 4),
        "skewed": _group("k", 180, 20),  # the spec says 50 % holdout: a broken split
    }
    daily = [_daily(f"s_t{i}", d(1), 50.0) for i in range(50)] + [
        _daily(f"s_h{i}", d(1), 50.0) for i in range(20)
    ]
    daily += [_daily(f"s_t{i}", d(-1), 30.0) for i in range(0, 100, 4)]  # earlier buyers, both groups
    daily += [_daily(f"s_h{i}", d(-1), 30.0) for i in range(0, 100, 4)]
    daily += [_daily(f"w_t{i}", d(2), 20.0) for i in range(20)] + [
        _daily(f"w_h{i}", d(2), 20.0) for i in range(12)
    ]
    daily += [_daily(f"k_t{i}", d(3), 10.0) for i in range(18)] + [
        _daily(f"k_h{i}", d(3), 10.0) for i in range(2)
    ]
    daily += [_daily(f"c_t{i}", d(1 + i % 2), v) for i, v in enumerate(COSTLY_T) if v]
    daily += [_daily(f"c_h{i}", d(2), v) for i, v in enumerate(COSTLY_H) if v]
    daily += [_daily("c_t1", d(-2), 20.0), _daily("c_h1", d(0), 30.0)]  # pre-period: R-2 and R
    spark.createDataFrame(daily, USER_DAILY).write.format("delta").partitionBy("event_date").save(
        tables.table_path(lake, tables.USER_DAILY)
    )
    rows = [
        (seg, R, user, group, None, "r", "h", "store_revisit", True)
        for seg, users in packs.items()
        for user, group in users
    ]
    spark.createDataFrame(padded(rows, AUDIENCE_PACKS), AUDIENCE_PACKS).write.format("delta").partitionBy(
        "segment", "run_date"
    ).save(tables.table_path(lake, tables.AUDIENCE_PACKS))
    events = [
        _event(1, "c_t0", d(1), "CP-X"),
        _event(2, "c_t3", d(2), "CP-X"),
        _event(3, "c_t3", d(3), "CP-X"),
        _event(4, "c_t4", d(5), "CP-X"),  # after the window: not the campaign's cost
        _event(5, "c_t1", d(1), "CP-OTHER"),  # another coupon
        _event(6, "c_h0", d(1), "CP-X"),  # a holdout user: warned, not charged
    ]
    spark.createDataFrame(events, EVENTS).write.format("delta").partitionBy("event_date").save(
        tables.table_path(lake, tables.EVENTS)
    )
    delivered = root / "delivered"
    at = datetime(2026, 3, 15, 8)
    deliveries = []
    for channel, matched in (("jd_ads", 5), ("coupon_center", 6)):
        folder = delivered / channel
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text(json.dumps({"counts": {"matched_users": matched}}))
        url = folder.as_uri()
        deliveries += [
            ("costly", channel, R, 1, "full", f"{url}/full.csv.gz", matched, "s1", "success", at, None),
            ("costly", channel, R, 1, "manifest", f"{url}/manifest.json", None, "s2", "success", at, None),
        ]
    spark.createDataFrame(deliveries, DELIVERIES_SCHEMA).write.format("delta").save(
        tables.table_path(lake, tables.DELIVERIES)
    )
    segments = root / "segments"
    segments.mkdir()
    (segments / "channels.yaml").write_text(CHANNELS)
    for name in ("strong", "weak", "skewed"):
        (segments / f"{name}.yaml").write_text(_spec(name, 0.5))
    coupon = "channels: [jd_ads, coupon_center]\ncoupon: {coupon_id: CP-X, value: 10, valid_days: 3}\n"
    (segments / "costly.yaml").write_text(_spec("costly", 0.4, coupon))
    return lake, segments


@pytest.fixture(scope="module")
def trust_lake(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:  # type: ignore[no-untyped-def]
    """The four packs evaluated together once, as the uplift DAG's batch for run date R does."""
    from dmp.cli import app

    root = tmp_path_factory.mktemp("trust")
    lake, segments = write_trust_lake(spark, root)
    out = root / "reports"
    args = ["evaluate", "--lake", lake, "--segments", str(segments), "--run-date", str(R), "--out", str(out)]
    for segment in SEGMENTS:
        args += ["--segment", segment]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert res.output.count("metric rows for") == 4
    return lake, segments, out


def _report(out: Path, segment: str) -> dict:
    return json.loads((out / segment / "report.json").read_text())


def _results(spark, lake: str) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    return lk.read_table(spark, lake, tables.UPLIFT_RESULTS).toPandas()


def test_holm_across_the_packs_of_the_run_date(spark, trust_lake: tuple[str, Path, Path]) -> None:  # type: ignore[no-untyped-def]
    from statsmodels.stats.multitest import multipletests

    lake, _, out = trust_lake
    reports = {s: _report(out, s) for s in SEGMENTS}
    raw = [reports[s]["p_value"] for s in SEGMENTS]
    assert all(p is not None for p in raw)
    expected = multipletests(raw, method="holm")[1]
    assert [reports[s]["p_value_holm"] for s in SEGMENTS] == pytest.approx(list(expected), rel=1e-12)
    assert all(reports[s]["multiple_testing"]["family_size"] == 4 for s in SEGMENTS)
    strong = reports["strong"]
    assert (
        strong["p_value"] < 1e-4
        and strong["conclusive"] is True
        and strong["warnings"]
        == [
            "no delivery of this pack is recorded in ops/deliveries: treatment users may never have been contacted"
        ]
    )
    assert strong["verdict"].startswith("the campaign raised conversion by +30.00 points")
    assert strong["verdict"].endswith(
        f"; p = {strong['p_value_holm']:.3g} adjusted for 4 packs (Holm), below 0.05: the result holds"
    )
    assert "adjusted for 4 packs (Holm), not below 0.05" in reports["weak"]["verdict"]
    results = _results(spark, lake)
    holm = results[results["metric"] == "p_value_holm"].set_index("segment")["value"]
    assert [holm[s] for s in SEGMENTS] == pytest.approx(list(expected), rel=1e-12)
    family = results[results["metric"] == "holm_family_size"]
    assert set(family["value"]) == {4.0} and len(family) == 4
    page = (out / "strong" / "report.html").read_text()
    assert "p-value adjusted for 4 packs of this run date (Holm)" in page


def test_sample_ratio_mismatch_is_flagged_and_not_conclusive(
    spark, trust_lake: tuple[str, Path, Path]
) -> None:  # type: ignore[no-untyped-def]
    from scipy.stats import chi2

    lake, _, out = trust_lake
    skewed = _report(out, "skewed")
    # 180 / 20 against 100 / 100: 80²/100 + 80²/100 = 128
    assert skewed["srm_chi2"] == pytest.approx(128.0)
    assert skewed["srm_p_value"] == pytest.approx(chi2.sf(128.0, 1), rel=1e-9)
    assert skewed["srm_mismatch"] is True and skewed["conclusive"] is False
    assert skewed["warnings"][0].startswith(
        "sample ratio mismatch: the holdout is 10.00% of the users but the design says 50.00%"
    )
    assert "(sample ratio mismatch, p = " in skewed["verdict"] and "cannot be trusted" in skewed["verdict"]
    # the pack's spec_hash ("h") is not today's spec: the mismatch may be an edit of the holdout
    assert any(
        w.startswith("the spec changed since this pack was built (spec_hash h then")
        for w in skewed["warnings"]
    )
    strong, costly = _report(out, "strong"), _report(out, "costly")
    assert (strong["srm_chi2"], strong["srm_mismatch"]) == (0.0, False) and strong[
        "srm_p_value"
    ] == pytest.approx(1.0)
    assert costly["expected_holdout_share"] == 0.4 and costly["srm_chi2"] == pytest.approx(0.0)
    results = _results(spark, lake)
    srm = results[results["metric"] == "srm_chi2"].set_index("segment")["value"]
    assert srm["skewed"] == pytest.approx(128.0) and srm["strong"] == 0.0
    page = (out / "skewed" / "report.html").read_text()
    assert "MISMATCH: assignment or delivery is broken" in page


def test_cost_and_incremental_roi_known_answer(spark, trust_lake: tuple[str, Path, Path]) -> None:  # type: ignore[no-untyped-def]
    lake, _, out = trust_lake
    r = _report(out, "costly")
    # jd_ads: 5 delivered x 20 per mille = 0.10; coupon_center: 6 x 0.50 = 3.00 + 3 redemptions x 10 = 30
    assert r["cost_by_channel"] == {
        "coupon_center": {
            "delivered_users": 6, "delivery": 3.0, "coupons": 30.0, "coupon_id": "CP-X", "coupon_value": 10.0,
            "redemptions": 3, "total": 33.0},
        "jd_ads": {"delivered_users": 5, "delivery": pytest.approx(0.1), "coupons": 0.0, "total": pytest.approx(0.1)},
    }  # fmt: skip
    assert (r["cost"], r["cost_delivery"], r["cost_coupons"]) == pytest.approx((33.1, 3.1, 30.0))
    # incremental GMV: (180 / 6 - 40 / 4) x 6 = 120; ROI = (120 - 33.1) / 33.1
    assert r["incremental_value"] == pytest.approx(120.0)
    assert r["roi"] == pytest.approx((120 - 33.1) / 33.1)
    v_t, v_c, c_t = np.array(COSTLY_T), np.array(COSTLY_H), np.array(COUPONS_T)
    dd, k = v_t.mean() - v_c.mean(), 3.1 / 6 + c_t.mean()
    var = (
        (v_t.var(ddof=1) / 6 + v_c.var(ddof=1) / 4) / k**2
        + dd**2 * (c_t.var(ddof=1) / 6) / k**4
        - 2 * dd * (np.cov(v_t, c_t, ddof=1)[0, 1] / 6) / k**3
    )
    roi = dd / k - 1
    assert r["roi_ci"] == pytest.approx([roi - Z * math.sqrt(var), roi + Z * math.sqrt(var)], rel=1e-9)
    assert "delta-method" in r["methods"]["roi_ci"]
    assert any(w.startswith("1 redemption(s) of coupon CP-X by holdout users") for w in r["warnings"])
    results = _results(spark, lake)
    costly = results[results["segment"] == "costly"].set_index("metric")
    assert costly.loc["cost", "value"] == pytest.approx(33.1)
    assert costly.loc["roi", ["value", "ci_low", "ci_high"]].tolist() == pytest.approx([roi, *r["roi_ci"]])
    assert costly.loc["incremental_value", "value"] == pytest.approx(120.0)
    page = (out / "costly" / "report.html").read_text()
    assert "Incremental ROI = (incremental GMV - cost) / cost" in page and "262.5%" in page
    # the other packs were never delivered: no cost, said so
    strong = _report(out, "strong")
    assert strong["cost"] is None and strong["roi"] is None and "no delivery" in strong["cost_note"]


def test_cuped_and_the_pre_period_length(spark, trust_lake: tuple[str, Path, Path]) -> None:  # type: ignore[no-untyped-def]
    from dmp.stats.cuped import Moments, cuped
    from dmp.steps.evaluate import compute_pack

    lake, segments, out = trust_lake
    strong = _report(out, "strong")
    # every 4th user of each group bought on R-1 (pre-period R-2 … R): CUPED beside the plain estimate
    assert strong["pre_period_days"] == 3 and strong["pre_window"] == ["2026-03-13", "2026-03-15"]
    y_t = np.array([1.0] * 50 + [0.0] * 50)
    y_c = np.array([1.0] * 20 + [0.0] * 80)
    x = np.array([1.0 if i % 4 == 0 else 0.0 for i in range(100)])
    want = cuped(Moments.of(y_t, x), Moments.of(y_c, x))
    assert strong["uplift_abs"] == pytest.approx(0.30)
    assert strong["uplift_abs_cuped"] == pytest.approx(float(want.estimate))
    assert strong["uplift_abs_cuped_ci"] == pytest.approx([float(want.low), float(want.high)])
    assert strong["variance_reduction"] == pytest.approx(float(want.variance_reduction))
    assert strong["incremental_value_cuped"] is not None  # GMV on pre_value
    results = _results(spark, lake)
    rows = results[results["segment"] == "strong"].set_index("metric")
    assert rows.loc["variance_reduction", "value"] == pytest.approx(float(want.variance_reduction))
    assert rows.loc["uplift_abs_cuped", "ci_high"] == pytest.approx(float(want.high))

    # costly: c_t1 bought on R-2, c_h1 on R; a 1-day pre-period (R … R) sees only c_h1
    three = compute_pack(spark, lake, "costly", R, segments_dir=str(segments), out_dir=out / "x3").report
    one = compute_pack(
        spark, lake, "costly", R, segments_dir=str(segments), out_dir=out / "x1", pre_period_days=1
    ).report
    assert (three["pre_rate_treatment"], three["pre_rate_control"]) == pytest.approx((1 / 6, 1 / 4))
    assert (one["pre_rate_treatment"], one["pre_rate_control"]) == pytest.approx((0.0, 1 / 4))
    assert one["pre_window"] == ["2026-03-15", "2026-03-15"] and one["pre_period_days"] == 1
    with pytest.raises(DmpError, match=r"--pre-period-days: expected 1 … 90 days, got 0"):
        compute_pack(
            spark, lake, "costly", R, segments_dir=str(segments), out_dir=out / "x0", pre_period_days=0
        )


def test_summary_adjusts_every_run_date_across_its_packs(spark, trust_lake: tuple[str, Path, Path]) -> None:  # type: ignore[no-untyped-def]
    """Read-time Holm: after one pack is evaluated again on its own (its stored adjustment is then for
    1 pack), ``dmp summary`` still adjusts across all 4 packs of the run date."""
    from statsmodels.stats.multitest import multipletests

    from dmp.cli import app
    from dmp.cli.ops import collect_summary
    from dmp.steps.evaluate import evaluate_pack, evaluate_packs

    lake, segments, out = trust_lake
    alone = evaluate_pack(
        spark, lake, "weak", R, segments_dir=str(segments), out_dir=out / "weak_alone"
    ).report
    assert alone["p_value_holm"] == pytest.approx(alone["p_value"]) and "Holm" not in alone["verdict"]
    results = _results(spark, lake)
    stored = results[(results["metric"] == "p_value_holm") & (results["segment"] == "weak")]["value"]
    assert stored.tolist() == pytest.approx([alone["p_value"]])

    uplift = {u["segment"]: u for u in collect_summary(lake)["uplift"]}
    raw = [uplift[s]["p_value"][0] for s in SEGMENTS]
    expected = multipletests(raw, method="holm")[1]
    assert [uplift[s]["holm"]["p_value"] for s in SEGMENTS] == pytest.approx(list(expected), rel=1e-12)
    assert {uplift[s]["holm"]["family_size"] for s in SEGMENTS} == {4}
    assert uplift["strong"]["verdict"] == (
        f"raised conversion by +30.00 points; p = {expected[0]:.3g} adjusted for 4 packs (Holm), below 0.05: "
        "the result holds"
    )
    assert uplift["skewed"]["verdict"].startswith("SAMPLE RATIO MISMATCH (p = ")
    assert uplift["costly"]["cost"][0] == pytest.approx(33.1)
    res = CliRunner().invoke(app, ["summary", "--lake", lake])
    assert res.exit_code == 0, res.output
    assert "p (Holm)" in res.output and "(4 packs)" in res.output

    # a batch with a pack that cannot be evaluated: the others are written, then the failure is raised
    with pytest.raises(
        DmpError, match=r"1 of 2 packs of 2026-03-15 could not be evaluated \(written: weak;"
    ) as err:
        evaluate_packs(spark, lake, ["weak", "ghost"], R, segments_dir=str(segments), out_dir=out / "batch2")
    assert "ghost: " in str(err.value) and "no valid spec named 'ghost'" in str(err.value)
    assert _report(out / "batch2", "weak")["multiple_testing"]["family_size"] == 1
    with pytest.raises(DmpError, match="--segment: weak given twice"):
        evaluate_packs(spark, lake, ["weak", "weak"], R, segments_dir=str(segments))


# ---------------------------------------------------------------------------------------------
# the cost of a pack, without Spark
# ---------------------------------------------------------------------------------------------


def _config(cost_jd: str = "{per_user: 0.02}") -> object:
    import yaml

    raw = yaml.safe_load(CHANNELS.replace("{per_mille: 20}", cost_jd))
    return parse_channels(raw, Path("segs/channels.yaml"))


def test_pack_cost_says_why_it_is_unknown(tmp_path: Path) -> None:
    from dmp.steps.evaluate_cost import pack_cost, read_delivered_users

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"counts": {"matched_users": 1200}}))
    config = _config()
    where = "segs/channels.yaml"
    known = pack_cost(["jd_ads"], config, {"jd_ads": str(manifest)}, None, None, where)  # type: ignore[arg-type]
    assert known.fixed == pytest.approx(24.0) and known.note is None  # 1,200 x 0.02
    assert known.by_channel["jd_ads"]["delivered_users"] == 1200

    none = pack_cost([], config, {}, None, None, where)  # type: ignore[arg-type]
    assert none.fixed is None and "no delivery of this pack is recorded" in str(none.note)
    no_file = pack_cost(["jd_ads"], None, {}, None, None, where)
    assert (
        no_file.fixed is None
        and no_file.note == "segs/channels.yaml: no channels file, so the channels' costs are not known"
    )
    unpriced = pack_cost(["jd_ads", "sms"], config, {"jd_ads": str(manifest)}, None, None, where)  # type: ignore[arg-type]
    assert unpriced.fixed is None and unpriced.note == (
        "cost not known for sms (set channels.<name>.cost in segs/channels.yaml: per_user, per_mille or "
        "coupon_redemptions), so no ROI"
    )
    lost = pack_cost(["jd_ads"], config, {"jd_ads": str(tmp_path / "gone.json")}, None, None, where)  # type: ignore[arg-type]
    assert lost.fixed is None and lost.warnings[0].startswith(
        "cost of jd_ads not known: its delivered users could not be read"
    )
    coupon = pack_cost(["coupon_center"], config, {"coupon_center": str(manifest)}, None, None, where)  # type: ignore[arg-type]
    assert coupon.fixed is None and coupon.warnings == [
        "cost of coupon_center not known: the spec has no coupon whose redemptions to price"
    ]
    manifest.write_text(json.dumps({"counts": {"matched_users": "many"}}))
    with pytest.raises(
        DmpError, match=r"counts.matched_users is 'many'; expected a count of delivered users"
    ):
        read_delivered_users(str(manifest))
    manifest.write_text("{not json")
    with pytest.raises(DmpError, match="not valid JSON"):
        read_delivered_users(manifest.as_uri())
