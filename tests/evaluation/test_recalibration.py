"""A base-rate shift inflates ECE of a frozen model; quarterly recalibration restores it."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from evaluation.thresholds import _ece, calibrate_thresholds
from models.portable import apply_calibration


def _period(rng, start: str, months: int, intercept: float, n: int = 4000) -> pd.DataFrame:
    """Monthly snapshots of ``n`` accounts; churn ~ Bernoulli(sigmoid(intercept + x1 - x2))."""
    as_of = pd.date_range(start, periods=months, freq="MS")
    rows = n * months
    x = rng.normal(size=(rows, 2))
    p = 1 / (1 + np.exp(-(intercept + 1.2 * x[:, 0] - 0.8 * x[:, 1])))
    return pd.DataFrame(
        {
            "account_id": np.tile([f"A{i}" for i in range(n)], months),
            "as_of": np.repeat(as_of, n),
            "csm_id": np.tile([f"C{i % 40}" for i in range(n)], months),
            "x1": x[:, 0],
            "x2": x[:, 1],
            "label_churn": (rng.random(rows) < p).astype(float),
            "label_expand": (rng.random(rows) < 0.2).astype(float),
        }
    )


def test_recalibration_after_base_rate_shift():
    rng = np.random.default_rng(7)
    train = _period(rng, "2025-01-01", 6, intercept=-3.5)  # ~5% churn
    shifted_prev = _period(rng, "2025-11-01", 5, intercept=-2.3)  # ~13% churn from Nov
    shifted_next = _period(rng, "2026-04-01", 3, intercept=-2.3)  # the quarter scored

    model = LogisticRegression().fit(train[["x1", "x2"]], train["label_churn"])

    def raw(frame: pd.DataFrame) -> np.ndarray:
        return model.predict_proba(frame[["x1", "x2"]])[:, 1]

    ece_train = _ece(train["label_churn"].to_numpy(), raw(train))
    y_next = shifted_next["label_churn"].to_numpy()
    ece_uncalibrated = _ece(y_next, raw(shifted_next))

    # 2026Q2 thresholds: refit on the scores that matured during 2026Q1 (Dec and Jan as_of)
    scores = shifted_prev.assign(
        p_churn_raw=raw(shifted_prev), p_churn=raw(shifted_prev), p_expand=0.2
    )
    res = calibrate_thresholds(scores, quarter="2026Q2", horizon_days=60)
    assert res.window["as_of_min"] == "2025-12-01" and res.window["as_of_max"] == "2026-01-01"
    p_next = apply_calibration(res.calibrator["churn"], raw(shifted_next))
    ece_recalibrated = _ece(y_next, p_next)

    print(
        f"ECE: training period {ece_train:.4f}; after the shift, uncalibrated "
        f"{ece_uncalibrated:.4f}; after quarterly recalibration {ece_recalibrated:.4f}"
    )
    assert ece_train < 0.01
    assert ece_uncalibrated > 0.05
    assert ece_recalibrated < 0.015
    assert ece_recalibrated < ece_uncalibrated / 4
    assert res.metrics["churn_ece_issued"] > 0.05
