"""How latent state turns into observable behaviour: the parameters both the event
generator and the contract drivers use, so that what drives a decision is what the
data shows (up to sampling noise)."""

from __future__ import annotations

import numpy as np

import simulator.catalog as C

# daily probability that a human user is active: sigmoid(alpha_user + BETA_ENG * engagement + dow)
BETA_ENG = 1.2
BETA_ADMIN_VALUE = 0.9  # admins follow value realised more than day-to-day engagement
ALPHA_CHAMPION = 1.0
ALPHA_ADMIN = -0.6
ALPHA_CORE = (-1.6, 0.8)  # mean, sd for users in the account's core department
ALPHA_OTHER = (-2.6, 0.8)  # users elsewhere: they drop out first when engagement falls
SHARE_CORE = 0.45
WEEKEND = -2.2

# feature events per session: feature_events_per_session * exp(SESSION_ENG * e + SESSION_STAGE * stage)
SESSION_ENG, SESSION_STAGE = 0.25, 0.12
# breadth of the general features an account uses on a day (in features, of 14)
BREADTH = (4.5, 2.6, 1.0)  # intercept, engagement, stage
AI_SHARE = np.array([0.025, 0.08, 0.15])  # share of human feature events that are AI features
ADMIN_SHARE = 0.2  # share of an admin's feature events that are admin actions

# agents: runs per agent-day = rate * exp(AGENT_ENG * e); errors logit below
AGENT_ENG = 0.5
AGENT_ERR = (-2.2, -1.1, -0.3)  # intercept, value, stage
AGENT_QTY_SCALE = np.array([1.0, 0.05, 0.15, 0.3])  # credits per event type vs an agent run
AGENT_CREDITS_PER_EVENT = float((C.AGENT_EVENT_P * AGENT_QTY_SCALE).sum())
DAYS_PER_MONTH = 30.4

# tickets per account-day: TICKET_BASE * users^0.6 * exp(TICKET_VALUE * v + TICKET_STAGE * stage)
TICKET_BASE, TICKET_VALUE, TICKET_STAGE = 0.01, -0.7, 0.15


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _active_share_table() -> tuple[np.ndarray, np.ndarray]:
    """Expected share of provisioned users active at least once in 30 days, by engagement."""
    grid = np.linspace(-5.0, 5.0, 201)
    nodes, weights = np.polynomial.hermite_e.hermegauss(24)
    weights = weights / weights.sum()
    out = np.zeros_like(grid)
    for mean_sd, share in ((ALPHA_CORE, SHARE_CORE), (ALPHA_OTHER, 1 - SHARE_CORE)):
        alpha = mean_sd[0] + mean_sd[1] * nodes  # quadrature nodes
        logit = alpha[None, :] + BETA_ENG * grid[:, None]
        p_wd, p_we = sigmoid(logit), sigmoid(logit + WEEKEND)
        inactive = (1 - p_wd) ** (30 * 5 / 7) * (1 - p_we) ** (30 * 2 / 7)
        out += share * ((1 - inactive) * weights[None, :]).sum(axis=1)
    return grid, out


_GRID, _SHARE = _active_share_table()


def active_share(engagement: np.ndarray) -> np.ndarray:
    """Share of users active in a 30-day window at this engagement level."""
    return np.interp(engagement, _GRID, _SHARE)


def expected_usage(
    rate_sum: np.ndarray, engagement: np.ndarray, credit_scale: np.ndarray
) -> np.ndarray:
    """Expected metered credits per month from an account's agents."""
    return (
        DAYS_PER_MONTH
        * rate_sum
        * np.exp(AGENT_ENG * engagement)
        * credit_scale
        * AGENT_CREDITS_PER_EVENT
    )
