"""Settings of the territory rebalancing and of its migration plan.

Their own module so that `models.territories` (which builds the problem) and
`models.territory_solvers` (which solves it) both import them without importing each other.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Coverage", "MigrationConfig", "TerritoryConfig"]

Coverage = Literal["digital", "standard", "high_touch"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MigrationConfig(_Section):
    """How the moves and tier changes are phased (see `models.territory_plan`)."""

    waves: int = Field(3, ge=1, le=12, description="phases of the migration")
    first_wave_days: int = Field(14, ge=0, description="days from as_of to the first wave")
    wave_gap_days: int = Field(30, ge=1, description="days between waves")
    templates_dir: str = Field(
        "configs/territories", description="Jinja2 templates of the announcement and notices"
    )


class TerritoryConfig(_Section):
    """Settings of the rebalancing (section ``territories:`` of configs/default.yaml)."""

    tiers: list[Coverage] = Field(
        default_factory=lambda: ["high_touch", "standard"],
        description="coverage tiers served by a named CSM",
    )
    renewal_window_days: int = Field(
        90, ge=0, description="accounts renewing within this many days stay with their CSM"
    )
    renewal_min_term_months: int = Field(
        0,
        ge=0,
        description="only contracts with at least this term (months) are held by the renewal "
        "window; 0: all (monthly contracts renew every month, so they never move); needs the "
        "book's term_months",
    )
    keep_at_risk: bool = Field(True, description="accounts at risk stay with their CSM")
    max_moves_per_csm: int = Field(
        6, ge=0, description="accounts one CSM may give up, and take on, this quarter"
    )
    capacity_first: bool = Field(
        True,
        description="a CSM over capacity may hand over more accounts than the move cap, "
        "up to its excess of high-touch accounts",
    )
    capacity: int | None = Field(
        None,
        ge=0,
        description="high-touch accounts per CSM when the csms table gives none; "
        "null: segment.coverage.accounts_per_csm",
    )
    max_load: float | None = Field(None, gt=0, description="optional cap on a CSM's load")
    move_cost: float = Field(
        0.25, ge=0, description="load units a move must gain to be worth making"
    )
    spread_weight: float = Field(
        10.0, ge=0, description="weight of (max load - min load) next to the total deviation"
    )
    method: Literal["milp", "greedy"] = "milp"
    time_limit_seconds: float = Field(60.0, gt=0, description="HiGHS time limit")
    mip_rel_gap: float = Field(0.01, ge=0, lt=1, description="relative optimality gap accepted")
    candidates_per_account: int = Field(
        8, ge=1, description="receiving CSMs offered to each account that may move"
    )
    run_with_scoring: bool = Field(False, description="rebalance at the end of every scoring run")
    plan: MigrationConfig = MigrationConfig()
