"""The uplift kind's reads: the completed campaign it learns from, and the held-out Qini / AUUC.

An ``uplift`` spec names ``from_campaign: {segment, run_date}``. Its training rows are that pack's
users (treatment and holdout, every one: intent to treat) with their outcome in the campaign spec's
scope over its attribution window (the functions ``dmp evaluate`` reads them with) and their tags
of the campaign's run date; :mod:`dmp.transforms.uplift_model` fits and scores. The campaign must
be over before the new run date (its window R+1 … R+N ends on or before it: no outcome from the
future of the build) and evaluated (``gold/uplift_results`` has it: a marketer has seen whether it
worked at all before its effect is targeted).

The held-out split's Qini and uplift-curve areas (:func:`dmp.stats.qini.score_metrics`) go to the
pack run's ``qini_auc`` / ``uplift_auc`` columns of ``ops/pack_runs``; the rest of the model's
description to its ``metrics_json`` (``uplift``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from dmp.contracts import tables
from dmp.contracts.errors import SpecError
from dmp.contracts.specs import SegmentSpec
from dmp.contracts.vocab import HOLDOUT, TREATMENT
from dmp.spark import lake as lk
from dmp.stats.qini import score_metrics
from dmp.steps.evaluate import check_window_closed, load_pack, load_user_daily
from dmp.transforms.lookalike import feature_columns, feature_vocabulary, top_k, with_lookalike_features
from dmp.transforms.outcomes import OutcomeScope, with_outcomes
from dmp.transforms.packs import lookalike_candidates
from dmp.transforms.uplift_model import HeldOut, campaign_training_df, score_uplift, target_size, train_uplift

RANDOM_STATE = 0
TEST_SHARE = 0.3  # of the campaign's users, held out of the evaluation fit


def campaign_of(spec: SegmentSpec, specs: dict[str, SegmentSpec], run_date: date) -> SegmentSpec:
    """The campaign's spec (its scope says what a conversion is, its attribution_days how long),
    checked to be over by ``run_date``."""
    assert spec.from_campaign is not None
    name, day = spec.from_campaign.segment, spec.from_campaign.run_date
    campaign = specs.get(name)
    if campaign is None:
        raise SpecError(
            f"from_campaign.segment: no valid spec named {name!r} (its scope and attribution_days define "
            "the outcome the model learns)"
        )
    last = day + timedelta(days=campaign.attribution_days)
    if last > run_date:
        raise SpecError(
            f"from_campaign.run_date: the campaign of {day} is judged on {day + timedelta(days=1)} … {last} "
            f"({name}'s attribution_days {campaign.attribution_days}); a pack built on {run_date} cannot learn "
            f"from it: build it on {last} or later"
        )
    return campaign


def _check_evaluated(spark: SparkSession, lake: str, segment: str, day: date) -> None:
    hint = f"run `dmp evaluate --segment {segment} --run-date {day}` first"
    found = lk.table_exists(spark, lake, tables.UPLIFT_RESULTS) and (
        lk.read_table(spark, lake, tables.UPLIFT_RESULTS)
        .filter((F.col("segment") == segment) & (F.col("run_date") == F.lit(day)))
        .limit(1)
        .count()
        > 0
    )
    if not found:
        raise SpecError(
            f"from_campaign: the campaign {segment}/{day} has not been evaluated ({tables.UPLIFT_RESULTS}); {hint}"
        )


def campaign_outcomes(spark: SparkSession, lake: str, campaign: SegmentSpec, day: date) -> DataFrame:
    """``user_id, group, converted`` of every user of the campaign's pack of ``day``."""
    daily_df = load_user_daily(spark, lake)
    check_window_closed(daily_df, day, campaign.attribution_days, allow_open=False)
    pack_df = load_pack(spark, lake, campaign.name, day)
    outcomes_df = with_outcomes(
        pack_df, daily_df, day, campaign.attribution_days, OutcomeScope.of_spec(campaign)
    )
    return outcomes_df.select("user_id", "group", "converted")


def held_out_metrics(held: HeldOut) -> dict[str, Any]:
    """Qini / uplift-curve areas and uplift at the top shares of the held-out campaign users."""
    frame = pd.DataFrame(
        {
            "converted": held.converted,
            "score": held.score,
            "group": [TREATMENT if t else HOLDOUT for t in held.treated],
        }
    )
    metrics = score_metrics(frame) if len(frame) else {"qini_auc": None, "uplift_auc": None}
    metrics.update(
        {
            "n_test": len(frame),
            "n_test_treatment": int(held.treated.sum()),
            "n_test_converted": int(held.converted.sum()),
        }
    )
    return metrics


def uplift_candidates(
    spark: SparkSession,
    lake: str,
    spec: SegmentSpec,
    run_date: date,
    tags_df: DataFrame,
    campaign_tags_df: DataFrame,
    specs: dict[str, SegmentSpec],
) -> tuple[DataFrame, dict[str, Any]]:
    """The top K users of ``tags_df`` (the run date's snapshot) by predicted uplift, as pack
    candidates, and the model's metrics (``qini_auc`` / ``uplift_auc`` among them)."""
    assert spec.from_campaign is not None and spec.target is not None
    campaign = campaign_of(spec, specs, run_date)
    day = spec.from_campaign.run_date
    _check_evaluated(spark, lake, campaign.name, day)
    vocab = feature_vocabulary(campaign_tags_df)
    training_df = campaign_training_df(campaign_outcomes(spark, lake, campaign, day), campaign_tags_df, vocab)
    trained = train_uplift(
        training_df,
        spec.uplift_model,
        random_state=RANDOM_STATE,
        test_share=TEST_SHARE,
        label=f"from_campaign {campaign.name}/{day}",
    )
    n_users = tags_df.count()
    k = target_size(n_users, spec.target.size, spec.target.top_share)
    scored_df = score_uplift(tags_df.transform(with_lookalike_features, vocab), trained.model)
    top_df = top_k(scored_df, k).withColumn("reason", F.lit(f"uplift:{spec.uplift_model}"))
    metrics: dict[str, Any] = {
        "model": spec.uplift_model,
        "outcome": spec.outcome,
        "campaign": {
            "segment": campaign.name,
            "run_date": day.isoformat(),
            "window_days": campaign.attribution_days,
        },
        "n_campaign_users": trained.n_users,
        "n_campaign_treatment": trained.n_treatment,
        "n_campaign_holdout": trained.n_holdout,
        "n_eval_train": trained.n_train,
        "n_users": n_users,
        "k": k,
        **held_out_metrics(trained.held_out),
        "test_share": TEST_SHARE,
        "random_state": RANDOM_STATE,
        "features": [name for name, _ in feature_columns(vocab)],
    }
    return lookalike_candidates(top_df, tags_df), metrics
