"""Typed settings of evaluation: thresholds, drift limits, NRR alerts, backtest.

Default values live only in ``configs/default.yaml`` (section ``evaluation:``); see
`features.config_source`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from features.config_source import ConfigSection
from models.config import CalibrationMethod

_FORMER_MODEL_IDS = {"lightgbm": "lgbm", "health_score": "health"}


class ThresholdConfig(ConfigSection):
    """How the quarterly alert thresholds are chosen.

    Weekly flags per CSM = (flagged account-weeks in the window) / (scoring weeks in the
    window) / (number of CSMs); see :mod:`evaluation.thresholds` for the exact rule.
    """

    yaml_section: ClassVar[str] = "evaluation.thresholds"

    churn_flags_per_csm_week_min: float = Field(ge=0)
    churn_flags_per_csm_week_max: float = Field(gt=0)
    expand_target_precision: float = Field(gt=0, le=1)
    # Fewer flagged rows than this make a precision too noisy to set a threshold on.
    expand_min_flags: int = Field(ge=1)
    # What to do when no threshold meets the band / target: take the nearest one and say
    # so in the result ("nearest"), or raise ThresholdError ("raise").
    on_unmet: Literal["nearest", "raise"]
    # Passed to models.calibrate.ProbabilityCalibrator ("auto": pchip, beta or sigmoid,
    # the best by log loss on the latest dates of the window; all keep the ranking).
    calibration_method: CalibrationMethod

    @model_validator(mode="after")
    def _band_ordered(self) -> ThresholdConfig:
        if self.churn_flags_per_csm_week_min > self.churn_flags_per_csm_week_max:
            raise ValueError(
                "churn_flags_per_csm_week_min must not exceed churn_flags_per_csm_week_max"
            )
        return self


class DriftConfig(ConfigSection):
    """Population stability index bins and the limits that raise a flag."""

    yaml_section: ClassVar[str] = "evaluation.drift"

    bins: int = Field(ge=2)
    watch: float = Field(ge=0)
    alert: float = Field(ge=0)
    # Floor on a bin's share so that an empty bin gives a large but finite PSI.
    epsilon: float = Field(gt=0, lt=0.01)
    # Bins of the reference holding less than this share are merged into a neighbour:
    # discrete features (counts, streaks) tie on a few values and their thin tail bins
    # would otherwise turn sampling noise into PSI.
    min_bin_share: float = Field(ge=0, lt=0.5)

    @model_validator(mode="after")
    def _limits_ordered(self) -> DriftConfig:
        if self.watch > self.alert:
            raise ValueError("drift watch limit must not exceed the alert limit")
        return self


class NRRConfig(ConfigSection):
    """NRR analytics: the quarter-on-quarter move that raises an alert."""

    yaml_section: ClassVar[str] = "evaluation.nrr"

    alert_points: float = Field(gt=0)
    # Past quarters used to learn typical expansion / contraction sizes for the forecast.
    forecast_history_quarters: int = Field(ge=1)


class BacktestConfig(ConfigSection):
    """Rolling-origin backtest by quarter."""

    yaml_section: ClassVar[str] = "evaluation.backtest"

    models: list[str]

    @field_validator("models", mode="before")
    @classmethod
    def _former_ids(cls, value: Any) -> Any:
        """Configuration files written before the ids were unified say ``lightgbm`` and
        ``health_score``; they mean `features.names.MODELS`' ``lgbm`` and ``health``."""
        if isinstance(value, list):
            return [_FORMER_MODEL_IDS.get(v, v) if isinstance(v, str) else v for v in value]
        return value

    # A quarter with fewer matured rows before it is an error (too little to train on).
    min_train_rows: int = Field(ge=1)
    ece_bins: int = Field(ge=2)
    top_fraction: float = Field(gt=0, le=1)


class EvalConfig(ConfigSection):
    """Limits and targets used when judging models and setting thresholds."""

    yaml_section: ClassVar[str] = "evaluation"

    thresholds: ThresholdConfig
    drift: DriftConfig
    nrr: NRRConfig
    backtest: BacktestConfig
