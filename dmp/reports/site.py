"""``dmp site``: the static pages marketers open, rendered from plain data (no Spark, no I/O).

:mod:`dmp.steps.site` reads the lake into the dataclasses below; :func:`render_site` turns them into
``relative path -> HTML`` and nothing else. The site is a folder of self-contained pages (the
shared stylesheet inline, charts as inline SVG, no scripts, no external links), so it opens from
``file://`` offline:

- ``index.html``: the packs of every run date (newest first) with their sizes, deliverability,
  deliveries and uplift, a forest plot of the run date's uplift intervals, the overlap heatmap of
  its packs, and the ingest runs (data quality);
- ``packs/<segment>.html``: one page per segment: its spec's YAML and a section per run date
  (anchor ``run-<date>``) with links to the copied uplift report and preview.

Every text that comes from data (names, reasons, YAML, messages) goes through :func:`h.escape`.
Hrefs are relative to the site root (``reports/…``); pack pages prefix ``../``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from hashlib import sha256

from dmp.reports import html as h
from dmp.reports.charts import MUTED, PRIMARY, REFERENCE
from dmp.reports.numbers import interval, pct, pts

INDEX = "index.html"
PACKS_FOLDER = "packs"
SITE_TITLE = "DMP audience packs"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class ChannelDelivery:
    """The latest successful attempt of one (pack, channel): its file kinds and delivered rows."""

    channel: str
    rows: int
    kinds: tuple[str, ...] = ()
    # People of the pack the channel's rules kept from it (ops/channel_contacts): reached by a
    # higher-priority pack, or over the frequency cap. 0 on channels without rules.
    lost_priority: int = 0
    lost_cap: int = 0


@dataclass(frozen=True)
class Uplift:
    """A pack's absolute uplift (treatment rate - holdout rate) and its 95% interval."""

    value: float | None
    ci_low: float | None
    ci_high: float | None
    channel: str = ""
    n_treatment: int = 0
    n_holdout: int = 0
    p_value: float | None = None

    @property
    def complete(self) -> bool:
        return None not in (self.value, self.ci_low, self.ci_high)


@dataclass(frozen=True)
class Pack:
    """One (segment, run date) pack: sizes from gold/audience_packs, the rest from its pack run."""

    segment: str
    run_date: date
    kind: str
    size: int
    holdout: int
    treatment: int
    deliverable: bool
    reason: str | None = None
    deliveries: tuple[ChannelDelivery, ...] = ()
    uplift: Uplift | None = None
    report_href: str | None = None  # relative to the site root
    preview_href: str | None = None


@dataclass(frozen=True)
class OverlapPair:
    """A row of gold/pack_overlap: users in both packs, as a share of each."""

    run_date: date
    segment_a: str
    segment_b: str
    users_both: int
    share_a: float | None
    share_b: float | None


@dataclass(frozen=True)
class SpecText:
    """A segment's spec file as the marketer wrote it."""

    segment: str
    path: str
    yaml_text: str
    description: str = ""


@dataclass(frozen=True)
class IngestRun:
    run_id: str
    source: str
    status: str
    rows_read: int
    accepted: int
    quarantined: int
    reasons: Mapping[str, int] = field(default_factory=dict)
    message: str | None = None
    started_at: datetime | None = None


@dataclass(frozen=True)
class SiteData:
    lake: str
    generated_at: datetime
    packs: tuple[Pack, ...]
    overlap: tuple[OverlapPair, ...] | None  # None: no gold/pack_overlap table yet
    specs: Mapping[str, SpecText]
    ingest_runs: tuple[IngestRun, ...]
    notes: tuple[str, ...] = ()


class Markup(str):
    """HTML already built (escaped where needed): a table cell that is not escaped again."""


# ------------------------------------------------------------------------------------------
# names and links
# ------------------------------------------------------------------------------------------


def slug(name: str) -> str:
    """A file name for a segment: the name itself when it is a plain word (spec names are
    ``[a-z0-9_]+``), otherwise a readable part and a hash, so no name can leave the folder."""
    if _SAFE_NAME.match(name):
        return name
    readable = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40].strip("_") or "segment"
    return f"{readable}-{sha256(name.encode('utf-8')).hexdigest()[:10]}"


def pack_page(segment: str) -> str:
    """The pack page of a segment, relative to the site root."""
    return f"{PACKS_FOLDER}/{slug(segment)}.html"


def run_anchor(run_date: date) -> str:
    return f"run-{run_date.isoformat()}"


def _link(href: str, text: str) -> Markup:
    return Markup(f'<a href="{h.escape(href)}">{h.escape(text)}</a>')


def _cells_table(headers: Sequence[str], rows: Iterable[Sequence[object]], css: str = "") -> str:
    """A table whose cells are escaped text, or :class:`Markup` kept as it is."""
    body = []
    for row in rows:
        cells = "".join(f"<td>{c if isinstance(c, Markup) else h.escape(c)}</td>" for c in row)
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}"><em>none</em></td></tr>')
    head = "".join(f"<th>{h.escape(x)}</th>" for x in headers)
    attr = f' class="{css}"' if css else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n" + "\n".join(body) + "\n</tbody></table>"


def _count(n: int) -> str:
    return f"{n:,}"


def _uplift_text(uplift: Uplift | None) -> str:
    if uplift is None:
        return "not evaluated"
    return f"{pts(uplift.value)} {interval((uplift.ci_low, uplift.ci_high), pts)}"


def _nowrap(text: str) -> Markup:
    return Markup(f'<span style="white-space: nowrap">{h.escape(text)}</span>')


def _uplift_cell(uplift: Uplift | None) -> Markup:
    """The estimate and its interval, each kept on one line."""
    if uplift is None:
        return _nowrap("not evaluated")
    return Markup(f"{_nowrap(pts(uplift.value))} {_nowrap(interval((uplift.ci_low, uplift.ci_high), pts))}")


def _deliveries_cell(pack: Pack) -> Markup:
    """One line per delivered channel: ``channel: N rows``."""
    if not pack.deliveries:
        return Markup("none")
    return Markup("<br>".join(_nowrap(_delivery_text(d)) for d in pack.deliveries))


def _delivery_text(d: ChannelDelivery) -> str:
    """``channel: N rows``, plus the people the channel's priority and frequency cap kept out."""
    losses = [
        f"{_count(n)} to {what}" for n, what in ((d.lost_priority, "priority"), (d.lost_cap, "cap")) if n
    ]
    return f"{d.channel}: {_count(d.rows)} rows" + (f" (lost {', '.join(losses)})" if losses else "")


# ------------------------------------------------------------------------------------------
# charts (inline SVG)
# ------------------------------------------------------------------------------------------

FOREST_WIDTH = 640
FOREST_LABEL = 200
FOREST_ROW = 26
FOREST_MARGIN = 20
FOREST_RIGHT = 40  # room for the last tick's label


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round values in [low, high] (steps of 1, 2, 2.5 or 5 times a power of ten), as close to
    ``count`` of them as those steps allow."""
    raw = (high - low) / max(count - 1, 1)
    if raw <= 0:
        return [low]
    magnitude = 10 ** math.floor(math.log10(raw))

    def ticks(step: float) -> list[float]:
        first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
        return [round(k * step, 12) for k in range(first, last + 1)]

    options = [ticks(m * magnitude) for m in (1, 2, 2.5, 5, 10)]
    return min(options, key=lambda t: (abs(len(t) - count), -len(t)))


def _tick_label(v: float) -> str:
    points = round(v * 100, 6)
    return "0" if points == 0 else f"{points:+g} pts"


def forest_domain(uplifts: Sequence[Uplift]) -> tuple[float, float]:
    """The x range of a forest plot: every interval and zero, padded by 5% of the span."""
    values = [0.0] + [v for u in uplifts for v in (u.ci_low, u.ci_high) if v is not None]
    low, high = min(values), max(values)
    pad = (high - low) * 0.05 or 0.01
    return low - pad, high + pad


def forest_svg(packs: Sequence[Pack], title: str) -> str:
    """One horizontal interval per evaluated pack (estimate as a dot), a dashed line at zero.

    Each pack is a ``<g class="pack" data-segment=…>`` holding ``line.ci`` (x1 = low, x2 = high)
    and ``circle.estimate``; an interval clear of zero is drawn in the primary colour.
    """
    shown = [p for p in packs if p.uplift is not None and p.uplift.complete]
    if not shown:
        return h.paragraph("No pack of this run date has an uplift interval yet.")
    low, high = forest_domain([p.uplift for p in shown if p.uplift])
    left, right = FOREST_LABEL, FOREST_WIDTH - FOREST_RIGHT
    height = FOREST_MARGIN * 2 + FOREST_ROW * len(shown) + 20

    def x(v: float) -> float:
        return round(left + (v - low) / (high - low) * (right - left), 2)

    zero_x, axis_y = x(0.0), FOREST_MARGIN + FOREST_ROW * len(shown)
    parts = [
        f'<svg class="forest" xmlns="http://www.w3.org/2000/svg" width="{FOREST_WIDTH}" height="{height}" '
        f'viewBox="0 0 {FOREST_WIDTH} {height}" role="img" aria-label="{h.escape(title)}">',
        f"<title>{h.escape(title)}</title>",
        f'<line class="zero" x1="{zero_x}" x2="{zero_x}" y1="{FOREST_MARGIN - 8}" y2="{axis_y}" '
        f'stroke="{REFERENCE}" stroke-dasharray="4 3"/>',
        f'<line x1="{left}" x2="{right}" y1="{axis_y}" y2="{axis_y}" stroke="{REFERENCE}"/>',
    ]
    for v in nice_ticks(low, high):
        parts.append(
            f'<line x1="{x(v)}" x2="{x(v)}" y1="{axis_y}" y2="{axis_y + 4}" stroke="{REFERENCE}"/>'
            f'<text x="{x(v)}" y="{axis_y + 16}" font-size="11" text-anchor="middle" '
            f'fill="{REFERENCE}">{h.escape(_tick_label(v))}</text>'
        )
    for row, pack in enumerate(shown):
        parts.append(_forest_row(pack, FOREST_MARGIN + FOREST_ROW * row + FOREST_ROW / 2, x))
    parts.append("</svg>")
    return "\n".join(parts)


def _forest_row(pack: Pack, y: float, x: Callable[[float], float]) -> str:
    uplift = pack.uplift
    assert uplift is not None and uplift.value is not None
    assert uplift.ci_low is not None and uplift.ci_high is not None
    lo, hi, est = x(uplift.ci_low), x(uplift.ci_high), x(uplift.value)
    clear = uplift.ci_low > 0 or uplift.ci_high < 0
    colour = PRIMARY if clear else MUTED
    seg = h.escape(pack.segment)
    return (
        f'<g class="pack" data-segment="{seg}" data-run-date="{pack.run_date.isoformat()}">'
        f"<title>{seg}: {h.escape(_uplift_text(uplift))}</title>"
        f'<text x="{FOREST_LABEL - 8}" y="{y + 4}" font-size="12" text-anchor="end">{seg}</text>'
        f'<line class="ci" x1="{lo}" x2="{hi}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>'
        f'<circle class="estimate" cx="{est}" cy="{y}" r="5" fill="{colour}"/></g>'
    )


HEAT_CELL = 44
HEAT_LABEL = 170
HEAT_TOP = 110  # room for the rotated column labels


def overlap_matrix(pairs: Iterable[OverlapPair]) -> dict[tuple[str, str], tuple[int, float | None]]:
    """(row segment, column segment) -> (users in both, share of the row segment's pack).

    A row of the table gives both directions (share_a for a's row, share_b for b's); when the
    table holds ordered pairs too, the row written for that direction wins.
    """
    cells: dict[tuple[str, str], tuple[int, float | None]] = {}
    exact: set[tuple[str, str]] = set()
    for p in pairs:
        if p.segment_a == p.segment_b:
            continue
        cells[(p.segment_a, p.segment_b)] = (p.users_both, p.share_a)
        exact.add((p.segment_a, p.segment_b))
        if (p.segment_b, p.segment_a) not in exact:
            cells[(p.segment_b, p.segment_a)] = (p.users_both, p.share_b)
    return cells


def _blend(share: float) -> str:
    """White (0) to the primary colour (1)."""
    share = min(max(share, 0.0), 1.0)
    target = [int(PRIMARY[i : i + 2], 16) for i in (1, 3, 5)]
    rgb = [round(255 + (t - 255) * share) for t in target]
    return "#" + "".join(f"{c:02x}" for c in rgb)


def heatmap_svg(segments: Sequence[str], pairs: Iterable[OverlapPair], title: str) -> str:
    """Rows and columns are the run date's packs; a cell is the share of the row's users that
    are also in the column's pack (its title gives the count), darker = more shared."""
    cells = overlap_matrix(pairs)
    n = len(segments)
    top = HEAT_TOP
    width, height = HEAT_LABEL + HEAT_CELL * n + HEAT_TOP, top + HEAT_CELL * n + 10
    parts = [
        f'<svg class="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{h.escape(title)}">',
        f"<title>{h.escape(title)}</title>",
    ]
    for j, col in enumerate(segments):
        cx = HEAT_LABEL + HEAT_CELL * j + HEAT_CELL / 2
        parts.append(
            f'<text x="{cx}" y="{top - 6}" font-size="12" transform="rotate(-45 {cx} {top - 6})">'
            f"{h.escape(col)}</text>"
        )
    for i, row in enumerate(segments):
        y = top + HEAT_CELL * i
        parts.append(
            f'<text x="{HEAT_LABEL - 6}" y="{y + HEAT_CELL / 2 + 4}" font-size="12" '
            f'text-anchor="end">{h.escape(row)}</text>'
        )
        for j, col in enumerate(segments):
            parts.append(_heat_cell(row, col, cells.get((row, col)), HEAT_LABEL + HEAT_CELL * j, y))
    parts.append("</svg>")
    return "\n".join(parts)


def _heat_cell(row: str, col: str, cell: tuple[int, float | None] | None, x: float, y: float) -> str:
    if row == col:
        fill, label, tip = "#e2e8f0", "-", f"{row}"
    elif cell is None or cell[1] is None:
        fill, label, tip = "#ffffff", "", f"{row} and {col}: no overlap row"
    else:
        users, share = cell
        fill, label = _blend(share), pct(share, 0)
        tip = f"{row} and {col}: {_count(users)} users, {pct(share, 1)} of {row}"
    ink = "#ffffff" if cell and cell[1] is not None and cell[1] > 0.5 and row != col else "#1a202c"
    return (
        f'<g class="cell" data-row="{h.escape(row)}" data-col="{h.escape(col)}">'
        f"<title>{h.escape(tip)}</title>"
        f'<rect x="{x}" y="{y}" width="{HEAT_CELL}" height="{HEAT_CELL}" fill="{fill}" stroke="#cbd5e0"/>'
        f'<text x="{x + HEAT_CELL / 2}" y="{y + HEAT_CELL / 2 + 4}" font-size="11" text-anchor="middle" '
        f'fill="{ink}">{h.escape(label)}</text></g>'
    )


# ------------------------------------------------------------------------------------------
# pages
# ------------------------------------------------------------------------------------------

PACK_HEADERS = (
    "segment",
    "kind",
    "size",
    "treatment",
    "holdout",
    "deliverable",
    "channels delivered",
    "uplift (95% CI)",
    "report",
)


def _pack_row(pack: Pack, prefix: str = "") -> list[object]:
    deliverable = "yes" if pack.deliverable else f"no: {pack.reason or 'no reason recorded'}"
    if pack.deliverable and pack.reason:
        deliverable = f"yes ({pack.reason})"
    page = f"{prefix}{pack_page(pack.segment)}#{run_anchor(pack.run_date)}"
    report = _link(prefix + pack.report_href, "uplift report") if pack.report_href else "-"
    return [
        _link(page, pack.segment),
        pack.kind,
        _count(pack.size),
        _count(pack.treatment),
        _count(pack.holdout),
        deliverable,
        _deliveries_cell(pack),
        _uplift_cell(pack.uplift),
        report,
    ]


def by_run_date(packs: Iterable[Pack]) -> dict[date, list[Pack]]:
    """Packs grouped by run date, newest date first, segments in name order."""
    grouped: dict[date, list[Pack]] = {}
    for pack in sorted(packs, key=lambda p: (p.run_date, p.segment)):
        grouped.setdefault(pack.run_date, []).append(pack)
    return dict(sorted(grouped.items(), reverse=True))


def _run_date_section(day: date, packs: list[Pack], overlap: tuple[OverlapPair, ...] | None) -> str:
    parts = [
        f'<section id="{run_anchor(day)}">',
        h.heading(f"Run date {day.isoformat()}"),
        _cells_table(PACK_HEADERS, [_pack_row(p) for p in packs], css="packs"),
        h.heading("Uplift per pack (95% interval)", 3),
        forest_svg(packs, f"Uplift per pack, {day.isoformat()}"),
        h.paragraph(
            "Dot: the uplift (treatment rate minus holdout rate, percentage points); bar: its 95% "
            "interval; blue when the interval is clear of zero (dashed line)."
        ),
        h.heading("Overlap between packs", 3),
    ]
    if overlap is None:
        parts.append(h.paragraph("No gold/pack_overlap table in this lake yet.", "warn"))
    else:
        pairs = [p for p in overlap if p.run_date == day]
        names = sorted({p.segment for p in packs} | {s for p in pairs for s in (p.segment_a, p.segment_b)})
        if pairs and len(names) > 1:
            parts.append(
                heatmap_svg(names, pairs, f"Share of the row's users also in the column's pack, {day}")
            )
        else:
            parts.append(h.paragraph("No overlap pairs for this run date."))
    parts.append("</section>")
    return "\n".join(parts)


INGEST_HEADERS = ("run", "source", "status", "rows read", "accepted", "quarantined", "reasons", "message")


def ingest_section(runs: Sequence[IngestRun]) -> str:
    """The data-quality table: what each ingest run read, kept and quarantined, and why."""
    rows = [
        [
            r.run_id,
            r.source,
            r.status,
            _count(r.rows_read),
            _count(r.accepted),
            _count(r.quarantined),
            ", ".join(f"{k}: {_count(v)}" for k, v in sorted(r.reasons.items())) or "-",
            r.message or "",
        ]
        for r in runs
    ]
    return (
        '<section id="data-quality">'
        + h.heading("Data quality: ingest runs")
        + _cells_table(INGEST_HEADERS, rows, css="ingest")
        + "</section>"
    )


def render_index(data: SiteData) -> str:
    groups = by_run_date(data.packs)
    nav = " · ".join(f'<a href="#{run_anchor(d)}">{d.isoformat()}</a>' for d in groups)
    parts = [
        h.paragraph(f"Lake {data.lake}, generated {data.generated_at.isoformat(timespec='seconds')}."),
        f'<nav>Run dates: {nav or "none"} · <a href="#data-quality">data quality</a></nav>',
        *(h.paragraph(note, "warn") for note in data.notes),
    ]
    if not groups:
        parts.append(h.paragraph("No packs in this lake yet: run dmp segments build."))
    parts += [_run_date_section(day, packs, data.overlap) for day, packs in groups.items()]
    parts.append(ingest_section(data.ingest_runs))
    return h.page(SITE_TITLE, parts)


def render_pack_page(segment: str, packs: Sequence[Pack], spec: SpecText | None) -> str:
    """One segment: its spec (YAML as written), then a section per run date with its links."""
    parts = [f'<p><a href="../{INDEX}">← all packs</a></p>']
    if spec is not None:
        if spec.description:
            parts.append(h.paragraph(spec.description))
        parts += [h.heading(f"Spec ({spec.path})"), f"<pre><code>{h.escape(spec.yaml_text)}</code></pre>"]
    else:
        parts.append(h.paragraph("No spec file with this name in the segments folder.", "warn"))
    for pack in sorted(packs, key=lambda p: p.run_date, reverse=True):
        links = [_link(f"../{INDEX}#{run_anchor(pack.run_date)}", "run date on the index")]
        if pack.report_href:
            links.append(_link(f"../{pack.report_href}", "uplift report"))
        if pack.preview_href:
            links.append(_link(f"../{pack.preview_href}", "preview"))
        parts += [
            f'<section id="{run_anchor(pack.run_date)}">',
            h.heading(f"Run date {pack.run_date.isoformat()}"),
            _cells_table(PACK_HEADERS, [_pack_row(pack, "../")], css="packs"),
            "<p>" + " · ".join(links) + "</p>",
            "</section>",
        ]
    return h.page(f"Pack {segment}", parts)


def render_site(data: SiteData) -> dict[str, str]:
    """Every page of the site: relative path -> HTML document."""
    pages = {INDEX: render_index(data)}
    by_segment: dict[str, list[Pack]] = {}
    for pack in data.packs:
        by_segment.setdefault(pack.segment, []).append(pack)
    for segment, packs in sorted(by_segment.items()):
        pages[pack_page(segment)] = render_pack_page(segment, packs, data.specs.get(segment))
    return pages
