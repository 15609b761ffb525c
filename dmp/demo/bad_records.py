"""Bad lines mixed into the demo's event files, so ingest's checks have something to catch.

Bad records are EXTRA lines (the valid events are exactly the simulated ones): malformed JSON,
unknown event types, missing user_id, exact duplicates, same-id-different-content duplicates
(placed after the original in the same file, 1-30 s LATER than it, so "earliest event_time wins"
keeps the original; they differ only in channel and those seconds, so any winner gives the same
daily aggregates), future timestamps (2099) and unparseable prices.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np

from dmp.contracts.vocab import EVENT_CHANNELS
from dmp.demo.formatting import EventFormatter
from dmp.demo.sampling import SECONDS_PER_DAY
from dmp.demo.simulate import Events

BAD_KINDS: tuple[str, ...] = (
    "malformed_json",
    "unknown_event_type",
    "missing_user_id",
    "duplicate_exact",
    "duplicate_conflict",
    "future_timestamp",
    "bad_price",
)
# Share of each kind among the bad lines of a file (same order as BAD_KINDS).
BAD_SHARES = np.array([0.2, 0.15, 0.15, 0.2, 0.1, 0.1, 0.1])

_UNKNOWN_TYPES = ("share", "live_like", "page_leave")
_BAD_PRICES = ("N/A", "12.9元", "abc", "1O9.0", "¥")
_GARBAGE = ("<html><body>502 Bad Gateway</body></html>", "{'event_id': 'e-1', 'user_id': 'u1'}")

BadLine = tuple[int, str, str]  # (insert position, kind, line)


def bad_lines(
    rng: np.random.Generator,
    counts: np.ndarray,
    lines: list[str],
    ev: Events,
    fmt: EventFormatter,
    next_id: Callable[[], str],
) -> list[BadLine]:
    """(insert position, kind, line) for the bad records of one file; positions index ``lines``."""
    n = len(lines)
    out: list[BadLine] = []
    has_price = np.nonzero(ev["sku"] >= 0)[0]
    for kind, count in zip(BAD_KINDS, counts.tolist(), strict=True):
        for _ in range(count):
            i = int(rng.integers(0, n))
            pos = int(rng.integers(0, n))
            if kind == "malformed_json":
                line = lines[i]
                if rng.random() < 0.7:
                    line = line[: int(rng.integers(10, len(line) - 1))]
                else:
                    line = _GARBAGE[int(rng.integers(0, len(_GARBAGE)))]
            elif kind == "duplicate_exact":
                pos = int(rng.integers(i, n))
                line = lines[i]
            elif kind == "duplicate_conflict":
                pos, line = _conflicting_copy(rng, i, lines, ev, fmt)
            else:
                line = json.dumps(
                    _broken_record(rng, kind, i, lines, ev, fmt, next_id, has_price), ensure_ascii=False
                )
            out.append((pos, kind, line))
    return out


def _conflicting_copy(
    rng: np.random.Generator, i: int, lines: list[str], ev: Events, fmt: EventFormatter
) -> tuple[int, str]:
    """A copy of an event, same id, 1-30 s later on the same day and in another channel."""
    rec = json.loads(lines[i])
    n = len(lines)
    t = int(ev["t"][i])
    room = SECONDS_PER_DAY - 1 - t % SECONDS_PER_DAY
    if room == 0 and (ev["t"] % SECONDS_PER_DAY < SECONDS_PER_DAY - 1).any():
        # the copy must be strictly later on the same day: take another original
        i = int(rng.choice(np.nonzero(ev["t"] % SECONDS_PER_DAY < SECONDS_PER_DAY - 1)[0]))
        rec, t = json.loads(lines[i]), int(ev["t"][i])
        room = SECONDS_PER_DAY - 1 - t % SECONDS_PER_DAY
    pos = int(rng.integers(i, n))
    t2 = t + min(int(rng.integers(1, 30)), room)
    rec["event_time"] = fmt.iso(np.array([t2]))[0]
    rec["channel"] = EVENT_CHANNELS[(EVENT_CHANNELS.index(rec["channel"]) + 1) % len(EVENT_CHANNELS)]
    return pos, json.dumps(rec, ensure_ascii=False)


def _broken_record(
    rng: np.random.Generator,
    kind: str,
    i: int,
    lines: list[str],
    ev: Events,
    fmt: EventFormatter,
    next_id: Callable[[], str],
    has_price: np.ndarray,
) -> dict[str, object]:
    """Event ``i`` with a new id and one field broken the way ``kind`` says."""
    rec = json.loads(lines[i])
    if kind == "unknown_event_type":
        rec["event_id"] = next_id()
        rec["event_type"] = _UNKNOWN_TYPES[int(rng.integers(0, len(_UNKNOWN_TYPES)))]
    elif kind == "missing_user_id":
        rec["event_id"] = next_id()
        if rng.random() < 0.5:
            del rec["user_id"]
        else:
            rec["user_id"] = None
    elif kind == "future_timestamp":
        rec["event_id"] = next_id()
        iso = fmt.iso(ev["t"][i : i + 1])[0].replace("-02-29T", "-02-28T")
        rec["event_time"] = "2099" + iso[4:]
    elif kind == "bad_price":
        if len(has_price):
            rec = json.loads(lines[int(has_price[int(rng.integers(0, len(has_price)))])])
        rec["event_id"] = next_id()
        rec["price"] = _BAD_PRICES[int(rng.integers(0, len(_BAD_PRICES)))]
    return rec
