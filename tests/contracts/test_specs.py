"""Segment spec validation: every malformed spec gets one exact, actionable message (no Spark here)."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmp.contracts.errors import SpecError
from dmp.contracts.specs import (
    SegmentSpec,
    condition_tags,
    dependency_order,
    invalid_dependencies,
    json_schema_text,
    load_spec,
    load_specs,
    spec_graph,
    spec_hash,
    spec_references,
    tag_value,
)

REPO = Path(__file__).resolve().parents[2]
TAGS = (
    "active_days_30d, avg_order_value_90d, carts_30d, consumption_level, coupon_sensitivity, first_seen_date, "
    "frequency_90d, is_cart_abandoner, last_active_date, last_order_date, lifecycle_stage, monetary_90d, "
    "orders_30d, recency_days, top_brand_ids, top_category_ids, top_store_ids, views_30d"
)
CHANNELS = {
    "channels": {
        "jd_ads": {
            "type": "ad",
            "destination": "file:///tmp/x",
            "id_types": ["oaid"],
            "hash": {"oaid": "md5"},
        },
        "coupon_center": {
            "type": "coupon",
            "destination": "file:///tmp/x",
            "id_types": ["user_id"],
            "hash": {"user_id": "none"},
        },
    }
}
BASE: dict[str, Any] = {
    "name": "base",
    "description": "a valid store_revisit spec",
    "kind": "store_revisit",
    "scope": {"store_ids": ["S001"]},
    "window_days": 14,
    "behaviors": ["view", "cart_add"],
    "where": {"all": [{"tag": "lifecycle_stage", "in": ["active"]}, {"tag": "consumption_level", "gte": 2}]},
    "holdout": 0.2,
    "channels": ["jd_ads"],
}


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        doc = doc[int(key)] if isinstance(doc, list) else doc[key]
    if value is _DELETE:
        del doc[keys[-1]]
    elif isinstance(doc, list):
        doc[int(keys[-1])] = value
    else:
        doc[keys[-1]] = value


_DELETE = object()

# (id, changes to BASE, expected field path, expected message)
MALFORMED: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown top-level field",
        {"windows_days": 14},
        "windows_days",
        "unknown field; allowed: name, description, kind, scope, window_days, behaviors, exclude_purchasers, "
        "competitors, own, categories, action, seed, expansion, model, min_seed, from_campaign, target, "
        "uplift_model, outcome, where, exclude, holdout, holdout_salt, min_size, max_size, channels, coupon, attribution_days",
    ),
    (
        "unknown nested field",
        {"scope": {"stores": ["S001"]}},
        "scope.stores",
        "unknown field; allowed: store_ids, brand_ids, category_ids",
    ),
    (
        "bad name",
        {"name": "Spring-Revisit"},
        "name",
        "must match ^[a-z0-9_]+$ (lower-case letters, digits, _), got 'Spring-Revisit'",
    ),
    ("missing name", {"name": _DELETE}, "name", "required field is missing"),
    (
        "unknown kind",
        {"kind": "store_visit"},
        "kind",
        "got 'store_visit'; allowed: 'store_revisit', 'competitor_intercept', 'lookalike', 'rule' or 'uplift'",
    ),
    ("window as string", {"window_days": "14"}, "window_days", "expected an integer, got '14'"),
    ("window zero", {"window_days": 0}, "window_days", "must be >= 1, got 0"),
    ("holdout too big", {"holdout": 0.7}, "holdout", "must be <= 0.5, got 0.7"),
    ("holdout as text", {"holdout": "10%"}, "holdout", "expected a number, got '10%'"),
    (
        "unknown behaviour",
        {"behaviors": ["view", "purchase"]},
        "behaviors[1]",
        "got 'purchase'; allowed: 'view', 'click', 'search', 'cart_add', 'cart_remove', 'favorite', 'order', "
        "'coupon_receive' or 'coupon_redeem'",
    ),
    ("behaviours not a list", {"behaviors": "view"}, "behaviors", "expected a list, got 'view'"),
    ("empty scope", {"scope": {}}, "scope", "give at least one of store_ids, brand_ids, category_ids"),
    ("empty id list", {"scope": {"store_ids": []}}, "scope.store_ids", "must have at least 1 item(s)"),
    (
        "exclude_purchasers not bool",
        {"exclude_purchasers": "yes"},
        "exclude_purchasers",
        "expected true or false, got 'yes'",
    ),
    ("missing scope for kind", {"scope": _DELETE}, "scope", "required for kind 'store_revisit'"),
    (
        "field of another kind",
        {"seed": {"segment": "x"}},
        "seed",
        "not used by kind 'store_revisit'; it belongs to kind lookalike",
    ),
    ("unknown tag", {"where": {"tag": "age", "gte": 18}}, "where.tag", f"unknown tag 'age'; allowed: {TAGS}"),
    (
        "op not for kind",
        {"where": {"tag": "lifecycle_stage", "gte": 2}},
        "where.gte",
        "operator 'gte' is not allowed for tag 'lifecycle_stage' (string); allowed: eq, ne, in, not_in, is_null",
    ),
    (
        "wrong value type",
        {"where.all.1.gte": "two"},
        "where.all[1].gte",
        "expected a number for tag 'consumption_level', got 'two'",
    ),
    (
        "in needs a list",
        {"where.all.0.in": "active"},
        "where.all[0].in",
        "expected a non-empty list of values (a string each) for tag 'lifecycle_stage', got 'active'",
    ),
    (
        "between reversed",
        {"where": {"tag": "recency_days", "between": [30, 7]}},
        "where.between",
        "expected [low, high] (a number each, low <= high) for tag 'recency_days', got [30, 7]",
    ),
    (
        "two operators",
        {"where": {"tag": "recency_days", "gte": 1, "lte": 9}},
        "where",
        "give exactly one operator, got: gte, lte",
    ),
    (
        "no operator",
        {"where": {"not": {"tag": "recency_days"}}},
        "where.not",
        "no operator for tag 'recency_days'; allowed for a number tag: eq, ne, gt, gte, lt, lte, between, in, not_in, is_null",
    ),
    (
        "not a condition",
        {"where": {"all": [{"tags": "x"}]}},
        "where.all[0]",
        "expected a condition: {tag: TAG, OP: VALUE}, {all: [...]}, {any: [...]} or {not: {...}}",
    ),
    ("empty all", {"where": {"all": []}}, "where.all", "must have at least 1 item(s)"),
    (
        "bad date value",
        {"where": {"tag": "last_active_date", "gte": "yesterday"}},
        "where.gte",
        "expected a date (YYYY-MM-DD) for tag 'last_active_date', got 'yesterday'",
    ),
    (
        "boolean tag with number",
        {"where": {"tag": "is_cart_abandoner", "eq": 1}},
        "where.eq",
        "expected true or false for tag 'is_cart_abandoner', got 1",
    ),
    (
        "array tag with list contains",
        {"where": {"tag": "top_brand_ids", "contains": ["B001"]}},
        "where.contains",
        "expected a string for tag 'top_brand_ids', got ['B001']",
    ),
    ("min above max", {"min_size": 500, "max_size": 100}, "min_size", "min_size 500 is above max_size 100"),
    ("negative min_size", {"min_size": -1}, "min_size", "must be >= 0, got -1"),
    ("channels not a list", {"channels": "jd_ads"}, "channels", "expected a list, got 'jd_ads'"),
    ("channel twice", {"channels": ["jd_ads", "jd_ads"]}, "channels", "channel listed twice: jd_ads"),
    (
        "exclude itself",
        {"exclude": {"segments": ["base"]}},
        "exclude",
        "a segment cannot exclude itself ('base')",
    ),
    (
        "unknown exclude key",
        {"exclude": {"segment": ["x"]}},
        "exclude.segment",
        "unknown field; allowed: segments, suppression_lists",
    ),
    (
        "coupon missing field",
        {"coupon": {"coupon_id": "C1", "value": 5}},
        "coupon.valid_days",
        "required field is missing",
    ),
    (
        "coupon value zero",
        {"coupon": {"coupon_id": "C1", "value": 0, "valid_days": 7}},
        "coupon.value",
        "must be > 0, got 0",
    ),
    ("scope as list", {"scope": ["S001"]}, "scope", "expected a mapping, got ['S001']"),
]


@pytest.mark.parametrize(
    ("changes", "field_path", "message"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_spec_exact_message(
    tmp_path: Path, changes: dict[str, Any], field_path: str, message: str
) -> None:
    doc = copy.deepcopy(BASE)
    for key, value in changes.items():
        _set(doc, key, value)
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: {field_path}: {message}"


KIND_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "intercept without competitors",
        {"name": "x", "kind": "competitor_intercept", "window_days": 7},
        "competitors",
        "required for kind 'competitor_intercept'",
    ),
    (
        "intercept empty competitors",
        {"name": "x", "kind": "competitor_intercept", "window_days": 7, "competitors": {}},
        "competitors",
        "give at least one of brand_ids, store_ids",
    ),
    (
        "intercept bad action",
        {
            "name": "x",
            "kind": "competitor_intercept",
            "window_days": 7,
            "competitors": {"brand_ids": ["B101"]},
            "action": "buy",
        },
        "action",
        "got 'buy'; allowed: 'order' or 'view'",
    ),
    (
        "lookalike two seeds",
        {
            "name": "x",
            "kind": "lookalike",
            "seed": {"segment": "a", "where": {"tag": "recency_days", "lte": 3}},
            "expansion": {"size": 10},
        },
        "seed",
        "give exactly one of segment (a segment name) or where (a tag rule)",
    ),
    (
        "lookalike no expansion",
        {"name": "x", "kind": "lookalike", "seed": {"segment": "a"}, "expansion": {}},
        "expansion",
        "give exactly one of size (number of users) or ratio (multiple of the seed size)",
    ),
    (
        "lookalike bad model",
        {
            "name": "x",
            "kind": "lookalike",
            "seed": {"segment": "a"},
            "expansion": {"ratio": 2.0},
            "model": "xgboost",
        },
        "model",
        "got 'xgboost'; allowed: 'logistic' or 'gradient_boosting'",
    ),
    (
        "lookalike own seed",
        {"name": "x", "kind": "lookalike", "seed": {"segment": "x"}, "expansion": {"size": 5}},
        "seed",
        "a segment cannot be its own seed ('x')",
    ),
    ("rule without where", {"name": "x", "kind": "rule"}, "where", "required for kind 'rule'"),
    (
        "rule with window",
        {"name": "x", "kind": "rule", "where": {"tag": "recency_days", "lte": 3}, "window_days": 3},
        "window_days",
        "not used by kind 'rule'; it belongs to kind store_revisit, competitor_intercept",
    ),
]


@pytest.mark.parametrize(
    ("doc", "field_path", "message"), [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_kind_specific_errors(tmp_path: Path, doc: dict[str, Any], field_path: str, message: str) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value) == f"{path}: {field_path}: {message}"


def test_several_errors_are_all_reported(tmp_path: Path) -> None:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({**BASE, "holdout": 2, "window_days": -3, "colour": "red"}))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(err.value).splitlines() == [
        f"{path}: window_days: must be >= 1, got -3",
        f"{path}: holdout: must be <= 0.5, got 2",
        f"{path}: colour: unknown field; allowed: name, description, kind, scope, window_days, behaviors, "
        "exclude_purchasers, competitors, own, categories, action, seed, expansion, model, min_seed, "
        "from_campaign, target, uplift_model, outcome, where, exclude, holdout, holdout_salt, min_size, max_size, channels, coupon, attribution_days",
    ]


def write_folder(folder: Path, specs: dict[str, Any], channels: dict | None = CHANNELS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if channels is not None:
        (folder / "channels.yaml").write_text(yaml.safe_dump(channels))
    for file_name, body in specs.items():
        (folder / file_name).write_text(
            body if isinstance(body, str) else yaml.safe_dump(body, sort_keys=False)
        )
    return folder


def rule(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": "rule", "where": {"tag": "recency_days", "lte": 7}, **extra}


def lines(spec_set) -> list[str]:
    return [str(issue) for issue in spec_set.errors]


def test_folder_checks_references_cycles_channels_and_files(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "segs",
        {
            "a.yaml": rule("a", exclude={"segments": ["b"]}),
            "b.yaml": rule("b", exclude={"segments": ["c"]}),
            "c.yaml": rule("c", exclude={"segments": ["a"]}),
            "d.yaml": rule("d", exclude={"segments": ["nope"]}),
            "e.yaml": rule("e", channels=["jd_ads", "weibo"]),
            "f.yaml": rule("f", channels=["coupon_center"]),
            "g.yaml": rule("wrong_name"),
            "h.yaml": "name: h\nkind: rule\nwhere: {tag: recency_days, lte: 7\n",
            "i.yml": rule("ok"),
            "ok.yaml": rule("ok"),
            "ok.yml": rule("ok"),
            "j.yaml": {"name": "j", "kind": "lookalike", "seed": {"segment": "h"}, "expansion": {"size": 3}},
            "k.yaml": rule("k", exclude={"segments": ["j"]}),
            "l.yaml": "name: l\nkind: rule\nkind: rule\nwhere: {tag: recency_days, lte: 7}\n",
            "m.yaml": "- just\n- a list\n",
            "good.yaml": rule("good", exclude={"segments": ["ok"]}, channels=["jd_ads"]),
            "n.yaml": rule("n", channels=["jd_ads"]),
        },
    )
    spec_set = load_specs(folder)
    f = str(folder)
    assert sorted(lines(spec_set)) == sorted(
        [
            f"{f}/a.yaml: exclude.segments: cycle between segments: a -> b -> c -> a",
            f"{f}/b.yaml: exclude.segments: cycle between segments: a -> b -> c -> a",
            f"{f}/c.yaml: exclude.segments: cycle between segments: a -> b -> c -> a",
            f"{f}/d.yaml: exclude.segments[0]: unknown segment 'nope'; known: a, b, c, d, e, f, g, good, h, i, j, k, "
            "l, m, n, ok",
            f"{f}/e.yaml: channels[1]: unknown channel 'weibo'; defined in {f}/channels.yaml: coupon_center, jd_ads",
            f"{f}/f.yaml: coupon: required because channel 'coupon_center' is a coupon channel; "
            "give {coupon_id, value, threshold, valid_days}",
            f"{f}/g.yaml: name: 'wrong_name' does not match the file name; name the file wrong_name.yaml",
            f"{f}/h.yaml: invalid YAML at line 4, column 1: did not find expected ',' or '}}'; "
            "fix the syntax (indentation, quotes, ':' after keys)",
            # x.yaml next to x.yml: neither is the segment, both are named; the other specs are unaffected.
            f"{f}/ok.yaml: name: segment 'ok' is defined by 2 files ({f}/ok.yaml, {f}/ok.yml); keep one",
            f"{f}/ok.yml: name: segment 'ok' is defined by 2 files ({f}/ok.yaml, {f}/ok.yml); keep one",
            f"{f}/good.yaml: exclude.segments[0]: segment 'ok' is invalid (see {f}/ok.yaml)",
            f"{f}/i.yml: name: 'ok' does not match the file name; name the file ok.yaml",
            f"{f}/j.yaml: seed.segment: segment 'h' is invalid (see {f}/h.yaml)",
            f"{f}/k.yaml: exclude.segments: depends on segment 'j', which is invalid",
            f"{f}/l.yaml: key 'kind' appears twice, at line 2 and line 3; each key may be given once per mapping",
            f"{f}/m.yaml: (top level): expected a mapping of spec fields (name, kind, ...), got list",
        ]
    )
    assert sorted(spec_set.specs) == ["n"]
    assert spec_set.path_of.get("n") == folder / "n.yaml"


def test_validate_only_the_given_paths(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "segs",
        {
            "good.yaml": rule("good", exclude={"segments": ["dep"]}),
            "dep.yaml": rule("dep"),
            "bad.yaml": rule("Bad"),
        },
    )
    spec_set = load_specs(folder, [folder / "good.yaml"])
    assert spec_set.errors == []
    assert spec_set.selected == ["good"]
    assert set(spec_set.specs) == {"good", "dep"}
    # A spec outside the folder may reference the folder's specs.
    outside = tmp_path / "elsewhere" / "extra.yaml"
    outside.parent.mkdir()
    outside.write_text(yaml.safe_dump(rule("extra", exclude={"segments": ["dep"]})))
    spec_set = load_specs(folder, [outside])
    assert (spec_set.errors, spec_set.selected) == ([], ["extra"])


def test_missing_or_broken_channels_file(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "segs", {"a.yaml": rule("a", channels=["jd_ads"])}, channels=None)
    spec_set = load_specs(folder)
    assert lines(spec_set) == [
        f"{folder}/channels.yaml: channels file not found (expected channels.yaml next to the segment specs)"
    ]


def test_dependency_order_puts_dependencies_first() -> None:
    specs = {
        name: SegmentSpec.model_validate(rule(name, exclude={"segments": deps}))
        for name, deps in {"a": ["c"], "b": [], "c": ["b"], "z": []}.items()
    }
    assert dependency_order(specs, ["a"]) == ["b", "c", "a"]
    assert dependency_order(specs, ["z", "a"]) == ["b", "z", "c", "a"]


def test_dependency_order_leaves_cycles_out() -> None:
    specs = {
        name: SegmentSpec.model_validate(rule(name, exclude={"segments": deps}))
        for name, deps in {"a": ["b"], "b": ["a"], "c": [], "d": ["c", "a"]}.items()
    }
    assert dependency_order(specs, ["a", "c", "d"]) == ["c"]


def test_spec_references_and_graph() -> None:
    look = SegmentSpec.model_validate(
        {
            "name": "look",
            "kind": "lookalike",
            "seed": {"segment": "seed"},
            "expansion": {"size": 10},
            "exclude": {"segments": ["vip", "seed"]},
        }
    )
    inline = SegmentSpec.model_validate(
        {
            "name": "inline",
            "kind": "lookalike",
            "seed": {"where": {"tag": "recency_days", "lte": 7}},
            "expansion": {"size": 1},
        }
    )
    assert spec_references(look) == {"seed", "vip"}
    assert look.dependencies() == ["seed", "vip"]
    assert spec_references(inline) == set()
    specs = {"look": look, "inline": inline}
    assert spec_graph(specs) == {"look": ["seed", "vip"], "inline": []}
    assert spec_graph(specs, among={"vip"}) == {"look": ["vip"], "inline": []}


def test_invalid_dependencies_are_transitive_and_name_the_first_bad_one() -> None:
    specs = {
        name: SegmentSpec.model_validate(rule(name, exclude={"segments": deps}))
        for name, deps in {"d": ["c"], "c": ["b", "x"], "b": [], "x": [], "ok": ["x"]}.items()
    }
    assert invalid_dependencies(specs, {"b"}) == {"c": "b", "d": "c"}
    assert invalid_dependencies(specs, set()) == {}


def test_tag_value_and_condition_tags() -> None:
    assert tag_value("date", "2026-03-01") == date(2026, 3, 1)
    assert tag_value("date", date(2026, 3, 1)) == date(2026, 3, 1)
    assert tag_value("string", "2026-03-01") == "2026-03-01"
    where = SegmentSpec.model_validate(
        rule(
            "r",
            where={
                "all": [
                    {"tag": "recency_days", "lte": 7},
                    {
                        "any": [
                            {"tag": "lifecycle_stage", "eq": "new"},
                            {"not": {"tag": "recency_days", "gt": 1}},
                        ]
                    },
                ]
            },
        )
    ).where
    assert condition_tags(where) == {"recency_days", "lifecycle_stage"}


def test_spec_hash_is_stable_and_sensitive() -> None:
    one = SegmentSpec.model_validate(BASE)
    same = SegmentSpec.model_validate(json.loads(json.dumps(BASE)))
    explicit_defaults = SegmentSpec.model_validate(
        {**BASE, "exclude_purchasers": True, "holdout_salt": "dmp-v1"}
    )
    changed = SegmentSpec.model_validate({**BASE, "holdout": 0.3})
    assert spec_hash(one) == spec_hash(same) == spec_hash(explicit_defaults)
    assert spec_hash(one) != spec_hash(changed)
    assert len(spec_hash(one)) == 16


def test_example_specs_are_valid() -> None:
    spec_set = load_specs(REPO / "segments")
    assert lines(spec_set) == []
    assert set(spec_set.specs) >= {
        "spring_revisit",
        "beauty_intercept",
        "beauty_b001_buyers",
        "beauty_lookalike",
        "cart_abandoners",
    }
    planted = spec_set.specs["spring_revisit"]
    assert planted.model_dump(exclude={"description", "channels"}, exclude_defaults=False) == {
        **SegmentSpec.model_validate(
            {
                "name": "spring_revisit",
                "kind": "store_revisit",
                "scope": {"store_ids": ["S001"]},
                "window_days": 14,
                "behaviors": ["view", "cart_add", "favorite"],
                "exclude_purchasers": True,
                "holdout": 0.2,
            }
        ).model_dump(exclude={"description", "channels"}),
    }
    assert planted.where is None and planted.max_size is None and planted.holdout_salt == "dmp-v1"
    assert planted.channels == ["jd_ads"]
    kinds = {s.kind for s in spec_set.specs.values()}
    assert kinds == {"store_revisit", "competitor_intercept", "lookalike", "rule"}
    assert any("opt_out" in s.exclude.suppression_lists for s in spec_set.specs.values())


def test_schema_json_is_up_to_date() -> None:
    assert (REPO / "segments" / "schema.json").read_text() == json_schema_text(), (
        "segments/schema.json is stale: run `dmp segments schema`"
    )


def test_schema_accepts_examples_and_rejects_unknown_fields() -> None:
    import jsonschema

    schema = json.loads(json_schema_text())
    for path in sorted((REPO / "segments").glob("*.yaml")):
        if path.name != "channels.yaml":
            jsonschema.validate(yaml.safe_load(path.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**BASE, "colour": "red"}, schema)


def test_cli_validate_exit_codes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from dmp.cli import app

    folder = write_folder(
        tmp_path / "segs", {"good.yaml": rule("good"), "bad.yaml": rule("bad", holdout=0.9)}
    )
    runner = CliRunner()
    ok = runner.invoke(app, ["segments", "validate", str(folder / "good.yaml"), "--segments", str(folder)])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(app, ["segments", "validate", "--segments", str(folder)])
    assert bad.exit_code != 0
    assert f"{folder}/bad.yaml: holdout: must be <= 0.5, got 0.9" in bad.output.replace("\n", "")


def test_broken_channels_file_is_reported_even_without_channel_users(tmp_path: Path) -> None:
    folder = write_folder(
        tmp_path / "segs", {"a.yaml": rule("a")}, channels={"channels": {"x": {"type": "tv"}}}
    )
    spec_set = load_specs(folder)
    assert len(spec_set.errors) == 1
    assert spec_set.errors[0].file == f"{folder}/channels.yaml"
    assert "channels.x.type: got 'tv', allowed: 'ad' or 'coupon'" in spec_set.errors[0].message
    assert set(spec_set.specs) == {"a"}
