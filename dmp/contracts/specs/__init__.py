"""Segment specs (design.md §4): pydantic models, YAML loading and whole-folder validation.

- :mod:`.models`: the spec model (``SegmentSpec`` and its parts), ``spec_hash``, the JSON Schema;
- :mod:`.conditions`: ``where:`` trees (tag filters, all / any / not) and their semantics;
- :mod:`.issues`: ``SpecIssue``, errors as ``FILE: FIELD.PATH: what is allowed``;
- :mod:`.loader`: YAML files, one spec (``load_spec``) or a folder (``load_specs``);
- :mod:`.graph`: references between specs and the build order.

Import the public names from here; the modules are the layout, not the interface.
"""

from __future__ import annotations

from dmp.contracts.specs.conditions import (
    OPS,
    OPS_BY_KIND,
    AllOf,
    AnyOf,
    Condition,
    NotOf,
    TagFilter,
    condition_tags,
    tag_value,
)
from dmp.contracts.specs.graph import dependency_order, invalid_dependencies, spec_graph
from dmp.contracts.specs.issues import SpecIssue, issues_from_validation_error
from dmp.contracts.specs.loader import SpecSet, load_spec, load_specs, spec_files
from dmp.contracts.specs.models import (
    KIND_FIELDS,
    KINDS,
    LOOKALIKE_MODELS,
    NAME_PATTERN,
    SPEC_SUFFIXES,
    UPLIFT_MODELS,
    Coupon,
    Exclude,
    Expansion,
    FromCampaign,
    Scope,
    Seed,
    SegmentSpec,
    Targets,
    UpliftTarget,
    json_schema,
    json_schema_text,
    spec_hash,
    spec_references,
)

__all__ = [
    "KINDS",
    "KIND_FIELDS",
    "LOOKALIKE_MODELS",
    "NAME_PATTERN",
    "OPS",
    "OPS_BY_KIND",
    "SPEC_SUFFIXES",
    "UPLIFT_MODELS",
    "AllOf",
    "AnyOf",
    "Condition",
    "Coupon",
    "Exclude",
    "Expansion",
    "FromCampaign",
    "NotOf",
    "Scope",
    "Seed",
    "SegmentSpec",
    "SpecIssue",
    "SpecSet",
    "TagFilter",
    "Targets",
    "UpliftTarget",
    "condition_tags",
    "dependency_order",
    "invalid_dependencies",
    "issues_from_validation_error",
    "json_schema",
    "json_schema_text",
    "load_spec",
    "load_specs",
    "spec_files",
    "spec_graph",
    "spec_hash",
    "spec_references",
    "tag_value",
]
