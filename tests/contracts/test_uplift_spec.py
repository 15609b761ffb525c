"""The ``uplift`` spec kind: its fields, their exact errors, the JSON Schema and the hash."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmp.contracts.errors import SpecError
from dmp.contracts.specs import SegmentSpec, load_spec, spec_hash, spec_references

REPO = Path(__file__).resolve().parents[2]
UPLIFT: dict[str, Any] = {
    "name": "rerun",
    "kind": "uplift",
    "from_campaign": {"segment": "spring_revisit", "run_date": date(2026, 9, 16)},
    "target": {"top_share": 0.3},
    "holdout": 0.1,
}
_DELETE = object()


def _write(tmp_path: Path, doc: dict[str, Any], text: str | None = None) -> Path:
    path = tmp_path / f"{doc['name']}.yaml"
    path.write_text(text if text is not None else yaml.safe_dump(doc, sort_keys=False))
    return path


def test_valid_uplift_spec_and_its_defaults(tmp_path: Path) -> None:
    spec = load_spec(_write(tmp_path, UPLIFT))
    assert spec.kind == "uplift"
    assert (spec.from_campaign.segment, spec.from_campaign.run_date) == ("spring_revisit", date(2026, 9, 16))
    assert (spec.target.size, spec.target.top_share) == (None, 0.3)
    assert (spec.uplift_model, spec.outcome) == ("t_learner", "order")
    # the campaign is another run date's pack: not a same-day dependency of the build order
    assert spec_references(spec) == set() and spec.dependencies() == []
    sized = load_spec(
        _write(tmp_path, {**UPLIFT, "target": {"size": 5000}, "uplift_model": "class_transformation"})
    )
    assert (sized.target.size, sized.uplift_model) == (5000, "class_transformation")


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no campaign", {"from_campaign": _DELETE}, "from_campaign", "required for kind 'uplift'"),
    ("no target", {"target": _DELETE}, "target", "required for kind 'uplift'"),
    (
        "campaign without run date",
        {"from_campaign": {"segment": "spring_revisit"}},
        "from_campaign.run_date",
        "required field is missing",
    ),
    (
        "campaign run date as text",
        {"from_campaign": {"segment": "spring_revisit", "run_date": "16/09/2026"}},
        "from_campaign.run_date",
        "Input should be a valid date",
    ),
    (
        "campaign is itself",
        {"from_campaign": {"segment": "rerun", "run_date": date(2026, 9, 16)}},
        "from_campaign.segment",
        "an uplift pack learns from another segment's completed campaign, not its own ('rerun')",
    ),
    (
        "bad campaign name",
        {"from_campaign": {"segment": "Spring", "run_date": date(2026, 9, 16)}},
        "from_campaign.segment",
        "must match ^[a-z0-9_]+$ (lower-case letters, digits, _), got 'Spring'",
    ),
    (
        "both size and share",
        {"target": {"size": 10, "top_share": 0.3}},
        "target",
        "give exactly one of size (number of users) or top_share (share of the users tagged on the run date, "
        "0 < top_share <= 1)",
    ),
    ("share above one", {"target": {"top_share": 1.5}}, "target.top_share", "must be <= 1, got 1.5"),
    ("share zero", {"target": {"top_share": 0}}, "target.top_share", "must be > 0, got 0"),
    ("size zero", {"target": {"size": 0}}, "target.size", "must be >= 1, got 0"),
    (
        "unknown model",
        {"uplift_model": "x_learner"},
        "uplift_model",
        "got 'x_learner'; allowed: 't_learner' or 'class_transformation'",
    ),
    ("unknown outcome", {"outcome": "gmv"}, "outcome", "got 'gmv'; allowed: 'order'"),
    (
        "the lookalike's model field",
        {"model": "logistic"},
        "model",
        "not used by kind 'uplift'; it belongs to kind lookalike; an uplift pack's model is uplift_model "
        "(t_learner | class_transformation)",
    ),
    (
        "a lookalike field",
        {"expansion": {"size": 10}},
        "expansion",
        "not used by kind 'uplift'; it belongs to kind lookalike",
    ),
]


@pytest.mark.parametrize(
    ("changes", "field_path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_uplift_spec_errors_name_file_field_and_what_is_expected(
    tmp_path: Path, changes: dict[str, Any], field_path: str, message: str
) -> None:
    doc = copy.deepcopy(UPLIFT)
    for key, value in changes.items():
        if value is _DELETE:
            del doc[key]
        else:
            doc[key] = value
    path = _write(tmp_path, doc)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: {field_path}: {message}"


def test_uplift_fields_belong_to_the_uplift_kind(tmp_path: Path) -> None:
    doc = {
        "name": "r",
        "kind": "rule",
        "where": {"tag": "is_cart_abandoner", "eq": True},
        "uplift_model": "t_learner",
    }
    path = _write(tmp_path, doc)
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: uplift_model: not used by kind 'rule'; it belongs to kind uplift"


def test_schema_json_has_the_kind_and_its_fields() -> None:
    schema = json.loads((REPO / "segments" / "schema.json").read_text())
    props = schema["properties"]
    assert "uplift" in props["kind"]["enum"]
    assert props["uplift_model"]["enum"] == ["t_learner", "class_transformation"]
    assert props["uplift_model"]["default"] == "t_learner"
    assert props["outcome"]["const"] == "order"
    target = schema["$defs"]["UpliftTarget"]["properties"]
    assert target["top_share"]["anyOf"][0] == {"exclusiveMinimum": 0, "maximum": 1, "type": "number"}
    campaign = schema["$defs"]["FromCampaign"]
    assert campaign["required"] == ["segment", "run_date"]
    assert campaign["properties"]["run_date"] == {"format": "date", "title": "Run Date", "type": "string"}


# Hashes computed by the code before the uplift kind existed (commit 9b8471f): a changed hash would
# mark every existing pack stale.
HASHES_BEFORE_UPLIFT = [
    ({"name": "r", "kind": "rule", "where": {"tag": "is_cart_abandoner", "eq": True}}, "e667d111be009efd"),
    (
        {"name": "la", "kind": "lookalike", "seed": {"segment": "s"}, "expansion": {"size": 100}},
        "33721669371b44e9",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), HASHES_BEFORE_UPLIFT, ids=["rule", "lookalike"])
def test_adding_the_kind_left_other_specs_hashes_alone(doc: dict[str, Any], expected: str) -> None:
    assert spec_hash(SegmentSpec.model_validate(doc)) == expected


def test_an_uplift_specs_own_fields_count_in_its_hash() -> None:
    a = SegmentSpec.model_validate({**UPLIFT, "target": {"top_share": 0.3}})
    b = SegmentSpec.model_validate({**UPLIFT, "target": {"top_share": 0.4}})
    c = SegmentSpec.model_validate({**UPLIFT, "uplift_model": "class_transformation"})
    assert len({spec_hash(a), spec_hash(b), spec_hash(c)}) == 3
