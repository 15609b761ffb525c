"""Reading many packs at once: Holm-adjusted p-values and Benjamini-Hochberg q-values.

With 20 packs evaluated for one run date, one of them is expected to look "significant" at 0.05
by chance alone. Two corrections, both from statsmodels ``multipletests``:

* Holm (1979), for the packs x primary metric of one run date: controls the chance of even one
  false "it worked" among them (family-wise error), and is uniformly more powerful than
  Bonferroni. A pack is significant after adjustment when its Holm p-value is below alpha.
* Benjamini-Hochberg (1995), for long tables such as subgroups: controls the expected share of
  false discoveries among the rows called significant (false discovery rate); its q-values are
  what a table of 30 sub-audiences should be read with.

Missing p-values (None: a pack with no estimate) take no part and stay None; the family size is
the number of p-values given.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from dmp.contracts.errors import DmpError
from dmp.stats.intervals import ALPHA, finite

Report = dict[str, Any]

HOLM_METHOD = "Holm step-down adjustment across the packs x primary metric of one run date"


def _adjust(p_values: Sequence[float | None], method: str) -> list[float | None]:
    from statsmodels.stats.multitest import multipletests

    present = [i for i, p in enumerate(p_values) if p is not None]
    values = np.array([float(p_values[i]) for i in present], dtype=float)  # type: ignore[arg-type]
    bad = [float(v) for v in values if not 0.0 <= v <= 1.0]
    if bad:
        raise DmpError(f"multiple testing: p-values must lie in [0, 1]; got {bad[:5]}")
    out: list[float | None] = [None] * len(p_values)
    if not present:
        return out
    adjusted = multipletests(values, alpha=ALPHA, method=method)[1]
    for i, value in zip(present, adjusted, strict=True):
        out[i] = finite(value)
    return out


def holm_adjust(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-adjusted p-values, in the order given: max over k <= i of min(1, (m - k + 1) p_(k))."""
    return _adjust(p_values, "holm")


def bh_qvalues(p_values: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg q-values, in the order given: min over k >= i of min(1, m p_(k) / k)."""
    return _adjust(p_values, "fdr_bh")


def holm_by_group(
    keys: Sequence[Hashable], p_values: Sequence[float | None]
) -> list[tuple[float | None, int]]:
    """(Holm-adjusted p, family size) for each p-value, adjusted within the rows of the same key.

    The read-time form (``dmp summary``): ``keys`` are the run dates of the rows of
    ``gold/uplift_results``, so every run date is its own family, whatever order the rows come in.
    """
    if len(keys) != len(p_values):
        raise DmpError(f"multiple testing: {len(keys)} keys for {len(p_values)} p-values")
    out: list[tuple[float | None, int]] = [(None, 0)] * len(p_values)
    for key in dict.fromkeys(keys):
        members = [i for i, k in enumerate(keys) if k == key]
        adjusted = holm_adjust([p_values[i] for i in members])
        family = sum(p is not None for p in adjusted)
        for i, p_holm in zip(members, adjusted, strict=True):
            out[i] = (p_holm, family)
    return out


def apply_holm(reports: Sequence[Report], alpha: float = ALPHA) -> list[Report]:
    """Copies of the reports of one run date with ``p_value_holm`` set and the verdict using it.

    A report stays conclusive only if its Holm p-value is below ``alpha`` too; the verdict says
    for how many packs it was adjusted and what the adjusted p-value is. The input is not changed.
    """
    adjusted = holm_adjust([r.get("p_value") for r in reports])
    family = sum(p is not None for p in adjusted)
    out = []
    for report, p_holm in zip(reports, adjusted, strict=True):
        r = copy.deepcopy(report)
        r["p_value_holm"] = p_holm
        r["multiple_testing"] = {"method": HOLM_METHOD, "family_size": family, "alpha": alpha}
        r.setdefault("methods", {})["p_value_holm"] = HOLM_METHOD + " (statsmodels multipletests 'holm')"
        r["significant_holm"] = p_holm is not None and p_holm < alpha
        if p_holm is not None and family > 1:
            r["conclusive"] = bool(r.get("conclusive")) and r["significant_holm"]
            r["verdict"] = f"{r['verdict']}; {_holm_clause(r, p_holm, family, alpha)}"
        out.append(r)
    return out


def holm_clause(p_holm: float, family: int, alpha: float, significant: bool | None) -> str:
    """The verdict's words on the adjustment: does the result survive reading ``family`` packs?

    ``significant`` is the unadjusted result (None: not known, e.g. in ``dmp summary``).
    """
    read = f"p = {p_holm:.3g} adjusted for {family} packs (Holm)"
    if p_holm < alpha:
        return f"{read}, below {alpha:g}: the result holds"
    if significant is False:
        return f"{read}, not below {alpha:g}"
    return f"{read}, not below {alpha:g}: the result could be chance"


def _holm_clause(report: Report, p_holm: float, family: int, alpha: float) -> str:
    return holm_clause(p_holm, family, alpha, bool(report.get("significant")))
