"""Spec errors a marketer can act on: one line per problem, ``FILE: FIELD.PATH: message``.

pydantic's own messages name Python types and union tags; these say what is allowed, in the
spec's words (field paths as written in YAML, ``[i]`` for list items, the allowed fields of the
mapping when one is unknown).
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dmp.contracts.specs._base import show
from dmp.contracts.specs.conditions import UNION_TAGS
from dmp.contracts.specs.models import SegmentSpec


@dataclass(frozen=True)
class SpecIssue:
    file: str
    field_path: str
    message: str

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.field_path}: {self.message}"
            if self.field_path
            else f"{self.file}: {self.message}"
        )


_KEY_LIMIT = 40  # characters of one key shown in a field path


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in UNION_TAGS:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:  # an unknown key is the user's text: cut it, it may be a whole file long
            text = str(part)
            out += ("." if out else "") + (
                text if len(text) <= _KEY_LIMIT else text[: _KEY_LIMIT - 3] + "..."
            )
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (to list its allowed fields)."""
    current: type[BaseModel] | None = SegmentSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if part in UNION_TAGS:
            current = UNION_TAGS[part][1]
            continue
        if current is None:
            return None
        fields = {(f.alias or n): f for n, f in current.model_fields.items()}
        if part not in fields:
            return None
        current = _find_model(fields[part].annotation)
    return current


def _find_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    models = {m for arg in typing.get_args(annotation) if (m := _find_model(arg)) is not None}
    return models.pop() if len(models) == 1 else None


def _bound(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _allowed_fields(model: type[BaseModel]) -> str:
    return ", ".join(f.alias or n for n, f in model.model_fields.items())


# pydantic error type -> message, for the types whose message needs only the input value.
_VALUE_MESSAGES: dict[str, str] = {
    "string_type": "expected a string, got {value}",
    "int_type": "expected an integer, got {value}",
    "int_parsing": "expected an integer, got {value}",
    "int_from_float": "expected an integer, got {value}",
    "float_type": "expected a number, got {value}",
    "float_parsing": "expected a number, got {value}",
    "bool_type": "expected true or false, got {value}",
    "bool_parsing": "expected true or false, got {value}",
    "list_type": "expected a list, got {value}",
    "model_type": "expected a mapping, got {value}",
    "dict_type": "expected a mapping, got {value}",
    "model_attributes_type": "expected a mapping, got {value}",
}
# pydantic error type -> (message, the context key of the bound it names).
_BOUND_MESSAGES: dict[str, tuple[str, str]] = {
    "greater_than_equal": ("must be >= {bound}, got {value}", "ge"),
    "greater_than": ("must be > {bound}, got {value}", "gt"),
    "less_than_equal": ("must be <= {bound}, got {value}", "le"),
    "less_than": ("must be < {bound}, got {value}", "lt"),
}


def _message(err: ErrorDetails, loc: tuple[Any, ...]) -> str:
    """What is wrong at ``loc`` and what is allowed there."""
    etype = err["type"]
    ctx: dict[str, Any] = dict(err.get("ctx") or {})
    value = err.get("input")
    if etype == "extra_forbidden":
        model = _model_at(loc[:-1])
        return "unknown field" + (f"; allowed: {_allowed_fields(model)}" if model else "")
    if etype in _VALUE_MESSAGES:
        return _VALUE_MESSAGES[etype].format(value=show(value))
    if etype in _BOUND_MESSAGES:
        text, key = _BOUND_MESSAGES[etype]
        return text.format(bound=_bound(ctx.get(key)), value=show(value))
    if etype == "missing":
        return "required field is missing"
    if etype == "literal_error":
        return f"got {show(value)}; allowed: {ctx.get('expected')}"
    if etype == "string_pattern_mismatch":
        return f"must match {ctx.get('pattern')} (lower-case letters, digits, _), got {show(value)}"
    if etype == "too_short":
        return f"must have at least {ctx.get('min_length')} item(s)"
    if etype == "string_too_short":
        return "must not be empty"
    if etype == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if etype == "value_error":
        return str(ctx.get("error") or err["msg"].removeprefix("Value error, "))
    return err["msg"]


# Issues shown per file; a generated spec with a thousand bad leaves gets these and a count.
MAX_ISSUES_PER_FILE = 20


def issues_from_validation_error(file: str, exc: ValidationError) -> list[SpecIssue]:
    """Turn pydantic's errors into ``SpecIssue`` lines a marketer can act on (at most
    ``MAX_ISSUES_PER_FILE``, then one line counting the rest)."""
    issues: list[SpecIssue] = []
    errors = exc.errors(include_url=False)
    for err in errors[:MAX_ISSUES_PER_FILE]:
        loc = tuple(err["loc"])
        if err["type"] == "dmp_field":  # raised by field_error: the field is in the context
            ctx = err.get("ctx") or {}
            loc, msg = (*loc, ctx["field"]), str(ctx["message"])
        else:
            msg = _message(err, loc)
        issues.append(SpecIssue(file, _path(loc) or "(top level)", msg))
    if len(errors) > MAX_ISSUES_PER_FILE:
        more = len(errors) - MAX_ISSUES_PER_FILE
        issues.append(SpecIssue(file, "", f"{more} more problem(s) in this file; fix the ones above first"))
    return issues
