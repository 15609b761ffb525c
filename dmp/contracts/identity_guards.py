"""Guards of identity stitching (docs/identity.md): which identifiers may link accounts into a person.

Defaults live here (the one home of them; ``infra/identity_guards.yaml`` spells them out and a test
keeps it equal); ``dmp identities stitch --guards FILE`` overrides any of them from YAML. An id type
given under ``blocked_values`` / ``blocked_patterns`` replaces that type's default list (``[]``
blocks nothing of that type); the types not given keep theirs::

    max_accounts_per_identifier: 20   # an identifier on more accounts links nobody (a hub)
    max_accounts_per_person: 50       # a component larger than this is not a person: no links
    blocked_values:                   # never link, whatever their count (normalised form)
      idfa: ["00000000-0000-0000-0000-000000000000"]
      phone: ["+8613800138000"]
    blocked_patterns:                 # regular expressions on the whole normalised value
      imei: ['(\\d)\\1{13,14}']

Values are compared in the form ``dmp.transforms.ids`` normalises them to (the form they are
hashed in for delivery): phone E.164 (``+8613800138000``), idfa upper-case 8-4-4-4-12, oaid /
imei / email lower-case; a blocked value written otherwise is an error naming where it is, so a
typo never silently blocks nothing. Patterns must match the whole value, use only the syntax
Python and Java regexes share (Spark evaluates them), and are checked to compile.

An identifier stopped by a guard is recorded in ``ops/identity_violations`` under one of
:data:`VIOLATION_RULES` and is never part of a person's identifiers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from dmp.contracts.errors import DmpError
from dmp.contracts.safe_yaml import load_yaml_file
from dmp.contracts.vocab import ID_TYPES

# ops/identity_violations.rule, in the order the guards are checked (the first that applies wins).
RULE_BLOCKED_VALUE = "blocked_value"
RULE_BLOCKED_PATTERN = "blocked_pattern"
RULE_IDENTIFIER_CAP = "max_accounts_per_identifier"
RULE_PERSON_CAP = "max_accounts_per_person"
VIOLATION_RULES: tuple[str, ...] = (
    RULE_BLOCKED_VALUE,
    RULE_BLOCKED_PATTERN,
    RULE_IDENTIFIER_CAP,
    RULE_PERSON_CAP,
)

# The value limit-ad-tracking devices report (also what an all-zero OAID / IDFA normalises to).
ZERO_DEVICE_ID = "00000000-0000-0000-0000-000000000000"

# The normalised form of each id type (dmp.transforms.ids), what a blocked value must look like.
NORMALISED_FORMS: dict[str, tuple[str, str]] = {
    "phone": (r"\+[1-9]\d{5,14}", "E.164 like +8613800138000"),
    "idfa": (r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}", "upper-case 8-4-4-4-12 hex"),
    "oaid": (r"[^A-Z\s]+", "lower-case, no spaces"),
    "imei": (r"[^A-Z\s]+", "lower-case, no spaces"),
    "email": (r"[^@\sA-Z]+@[^@\sA-Z]+", "lower-case name@domain"),
}
assert set(NORMALISED_FORMS) == set(ID_TYPES)


def _normalised(id_type: str) -> AfterValidator:
    pattern, expected = NORMALISED_FORMS[id_type]

    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(f"{value!r} is not a normalised {id_type} value; expected {expected}")
        return value

    return AfterValidator(check)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a regular expression ({exc})") from None
    return pattern


Pattern = Annotated[str, AfterValidator(_compiles)]


class BlockedValues(BaseModel):
    """Normalised values that never link, per id type; a type given in the file replaces its default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    oaid: tuple[Annotated[str, _normalised("oaid")], ...] = (ZERO_DEVICE_ID,)
    idfa: tuple[Annotated[str, _normalised("idfa")], ...] = (ZERO_DEVICE_ID,)
    # a counting sequence and the textbook example IMEI (it passes the Luhn check)
    imei: tuple[Annotated[str, _normalised("imei")], ...] = (
        "123456789012345",
        "012345678901234",
        "490154203237518",
    )
    # the sample numbers of Chinese forms and SDK docs, typed by testers and by people who will not
    # give their own
    phone: tuple[Annotated[str, _normalised("phone")], ...] = (
        "+8613800138000",
        "+8613900139000",
        "+8613000000000",
        "+8613012345678",
    )
    email: tuple[Annotated[str, _normalised("email")], ...] = (
        "test@test.com",
        "test@example.com",
        "example@example.com",
        "noreply@example.com",
    )

    def of(self, id_type: str) -> tuple[str, ...]:
        return tuple(getattr(self, id_type))


class BlockedPatterns(BaseModel):
    """Regular expressions the whole normalised value must match to be blocked, per id type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    oaid: tuple[Pattern, ...] = (r"([0-9a-f])(\1|-)+",)  # one hex digit repeated: ffffffff-ffff-...
    idfa: tuple[Pattern, ...] = (r"([0-9A-F])(\1|-)+",)
    # one digit repeated: 000000000000000 (devices that hide their IMEI), 111111111111111, ...
    imei: tuple[Pattern, ...] = (r"(\d)\1{13,14}",)
    # the 8 digits after a mainland mobile prefix all the same: +8613888888888
    phone: tuple[Pattern, ...] = (r"\+861\d{2}(\d)\1{7}",)
    email: tuple[Pattern, ...] = ()

    def of(self, id_type: str) -> tuple[str, ...]:
        return tuple(getattr(self, id_type))


class IdentityGuards(BaseModel):
    """Caps and blocked values of identity stitching; ``dmp identities stitch --guards FILE`` overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_accounts_per_identifier: int = Field(20, ge=2, le=100_000)
    max_accounts_per_person: int = Field(50, ge=2, le=1_000_000)
    blocked_values: BlockedValues = Field(default_factory=BlockedValues)
    blocked_patterns: BlockedPatterns = Field(default_factory=BlockedPatterns)

    @model_validator(mode="after")
    def _caps_ordered(self) -> IdentityGuards:
        if self.max_accounts_per_person < self.max_accounts_per_identifier:
            raise ValueError(
                f"max_accounts_per_person ({self.max_accounts_per_person}) must be >= "
                f"max_accounts_per_identifier ({self.max_accounts_per_identifier}): an identifier "
                "allowed to link N accounts makes a person of N"
            )
        return self


def _issue(err: dict) -> str:
    loc = err["loc"]
    where = "".join(f"[{x}]" if isinstance(x, int) else f".{x}" for x in loc).lstrip(".") or "(top level)"
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        allowed = IdentityGuards.model_fields if len(loc) == 1 else ID_TYPES
        message = f"unknown field; expected one of {', '.join(allowed)}"
    return f"{where}: {message}"


def load_identity_guards(path: str | Path | None) -> IdentityGuards:
    """Defaults, overridden by the YAML file at ``path`` if given; errors name the file and the field."""
    if path is None:
        return IdentityGuards()
    p = Path(path)
    if not p.is_file():
        raise DmpError(f"{p}: identity guards file not found")
    raw = load_yaml_file(p)  # YamlRefused (a DmpError) names the file and what is wrong
    if raw is None:
        return IdentityGuards()
    if not isinstance(raw, dict):
        raise DmpError(
            f"{p}: expected a mapping of guard settings at the top level, got {type(raw).__name__}"
        )
    try:
        return IdentityGuards.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_issue(err) for err in exc.errors())
        raise DmpError(f"{p}: invalid identity guards: {problems}") from None
