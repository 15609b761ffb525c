"""``where:`` trees: tag filters combined with all / any / not, validated against the tag kinds.

Semantics (two-valued on purpose): a leaf is true only when the tag has a value and the value
satisfies the operator; a user with no tag row for the run date has every tag null, so every leaf
except ``is_null: true`` is false for them and ``not: {...}`` of such a leaf is true.
``ne``/``not_in`` therefore select users that HAVE a different value, ``not: {eq: ...}`` also
selects users with no value. ``dmp.transforms.where`` turns a tree into a Spark column with exactly
these semantics.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from dmp.contracts.specs._base import _Model, field_error, show
from dmp.contracts.vocab import TAG_COLUMN_KINDS

# Operators allowed per tag kind (dmp.contracts.vocab.TAG_COLUMN_KINDS). Array tags: ``contains`` one value,
# ``in`` = contains at least one of the values, ``not_in`` = contains none of them.
OPS: tuple[str, ...] = (
    "in",
    "not_in",
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "between",
    "contains",
    "is_null",
)
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "number": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "in", "not_in", "is_null"),
    "string": ("eq", "ne", "in", "not_in", "is_null"),
    "array": ("contains", "in", "not_in", "is_null"),
    "boolean": ("eq", "ne", "is_null"),
    "date": ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_null"),
}
_KIND_WORDS: dict[str, str] = {
    "number": "a number",
    "string": "a string",
    "array": "a string",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD)",
}


def tag_value(kind: str, value: Any) -> Any:
    """A filter value as the tag column holds it: ISO strings of a date tag become dates.

    YAML reads an unquoted 2026-03-01 as a date and a quoted one as a string; both mean the same
    day, and comparisons (the ``between`` check here, Spark and DuckDB literals) need the date.
    """
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


class TagFilter(_Model):
    """A leaf of ``where``: ``{tag: NAME, OP: VALUE}`` with exactly one operator."""

    tag: str
    in_: Any = Field(None, alias="in")
    not_in: Any = None
    eq: Any = None
    ne: Any = None
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None
    between: Any = None
    contains: Any = None
    is_null: Any = None

    @field_validator("tag")
    @classmethod
    def _known_tag(cls, value: str) -> str:
        if value not in TAG_COLUMN_KINDS:
            raise ValueError(f"unknown tag {show(value)}; allowed: {', '.join(sorted(TAG_COLUMN_KINDS))}")
        return value

    @property
    def op(self) -> str:
        return next(o for o in OPS if _op_attr(o) in self.model_fields_set)

    @property
    def value(self) -> Any:
        return getattr(self, _op_attr(self.op))

    @model_validator(mode="after")
    def _check_op(self) -> TagFilter:
        kind = TAG_COLUMN_KINDS[self.tag]
        allowed = OPS_BY_KIND[kind]
        given = [o for o in OPS if _op_attr(o) in self.model_fields_set]
        if not given:
            raise ValueError(
                f"no operator for tag {self.tag!r}; allowed for a {kind} tag: {', '.join(allowed)}"
            )
        if len(given) > 1:
            raise ValueError(f"give exactly one operator, got: {', '.join(given)}")
        op = given[0]
        if op not in allowed:
            raise field_error(
                op,
                f"operator {op!r} is not allowed for tag {self.tag!r} ({kind}); allowed: {', '.join(allowed)}",
            )
        value = getattr(self, _op_attr(op))
        problem = _check_value(kind, op, value, self.tag)
        if problem:
            raise field_error(op, problem)
        return self


def _op_attr(op: str) -> str:
    return "in_" if op == "in" else op


def _is_scalar(kind: str, value: Any) -> bool:
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind in ("string", "array"):
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "date":
        if isinstance(value, date):
            return True
        if isinstance(value, str):
            try:
                date.fromisoformat(value)
            except ValueError:
                return False
            return True
    return False


def _check_value(kind: str, op: str, value: Any, tag: str) -> str | None:
    """None when ``value`` fits ``op`` on a ``kind`` tag, else the message saying what is expected."""
    word = _KIND_WORDS[kind]
    if op == "is_null":
        return None if isinstance(value, bool) else f"expected true or false, got {show(value)}"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_is_scalar(kind, v) for v in value):
            return f"expected a non-empty list of values ({word} each) for tag {tag!r}, got {show(value)}"
        return None
    if op == "between":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_scalar(kind, v) for v in value)
            or tag_value(kind, value[0]) > tag_value(kind, value[1])
        ):
            return f"expected [low, high] ({word} each, low <= high) for tag {tag!r}, got {show(value)}"
        return None
    if not _is_scalar(kind, value):
        return f"expected {word} for tag {tag!r}, got {show(value)}"
    return None


class AllOf(_Model):
    all: Annotated[list[Condition], Field(min_length=1)]


class AnyOf(_Model):
    any: Annotated[list[Condition], Field(min_length=1)]


class NotOf(_Model):
    not_: Condition = Field(alias="not")


# The union's tags (they show up in pydantic error locations, see dmp.contracts.specs.issues), the
# key that picks each branch in YAML, and the model validating it.
UNION_TAGS: dict[str, tuple[str, type[_Model]]] = {
    "<leaf>": ("tag", TagFilter),
    "<all>": ("all", AllOf),
    "<any>": ("any", AnyOf),
    "<not>": ("not", NotOf),
}


def _condition_kind(value: Any) -> str | None:
    for tag, (key, model) in UNION_TAGS.items():
        if (isinstance(value, dict) and key in value) or isinstance(value, model):
            return tag
    return None


Condition = Annotated[
    Annotated[TagFilter, Tag("<leaf>")]
    | Annotated[AllOf, Tag("<all>")]
    | Annotated[AnyOf, Tag("<any>")]
    | Annotated[NotOf, Tag("<not>")],
    Discriminator(
        _condition_kind,
        custom_error_type="condition_shape",
        custom_error_message=(
            "expected a condition: {tag: TAG, OP: VALUE}, {all: [...]}, {any: [...]} or {not: {...}}"
        ),
    ),
]

for _m in (AllOf, AnyOf, NotOf):
    _m.model_rebuild()


def condition_tags(cond: TagFilter | AllOf | AnyOf | NotOf) -> set[str]:
    """Every tag a condition reads (to select only those columns before joining the tags)."""
    if isinstance(cond, AllOf):
        return set().union(*[condition_tags(c) for c in cond.all])
    if isinstance(cond, AnyOf):
        return set().union(*[condition_tags(c) for c in cond.any])
    if isinstance(cond, NotOf):
        return condition_tags(cond.not_)
    return {cond.tag}
