"""Preview: profile and overlap numbers worked out by hand, self-contained HTML, end to end on a tiny lake."""

from __future__ import annotations

import base64
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from rich.console import Console

from dmp.contracts import tables
from dmp.reports.preview_report import render_html
from dmp.spark import lake as lk
from dmp.spark.schemas import AUDIENCE_PACKS, USER_TAGS
from dmp.steps.preview import audience_profile, pack_overlap, run_preview
from tests.support.factories import padded, tag_row

RUN = date(2026, 3, 3)

# user, lifecycle, consumption level, top categories
POPULATION = [
    ("u01", "active", 3, ["C01", "C02"]),
    ("u02", "active", 2, ["C01"]),
    ("u03", "silent", 1, ["C03"]),
    ("u04", "new", 1, []),
    ("u05", "active", 3, ["C01", "C03"]),
    ("u06", "churned", 2, ["C02"]),
    ("u07", "silent", 2, ["C01"]),
    ("u08", "new", 1, ["C02"]),
    ("u09", "active", 4, ["C01", "C04"]),
    ("u10", "churned", 1, ["C03"]),
]


def _tags(spark, as_of: date = RUN):
    rows = [
        tag_row(
            uid,
            as_of,
            first_seen_date=as_of - timedelta(days=50),
            views_30d=1,
            lifecycle_stage=stage,
            top_category_ids=cats,
            consumption_level=level,
        )
        for uid, stage, level, cats in POPULATION
    ]
    return spark.createDataFrame(rows, USER_TAGS)


def _users(spark, ids: list[str]):
    return spark.createDataFrame([(u,) for u in ids], "user_id string")


def _by_value(rows: list[dict]) -> dict[str, tuple]:
    return {
        r["value"]: (
            r["audience_users"],
            r["audience_share"],
            r["population_users"],
            r["population_share"],
            r["index"],
        )
        for r in rows
    }


def test_audience_profile_shares_and_index(spark):
    # u99 has no tags: counted apart, left out of the shares. u05 twice: counted once.
    audience = _users(spark, ["u01", "u03", "u05", "u09", "u99", "u05"])
    profile = audience_profile(audience, _tags(spark), top_categories=3)
    assert (profile["population"], profile["audience"]) == (10, 5)
    assert (profile["audience_with_tags"], profile["audience_without_tags"]) == (4, 1)
    dims = profile["dimensions"]

    lifecycle = dims["lifecycle_stage"]
    assert [r["value"] for r in lifecycle] == ["active", "churned", "new", "silent"]
    got = _by_value(lifecycle)
    assert got["active"] == (3, 0.75, 4, 0.4, pytest.approx(187.5))
    assert got["silent"] == (1, 0.25, 2, 0.2, pytest.approx(125.0))
    assert got["new"] == (0, 0.0, 2, 0.2, 0.0)
    assert got["churned"] == (0, 0.0, 2, 0.2, 0.0)

    levels = dims["consumption_level"]
    assert [r["value"] for r in levels] == ["1", "2", "3", "4"]
    got = _by_value(levels)
    assert got["1"] == (1, 0.25, 4, 0.4, pytest.approx(62.5))
    assert got["2"] == (0, 0.0, 3, 0.3, 0.0)
    assert got["3"] == (2, 0.5, 2, 0.2, pytest.approx(250.0))
    assert got["4"] == (1, 0.25, 1, 0.1, pytest.approx(250.0))

    # Categories: share of users having it among their top categories; top 3 by audience users,
    # ties by population users (C02 has 3, C04 has 1), so C04 is cut.
    cats = dims["top_category_ids"]
    assert [r["value"] for r in cats] == ["C01", "C03", "C02"]
    got = _by_value(cats)
    assert got["C01"] == (3, 0.75, 5, 0.5, pytest.approx(150.0))
    assert got["C03"] == (2, 0.5, 3, pytest.approx(0.3), pytest.approx(500 / 3))
    assert got["C02"] == (1, 0.25, 3, pytest.approx(0.3), pytest.approx(250 / 3))


def test_empty_audience_profile(spark):
    profile = audience_profile(_users(spark, []), _tags(spark))
    assert (profile["population"], profile["audience"], profile["audience_with_tags"]) == (10, 0, 0)
    got = _by_value(profile["dimensions"]["lifecycle_stage"])
    assert got["active"] == (0, None, 4, 0.4, None)


def _pack_rows(segment: str, run_date: date, ids: list[str], group: str = "treatment") -> list[tuple]:
    return [(segment, run_date, u, group, None, None, "h", "rule", True) for u in ids]


def test_overlap_uses_latest_pack_per_other_segment(spark):
    d1, d2, future = date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 5)
    rows = (
        _pack_rows("a", d1, ["u01", "u02"])
        + _pack_rows("a", d2, ["u01", "u03"])
        + _pack_rows("a", d2, ["u05"], "holdout")  # holdout users count too
        + _pack_rows("b", d2, ["u09", "u07"])
        + _pack_rows("b", future, ["u01", "u03", "u05", "u09"])  # after the preview date: ignored
        + _pack_rows("me", d2, ["u01", "u03", "u05", "u09"])  # the previewed segment itself
        + _pack_rows("gone", d2, ["u01"])  # no spec any more
    )
    packs = spark.createDataFrame(padded(rows, AUDIENCE_PACKS), AUDIENCE_PACKS)
    audience = _users(spark, ["u01", "u03", "u05", "u09", "u99"])
    overlap = pack_overlap(audience, packs, "me", RUN, ["a", "b"])
    assert overlap["rows"] == [
        {"segment": "a", "run_date": d2, "other_size": 3, "overlap": 3, "share": 0.6},
        {"segment": "b", "run_date": d2, "other_size": 2, "overlap": 1, "share": 0.2},
    ]
    assert (overlap["any"], overlap["any_share"]) == (4, 0.8)
    # Without a segment filter the pack of "gone" counts; without a date the future pack of "b" is latest.
    overlap_all = pack_overlap(audience, packs, "me")
    assert [(r["segment"], r["run_date"], r["overlap"]) for r in overlap_all["rows"]] == [
        ("b", future, 4),
        ("a", d2, 3),
        ("gone", d2, 1),
    ]


def _result(spark) -> dict:
    audience = _users(spark, ["u01", "u03", "u05", "u09"])
    return {
        "segment": "big_spenders",
        "kind": "rule",
        "run_date": RUN,
        "size": 4,
        "holdout_size": 1,
        "treatment_size": 3,
        "deliverable": False,
        "reason": "size 4 is below min_size 100",
        "metrics": {},
        "overlap": {"rows": [], "any": 0, "any_share": 0.0},
        "profile": audience_profile(audience, _tags(spark)),
    }


def _assert_self_contained(text: str, n_charts: int) -> None:
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == n_charts
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    without_images = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", text)
    assert not re.search(r"(https?:)?//[a-z0-9]", without_images, re.IGNORECASE)
    assert "<link" not in text and "<script" not in text
    assert re.findall(r'\b(?:src|href)="([^"]*)"', text) == [f"data:image/png;base64,{d}" for d in images]


def test_html_is_self_contained(spark):
    text = render_html(_result(spark))
    _assert_self_contained(text, n_charts=3)
    assert "<h1>Preview of segment big_spenders (2026-03-03)</h1>" in text
    assert "<td>no: size 4 is below min_size 100</td>" in text
    # lifecycle row: active 3 of 4 tagged audience users vs 4 of 10 in the population.
    assert "<tr><td>active</td><td>3</td><td>75.0%</td><td>4</td><td>40.0%</td><td>188</td></tr>" in text


def _write_spec(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\n{body}", encoding="utf-8")
    return path


def test_run_preview_end_to_end(spark, lake, tmp_path):
    tags = _tags(spark)
    lk.overwrite_partitions(
        tags, lake, tables.USER_TAGS, ["as_of_date"], lk.replace_where_condition("as_of_date", [RUN])
    )
    # An older snapshot: the preview without a date must use the latest one.
    old = _tags(spark, RUN - timedelta(days=1))
    lk.overwrite_partitions(
        old,
        lake,
        tables.USER_TAGS,
        ["as_of_date"],
        lk.replace_where_condition("as_of_date", [RUN - timedelta(days=1)]),
    )
    packs = spark.createDataFrame(
        padded(_pack_rows("actives", RUN, ["u01", "u02"]), AUDIENCE_PACKS), AUDIENCE_PACKS
    )
    lk.overwrite_partitions(
        packs, lake, tables.AUDIENCE_PACKS, ["segment", "run_date"], "segment = 'actives'"
    )
    segments = tmp_path / "segments"
    segments.mkdir()
    spec = _write_spec(
        segments,
        "big_spenders",
        "kind: rule\nwhere: {tag: consumption_level, gte: 3}\nholdout: 0.0\nmin_size: 3\n",
    )
    _write_spec(segments, "actives", "kind: rule\nwhere: {tag: lifecycle_stage, eq: active}\nholdout: 0.0\n")
    html_path = tmp_path / "out" / "preview.html"
    console = Console(record=True, width=140)

    result = run_preview(spark, lake, spec, segments, None, html_path, console=console)

    assert result["run_date"] == RUN
    assert (result["size"], result["holdout_size"], result["treatment_size"]) == (3, 0, 3)
    assert result["deliverable"] is True
    assert result["overlap"]["rows"] == [
        {"segment": "actives", "run_date": RUN, "other_size": 2, "overlap": 1, "share": pytest.approx(1 / 3)}
    ]
    assert result["profile"]["population"] == 10
    assert _by_value(result["profile"]["dimensions"]["lifecycle_stage"])["active"] == (3, 1.0, 4, 0.4, 250.0)
    printed = console.export_text()
    assert "preview of big_spenders" in printed and "Lifecycle stage: audience vs population" in printed
    _assert_self_contained(html_path.read_text(encoding="utf-8"), n_charts=3)
    # Nothing written: the previewed segment has no pack in the lake.
    assert lk.read_table(spark, lake, tables.AUDIENCE_PACKS).filter("segment = 'big_spenders'").count() == 0
