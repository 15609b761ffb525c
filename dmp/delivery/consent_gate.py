"""After consent, may the pack still be sent? The spec's ``min_size`` checked again on the treated
users who allow the channel's purpose, and what the delivery says about it (docs/privacy.md).

Below ``min_size`` the channel gets an empty audience, not a skip: a skip would leave the previous
delivery (withdrawn users included) on the platform, an empty full file or an incremental
``remove`` of everyone takes them off.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dmp.contracts import tables
from dmp.contracts.vocab import BELOW_MIN_SIZE
from dmp.delivery.manifest import MatchCounts


@dataclass(frozen=True)
class ConsentGate:
    """``consented``: treated users whose latest decision grants ``purpose``."""

    consented: int
    min_size: int
    purpose: str
    consents_missing: bool  # the lake has no silver/consents: nobody has consented

    @property
    def withheld(self) -> bool:
        return self.consented < self.min_size

    def apply(self, keys_pdf: pd.DataFrame, match: MatchCounts) -> tuple[pd.DataFrame, MatchCounts]:
        """The keys and counts to deliver: unchanged, or none (the consented counted as ``below_min_size``)."""
        if not self.withheld:
            return keys_pdf, match
        below = {BELOW_MIN_SIZE: self.consented} if self.consented else {}
        return keys_pdf.iloc[0:0], MatchCounts(0, {}, {}, {**match.excluded_by_reason, **below})

    def notes(self) -> list[str]:
        """What the delivery's message adds (nothing when every check passed)."""
        notes = []
        if self.withheld:
            notes.append(
                f"only {self.consented} treated users allow {self.purpose}, below the spec's min_size "
                f"{self.min_size}: the audience was sent empty (an incremental channel removes everyone "
                "delivered before)"
            )
        if self.consents_missing:
            notes.append(
                f"{tables.CONSENTS} does not exist: nobody has consented, so no user was delivered "
                "(load the consent log with dmp ingest-consents)"
            )
        return notes
