"""The spec of a kept sub-audience (dmp.contracts.specs.suggest): what it keeps, what it leaves as
it was, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dmp.contracts.errors import DmpError, SpecError
from dmp.contracts.specs import AnyOf, TagFilter, load_spec
from dmp.contracts.specs.suggest import (
    original_spec,
    suggest_spec,
    suggestion_yaml,
    write_suggestion,
)

SPEC = """\
name: spring_revisit
description: visited S001, did not buy
kind: store_revisit
scope: {store_ids: [S001]}
window_days: 14
behaviors: [view, cart_add]
holdout: 0.2
"""
RULE_SPEC = """\
name: big_spenders
kind: rule
where: {tag: consumption_level, gte: 4}
holdout: 0.1
"""
SOURCE = "lake/reports/spring_revisit/2026-03-15/report.json"


def _row(tag: str, subgroup: str, decision: str, where: dict | None) -> dict:
    return {"tag": tag, "subgroup": subgroup, "decision": decision, "where": where, "n": 100}


def block(**changes: object) -> dict:
    """A subgroup table as report.json holds it: active kept, silent dropped, C01 kept but unwritable."""
    out = {
        "n_users": 1000,
        "rows": [
            _row("lifecycle_stage", "new", "unclear", {"tag": "lifecycle_stage", "eq": "new"}),
            _row("lifecycle_stage", "active", "keep", {"tag": "lifecycle_stage", "eq": "active"}),
            _row("lifecycle_stage", "silent", "drop", {"tag": "lifecycle_stage", "eq": "silent"}),
            _row("coupon_sensitivity", "never (0)", "keep", {"tag": "coupon_sensitivity", "eq": 0}),
            _row(
                "coupon_sensitivity",
                "some (0-0.5)",
                "keep",
                {"all": [{"tag": "coupon_sensitivity", "gt": 0}, {"tag": "coupon_sensitivity", "lt": 0.5}]},
            ),
            _row("top_category", "C01", "keep", None),
        ],
        "tags": [
            {"tag": "lifecycle_stage", "keep": ["active"], "keep_n": 300},
            {"tag": "coupon_sensitivity", "keep": ["never (0)", "some (0-0.5)"], "keep_n": 640},
            {"tag": "top_category", "keep": ["C01"], "keep_n": 200},
            {"tag": "is_cart_abandoner", "keep": [], "keep_n": 0},
        ],
        "suggested_tag": "lifecycle_stage",
        "suggest_note": "lifecycle_stage: its subgroups differ",
        "spec_hashes": [],
    }
    out.update(changes)
    return out


@pytest.fixture()
def segments(tmp_path: Path) -> Path:
    folder = tmp_path / "segments"
    folder.mkdir()
    (folder / "spring_revisit.yaml").write_text(SPEC)
    (folder / "big_spenders.yaml").write_text(RULE_SPEC)
    return folder


def test_suggestion_adds_the_kept_condition_and_keeps_the_rest(segments: Path) -> None:
    raw = original_spec(segments, "spring_revisit")
    s = suggest_spec(raw, block(), source=SOURCE, run_date="2026-03-15")
    assert (s.name, s.tag, s.kept, s.keep_n, s.n_users) == (
        "spring_revisit_suggested",
        "lifecycle_stage",
        ["active"],
        300,
        1000,
    )
    assert s.spec["where"] == {"tag": "lifecycle_stage", "eq": "active"}
    unchanged = {k: v for k, v in s.spec.items() if k not in ("name", "description", "where")}
    assert unchanged == {k: v for k, v in raw.items() if k not in ("name", "description")}
    assert s.spec["description"] == (
        "Suggested from the evaluation of spring_revisit on 2026-03-15: only lifecycle_stage = active "
        "(300 of the pack's 1,000 users then). visited S001, did not buy"
    )
    assert s.notes == []


def test_several_kept_subgroups_are_any_and_an_own_where_is_anded(segments: Path) -> None:
    raw = original_spec(segments, "big_spenders")
    s = suggest_spec(raw, block(), source=SOURCE, run_date="2026-03-15", tag="coupon_sensitivity")
    kept = {
        "any": [
            {"tag": "coupon_sensitivity", "eq": 0},
            {"all": [{"tag": "coupon_sensitivity", "gt": 0}, {"tag": "coupon_sensitivity", "lt": 0.5}]},
        ]
    }
    assert s.condition == kept
    assert s.spec["where"] == {"all": [{"tag": "consumption_level", "gte": 4}, kept]}
    assert s.kept == ["never (0)", "some (0-0.5)"]


def test_written_file_loads_with_the_spec_loader(segments: Path, tmp_path: Path) -> None:
    s = suggest_spec(original_spec(segments, "spring_revisit"), block(), source=SOURCE, run_date="2026-03-15")
    path = write_suggestion(s, tmp_path / "suggestions", segments)
    assert path == tmp_path / "suggestions" / "spring_revisit_suggested.yaml"
    text = path.read_text()
    assert text.startswith("# Suggested by dmp segments suggest: keep lifecycle_stage = active.\n# Not built")
    assert yaml.safe_load(text) == s.spec == yaml.safe_load(suggestion_yaml(s))
    spec = load_spec(path)
    assert spec.name == "spring_revisit_suggested" and spec.holdout == 0.2 and spec.kind == "store_revisit"
    assert isinstance(spec.where, TagFilter) and (spec.where.tag, spec.where.op, spec.where.value) == (
        "lifecycle_stage",
        "eq",
        "active",
    )
    two = suggest_spec(
        original_spec(segments, "spring_revisit"),
        block(),
        source=SOURCE,
        run_date="2026-03-15",
        tag="coupon_sensitivity",
    )
    assert isinstance(load_spec(write_suggestion(two, tmp_path / "s2", segments)).where, AnyOf)


def test_notes_for_a_changed_spec_and_a_whole_pack_keep(segments: Path) -> None:
    raw = original_spec(segments, "spring_revisit")
    b = block(spec_hashes=["0ldhash"], n_users=300)
    s = suggest_spec(raw, b, source=SOURCE, run_date="2026-03-15")
    assert len(s.notes) == 2
    assert s.notes[0].startswith(
        "the spec of spring_revisit changed since the evaluated pack was built (spec_hash 0ldhash then"
    )
    assert s.notes[1].startswith("the kept subgroups are the whole pack")


@pytest.mark.parametrize(
    ("changes", "tag", "message"),
    [
        (
            {"rows": None, "note": "no subgroup table: gold/user_tags does not exist"},
            None,
            f"{SOURCE}: subgroups: no subgroup table (no subgroup table: gold/user_tags does not exist)",
        ),
        (
            {"suggested_tag": None, "suggest_note": "no tag qualifies"},
            None,
            f"{SOURCE}: subgroups.suggested_tag: none; no tag qualifies",
        ),
        (
            {},
            "brand",
            f"{SOURCE}: subgroups.tags: no tag 'brand'; the table has lifecycle_stage, coupon_sensitivity",
        ),
        (
            {},
            "is_cart_abandoner",
            f"{SOURCE}: subgroups: no subgroup of 'is_cart_abandoner' is kept; nothing to suggest",
        ),
        ({}, "top_category", f"{SOURCE}: subgroups: top_category = C01 has no spec condition"),
    ],
)
def test_errors_name_the_file_and_the_field(
    segments: Path, changes: dict, tag: str | None, message: str
) -> None:
    b = block(**changes)
    if b.get("rows") is None:
        del b["rows"]
    with pytest.raises(DmpError) as err:
        suggest_spec(
            original_spec(segments, "spring_revisit"), b, source=SOURCE, run_date="2026-03-15", tag=tag
        )
    assert message in str(err.value)


def test_an_invalid_suggestion_is_a_spec_error(segments: Path) -> None:
    bad = block()
    bad["rows"][1]["where"] = {"tag": "lifecycle_stage", "gt": "active"}  # gt is not for a string tag
    with pytest.raises(SpecError) as err:
        suggest_spec(original_spec(segments, "spring_revisit"), bad, source=SOURCE, run_date="2026-03-15")
    assert "spring_revisit_suggested (suggested)" in str(err.value) and "'gt' is not allowed" in str(
        err.value
    )


def test_unknown_segment_and_out_in_the_segments_folder(segments: Path) -> None:
    with pytest.raises(DmpError, match=r"segments: no valid spec named 'autumn'"):
        original_spec(segments, "autumn")
    s = suggest_spec(original_spec(segments, "spring_revisit"), block(), source=SOURCE, run_date="2026-03-15")
    with pytest.raises(DmpError, match="--out is the segments folder"):
        write_suggestion(s, segments, segments)
    assert not (segments / "spring_revisit_suggested.yaml").exists()
