"""PSI against hand-computed values; NaN bin, constant and categorical columns; flags."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation.config import DriftConfig
from evaluation.drift import bin_shares, drift_between, drift_flags, drift_report, psi

EPS = 1e-4


def test_psi_with_a_nan_bin_by_hand():
    ref = np.arange(1.0, 11.0)  # median 5 -> bins (-inf, 5], (5, inf), NaN
    cur = np.array([1, 2, 3, 4, 5, 6, 7, 8, np.nan, np.nan])
    ref_share, cur_share, kind = bin_shares(ref, cur, bins=2)
    assert kind == "numeric"
    np.testing.assert_allclose(ref_share, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(cur_share, [0.5, 0.3, 0.2])
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.2 - EPS) * math.log(0.2 / EPS)
    assert psi(ref, cur, bins=2) == pytest.approx(expected, rel=1e-12)


def test_psi_quartiles_by_hand():
    ref = np.arange(100.0)  # quartile cuts 24, 49, 74 (observed values)
    cur = np.arange(50.0)  # all in the two lower bins
    expected = 2 * (0.5 - 0.25) * math.log(0.5 / 0.25) + 2 * (EPS - 0.25) * math.log(EPS / 0.25)
    assert psi(ref, cur, bins=4) == pytest.approx(expected, rel=1e-12)
    assert psi(ref, ref, bins=4) == 0.0
    # a value on a cut point falls in the lower bin (right-closed)
    _, cur_share, _ = bin_shares(ref, np.array([24.0, 24.5]), bins=4)
    np.testing.assert_allclose(cur_share, [0.5, 0.5, 0, 0, 0])


def test_constant_reference_gets_below_equal_above_bins():
    ref = np.full(8, 5.0)
    cur = np.array([4.0, 5.0, 5.0, 6.0])
    ref_share, cur_share, kind = bin_shares(ref, cur)
    assert kind == "constant"
    np.testing.assert_allclose(ref_share, [0, 1, 0, 0])
    np.testing.assert_allclose(cur_share, [0.25, 0.5, 0.25, 0])
    expected = 2 * (0.25 - EPS) * math.log(0.25 / EPS) + (0.5 - 1) * math.log(0.5)
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-12)
    assert psi(ref, np.full(3, 5.0)) == 0.0


def test_tied_reference_merges_bins():
    ref = np.r_[np.zeros(70), np.arange(1.0, 31.0)]  # 70% zeros
    ref_share, _, _ = bin_shares(ref, ref, bins=10)
    assert ref_share[0] == pytest.approx(0.7)  # one bin for the zeros, no empty bins
    assert (ref_share[:-1] > 0).all()


def test_categorical_with_unseen_and_missing():
    ref = pd.Series(["a", "a", "b", "b"], dtype="string")
    cur = pd.Series(["a", "b", "c", None], dtype="string")
    ref_share, cur_share, kind = bin_shares(ref, cur)
    assert kind == "categorical"
    np.testing.assert_allclose(ref_share, [0.5, 0.5, 0, 0])
    np.testing.assert_allclose(cur_share, [0.25, 0.25, 0.25, 0.25])
    expected = 2 * (0.25 - 0.5) * math.log(0.5) + 2 * (0.25 - EPS) * math.log(0.25 / EPS)
    assert psi(ref, cur) == pytest.approx(expected, rel=1e-12)


def test_drift_report_flags_and_order():
    rng = np.random.default_rng(3)
    n = 5000
    ref = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(size=n),
            "slight": rng.normal(size=n),
            "p_churn": rng.beta(1, 10, size=n),
            "name": ["x"] * n,
        }
    )
    cur = pd.DataFrame(
        {
            "stable": rng.normal(size=n),
            "shifted": rng.normal(1.0, 1.0, size=n),
            "slight": rng.normal(0.3, 1.0, size=n),
            "p_churn": rng.beta(1, 10, size=n),
            "name": ["x"] * n,
        }
    )
    rep = drift_report(ref, cur, config=DriftConfig(watch=0.05, alert=0.25))
    assert list(rep["column"][:2]) == ["shifted", "slight"]
    assert rep["psi"].is_monotonic_decreasing
    status = dict(zip(rep["column"], rep["status"], strict=True))
    assert status["shifted"] == "alert"
    assert status["slight"] == "watch"
    assert status["stable"] == "ok" and status["p_churn"] == "ok"
    assert "name" not in set(rep["column"])  # only numeric columns by default
    lines = drift_flags(rep)
    assert len(lines) == 2 and lines[0].startswith("shifted: PSI")
    with pytest.raises(ValueError, match="missing column"):
        drift_report(ref, cur.drop(columns="stable"), ["stable"])


def test_drift_between_windows_of_a_panel():
    as_of = pd.to_datetime(["2026-01-01"] * 4 + ["2026-02-01"] * 4 + ["2026-03-01"] * 4)
    panel = pd.DataFrame(
        {"as_of": as_of, "arr": [1.0, 2, 3, 4, 1, 2, 3, 4, 10, 20, 30, 40], "id": "a"}
    )
    rep = drift_between(
        panel, reference_as_of=("2026-01-01", "2026-02-01"), current_as_of="2026-03-01"
    )
    assert rep["column"].tolist() == ["arr"]
    assert rep.loc[0, "n_reference"] == 8 and rep.loc[0, "n_current"] == 4
    assert rep.loc[0, "status"] == "alert"
