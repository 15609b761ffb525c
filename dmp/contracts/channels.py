"""Delivery channels (``segments/channels.yaml``, design.md §4): where packs go and how ids are prepared.

Destinations may use ``${VAR}`` / ``${VAR:-default}`` so the same file serves the demo (``file://``
default), the tests (a local MinIO bucket) and production (``s3://``). Only the ``destination`` is
expanded: credentials never live in this file, they come from the AWS chain or an Airflow connection.
A destination is normalised (``//``, ``/./`` and trailing ``/`` dropped) and refused when it could
leave its folder (``..``, also percent-encoded) or carries more than a location (``user@``,
``?query``, ``#fragment``). Messages about a destination show it as written in the file and name
the variables it expands, never their values: a secret named there by mistake stays out of logs.

A channel may say what it costs (``cost:``, :class:`ChannelCost`), for the uplift report's
incremental ROI (docs/uplift.md): a price per delivered user or per thousand delivered users,
and for coupon channels the value of each coupon redeemed. Amounts are in the currency of the
lake's GMV.

A channel may also rank its segments (``priority:``) and cap how often one person is contacted
(``frequency_cap: {max: N, days: D}``); docs/priority_caps.md and :mod:`dmp.transforms.contacts`
give the semantics. Without either, delivery is exactly as before.
"""

from __future__ import annotations

import os
import re
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import unquote

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from dmp.contracts.errors import SpecError
from dmp.contracts.safe_yaml import YamlRefused, load_yaml_file
from dmp.contracts.vocab import CHANNEL_ID_TYPES, CONSENT_PURPOSES, PURPOSE_OF_CHANNEL_TYPE

CHANNELS_FILE = "channels.yaml"
# The one definition of a channel name (channels.yaml keys, --channel, the folder on a destination).
CHANNEL_NAME_PATTERN = r"^[a-z0-9_]+$"
DESTINATION_FORMS = "s3://bucket/prefix or file:///absolute/path"

# Every id type a channel may accept; ``user_id`` is our own key (coupon systems know our users).
IdType = Literal[CHANNEL_ID_TYPES]
Purpose = Literal[CONSENT_PURPOSES]
HashAlgo = Literal["md5", "sha256", "none"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Names of variables that hold credentials, not locations: refused in a destination.
_CREDENTIAL_NAME = re.compile(
    r"(^|_)(SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIALS?)(_|$)|ACCESS_KEY|PRIVATE_KEY|API_KEY", re.IGNORECASE
)
_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Context key of ChannelsConfig.model_validate: expand ${VAR} in destinations (channels.yaml only).
EXPAND_ENV = "expand_env"

_short = reprlib.Repr()
_short.maxstring = 120


def env_names(value: str) -> list[str]:
    """The variables a destination names (``${VAR}`` / ``${VAR:-default}``), in order, once each."""
    return list(dict.fromkeys(m.group(1) for m in _ENV_REF.finditer(value)))


def expand_env(value: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset VAR without default is a ``ValueError``.

    The message names the variable only; neither this function nor its callers ever show a value.
    """

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found not in (None, ""):
            return str(found)
        if default is not None:
            return default
        raise ValueError(f"environment variable {name} is not set and has no default (use ${{{name}:-...}})")

    return _ENV_REF.sub(repl, value)


def normalise_destination(url: str) -> str:
    """``url`` in its one spelling (no empty, ``.`` or trailing folders); ``ValueError`` when refused.

    The error text never contains ``url`` (it may hold expanded variables); callers add what the
    user wrote. ``..`` is refused rather than resolved: a destination that climbs out of the folder
    it names is a mistake or an attack, and resolving it would hide which.
    """
    if _CONTROL.search(url):
        raise ValueError(
            f"control characters (newline, tab, NUL) are not allowed; expected {DESTINATION_FORMS}"
        )
    if url.startswith("s3://"):
        bucket, _, path = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError("s3 destination needs a bucket: s3://bucket/prefix")
        if not _BUCKET.fullmatch(bucket):
            raise ValueError(
                "the bucket may hold only letters, digits, '.', '-' and '_' (no user:password@, no :port); "
                "expected s3://bucket/prefix"
            )
        base = f"s3://{bucket}"
    elif url.startswith("file:///"):
        path, base = url[len("file:///") :], "file://"
    else:
        raise ValueError(f"expected {DESTINATION_FORMS}")
    if "?" in path or "#" in path:
        raise ValueError(
            f"a destination is a location only: no ?query or #fragment; expected {DESTINATION_FORMS}"
        )
    parts = [p for p in path.split("/") if p not in ("", ".")]
    for part in parts:
        if part == "..":
            raise ValueError(
                "'..' folders are not allowed: a destination may not climb out of the folder it names; "
                f"expected {DESTINATION_FORMS} with plain folder names"
            )
        decoded = unquote(part).split("/")
        if len(decoded) > 1 or decoded[0] in (".", ".."):
            raise ValueError(
                "percent-encoded '/', '.' or '..' in a folder name is not allowed; "
                f"expected {DESTINATION_FORMS} with plain folder names"
            )
    if base == "file://" and not parts:
        raise ValueError("a file destination needs a folder below the root: file:///absolute/path")
    return "/".join([base, *parts]) if base != "file://" else "file:///" + "/".join(parts)


def resolve_destination(written: str, *, expand: bool) -> str:
    """The normalised destination for what channels.yaml says (``${VAR}`` expanded when ``expand``).

    Every ``ValueError`` shows ``written`` (the file's own text, cut short) and names the variables
    it expands, so neither a variable's value nor a secret named there by mistake is ever printed.
    """
    names = env_names(written) if expand else []
    shown = _short.repr(written) + (
        f" (with {', '.join(names)} from the environment; values not shown)" if names else ""
    )
    credentials = [n for n in names if _CREDENTIAL_NAME.search(n)]
    if credentials:
        raise ValueError(
            f"names {', '.join(credentials)}, which holds a credential, not a location; destinations may "
            "name only variables holding a location (credentials come from the AWS chain or DMP_AWS_CONN_ID)"
        )
    try:
        return normalise_destination(expand_env(written) if expand else written)
    except ValueError as exc:
        raise ValueError(f"{exc}; got {shown}") from None


# A price: a plain number >= 0 (strict: "0.5" as text or ``true`` is a typo, not a price).
Price = Annotated[float, Field(ge=0, allow_inf_nan=False, strict=True)]
COST_FORMS = "per_user: PRICE, per_mille: PRICE (per 1,000 delivered users), coupon_redemptions: true"


class ChannelCost(BaseModel):
    """What one delivery of a pack to the channel costs (``channels.<name>.cost``).

    ``per_user`` (each delivered user) or ``per_mille`` (each 1,000 delivered users, as ad
    platforms quote it), not both; ``coupon_redemptions: true`` (coupon channels only) adds the
    spec's ``coupon.value`` for every redemption of that coupon by a treated user in the
    attribution window. Delivered users are the pack's treated users the channel matched (the
    delivery manifest's ``counts.matched_users``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_user: Price | None = None
    per_mille: Price | None = None
    coupon_redemptions: Annotated[bool, Field(strict=True)] = False

    @model_validator(mode="after")
    def _one_price(self) -> ChannelCost:
        if self.per_user is not None and self.per_mille is not None:
            raise ValueError(
                "give per_user or per_mille, not both (per_mille = the price of 1,000 delivered users)"
            )
        if self.per_user is None and self.per_mille is None and not self.coupon_redemptions:
            raise ValueError(f"an empty cost; expected at least one of {COST_FORMS}")
        return self

    def delivery_cost(self, delivered_users: int) -> float:
        """The fixed part: the price of ``delivered_users`` (0 when the channel charges per coupon only)."""
        if self.per_user is not None:
            return self.per_user * delivered_users
        if self.per_mille is not None:
            return self.per_mille * delivered_users / 1000.0
        return 0.0


# Why a treated user of a pack was not delivered to a channel (manifest ``excluded_by_reason``,
# ops/channel_contacts ``outcome``): a higher-priority pack claimed them, or the frequency cap did.
LOST_TO_PRIORITY = "priority"
LOST_TO_FREQUENCY_CAP = "frequency_cap"
DELIVERED = "delivered"
CONTACT_OUTCOMES: tuple[str, ...] = (DELIVERED, LOST_TO_PRIORITY, LOST_TO_FREQUENCY_CAP)
SEGMENT_NAME_PATTERN = r"^[a-z0-9_]+$"
FREQUENCY_CAP_FORMS = "frequency_cap: {max: N, days: D} (at most N deliveries of a person in any D days)"


class FrequencyCap(BaseModel):
    """At most ``max`` deliveries of one person to the channel in any ``days`` consecutive days."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max: Annotated[int, Field(ge=1, strict=True)]
    days: Annotated[int, Field(ge=1, le=366, strict=True)]


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ad", "coupon"]
    destination: str
    id_types: list[IdType]
    hash: dict[IdType, HashAlgo]
    phone_format: Literal["e164", "cn11"] = "e164"
    sync: Literal["full", "incremental"] = "full"
    cost: ChannelCost | None = None
    # The consent a user must have granted to be delivered here (silver/consents, docs/privacy.md);
    # by default the purpose of the channel's type (ad -> ad_personalization, coupon -> marketing_messages).
    purpose: Purpose | None = None
    # Segments in priority order: a person is delivered only in the highest-ranked pack they are in
    # (segments not listed rank after the listed ones, by name).
    priority: list[str] = Field(default_factory=list)
    frequency_cap: FrequencyCap | None = None

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str, info: ValidationInfo) -> str:
        expand = bool(info.context and info.context.get(EXPAND_ENV))
        return resolve_destination(value, expand=expand)

    @field_validator("id_types")
    @classmethod
    def _id_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"give at least one id type from {list(CHANNEL_ID_TYPES)}")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"id types listed twice: {dupes}")
        return value

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: list[str]) -> list[str]:
        bad = [_short.repr(v) for v in value if not re.fullmatch(SEGMENT_NAME_PATTERN, v)]
        if bad:
            raise ValueError(f"segment names must match {SEGMENT_NAME_PATTERN}, got {', '.join(bad[:5])}")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"segments listed twice: {dupes}")
        return value

    @model_validator(mode="after")
    def _hash_covers_id_types(self) -> Channel:
        missing = [t for t in self.id_types if t not in self.hash]
        if missing:
            raise ValueError(f"hash: no algorithm for id types {missing} (allowed: md5, sha256, none)")
        raw_ids = [t for t in self.id_types if t != "user_id" and self.hash[t] == "none"]
        if raw_ids:
            # Raw device ids, phones and emails never leave the lake; only our own user_id may go unhashed.
            raise ValueError(
                f"hash: {raw_ids} must be hashed (md5 or sha256); 'none' is allowed for user_id only"
            )
        if self.cost is not None and self.cost.coupon_redemptions and self.type != "coupon":
            raise ValueError(
                f"cost.coupon_redemptions: only a coupon channel redeems coupons (this one is type {self.type!r}); "
                "give per_user or per_mille"
            )
        return self

    @property
    def consent_purpose(self) -> str:
        """The purpose whose granted consent a user needs to be delivered to this channel."""
        return self.purpose or PURPOSE_OF_CHANNEL_TYPE[self.type]

    @property
    def has_contact_rules(self) -> bool:
        """True when the channel ranks its packs or caps contacts (ops/channel_contacts is kept)."""
        return bool(self.priority) or self.frequency_cap is not None

    def rank_segments(self, segments: Iterable[str]) -> list[str]:
        """``segments`` in delivery order: the ``priority`` list's order, then the others by name."""
        place = {name: i for i, name in enumerate(self.priority)}
        return sorted(set(segments), key=lambda s: (place.get(s, len(place)), s))

    @property
    def is_s3(self) -> bool:
        return self.destination.startswith("s3://")


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[str, Channel]

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, Channel]) -> dict[str, Channel]:
        bad = [_short.repr(name) for name in value if not re.fullmatch(CHANNEL_NAME_PATTERN, name)]
        if bad:
            raise ValueError(f"channel names must match {CHANNEL_NAME_PATTERN}, got {', '.join(bad[:5])}")
        return value

    def get(self, name: str, where: str = CHANNELS_FILE) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise SpecError(f"{where}: unknown channel {name!r}; defined: {sorted(self.channels)}") from None


def _allowed_fields(loc: tuple[int | str, ...]) -> str:
    """The fields allowed where an unknown one was found (a channel's, its cost's, or the file's)."""
    if len(loc) == 4 and loc[2] == "cost":
        model: type[BaseModel] = ChannelCost
    elif len(loc) == 4 and loc[2] == "frequency_cap":
        model = FrequencyCap
    elif len(loc) == 3:
        model = Channel
    else:
        model = ChannelsConfig
    return ", ".join(model.model_fields)


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    """``FILE: FIELD: problem`` for one error; a header and one indented line per error for several."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = f"unknown field (allowed: {_allowed_fields(err['loc'])})"
        elif "cost" in err["loc"][2:3] and err["type"] in _PRICE_ERRORS:
            msg = f"got {_short.repr(err['input'])}; expected a number >= 0 in the GMV's currency"
        elif "cost" in err["loc"][2:3] and err["type"] == "bool_type":
            msg = f"got {_short.repr(err['input'])}; expected true or false"
        elif err["type"] == "model_type" and err["loc"][2:3] == ("cost",):
            msg = f"got {_short.repr(err['input'])}; expected a mapping: {COST_FORMS}"
        elif err["loc"][2:3] == ("frequency_cap",) and err["type"] == "missing":
            msg = f"required; expected {FREQUENCY_CAP_FORMS}"
        elif err["loc"][2:3] == ("frequency_cap",):
            msg = (
                f"got {_short.repr(err['input'])}; expected {FREQUENCY_CAP_FORMS}, N and D whole numbers >= 1"
            )
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"got {_short.repr(err['input'])}, allowed: {err['ctx']['expected']}"
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            msg = str(err["ctx"]["error"])  # our own text, without pydantic's "Value error, "
        lines.append(f"{loc}: {msg}")
    if len(lines) == 1:
        return f"{path}: {lines[0]}"
    return "\n".join(
        [f"{path}: invalid channels file ({len(lines)} problems)", *(f"  {line}" for line in lines)]
    )


# pydantic's error types for a price that is not a finite number >= 0.
_PRICE_ERRORS = ("float_type", "float_parsing", "greater_than_equal", "finite_number")


def parse_channels(raw: object, path: Path) -> ChannelsConfig:
    """Validate an already-loaded YAML document; ``${VAR}`` in destinations is expanded while validating."""
    if not isinstance(raw, dict) or "channels" not in raw:
        raise SpecError(f"{path}: expected a mapping with a top-level 'channels:' key")
    try:
        return ChannelsConfig.model_validate(raw, context={EXPAND_ENV: True})
    except ValidationError as exc:
        # from None: the ValidationError's own text repeats the expanded destination.
        raise SpecError(_format_validation_error(path, exc)) from None


def load_channels(segments_dir: str | os.PathLike[str]) -> ChannelsConfig:
    """Read and validate ``<segments_dir>/channels.yaml`` (size, aliases, depth, UTF-8: ``safe_yaml``)."""
    path = Path(segments_dir) / CHANNELS_FILE
    if not path.is_file():
        raise SpecError(
            f"{path}: channels file not found (expected {CHANNELS_FILE} next to the segment specs)"
        )
    try:
        raw = load_yaml_file(path)
    except YamlRefused as exc:
        raise SpecError(str(exc)) from None
    return parse_channels(raw, path)
