"""Segment specs (design.md §4): pydantic models, YAML loading and whole-folder validation.

A spec file is ``segments/<name>.yaml``; its ``name`` must equal the file name (so a marketer who
renames a segment renames its file, and two files can never define the same segment).
``load_specs`` validates every spec of a folder (plus ``channels.yaml``) and never stops at the
first bad file: valid specs go to ``SpecSet.specs``, problems to ``SpecSet.errors``, each one line
``FILE: FIELD.PATH: what is wrong and what is allowed``.

``where:`` semantics (two-valued on purpose): a leaf is true only when the tag has a value and the
value satisfies the operator; a user with no tag row for the run date has every tag null, so every
leaf except ``is_null: true`` is false for them and ``not: {...}`` of such a leaf is true.
``ne``/``not_in`` therefore select users that HAVE a different value, ``not: {eq: ...}`` also
selects users with no value.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dmp.contracts.channels import CHANNELS_FILE
from dmp.contracts.errors import SpecError
from dmp.contracts.holdout import DEFAULT_SALT
from dmp.contracts.vocab import EVENT_TYPES, TAG_COLUMN_KINDS

SPEC_SUFFIXES = (".yaml", ".yml")
NAME_PATTERN = r"^[a-z0-9_]+$"
KINDS: tuple[str, ...] = ("store_revisit", "competitor_intercept", "lookalike", "rule")

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

# Fields that only make sense for some kinds: kind -> (required, optional).
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "store_revisit": (("scope", "window_days", "behaviors"), ("exclude_purchasers",)),
    "competitor_intercept": (("competitors", "window_days"), ("own", "categories", "action")),
    "lookalike": (("seed", "expansion"), ("model", "min_seed")),
    "rule": (("where",), ()),
}
# ``where`` is common to every kind (``rule`` just requires it).
KIND_SPECIFIC: frozenset[str] = frozenset(f for req, opt in KIND_FIELDS.values() for f in (*req, *opt)) - {
    "where"
}

# Tags of the ``where`` union; they show up in pydantic error locations and are dropped from paths.
_UNION_TAGS = {"<leaf>", "<all>", "<any>", "<not>"}


def _field_error(field_name: str, message: str) -> PydanticCustomError:
    """An error located at ``field_name`` inside the model being validated (see ``_path``)."""
    return PydanticCustomError("dmp_field", "{message}", {"message": message, "field": field_name})


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value.isoformat() if isinstance(value, date) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Model(BaseModel):
    # strict: YAML already gives typed values; "14" for window_days or 1 for a boolean is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


IdList = Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class Scope(_Model):
    """Where the behaviour must happen; several lists are ANDed (e.g. store S001 and category C01)."""

    store_ids: IdList | None = None
    brand_ids: IdList | None = None
    category_ids: IdList | None = None

    @model_validator(mode="after")
    def _one_list(self) -> Scope:
        if not (self.store_ids or self.brand_ids or self.category_ids):
            raise ValueError("give at least one of store_ids, brand_ids, category_ids")
        return self


class Targets(_Model):
    """Brands or stores (a row matches when its brand OR its store is listed)."""

    brand_ids: IdList | None = None
    store_ids: IdList | None = None

    @model_validator(mode="after")
    def _one_list(self) -> Targets:
        if not (self.brand_ids or self.store_ids):
            raise ValueError("give at least one of brand_ids, store_ids")
        return self


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
            raise ValueError(f"unknown tag {value!r}; allowed: {', '.join(sorted(TAG_COLUMN_KINDS))}")
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
            raise _field_error(
                op,
                f"operator {op!r} is not allowed for tag {self.tag!r} ({kind}); allowed: {', '.join(allowed)}",
            )
        value = getattr(self, _op_attr(op))
        problem = _check_value(kind, op, value, self.tag)
        if problem:
            raise _field_error(op, problem)
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
        return None if isinstance(value, bool) else f"expected true or false, got {_show(value)}"
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not value or not all(_is_scalar(kind, v) for v in value):
            return f"expected a non-empty list of values ({word} each) for tag {tag!r}, got {_show(value)}"
        return None
    if op == "between":
        if (
            not isinstance(value, list)
            or len(value) != 2
            or not all(_is_scalar(kind, v) for v in value)
            or _as_comparable(kind, value[0]) > _as_comparable(kind, value[1])
        ):
            return f"expected [low, high] ({word} each, low <= high) for tag {tag!r}, got {_show(value)}"
        return None
    if not _is_scalar(kind, value):
        return f"expected {word} for tag {tag!r}, got {_show(value)}"
    return None


def _as_comparable(kind: str, value: Any) -> Any:
    if kind == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    return value


class AllOf(_Model):
    all: Annotated[list[Condition], Field(min_length=1)]


class AnyOf(_Model):
    any: Annotated[list[Condition], Field(min_length=1)]


class NotOf(_Model):
    not_: Condition = Field(alias="not")


def _condition_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        for key, tag in (("tag", "<leaf>"), ("all", "<all>"), ("any", "<any>"), ("not", "<not>")):
            if key in value:
                return tag
        return None
    if isinstance(value, TagFilter):
        return "<leaf>"
    if isinstance(value, AllOf):
        return "<all>"
    if isinstance(value, AnyOf):
        return "<any>"
    if isinstance(value, NotOf):
        return "<not>"
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


class Exclude(_Model):
    segments: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list)
    suppression_lists: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)


class Coupon(_Model):
    coupon_id: Annotated[str, Field(min_length=1)]
    value: Annotated[float, Field(gt=0)]
    threshold: Annotated[float, Field(ge=0)] = 0.0
    valid_days: Annotated[int, Field(ge=1, le=365)]


class Seed(_Model):
    """The seed audience: another segment's pack for the same run date, or an inline tag rule."""

    segment: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    where: Condition | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Seed:
        if (self.segment is None) == (self.where is None):
            raise ValueError("give exactly one of segment (a segment name) or where (a tag rule)")
        return self


class Expansion(_Model):
    size: Annotated[int, Field(ge=1)] | None = None
    ratio: Annotated[float, Field(gt=0, le=1000)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Expansion:
        if (self.size is None) == (self.ratio is None):
            raise ValueError(
                "give exactly one of size (number of users) or ratio (multiple of the seed size)"
            )
        return self


Behavior = Literal[
    "view",
    "click",
    "search",
    "cart_add",
    "cart_remove",
    "favorite",
    "order",
    "coupon_receive",
    "coupon_redeem",
]
assert set(typing.get_args(Behavior)) == set(EVENT_TYPES)


class SegmentSpec(_Model):
    """One audience: who (kind + its fields), filters, exclusions, holdout, sizes, where it goes."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        title="dmp segment spec",
        json_schema_extra={"$comment": "Generated by `dmp segments schema`; see design.md §4."},
    )

    name: Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
    description: str = ""
    kind: Literal["store_revisit", "competitor_intercept", "lookalike", "rule"]
    # store_revisit
    scope: Scope | None = None
    window_days: Annotated[int, Field(ge=1, le=365)] | None = None
    behaviors: Annotated[list[Behavior], Field(min_length=1)] | None = None
    exclude_purchasers: bool = True
    # competitor_intercept
    competitors: Targets | None = None
    own: Targets | None = None
    categories: IdList | None = None
    action: Literal["order", "view"] = "order"
    # lookalike
    seed: Seed | None = None
    expansion: Expansion | None = None
    model: Literal["logistic", "gradient_boosting"] = "logistic"
    min_seed: Annotated[int, Field(ge=1)] = 50
    # common
    where: Condition | None = None
    exclude: Exclude = Field(default_factory=Exclude)
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    holdout_salt: Annotated[str, Field(min_length=1)] = DEFAULT_SALT
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=1)] | None = None
    channels: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list)
    coupon: Coupon | None = None

    @model_validator(mode="after")
    def _kind_fields(self) -> SegmentSpec:
        required, optional = KIND_FIELDS[self.kind]
        for name in sorted(KIND_SPECIFIC & self.model_fields_set):
            if name not in required and name not in optional:
                owners = [k for k, (req, opt) in KIND_FIELDS.items() if name in req or name in opt]
                raise _field_error(
                    name, f"not used by kind {self.kind!r}; it belongs to kind {', '.join(owners)}"
                )
        for name in required:
            if getattr(self, name) is None:
                raise _field_error(name, f"required for kind {self.kind!r}")
        if self.max_size is not None and self.min_size > self.max_size:
            raise _field_error("min_size", f"min_size {self.min_size} is above max_size {self.max_size}")
        dupes = sorted({c for c in self.channels if self.channels.count(c) > 1})
        if dupes:
            raise _field_error("channels", f"channel listed twice: {', '.join(dupes)}")
        if self.name in self.exclude.segments:
            raise _field_error("exclude", f"a segment cannot exclude itself ({self.name!r})")
        if self.seed is not None and self.seed.segment == self.name:
            raise _field_error("seed", f"a segment cannot be its own seed ({self.name!r})")
        return self

    def dependencies(self) -> list[str]:
        """Segments whose pack (same run date) this one needs: exclusions and the lookalike seed."""
        deps = list(self.exclude.segments)
        if self.seed is not None and self.seed.segment:
            deps.append(self.seed.segment)
        return sorted(set(deps))


def spec_hash(spec: SegmentSpec) -> str:
    """Stable hash of the normalised spec (defaults filled in, keys sorted); 16 hex digits."""
    payload = json.dumps(spec.model_dump(mode="json", by_alias=True), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """JSON Schema for editors (``segments/schema.json``)."""
    schema = SegmentSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------------------
# Errors: one line per problem, "FILE: FIELD.PATH: message".


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


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part in _UNION_TAGS:
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``loc`` (to list its allowed fields)."""
    tag_models: dict[str, type[BaseModel]] = {
        "<leaf>": TagFilter,
        "<all>": AllOf,
        "<any>": AnyOf,
        "<not>": NotOf,
    }
    current: type[BaseModel] | None = SegmentSpec
    for part in loc:
        if isinstance(part, int):
            continue
        if part in tag_models:
            current = tag_models[part]
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


def issues_from_validation_error(file: str, exc: ValidationError) -> list[SpecIssue]:
    """Turn pydantic's errors into ``SpecIssue`` lines a marketer can act on."""
    issues: list[SpecIssue] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        etype = err["type"]
        ctx = err.get("ctx") or {}
        value = err.get("input")
        if etype == "dmp_field":
            loc = (*loc, ctx["field"])
            msg = ctx["message"]
        elif etype == "extra_forbidden":
            model = _model_at(loc[:-1])
            msg = "unknown field" + (f"; allowed: {_allowed_fields(model)}" if model else "")
        elif etype == "missing":
            msg = "required field is missing"
        elif etype == "literal_error":
            msg = f"got {_show(value)}; allowed: {ctx.get('expected')}"
        elif etype == "string_pattern_mismatch":
            msg = f"must match {ctx.get('pattern')} (lower-case letters, digits, _), got {_show(value)}"
        elif etype == "string_type":
            msg = f"expected a string, got {_show(value)}"
        elif etype in ("int_type", "int_parsing", "int_from_float"):
            msg = f"expected an integer, got {_show(value)}"
        elif etype in ("float_type", "float_parsing"):
            msg = f"expected a number, got {_show(value)}"
        elif etype in ("bool_type", "bool_parsing"):
            msg = f"expected true or false, got {_show(value)}"
        elif etype == "list_type":
            msg = f"expected a list, got {_show(value)}"
        elif etype in ("model_type", "dict_type", "model_attributes_type"):
            msg = f"expected a mapping, got {_show(value)}"
        elif etype == "greater_than_equal":
            msg = f"must be >= {_bound(ctx.get('ge'))}, got {_show(value)}"
        elif etype == "greater_than":
            msg = f"must be > {_bound(ctx.get('gt'))}, got {_show(value)}"
        elif etype == "less_than_equal":
            msg = f"must be <= {_bound(ctx.get('le'))}, got {_show(value)}"
        elif etype == "less_than":
            msg = f"must be < {_bound(ctx.get('lt'))}, got {_show(value)}"
        elif etype == "too_short":
            msg = f"must have at least {ctx.get('min_length')} item(s)"
        elif etype == "string_too_short":
            msg = "must not be empty"
        elif etype == "string_too_long":
            msg = f"must be at most {ctx.get('max_length')} characters"
        elif etype == "value_error":
            msg = str(ctx.get("error") or err["msg"].removeprefix("Value error, "))
        else:
            msg = err["msg"]
        issues.append(SpecIssue(file, _path(loc) or "(top level)", msg))
    return issues


# ---------------------------------------------------------------------------------------------
# Loading


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, but a key given twice in one mapping is an error (YAML silently keeps the last)."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_issue(file: str, exc: yaml.YAMLError) -> SpecIssue:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return SpecIssue(file, "", f"invalid YAML{where}: {problem}")


def _parse_file(path: Path) -> tuple[SegmentSpec | None, list[SpecIssue], str | None]:
    """(spec or None, issues, the raw ``name`` if one could be read) for one file."""
    file = str(path)
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
    except OSError as exc:
        return None, [SpecIssue(file, "", f"cannot read file: {exc.strerror or exc}")], None
    except yaml.YAMLError as exc:
        return None, [_yaml_issue(file, exc)], None
    if not isinstance(raw, dict):
        got = "an empty file" if raw is None else type(raw).__name__
        return (
            None,
            [
                SpecIssue(
                    file, "(top level)", f"expected a mapping of spec fields (name, kind, ...), got {got}"
                )
            ],
            None,
        )
    raw_name = raw.get("name") if isinstance(raw.get("name"), str) else None
    issues: list[SpecIssue] = []
    spec: SegmentSpec | None = None
    try:
        spec = SegmentSpec.model_validate(raw)
    except ValidationError as exc:
        issues.extend(issues_from_validation_error(file, exc))
    if raw_name is not None and path.stem != raw_name and re.fullmatch(NAME_PATTERN, raw_name):
        issues.append(
            SpecIssue(
                file, "name", f"{raw_name!r} does not match the file name; name the file {raw_name}.yaml"
            )
        )
        spec = None
    return (spec if not issues else None), issues, raw_name


def load_spec(path: str | Path) -> SegmentSpec:
    """One spec file, checked on its own (no channels or cross-spec checks); raises SpecError."""
    spec, issues, _ = _parse_file(Path(path))
    if issues or spec is None:
        raise SpecError("\n".join(str(i) for i in issues))
    return spec


@dataclass
class SpecSet:
    specs: dict[str, SegmentSpec] = field(default_factory=dict)
    errors: list[SpecIssue] = field(default_factory=list)
    path_of: dict[str, Path] = field(default_factory=dict)
    # Names of the specs the caller asked about (all of the folder when no paths were given).
    selected: list[str] = field(default_factory=list)
    # Files whose spec is invalid (selected or not), by file path.
    invalid_files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def spec_files(segments_dir: str | Path) -> list[Path]:
    folder = Path(segments_dir)
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix in SPEC_SUFFIXES and p.name != CHANNELS_FILE
    )


def _channel_types(segments_dir: Path) -> tuple[dict[str, str] | None, SpecIssue | None]:
    """Channel name -> type from ``channels.yaml`` via ``dmp.contracts.channels`` (None when unreadable)."""
    path = segments_dir / CHANNELS_FILE
    try:
        from dmp.contracts.channels import load_channels
    except ImportError:  # pragma: no cover - dmp.contracts.channels is part of the package
        return None, SpecIssue(str(path), "", "dmp.contracts.channels is not available to check channels")
    try:
        config = load_channels(segments_dir)
    except SpecError as exc:
        text = str(exc)
        prefix = f"{path}: "
        return None, SpecIssue(str(path), "", text.removeprefix(prefix))
    return {name: ch.type for name, ch in config.channels.items()}, None


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Every elementary cycle reachable in ``graph`` (found by DFS; each reported once)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in seen:
                    seen.add(key)
                    found.append([*cycle, nxt])
            elif nxt in graph and state.get(nxt) is None:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node)
    return found


def load_specs(segments_dir: str | Path, paths: list[Path] | None = None) -> SpecSet:
    """Validate the folder's specs (and ``paths``, which may live elsewhere) and ``channels.yaml``.

    References (``exclude.segments``, ``seed.segment``) resolve against every spec of the folder plus
    ``paths``; errors are reported for the selected files (``paths``, else the whole folder) and for
    ``channels.yaml`` when a selected spec uses channels.
    """
    folder = Path(segments_dir)
    files = spec_files(folder)
    selected_files = [Path(p) for p in paths] if paths else list(files)
    all_files = list(dict.fromkeys([*(p.resolve() for p in files), *(p.resolve() for p in selected_files)]))
    selected_set = {p.resolve() for p in selected_files}

    out = SpecSet()
    parsed: dict[Path, SegmentSpec] = {}
    issues_by_file: dict[Path, list[SpecIssue]] = {}
    display = {p.resolve(): p for p in [*files, *selected_files]}
    for resolved in all_files:
        spec, issues, _ = _parse_file(display[resolved])
        issues_by_file[resolved] = list(issues)
        if spec is not None:
            parsed[resolved] = spec

    # Every file claims the segment named like the file (a mismatched ``name`` is an error above), so
    # references to a spec that does not even parse still say "invalid", not "unknown".
    first_file: dict[str, Path] = {}
    for resolved in all_files:
        stem = display[resolved].stem
        if stem in first_file:
            issues_by_file[resolved].append(
                SpecIssue(
                    str(display[resolved]),
                    "name",
                    f"duplicate segment name {stem!r} (also in {display[first_file[stem]]})",
                )
            )
            parsed.pop(resolved, None)
        else:
            first_file[stem] = resolved

    known_names = set(first_file)
    valid_names = {spec.name: resolved for resolved, spec in parsed.items()}

    # References to other segments.
    for resolved, spec in list(parsed.items()):
        file = str(display[resolved])
        refs: list[tuple[str, str]] = [
            (f"exclude.segments[{i}]", s) for i, s in enumerate(spec.exclude.segments)
        ]
        if spec.seed is not None and spec.seed.segment:
            refs.append(("seed.segment", spec.seed.segment))
        for fpath, ref in refs:
            if ref not in known_names:
                issues_by_file[resolved].append(
                    SpecIssue(
                        file,
                        fpath,
                        f"unknown segment {ref!r}; known: {', '.join(sorted(known_names)) or '(none)'}",
                    )
                )
            elif ref not in valid_names:
                issues_by_file[resolved].append(
                    SpecIssue(file, fpath, f"segment {ref!r} is invalid (see {display[first_file[ref]]})")
                )

    # Cycles between segments (exclusions and seeds both need the other pack built first).
    graph = {s.name: [d for d in s.dependencies() if d in valid_names] for s in parsed.values()}
    for cycle in _cycles(graph):
        for name in cycle[:-1]:
            resolved = valid_names[name]
            spec = parsed[resolved]
            nxt = cycle[cycle.index(name) + 1]
            fpath = (
                "seed.segment" if spec.seed is not None and spec.seed.segment == nxt else "exclude.segments"
            )
            issues_by_file[resolved].append(
                SpecIssue(str(display[resolved]), fpath, f"cycle between segments: {' -> '.join(cycle)}")
            )

    # Channels.
    # channels.yaml is checked whenever it exists or a selected spec needs it; a broken channels file
    # is reported (non-zero exit) but does not invalidate the specs: packs do not need channels.
    uses_channels = any(parsed[r].channels for r in parsed if r in selected_set)
    if uses_channels or (folder / CHANNELS_FILE).is_file():
        types, channel_issue = _channel_types(folder)
        if channel_issue is not None:
            out.errors.append(channel_issue)
        for resolved, spec in parsed.items():
            file = str(display[resolved])
            for i, name in enumerate(spec.channels):
                if types is None:
                    continue
                if name not in types:
                    issues_by_file[resolved].append(
                        SpecIssue(
                            file,
                            f"channels[{i}]",
                            f"unknown channel {name!r}; defined in {folder / CHANNELS_FILE}: "
                            f"{', '.join(sorted(types)) or '(none)'}",
                        )
                    )
                elif types[name] == "coupon" and spec.coupon is None:
                    issues_by_file[resolved].append(
                        SpecIssue(
                            file,
                            "coupon",
                            f"required because channel {name!r} is a coupon channel; "
                            "give {coupon_id, value, threshold, valid_days}",
                        )
                    )

    # A spec whose dependency is broken cannot be built either (transitively).
    bad = {spec.name for r, spec in parsed.items() if issues_by_file[r]}
    changed = True
    while changed:
        changed = False
        for resolved, spec in parsed.items():
            if spec.name in bad:
                continue
            broken = [d for d in spec.dependencies() if d in bad]
            if broken:
                bad.add(spec.name)
                changed = True
                issues_by_file[resolved].append(
                    SpecIssue(
                        str(display[resolved]),
                        "exclude.segments" if broken[0] in spec.exclude.segments else "seed.segment",
                        f"depends on segment {broken[0]!r}, which is invalid",
                    )
                )

    for resolved in all_files:
        issues = issues_by_file[resolved]
        if issues:
            out.invalid_files.append(str(display[resolved]))
        if resolved in selected_set:
            out.errors.extend(issues)
        spec = parsed.get(resolved)
        if spec is not None and not issues:
            out.specs[spec.name] = spec
            out.path_of[spec.name] = display[resolved]
            if resolved in selected_set:
                out.selected.append(spec.name)
    return out


def dependency_order(specs: dict[str, SegmentSpec], names: list[str]) -> list[str]:
    """``names`` plus everything they depend on, dependencies first (ties by name)."""
    needed: set[str] = set()

    def add(name: str) -> None:
        if name in needed or name not in specs:
            return
        needed.add(name)
        for dep in specs[name].dependencies():
            add(dep)

    for name in names:
        add(name)
    order: list[str] = []
    done: set[str] = set()
    while len(done) < len(needed):
        ready = sorted(
            n for n in needed - done if all(d in done or d not in needed for d in specs[n].dependencies())
        )
        if not ready:  # a cycle; load_specs reports it, never build those
            break
        order.extend(ready)
        done.update(ready)
    return order
