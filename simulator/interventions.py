"""What a CSM touch does to an account's decisions: heterogeneous, driver-matched effects.

A touch is one play run on one account. Every play belongs to a *family* that addresses
one real cause of churn or one real route to expansion. Its effect is a shift of the
log-odds of the account's next decisions:

- churn: ``-churn_effect * match * persuadable(health)``. ``match`` is 1 when the play's
  family is the account's real churn driver (support pain for an account whose realised
  value trails its engagement -- the state that raises its ticket rate --, low adoption
  otherwise), ``generic_match`` for relationship plays (executive sponsor, renewal plan),
  and ``mismatch`` for a play aimed at the wrong cause. ``persuadable`` is a bump in the
  account's health (mean of engagement and realised value): near zero for accounts that
  stay anyway (healthy) or are lost anyway (very unhealthy), 1 at ``persuadable_center``.
- expansion: ``+expand_effect * match`` on every expansion outcome, where the account's
  real expansion driver is seat pressure (demand above 85% of seats), usage near the plan
  limit, or AI maturity without the AI add-on; an account with none of them responds only
  to the generic share of a breadth play.

The effects are the simulator's assumptions, set in `TouchEffects`; nothing here is fitted
to reach a result. `bench/policy.py` reports how conclusions move with them.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

CHURN_FAMILIES = ("support", "adoption")
EXPAND_FAMILIES = ("seats", "usage", "ai")
GENERIC_CHURN, GENERIC_EXPAND = "relationship", "breadth"
FAMILIES = (*CHURN_FAMILIES, *EXPAND_FAMILIES, GENERIC_CHURN, GENERIC_EXPAND)
NO_DRIVER = "none"

#: the family of every play name nrrcast's playbooks use (configs/default.yaml)
PLAY_FAMILY: dict[str, str] = {
    "Support escalation": "support",
    "Workflow review": "support",
    "Adoption plan": "adoption",
    "Re-engagement": "adoption",
    "Accelerate adoption": "adoption",
    "Prove value in 90 days": "adoption",
    "Executive sponsor": GENERIC_CHURN,
    "Renewal plan": GENERIC_CHURN,
    "Strategic partnership": GENERIC_CHURN,
    "Seat expansion": "seats",
    "Plan upgrade": "usage",
    "AI add-on expansion": "ai",
    "Cross-team expansion": GENERIC_EXPAND,
    "Efficient expansion and advocacy": GENERIC_EXPAND,
}


class TouchEffects(BaseModel):
    """Sizes of a touch's effect on decision log-odds (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    churn_effect: float = Field(1.0, ge=0.0, description="churn log-odds cut, matched play")
    expand_effect: float = Field(0.6, ge=0.0, description="expansion log-odds gain, matched")
    generic_match: float = Field(0.35, ge=0.0, le=1.0, description="share for generic plays")
    mismatch: float = Field(0.1, ge=0.0, le=1.0, description="share for a wrong-cause play")
    persuadable_center: float = Field(-0.8, description="health where a touch helps most")
    persuadable_width: float = Field(0.8, gt=0.0, description="spread of that bump")
    seat_pressure: float = Field(0.85, gt=0.0, description="demand/seats for a seats driver")
    usage_pressure: float = Field(0.6, gt=0.0, description="usage/limit for a usage driver")


class ActionsConfig(BaseModel):
    """Logged CSM touches in the simulated book (the `actions` table), off by default.

    When on, from the first simulated month every paying high-touch account is flagged
    each month; a random `holdout_share` of the flagged accounts is held out (logged with
    ``holdout = true``, not touched) and the others get one play, the one that matches
    their real driver with probability `csm_skill` (else a play of a random family). The
    touches then replace the flat churn effect of high-touch coverage.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    holdout_share: float = Field(0.2, ge=0.0, le=1.0)
    csm_skill: float = Field(0.5, ge=0.0, le=1.0, description="P(play matches the driver)")


#: the play name logged for a touch of each family
FAMILY_PLAY: dict[str, str] = {}
for _play, _family in PLAY_FAMILY.items():
    FAMILY_PLAY.setdefault(_family, _play)


def choose_families(
    cause: np.ndarray, route: np.ndarray, skill: float, rng: np.random.Generator
) -> np.ndarray:
    """The play family a CSM runs: the real driver's with probability `skill`.

    The driver is the churn cause, or the expansion route for accounts that have one and
    whose health is good (a CSM grows a healthy account and saves a struggling one).
    """
    n = cause.shape[0]
    right = np.where(route != NO_DRIVER, route, cause)
    u, pick = rng.random(n), rng.integers(0, len(FAMILIES), n)
    return np.where(u < skill, right, np.array(FAMILIES, dtype=object)[pick])


def family_of(plays: np.ndarray | list[str]) -> np.ndarray:
    """Family of each play name (unknown names are treated as relationship plays)."""
    return np.array([PLAY_FAMILY.get(str(p), GENERIC_CHURN) for p in plays], dtype=object)


def churn_driver(engagement: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The real cause of an account's churn risk: 'support' or 'adoption'."""
    return np.where(np.asarray(value) < np.asarray(engagement) - 0.25, "support", "adoption")


def expand_driver(
    demand_ratio: np.ndarray,
    usage_ratio: np.ndarray,
    stage: np.ndarray,
    has_ai: np.ndarray,
    fx: TouchEffects,
) -> np.ndarray:
    """The real route to an account's expansion ('seats', 'usage', 'ai' or 'none')."""
    out = np.full(np.shape(demand_ratio), NO_DRIVER, dtype=object)
    out[(np.asarray(stage) >= 1) & ~np.asarray(has_ai, dtype=bool)] = "ai"
    out[np.asarray(usage_ratio) >= fx.usage_pressure] = "usage"
    out[np.asarray(demand_ratio) >= fx.seat_pressure] = "seats"
    return out


def persuadable(health: np.ndarray, fx: TouchEffects) -> np.ndarray:
    """How much a touch can move this account's churn decision (0..1)."""
    z = (np.asarray(health, dtype=float) - fx.persuadable_center) / fx.persuadable_width
    return np.exp(-0.5 * z * z)


def logit_shifts(
    family: np.ndarray,
    churn_cause: np.ndarray,
    expand_route: np.ndarray,
    health: np.ndarray,
    fx: TouchEffects,
) -> tuple[np.ndarray, np.ndarray]:
    """(churn, expansion) log-odds shifts of a touch by play `family` on each account.

    Parameters
    ----------
    family : array of str, shape (n,)
        Family of the play run on each account ('' or None = not touched).
    churn_cause, expand_route : array of str, shape (n,)
        The accounts' real drivers (`churn_driver`, `expand_driver`).
    health : array of float, shape (n,)
        Mean of engagement and realised value when the decision is read.
    fx : TouchEffects

    Returns
    -------
    (d_churn, d_expand) : two float arrays of shape (n,); zero where not touched.
    """
    fam = np.asarray(family, dtype=object)
    churn_match = np.where(
        fam == churn_cause,
        1.0,
        np.where(
            fam == GENERIC_CHURN,
            fx.generic_match,
            np.where(_is(fam, CHURN_FAMILIES), fx.mismatch, 0.0),
        ),
    )
    has_route = expand_route != NO_DRIVER
    expand_match = np.where(
        (fam == expand_route) & has_route,
        1.0,
        np.where(
            fam == GENERIC_EXPAND,
            fx.generic_match,
            np.where(_is(fam, EXPAND_FAMILIES), fx.mismatch * has_route, 0.0),
        ),
    )
    d_churn = -fx.churn_effect * churn_match * persuadable(health, fx)
    d_expand = fx.expand_effect * expand_match
    return d_churn.astype(float), d_expand.astype(float)


def _is(fam: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    return np.isin(fam.astype(str), list(names))
