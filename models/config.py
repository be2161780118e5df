"""Typed settings of model training, calibration and segmentation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ModelConfig(BaseModel):
    """LightGBM parameters, time split and baselines."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 42
