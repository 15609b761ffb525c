"""HTML building blocks shared by every report page: one stylesheet, tables, figures, lists, the page.

Pages are self-contained (inline CSS, charts as ``data:`` URIs, no scripts or links), so a report
can be mailed or opened from object storage as a single file. Every text that comes from data
goes through :func:`escape`; the helpers take plain text and return HTML.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 60rem;
       margin: 2rem auto; color: #1a202c; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border-bottom: 1px solid #e2e8f0; padding: .35rem .8rem; text-align: left; }
th { font-weight: 600; }
table.grid th, table.grid td { border: 1px solid #cbd5e0; text-align: right; }
table.grid th { background: #edf2f7; }
table.grid td:first-child, table.grid th:first-child { text-align: left; }
.verdict { font-size: 1.2rem; padding: .8rem; background: #ebf8ff; border-left: 4px solid #2b6cb0; }
.warn { background: #fffaf0; border-left: 4px solid #dd6b20; padding: .4rem 1rem; }
figure { display: inline-block; margin: .5rem; }
"""


def escape(text: object) -> str:
    """Text (anything printable) safe inside an element or a quoted attribute."""
    return html.escape(str(text))


def table(
    headers: Sequence[str] | None,
    rows: Iterable[Sequence[object]],
    *,
    row_headers: bool = False,
    grid: bool = False,
) -> str:
    """A table of text cells; ``row_headers``: the first cell of a row is a ``<th>``; ``grid``: a
    bordered table of numbers (right-aligned but the first column). No rows -> one "none" row."""
    body = []
    for row in rows:
        cells = [f"<td>{escape(c)}</td>" for c in row]
        if row_headers and cells:
            cells[0] = f"<th>{escape(row[0])}</th>"
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        span = len(headers) if headers else 1
        body.append(f'<tr><td colspan="{span}"><em>none</em></td></tr>')
    parts = ['<table class="grid">' if grid else "<table>"]
    if headers:
        parts.append("<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr></thead>")
    parts += ["<tbody>", *body, "</tbody></table>"]
    return "\n".join(parts)


def figure(caption: str, png_base64: str) -> str:
    """A chart (base64 PNG from :mod:`dmp.reports.charts`) with its caption."""
    return (
        f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{png_base64}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def bullets(items: Iterable[str]) -> str:
    """A ``<ul>`` of plain-text items."""
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def labelled_bullets(pairs: Iterable[tuple[str, object]]) -> str:
    """A ``<ul>`` of "**label**: text" items."""
    return "<ul>" + "".join(f"<li><b>{escape(k)}</b>: {escape(v)}</li>" for k, v in pairs) + "</ul>"


def heading(text: str, level: int = 2) -> str:
    return f"<h{level}>{escape(text)}</h{level}>"


def paragraph(text: str, css_class: str | None = None) -> str:
    attr = f' class="{css_class}"' if css_class else ""
    return f"<p{attr}>{escape(text)}</p>"


def page(title: str, parts: Iterable[str]) -> str:
    """A whole HTML document: the shared stylesheet, ``title`` as ``<h1>``, then ``parts`` (HTML)."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>\n<style>{CSS}</style></head>\n<body>\n"
        f"<h1>{escape(title)}</h1>\n" + "\n".join(part for part in parts if part) + "\n</body></html>\n"
    )
