"""Delivery channels (``segments/channels.yaml``, design.md §4): where packs go and how ids are prepared.

Destinations may use ``${VAR}`` / ``${VAR:-default}`` so the same file serves the demo (``file://``
default), the tests (a local MinIO bucket) and production (``s3://``). Only the ``destination`` is
expanded: credentials never live in this file, they come from the AWS chain or an Airflow connection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from dmp.contracts.errors import SpecError
from dmp.contracts.vocab import CHANNEL_ID_TYPES

CHANNELS_FILE = "channels.yaml"

# Every id type a channel may accept; ``user_id`` is our own key (coupon systems know our users).
IdType = Literal[CHANNEL_ID_TYPES]
HashAlgo = Literal["md5", "sha256", "none"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, where: str) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset VAR without default is an error."""

    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found not in (None, ""):
            return str(found)
        if default is not None:
            return default
        raise SpecError(
            f"{where}: environment variable {name} is not set and has no default (use ${{{name}:-...}})"
        )

    return _ENV_REF.sub(repl, value)


class Channel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["ad", "coupon"]
    destination: str
    id_types: list[IdType]
    hash: dict[IdType, HashAlgo]
    phone_format: Literal["e164", "cn11"] = "e164"
    sync: Literal["full", "incremental"] = "full"

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        if value.startswith("s3://"):
            bucket = value[len("s3://") :].split("/", 1)[0]
            if not bucket:
                raise ValueError(f"s3 destination needs a bucket: s3://bucket/prefix, got {value!r}")
            return value.rstrip("/")
        if value.startswith("file:///"):
            return value.rstrip("/") or value
        raise ValueError(f"expected s3://bucket/prefix or file:///absolute/path, got {value!r}")

    @field_validator("id_types")
    @classmethod
    def _id_types(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"give at least one id type from {list(CHANNEL_ID_TYPES)}")
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"id types listed twice: {dupes}")
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
        return self

    @property
    def is_s3(self) -> bool:
        return self.destination.startswith("s3://")


class ChannelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: dict[str, Channel]

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, Channel]) -> dict[str, Channel]:
        bad = [name for name in value if not re.fullmatch(r"[a-z0-9_]+", name)]
        if bad:
            raise ValueError(f"channel names must match [a-z0-9_]+, got {bad}")
        return value

    def get(self, name: str, where: str = CHANNELS_FILE) -> Channel:
        try:
            return self.channels[name]
        except KeyError:
            raise SpecError(f"{where}: unknown channel {name!r}; defined: {sorted(self.channels)}") from None


def _format_validation_error(path: Path, exc: ValidationError) -> str:
    lines = [f"{path}: invalid channels file"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field (allowed: type, destination, id_types, hash, phone_format, sync)"
        elif err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
            msg = f"got {err['input']!r}, allowed: {err['ctx']['expected']}"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_channels(raw: object, path: Path) -> ChannelsConfig:
    """Validate an already-loaded YAML document (env references in destinations expanded first)."""
    if not isinstance(raw, dict) or "channels" not in raw:
        raise SpecError(f"{path}: expected a mapping with a top-level 'channels:' key")
    channels = raw.get("channels")
    if isinstance(channels, dict):
        for name, body in channels.items():
            if isinstance(body, dict) and isinstance(body.get("destination"), str):
                body["destination"] = expand_env(body["destination"], f"{path}: channels.{name}.destination")
    try:
        return ChannelsConfig.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_validation_error(path, exc)) from None


def load_channels(segments_dir: str | os.PathLike[str]) -> ChannelsConfig:
    """Read and validate ``<segments_dir>/channels.yaml``."""
    path = Path(segments_dir) / CHANNELS_FILE
    if not path.is_file():
        raise SpecError(
            f"{path}: channels file not found (expected {CHANNELS_FILE} next to the segment specs)"
        )
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}") from None
    return parse_channels(raw, path)
