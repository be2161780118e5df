"""Settings of the territory rebalancing and of its migration plan.

Their own module so that `models.territories` (which builds the problem) and
`models.territory_solvers` (which solves it) both import them without importing each other.
Default values live only in ``configs/default.yaml`` (section ``territories:``); see
`features.config_source`. Coverage tiers are checked against `features.names` when they load.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from features.config_source import ConfigSection, require_known
from features.names import COVERAGE_LEVELS

__all__ = ["MigrationConfig", "TerritoryConfig"]


class MigrationConfig(ConfigSection):
    """How the moves and tier changes are phased (see `models.territory_plan`)."""

    yaml_section: ClassVar[str] = "territories.plan"

    waves: int = Field(ge=1, le=12, description="phases of the migration")
    first_wave_days: int = Field(ge=0, description="days from as_of to the first wave")
    wave_gap_days: int = Field(ge=1, description="days between waves")
    templates_dir: str = Field(description="Jinja2 templates of the announcement and notices")


class TerritoryConfig(ConfigSection):
    """Settings of the rebalancing (section ``territories:`` of configs/default.yaml)."""

    yaml_section: ClassVar[str] = "territories"

    tiers: list[str] = Field(description="coverage tiers served by a named CSM")
    renewal_window_days: int = Field(
        ge=0, description="accounts renewing within this many days stay with their CSM"
    )
    renewal_min_term_months: int = Field(
        ge=0,
        description="only contracts with at least this term (months) are held by the renewal "
        "window; 0: all (monthly contracts renew every month, so they never move); needs the "
        "book's term_months",
    )
    keep_at_risk: bool = Field(description="accounts at risk stay with their CSM")
    max_moves_per_csm: int = Field(
        ge=0, description="accounts one CSM may give up, and take on, this quarter"
    )
    capacity_first: bool = Field(
        description="a CSM over capacity may hand over more accounts than the move cap, "
        "up to its excess of high-touch accounts",
    )
    capacity: int | None = Field(
        ge=0,
        description="high-touch accounts per CSM when the csms table gives none; "
        "null: segment.coverage.accounts_per_csm",
    )
    max_load: float | None = Field(gt=0, description="optional cap on a CSM's load")
    move_cost: float = Field(ge=0, description="load units a move must gain to be worth making")
    spread_weight: float = Field(
        ge=0, description="weight of (max load - min load) next to the total deviation"
    )
    method: Literal["milp", "greedy"]
    time_limit_seconds: float = Field(gt=0, description="HiGHS time limit")
    mip_rel_gap: float = Field(ge=0, lt=1, description="relative optimality gap accepted")
    candidates_per_account: int = Field(
        ge=1, description="receiving CSMs offered to each account that may move"
    )
    run_with_scoring: bool = Field(description="rebalance at the end of every scoring run")
    plan: MigrationConfig

    @model_validator(mode="after")
    def _tiers_known(self) -> TerritoryConfig:
        require_known(f"{self.yaml_section}.tiers", self.tiers, COVERAGE_LEVELS, "coverage level")
        return self
