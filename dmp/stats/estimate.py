"""A pack's size from a hash sample of its people, with an exact interval.

``dmp segments estimate`` keeps each person with probability ``fraction`` (a hash of the person's
holdout key, independent of the holdout hash: another salt), builds the pack's people on that
sample only, and counts them: ``k``. If the pack has ``S`` people, ``k ~ Binomial(S, fraction)``
(the hash acts as an independent coin per person, whatever the spec selects). The estimate is
``k / fraction``; the interval inverts the binomial exactly (no normal approximation, so it holds
for small packs too):

* low: the smallest ``S`` with ``P(K >= k | S) >= alpha / 2``;
* high: the largest ``S`` with ``P(K <= k | S) >= alpha / 2``.

It covers the true size with probability at least ``1 - alpha`` (a Clopper-Pearson-style
inversion: conservative, never below its level), and is exact (``low = high = k``) at
``fraction = 1``. ``max_size`` caps the size, the estimate and both ends, since the build keeps at
most that many. The holdout is a share of the pack by another hash, so its expected size is
``holdout x size``. The verdict compares the interval with ``min_size``: ``deliverable`` when
even the low end reaches it, ``too small`` when even the high end stays below, else ``uncertain``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from scipy.stats import binom

Verdict = Literal["deliverable", "too small", "uncertain"]


@dataclass(frozen=True)
class SizeEstimate:
    fraction: float
    sampled: int  # people of the pack in the sample (before max_size)
    size: int  # the estimated size, after max_size
    low: int
    high: int
    holdout: int  # expected holdout people of that size
    treatment: int
    min_size: int
    verdict: Verdict
    confidence: float


def _smallest(lo: int, hi: int, ok: Callable[[int], bool]) -> int:
    """Smallest integer in [lo, hi] where ``ok`` holds, ``ok`` monotone (false ... true); ``hi`` holds."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def size_interval(sampled: int, fraction: float, confidence: float = 0.95) -> tuple[int, int]:
    """(low, high) of the population count ``S`` behind ``sampled ~ Binomial(S, fraction)``."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if sampled < 0:
        raise ValueError(f"sampled must be >= 0, got {sampled}")
    if fraction == 1:
        return sampled, sampled
    tail = (1 - confidence) / 2
    # A bound far above any plausible S: the mean plus many standard deviations, plus room for k = 0.
    top = math.ceil(sampled / fraction + 20 * math.sqrt(sampled + 1) / fraction + 20 / fraction)
    # P(K >= k | S) grows with S; the low end is the first S where it reaches the tail.
    low = _smallest(sampled, top, lambda s: binom.sf(sampled - 1, s, fraction) >= tail) if sampled else 0
    # P(K <= k | S) falls as S grows; the high end is the last S where it is still >= the tail.
    high = _smallest(sampled, top, lambda s: binom.cdf(sampled, s, fraction) < tail) - 1
    return low, max(high, low)


def estimate_size(
    sampled: int,
    fraction: float,
    *,
    min_size: int,
    holdout: float,
    max_size: int | None = None,
    confidence: float = 0.95,
) -> SizeEstimate:
    """The pack's expected size, its interval, holdout and verdict from ``sampled`` people in the sample."""
    low, high = size_interval(sampled, fraction, confidence)
    size = round(sampled / fraction)
    if max_size is not None:
        size, low, high = min(size, max_size), min(low, max_size), min(high, max_size)
    verdict: Verdict = "deliverable" if low >= min_size else "too small" if high < min_size else "uncertain"
    expected_holdout = round(size * holdout)
    return SizeEstimate(
        fraction=fraction,
        sampled=sampled,
        size=size,
        low=low,
        high=high,
        holdout=expected_holdout,
        treatment=size - expected_holdout,
        min_size=min_size,
        verdict=verdict,
        confidence=confidence,
    )
