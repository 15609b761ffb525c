"""The size interval of dmp segments estimate: an exact binomial inversion, checked at its edges."""

from __future__ import annotations

import pytest
from scipy.stats import binom

from dmp.stats.estimate import estimate_size, size_interval


@pytest.mark.parametrize(("k", "f"), [(1, 0.05), (12, 0.1), (50, 0.05), (400, 0.2), (3, 0.5)])
def test_each_end_is_the_last_size_the_sample_still_allows(k: int, f: float) -> None:
    low, high = size_interval(k, f)
    tail = 0.025
    # low: P(K >= k) first reaches the tail there; one person fewer and it is below.
    assert binom.sf(k - 1, low, f) >= tail > binom.sf(k - 1, low - 1, f)
    # high: P(K <= k) is still at least the tail there; one more person and it is below.
    assert binom.cdf(k, high, f) >= tail > binom.cdf(k, high + 1, f)
    assert low <= k / f <= high


def test_edges_a_full_sample_is_exact_and_an_empty_one_starts_at_zero() -> None:
    assert size_interval(7, 1.0) == (7, 7)
    low, high = size_interval(0, 0.05)
    assert low == 0
    assert binom.cdf(0, high, 0.05) >= 0.025 > binom.cdf(0, high + 1, 0.05)  # (0.95^S = 0.025: S ~ 72)
    with pytest.raises(ValueError, match="fraction"):
        size_interval(3, 0.0)


@pytest.mark.parametrize(("true_size", "f"), [(800, 0.05), (60, 0.1), (5000, 0.02), (137, 0.5)])
def test_covers_the_true_size_at_least_95_percent_of_the_time(true_size: int, f: float) -> None:
    """Exact coverage, not a simulation: the probability of every sample count whose interval holds
    the true size (counts beyond 8 standard deviations carry less than 1e-12 and are left out)."""
    mean, sd = true_size * f, (true_size * f * (1 - f)) ** 0.5
    counts = range(max(0, int(mean - 8 * sd)), int(mean + 8 * sd) + 2)
    covered = sum(
        binom.pmf(k, true_size, f)
        for k in counts
        if size_interval(k, f)[0] <= true_size <= size_interval(k, f)[1]
    )
    assert 0.95 <= covered < 0.995, covered  # at its level, and not so wide as to be useless


def test_max_size_caps_the_size_and_the_verdict_reads_the_interval() -> None:
    est = estimate_size(50, 0.05, min_size=800, holdout=0.1, max_size=900)
    assert (est.size, est.low, est.high) == (900, 749, 900)
    assert (est.holdout, est.treatment) == (90, 810)
    assert est.verdict == "uncertain"  # 749 .. 900 straddles 800
    assert estimate_size(50, 0.05, min_size=700, holdout=0.1).verdict == "deliverable"
    assert estimate_size(50, 0.05, min_size=1400, holdout=0.1).verdict == "too small"
    assert estimate_size(50, 0.05, min_size=1400, holdout=0.1).size == 1000
