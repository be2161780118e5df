"""Metrics against values computed by hand on tiny arrays; single-class slices give NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evaluation.metrics import (
    binary_metrics,
    brier,
    calibration_table,
    expected_calibration_error,
    lift_table,
    log_loss,
    pr_auc,
    precision_at_k,
    roc_auc,
    segment_masks,
    slice_metrics,
)

Y = np.array([0, 0, 1, 1, 0, 1])
P = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.6])


def test_ranking_metrics_by_hand():
    # 8 of the 9 (positive, negative) pairs are ordered correctly: 0.35 < 0.4
    assert roc_auc(Y, P) == pytest.approx(8 / 9)
    # ranked: 0.8(+) 0.6(+) 0.4(-) 0.35(+): precision at each positive 1, 1, 3/4
    assert pr_auc(Y, P) == pytest.approx((1 + 1 + 0.75) / 3)
    assert precision_at_k(Y, P, 2) == 1.0
    assert precision_at_k(Y, P, 3) == pytest.approx(2 / 3)
    assert precision_at_k(Y, P, 100) == pytest.approx(0.5)


def test_probability_metrics_by_hand():
    assert brier(Y, P) == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04 + 0.04 + 0.16) / 6)
    expected = (
        -(
            math.log(0.9)
            + math.log(0.6)
            + math.log(0.35)
            + math.log(0.8)
            + math.log(0.8)
            + math.log(0.6)
        )
        / 6
    )
    assert log_loss(Y, P) == pytest.approx(expected)
    # two equal-frequency bins: {0.1, 0.2, 0.35} with 1 positive, {0.4, 0.6, 0.8} with 2
    gap_low = abs(1 / 3 - 0.65 / 3)
    gap_high = abs(2 / 3 - 1.8 / 3)
    assert expected_calibration_error(Y, P, n_bins=2) == pytest.approx((gap_low + gap_high) / 2)
    t = calibration_table(Y, P, n_bins=2)
    assert t["n"].tolist() == [3, 3]
    assert t["frac_pos"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert expected_calibration_error([0, 1], [0.0, 1.0]) == 0.0


def test_ties_share_the_remaining_slots():
    y = np.array([1, 0, 0, 1])
    p = np.array([0.9, 0.5, 0.5, 0.5])
    # one sure hit, then 1 slot among 3 tied rows holding 1 positive: (1 + 1/3) / 2
    assert precision_at_k(y, p, 2) == pytest.approx((1 + 1 / 3) / 2)
    # the result does not depend on the order of tied rows
    assert precision_at_k(y[::-1], p[::-1], 2) == pytest.approx((1 + 1 / 3) / 2)


def test_binary_metrics_lift_and_top_decile():
    m = binary_metrics(Y, P, top_fraction=1 / 3, k=3, n_bins=2)
    assert m["n"] == 6 and m["positives"] == 3 and m["base_rate"] == 0.5
    assert m["precision_top"] == 1.0  # top third = 2 rows: 0.8 and 0.6
    assert m["lift_top"] == pytest.approx(2.0)
    assert m["precision_at_k"] == pytest.approx(2 / 3)
    lt = lift_table(Y, P, n_bins=3)
    assert lt["positives"].tolist() == [2, 1, 0]  # {0.8, 0.6}, {0.4, 0.35}, {0.2, 0.1}
    assert lt["lift"].tolist() == pytest.approx([2.0, 1.0, 0.0])
    assert lt["cum_capture"].iloc[-1] == pytest.approx(1.0)


def test_single_class_slice_gives_nan_not_an_error():
    y = np.zeros(5)
    p = np.linspace(0.1, 0.5, 5)
    m = binary_metrics(y, p)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"]) and math.isnan(m["lift_top"])
    assert m["brier"] == pytest.approx(np.mean(p**2))
    assert np.isfinite(m["log_loss"]) and np.isfinite(m["ece"])
    assert math.isnan(roc_auc(np.ones(3), [0.2, 0.3, 0.4]))


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="0/1"):
        brier([0, np.nan], [0.1, 0.2])
    with pytest.raises(ValueError, match="non-finite"):
        brier([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="rows"):
        brier([0, 1, 1], [0.1, 0.2])


def test_slice_metrics_per_segment():
    frame = pd.DataFrame({"coverage": ["a", "b", "b", "a", None, "b"]})
    masks = segment_masks(frame, "coverage")
    assert set(masks) == {"a", "b", "<missing>"}
    out = slice_metrics(Y, P, {**masks, "empty": np.zeros(6, bool)}, n_bins=2)
    assert set(out) == {"a", "b", "<missing>"}
    assert out["a"]["n"] == 2 and out["a"]["roc_auc"] == 1.0  # 0.1(-) < 0.8(+)
    assert out["b"]["roc_auc"] == pytest.approx(0.5)  # 0.35(+) < 0.4(-) < 0.6(+)
    assert math.isnan(out["<missing>"]["roc_auc"])  # one row
