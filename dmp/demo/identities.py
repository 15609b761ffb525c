"""Raw, noisy identity lines of the demo users (``identities/identities.jsonl``).

Android users get OAIDs and sometimes IMEIs, iOS users IDFAs (up to three devices each); 70% give
a phone and 50% an email. Values come as people and SDKs type them: stray spaces, mixed case,
phones with or without +86 and separators, so delivery's normalisation has work to do. 3% of
users leave no identifier at all.

Planted on top, with known truth (:func:`plan_identities`, :func:`planted_truth`) so that identity
stitching (docs/identity.md) can be checked exactly:

- **multi-account persons**: in 8% of the blocks of ten user numbers, the first 2-4 users of the
  block's first platform are one person, chained by shared devices (Android: an OAID, then an
  IMEI, alternately; iOS: an IDFA), each written in another case or with spaces by its second user;
- **a hub**: a device farm, one OAID on exactly :data:`HUB_ACCOUNTS` Android users of each
  chunk's part of a block of 10,000 user numbers (when that part has that many Android users),
  over the default cap of 20 accounts per identifier, so it links nobody;
- **blocked values**: 1% of users report the all-zero IDFA / OAID (limit ad tracking), as
  ``00000000-0000-...`` or 32 zeros, and 1% of Android users the all-zero IMEI.

Planted values come from a hash of the seed and a user number, not from the random streams, so
every other line is the same with or without them. Normal values never collide (phones are a
bijection of the user number, emails carry it, device ids are 128 random bits), so the planted
persons are the only multi-account persons.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dmp.contracts.identity_guards import (
    RULE_BLOCKED_PATTERN,
    RULE_BLOCKED_VALUE,
    RULE_IDENTIFIER_CAP,
    ZERO_DEVICE_ID,
)
from dmp.contracts.vocab import ID_TYPES

_PHONE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "153", "155",
    "156", "157", "158", "159", "176", "177", "180", "181", "182", "185", "186", "187", "188", "189",
)  # fmt: skip
_SURNAMES = ("li", "wang", "zhang", "liu", "chen", "yang", "zhao", "huang", "zhou", "wu", "xu", "sun")
_GIVEN = ("wei", "fang", "na", "min", "jing", "lei", "yang", "jie", "tao", "ming", "xiu", "hua", "lin")
_DOMAINS = ("qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com", "foxmail.com")
_MAX_DEVICES = 3
# Column layout of the 20 uniform draws per user (rolls[i][k]).
_NO_IDS, _SECOND_DEVICE, _THIRD_DEVICE = 0, 1, 2
_CASE, _HAS_DEVICE_ID, _SPACES, _HAS_IMEI = 3, 6, 9, 12  # + device number 0..2
_HAS_PHONE, _PHONE_STYLE, _HAS_EMAIL, _EMAIL_STYLE, _EMAIL_SPACES = 15, 16, 17, 18, 19


def _luhn(digits: str) -> str:
    """The Luhn check digit that makes ``digits`` + it a valid IMEI."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def _uuid(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-{hex32[12:16]}-{hex32[16:20]}-{hex32[20:]}"


def _space(value: str, p: float, roll: float) -> str:
    """A leading space, two trailing ones, or none: sloppy input with probability ``p``."""
    if roll < p / 2:
        return " " + value
    if roll < p:
        return value + "  "
    return value


@dataclass(frozen=True)
class _Draws:
    """Every random draw of one chunk, made up front in a fixed order."""

    rolls: list[list[float]]
    hexes: str  # 32 hex digits per (user, device)
    imei_body: list[list[int]]  # 14 digits + a Luhn check digit
    prefixes: list[int]
    names: list[int]
    phone_tail: list[int]


def _draw(rng: np.random.Generator, user_nums: np.ndarray, seed: int) -> _Draws:
    n = len(user_nums)
    rolls = rng.random((n, 20)).tolist()
    hexes = rng.bytes(n * _MAX_DEVICES * 16).hex()
    imei_body = rng.integers(10**13, 10**14, (n, _MAX_DEVICES)).tolist()
    prefixes = rng.integers(0, len(_PHONE_PREFIXES), n).tolist()
    names = rng.integers(0, len(_SURNAMES) * len(_GIVEN) * len(_DOMAINS), n).tolist()
    # 8 phone digits: a bijection of the user number mod 1e8 -> unique phones up to 1e8 users.
    salt = (seed * 2654435761) % 10**8
    phone_tail = ((user_nums.astype(np.int64) * 73939133 + salt) % 10**8).tolist()
    return _Draws(rolls, hexes, imei_body, prefixes, names, phone_tail)


def _device_ids(draws: _Draws, i: int, platform: int) -> list[tuple[str, str]]:
    ri = draws.rolls[i]
    ids: list[tuple[str, str]] = []
    n_dev = 1 + (ri[_SECOND_DEVICE] < 0.15) + (ri[_THIRD_DEVICE] < 0.03)
    for d in range(n_dev):
        h = draws.hexes[(i * _MAX_DEVICES + d) * 32 : (i * _MAX_DEVICES + d + 1) * 32]
        roll = ri[_CASE + d]
        if platform == 0:
            if ri[_HAS_DEVICE_ID + d] < 0.9:
                v = _uuid(h)
                v = v.upper() if roll < 0.2 else v
                ids.append(("oaid", _space(v, 0.1, ri[_SPACES + d])))
            if ri[_HAS_IMEI + d] < 0.3:
                digits = str(draws.imei_body[i][d])
                ids.append(("imei", _space(digits + _luhn(digits), 0.1, ri[_SPACES + d])))
        elif ri[_HAS_DEVICE_ID + d] < 0.85:
            v = _uuid(h).upper()
            v = v.lower() if roll < 0.2 else v
            ids.append(("idfa", _space(v, 0.1, ri[_SPACES + d])))
    return ids


def _phone(draws: _Draws, i: int) -> str:
    p = _PHONE_PREFIXES[draws.prefixes[i]]
    tail = f"{draws.phone_tail[i]:08d}"
    roll = draws.rolls[i][_PHONE_STYLE]
    if roll < 0.4:
        return p + tail
    if roll < 0.6:
        return f"{p} {tail[:4]} {tail[4:]}"
    if roll < 0.8:
        return f"+86 {p}-{tail[:4]}-{tail[4:]}"
    if roll < 0.9:
        return f"+86{p}{tail}"
    return f" {p}{tail} "


def _email(draws: _Draws, i: int, user_num: int) -> str:
    k = draws.names[i]
    sur = _SURNAMES[k % len(_SURNAMES)]
    given = _GIVEN[(k // len(_SURNAMES)) % len(_GIVEN)]
    domain = _DOMAINS[k // (len(_SURNAMES) * len(_GIVEN))]
    email = f"{sur}.{given}{user_num}@{domain}"
    roll = draws.rolls[i][_EMAIL_STYLE]
    if roll < 0.25:
        email = email[0].upper() + email[1:]
    elif roll < 0.35:
        email = email.upper()
    elif roll < 0.45:
        local, dom = email.split("@")
        email = f"{local}@{dom.upper()}"
    return _space(email, 0.15, draws.rolls[i][_EMAIL_SPACES])


# ------------------------------------------------------------------------------ planted truth

FAMILY_BLOCK = 10  # user numbers per block; a block holds at most one planted person
FAMILY_SHARE = 0.08
FAMILY_SIZES = (2, 3, 4)
HUB_BLOCK = 10_000
HUB_ACCOUNTS = 30
ZERO_DEVICE_SHARE = 0.01
ZERO_IMEI = "000000000000000"
ANDROID, IOS = 0, 1


def _digest(seed: int, *parts: object) -> bytes:
    return hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=16).digest()


def _unit(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) from a hash: the same for the same parts, whatever the chunking."""
    return int.from_bytes(_digest(seed, *parts)[:8], "big") / 2**64


def _planted_device(seed: int, id_type: str, *parts: object) -> str:
    """A device id of ``id_type`` named after ``parts`` (normalised form)."""
    h = _digest(seed, "device", id_type, *parts).hex()
    if id_type == "imei":
        body = str(10**13 + int(h, 16) % (9 * 10**13))
        return body + _luhn(body)
    return _uuid(h).upper() if id_type == "idfa" else _uuid(h)


def _restyled(id_type: str, value: str) -> str:
    """The same device as the second account of a link types it."""
    if id_type == "imei":
        return value + "  "
    return value.lower() if id_type == "idfa" else value.upper()


@dataclass
class IdentityPlan:
    """What is planted in one chunk: extra lines per user index, and the truth they make."""

    extra: dict[int, list[tuple[str, str]]] = field(default_factory=dict)
    persons: list[tuple[str, ...]] = field(default_factory=list)  # multi-account persons, in chain order
    # (id_type, normalised value) -> (accounts, rule) with the default guards
    violations: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)

    def add(self, i: int, id_type: str, value: str) -> None:
        self.extra.setdefault(i, []).append((id_type, value))


def _plant_families(plan: IdentityPlan, user_nums: list[int], platform: list[int], seed: int) -> None:
    blocks: dict[int, list[int]] = {}
    for i, num in enumerate(user_nums):
        blocks.setdefault((num - 1) // FAMILY_BLOCK, []).append(i)
    for block, members in blocks.items():
        if _unit(seed, "family", block) >= FAMILY_SHARE:
            continue
        size = FAMILY_SIZES[int(_unit(seed, "family size", block) * len(FAMILY_SIZES))]
        same = [i for i in members if platform[i] == platform[members[0]]][:size]
        if len(same) < 2:
            continue
        for j, (a, b) in enumerate(zip(same, same[1:], strict=False)):
            id_type = "idfa" if platform[a] == IOS else ("oaid", "imei")[j % 2]
            value = _planted_device(seed, id_type, "link", user_nums[a])
            plan.add(a, id_type, value)
            plan.add(b, id_type, _restyled(id_type, value))
        plan.persons.append(tuple(f"u{user_nums[i]:07d}" for i in same))


def _plant_hubs(plan: IdentityPlan, user_nums: list[int], platform: list[int], seed: int) -> None:
    blocks: dict[int, list[int]] = {}
    for i, num in enumerate(user_nums):
        if platform[i] == ANDROID:
            blocks.setdefault((num - 1) // HUB_BLOCK, []).append(i)
    for members in blocks.values():
        if len(members) < HUB_ACCOUNTS:
            continue
        step = len(members) // HUB_ACCOUNTS
        value = _planted_device(seed, "oaid", "hub", user_nums[members[0]])
        for i in members[::step][:HUB_ACCOUNTS]:
            plan.add(i, "oaid", value)
        plan.violations[("oaid", value)] = (HUB_ACCOUNTS, RULE_IDENTIFIER_CAP)


def _plant_blocked(plan: IdentityPlan, user_nums: list[int], platform: list[int], seed: int) -> None:
    zero_forms = (ZERO_DEVICE_ID, "0" * 32)
    counts = {"idfa": 0, "oaid": 0, "imei": 0}
    for i, num in enumerate(user_nums):
        if _unit(seed, "zero device", num) < ZERO_DEVICE_SHARE:
            id_type = "idfa" if platform[i] == IOS else "oaid"
            plan.add(i, id_type, zero_forms[num % 2])
            counts[id_type] += 1
        if platform[i] == ANDROID and _unit(seed, "zero imei", num) < ZERO_DEVICE_SHARE:
            plan.add(i, "imei", ZERO_IMEI)
            counts["imei"] += 1
    for id_type, n in counts.items():
        if n:
            key = ZERO_IMEI if id_type == "imei" else ZERO_DEVICE_ID
            rule = RULE_BLOCKED_PATTERN if id_type == "imei" else RULE_BLOCKED_VALUE
            plan.violations[(id_type, key)] = (n, rule)


def plan_identities(user_nums: np.ndarray, platform: np.ndarray, seed: int) -> IdentityPlan:
    """The identifiers planted in one chunk of users (``platform``: 0 Android, 1 iOS) and their truth."""
    nums, plat = [int(x) for x in user_nums], [int(x) for x in platform]
    plan = IdentityPlan()
    _plant_families(plan, nums, plat, seed)
    _plant_hubs(plan, nums, plat, seed)
    _plant_blocked(plan, nums, plat, seed)
    return plan


@dataclass(frozen=True)
class IdentityTruth:
    """What stitching a generated dataset with the default guards must find."""

    persons: frozenset[frozenset[str]]  # the multi-account persons; every other account is alone
    violations: dict[tuple[str, str], tuple[int, str]]  # (id_type, normalised value) -> (accounts, rule)


def planted_truth(out: str | Path) -> IdentityTruth:
    """The planted persons and violations of a ``dmp generate`` output folder.

    Re-plans every chunk from truth/summary.json (users, seed, chunk_users; chunk c holds user
    numbers c * chunk_users + 1 ... (c + 1) * chunk_users, as ``dmp.demo.generate`` cuts them) and
    the platforms of truth/users.csv.
    """
    out = Path(out)
    summary = json.loads((out / "truth" / "summary.json").read_text())
    with open(out / "truth" / "users.csv", newline="") as f:
        platform = [IOS if row["platform"] == "ios" else ANDROID for row in csv.DictReader(f)]
    users, size, seed = int(summary["users"]), int(summary["chunk_users"]), int(summary["seed"])
    persons: set[frozenset[str]] = set()
    violations: dict[tuple[str, str], tuple[int, str]] = {}
    for first in range(1, users + 1, size):
        nums = np.arange(first, min(first + size, users + 1))
        plan = plan_identities(nums, np.array(platform[first - 1 : nums[-1]]), seed)
        persons |= {frozenset(p) for p in plan.persons}
        for key, (n, rule) in plan.violations.items():
            violations[key] = (violations.get(key, (0, rule))[0] + n, rule)
    return IdentityTruth(frozenset(persons), violations)


# ------------------------------------------------------------------------------------ lines


def identities(
    rng: np.random.Generator, user_nums: np.ndarray, platform: np.ndarray, seed: int
) -> tuple[list[str], dict[str, int], int]:
    """Identity lines for one chunk (planted ones included), the count per id type, and the number
    of users with no id."""
    draws = _draw(rng, user_nums, seed)
    plan = plan_identities(user_nums, platform, seed)
    counts = dict.fromkeys(ID_TYPES, 0)
    lines: list[str] = []
    no_ids = 0
    for i in range(len(user_nums)):
        ri = draws.rolls[i]
        uid = f"u{user_nums[i]:07d}"
        ids: list[tuple[str, str]] = []
        if ri[_NO_IDS] >= 0.03:  # 3% of users leave no identifier at all
            ids = _device_ids(draws, i, int(platform[i]))
            if ri[_HAS_PHONE] < 0.7:
                ids.append(("phone", _phone(draws, i)))
            if ri[_HAS_EMAIL] < 0.5:
                ids.append(("email", _email(draws, i, int(user_nums[i]))))
        ids += plan.extra.get(i, [])
        if not ids:
            no_ids += 1
        for id_type, value in ids:
            counts[id_type] += 1
            lines.append(f'{{"user_id": "{uid}", "id_type": "{id_type}", "id_value": "{value}"}}')
    return lines, counts, no_ids
