"""Support tickets: more of them, more urgent and less satisfied when value realised is low."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import simulator.behaviour as B
from simulator.accounts import Accounts
from simulator.contracts import ContractHistory
from simulator.latent import Latent
from simulator.timeline import Timeline
from simulator.users import Users

US_PER_HOUR = 3_600_000_000
#: median hours to close by priority (low, normal, high, urgent)
CLOSE_HOURS = np.array([70.0, 30.0, 12.0, 5.0])


@dataclass
class Tickets:
    acct: np.ndarray  # int64
    created_us: np.ndarray  # int64
    priority: np.ndarray  # int64 code into catalog.PRIORITIES
    closed_us: np.ndarray  # int64, -1 = still open at data end
    csat: np.ndarray  # int64, 0 = no answer


def make_tickets(
    acc: Accounts,
    lat: Latent,
    hist: ContractHistory,
    users: Users,
    tl: Timeline,
    rng: np.random.Generator,
) -> Tickets:
    """Tickets per account-day, month by month (vectorised over accounts and days)."""
    ms = tl.month_start(np.arange(tl.months + 1))
    humans = ~users.is_agent
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    for m in range(tl.months):  # months; each vectorised over accounts x days
        d0, d1 = int(ms[m]), int(ms[m + 1])
        live_users = humans & (users.active_from < d1) & (users.active_to > d0)
        n_users = np.bincount(users.acct[live_users], minlength=acc.n)
        idx = np.flatnonzero(n_users > 0)
        days = np.arange(d0, d1)
        c0, c1 = tl.col(d0), tl.col(d1)
        alive = (days[None, :] >= acc.created_day[idx, None]) & (
            days[None, :] < hist.churn_day[idx, None]
        )
        lam = (
            B.TICKET_BASE
            * n_users[idx, None] ** 0.6
            * np.exp(
                B.TICKET_VALUE * lat.value[c0:c1, idx].T + B.TICKET_STAGE * lat.stage[c0:c1, idx].T
            )
            * alive
        )
        k = rng.poisson(lam)
        rr, cc = np.nonzero(k)
        reps = k[rr, cc]
        parts.append((np.repeat(idx[rr], reps), np.repeat(days[cc], reps)))
    acct = np.concatenate([p[0] for p in parts])
    day = np.concatenate([p[1] for p in parts])
    t = acct.shape[0]
    v = lat.value[tl.col(day), acct].astype(np.float64)
    logit = np.stack([np.full(t, 0.3), np.full(t, 1.0), -0.6 - 0.5 * v, -2.0 - 0.7 * v], axis=1)
    prob = np.exp(logit)
    prob /= prob.sum(axis=1, keepdims=True)
    priority = np.minimum((rng.random(t)[:, None] >= np.cumsum(prob, axis=1)).sum(axis=1), 3)
    created = tl.day_us(day) + rng.integers(6 * US_PER_HOUR, 22 * US_PER_HOUR, t)
    hours = CLOSE_HOURS[priority] * np.exp(-0.2 * v + 1.0 * rng.standard_normal(t))
    closed = created + (hours * US_PER_HOUR).astype(np.int64)
    closed = np.where(closed < tl.day_us(tl.n_days), closed, -1)
    answered = (closed >= 0) & (rng.random(t) < 0.45)
    score = np.round(3.9 + 0.55 * v - 0.3 * (priority >= 2) + 0.9 * rng.standard_normal(t))
    csat = np.where(answered, np.clip(score, 1, 5), 0).astype(np.int64)
    order = np.lexsort((created, acct))
    return Tickets(acct[order], created[order], priority[order], closed[order], csat[order])
