"""``attribution_days``: the campaign's outcome window, validated, separate from the look-back
``window_days``, in the JSON Schema, and long enough for the spec's coupon (no Spark here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dmp.contracts.dates import DEFAULT_ATTRIBUTION_DAYS, MAX_ATTRIBUTION_DAYS
from dmp.contracts.errors import SpecError
from dmp.contracts.specs import load_spec, load_specs

REPO = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {
    "name": "base",
    "kind": "store_revisit",
    "scope": {"store_ids": ["S001"]},
    "window_days": 30,
    "behaviors": ["view"],
}
COUPON = {"coupon_id": "CP-1", "value": 10, "threshold": 0, "valid_days": 21}


def _load(tmp_path: Path, **changes: Any):  # noqa: ANN202 - SegmentSpec
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}, sort_keys=False))
    return path, load_spec(path)


def _error(tmp_path: Path, **changes: Any) -> tuple[Path, str]:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({**BASE, **changes}, sort_keys=False))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    return path, str(err.value)


def test_default_is_14_days_whatever_the_look_back(tmp_path: Path) -> None:
    _, spec = _load(tmp_path)
    assert DEFAULT_ATTRIBUTION_DAYS == 14
    assert (spec.window_days, spec.attribution_days) == (30, 14)
    _, spec = _load(tmp_path, attribution_days=45)
    assert (spec.window_days, spec.attribution_days) == (30, 45)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "attribution_days: must be >= 1, got 0"),
        (MAX_ATTRIBUTION_DAYS + 1, "attribution_days: must be <= 90, got 91"),
        ("14", "attribution_days: expected an integer, got '14'"),
    ],
)
def test_out_of_range_or_mistyped_is_an_error_naming_file_and_field(
    tmp_path: Path, value: object, message: str
) -> None:
    path, text = _error(tmp_path, attribution_days=value)
    assert text == f"{path}: {message}"


def test_every_kind_accepts_it(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        yaml.safe_dump(
            {"name": "r", "kind": "rule", "where": {"tag": "recency_days", "lte": 3}, "attribution_days": 7}
        )
    )
    assert load_spec(path).attribution_days == 7


def test_a_coupon_longer_than_the_window_is_rejected(tmp_path: Path) -> None:
    path, text = _error(tmp_path, coupon=COUPON)
    assert text == (
        f"{path}: coupon.valid_days: the coupon is valid for 21 days (R+1 … R+21) but attribution_days is 14 "
        "(the default): redemptions after day 14 would not count; set attribution_days >= 21 or shorten the coupon"
    )
    path, text = _error(tmp_path, coupon=COUPON, attribution_days=20)
    assert text == (
        f"{path}: coupon.valid_days: the coupon is valid for 21 days (R+1 … R+21) but attribution_days is 20: "
        "redemptions after day 20 would not count; set attribution_days >= 21 or shorten the coupon"
    )
    # as long as the window, or shorter: fine
    assert _load(tmp_path, coupon=COUPON, attribution_days=21)[1].coupon.valid_days == 21
    assert _load(tmp_path, coupon={**COUPON, "valid_days": 7})[1].attribution_days == 14


def test_the_example_specs_evaluate_over_their_attribution_window_not_their_look_back() -> None:
    specs = load_specs(REPO / "segments").specs
    windows = {name: (s.window_days, s.attribution_days) for name, s in specs.items()}
    assert windows == {
        "beauty_b001_buyers": (30, 14),
        "beauty_intercept": (30, 14),  # looks back 30 days, its 14-day coupon is judged on 14
        "beauty_lookalike": (None, 14),
        "cart_abandoners": (None, 14),
        "spring_revisit": (14, 14),
    }
    coupons = {name: s.coupon.valid_days for name, s in specs.items() if s.coupon}
    assert coupons == {"beauty_intercept": 14, "cart_abandoners": 7}


def test_schema_json_documents_the_field_and_its_bounds() -> None:
    schema = json.loads((REPO / "segments" / "schema.json").read_text())
    field = schema["properties"]["attribution_days"]
    assert (field["type"], field["minimum"], field["maximum"], field["default"]) == ("integer", 1, 90, 14)
    assert "window_days" in field["description"] and "valid_days" in field["description"]
