"""Always-valid intervals for daily looks: an asymptotic confidence sequence for the uplift.

A 95 % interval is right 95 % of the time *at one look fixed in advance*. Read every day of a
30-day window and stop at the first day it excludes zero, and an A/A test (no effect) "wins" far
more often than 5 % of the time (tests/stats/test_sequential.py measures it). A confidence
sequence is a band that covers the true uplift on *every* day at once with 95 % probability, so
it may be read daily and acted on whenever it excludes zero.

Method: the asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Annals of Statistics,
2024; arXiv:2103.06476 eq. 9), as GrowthBook's stats engine implements it (gbstats
``sequential_interval_halfwidth``, docs "Sequential Testing"): with ``se`` the usual standard
error of the estimate, ``t`` the information so far and ``u = t * rho^2``::

    estimate +/- se * sqrt( 2 (u + 1) / u * log( sqrt(u + 1) / alpha ) )

It is the normal-mixture boundary of a Brownian motion; ``rho`` is its tuning constant and sets
at which information the band is narrowest (relative to the fixed interval)::

    rho^2 = ( -2 log(alpha) + log(1 - 2 log(alpha)) ) / t_planned          (eq. 161 there)

The clock. GrowthBook's ``t`` counts users, because its samples grow. A pack's users are all
there from day 1; what grows is the share that had time to convert. For a cumulative conversion
rate F_d the difference of the groups' rates behaves like a Brownian motion run to time
F_d / (1 - F_d) (the Brownian-bridge representation of a cumulative share), so the information
of day d is ``t_d = (n_t + n_c) * p_d / (1 - p_d)`` with p_d the pooled share converted by day d
(about the number of conversions so far when rates are small). ``t_planned`` defaults to the
information of the window's last day: the band is then tightest at the final look, where the
decision is made (about 1.55 times the width of the fixed interval there). Choosing it from the
pooled rate is allowed: the pooled rate carries no information on the difference between the
groups (the two are asymptotically independent), so the 95 % guarantee is kept. An analyst
wanting a different trade-off passes ``planned_information`` (e.g. half the expected final value
to be tightest mid-window); it must be fixed before the looks.

The band is asymptotic (normal approximation with the Wald standard error), so a day on which a
group has fewer than :data:`MIN_COUNT` conversions or non-conversions gets no band (None).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from dmp.stats.intervals import ALPHA

MIN_COUNT = 10

CS_METHOD = (
    "asymptotic confidence sequence (Waudby-Smith et al. 2024, eq. 9; GrowthBook's sequential testing) on "
    "the Wald standard error; information t_d = n * p_d / (1 - p_d); valid for every day at once"
)


def mixture_constant(alpha: float = ALPHA) -> float:
    """-2 log(alpha) + log(1 - 2 log(alpha)): rho^2 times the information the band is tuned for."""
    return -2.0 * math.log(alpha) + math.log(1.0 - 2.0 * math.log(alpha))


def cs_rho(planned_information: float, alpha: float = ALPHA) -> float:
    """The tuning constant rho for a band narrowest at ``planned_information`` (eq. 161)."""
    if not planned_information > 0:
        raise ValueError(f"planned_information must be positive; got {planned_information!r}")
    return math.sqrt(mixture_constant(alpha) / planned_information)


def cs_multiplier(
    information: np.ndarray | float, rho: np.ndarray | float, alpha: float = ALPHA
) -> np.ndarray:
    """The band's half-width in standard errors at ``information`` (the z of a fixed interval is 1.96)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.asarray(information, float) * np.asarray(rho, float) ** 2
        return np.sqrt(2.0 * (u + 1.0) / u * np.log(np.sqrt(u + 1.0) / alpha))


def information(x_t: np.ndarray, n_t: np.ndarray, x_c: np.ndarray, n_c: np.ndarray) -> np.ndarray:
    """t = (n_t + n_c) * p / (1 - p), p the pooled share converted: the clock of the sequence."""
    n = np.asarray(n_t, float) + np.asarray(n_c, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (np.asarray(x_t, float) + np.asarray(x_c, float)) / n
        return n * pooled / (1.0 - pooled)


class ConfidenceSequence(NamedTuple):
    """One campaign's (or many campaigns') daily band; the last axis is the day."""

    estimate: np.ndarray
    low: np.ndarray
    high: np.ndarray
    information: np.ndarray
    rho: np.ndarray


def uplift_abs_cs(
    x_t: np.ndarray,
    n_t: np.ndarray,
    x_c: np.ndarray,
    n_c: np.ndarray,
    planned_information: float | np.ndarray | None = None,
    alpha: float = ALPHA,
) -> ConfidenceSequence:
    """The confidence sequence of rate_t - rate_c from cumulative conversions by day.

    ``x_t``/``x_c`` hold the conversions by day d on the last axis (cumulative, one column per
    look); ``n_t``/``n_c`` the group sizes (broadcast against them). ``planned_information``
    (per campaign) defaults to the information of the last look. NaN marks a look without a band.
    """
    x_t, x_c = np.asarray(x_t, float), np.asarray(x_c, float)
    n_t, n_c = np.broadcast_to(n_t, x_t.shape).astype(float), np.broadcast_to(n_c, x_c.shape).astype(float)
    info = information(x_t, n_t, x_c, n_c)
    planned = info[..., -1] if planned_information is None else np.asarray(planned_information, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.sqrt(mixture_constant(alpha) / planned)
        p_t, p_c = x_t / n_t, x_c / n_c
        se = np.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        half = se * cs_multiplier(info, np.asarray(rho)[..., None], alpha)
    estimate = p_t - p_c
    small = np.minimum.reduce([x_t, n_t - x_t, x_c, n_c - x_c]) < MIN_COUNT
    bad = small | ~np.isfinite(half) | ~(np.asarray(planned)[..., None] > 0)
    return ConfidenceSequence(
        estimate,
        np.where(bad, np.nan, estimate - half),
        np.where(bad, np.nan, estimate + half),
        info,
        np.asarray(rho, float),
    )


def sequential_block(seq: ConfidenceSequence, alpha: float = ALPHA) -> dict[str, Any]:
    """The report's description of the band: method, alpha, tuning constant and what it was tuned for."""
    rho = float(seq.rho)
    planned = mixture_constant(alpha) / rho**2 if math.isfinite(rho) and rho > 0 else None
    return {
        "method": CS_METHOD,
        "alpha": alpha,
        "rho": rho if math.isfinite(rho) else None,
        "planned_information": planned,
        "min_count": MIN_COUNT,
    }
