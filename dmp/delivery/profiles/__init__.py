"""Delivery profiles: the files each ad platform accepts (``channels.yaml`` ``format:``).

``PROFILES`` maps a format name to its default profile; :func:`get_profile` returns one with
settings changed (a channel's hash map, a small test limit), and :func:`profile_from_manifest`
rebuilds the profile a delivery was written with from its manifest's ``profile`` section, so
``dmp pull`` can read any profile's files without our ``channels.yaml``. docs/platforms.md has
each platform's rules and sources. No pyspark is imported here or below.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from dmp.delivery.profiles.alibaba import AlibabaProfile
from dmp.delivery.profiles.base import (
    CONSENT_DENIED,
    DUPLICATE_KEY,
    KINDS,
    Consent,
    Dropped,
    IdRule,
    KeyRow,
    Layout,
    OutFile,
    Prepared,
    Profile,
    key_rows,
)
from dmp.delivery.profiles.generic import GenericProfile
from dmp.delivery.profiles.google import GoogleProfile
from dmp.delivery.profiles.meta import MetaProfile
from dmp.delivery.profiles.tencent import TencentProfile

PROFILES: dict[str, Profile] = {
    p.name: p for p in (GenericProfile(), TencentProfile(), MetaProfile(), GoogleProfile(), AlibabaProfile())
}
FORMATS: tuple[str, ...] = tuple(PROFILES)

__all__ = [
    "CONSENT_DENIED",
    "DUPLICATE_KEY",
    "FORMATS",
    "KINDS",
    "PROFILES",
    "AlibabaProfile",
    "Consent",
    "Dropped",
    "GenericProfile",
    "GoogleProfile",
    "IdRule",
    "KeyRow",
    "Layout",
    "MetaProfile",
    "OutFile",
    "Prepared",
    "Profile",
    "TencentProfile",
    "get_profile",
    "key_rows",
    "profile_from_manifest",
    "profile_settings",
]


def _frozen(value: Any) -> Any:
    """JSON lists back to the tuples the frozen profiles hold (``hashes`` is a tuple of pairs)."""
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def get_profile(name: str, **settings: Any) -> Profile:
    """The ``name`` profile with ``settings`` (its dataclass fields) changed; clear errors otherwise."""
    if name not in PROFILES:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {name!r}")
    base = PROFILES[name]
    allowed = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise ValueError(f"format {name!r}: unknown settings {unknown}; allowed: {allowed}")
    profile = dataclasses.replace(base, **{k: _frozen(v) for k, v in settings.items()})
    _ = profile.rules  # validate the settings now (phone_hash, phone_format), not at the first row
    return profile


def profile_settings(profile: Profile) -> dict[str, Any]:
    """The profile's settings as JSON values: what the manifest records and get_profile takes back."""
    return profile.settings()


def profile_from_manifest(manifest: Mapping[str, Any], where: str = "manifest.json") -> Profile:
    """The profile a delivery was written with, from its manifest alone (no channels.yaml).

    A manifest with a ``profile`` section names it and its settings; one without (written before
    profiles existed) is ``generic`` with the hash of each of its ``id_types`` entries.
    """
    try:
        section = manifest.get("profile")
        if section is not None:
            return get_profile(section["name"], **dict(section.get("settings") or {}))
        id_types = manifest.get("id_types") or []
        phone = [t.get("phone_format") for t in id_types if t.get("id_type") == "phone"]
        hashes = tuple((t["id_type"], t["hash"]) for t in id_types)
        return get_profile("generic", hashes=hashes, phone_format=phone[0] if phone else "e164")
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{where}: profile: {exc}") from None
