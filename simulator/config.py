"""Typed settings of the simulated SaaS world.

The defaults produce a book that looks like a mid-market B2B SaaS company:
1-3% monthly logo churn concentrated at renewals, annual NRR around 100-110%,
a few percent of accounts expanding by 10% or more in any 60-day window.
The `*_shift` knobs move the log-odds of churn, contraction and expansion
decisions for worlds that are deliberately healthier or sicker.

The keys of the ``simulate:`` section of ``configs/default.yaml`` (size, seed, start, label
definitions, workers) take their defaults only from there (see `features.config_source`), so
``SimConfig()`` is the book the CLI generates; callers wanting a small world say its size. The
behaviour knobs the file does not list keep their defaults here, their one place.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from features.config_source import ConfigSection
from features.names import COVERAGE_LEVELS
from simulator.interventions import ActionsConfig, TouchEffects


class SimConfig(ConfigSection):
    """How large the simulated book is, where it starts, and how it behaves."""

    yaml_section: ClassVar[str] = "simulate"

    # size and reproducibility
    accounts: int = Field(ge=1, le=2_000_000, description="accounts in the book")
    months: int = Field(ge=1, le=120, description="calendar months of history")
    seed: int = Field(description="same seed, same world (byte for byte)")
    start: str = Field(description="first simulated day (ISO date)")

    # labels the `truth` table is exact for (must match features.horizon_days / expansion_pct)
    horizon_days: int = Field(ge=1, le=120, description="label horizon H in days")
    expansion_pct: float = Field(gt=0.0, lt=1.0, description="expansion/contraction x")

    # book composition
    new_account_share: float = Field(
        0.2, ge=0.0, lt=1.0, description="share of accounts acquired during the simulated period"
    )
    annual_share: float = Field(0.72, ge=0.0, le=1.0, description="share of annual contracts")
    seats_median: float = Field(6.0, gt=0.0, description="median seats of an existing account")
    seats_sigma: float = Field(1.15, ge=0.0, le=3.0, description="log-normal spread of seats")
    tam_unknown_share: float = Field(0.04, ge=0.0, le=1.0, description="accounts with null TAM")
    accounts_per_csm: dict[str, int] = Field(
        default_factory=lambda: {"high_touch": 18, "standard": 90, "digital": 400},
        description="book size of one CSM by coverage tier",
    )
    coverage_arr: tuple[float, float] = Field(
        (60_000.0, 12_000.0),
        description="ARR at or above which an account is high_touch, standard (else digital)",
    )
    coverage_noise: float = Field(0.08, ge=0.0, le=1.0, description="share assigned off-rule")

    # behaviour volume
    feature_events_per_session: float = Field(
        1.5, gt=0.0, description="mean feature events after a login at engagement 0"
    )
    agent_runs_per_day: float = Field(1.3, ge=0.0, description="runs of a typical agent per day")

    # decision log-odds shifts (0 = calibrated defaults)
    churn_shift: float = Field(0.0, description="added to the log-odds of churn")
    contraction_shift: float = Field(0.0, description="added to the log-odds of contractions")
    expansion_shift: float = Field(0.0, description="added to the log-odds of expansions")

    # what a CSM touch does (the truth table's `*_touched` columns and `simulator.rollout`)
    touch: TouchEffects = Field(default_factory=TouchEffects)
    actions: ActionsConfig = Field(default_factory=ActionsConfig)

    # execution
    workers: int = Field(ge=1, le=64, description="threads generating and writing event parts")
    row_group_size: int = Field(2_000_000, ge=10_000, description="rows per event row group")
    compression: Literal["lz4", "snappy", "zstd", "gzip", "none"] = Field(
        "lz4", description="codec of the event parts"
    )
    preroll_months: int = Field(
        12,
        ge=0,
        le=36,
        description="months of contract decisions run before the start, so the opening book "
        "has been through renewals like a real one (history shows in subscriptions)",
    )
    burn_in_days: int = Field(
        540, ge=90, le=3000, description="latent days simulated before the start"
    )

    @field_validator("start")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        date.fromisoformat(value)
        return value

    @field_validator("accounts_per_csm")
    @classmethod
    def _tiers(cls, value: dict[str, int]) -> dict[str, int]:
        need = set(COVERAGE_LEVELS)
        if set(value) != need or min(value.values()) < 1:
            raise ValueError(f"needs positive counts for exactly {sorted(need)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SimConfig:
        if self.coverage_arr[0] < self.coverage_arr[1]:
            raise ValueError("coverage_arr: high_touch threshold must be >= standard threshold")
        need = 31 * self.preroll_months + self.horizon_days
        if self.burn_in_days < need:
            # decisions (from the pre-roll on) read the state horizon_days before they happen
            raise ValueError(f"burn_in_days must be >= 31 * preroll_months + horizon_days ({need})")
        return self

    @property
    def start_date(self) -> date:
        """The first simulated day (inclusive)."""
        return date.fromisoformat(self.start)
