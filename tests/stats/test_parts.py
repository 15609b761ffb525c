"""The small helpers the uplift statistics are built from, and the re-exports of dmp.stats.uplift."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from dmp.stats import adjusted, experiment, intervals, qini, uplift


def test_finite_and_scaled() -> None:
    assert intervals.finite(None) is None
    assert intervals.finite(np.float64(0.25)) == 0.25 and isinstance(
        intervals.finite(np.float64(0.25)), float
    )
    assert intervals.finite(math.nan) is None and intervals.finite(-math.inf) is None
    assert intervals.scaled((0.01, None), 200) == [2.0, None]
    assert intervals.scaled((-0.5, 0.25), 4) == [-2.0, 1.0]


def test_adjusted_agrees_only_on_the_same_side_of_zero() -> None:
    def report(plain: float, low: float | None, high: float | None) -> dict:
        return {"uplift_abs": plain, "uplift_abs_adjusted_ci": [low, high]}

    assert adjusted.adjusted_agrees(report(0.02, 0.001, 0.04))
    assert adjusted.adjusted_agrees(report(-0.02, -0.04, -0.001))
    assert not adjusted.adjusted_agrees(report(0.02, -0.01, 0.04))  # includes zero
    assert not adjusted.adjusted_agrees(report(-0.02, 0.001, 0.04))  # other side
    assert not adjusted.adjusted_agrees(report(0.02, None, None))


def test_experiment_arrays() -> None:
    df = pd.DataFrame({"group": ["treatment", "holdout"], "converted": [1, 0], "score": [0.5, 2]})
    y, s, t = qini.experiment_arrays(df)
    assert (y.tolist(), s.tolist(), t.tolist()) == ([1, 0], [0.5, 2.0], [1, 0])
    assert s.dtype == float and t.dtype.kind == "i"


def test_uplift_reexports_every_part() -> None:
    for name in uplift.__all__:
        assert hasattr(uplift, name), name
    assert uplift.diff_interval is intervals.diff_interval and uplift.qini_curve is qini.qini_curve
    assert uplift.TREATMENT == experiment.TREATMENT == "treatment" and uplift.HOLDOUT == "holdout"
    assert uplift.adjusted_uplift is adjusted.adjusted_uplift
