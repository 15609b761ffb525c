"""Charts as base64 PNGs, so every HTML report stays one self-contained file.

matplotlib is imported on first use with the Agg backend (no display: the charts end up inline in
the HTML), so importing a report module stays cheap for commands that never draw.
"""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from types import ModuleType

    from matplotlib.figure import Figure

# One palette for every report: the subject, the comparison, a reference line, the ideal, and
# the always-valid band of daily looks.
PRIMARY = "#2b6cb0"
MUTED = "#a0aec0"
REFERENCE = "#718096"
IDEAL = "#38a169"
ALWAYS_VALID = "#dd6b20"  # the confidence sequence: the band you may read every day
DPI = 100


def pyplot() -> ModuleType:
    """``matplotlib.pyplot`` on the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_base64(fig: Figure) -> str:
    """The figure as a base64 PNG (trimmed to its content); the figure is closed either way."""
    plt = pyplot()
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def grouped_bars(
    labels: list[str], series: dict[str, tuple[list[float], str]], title: str, ylabel: str
) -> str:
    """Bars of several series side by side per label (``series``: name -> (values, colour))."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(labels) + 2), 3.2))
    width = 0.8 / max(len(series), 1)
    xs = list(range(len(labels)))
    for i, (name, (values, colour)) in enumerate(series.items()):
        offset = (i - (len(series) - 1) / 2) * width
        ax.bar([x + offset for x in xs], values, width, label=name, color=colour)
    ax.set_xticks(xs)
    crowded = len(labels) > 6
    ax.set_xticklabels(labels, rotation=30 if crowded else 0, ha="right" if crowded else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    return png_base64(fig)
