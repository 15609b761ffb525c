"""Raw, noisy identity lines of the demo users (``identities/identities.jsonl``).

Android users get OAIDs and sometimes IMEIs, iOS users IDFAs (up to three devices each); 70% give
a phone and 50% an email. Values come as people and SDKs type them: stray spaces, mixed case,
phones with or without +86 and separators, so delivery's normalisation has work to do. 3% of
users leave no identifier at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def identities(
    rng: np.random.Generator, user_nums: np.ndarray, platform: np.ndarray, seed: int
) -> tuple[list[str], dict[str, int], int]:
    """Identity lines for one chunk, the count per id type, and the number of users with no id."""
    draws = _draw(rng, user_nums, seed)
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
        if not ids:
            no_ids += 1
        for id_type, value in ids:
            counts[id_type] += 1
            lines.append(f'{{"user_id": "{uid}", "id_type": "{id_type}", "id_value": "{value}"}}')
    return lines, counts, no_ids
