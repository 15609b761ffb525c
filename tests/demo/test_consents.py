"""The demo's consent log: shares as documented, withdrawals after the grant, chunk-independent."""

from __future__ import annotations

import json
from datetime import date

from dmp.demo.consents import SHARES, WITHDRAW_SHARE, consent_lines, final_decisions, user_events

START = date(2026, 3, 1)
USERS = [f"u{n:07d}" for n in range(1, 4001)]


def test_shares_of_grants_refusals_and_silence_are_as_documented() -> None:
    final = final_decisions(USERS, START, 30, seed=7)
    for purpose, (grant, refuse) in SHARES.items():
        answered = [final[(u, purpose)] for u in USERS if (u, purpose) in final]
        # 4,000 users: a share's standard error is below 0.5 points; 2 points is > 4 sigma
        assert abs(len(answered) / len(USERS) - (grant + refuse)) < 0.02
        still_granted = sum(answered) / len(USERS)
        assert abs(still_granted - grant * (1 - WITHDRAW_SHARE)) < 0.02


def test_a_withdrawal_comes_after_the_grant_and_is_the_final_decision() -> None:
    withdrawn = 0
    for user in USERS:
        events = user_events(user, START, 30, seed=7)
        for purpose in SHARES:
            mine = [e for e in events if e["purpose"] == purpose]
            if len(mine) == 2:
                withdrawn += 1
                assert mine[0]["granted"] is True and mine[1]["granted"] is False
                assert str(mine[0]["at"]) < str(mine[1]["at"])
                assert final_decisions([user], START, 30, seed=7)[(user, purpose)] is False
    assert withdrawn > 100  # ~5 % of ~3,500 grants per purpose


def test_lines_are_json_and_do_not_depend_on_how_users_are_split() -> None:
    whole = consent_lines(USERS, START, 30, seed=7)
    halves = consent_lines(USERS[:1234], START, 30, seed=7) + consent_lines(USERS[1234:], START, 30, seed=7)
    assert whole == halves
    rows = [json.loads(line) for line in whole.splitlines()]
    assert {tuple(sorted(r)) for r in rows} == {("at", "granted", "purpose", "source", "user_id")}
    assert consent_lines(USERS[:50], START, 30, seed=8) != consent_lines(USERS[:50], START, 30, seed=7)
