"""Number formatting shared by every report, console table and HTML page.

A missing value (``None``: undefined, or not computed) prints as ``missing`` rather than failing,
so a report with an empty group still renders.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

MISSING = "n/a"

Formatter = Callable[[float], str]


def pct(x: float | None, digits: int = 2, missing: str = MISSING) -> str:
    """A share as a percentage: 0.1234 -> ``12.34%``."""
    return missing if x is None else f"{x * 100:.{digits}f}%"


def pts(x: float | None, missing: str = MISSING) -> str:
    """A rate difference in percentage points, signed: 0.0123 -> ``+1.23 pts``."""
    return missing if x is None else f"{x * 100:+.2f} pts"


def num(x: float | None, digits: int = 1, missing: str = MISSING) -> str:
    """A number with thousands separators: 1234.5 -> ``1,234.5``."""
    return missing if x is None else f"{x:,.{digits}f}"


def index(x: float | None, missing: str = MISSING) -> str:
    """An index (100 = as common as in the population), no decimals."""
    return missing if x is None else f"{x:.0f}"


def interval(pair: Sequence[float | None], fmt: Formatter, missing: str = MISSING) -> str:
    """``[low, high]`` with each end formatted by ``fmt``; ``missing`` unless both ends are known."""
    low, high = pair
    return missing if low is None or high is None else f"[{fmt(low)}, {fmt(high)}]"
