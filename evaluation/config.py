"""Typed settings of evaluation: thresholds, drift limits, NRR alerts, backtest."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ThresholdConfig(BaseModel):
    """How the quarterly alert thresholds are chosen.

    Weekly flags per CSM = (flagged account-weeks in the window) / (scoring weeks in the
    window) / (number of CSMs); see :mod:`evaluation.thresholds` for the exact rule.
    """

    model_config = ConfigDict(extra="forbid")

    churn_flags_per_csm_week_min: float = Field(10.0, ge=0)
    churn_flags_per_csm_week_max: float = Field(20.0, gt=0)
    expand_target_precision: float = Field(0.25, gt=0, le=1)
    # Fewer flagged rows than this make a precision too noisy to set a threshold on.
    expand_min_flags: int = Field(20, ge=1)
    # What to do when no threshold meets the band / target: take the nearest one and say
    # so in the result ("nearest"), or raise ThresholdError ("raise").
    on_unmet: Literal["nearest", "raise"] = "nearest"
    # Passed to models.calibrate.ProbabilityCalibrator ("auto": pchip, beta or sigmoid,
    # the best by log loss on the latest dates of the window; all keep the ranking).
    calibration_method: Literal["auto", "pchip", "beta", "sigmoid", "isotonic"] = "auto"

    @model_validator(mode="after")
    def _band_ordered(self) -> ThresholdConfig:
        if self.churn_flags_per_csm_week_min > self.churn_flags_per_csm_week_max:
            raise ValueError(
                "churn_flags_per_csm_week_min must not exceed churn_flags_per_csm_week_max"
            )
        return self


class DriftConfig(BaseModel):
    """Population stability index bins and the limits that raise a flag."""

    model_config = ConfigDict(extra="forbid")

    bins: int = Field(10, ge=2)
    watch: float = Field(0.10, ge=0)
    alert: float = Field(0.25, ge=0)
    # Floor on a bin's share so that an empty bin gives a large but finite PSI.
    epsilon: float = Field(1e-4, gt=0, lt=0.01)
    # Bins of the reference holding less than this share are merged into a neighbour:
    # discrete features (counts, streaks) tie on a few values and their thin tail bins
    # would otherwise turn sampling noise into PSI.
    min_bin_share: float = Field(0.05, ge=0, lt=0.5)

    @model_validator(mode="after")
    def _limits_ordered(self) -> DriftConfig:
        if self.watch > self.alert:
            raise ValueError("drift watch limit must not exceed the alert limit")
        return self


class NRRConfig(BaseModel):
    """NRR analytics: the quarter-on-quarter move that raises an alert."""

    model_config = ConfigDict(extra="forbid")

    alert_points: float = Field(20.0, gt=0)
    # Past quarters used to learn typical expansion / contraction sizes for the forecast.
    forecast_history_quarters: int = Field(4, ge=1)


class BacktestConfig(BaseModel):
    """Rolling-origin backtest by quarter."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = ["lightgbm", "logistic", "health_score"]
    # A quarter with fewer matured rows before it is an error (too little to train on).
    min_train_rows: int = Field(500, ge=1)
    ece_bins: int = Field(10, ge=2)
    top_fraction: float = Field(0.10, gt=0, le=1)


class EvalConfig(BaseModel):
    """Limits and targets used when judging models and setting thresholds."""

    model_config = ConfigDict(extra="forbid")

    thresholds: ThresholdConfig = ThresholdConfig()
    drift: DriftConfig = DriftConfig()
    nrr: NRRConfig = NRRConfig()
    backtest: BacktestConfig = BacktestConfig()
