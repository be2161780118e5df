"""Typed settings of the feature and label computation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class FeatureConfig(BaseModel):
    """Windows, horizon and label thresholds used to build the snapshot panel."""

    model_config = ConfigDict(extra="forbid")

    horizon_days: int = 60
    expansion_pct: float = 0.10
    snapshot_freq: str = "monthly"
