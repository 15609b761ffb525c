"""Sample-ratio mismatch (SRM): do the group sizes match the holdout share the design asked for?

Users land in the holdout by a hash of their id, so the holdout's share of a pack is binomial
around the spec's ``holdout``. A share far from it (e.g. 14 % when the spec says 10 %) means the
assignment or the delivery is broken (users lost on one side, a filter applied after the split, a
bad join), and then the groups are no longer alike and every number of the report is suspect.

The check is Pearson's chi-square goodness of fit of the two counts against the expected shares
(``scipy.stats.chisquare``, 1 degree of freedom), the test the experimentation platforms run
(Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments", KDD 2019).
Its threshold is strict, p < 0.001, because it runs on every pack: at 0.05 one healthy pack in 20
would be flagged.
"""

from __future__ import annotations

from typing import Any

from dmp.contracts.errors import DmpError
from dmp.stats.intervals import finite

SRM_ALPHA = 0.001

NOT_CHECKED = "not checked: no expected holdout share was given"


def srm_test(n_treatment: int, n_holdout: int, expected_holdout_share: float) -> tuple[float, float]:
    """(chi2, p-value) of the observed counts against ``expected_holdout_share`` of their total."""
    from scipy.stats import chisquare

    share = check_holdout_share(expected_holdout_share)
    total = n_treatment + n_holdout
    if total == 0:
        raise DmpError("sample ratio check: both groups are empty; expected users in at least one group")
    expected = [total * (1.0 - share), total * share]
    chi2, p = chisquare([n_treatment, n_holdout], f_exp=expected)
    return float(chi2), float(p)


def check_holdout_share(value: Any, field: str = "expected_holdout_share") -> float:
    """The expected holdout share as a float strictly between 0 and 1, else an error naming ``field``."""
    if isinstance(value, bool):
        raise DmpError(f"{field}: got {value!r}; expected a share strictly between 0 and 1, e.g. 0.1")
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise DmpError(
            f"{field}: got {value!r}; expected a share strictly between 0 and 1, e.g. 0.1"
        ) from None
    if not 0.0 < share < 1.0:
        raise DmpError(f"{field}: got {value!r}; expected a share strictly between 0 and 1, e.g. 0.1")
    return share


def srm_fields(n_treatment: int, n_holdout: int, expected_holdout_share: float | None) -> dict[str, Any]:
    """The report's SRM fields; all None with a note when no expected share is known (BYO files)."""
    observed = finite(n_holdout / (n_treatment + n_holdout)) if n_treatment + n_holdout else None
    if expected_holdout_share is None:
        return {
            "expected_holdout_share": None,
            "observed_holdout_share": observed,
            "srm_chi2": None,
            "srm_p_value": None,
            "srm_mismatch": None,
            "srm_note": NOT_CHECKED,
        }
    chi2, p = srm_test(n_treatment, n_holdout, expected_holdout_share)
    return {
        "expected_holdout_share": float(expected_holdout_share),
        "observed_holdout_share": observed,
        "srm_chi2": finite(chi2),
        "srm_p_value": finite(p),
        "srm_mismatch": bool(p < SRM_ALPHA),
        "srm_note": None,
    }


def srm_warning(report: dict[str, Any]) -> str | None:
    """The warning a sample ratio mismatch adds (None when the counts fit the design or were not checked)."""
    if not report.get("srm_mismatch"):
        return None
    return (
        f"sample ratio mismatch: the holdout is {report['observed_holdout_share']:.2%} of the users but the "
        f"design says {report['expected_holdout_share']:.2%} (chi-square {report['srm_chi2']:.2f}, "
        f"p = {report['srm_p_value']:.3g} < {SRM_ALPHA}); assignment or delivery is broken, so every number "
        "in this report is suspect until the cause is found"
    )
