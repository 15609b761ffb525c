"""The experiment table every statistic here reads: one row per user, validated once.

Input: one row per user with ``group`` (treatment | holdout; "control" is accepted as a synonym of
holdout), ``converted`` (0/1), ``value`` (float, e.g. GMV in scope) and optionally ``score`` (the
pack's ranking score), ``pre_converted`` (0/1: the same outcome over the N days up to the run
date) and ``days_to_convert`` (1..N: the day of the window of the first conversion) and ``pre_value`` (the
value over the pre-period, the CUPED covariate of ``value``) and ``cost`` (each treated user's
variable cost, e.g. the coupon value redeemed: :func:`dmp.stats.roi.roi_report`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dmp.contracts.errors import DmpError
from dmp.contracts.vocab import HOLDOUT, TREATMENT

CONTROL_ALIASES = (HOLDOUT, "control")


def prepare_experiment(df: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Validate and normalise an experiment table; errors name ``source`` and the column."""
    missing = [c for c in ("group", "converted") if c not in df.columns]
    if missing:
        raise DmpError(f"{source}: missing column(s) {missing}; expected group, converted[, value, score]")
    out = df.copy()
    out["group"] = out["group"].astype(str).str.strip().str.lower()
    out.loc[out["group"].isin(CONTROL_ALIASES), "group"] = HOLDOUT
    bad_groups = sorted(set(out["group"]) - {TREATMENT, HOLDOUT})
    if bad_groups:
        raise DmpError(f"{source}: column 'group' has values {bad_groups[:5]}; expected treatment or holdout")
    out["converted"] = binary_column(out["converted"], source, "converted")
    if "value" in out.columns:
        out["value"] = numeric_column(out["value"], source, "value")
    if "pre_value" in out.columns:
        out["pre_value"] = numeric_column(out["pre_value"], source, "pre_value")
    if "score" in out.columns:
        out["score"] = numeric_column(out["score"], source, "score")
    if "cost" in out.columns:
        out["cost"] = numeric_column(out["cost"], source, "cost")
        if (out["cost"] < 0).any():
            raise DmpError(f"{source}: column 'cost' has negative values; expected costs >= 0")
    if "pre_converted" in out.columns:
        out["pre_converted"] = binary_column(out["pre_converted"], source, "pre_converted")
    for grp in (TREATMENT, HOLDOUT):
        if not (out["group"] == grp).any():
            raise DmpError(f"{source}: the {grp} group is empty; an uplift needs users in both groups")
    return out.reset_index(drop=True)


def binary_column(values: pd.Series, source: str, column: str) -> pd.Series:
    """0/1 ints from 0/1 numbers, booleans or 'true'/'false' strings; anything else is an error."""
    if values.isna().any():
        raise DmpError(
            f"{source}: column {column!r} has {int(values.isna().sum())} empty value(s); expected 0 or 1"
        )
    if values.dtype == bool:
        return values.astype(int)
    if values.dtype == object:
        lowered = values.astype(str).str.strip().str.lower()
        mapping = {"0": 0, "1": 1, "0.0": 0, "1.0": 1, "true": 1, "false": 0}
        bad = sorted(set(lowered) - set(mapping))
        if bad:
            raise DmpError(f"{source}: column {column!r} is not binary: found {bad[:5]}; expected 0 or 1")
        return lowered.map(mapping).astype(int)
    numeric = pd.to_numeric(values, errors="coerce")
    bad_vals = sorted(set(numeric.dropna().unique()) - {0, 1})
    if bad_vals or numeric.isna().any():
        raise DmpError(
            f"{source}: column {column!r} is not binary: found {[float(v) for v in bad_vals[:5]]}; expected 0 or 1"
        )
    return numeric.astype(int)


def numeric_column(values: pd.Series, source: str, column: str) -> pd.Series:
    """Finite floats; an empty, non-numeric or infinite value is an error naming the column."""
    numeric = pd.to_numeric(values, errors="coerce")
    bad = values[numeric.isna()]
    if len(bad):
        raise DmpError(
            f"{source}: column {column!r} has {len(bad)} empty or non-numeric value(s) "
            f"(first: {bad.iloc[0]!r}); expected a number"
        )
    if not np.isfinite(numeric.to_numpy(dtype=float)).all():
        raise DmpError(f"{source}: column {column!r} has infinite values; expected finite numbers")
    return numeric.astype(float)
