"""The segment spec model (design.md §4) and what is derived from it alone: hash and JSON Schema.

Kind-specific fields are checked here (a ``store_revisit`` spec with ``competitors`` is an error
naming the kind the field belongs to); references to other specs and channels need the whole folder
and are checked by :mod:`dmp.contracts.specs.loader`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, model_validator

from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS, MAX_ATTRIBUTION_DAYS
from dmp.contracts.holdout import DEFAULT_SALT
from dmp.contracts.specs._base import _Model, field_error
from dmp.contracts.specs.conditions import Condition
from dmp.contracts.vocab import EVENT_TYPES

SPEC_SUFFIXES = (".yaml", ".yml")
NAME_PATTERN = r"^[a-z0-9_]+$"
KINDS: tuple[str, ...] = ("store_revisit", "competitor_intercept", "lookalike", "rule", "uplift")
# What a lookalike may be fitted with (``dmp.transforms.lookalike_model`` builds them).
LOOKALIKE_MODELS: tuple[str, ...] = ("logistic", "gradient_boosting")
# How an uplift pack models the campaign's effect (``dmp.transforms.uplift_model`` builds them).
UPLIFT_MODELS: tuple[str, ...] = ("t_learner", "class_transformation")
# What an uplift model learns to move: a conversion (an order in the campaign spec's scope) in the
# campaign's attribution window.
UPLIFT_OUTCOMES: tuple[str, ...] = ("order",)

# Fields that only make sense for some kinds: kind -> (required, optional).
KIND_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "store_revisit": (("scope", "window_days", "behaviors"), ("exclude_purchasers",)),
    "competitor_intercept": (("competitors", "window_days"), ("own", "categories", "action")),
    "lookalike": (("seed", "expansion"), ("model", "min_seed")),
    "rule": (("where",), ()),
    "uplift": (("from_campaign", "target"), ("uplift_model", "outcome")),
}
# ``where`` is common to every kind (``rule`` just requires it).
KIND_SPECIFIC: frozenset[str] = frozenset(f for req, opt in KIND_FIELDS.values() for f in (*req, *opt)) - {
    "where"
}

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


class FromCampaign(_Model):
    """The completed campaign an uplift pack learns from: that segment's pack of ``run_date``."""

    segment: Annotated[str, Field(pattern=NAME_PATTERN)]
    run_date: date


class UpliftTarget(_Model):
    """How many users an uplift pack takes, best predicted uplift first."""

    size: Annotated[int, Field(ge=1)] | None = None
    top_share: Annotated[float, Field(gt=0, le=1)] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> UpliftTarget:
        if (self.size is None) == (self.top_share is None):
            raise ValueError(
                "give exactly one of size (number of users) or top_share (share of the users tagged on "
                "the run date, 0 < top_share <= 1)"
            )
        return self


# Literals built from the vocabularies (subscripting with a tuple gives one literal per value), so
# the JSON Schema's enums and the validator's messages list exactly the values defined there.
Behavior = Literal[EVENT_TYPES]  # type: ignore[valid-type]
Kind = Literal[KINDS]  # type: ignore[valid-type]
LookalikeModel = Literal[LOOKALIKE_MODELS]  # type: ignore[valid-type]
UpliftModel = Literal[UPLIFT_MODELS]  # type: ignore[valid-type]
UpliftOutcome = Literal[UPLIFT_OUTCOMES]  # type: ignore[valid-type]


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
    kind: Kind
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
    model: LookalikeModel = "logistic"
    min_seed: Annotated[int, Field(ge=1)] = 50
    # uplift
    from_campaign: FromCampaign | None = None
    target: UpliftTarget | None = None
    uplift_model: UpliftModel = "t_learner"
    outcome: UpliftOutcome = "order"
    # common
    where: Condition | None = None
    exclude: Exclude = Field(default_factory=Exclude)
    holdout: Annotated[float, Field(ge=0, le=0.5)] = 0.1
    holdout_salt: Annotated[str, Field(min_length=1)] = DEFAULT_SALT
    min_size: Annotated[int, Field(ge=0)] = 0
    max_size: Annotated[int, Field(ge=1)] | None = None
    channels: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(default_factory=list)
    coupon: Coupon | None = None
    # The campaign's outcome window R+1 … R+N (dmp evaluate, dmp_uplift's "window closed" rule,
    # the coupon's validity), not the look-back ``window_days`` that selects the audience.
    attribution_days: Annotated[
        int,
        Field(
            ge=1,
            le=MAX_ATTRIBUTION_DAYS,
            description=(
                "Days after the run date whose orders count as the campaign's outcome (R+1 … R+N): "
                f"the uplift evaluation's window. Default {DEFAULT_ATTRIBUTION_DAYS}. Independent of "
                "window_days (the look-back that selects the audience); a coupon's valid_days must fit in it."
            ),
        ),
    ] = DEFAULT_ATTRIBUTION_DAYS

    @model_validator(mode="after")
    def _kind_fields(self) -> SegmentSpec:
        required, optional = KIND_FIELDS[self.kind]
        for name in sorted(KIND_SPECIFIC & self.model_fields_set):
            if name not in required and name not in optional:
                owners = [k for k, (req, opt) in KIND_FIELDS.items() if name in req or name in opt]
                hint = ""
                if name == "model" and self.kind == "uplift":
                    hint = f"; an uplift pack's model is uplift_model ({' | '.join(UPLIFT_MODELS)})"
                raise field_error(
                    name, f"not used by kind {self.kind!r}; it belongs to kind {', '.join(owners)}{hint}"
                )
        for name in required:
            if getattr(self, name) is None:
                raise field_error(name, f"required for kind {self.kind!r}")
        if self.max_size is not None and self.min_size > self.max_size:
            raise field_error("min_size", f"min_size {self.min_size} is above max_size {self.max_size}")
        dupes = sorted({c for c in self.channels if self.channels.count(c) > 1})
        if dupes:
            raise field_error("channels", f"channel listed twice: {', '.join(dupes)}")
        if self.name in self.exclude.segments:
            raise field_error("exclude", f"a segment cannot exclude itself ({self.name!r})")
        if self.seed is not None and self.seed.segment == self.name:
            raise field_error("seed", f"a segment cannot be its own seed ({self.name!r})")
        if self.from_campaign is not None and self.from_campaign.segment == self.name:
            raise field_error(
                "from_campaign.segment",
                f"an uplift pack learns from another segment's completed campaign, not its own ({self.name!r})",
            )
        return self

    @model_validator(mode="after")
    def _coupon_fits_attribution(self) -> SegmentSpec:
        # A coupon redeemed after the attribution window would be an effect the evaluation never
        # sees; a shorter coupon is fine (its after-effects still count).
        if self.coupon is not None and self.coupon.valid_days > self.attribution_days:
            given = "" if "attribution_days" in self.model_fields_set else " (the default)"
            raise field_error(
                "coupon.valid_days",
                f"the coupon is valid for {self.coupon.valid_days} days (R+1 … R+{self.coupon.valid_days}) "
                f"but attribution_days is {self.attribution_days}{given}: redemptions after day "
                f"{self.attribution_days} would not count; set attribution_days >= {self.coupon.valid_days} "
                "or shorten the coupon",
            )
        return self

    def dependencies(self) -> list[str]:
        """Segments whose pack (same run date) this one needs, sorted: see :func:`spec_references`."""
        return sorted(spec_references(self))


def spec_references(spec: SegmentSpec) -> set[str]:
    """The other segments ``spec`` names: its excluded segments and its lookalike seed segment.

    Both need that segment's pack for the same run date built first, so they are the edges of the
    dependency graph (:func:`dmp.contracts.specs.graph.spec_graph`).
    """
    refs = set(spec.exclude.segments)
    if spec.seed is not None and spec.seed.segment:
        refs.add(spec.seed.segment)
    return refs


# The uplift kind's fields, left out of the hash of specs of other kinds (where they are at their
# defaults), so adding the kind changed no existing spec's hash (a changed hash means a stale pack).
_UPLIFT_ONLY: tuple[str, ...] = ("from_campaign", "target", "uplift_model", "outcome")


def spec_hash(spec: SegmentSpec) -> str:
    """Stable hash of the normalised spec (defaults filled in, keys sorted); 16 hex digits."""
    doc = spec.model_dump(mode="json", by_alias=True)
    if spec.kind != "uplift":
        for name in _UPLIFT_ONLY:
            doc.pop(name, None)
    payload = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """JSON Schema for editors (``segments/schema.json``)."""
    schema = SegmentSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
