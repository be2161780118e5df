"""The 1-D probability calibrator: lowers ECE, and 'auto' picks the method by held-out log loss."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from evaluation.metrics import brier, expected_calibration_error
from models.calibrate import ProbabilityCalibrator


def _overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores sqrt(p) for true probabilities p: far too high, same ranking."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.2, 12.0, n)
    return np.sqrt(p), rng.binomial(1, p).astype(float)


@pytest.mark.parametrize("method", ["auto", "pchip", "beta", "isotonic", "sigmoid"])
def test_calibration_lowers_ece_on_fresh_rows(method):
    raw_fit, y_fit = _overconfident(6000, seed=1)
    raw_new, y_new = _overconfident(20000, seed=2)
    cal = ProbabilityCalibrator(method, random_state=0).fit(raw_fit, y_fit)
    before = expected_calibration_error(y_new, raw_new)
    after = expected_calibration_error(y_new, cal.predict(raw_new))
    assert before > 0.15
    assert after < 0.015
    assert brier(y_new, cal.predict(raw_new)) < brier(y_new, raw_new)
    # monotone: the ranking of accounts is unchanged (up to isotonic ties)
    order = np.argsort(raw_new)
    assert (np.diff(cal.predict(raw_new)[order]) >= -1e-12).all()


def test_auto_picks_smoothed_isotonic_for_a_step_shaped_truth():
    rng = np.random.default_rng(3)
    raw = rng.uniform(0.01, 0.99, 8000)
    p = np.where(raw < 0.5, 0.03, 0.5)  # no sigmoid of logit(raw) can follow a step
    y = rng.binomial(1, p).astype(float)
    cal = ProbabilityCalibrator("auto", random_state=0).fit(raw, y)
    assert cal.selection_ == "kfold"
    assert cal.log_loss_["pchip"] < min(cal.log_loss_["sigmoid"], cal.log_loss_["beta"])
    assert cal.method_ == "pchip"


def test_auto_picks_a_parametric_map_when_isotonic_overfits_few_rows():
    rng = np.random.default_rng(4)
    raw = rng.uniform(0.02, 0.98, 300)
    z = 0.6 * np.log(raw / (1 - raw)) - 1.0
    y = rng.binomial(1, 1 / (1 + np.exp(-z))).astype(float)
    groups = np.repeat(
        np.array(["2025-01-01", "2025-02-01", "2025-03-01"], dtype="datetime64[D]"), 100
    )
    cal = ProbabilityCalibrator("auto", random_state=0).fit(raw, y, groups=groups)
    assert cal.selection_ == "time"  # fitted on Jan-Feb, compared on March
    assert min(cal.log_loss_["sigmoid"], cal.log_loss_["beta"]) < cal.log_loss_["pchip"]
    assert cal.method_ in ("sigmoid", "beta")


def test_fixed_method_and_round_trip():
    raw, y = _overconfident(2000, seed=5)
    cal = ProbabilityCalibrator("isotonic").fit(raw, y)
    assert cal.method_ == "isotonic" and cal.selection_ == "fixed" and cal.brier_ == {}
    again = pickle.loads(pickle.dumps(cal))
    np.testing.assert_array_equal(again.predict(raw), cal.predict(raw))
    out = cal.predict(np.array([0.0, 0.5, 1.0, np.nan]))
    assert np.isnan(out[3]) and ((out[:3] > 0) & (out[:3] < 1)).all()


def test_unusable_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="both outcomes"):
        ProbabilityCalibrator().fit([0.1, 0.2, 0.3], [0, 0, 0])
    with pytest.raises(ValueError, match="NaN"):
        ProbabilityCalibrator().fit([0.1, np.nan], [0, 1])
    with pytest.raises(ValueError, match="method="):
        ProbabilityCalibrator("spline").fit([0.1, 0.2], [0, 1])
    with pytest.raises(ValueError, match="1-D"):
        ProbabilityCalibrator().fit(np.ones((3, 2)), [0, 1, 0])
