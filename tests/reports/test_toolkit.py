"""The shared report toolkit: number formats, HTML blocks, charts as PNGs."""

from __future__ import annotations

import base64

from dmp.reports import html as h
from dmp.reports.charts import grouped_bars, png_base64, pyplot
from dmp.reports.numbers import index, interval, num, pct, pts

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_number_formats() -> None:
    assert (pct(0.12345), pct(0.12345, 1), pct(None), pct(None, missing="-")) == (
        "12.35%",
        "12.3%",
        "n/a",
        "-",
    )
    assert (pts(0.0123), pts(-0.5), pts(0.0), pts(None)) == ("+1.23 pts", "-50.00 pts", "+0.00 pts", "n/a")
    assert (num(1234.56), num(1234.5, 2), num(0.12345, 4), num(None)) == (
        "1,234.6",
        "1,234.50",
        "0.1235",
        "n/a",
    )
    assert (index(187.5), index(62.5), index(None, missing="-")) == ("188", "62", "-")
    assert interval([0.01, 0.02], pct) == "[1.00%, 2.00%]"
    assert interval([None, 0.02], pct) == interval([0.01, None], pts) == "n/a"


def test_table_escapes_and_marks_row_headers() -> None:
    text = h.table(("metric", "value"), [("a<b", "1 & 2")], row_headers=True)
    assert text == (
        "<table>\n<thead><tr><th>metric</th><th>value</th></tr></thead>\n<tbody>\n"
        "<tr><th>a&lt;b</th><td>1 &amp; 2</td></tr>\n</tbody></table>"
    )
    grid = h.table(("x", "y", "z"), [], grid=True)
    assert grid.startswith('<table class="grid">') and '<tr><td colspan="3"><em>none</em></td></tr>' in grid
    assert "<thead>" not in h.table(None, [("k", 1)])


def test_page_is_one_self_contained_document() -> None:
    text = h.page("A <title>", [h.paragraph('said "hi"', "verdict"), "", h.labelled_bullets([("k", "v")])])
    assert text.startswith("<!doctype html>\n") and text.endswith("</body></html>\n")
    assert "<title>A &lt;title&gt;</title>" in text and "<h1>A &lt;title&gt;</h1>" in text
    assert '<p class="verdict">said &quot;hi&quot;</p>\n<ul><li><b>k</b>: v</li></ul>' in text
    assert "<script" not in text and "<link" not in text
    assert h.bullets(["x", "<y>"]) == "<ul><li>x</li><li>&lt;y&gt;</li></ul>"
    assert h.figure("Q & A", "AAAA") == (
        '<figure><img alt="Q &amp; A" src="data:image/png;base64,AAAA"><figcaption>Q &amp; A</figcaption></figure>'
    )


def test_charts_are_base64_pngs_and_figures_are_closed() -> None:
    plt = pyplot()
    # Figures other tests of this process left open are not this test's business: only its own.
    before = plt.get_fignums()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    assert base64.b64decode(png_base64(fig)).startswith(PNG_MAGIC)
    assert not plt.fignum_exists(fig.number)
    bars = grouped_bars(["a", "b"], {"x": ([1.0, 2.0], "#000000"), "y": ([2.0, 1.0], "#ffffff")}, "t", "%")
    assert base64.b64decode(bars).startswith(PNG_MAGIC) and plt.get_fignums() == before
