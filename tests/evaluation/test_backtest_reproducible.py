"""Same panel, config and seed give the same backtest, whatever the process-wide RNG holds.

Two runs of the backtest used to differ: the quarterly recalibration chose its method
('auto': pchip, beta or sigmoid) on shuffled folds drawn from numpy's global RNG, which a
new process seeds from the OS. Each run below starts from a different global RNG state.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from models_synth import FEATURES, synthetic_panel

from evaluation.backtest import models_trainer, rolling_backtest
from evaluation.config import EvalConfig
from models.calibrate import ProbabilityCalibrator
from models.config import ModelConfig


@pytest.fixture
def global_rng():
    """Seed numpy's global RNG in a test and put back its previous state afterwards.

    The legacy global RNG is what is under test: unseeded library code draws from it.
    """
    state = np.random.get_state()  # noqa: NPY002
    yield np.random.seed
    np.random.set_state(state)  # noqa: NPY002


def test_auto_calibrator_choice_ignores_the_global_rng(global_rng):
    rng = np.random.default_rng(3)
    p = rng.uniform(0.01, 0.4, 3000)
    y = (rng.random(3000) < p**1.3).astype(float)
    fits = []
    for seed in (0, 1):
        global_rng(seed)
        # one snapshot date: no time-ordered holdout, so the choice uses folds
        fits.append(ProbabilityCalibrator("auto").fit(p, y, groups=np.zeros(3000)))
    assert fits[0].selection_ == "kfold"
    assert fits[0].log_loss_ == fits[1].log_loss_
    assert fits[0].params_ == fits[1].params_


def test_rolling_backtest_twice_gives_identical_tables(global_rng, caplog):
    caplog.set_level(logging.ERROR)  # the synthetic panel lacks some health-score inputs
    panel = synthetic_panel(n_accounts=400, months=20, seed=1)
    panel["arr"] = 10_000.0
    panel["csm_id"] = [f"C{i % 7}" for i in range(len(panel))]
    cfg = ModelConfig.model_validate({"lgbm": {"n_estimators": 80, "num_threads": 1}})
    runs = []
    for seed in (0, 1):
        global_rng(seed)
        runs.append(
            rolling_backtest(
                panel,
                ["2025Q4"],
                models_trainer(cfg, FEATURES, allow_unpurged=True),
                config=EvalConfig.model_validate({"backtest": {"min_train_rows": 100}}),
            )
        )
    a, b = runs
    # a one-date calib slice: the recalibration chooses its method on folds
    assert a.splits["2025Q4"]["calib_dates"] == ["2025-08-01"]
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    assert a.thresholds == b.thresholds
