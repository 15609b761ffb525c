"""``manifest.json`` of a delivery (docs/downstream.md): built, encoded and compared, all pure.

The manifest describes every file of the folder (path, kind, rows, bytes, sha256), the columns and
key of the rows, how each id type was hashed, the counts of the pack and of the id match, the spec
and table versions it came from, and for an incremental delivery the ``previous`` one it was
diffed against (by run date and manifest sha256, so a client can tell a rewritten day).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from dmp.contracts.channels import Channel
from dmp.contracts.errors import DmpError
from dmp.delivery.plan import DeliveryPlan, columns_for
from dmp.delivery.storage import sha256_hex
from dmp.delivery.targets import CouponSettings

MANIFEST_VERSION = 1
CSV_FORMAT: dict[str, Any] = {
    "type": "csv",
    "header": True,
    "delimiter": ",",
    "encoding": "utf-8",
    "compression": "gzip",
}


@dataclass(frozen=True)
class PackCounts:
    """The pack a delivery is made from (one row of aggregates over gold/audience_packs)."""

    pack_size: int
    treatment: int
    holdout: int
    deliverable: bool
    spec_hash: str
    kind: str


@dataclass(frozen=True)
class MatchCounts:
    """How the pack's treatment users matched the channel's id types."""

    matched_users: int
    unmatched_by_reason: dict[str, int]
    rows_by_id_type: dict[str, int]
    # Treated users left out before matching for lack of consent (``no_consent``, ``revoked``).
    excluded_by_reason: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_counts(
        cls,
        users_by_reason: Iterable[tuple[str | None, int]],
        keys_pdf: pd.DataFrame,
        excluded_by_reason: Mapping[str, int] | None = None,
    ) -> MatchCounts:
        """From (reason, users) pairs (reason None = matched) and the matched (id_type, user_key) rows."""
        pairs = list(users_by_reason)
        unmatched = {reason: int(users) for reason, users in pairs if reason is not None}
        matched = sum(int(users) for reason, users in pairs if reason is None)
        by_type = keys_pdf.drop_duplicates()["id_type"].value_counts().to_dict()
        excluded = {str(r): int(n) for r, n in (excluded_by_reason or {}).items() if n}
        return cls(matched, unmatched, {str(t): int(n) for t, n in by_type.items()}, excluded)

    @property
    def excluded_users(self) -> int:
        return sum(self.excluded_by_reason.values())

    @property
    def unmatched_users(self) -> int:
        return sum(self.unmatched_by_reason.values())


@dataclass(frozen=True)
class ManifestSource:
    """Where a delivery comes from: channel, pack and the lake table versions read."""

    channel_name: str
    channel: Channel
    segment: str
    run_date: date
    pack: PackCounts
    coupon: CouponSettings | None
    source_tables: Mapping[str, int | None]


def _id_types(channel: Channel, match: MatchCounts) -> list[dict[str, Any]]:
    return [
        {"id_type": t, "hash": channel.hash[t], "rows": int(match.rows_by_id_type.get(t, 0))}
        | ({"phone_format": channel.phone_format} if t == "phone" else {})
        for t in channel.id_types
    ]


def _files(plan: DeliveryPlan) -> list[dict[str, Any]]:
    return [
        {
            "path": name,
            "kind": name.split("/", 1)[0],
            "rows": rows,
            "bytes": len(data),
            "sha256": sha256_hex(data),
        }
        for name, (data, rows) in sorted(plan.files.items())
    ]


def _coupon(source: ManifestSource) -> dict[str, Any] | None:
    coupon = source.coupon
    if coupon is None or source.channel.type != "coupon":
        return None
    return {
        "coupon_id": coupon.coupon_id,
        "value": coupon.value,
        "threshold": coupon.threshold,
        "valid_days": coupon.valid_days,
    }


def _counts(pack: PackCounts, match: MatchCounts, plan: DeliveryPlan) -> dict[str, Any]:
    treatment = int(pack.treatment)
    return {
        "pack_size": int(pack.pack_size),
        "treatment": treatment,
        "holdout": int(pack.holdout),
        "matched_users": match.matched_users,
        "unmatched_users": match.unmatched_users,
        "unmatched_by_reason": dict(sorted(match.unmatched_by_reason.items())),
        "excluded_users": match.excluded_users,
        "excluded_by_reason": dict(sorted(match.excluded_by_reason.items())),
        "match_rate": round(match.matched_users / treatment, 6) if treatment else 0.0,
        "delivered_rows": len(plan.current),
        "added": plan.added,
        "removed": plan.removed,
    }


def build_manifest(source: ManifestSource, plan: DeliveryPlan, match: MatchCounts) -> dict[str, Any]:
    """The manifest of one planned delivery (a JSON document; see docs/downstream.md for fields)."""
    cols, key = columns_for(source.channel)
    return {
        "manifest_version": MANIFEST_VERSION,
        "channel": source.channel_name,
        "channel_type": source.channel.type,
        "consent_purpose": source.channel.consent_purpose,
        "segment": source.segment,
        "run_date": source.run_date.isoformat(),
        "sync": source.channel.sync,
        "mode": plan.mode,
        "previous": None if plan.previous is None else plan.previous.reference(),
        "columns": list(cols),
        "key_columns": list(key),
        "format": dict(CSV_FORMAT),
        "id_types": _id_types(source.channel, match),
        "files": _files(plan),
        "spec_hash": source.pack.spec_hash,
        "pack_kind": source.pack.kind,
        "coupon": _coupon(source),
        "source_tables": dict(sorted(source.source_tables.items())),
        "counts": _counts(source.pack, match, plan),
    }


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    """Sorted keys, 2-space indent, trailing newline: the bytes whose sha256 later deliveries name."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise DmpError(f"{where}: not valid JSON ({exc})") from None
    except (RecursionError, ValueError) as exc:  # nested too deep; a number too long; not UTF-8
        raise DmpError(f"{where}: not a readable JSON manifest ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise DmpError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


def content_fingerprint(manifest: Mapping[str, Any]) -> tuple[object, ...]:
    """What makes two deliveries the same for downstream (table versions may differ harmlessly)."""
    files = sorted((f["path"], f["sha256"]) for f in manifest.get("files", []))
    prev = manifest.get("previous") or {}
    return (
        files,
        manifest.get("spec_hash"),
        manifest.get("mode"),
        prev.get("run_date"),
        prev.get("manifest_sha256"),
    )


def same_content(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when re-publishing ``b`` over ``a`` would change nothing a client can see."""
    return content_fingerprint(a) == content_fingerprint(b)
