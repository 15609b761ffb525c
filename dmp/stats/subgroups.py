"""Which tags earned it: the uplift of a pack per subgroup of each tag, with BH q-values, a
heterogeneity test per tag and a keep / drop rule (pure pandas / numpy / scipy; no Spark).

Input: one row per pack user with ``group`` (treatment / holdout), ``converted`` (0/1) and the
user's tags as of the run date (``gold/user_tags``; every tag null for a user without a tag row):
``lifecycle_stage``, ``consumption_level``, ``coupon_sensitivity``, ``is_cart_abandoner`` and
``top_category`` (the first of ``top_category_ids``). Each tag splits the pack into subgroups:

- ``lifecycle_stage``: new, active, silent, churned (the tag's own values);
- ``consumption_level``: 0 (no spend in 90 days) and the spend quintiles 1 … 5;
- ``coupon_sensitivity`` (redeemed / received in 90 days) in bands: ``none received`` (null),
  ``never (0)`` (= 0), ``some (0-0.5)`` (0 < s < 0.5), ``often (0.5+)`` (s >= 0.5);
- ``is_cart_abandoner``: yes, no;
- ``top_category``: the ``MAX_CATEGORIES`` categories most frequent among the pack's users (ties
  by id), ``other`` for the rest and ``none`` for users without a top category;

plus ``unknown`` where the tag is null (no tag row). Every subgroup carries the spec condition
(``where:``) that selects exactly its users, so a kept sub-audience can be written as a spec
(:mod:`dmp.contracts.specs.suggest`); top category has none (a spec can say "top_category_ids
contains C", which also selects users for whom C is the second or third category, not "C first").

Per subgroup (both groups need ``MIN_GROUP_SIZE`` users, else it is ``too small`` and not tested):
the uplift (treatment rate - holdout rate) with its Newcombe interval
(:func:`dmp.stats.intervals.diff_interval`), the pooled two-proportion z-test p-value
(:func:`dmp.stats.intervals.two_proportion_p_value`) and its Benjamini-Hochberg q-value across
every tested subgroup of every tag (:func:`dmp.stats.multiple.bh_qvalues`: the whole table is one
family, so reading 25 rows does not turn chance into findings; the tags' subgroups overlap, which
makes the tests positively dependent, the case BH still controls).

Heterogeneity per tag: Cochran's Q on the tested subgroups' estimates d_i with the unpooled
variance v_i = p_t(1 - p_t)/n_t + p_c(1 - p_c)/n_c and weights w_i = 1/v_i::

    d_w = sum(w_i d_i) / sum(w_i),   Q = sum(w_i (d_i - d_w)^2),   p = P(chi2_{k-1} >= Q)

with k the subgroups of positive variance, and I^2 = max(0, (Q - (k - 1)) / Q), the share of the
spread beyond chance. A small p says the uplift differs between the tag's subgroups; the p-values
of the tags are Holm-adjusted together (:func:`dmp.stats.multiple.holm_adjust`).

Keep / drop rule per subgroup (``RULE``): ``keep`` when q < alpha and the uplift is positive;
``drop`` when its interval lies entirely at or below zero (a positive effect is ruled out);
``unclear`` otherwise; ``too small`` when not tested. Per tag the keep-set (its ``keep``
subgroups) and the set without its ``drop`` subgroups are given with the users they would leave.
The suggested tag is the one whose subgroups differ (Holm-adjusted heterogeneity p < alpha, the
smallest) and whose keep-set is a writable, non-empty part of the pack.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.contracts.tag_config import LIFECYCLE_STAGES
from dmp.contracts.vocab import HOLDOUT, TREATMENT
from dmp.stats.intervals import ALPHA, diff_interval, finite, two_proportion_p_value
from dmp.stats.multiple import bh_qvalues, holm_adjust

SUBGROUP_TAGS: tuple[str, ...] = (
    "lifecycle_stage",
    "consumption_level",
    "coupon_sensitivity",
    "is_cart_abandoner",
    "top_category",
)
MIN_GROUP_SIZE = 30  # users per group for a subgroup to be tested
MAX_CATEGORIES = 8
UNKNOWN = "unknown"
KEEP, DROP, UNCLEAR, TOO_SMALL = "keep", "drop", "unclear", "too small"

# ``{alpha:g}`` is filled in by :func:`subgroup_table` with the alpha the table was decided with.
RULE = (
    "keep: BH q-value < {alpha:g} and uplift > 0; drop: the 95% interval lies entirely at or below 0; "
    f"unclear: neither; too small: fewer than {MIN_GROUP_SIZE} users in the treatment or the holdout"
)
METHODS = {
    "uplift_abs_ci": "Newcombe hybrid score interval per subgroup, 95%",
    "p_value": "pooled two-proportion z-test per subgroup, two-sided",
    "q_value": "Benjamini-Hochberg across every tested subgroup of every tag (statsmodels 'fdr_bh')",
    "heterogeneity": (
        "Cochran's Q on the subgroup uplifts, weights 1/(p_t(1-p_t)/n_t + p_c(1-p_c)/n_c), chi-square "
        "with k-1 df; I2 = max(0, (Q-df)/Q); p-values Holm-adjusted across the tags"
    ),
}

Where = dict[str, Any] | None
Bands = tuple[pd.Series, dict[str, Where]]

COUPON_NONE, COUPON_NEVER, COUPON_SOME, COUPON_OFTEN = (
    "none received",
    "never (0)",
    "some (0-0.5)",
    "often (0.5+)",
)


def _is_null(tag: str) -> dict[str, Any]:
    return {"tag": tag, "is_null": True}


def lifecycle_bands(values: pd.Series) -> Bands:
    """The stages as they are; ``unknown`` where null."""
    labels = values.astype(object).where(values.notna(), UNKNOWN).astype(str)
    where: dict[str, Where] = {s: {"tag": "lifecycle_stage", "eq": s} for s in LIFECYCLE_STAGES}
    extra = sorted(set(labels) - set(where) - {UNKNOWN})
    where.update({s: {"tag": "lifecycle_stage", "eq": s} for s in extra})
    where[UNKNOWN] = _is_null("lifecycle_stage")
    return labels, where


def consumption_bands(values: pd.Series) -> Bands:
    """Levels 0 … 5 as ``"0"`` … ``"5"``; ``unknown`` where null."""
    numbers = pd.to_numeric(values, errors="coerce")
    labels = numbers.map(lambda v: UNKNOWN if pd.isna(v) else str(int(v)))
    levels = sorted({int(v) for v in numbers.dropna()})
    where: dict[str, Where] = {str(v): {"tag": "consumption_level", "eq": v} for v in levels}
    where[UNKNOWN] = _is_null("consumption_level")
    return labels, where


def coupon_bands(values: pd.Series) -> Bands:
    """none received (null), never (0), some (0 < s < 0.5), often (s >= 0.5)."""
    s = pd.to_numeric(values, errors="coerce")
    labels = pd.Series(COUPON_NONE, index=values.index, dtype=object)
    labels[s == 0] = COUPON_NEVER
    labels[(s > 0) & (s < 0.5)] = COUPON_SOME
    labels[s >= 0.5] = COUPON_OFTEN
    tag = "coupon_sensitivity"
    where: dict[str, Where] = {
        COUPON_NEVER: {"tag": tag, "eq": 0},
        COUPON_SOME: {"all": [{"tag": tag, "gt": 0}, {"tag": tag, "lt": 0.5}]},
        COUPON_OFTEN: {"tag": tag, "gte": 0.5},
        COUPON_NONE: _is_null(tag),
    }
    return labels.astype(str), where


def cart_bands(values: pd.Series) -> Bands:
    """yes / no; ``unknown`` where null."""
    labels = values.map(lambda v: UNKNOWN if v is None or pd.isna(v) else ("yes" if bool(v) else "no"))
    tag = "is_cart_abandoner"
    where: dict[str, Where] = {"yes": {"tag": tag, "eq": True}, "no": {"tag": tag, "eq": False}}
    where[UNKNOWN] = _is_null(tag)
    return labels.astype(str), where


def category_bands(values: pd.Series, max_categories: int = MAX_CATEGORIES) -> Bands:
    """The most frequent first categories, ``other`` and ``none``; no spec condition (module doc)."""
    present = values.where(values.notna() & (values.astype(str) != ""))
    counts = present.dropna().astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_categories]
    top = [c for c, _ in ranked]
    labels = present.map(
        lambda v: "none" if v is None or pd.isna(v) else (str(v) if str(v) in top else "other")
    )
    where: dict[str, Where] = {c: None for c in [*top, "other", "none"]}
    return labels.astype(str), where


BANDS: dict[str, Callable[[pd.Series], Bands]] = {
    "lifecycle_stage": lifecycle_bands,
    "consumption_level": consumption_bands,
    "coupon_sensitivity": coupon_bands,
    "is_cart_abandoner": cart_bands,
    "top_category": category_bands,
}


def _subgroup_row(
    tag: str, label: str, where: Where, t: pd.Series, c: pd.Series, total: int
) -> dict[str, Any]:
    """One subgroup's counts and, when both groups are large enough, its uplift, interval and p."""
    n_t, n_c, x_t, x_c = len(t), len(c), int(t.sum()), int(c.sum())
    row: dict[str, Any] = {
        "tag": tag,
        "subgroup": label,
        "n": n_t + n_c,
        "share_of_pack": finite((n_t + n_c) / total) if total else None,
        "n_treatment": n_t,
        "n_control": n_c,
        "conversions_treatment": x_t,
        "conversions_control": x_c,
        "rate_treatment": finite(x_t / n_t) if n_t else None,
        "rate_control": finite(x_c / n_c) if n_c else None,
        "uplift_abs": finite(x_t / n_t - x_c / n_c) if n_t and n_c else None,
        "uplift_abs_ci": [None, None],
        "p_value": None,
        "q_value": None,
        "incremental_conversions": None,
        "tested": n_t >= MIN_GROUP_SIZE and n_c >= MIN_GROUP_SIZE,
        "where": where,
    }
    if row["tested"]:
        row["uplift_abs_ci"] = list(diff_interval(x_t, n_t, x_c, n_c))
        row["p_value"] = two_proportion_p_value(x_t, n_t, x_c, n_c)
        row["incremental_conversions"] = finite(row["uplift_abs"] * n_t)
    return row


def tag_rows(
    tag: str, labels: pd.Series, where: dict[str, Where], frame: pd.DataFrame
) -> list[dict[str, Any]]:
    """The rows of one tag, in the band order of ``where`` (bands without users left out)."""
    treated = frame["group"] == TREATMENT
    held = frame["group"] == HOLDOUT
    converted = frame["converted"]
    total = int((treated | held).sum())
    rows = []
    for label, condition in where.items():
        mask = labels == label
        if not mask.any():
            continue
        rows.append(
            _subgroup_row(tag, label, condition, converted[mask & treated], converted[mask & held], total)
        )
    return rows


def cochran_q(estimates: np.ndarray, variances: np.ndarray) -> dict[str, Any]:
    """Cochran's Q test of equal effects (formula in the module docstring); None fields below k = 2."""
    from scipy.stats import chi2

    ok = np.isfinite(estimates) & np.isfinite(variances) & (variances > 0)
    d, v = estimates[ok], variances[ok]
    k = len(d)
    if k < 2:
        return {"q": None, "df": max(k - 1, 0), "p_value": None, "i2": None, "k": k}
    w = 1.0 / v
    mean = float(np.sum(w * d) / np.sum(w))
    q = float(np.sum(w * (d - mean) ** 2))
    df = k - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return {
        "q": finite(q),
        "df": df,
        "p_value": finite(chi2.sf(q, df)),
        "i2": finite(i2),
        "k": k,
        "pooled": finite(mean),
    }


def heterogeneity(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Cochran's Q over the tested subgroups of one tag."""
    tested = [r for r in rows if r["tested"]]
    d = np.array([r["uplift_abs"] for r in tested], dtype=float)
    v = np.array(
        [
            r["rate_treatment"] * (1 - r["rate_treatment"]) / r["n_treatment"]
            + r["rate_control"] * (1 - r["rate_control"]) / r["n_control"]
            for r in tested
        ],
        dtype=float,
    )
    return cochran_q(d, v)


def decide(row: dict[str, Any], alpha: float = ALPHA) -> str:
    """The keep / drop rule (``RULE``) for one subgroup row with its q-value."""
    if not row["tested"]:
        return TOO_SMALL
    high = row["uplift_abs_ci"][1]
    if high is not None and high <= 0:
        return DROP
    if row["q_value"] is not None and row["q_value"] < alpha and (row["uplift_abs"] or 0) > 0:
        return KEEP
    return UNCLEAR


def keep_sets(tag: str, rows: list[dict[str, Any]], total: int) -> dict[str, Any]:
    """What keeping only the ``keep`` subgroups, or dropping only the ``drop`` ones, would leave."""
    kept = [r for r in rows if r["decision"] == KEEP]
    dropped = [r for r in rows if r["decision"] == DROP]
    keep_n = sum(r["n"] for r in kept)
    rest_n = total - sum(r["n"] for r in dropped)
    return {
        "tag": tag,
        "keep": [r["subgroup"] for r in kept],
        "drop": [r["subgroup"] for r in dropped],
        "keep_n": keep_n,
        "keep_share": finite(keep_n / total) if total else None,
        "keep_incremental_conversions": finite(sum(r["incremental_conversions"] for r in kept)),
        "without_dropped_n": rest_n,
        "without_dropped_share": finite(rest_n / total) if total else None,
        "writable": all(r["where"] is not None for r in kept),
    }


def suggested_tag(tags: list[dict[str, Any]], total: int, alpha: float = ALPHA) -> tuple[str | None, str]:
    """(tag, why): the tag whose subgroups differ most clearly and whose keep-set can be a spec."""
    candidates = []
    for entry in tags:
        p_holm = entry["heterogeneity"].get("p_value_holm")
        if not entry["keep"] or entry["keep_n"] >= total or not entry["writable"]:
            continue
        if p_holm is None or p_holm >= alpha:
            continue
        candidates.append(
            (p_holm, entry["heterogeneity"]["p_value"], SUBGROUP_TAGS.index(entry["tag"]), entry)
        )
    if not candidates:
        return None, (
            "no tag qualifies: a suggestion needs subgroups that differ (Holm-adjusted heterogeneity "
            f"p < {alpha:g}) and a keep-set that is part of the pack and can be written as a spec condition"
        )
    best = min(candidates, key=lambda c: c[:3])[3]
    return best["tag"], (
        f"{best['tag']}: its subgroups differ (heterogeneity p = {best['heterogeneity']['p_value_holm']:.3g}, "
        f"Holm-adjusted over {len(tags)} tags); keep {', '.join(best['keep'])}"
    )


def _check_input(users: pd.DataFrame, source: str) -> None:
    missing = [c for c in ("group", "converted", *SUBGROUP_TAGS) if c not in users.columns]
    if missing:
        raise DmpError(
            f"{source}: subgroups need the columns {', '.join(missing)}; got {', '.join(users.columns)}"
        )
    bad = sorted(set(users["group"].astype(str)) - {TREATMENT, HOLDOUT})
    if bad:
        raise DmpError(f"{source}: group: expected {TREATMENT} or {HOLDOUT}, got {bad[:3]}")
    values = pd.to_numeric(users["converted"], errors="coerce")
    if not values.isin([0, 1]).all():
        raise DmpError(f"{source}: converted: expected 0 or 1 for every user")


def subgroup_table(users: pd.DataFrame, alpha: float = ALPHA, source: str = "subgroups") -> dict[str, Any]:
    """The report's ``subgroups`` block: rows, per-tag heterogeneity and keep-sets, the suggestion."""
    _check_input(users, source)
    frame = users.reset_index(drop=True).assign(converted=pd.to_numeric(users["converted"]).to_numpy(int))
    total = len(frame)
    by_tag = {tag: tag_rows(tag, *BANDS[tag](frame[tag]), frame) for tag in SUBGROUP_TAGS}
    rows = [r for tag in SUBGROUP_TAGS for r in by_tag[tag]]
    for row, q in zip(rows, bh_qvalues([r["p_value"] for r in rows]), strict=True):
        row["q_value"] = q
        row["decision"] = decide(row, alpha)
    tests = {tag: heterogeneity(by_tag[tag]) for tag in SUBGROUP_TAGS}
    for tag, p_holm in zip(
        SUBGROUP_TAGS, holm_adjust([tests[t]["p_value"] for t in SUBGROUP_TAGS]), strict=True
    ):
        tests[tag]["p_value_holm"] = p_holm
    tags = [{**keep_sets(tag, by_tag[tag], total), "heterogeneity": tests[tag]} for tag in SUBGROUP_TAGS]
    tag, note = suggested_tag(tags, total, alpha)
    return {
        "n_users": total,
        "alpha": alpha,
        "min_group_size": MIN_GROUP_SIZE,
        "family_size": sum(r["q_value"] is not None for r in rows),
        "rule": RULE.format(alpha=alpha),
        "methods": dict(METHODS),
        "rows": rows,
        "tags": tags,
        "suggested_tag": tag,
        "suggest_note": note,
    }


def subgroup_metric_values(block: dict[str, Any]) -> list[tuple[str, float | None, list[Any] | None]]:
    """(metric, value, interval) rows for ``gold/uplift_results``: per tested subgroup
    ``subgroup_uplift_abs[tag=label]`` (with its interval) and ``subgroup_q_value[tag=label]``,
    per tag ``subgroup_heterogeneity_p[tag]``. Sizes stay in report.json: the table's n columns are
    the pack's."""
    out: list[tuple[str, float | None, list[Any] | None]] = []
    for r in block.get("rows", []):
        if r["tested"]:
            key = f"{r['tag']}={r['subgroup']}"
            out.append((f"subgroup_uplift_abs[{key}]", r["uplift_abs"], r["uplift_abs_ci"]))
            out.append((f"subgroup_q_value[{key}]", r["q_value"], None))
    for entry in block.get("tags", []):
        p = entry["heterogeneity"].get("p_value")
        if p is not None and not math.isnan(p):
            out.append((f"subgroup_heterogeneity_p[{entry['tag']}]", p, None))
    return out
