"""Random draws the demo generator shares: seeded streams, row-wise categorical picks, times of day.

Determinism rests on :func:`stream`: every chunk of users gets its own generators from
``SeedSequence([seed, chunk, stream])``, one per concern (behaviour, campaign, bad records, opt-outs,
identities, time formats), so changing one knob (e.g. ``--bad-rate``) never shifts the draws of
another and chunks can run in any process.
"""

from __future__ import annotations

import numpy as np

SECONDS_PER_DAY = 86400

# Diurnal profile, weights per hour in China time (UTC+8), peak in the evening; rotated to UTC.
_CST_HOURS = np.array(
    [2, 1, 0.5, 0.3, 0.3, 0.5, 1, 2, 3, 4, 4.5, 5, 5.5, 5, 4.5, 4.5, 4.5, 5, 5.5, 6.5, 8, 8.5, 7, 4]
)
_UTC_HOUR_CUM = np.cumsum(np.roll(_CST_HOURS, -8) / _CST_HOURS.sum())

# Stream numbers of SeedSequence([seed, chunk, stream]); fixed forever, or the bytes change.
BEHAVIOUR_STREAM = 0
CAMPAIGN_STREAM = 1
BAD_RECORDS_STREAM = 2
OPT_OUT_STREAM = 3
IDENTITIES_STREAM = 4
TIME_FORMAT_STREAM = 5


def stream(seed: int, chunk: int, stream_no: int) -> np.random.Generator:
    """The generator of one concern of one chunk (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence([seed, chunk, stream_no]))


def n_weeks(days: int) -> int:
    """Weeks the generated period touches (coupon ids carry the week number)."""
    return (days + 6) // 7


def pick(weights: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Row-wise categorical draw: index i with probability weights[row, i] / sum(weights[row])."""
    cum = np.cumsum(weights, axis=1)
    idx = (cum < (r * cum[:, -1])[:, None]).sum(axis=1)
    return np.minimum(idx, weights.shape[1] - 1)


def beta(rng: np.random.Generator, mean: np.ndarray, concentration: float) -> np.ndarray:
    """Beta draws around ``mean``: per-user rates scattered around their persona's."""
    mean = np.clip(mean, 1e-3, 1 - 1e-3)
    return rng.beta(mean * concentration, (1 - mean) * concentration)


def diurnal_seconds(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds into a UTC day following the Chinese evening-peaked activity profile."""
    hour = np.searchsorted(_UTC_HOUR_CUM, rng.random(n) * _UTC_HOUR_CUM[-1], side="right")
    return np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, n)
