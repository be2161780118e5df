"""The hidden state of every account, day by day.

- engagement: baseline + a fast AR(1) (half-life ~4 weeks, with champion-loss and
  new-initiative shocks) + a slow AR(1) (multi-month trends);
- value realised: follows engagement (plus product fit) with a ~7-week lag;
- AI maturity stage: Experimenter -> Builder -> Transformer, faster when engaged;
- demand growth: the log-index of how many seats the account wants, drifting with
  engagement and with the room it has to grow (TAM vs ARR).

The state is exogenous to contracts (it does not react to them), which lets the
contract process and the `truth` table be computed from it exactly. Observable
behaviour (events, tickets, users) is a noisy function of this state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.accounts import Accounts
from simulator.timeline import Timeline

PHI_FAST, SD_FAST = 0.975, 0.55
PHI_SLOW, SD_SLOW = 0.997, 0.45
SHOCK_DOWN_P, SHOCK_DOWN = 1 / 500, -1.2
SHOCK_UP_P, SHOCK_UP = 1 / 900, 0.8
VALUE_LAG_DAYS, VALUE_NOISE = 50.0, 0.02
GROWTH = (0.0, 0.022, 0.003)  # monthly log-growth: intercept, per engagement, per room
GROWTH_NOISE = 0.006
STAGE_UP = ((-8.4, 0.9, 0.5), (-9.0, 0.9, 0.7))  # daily logit: intercept, engagement, value


@dataclass
class Latent:
    """Daily latent arrays, time-major: shape (burn_in + days, accounts); row = day + burn_in.

    Time-major keeps each day's update a contiguous write and hands the event
    generator day-major blocks directly.
    """

    engagement: np.ndarray  # float32
    value: np.ndarray  # float32
    stage: np.ndarray  # int8
    log_growth: np.ndarray  # float32 cumulative log demand growth
    stage_day: np.ndarray  # int64 (n, 2): first day index at stage >= 1 / >= 2 (see below)

    # stage_day is -burn_in - 1 when the stage was already reached before the burn-in,
    # and a large number when it is never reached.

    def take(self, idx: np.ndarray) -> Latent:
        """The state of the accounts at positions `idx`, in that order."""
        return Latent(
            engagement=np.take(self.engagement, idx, axis=1),
            value=np.take(self.value, idx, axis=1),
            stage=np.take(self.stage, idx, axis=1),
            log_growth=np.take(self.log_growth, idx, axis=1),
            stage_day=self.stage_day[idx],
        )


NEVER = 10**9


def simulate_latent(
    acc: Accounts, room: np.ndarray, tl: Timeline, rng: np.random.Generator
) -> Latent:
    """Evolve the hidden state of all accounts over burn-in + simulated days."""
    n, width = acc.n, tl.width
    eng = np.empty((width, n), dtype=np.float32)
    val = np.empty((width, n), dtype=np.float32)
    stage = np.empty((width, n), dtype=np.int8)
    growth = np.empty((width, n), dtype=np.float32)

    f32 = np.float32
    sig_fast = f32(SD_FAST * np.sqrt(1 - PHI_FAST**2))
    sig_slow = f32(SD_SLOW * np.sqrt(1 - PHI_SLOW**2))
    mu, fit = acc.mu.astype(f32), acc.fit.astype(f32)
    x = (SD_FAST * rng.standard_normal(n)).astype(f32)
    w = (SD_SLOW * rng.standard_normal(n)).astype(f32)
    v = (acc.mu + acc.fit + w + 0.3 * rng.standard_normal(n)).astype(f32)
    p1 = 1 / (1 + np.exp(-(-1.2 + 1.2 * acc.mu)))
    p2 = 1 / (1 + np.exp(-(-1.6 + 1.2 * acc.mu)))
    u = rng.random(n)
    s = np.where(u < p1, np.where(rng.random(n) < p2, 2, 1), 0).astype(np.int8)
    stage_day = np.full((n, 2), NEVER, dtype=np.int64)
    stage_day[s >= 1, 0] = -tl.burn_in - 1
    stage_day[s >= 2, 1] = -tl.burn_in - 1
    g = np.zeros(n, dtype=f32)
    drift = ((GROWTH[0] + GROWTH[2] * room) / 30.4).astype(f32)
    stage_a = np.array([STAGE_UP[0][0], STAGE_UP[1][0], 0.0], dtype=f32)
    stage_e = np.array([STAGE_UP[0][1], STAGE_UP[1][1], 0.0], dtype=f32)
    stage_v = np.array([STAGE_UP[0][2], STAGE_UP[1][2], 0.0], dtype=f32)

    for c in range(width):  # days, each step vectorised over accounts (float32: cache-sized)
        z = rng.standard_normal((4, n), dtype=f32)
        shock, climb = rng.random((2, n), dtype=f32)
        x = f32(PHI_FAST) * x + sig_fast * z[0]
        x += np.where(shock < SHOCK_DOWN_P, f32(SHOCK_DOWN), f32(0.0))
        x += np.where(shock > 1 - SHOCK_UP_P, f32(SHOCK_UP), f32(0.0))
        w = f32(PHI_SLOW) * w + sig_slow * z[1]
        e = mu + x + w
        v += (e + fit - v) / f32(VALUE_LAG_DAYS) + f32(VALUE_NOISE) * z[2]
        g += drift + f32(GROWTH[1] / 30.4) * e + f32(GROWTH_NOISE) * z[3]
        logit = stage_a[s] + stage_e[s] * e + stage_v[s] * v
        step = (climb < 1 / (1 + np.exp(-logit))) & (s < 2)
        if step.any():
            s = s + step.astype(np.int8)
            day = c - tl.burn_in
            stage_day[step & (s == 1), 0] = day
            stage_day[step & (s == 2), 1] = day
        eng[c] = e
        val[c] = v
        stage[c] = s
        growth[c] = g
    return Latent(engagement=eng, value=val, stage=stage, log_growth=growth, stage_day=stage_day)
