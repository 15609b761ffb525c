"""The identity guards config: defaults, the shipped file, overrides, and errors naming file and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dmp.contracts.errors import DmpError
from dmp.contracts.identity_guards import ZERO_DEVICE_ID, IdentityGuards, load_identity_guards
from tests.conftest import REPO_ROOT

SHIPPED = REPO_ROOT / "infra" / "identity_guards.yaml"


def _load(tmp_path: Path, text: str) -> IdentityGuards:
    path = tmp_path / "guards.yaml"
    path.write_text(text)
    return load_identity_guards(path)


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(DmpError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_defaults_and_the_shipped_file_are_the_same() -> None:
    defaults = load_identity_guards(None)
    assert (defaults.max_accounts_per_identifier, defaults.max_accounts_per_person) == (20, 50)
    assert defaults.blocked_values.of("idfa") == defaults.blocked_values.of("oaid") == (ZERO_DEVICE_ID,)
    assert "+8613800138000" in defaults.blocked_values.of("phone")
    assert load_identity_guards(SHIPPED) == defaults


def test_the_default_patterns_block_repeated_digits_only() -> None:
    patterns = IdentityGuards().blocked_patterns
    full = {t: [re.compile(p) for p in patterns.of(t)] for t in ("imei", "oaid", "idfa", "phone")}

    def blocked(id_type: str, value: str) -> bool:
        return any(p.fullmatch(value) for p in full[id_type])

    assert blocked("imei", "000000000000000") and blocked("imei", "11111111111111")
    assert not blocked("imei", "356938035643809")
    assert blocked("oaid", "ffffffff-ffff-ffff-ffff-ffffffffffff") and not blocked(
        "oaid", "ffffffff-ffff-ffff-ffff-fffffffffffe"
    )
    assert blocked("idfa", "AAAAAAAA-AAAA-AAAA-AAAA-AAAAAAAAAAAA")
    assert blocked("phone", "+8613888888888") and not blocked("phone", "+8613812345678")


def test_a_type_given_replaces_its_default_and_the_others_stay(tmp_path: Path) -> None:
    guards = _load(
        tmp_path,
        "max_accounts_per_identifier: 5\nblocked_values:\n  phone: ['+8613811112222']\n  idfa: []\n",
    )
    assert guards.max_accounts_per_identifier == 5 and guards.max_accounts_per_person == 50
    assert guards.blocked_values.of("phone") == ("+8613811112222",)
    assert guards.blocked_values.of("idfa") == ()
    assert guards.blocked_values.of("oaid") == (ZERO_DEVICE_ID,)
    assert guards.blocked_patterns == IdentityGuards().blocked_patterns
    assert _load(tmp_path, "") == IdentityGuards()  # an empty file: all defaults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "blocked_values:\n  phone: ['13800138000']\n",
            "blocked_values.phone[0]: '13800138000' is not a normalised phone value; "
            "expected E.164 like +8613800138000",
        ),
        (
            "blocked_values:\n  idfa: ['6d92078a-8246-4ba4-ae5b-76104861e7dc']\n",
            "blocked_values.idfa[0]: '6d92078a-8246-4ba4-ae5b-76104861e7dc' is not a normalised idfa value; "
            "expected upper-case 8-4-4-4-12 hex",
        ),
        (
            "blocked_values:\n  wechat: ['x']\n",
            "blocked_values.wechat: unknown field; expected one of oaid, idfa, imei, phone, email",
        ),
        (
            "max_accounts: 3\n",
            "max_accounts: unknown field; expected one of max_accounts_per_identifier, "
            "max_accounts_per_person, blocked_values, blocked_patterns",
        ),
        (
            "max_accounts_per_identifier: 1\n",
            "max_accounts_per_identifier: Input should be greater than or equal to 2",
        ),
        (
            "max_accounts_per_identifier: lots\n",
            "max_accounts_per_identifier: Input should be a valid integer",
        ),
        (
            "max_accounts_per_person: 10\n",
            "(top level): max_accounts_per_person (10) must be >= max_accounts_per_identifier (20)",
        ),
        (
            "blocked_patterns:\n  imei: ['(\\d']\n",
            "blocked_patterns.imei[0]: '(\\\\d' is not a regular expression (missing ), unterminated subpattern",
        ),
    ],
)
def test_errors_name_the_file_the_field_and_what_is_expected(tmp_path: Path, text: str, message: str) -> None:
    error = _error(tmp_path, text)
    assert error.startswith(f"{tmp_path / 'guards.yaml'}: invalid identity guards: ")
    assert message in error


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DmpError, match=r"nowhere\.yaml: identity guards file not found"):
        load_identity_guards(tmp_path / "nowhere.yaml")
    assert "expected a mapping of guard settings at the top level, got list" in _error(tmp_path, "- 20\n")
    # safe_yaml's refusals name the file too
    assert _error(tmp_path, "max_accounts_per_person: 60\nmax_accounts_per_person: 70\n").startswith(
        str(tmp_path / "guards.yaml")
    )
