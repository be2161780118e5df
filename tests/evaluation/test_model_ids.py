"""One vocabulary of model ids: training metrics, MLflow metric names, backtest, config."""

from __future__ import annotations

from pathlib import Path

import yaml

from evaluation.backtest import MODEL_SUFFIX
from evaluation.config import EvalConfig
from features.names import MODELS

ROOT = Path(__file__).resolve().parents[2]


def test_config_files_with_the_former_ids_still_mean_the_same_models():
    cfg = EvalConfig.model_validate(
        {"backtest": {"models": ["lightgbm", "logistic", "health_score"]}}
    )
    assert cfg.backtest.models == ["lgbm", "logistic", "health"]
    assert EvalConfig.model_validate({"backtest": {"models": ["health"]}}).backtest.models == [
        "health"
    ]


def test_default_config_and_backtest_speak_the_training_ids():
    default = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    assert default["evaluation"]["backtest"]["models"] == list(MODELS)
    assert EvalConfig().backtest.models == list(MODELS)
    assert list(MODEL_SUFFIX) == list(MODELS)
