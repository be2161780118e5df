"""Typed settings of evaluation: thresholds, drift limits, NRR alerts."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class EvalConfig(BaseModel):
    """Limits and targets used when judging models and setting thresholds."""

    model_config = ConfigDict(extra="forbid")
