"""The site renderer (dmp.reports.site) on hand-made inputs: values, escaping, the SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime

from dmp.reports import site as rs

DAY = date(2026, 5, 4)
EARLIER = date(2026, 5, 3)
SVG_NS = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>'


def _packs() -> tuple[rs.Pack, ...]:
    return (
        rs.Pack(
            "spring_revisit",
            DAY,
            "store_revisit",
            size=12345,
            holdout=1234,
            treatment=11111,
            deliverable=True,
            deliveries=(rs.ChannelDelivery("jd_ads", 20987, ("full",)),),
            uplift=rs.Uplift(0.0123, 0.0051, 0.0195, "jd_ads", 11111, 1234),
            report_href="reports/spring_revisit/2026-05-04/report.html",
        ),
        rs.Pack(
            "lapsed_vip",
            DAY,
            "rule",
            size=90,
            holdout=9,
            treatment=81,
            deliverable=False,
            reason="below min_size 100",
            uplift=rs.Uplift(-0.02, -0.05, 0.01),
        ),
        rs.Pack(
            "cart_abandoners",
            DAY,
            "rule",
            size=5000,
            holdout=500,
            treatment=4500,
            deliverable=True,
            uplift=rs.Uplift(0.004, -0.001, 0.009),
        ),
        rs.Pack("spring_revisit", EARLIER, "store_revisit", 777, 77, 700, True),
    )


def _data(**overrides: object) -> rs.SiteData:
    fields: dict[str, object] = {
        "lake": "/lake",
        "generated_at": datetime(2026, 5, 5, 8, 0, tzinfo=UTC),
        "packs": _packs(),
        "overlap": (
            rs.OverlapPair(DAY, "cart_abandoners", "spring_revisit", 400, 0.08, 0.0324),
            rs.OverlapPair(DAY, "lapsed_vip", "spring_revisit", 45, 0.5, 0.0036),
        ),
        "specs": {
            "spring_revisit": rs.SpecText(
                "spring_revisit",
                "spring_revisit.yaml",
                f"name: spring_revisit\ndescription: '{HOSTILE}'\n",
                HOSTILE,
            )
        },
        "ingest_runs": (
            rs.IngestRun(
                "run-1", "landing/2026-05-04", "ok", 1000, 990, 10, {"bad_event_type": 7, "no_user": 3}
            ),
        ),
    }
    fields.update(overrides)
    return rs.SiteData(**fields)  # type: ignore[arg-type]


def _svgs(page: str, css_class: str) -> list[ET.Element]:
    found = re.findall(rf'<svg class="{css_class}".*?</svg>', page, flags=re.S)
    return [ET.fromstring(svg) for svg in found]


def test_index_lists_every_pack_with_its_numbers() -> None:
    index = rs.render_site(_data())[rs.INDEX]
    assert index.index("Run date 2026-05-04") < index.index("Run date 2026-05-03")  # newest first
    for text in ("12,345", "1,234", "11,111", "jd_ads: 20,987 rows", "+1.23 pts", "[+0.51 pts, +1.95 pts]"):
        assert text in index
    assert "no: below min_size 100" in index
    assert 'href="packs/spring_revisit.html#run-2026-05-04"' in index
    assert 'href="reports/spring_revisit/2026-05-04/report.html"' in index
    assert "bad_event_type: 7, no_user: 3" in index and "990" in index
    assert index.count('<tr><td><a href="packs/') == len(_packs())


def test_a_channels_priority_and_cap_losses_are_shown_beside_its_rows() -> None:
    lost = rs.ChannelDelivery("jd_ads", 900, ("full",), lost_priority=1234, lost_cap=56)
    capped_only = rs.ChannelDelivery("coupon_center", 10, ("full",), lost_cap=3)
    packs = (replace(_packs()[0], deliveries=(capped_only, lost)),)
    index = rs.render_site(_data(packs=packs))[rs.INDEX]
    assert "jd_ads: 900 rows (lost 1,234 to priority, 56 to cap)" in index
    assert "coupon_center: 10 rows (lost 3 to cap)" in index
    assert "jd_ads: 20,987 rows</" in rs.render_site(_data())[rs.INDEX]  # no rules: nothing added


def test_text_from_data_is_escaped() -> None:
    hostile_pack = rs.Pack(HOSTILE, DAY, "rule", 5, 1, 4, False, reason=HOSTILE)
    data = _data(packs=(*_packs(), hostile_pack), notes=(HOSTILE,))
    pages = rs.render_site(data)
    for page in pages.values():
        assert "<script" not in page
    assert "&lt;script&gt;" in pages[rs.pack_page("spring_revisit")]
    # The hostile segment's page name stays inside packs/ and is a plain file name.
    name = rs.pack_page(HOSTILE)
    assert re.fullmatch(r"packs/[A-Za-z0-9_-]+\.html", name) and name in pages


def test_pack_page_shows_spec_yaml_and_relative_links() -> None:
    page = rs.render_site(_data())[rs.pack_page("spring_revisit")]
    assert "<pre><code>name: spring_revisit" in page
    assert 'href="../reports/spring_revisit/2026-05-04/report.html"' in page
    assert 'href="../index.html#run-2026-05-04"' in page
    assert 'id="run-2026-05-03"' in page
    no_spec = rs.render_site(_data())[rs.pack_page("lapsed_vip")]
    assert "No spec file" in no_spec


def test_forest_plot_has_one_ordered_interval_per_pack() -> None:
    index = rs.render_site(_data())[rs.INDEX]
    plots = _svgs(index, "forest")
    assert len(plots) == 1  # the earlier run date has no evaluated pack
    groups = plots[0].findall(f"{SVG_NS}g[@class='pack']")
    by_segment = {g.get("data-segment"): g for g in groups}
    assert sorted(by_segment) == ["cart_abandoners", "lapsed_vip", "spring_revisit"]
    xs: dict[str, tuple[float, float, float]] = {}
    for segment, g in by_segment.items():
        line = g.find(f"{SVG_NS}line[@class='ci']")
        dot = g.find(f"{SVG_NS}circle[@class='estimate']")
        assert line is not None and dot is not None
        low, high, est = float(line.get("x1", "")), float(line.get("x2", "")), float(dot.get("cx", ""))
        assert low < est < high, segment
        xs[str(segment)] = (low, est, high)
    zero = float(plots[0].find(f"{SVG_NS}line[@class='zero']").get("x1", ""))  # type: ignore[union-attr]
    # lapsed_vip's interval straddles zero, spring_revisit's lies right of it, and the x axis is
    # monotone: a larger uplift is further right.
    assert xs["lapsed_vip"][0] < zero < xs["lapsed_vip"][2]
    assert zero < xs["spring_revisit"][0]
    assert xs["lapsed_vip"][1] < xs["cart_abandoners"][1] < xs["spring_revisit"][1]


def test_heatmap_cells_use_each_direction_share() -> None:
    index = rs.render_site(_data())[rs.INDEX]
    (heatmap,) = _svgs(index, "heatmap")
    cells = {(g.get("data-row"), g.get("data-col")): g for g in heatmap.findall(f"{SVG_NS}g[@class='cell']")}
    assert len(cells) == 9  # 3 packs of the run date
    label = cells[("lapsed_vip", "spring_revisit")].find(f"{SVG_NS}text")
    assert label is not None and label.text == "50%"
    reverse = cells[("spring_revisit", "lapsed_vip")].find(f"{SVG_NS}title")
    assert reverse is not None and "45 users, 0.4% of spring_revisit" in (reverse.text or "")


def test_missing_overlap_table_is_said() -> None:
    index = rs.render_site(_data(overlap=None))[rs.INDEX]
    assert "No gold/pack_overlap table" in index
    assert not _svgs(index, "heatmap")


def test_forest_domain_spans_zero_and_every_interval() -> None:
    low, high = rs.forest_domain([rs.Uplift(0.02, 0.01, 0.03), rs.Uplift(0.05, 0.04, 0.06)])
    assert low < 0 < 0.06 < high
    assert rs.nice_ticks(-0.4709, 0.5495) == [-0.4, -0.2, 0.0, 0.2, 0.4]
    assert rs.nice_ticks(-0.003, 0.0205) == [0.0, 0.005, 0.01, 0.015, 0.02]
