"""The uplift pack through the real build on a small generated lake with planted uplift types.

The generator (``uplift_types=True``) plants sure things (high baseline, no effect), persuadables (low
baseline, large effect) and others, runs the spring_revisit campaign on R1 and again on R2 = R1 + 14
(the held-out campaign, whose potential outcomes y0 / y1 are in the truth). On R2 we build, from the
lake only: the rerun's audience, a lookalike of the S001 buyers of the last 14 days (users who *look
like buyers*) and an uplift pack learnt from the R1 campaign. Ranked on the held-out campaign's
users, the uplift pack's top 30 % must capture at least twice the true incremental conversions
(y1 - y0 from the planted truth) of the lookalike's top 30 %; the stored Qini / AUUC must equal
scikit-uplift's on the same held-out users.
"""

from __future__ import annotations

import json
import warnings
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dmp.contracts import tables
from dmp.contracts.holdout import holdout_bucket
from dmp.contracts.tag_config import TagConfig
from dmp.demo.generate import generate
from dmp.spark import lake as lk
from dmp.steps.aggregate import aggregate_days
from dmp.steps.evaluate import evaluate_pack
from dmp.steps.ingest import run_ingest
from dmp.steps.packs import build_packs
from dmp.steps.tags import run_tags

START = date(2026, 9, 1)
DAYS = 45
R1 = START + timedelta(days=DAYS - 1 - 28)  # the campaign (its rerun and the rerun's window fit after it)
R2 = R1 + timedelta(days=14)  # the held-out campaign: the rerun, and the day the packs are built
USERS = 6000
TOP = 0.3

CAMPAIGN = {
    "name": "spring_revisit",
    "kind": "store_revisit",
    "scope": {"store_ids": ["S001"]},
    "window_days": 14,
    "attribution_days": 14,
    "behaviors": ["view", "cart_add", "favorite"],
    "exclude_purchasers": True,
    "holdout": 0.2,
    "holdout_salt": "dmp-v1",
}
BUYERS = {
    "name": "s001_buyers",
    "kind": "store_revisit",
    "scope": {"store_ids": ["S001"]},
    "window_days": 14,
    "behaviors": ["order"],
    "exclude_purchasers": False,
    "holdout": 0.0,
}
LOOKALIKE = {
    "name": "buyers_lookalike",
    "kind": "lookalike",
    "seed": {"segment": "s001_buyers"},
    "expansion": {"size": USERS},  # every candidate, so it can be ranked on the held-out campaign
    "holdout": 0.0,
}
UPLIFT = {
    "name": "rerun_uplift",
    "kind": "uplift",
    "from_campaign": {"segment": "spring_revisit", "run_date": R1},
    "target": {"top_share": 1.0},  # every tagged user, ranked
    "holdout": 0.0,
}
UPLIFT_TOP = {  # the same model, cut to its best 150 and then given a holdout and a max_size
    **UPLIFT,
    "name": "rerun_uplift_top",
    "target": {"size": 150},
    "holdout": 0.1,
    "max_size": 120,
}


def _write_specs(folder: Path, *specs: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("uplift")
    out, lake = root / "gen", str(root / "lake")
    summary = generate(out, USERS, DAYS, seed=11, start=START, bad_rate=0.0, uplift_types=True)
    assert summary.campaign is not None and summary.campaign["run_date"] == R1.isoformat()
    days = [START + timedelta(days=i) for i in range((R2 - START).days + 1)]  # the lake stops at R2
    run_ingest(spark, lake, str(out / "events"), "jsonl", days, skip_checks=True)
    aggregate_days(spark, lake, days, skip_checks=True)
    for day in (R1, R2):
        run_tags(spark, lake, day, TagConfig(), skip_checks=True)
    segments = _write_specs(root / "segments", CAMPAIGN, BUYERS, LOOKALIKE, UPLIFT, UPLIFT_TOP)
    first = build_packs(spark, lake, segments, R1, [segments / "spring_revisit.yaml"])
    assert first.ok, first.failed
    # not evaluated yet: the uplift pack refuses to learn from it
    early = build_packs(spark, lake, segments, R2, [segments / "rerun_uplift.yaml"])
    evaluate_pack(spark, lake, "spring_revisit", R1, segments_dir=str(segments), out_dir=str(root / "report"))
    report = build_packs(spark, lake, segments, R2)
    assert report.ok, [r.error for r in report.failed]
    packs = lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter(f"run_date = DATE'{R2}'").toPandas()
    runs = lk.read_table(spark, lake, tables.PACK_RUNS).filter(f"run_date = DATE'{R2}'").toPandas()
    return {
        "out": out,
        "lake": lake,
        "early": early,
        "report": report,
        "packs": packs,
        "runs": runs.set_index("segment"),
        "rerun_truth": pd.read_csv(out / "truth" / "campaign_rerun_users.csv", dtype={"user_id": str}),
        "truth": pd.read_csv(out / "truth" / "campaign_users.csv", dtype={"user_id": str}),
    }


def test_an_unevaluated_campaign_is_refused(built) -> None:
    [failed] = built["early"].failed
    assert failed.segment == "rerun_uplift"
    assert failed.error.endswith(
        f"from_campaign: the campaign spring_revisit/{R1} has not been evaluated ({tables.UPLIFT_RESULTS}); "
        f"run `dmp evaluate --segment spring_revisit --run-date {R1}` first"
    )


def _top_tau(packs: pd.DataFrame, segment: str, heldout: pd.DataFrame) -> tuple[float, int]:
    """True incremental conversions (sum of y1 - y0) of the top 30 % of the held-out campaign's users
    ranked by ``segment``'s score (ties by user_id), and how many of them that pack scored."""
    scores = packs[packs["segment"] == segment].set_index("user_id")["score"]
    ranked = heldout.assign(score=heldout["user_id"].map(scores)).dropna(subset=["score"])
    ranked = ranked.sort_values(["score", "user_id"], ascending=[False, True])
    top = ranked.head(int(round(TOP * len(heldout))))
    return float((top["y1"] - top["y0"]).sum()), len(ranked)


def test_uplift_top_30_captures_twice_the_lookalikes_incremental_conversions(built) -> None:
    packs, heldout = built["packs"], built["rerun_truth"]
    # the rerun pack built from the lake selects exactly the users the generator planted the rerun on
    rerun = packs[packs["segment"] == "spring_revisit"]
    assert sorted(rerun["user_id"]) == sorted(heldout["user_id"])
    uplift_tau, n_uplift = _top_tau(packs, "rerun_uplift", heldout)
    lookalike_tau, n_lookalike = _top_tau(packs, "buyers_lookalike", heldout)
    all_tau = float((heldout["y1"] - heldout["y0"]).sum())
    types = heldout.groupby("uplift_type").size().to_dict()
    print(
        f"\nheld-out campaign: {len(heldout)} users {types}, true incremental conversions {all_tau:.0f}; "
        f"top {TOP:.0%}: uplift {uplift_tau:.0f}, lookalike {lookalike_tau:.0f}, "
        f"random {TOP * all_tau:.1f} expected"
    )
    assert n_uplift == len(heldout)  # every held-out user was scored by both packs
    assert n_lookalike == len(heldout)
    assert uplift_tau >= 2 * lookalike_tau
    assert uplift_tau > 1.5 * TOP * all_tau  # and well above a random 30 %
    # The same judgement from what a marketer can observe: the rerun's realised outcomes (treatment
    # y1, holdout y0), Qini of each pack's ranking (scikit-uplift, normalised: 1 = perfect, 0 = random).
    uplift_qini, lookalike_qini = (
        _rerun_qini(packs, "rerun_uplift", heldout),
        _rerun_qini(packs, "buyers_lookalike", heldout),
    )
    k = int(round(TOP * len(heldout)))
    print(
        f"Qini on the rerun: uplift {uplift_qini:.4f}, lookalike {lookalike_qini:.4f}; incremental conversions "
        f"per contacted user in the top {k}: uplift {uplift_tau / k:.3f}, lookalike {lookalike_tau / k:.3f}"
    )
    # The lookalike's ranking is about as good as a random one (it favours the sure things, who look
    # like buyers); the uplift pack's is clearly better (measured: 0.0585 against 0.0045).
    assert uplift_qini > lookalike_qini + 0.04


def _rerun_qini(packs: pd.DataFrame, segment: str, heldout: pd.DataFrame) -> float:
    from sklift import metrics as sk

    scores = packs[packs["segment"] == segment].set_index("user_id")["score"]
    treated = (heldout["group"] == "treatment").astype(int)
    converted = np.where(treated == 1, heldout["y1"], heldout["y0"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(sk.qini_auc_score(converted, heldout["user_id"].map(scores).to_numpy(), treated))


def test_top_k_holdout_and_max_size_apply(built) -> None:
    packs, runs = built["packs"], built["runs"]
    full = packs[packs["segment"] == "rerun_uplift"].sort_values(
        ["score", "user_id"], ascending=[False, True]
    )
    top = packs[packs["segment"] == "rerun_uplift_top"]
    # target size 150, then max_size 120 keeps the best 120 of them, then the holdout is drawn
    assert sorted(top["user_id"]) == sorted(full["user_id"].head(120))
    expected_holdout = sum(holdout_bucket("dmp-v1", "rerun_uplift_top", u) < 0.1 for u in top["user_id"])
    assert (
        int((top["group"] == "holdout").sum())
        == expected_holdout
        == runs.loc["rerun_uplift_top", "holdout_size"]
    )
    metrics = json.loads(runs.loc["rerun_uplift_top", "metrics_json"])
    assert (metrics["capped_by_max_size"], metrics["candidates"], metrics["uplift"]["k"]) == (30, 150, 150)
    assert set(top["kind"]) == {"uplift"}


def test_stored_qini_and_auuc_equal_scikit_uplift(spark, built) -> None:
    """Recompute the held-out evaluation from outside the step: labels from the planted truth (not the
    lake), the split from the Python hash, the areas from scikit-uplift."""
    from dmp.transforms.lookalike import feature_vocabulary, with_lookalike_features
    from dmp.transforms.lookalike_model import feature_matrix
    from dmp.transforms.uplift_model import fit_uplift

    runs, truth = built["runs"], built["truth"]
    row = runs.loc["rerun_uplift"]
    metrics = json.loads(row["metrics_json"])["uplift"]
    assert "qini_auc" not in metrics  # one home: the columns
    tags_df = lk.read_table(spark, built["lake"], tables.USER_TAGS).filter(f"as_of_date = DATE'{R1}'")
    vocab = feature_vocabulary(tags_df)
    feats = tags_df.transform(with_lookalike_features, vocab).toPandas()
    assert metrics["features"][:3] == ["recency_days", "never_ordered", "log1p_frequency_90d"]
    treated = truth["group"] == "treatment"
    labels = pd.DataFrame(
        {
            "user_id": truth["user_id"],
            "treated": treated.astype(int),
            "converted": np.where(treated, truth["y1"], truth["y0"]),
        }
    )
    rows = feats.merge(labels, on="user_id")
    rows["_h"] = [holdout_bucket("uplift-0", "split", u) for u in rows["user_id"]]
    rows = rows.sort_values(["_h", "user_id"], kind="mergesort").reset_index(drop=True)
    test = rows["_h"] < 0.3
    model = fit_uplift(rows[~test], "t_learner", 0)
    held = rows[test]
    score = model.predict_uplift(feature_matrix(held))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklift import metrics as sk

        qini = sk.qini_auc_score(held["converted"], score, held["treated"])
        auuc = sk.uplift_auc_score(held["converted"], score, held["treated"])
    print(
        f"\nheld-out ({len(held)} users): qini {row['qini_auc']:.4f} (sklift {qini:.4f}), auuc {row['uplift_auc']:.4f}"
    )
    assert metrics["n_test"] == len(held) and metrics["n_campaign_users"] == len(rows)
    assert row["qini_auc"] == pytest.approx(qini, abs=1e-9)
    assert row["uplift_auc"] == pytest.approx(auuc, abs=1e-9)
    # better than random on users it never saw (normalised to a perfect ranking of the realised
    # outcomes, which no model approaches: 0.027 on this lake)
    assert row["qini_auc"] > 0.01
    # other kinds leave the columns null
    assert (
        np.isnan(runs.loc["buyers_lookalike", "qini_auc"]) or runs.loc["buyers_lookalike", "qini_auc"] is None
    )


def test_the_campaign_must_exist_and_be_over_by_the_run_date() -> None:
    from dmp.contracts.errors import SpecError
    from dmp.contracts.specs import SegmentSpec
    from dmp.steps.uplift_pack import campaign_of

    spec = SegmentSpec.model_validate(UPLIFT)
    campaign = SegmentSpec.model_validate(CAMPAIGN)
    assert campaign_of(spec, {"spring_revisit": campaign}, R1 + timedelta(days=14)) is campaign
    with pytest.raises(SpecError) as err:
        campaign_of(spec, {}, R2)
    assert str(err.value) == (
        "from_campaign.segment: no valid spec named 'spring_revisit' (its scope and attribution_days "
        "define the outcome the model learns)"
    )
    with pytest.raises(SpecError) as err:
        campaign_of(spec, {"spring_revisit": campaign}, R1 + timedelta(days=13))
    assert str(err.value) == (
        f"from_campaign.run_date: the campaign of {R1} is judged on {R1 + timedelta(days=1)} … "
        f"{R1 + timedelta(days=14)} (spring_revisit's attribution_days 14); a pack built on "
        f"{R1 + timedelta(days=13)} cannot learn from it: build it on {R1 + timedelta(days=14)} or later"
    )
