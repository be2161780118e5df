"""Typed settings of the simulated SaaS world."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SimConfig(BaseModel):
    """How large the simulated book is and where it starts."""

    model_config = ConfigDict(extra="forbid")

    accounts: int = 2000
    months: int = 18
    seed: int = 7
    start: str = "2025-05-01"
