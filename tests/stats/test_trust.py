"""dmp.stats.srm and dmp.stats.multiple: the sample-ratio check (Fabijan et al.'s known answer) and
the Holm / Benjamini-Hochberg adjustments (hand-computed, and against the textbook step-down and
step-up formulas)."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from dmp.contracts.errors import DmpError
from dmp.stats import multiple, srm, uplift


def experiment(n_t: int, x_t: int, n_c: int, x_c: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "group": ["treatment"] * n_t + ["holdout"] * n_c,
            "converted": [1] * x_t + [0] * (n_t - x_t) + [1] * x_c + [0] * (n_c - x_c),
        }
    )


# ---------------------------------------------------------------------------------------------
# sample ratio mismatch
# ---------------------------------------------------------------------------------------------


def test_fabijan_known_answer() -> None:
    # Fabijan et al. (KDD 2019): 821,588 vs 815,482 users in a 50/50 design: chi2 = 22.77, p = 1.82e-6
    chi2, p = srm.srm_test(821_588, 815_482, 0.5)
    assert round(chi2, 2) == 22.77
    assert f"{p:.3g}" == "1.82e-06"
    expected = (821_588 + 815_482) / 2
    assert chi2 == pytest.approx(2 * (821_588 - expected) ** 2 / expected, rel=1e-12)
    assert p == pytest.approx(math.erfc(math.sqrt(chi2 / 2)), rel=1e-9)  # chi-square, 1 df


def test_holdout_of_14_percent_when_the_spec_says_10() -> None:
    r = uplift.evaluate_experiment(experiment(1720, 344, 280, 28), expected_holdout_share=0.1)
    # expected 1800 / 200: (80^2 / 1800) + (80^2 / 200) = 35.56
    assert r["srm_chi2"] == pytest.approx(80**2 / 1800 + 80**2 / 200, rel=1e-12)
    assert r["srm_p_value"] == pytest.approx(math.erfc(math.sqrt(r["srm_chi2"] / 2)), rel=1e-9)
    assert r["srm_p_value"] < 1e-8 and r["srm_mismatch"] is True
    assert (r["expected_holdout_share"], r["observed_holdout_share"]) == (0.1, 0.14)
    assert r["significant"] is True and r["conclusive"] is False
    assert r["warnings"][0] == (
        "sample ratio mismatch: the holdout is 14.00% of the users but the design says 10.00% (chi-square 35.56, "
        f"p = {r['srm_p_value']:.3g} < 0.001); assignment or delivery is broken, so every number in this report "
        "is suspect until the cause is found"
    )
    assert r["verdict"] == (
        "the campaign raised conversion by +10.00 points (95% CI "
        f"{r['uplift_abs_ci'][0] * 100:+.2f} to {r['uplift_abs_ci'][1] * 100:+.2f}); but the holdout is 14.00% "
        f"of the users where the design says 10.00% (sample ratio mismatch, p = {r['srm_p_value']:.3g}), so this "
        "result cannot be trusted until the assignment or delivery is fixed"
    )


def test_a_holdout_that_fits_the_design_changes_nothing() -> None:
    df = experiment(1810, 362, 190, 19)  # 9.5 % of 2,000 against 10 %: chi2 = 0.56, p = 0.46
    checked = uplift.evaluate_experiment(df, expected_holdout_share=0.1)
    plain = uplift.evaluate_experiment(df)
    assert checked["srm_chi2"] == pytest.approx(10**2 / 1800 + 10**2 / 200, rel=1e-12)
    assert (
        checked["srm_p_value"] == pytest.approx(0.4561, abs=1e-4)
        and checked["srm_mismatch"] is False
        and checked["srm_note"] is None
    )
    assert checked["warnings"] == plain["warnings"] == []
    assert checked["verdict"] == plain["verdict"] and checked["conclusive"] is plain["conclusive"] is True
    assert plain["srm_p_value"] is None and plain["srm_chi2"] is None and plain["srm_mismatch"] is None
    assert plain["srm_note"] == "not checked: no expected holdout share was given"
    assert plain["observed_holdout_share"] == pytest.approx(0.095)


def test_only_p_below_one_in_a_thousand_is_a_mismatch() -> None:
    # 234 of 2,000 against 10 %: chi2 = 34^2 / 200 + 34^2 / 1800 = 6.42, p = 0.011: odd, but not a mismatch
    r = uplift.evaluate_experiment(experiment(1766, 353, 234, 23), expected_holdout_share=0.1)
    assert r["srm_chi2"] == pytest.approx(34**2 / 200 + 34**2 / 1800, rel=1e-12)
    assert r["srm_p_value"] == pytest.approx(0.0113, abs=1e-4)
    assert r["srm_mismatch"] is False
    assert not any(w.startswith("sample ratio mismatch") for w in r["warnings"])
    assert "sample ratio mismatch" not in r["verdict"]


@pytest.mark.parametrize("share", [0, 1, 1.5, -0.1, "ten", None, True])
def test_bad_expected_share_is_named(share: object) -> None:
    with pytest.raises(DmpError) as err:
        srm.srm_test(10, 10, share)  # type: ignore[arg-type]
    assert str(err.value) == (
        f"expected_holdout_share: got {share!r}; expected a share strictly between 0 and 1, e.g. 0.1"
    )


# ---------------------------------------------------------------------------------------------
# Holm and Benjamini-Hochberg
# ---------------------------------------------------------------------------------------------


def test_holm_and_bh_by_hand() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005 x4 = 0.02, 0.01 x3 = 0.03, 0.03 x2 = 0.06, 0.04 x1 = 0.04 -> running max 0.06
    assert multiple.holm_adjust(p) == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    # BH: sorted 0.005 x4/1 = 0.02, 0.01 x4/2 = 0.02, 0.03 x4/3 = 0.04, 0.04 x4/4 = 0.04 -> running min from the top
    assert multiple.bh_qvalues(p) == pytest.approx([0.02, 0.04, 0.04, 0.02], abs=1e-15)
    # a missing p-value takes no part: the family has 2 members
    assert multiple.holm_adjust([None, 0.01, 0.04]) == [None, pytest.approx(0.02), pytest.approx(0.04)]
    assert multiple.bh_qvalues([0.2, None]) == [pytest.approx(0.2), None]
    assert multiple.holm_adjust([]) == [] and multiple.bh_qvalues([None]) == [None]
    assert multiple.holm_adjust([0.6, 0.7]) == [1.0, 1.0]  # capped at 1


def _textbook_holm(p: np.ndarray) -> np.ndarray:
    m, order = len(p), np.argsort(p)
    out = np.empty(m)
    out[order] = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


def _textbook_bh(p: np.ndarray) -> np.ndarray:
    m, order = len(p), np.argsort(p)
    out = np.empty(m)
    out[order] = np.minimum(1, np.minimum.accumulate((m / np.arange(1, m + 1) * p[order])[::-1])[::-1])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_against_the_textbook_formulas(seed: int) -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.uniform(size=15), rng.uniform(0, 0.01, size=5)])
    np.testing.assert_allclose(multiple.holm_adjust(list(p)), _textbook_holm(p), rtol=1e-12)
    np.testing.assert_allclose(multiple.bh_qvalues(list(p)), _textbook_bh(p), rtol=1e-12)
    np.testing.assert_allclose(multiple.holm_adjust(list(p)), multipletests(p, method="holm")[1], rtol=1e-12)
    np.testing.assert_allclose(multiple.bh_qvalues(list(p)), multipletests(p, method="fdr_bh")[1], rtol=1e-12)


def test_bad_p_values_are_named() -> None:
    with pytest.raises(DmpError, match=r"multiple testing: p-values must lie in \[0, 1\]; got \[1.5\]"):
        multiple.holm_adjust([0.01, 1.5])


def test_apply_holm_to_one_run_date() -> None:
    strong = uplift.evaluate_experiment(experiment(2000, 300, 2000, 200))  # p ~ 1e-6
    borderline = uplift.evaluate_experiment(experiment(2000, 250, 2000, 208))  # p = 0.037
    null = uplift.evaluate_experiment(experiment(2000, 200, 2000, 200))  # p = 1
    reports = [strong, borderline, null]
    before = copy.deepcopy(reports)
    out = multiple.apply_holm(reports)
    assert reports == before  # the input is not changed
    raw = [r["p_value"] for r in reports]
    assert borderline["significant"] is True and borderline["conclusive"] is True
    assert raw[1] == pytest.approx(0.0370, abs=1e-4)
    assert [r["p_value_holm"] for r in out] == pytest.approx(
        _textbook_holm(np.array(raw)).tolist(), rel=1e-12
    )
    assert [r["significant_holm"] for r in out] == [True, False, False]
    assert [r["conclusive"] for r in out] == [True, False, False]
    assert all(r["multiple_testing"]["family_size"] == 3 for r in out)
    assert out[0]["verdict"] == (
        f"{strong['verdict']}; p = {out[0]['p_value_holm']:.3g} adjusted for 3 packs (Holm), below 0.05: "
        "the result holds"
    )
    assert out[1]["verdict"] == (
        f"{borderline['verdict']}; p = {out[1]['p_value_holm']:.3g} adjusted for 3 packs (Holm), not below "
        "0.05: the result could be chance"
    )
    assert out[2]["verdict"] == f"{null['verdict']}; p = 1 adjusted for 3 packs (Holm), not below 0.05"
    # a single pack is its own family: nothing to adjust, the verdict stays
    [alone] = multiple.apply_holm([borderline])
    assert alone["p_value_holm"] == pytest.approx(raw[1]) and alone["verdict"] == borderline["verdict"]
    assert alone["conclusive"] is True


def test_holm_by_group_adjusts_each_run_date_alone() -> None:
    from statsmodels.stats.multitest import multipletests

    days = ["d1", "d2", "d1", "d1", "d2", "d3"]
    p = [0.01, 0.04, 0.03, None, 0.02, 0.2]
    out = multiple.holm_by_group(days, p)
    d1 = multipletests([0.01, 0.03], method="holm")[1]
    d2 = multipletests([0.04, 0.02], method="holm")[1]
    assert [o[0] for o in out] == [
        pytest.approx(d1[0]), pytest.approx(d2[0]), pytest.approx(d1[1]), None, pytest.approx(d2[1]), 0.2]  # fmt: skip
    assert [o[1] for o in out] == [2, 2, 2, 2, 2, 1]  # a pack without a p-value is not in the family
    assert multiple.holm_by_group(list(reversed(days)), list(reversed(p))) == list(
        reversed(out)
    )  # order-free
    with pytest.raises(DmpError, match="2 keys for 1 p-values"):
        multiple.holm_by_group(["a", "b"], [0.1])
