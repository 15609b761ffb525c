"""The demo's consent log (``out/consents/consents.jsonl``): who allowed what, and who changed their mind.

Per user and purpose, decided by a hash of (seed, user, purpose) so the answer never depends on how
the users are split into chunks:

* ``ad_personalization``: 90 % grant it on the first day, 4 % refuse it (``granted: false``), 6 %
  never answer (no event); 5 % of those who granted withdraw it later, on a day of the period.
* ``marketing_messages``: 85 % grant, 5 % refuse, 10 % no event; 5 % of grants are withdrawn later.

The truth (final decision per user and purpose) is what :func:`final_decisions` returns; the tests
check ``silver/consents`` and the delivered files against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

# purpose -> (share granting, share refusing); the rest never answer.
SHARES: dict[str, tuple[float, float]] = {
    "ad_personalization": (0.90, 0.04),
    "marketing_messages": (0.85, 0.05),
}
WITHDRAW_SHARE = 0.05
SOURCES = ("app", "mini_program", "crm")


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(map(str, (seed, *parts))).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _at(day: date, seed: int, *parts: object) -> str:
    seconds = int(_unit(seed, "second", *parts) * 86_400)
    moment = datetime.combine(day, time(0), UTC) + timedelta(seconds=seconds)
    return moment.isoformat().replace("+00:00", "Z")


def user_events(user_id: str, start: date, days: int, seed: int) -> list[dict[str, object]]:
    """The consent events of one user, in time order."""
    events: list[dict[str, object]] = []
    for purpose, (grant, refuse) in SHARES.items():
        roll = _unit(seed, user_id, purpose)
        source = SOURCES[int(_unit(seed, "source", user_id, purpose) * len(SOURCES))]
        if roll >= grant + refuse:
            continue
        granted = roll < grant
        events.append(
            {
                "user_id": user_id,
                "purpose": purpose,
                "granted": granted,
                "at": _at(start, seed, user_id, purpose),
                "source": source,
            }
        )
        if granted and _unit(seed, "withdraw", user_id, purpose) < WITHDRAW_SHARE and days > 1:
            day = start + timedelta(days=1 + int(_unit(seed, "day", user_id, purpose) * (days - 1)))
            events.append(
                {
                    "user_id": user_id,
                    "purpose": purpose,
                    "granted": False,
                    "at": _at(day, seed, "w", user_id, purpose),
                    "source": source,
                }
            )
    return events


def consent_lines(user_ids: Iterable[str], start: date, days: int, seed: int) -> str:
    """The JSON lines of every user's consent events (one line per event)."""
    return "".join(
        json.dumps(event, sort_keys=True) + "\n"
        for user in user_ids
        for event in user_events(user, start, days, seed)
    )


def final_decisions(
    user_ids: Iterable[str], start: date, days: int, seed: int
) -> dict[tuple[str, str], bool]:
    """(user, purpose) -> granted, as of the last event; users who never answered are absent."""
    out: dict[tuple[str, str], bool] = {}
    for user in user_ids:
        for event in user_events(user, start, days, seed):
            out[(user, str(event["purpose"]))] = bool(event["granted"])
    return out
