"""Lookalike audiences: learn what a seed audience looks like in the tags, find more users like it.

Features come from one ``gold/user_tags`` snapshot and are built in Spark as column expressions
(:func:`with_lookalike_features`), so training rows and scored rows go through exactly the same code:

* numeric tags: recency (0 when the user never ordered, plus a ``never_ordered`` indicator),
  ``log1p`` of the counts and money (orders, GMV, average order value, views, carts), active days,
  days since last activity, days since first seen, consumption level, cart-abandoner flag;
* coupon sensitivity (0 when unknown) with a ``coupon_unknown`` missing indicator;
* lifecycle stage one-hot and multi-hot of the top category / brand / store ids, for the catalogue
  values present in the snapshot (the ``max_vocab`` most frequent per column, so a catalogue of
  thousands of Taobao categories does not explode the feature count).

Training is small and happens on the driver: positives are the seed users (at most
``max_train_positives``), negatives a deterministic sample of non-seed users
(``negatives_ratio`` x positives). The model is a scikit-learn ``Pipeline`` (``StandardScaler`` then
logistic regression or ``HistGradientBoostingClassifier``, see :mod:`dmp.transforms.lookalike_model`).
Scoring of every user runs in Spark with ``mapInPandas`` and the fitted pipeline broadcast: nothing
proportional to the population is collected.

Every "random" choice (seed hold-out, negative sample) comes from a SHA-256 bucket of
``(lookalike-<random_state>, user_id)`` so a run is reproducible whatever the partitioning.

Honest quality (returned in the metrics): 20% of the seed is held out, a model is trained on the
rest, every user is scored, and we measure how many held-out seed users land in the top-K of the
candidates (everyone except the training positives and training negatives), with K scaled to the
same share of the candidates as the final K is of the non-seed population; the random baseline is
that share, lift = recall / random. AUC compares held-out seeds with a held-out negative sample that
was not used for training. The final scores come from a refit on the full seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from dmp.contracts.errors import DmpError
from dmp.contracts.holdout import holdout_bucket_col
from dmp.transforms.lookalike_model import (
    MODELS,
    auc,
    fit_pipeline,
    normalise_model,
    predict_scores,
    target_size,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

__all__ = [
    "MODELS",
    "FeatureVocabulary",
    "feature_columns",
    "feature_vocabulary",
    "score_lookalike",
    "score_users",
    "top_by_hash",
    "top_k",
    "with_lookalike_features",
]

# Catalogue columns turned into multi-hot features, with the short prefix used in feature names.
MULTI_HOT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("top_category_ids", "category"),
    ("top_brand_ids", "brand"),
    ("top_store_ids", "store"),
)
SCORE_SCHEMA = "user_id string, score double"


@dataclass(frozen=True)
class FeatureVocabulary:
    """The categorical values that become one-hot / multi-hot features (fixed before training)."""

    lifecycle_stages: tuple[str, ...]
    multi_hot: tuple[tuple[str, tuple[str, ...]], ...]  # (column, values)


def feature_vocabulary(tags_df: DataFrame, max_vocab: int = 30) -> FeatureVocabulary:
    """Lifecycle stages and the most frequent catalogue ids present in the snapshot (one small job)."""
    parts = [
        tags_df.select(F.lit("lifecycle_stage").alias("column"), F.col("lifecycle_stage").alias("value"))
    ]
    for column, _ in MULTI_HOT_COLUMNS:
        parts.append(tags_df.select(F.lit(column).alias("column"), F.explode_outer(column).alias("value")))
    values_df = parts[0]
    for part in parts[1:]:
        values_df = values_df.unionByName(part)
    rows = values_df.where(F.col("value").isNotNull()).groupBy("column", "value").count().collect()
    by_column: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        by_column.setdefault(row["column"], []).append((-int(row["count"]), str(row["value"])))

    def top(column: str, limit: int) -> tuple[str, ...]:
        ranked = sorted(by_column.get(column, []))[:limit]
        return tuple(sorted(value for _, value in ranked))

    return FeatureVocabulary(
        lifecycle_stages=top("lifecycle_stage", max_vocab),
        multi_hot=tuple((column, top(column, max_vocab)) for column, _ in MULTI_HOT_COLUMNS),
    )


def _log1p(column: str) -> Column:
    return F.log1p(F.greatest(F.coalesce(F.col(column).cast("double"), F.lit(0.0)), F.lit(0.0)))


def _num(column: str) -> Column:
    return F.coalesce(F.col(column).cast("double"), F.lit(0.0))


def feature_columns(vocab: FeatureVocabulary) -> list[tuple[str, Column]]:
    """(name, expression) of every feature, in the order of the feature vector."""
    feats: list[tuple[str, Column]] = [
        ("recency_days", _num("recency_days")),
        ("never_ordered", F.col("recency_days").isNull().cast("double")),
        ("log1p_frequency_90d", _log1p("frequency_90d")),
        ("log1p_monetary_90d", _log1p("monetary_90d")),
        ("log1p_avg_order_value_90d", _log1p("avg_order_value_90d")),
        ("log1p_views_30d", _log1p("views_30d")),
        ("log1p_carts_30d", _log1p("carts_30d")),
        ("log1p_orders_30d", _log1p("orders_30d")),
        ("active_days_30d", _num("active_days_30d")),
        (
            "days_since_active",
            F.coalesce(F.datediff("as_of_date", "last_active_date").cast("double"), F.lit(0.0)),
        ),
        (
            "days_since_first_seen",
            F.coalesce(F.datediff("as_of_date", "first_seen_date").cast("double"), F.lit(0.0)),
        ),
        ("consumption_level", _num("consumption_level")),
        ("coupon_sensitivity", _num("coupon_sensitivity")),
        ("coupon_unknown", F.col("coupon_sensitivity").isNull().cast("double")),
        ("is_cart_abandoner", F.coalesce(F.col("is_cart_abandoner").cast("double"), F.lit(0.0))),
    ]
    for stage in vocab.lifecycle_stages:
        feats.append(
            (f"lifecycle={stage}", F.coalesce((F.col("lifecycle_stage") == stage).cast("double"), F.lit(0.0)))
        )
    prefixes = dict(MULTI_HOT_COLUMNS)
    for column, values in vocab.multi_hot:
        for value in values:
            expr = F.coalesce(F.array_contains(F.col(column), value).cast("double"), F.lit(0.0))
            feats.append((f"{prefixes[column]}={value}", expr))
    return feats


def with_lookalike_features(tags_df: DataFrame, vocab: FeatureVocabulary) -> DataFrame:
    """``user_id`` and ``features`` (array<double>, order = :func:`feature_columns`), one row per user."""
    exprs = [expr for _, expr in feature_columns(vocab)]
    return tags_df.select(F.col("user_id"), F.array(*exprs).alias("features"))


def score_users(features_df: DataFrame, pipeline: Pipeline) -> DataFrame:
    """``user_id, score`` for every row of ``features_df``, computed in Spark with ``mapInPandas``.

    The fitted pipeline is broadcast once (falls back to shipping it in the task closure where no
    SparkContext is reachable, e.g. Spark Connect).
    """
    try:
        broadcast = features_df.sparkSession.sparkContext.broadcast(pipeline)

        def get_model() -> Pipeline:
            return broadcast.value
    except Exception:  # Spark Connect has no SparkContext

        def get_model() -> Pipeline:
            return pipeline

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        fitted = get_model()
        for pdf in batches:
            if len(pdf) == 0:
                continue
            yield pd.DataFrame({"user_id": pdf["user_id"].astype(str), "score": predict_scores(fitted, pdf)})

    return features_df.select("user_id", "features").mapInPandas(predict, SCORE_SCHEMA)


def top_k(scored_df: DataFrame, k: int) -> DataFrame:
    """Best ``k`` by score, ties broken by user_id (ascending) so the cut is deterministic."""
    return scored_df.orderBy(F.col("score").desc(), F.col("user_id").asc()).limit(max(int(k), 0))


def top_by_hash(df: DataFrame, n: int) -> DataFrame:
    """The ``n`` rows with the smallest sample hash: a deterministic sample of exactly ``n`` rows."""
    return df.orderBy(F.col("_h").asc(), F.col("user_id").asc()).limit(max(int(n), 0))


def _collect(df: DataFrame) -> pd.DataFrame:
    pdf = df.select("user_id", "features", "_h").toPandas()
    return pdf.sort_values(["_h", "user_id"], kind="mergesort").reset_index(drop=True)


def _labelled_df(
    tags_df: DataFrame, seed_ids_df: DataFrame, vocab: FeatureVocabulary, random_state: int
) -> DataFrame:
    """Every user's features, ``is_seed``, and ``_h``: the hash every sample below is cut on."""
    return (
        tags_df.transform(with_lookalike_features, vocab)
        .join(seed_ids_df.withColumn("is_seed", F.lit(True)), "user_id", "left")
        .withColumn("is_seed", F.coalesce(F.col("is_seed"), F.lit(False)))
        .withColumn("_h", holdout_bucket_col(f"lookalike-{random_state}", "sample", "user_id"))
    )


def _user_counts(
    labelled_df: DataFrame, seed_ids_df: DataFrame, min_seed: int, label: str
) -> tuple[int, int]:
    """(users, seed users) of the snapshot; too small a seed is an error naming the untagged ones."""
    counts = labelled_df.agg(
        F.count(F.lit(1)).alias("n_users"), F.sum(F.col("is_seed").cast("long")).alias("n_seed")
    ).first()
    n_users = int(counts["n_users"] or 0)
    n_seed = int(counts["n_seed"] or 0)
    if n_seed < min_seed:
        n_no_tags = seed_ids_df.count() - n_seed
        missing = f" ({n_no_tags} seed users have no tags)" if n_no_tags else ""
        raise DmpError(f"seed of segment {label} has {n_seed} users; at least {min_seed} needed{missing}")
    return n_users, n_seed


@dataclass(frozen=True)
class _Samples:
    """The rows collected to the driver, each in hash order (so every cut is reproducible)."""

    seeds: pd.DataFrame  # the final model's positives: every seed user, or a hash sample of them
    held: pd.DataFrame  # seed users held out of the evaluation fit
    train_pos: pd.DataFrame  # the evaluation fit's positives (seeds minus held)
    eval_neg: pd.DataFrame  # the evaluation fit's negatives
    auc_neg: pd.DataFrame  # negatives for the AUC, used by no fit
    final_neg: pd.DataFrame  # the final model's negatives
    holdout_cut: float  # seed users with _h below it are held out


def _samples(
    labelled_df: DataFrame,
    n_seed: int,
    negatives_ratio: float,
    holdout_share: float,
    max_train_positives: int,
) -> _Samples:
    # Positives: every seed user, or a deterministic sample of about max_train_positives of them.
    share_used = min(1.0, max_train_positives / n_seed)
    seeds_pdf = _collect(labelled_df.where(F.col("is_seed") & (F.col("_h") < F.lit(share_used))))
    holdout_cut = holdout_share * share_used
    held_pdf = seeds_pdf[seeds_pdf["_h"] < holdout_cut]
    train_pos_pdf = seeds_pdf[seeds_pdf["_h"] >= holdout_cut]
    n_eval_neg = int(math.ceil(negatives_ratio * len(train_pos_pdf)))
    n_auc_neg = min(int(math.ceil(negatives_ratio * len(held_pdf))), 50_000)
    n_final_neg = int(math.ceil(negatives_ratio * len(seeds_pdf)))
    negatives_pdf = _collect(
        top_by_hash(labelled_df.where(~F.col("is_seed")), max(n_final_neg, n_eval_neg + n_auc_neg))
    )
    return _Samples(
        seeds=seeds_pdf,
        held=held_pdf,
        train_pos=train_pos_pdf,
        eval_neg=negatives_pdf.iloc[:n_eval_neg],
        auc_neg=negatives_pdf.iloc[n_eval_neg : n_eval_neg + n_auc_neg],
        final_neg=negatives_pdf.iloc[:n_final_neg],
        holdout_cut=holdout_cut,
    )


def _evaluate(
    labelled_df: DataFrame, samples: _Samples, pipeline: Pipeline, k: int, n_users: int, n_seed: int
) -> dict[str, Any]:
    """Recall@k, lift and AUC of a model fitted without the held-out seeds (module docstring)."""
    held_cond = F.col("is_seed") & (F.col("_h") < F.lit(samples.holdout_cut))
    cut = samples.eval_neg.iloc[-1]
    in_eval_neg = ~F.col("is_seed") & (
        (F.col("_h") < F.lit(float(cut["_h"])))
        | ((F.col("_h") == F.lit(float(cut["_h"]))) & (F.col("user_id") <= F.lit(str(cut["user_id"]))))
    )
    eval_candidates_df = labelled_df.where(held_cond | (~F.col("is_seed") & ~in_eval_neg))
    # Held-out seeds all sit in the collected sample, so the counts need no extra Spark job.
    n_held = len(samples.held)
    n_candidates = n_users - n_seed
    n_eval_candidates = n_users - (n_seed - n_held) - len(samples.eval_neg)
    k_eval = int(round(k * n_eval_candidates / n_candidates)) if n_candidates else 0
    recall = random_recall = lift = None
    if n_held and n_eval_candidates:
        top_eval_df = top_k(score_users(eval_candidates_df, pipeline), k_eval)
        hits = top_eval_df.join(
            labelled_df.where(held_cond).select("user_id"), "user_id", "left_semi"
        ).count()
        recall = hits / n_held
        random_recall = min(1.0, k_eval / n_eval_candidates)
        lift = recall / random_recall if random_recall > 0 else None
    return {
        "n_holdout_seed": n_held,
        "n_eval_candidates": n_eval_candidates,
        "k_eval": k_eval,
        "recall_at_k": recall,
        "random_recall_at_k": random_recall,
        "lift": lift,
        "auc": auc(predict_scores(pipeline, samples.held), predict_scores(pipeline, samples.auc_neg)),
    }


def _check_options(negatives_ratio: float, holdout_share: float) -> None:
    if negatives_ratio <= 0:
        raise DmpError(f"lookalike negatives_ratio must be positive, got {negatives_ratio}")
    if not 0 < holdout_share < 1:
        raise DmpError(f"lookalike holdout_share must be in (0, 1), got {holdout_share}")


def score_lookalike(
    tags_df: DataFrame,
    seed_df: DataFrame,
    *,
    model: str = "logistic",
    size: int | None = None,
    ratio: float | None = None,
    min_seed: int = 50,
    negatives_ratio: float = 5.0,
    random_state: int = 0,
    segment: str | None = None,
    holdout_share: float = 0.2,
    max_train_positives: int = 50_000,
    max_vocab: int = 30,
) -> tuple[DataFrame, dict[str, Any]]:
    """Top-K non-seed users most like the seed: (``user_id, score, reason`` DataFrame, metrics).

    ``tags_df`` is one ``gold/user_tags`` snapshot (one row per user); ``seed_df`` has a ``user_id``
    column. Seed users without a tag row cannot be learnt from: ``n_seed`` counts the seed users
    present in the snapshot, and that is the number checked against ``min_seed``. The returned
    DataFrame is lazy and distributed (scoring runs in Spark, with ``mapInPandas``, when it is
    evaluated). See the module docstring for the features and how the quality metrics are measured.

    Metrics: ``n_train_pos`` / ``n_train_neg`` are the final model's training rows; ``n_eval_*``,
    ``n_holdout_seed``, ``n_eval_candidates`` and ``k_eval`` describe the evaluation fit behind
    ``recall_at_k``, ``random_recall_at_k``, ``lift`` and ``auc`` (None when the hold-out is empty).
    """
    model_name = normalise_model(model)
    label = segment or "(unnamed)"
    _check_options(negatives_ratio, holdout_share)
    seed_ids_df = (
        seed_df.select(F.col("user_id").cast("string").alias("user_id"))
        .where(F.col("user_id").isNotNull())
        .distinct()
    )
    vocab = feature_vocabulary(tags_df, max_vocab)
    labelled_df = _labelled_df(tags_df, seed_ids_df, vocab, random_state).persist()
    try:
        n_users, n_seed = _user_counts(labelled_df, seed_ids_df, min_seed, label)
        k = target_size(n_seed, size, ratio)
        samples = _samples(labelled_df, n_seed, negatives_ratio, holdout_share, max_train_positives)
        if len(samples.train_pos) == 0 or len(samples.eval_neg) == 0:
            raise DmpError(f"seed of segment {label}: not enough users to train a lookalike model")
        eval_pipeline = fit_pipeline(samples.train_pos, samples.eval_neg, model_name, random_state)
        evaluation = _evaluate(labelled_df, samples, eval_pipeline, k, n_users, n_seed)
        final_pipeline = fit_pipeline(samples.seeds, samples.final_neg, model_name, random_state)
    finally:
        labelled_df.unpersist()

    candidates_df = tags_df.transform(with_lookalike_features, vocab).join(
        seed_ids_df, "user_id", "left_anti"
    )
    result_df = top_k(score_users(candidates_df, final_pipeline), k).withColumn(
        "reason", F.lit(f"lookalike:{model_name}")
    )
    metrics: dict[str, Any] = {
        "model": model_name,
        "n_users": n_users,
        "n_seed": n_seed,
        "n_train_pos": len(samples.seeds),
        "n_train_neg": len(samples.final_neg),
        "k": k,
        "n_eval_train_pos": len(samples.train_pos),
        "n_eval_train_neg": len(samples.eval_neg),
        **evaluation,
        "n_auc_neg": len(samples.auc_neg),
        "features": [name for name, _ in feature_columns(vocab)],
        "random_state": random_state,
    }
    return result_df.select("user_id", "score", "reason"), metrics
