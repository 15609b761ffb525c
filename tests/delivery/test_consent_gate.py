"""ConsentGate: min_size checked again on the consented users, and what the delivery says."""

from __future__ import annotations

import pandas as pd

from dmp.delivery.consent_gate import ConsentGate
from dmp.delivery.manifest import MatchCounts

KEYS = pd.DataFrame({"id_type": ["oaid", "oaid", "phone"], "user_key": ["a", "b", "c"]})
MATCH = MatchCounts(3, {"no_id": 1}, {"oaid": 2, "phone": 1}, {"revoked": 2})


def test_enough_consented_users_change_nothing() -> None:
    gate = ConsentGate(consented=4, min_size=4, purpose="ad_personalization", consents_missing=False)
    keys, match = gate.apply(KEYS, MATCH)
    assert keys.equals(KEYS) and match == MATCH
    assert gate.notes() == []


def test_below_min_size_the_audience_is_empty_and_the_consented_are_counted() -> None:
    gate = ConsentGate(consented=3, min_size=4, purpose="ad_personalization", consents_missing=False)
    keys, match = gate.apply(KEYS, MATCH)
    assert list(keys.columns) == ["id_type", "user_key"] and keys.empty
    assert (match.matched_users, match.unmatched_users, match.rows_by_id_type) == (0, 0, {})
    assert match.excluded_by_reason == {"revoked": 2, "below_min_size": 3}
    assert gate.notes() == [
        "only 3 treated users allow ad_personalization, below the spec's min_size 4: the audience was sent "
        "empty (an incremental channel removes everyone delivered before)"
    ]


def test_a_lake_without_consents_says_so() -> None:
    gate = ConsentGate(consented=0, min_size=0, purpose="marketing_messages", consents_missing=True)
    keys, match = gate.apply(KEYS, MATCH)
    assert match == MATCH  # min_size 0: nothing withheld here (nobody matched upstream anyway)
    assert gate.notes() == [
        "silver/consents does not exist: nobody has consented, so no user was delivered "
        "(load the consent log with dmp ingest-consents)"
    ]
