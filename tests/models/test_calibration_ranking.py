"""Issued probabilities keep the model's ranking and are stored as numbers, not pickles."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from evaluation.metrics import expected_calibration_error, pr_auc, roc_auc
from models.calibrate import ProbabilityCalibrator
from models.calibrate import fit_calibrator as fit_quarterly
from models.portable import apply_calibration


def _book(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores that are too confident at the top and too timid at the bottom."""
    rng = np.random.default_rng(seed)
    p = 0.003 + 0.9 * rng.beta(0.8, 9.0, n)
    raw = 1.0 / (1.0 + np.exp(-(1.7 * np.log(p / (1 - p)) + 1.2)))
    return raw, rng.binomial(1, p).astype(float)


@pytest.mark.parametrize("method", ["auto", "pchip", "beta", "sigmoid"])
def test_ranking_methods_keep_every_distinct_score_and_the_aucs(method):
    raw_fit, y_fit = _book(8000, seed=1)
    raw_new, y_new = _book(30000, seed=2)
    cal = ProbabilityCalibrator(method, random_state=0).fit(raw_fit, y_fit)
    out = cal.predict(raw_new)
    order = np.argsort(raw_new)
    assert (np.diff(out[order]) > 0).all()  # strictly increasing: no plateaus
    assert len(np.unique(out)) == len(np.unique(raw_new))
    assert roc_auc(y_new, out) == pytest.approx(roc_auc(y_new, raw_new), abs=1e-12)
    assert pr_auc(y_new, out) == pytest.approx(pr_auc(y_new, raw_new), abs=1e-12)
    assert (
        expected_calibration_error(y_new, out) < 0.015 < expected_calibration_error(y_new, raw_new)
    )


def test_isotonic_steps_are_what_auto_avoids():
    raw_fit, y_fit = _book(8000, seed=1)
    raw_new, _ = _book(30000, seed=2)
    iso = ProbabilityCalibrator("isotonic").fit(raw_fit, y_fit).predict(raw_new)
    assert len(np.unique(iso)) < 0.05 * len(np.unique(raw_new))
    auto = ProbabilityCalibrator("auto", random_state=0).fit(raw_fit, y_fit)
    assert auto.method_ != "isotonic" and set(auto.log_loss_) == {"pchip", "beta", "sigmoid"}


@pytest.mark.parametrize("method", ["pchip", "beta", "sigmoid", "isotonic"])
def test_numbers_in_yaml_reproduce_the_calibrator_exactly(method):
    raw, y = _book(5000, seed=3)
    cal = ProbabilityCalibrator(method).fit(raw, y)
    text = yaml.safe_dump(cal.to_params())
    params = yaml.safe_load(text)
    probe = np.concatenate([raw, [0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0]])
    np.testing.assert_array_equal(apply_calibration(params, probe), cal.predict(probe))
    again = ProbabilityCalibrator.from_params(params)
    np.testing.assert_array_equal(again.predict(probe), cal.predict(probe))
    assert "!!python" not in text


def test_quarterly_refit_uses_the_same_ranking_preserving_choice():
    raw, y = _book(6000, seed=4)
    groups = np.repeat(np.arange("2026-01-05", "2026-03-30", 7, dtype="datetime64[D]"), 500)
    q = fit_quarterly(raw, y, "auto", groups=groups)
    m = ProbabilityCalibrator("auto").fit(raw, y, groups=groups)
    assert q.method_ == m.method_ and q.selection_ == "time"
    np.testing.assert_array_equal(q.predict(raw), m.predict(raw))


def test_unknown_stored_method_is_a_clear_error():
    with pytest.raises(ValueError, match="calibration method 'spline'"):
        apply_calibration({"method": "spline"}, [0.1])
