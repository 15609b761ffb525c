"""``dmp site`` end to end: a small real lake, the command, then the pages in a real headless Chromium.

The lake is the evaluation tests' tiny lake (gold/audience_packs, ops/deliveries, silver/user_daily)
plus a real ``evaluate`` of one pack (gold/uplift_results and its report.html), and rows written
with the contract schemas for ops/pack_runs, another pack's uplift, gold/pack_overlap and
ops/ingest_runs. The two lake tests are integration tests. Chromium and chromedriver come from the
system packages (``make browser``); selenium is pointed at /usr/bin/chromedriver so it never
downloads a driver.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from typer.testing import CliRunner

from dmp.contracts import tables
from dmp.spark import lake as lk
from dmp.spark import schemas
from tests.steps.test_evaluate import SPEC, R, write_tiny_lake

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT_COPY = Path("/tmp/dmp-site-screenshot.png")
AT = datetime(2026, 3, 15, 9, 0)
HOSTILE = "<script>alert(1)</script> lapsed buyers"
OTHER_SPEC = f"""name: other_segment
description: "{HOSTILE}"
kind: store_revisit
scope: {{store_ids: [S001]}}
window_days: 7
holdout: 0.4
"""
# gold/pack_overlap's contract columns (design.md §3); the step that writes it is being built.
OVERLAP_COLUMNS = ("run_date", "segment_a", "segment_b", "users_both", "share_a", "share_b")


def _row(schema: Any, **values: Any) -> tuple:
    """A row of ``schema``: ``values`` by name, a neutral value for the other non-null columns."""
    neutral = {"string": "", "long": 0, "integer": 0, "boolean": False, "double": 0.0, "timestamp": AT}
    return tuple(
        values[f.name] if f.name in values else (None if f.nullable else neutral[f.dataType.typeName()])
        for f in schema.fields
    )


def _write(spark, lake: str, table: str, schema: Any, rows: list[tuple]) -> None:  # noqa: ANN001
    spark.createDataFrame(rows, schema).write.format("delta").mode("append").save(
        tables.table_path(lake, table)
    )


def _extra_tables(spark, lake: str) -> None:  # noqa: ANN001
    from pyspark.sql.types import DateType, DoubleType, LongType, StringType, StructField, StructType

    runs = [
        _row(
            schemas.PACK_RUNS,
            segment=s,
            run_date=R,
            kind="store_revisit",
            size=10,
            holdout_size=4,
            treatment_size=6,
            deliverable=True,
            spec_hash="hash",
            built_at=AT,
        )
        for s in ("spring_revisit", "other_segment", "interim")
    ]
    runs.append(
        _row(
            schemas.PACK_RUNS,
            segment="empty_pack",
            run_date=R,
            kind="rule",
            size=0,
            holdout_size=0,
            treatment_size=0,
            deliverable=False,
            reason="below min_size 100",
            spec_hash="h",
            built_at=AT,
        )
    )
    _write(spark, lake, tables.PACK_RUNS, schemas.PACK_RUNS, runs)
    uplift = [
        _row(
            schemas.UPLIFT_RESULTS_SCHEMA,
            segment="other_segment",
            channel="jd_ads",
            run_date=R,
            metric=m,
            value=v,
            ci_low=lo,
            ci_high=hi,
            n_treatment=6,
            n_holdout=4,
            window_days=3,
            evaluated_at=AT,
        )
        for m, v, lo, hi in (("uplift_abs", -0.05, -0.31, 0.21), ("p_value", 0.7, None, None))
    ]
    _write(spark, lake, tables.UPLIFT_RESULTS, schemas.UPLIFT_RESULTS_SCHEMA, uplift)
    overlap_schema = StructType(
        [StructField("run_date", DateType(), False)]
        + [StructField(c, StringType(), False) for c in ("segment_a", "segment_b")]
        + [StructField("users_both", LongType(), False)]
        + [StructField(c, DoubleType(), True) for c in ("share_a", "share_b")]
    )
    pairs = [
        (R, a, b, 10, 1.0, 1.0) for a, b in (("interim", "other_segment"), ("interim", "spring_revisit"))
    ]
    pairs.append((R, "other_segment", "spring_revisit", 10, 1.0, 1.0))
    _write(spark, lake, tables.PACK_OVERLAP, overlap_schema, pairs)
    # jd_ads ranks another pack above spring_revisit and caps contacts (ops/channel_contacts).
    outcomes = ["priority"] * 2 + ["frequency_cap"] + ["delivered"] * 8
    contacts = [("jd_ads", R, "spring_revisit", f"c{i}", None, o) for i, o in enumerate(outcomes)]
    _write(spark, lake, tables.CHANNEL_CONTACTS, schemas.CHANNEL_CONTACTS_SCHEMA, contacts)
    ingest = _row(
        schemas.INGEST_RUNS_SCHEMA,
        run_id="ingest-1",
        source="landing/2026-03-15",
        format="jsonl",
        rows_read=1000,
        accepted=990,
        quarantined=10,
        reasons={"bad_event_type": 7, "no_user_id": 3},
        checks="passed",
        status="ok",
        started_at=AT,
        finished_at=AT + timedelta(minutes=1),
    )
    _write(spark, lake, tables.INGEST_RUNS, schemas.INGEST_RUNS_SCHEMA, [ingest])


@pytest.fixture(scope="module")
def site(spark, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:  # noqa: ANN001
    from dmp.cli import app
    from dmp.steps.evaluate import evaluate_pack

    root = tmp_path_factory.mktemp("site")
    lake, segments = str(root / "lake"), root / "segments"
    write_tiny_lake(spark, lake)
    segments.mkdir()
    (segments / "spring_revisit.yaml").write_text(SPEC + "attribution_days: 3\n")
    (segments / "other_segment.yaml").write_text(OTHER_SPEC)
    evaluate_pack(spark, lake, "spring_revisit", R, segments_dir=str(segments))
    _extra_tables(spark, lake)
    preview = Path(lake) / "reports" / "spring_revisit" / "preview.html"
    preview.write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>p</title><p>preview</p></html>"
    )

    res = CliRunner().invoke(app, ["site", "--lake", lake, "--segments", str(segments)])
    assert res.exit_code == 0, res.output
    out = Path(lake) / "site"
    assert str(out / "index.html") in res.output.replace("\n", "")
    return lake, out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: run `make browser` (apt-get install chromium chromium-driver)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,900")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver: Any, path: Path) -> list[dict[str, Any]]:
    """Load ``path`` and return its SEVERE console entries."""
    driver.get(path.as_uri())
    return [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]


def _links(driver: Any) -> list[str]:
    return [a.get_attribute("href") for a in driver.find_elements("css selector", "a[href]")]


def _check_link(href: str) -> Path:
    """The file a ``file://`` link names (it must exist, its #fragment must be an id in it)."""
    parts = urlsplit(href)
    assert parts.scheme == "file", f"not a local link: {href}"
    target = Path(unquote(parts.path))
    assert target.is_file(), f"broken link: {href}"
    if parts.fragment:
        assert f'id="{parts.fragment}"' in target.read_text(encoding="utf-8"), f"no anchor: {href}"
    return target


def _shown_packs(driver: Any) -> set[tuple[str, str, int, int, int]]:
    """(run_date, segment, size, treatment, holdout) of every row of the index's pack tables."""
    shown = set()
    for section in driver.find_elements("css selector", "section[id^='run-']"):
        day = section.get_attribute("id").removeprefix("run-")
        for row in section.find_elements("css selector", "table.packs tbody tr"):
            cells = [c.text for c in row.find_elements("tag name", "td")]
            size, treatment, holdout = (int(c.replace(",", "")) for c in cells[2:5])
            shown.add((day, cells[0], size, treatment, holdout))
    return shown


def _table_packs(spark, lake: str) -> set[tuple[str, str, int, int, int]]:  # noqa: ANN001
    from pyspark.sql import functions as F

    counts_df = (
        lk.read_table(spark, lake, tables.AUDIENCE_PACKS)
        .groupBy("run_date", "segment")
        .agg(
            F.count(F.lit(1)).alias("size"),
            F.sum((F.col("group") == "holdout").cast("long")).alias("holdout"),
        )
    )
    packs = {
        (str(r["run_date"]), r["segment"], r["size"], r["size"] - r["holdout"], r["holdout"])
        for r in counts_df.collect()
    }
    # an empty pack has no rows in gold/audience_packs: its pack run says 0
    runs = lk.read_table(spark, lake, tables.PACK_RUNS).filter(F.col("size") == 0).collect()
    return packs | {(str(r["run_date"]), r["segment"], 0, 0, 0) for r in runs}


def _full_page_png(driver: Any) -> bytes:
    """The whole page, not only the window (Chromium's DevTools protocol)."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    return base64.b64decode(shot["data"])


@pytest.mark.integration
def test_site_in_a_real_browser(spark, site: tuple[str, Path], browser: Any, tmp_path: Path) -> None:  # noqa: ANN001
    lake, out = site
    index = out / "index.html"
    assert _open(browser, index) == []
    assert _shown_packs(browser) == _table_packs(spark, lake)
    assert len(browser.find_elements("css selector", "svg.forest g.pack line.ci")) == 2
    widths = browser.execute_script(
        "return [...document.querySelectorAll('svg.forest line.ci')].map(l => l.getBoundingClientRect().width)"
    )
    assert all(w > 1 for w in widths), widths  # drawn, not collapsed
    assert len(browser.find_elements("css selector", "svg.heatmap g.cell")) == 16  # 4 packs of R
    assert "bad_event_type: 7" in browser.find_element("css selector", "#data-quality").text
    assert (
        "jd_ads: 8 rows (lost 2 to priority, 1 to cap)" in browser.find_element("css selector", "body").text
    )

    pages = {_check_link(href) for href in _links(browser)}
    pack_pages = sorted(p for p in pages if p.parent.name == "packs")
    assert len(pack_pages) == 4
    for page in pack_pages:
        assert _open(browser, page) == [], page
        for href in _links(browser):
            target = _check_link(href)
            if target.suffix == ".html" and target.parent.name != "packs" and target != index:
                assert _open(browser, target) == [], target  # the copied report / preview
                browser.get(page.as_uri())
    _open(browser, out / "packs" / "other_segment.html")
    spec_text = browser.find_element("css selector", "pre").text
    assert HOSTILE in spec_text  # shown as text, not run
    assert browser.execute_script("return document.querySelectorAll('body script').length") == 0

    _open(browser, index)
    shot = tmp_path / "site.png"
    shot.write_bytes(_full_page_png(browser))
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)
    print(f"site screenshot: {shot} (copied to {SCREENSHOT_COPY})")


@pytest.mark.integration
def test_report_links_point_at_copies_inside_the_site(site: tuple[str, Path]) -> None:
    _, out = site
    index = (out / "index.html").read_text(encoding="utf-8")
    hrefs = re.findall(r'href="([^"]+)"', index)
    assert "reports/spring_revisit/2026-03-15/report.html" in hrefs
    assert all("://" not in h and not h.startswith("/") for h in hrefs)  # relative: works when moved
    assert (out / "previews" / "spring_revisit" / "2026-03-15.html").is_file()


def test_an_object_storage_lake_needs_out(tmp_path: Path) -> None:
    from dmp.contracts.errors import DmpError
    from dmp.steps.site import default_out

    assert default_out(str(tmp_path / "lake")) == tmp_path / "lake" / "site"
    with pytest.raises(DmpError, match="give dmp site --out DIR"):
        default_out("s3a://bucket/lake")


def test_a_folder_that_is_not_a_site_is_never_replaced(tmp_path: Path) -> None:
    from dmp.contracts.errors import DmpError
    from dmp.steps.site import MARKER, _swap_in

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("keep me")
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "index.html").write_text("new")
    with pytest.raises(DmpError, match="is not a site written by dmp site"):
        _swap_in(staging, theirs)
    assert (theirs / "notes.txt").read_text() == "keep me"
    (staging / MARKER).write_text("")
    ours = tmp_path / "ours"
    _swap_in(staging, ours)  # a new folder
    staging.mkdir()
    (staging / "index.html").write_text("newer")
    _swap_in(staging, ours)  # a site written here before: replaced as a whole
    assert (ours / "index.html").read_text() == "newer" and not staging.exists()
