"""People and AI agents: who can generate events, from when to when.

Human users are provisioned month by month: an account has min(seats wanted,
seats contracted) users; when demand or seats fall the newest users are
deactivated, when they grow new users are invited. The first user is the
champion and an admin. AI-agent identities appear as the account moves up the
maturity ladder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import simulator.behaviour as B
import simulator.catalog as C
from simulator.accounts import Accounts
from simulator.config import SimConfig
from simulator.contracts import ContractHistory
from simulator.intervals import expand_ranges
from simulator.latent import NEVER, Latent
from simulator.timeline import Timeline


@dataclass
class Agents:
    acct: np.ndarray  # int64
    first_day: np.ndarray  # int64 day the identity starts running
    rate: np.ndarray  # float64 runs per day at engagement 0

    def take(self, idx: np.ndarray) -> Agents:
        """Agents of the accounts at positions `idx`, renumbered like them."""
        new_pos = np.full(int(max(self.acct.max(initial=0), idx.max(initial=0))) + 1, -1)
        new_pos[idx] = np.arange(idx.shape[0])
        pos = new_pos[self.acct]
        mask = pos >= 0
        return Agents(acct=pos[mask], first_day=self.first_day[mask], rate=self.rate[mask])


def make_agents(
    acc: Accounts, lat: Latent, tl: Timeline, cfg: SimConfig, rng: np.random.Generator
) -> Agents:
    """Agent identities created as accounts reach Builder and Transformer (and a few early ones)."""
    n = acc.n
    count0 = (rng.random(n) < 0.2).astype(np.int64)
    count1 = 1 + rng.poisson(0.3, n)
    count2 = 1 + rng.poisson(0.8 + 0.3 * np.log(acc.seats0))
    # when the stage was reached before the burn-in, the agents date from before it too
    pre = np.where(
        acc.created_day < -tl.burn_in,
        acc.created_day + np.floor(rng.random(n) * (-tl.burn_in - acc.created_day)),
        acc.created_day,
    ).astype(np.int64)
    parts = []
    for count, day in (
        (count0, acc.created_day),
        (np.where(lat.stage_day[:, 0] < NEVER, count1, 0), lat.stage_day[:, 0]),
        (np.where(lat.stage_day[:, 1] < NEVER, count2, 0), lat.stage_day[:, 1]),
    ):
        base = np.where(day < -tl.burn_in, pre, np.maximum(day, acc.created_day))
        owner, _ = expand_ranges(np.zeros(n, dtype=np.int64), count)
        parts.append((owner, base[owner]))
    acct = np.concatenate([p[0] for p in parts])
    first = np.concatenate([p[1] for p in parts]) + rng.integers(0, 31, acct.shape[0])
    rate = (
        cfg.agent_runs_per_day
        * (acc.seats0[acct] / 7.0) ** 0.3
        * np.exp(-0.18 + 0.6 * rng.standard_normal(acct.shape[0]))
    )
    keep = first < tl.n_days
    return Agents(acct=acct[keep], first_day=first[keep], rate=rate[keep])


@dataclass
class Users:
    """All identities, sorted by account then first active day; row = user index."""

    acct: np.ndarray  # int64
    active_from: np.ndarray  # int64 first day with activity
    active_to: np.ndarray  # int64 first day without (NEVER if still active at data end)
    is_agent: np.ndarray  # bool
    admin: np.ndarray  # bool
    dept: np.ndarray  # int64 code, -1 for agents
    alpha: np.ndarray  # float32 activity propensity (humans)
    rate: np.ndarray  # float32 runs per day (agents)
    created_us: np.ndarray  # int64 creation timestamp (microseconds since epoch)


def _new_humans(
    acc: Accounts, owner: np.ndarray, slot: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Attributes of freshly invited users (slot = position in the account's seat list)."""
    m = owner.shape[0]
    n_admin = 1 + (acc.seats0[owner] > 15) + (acc.seats0[owner] > 80)
    admin = slot < n_admin
    core = (slot < 3) | (rng.random(m) < B.SHARE_CORE)
    other = rng.choice(len(C.DEPARTMENTS), m, p=_other_p())
    dept = np.where(core, acc.core_dept[owner], other)
    core = dept == acc.core_dept[owner]
    z = rng.standard_normal(m)
    alpha = np.where(
        core,
        B.ALPHA_CORE[0] + B.ALPHA_CORE[1] * z,
        B.ALPHA_OTHER[0] + B.ALPHA_OTHER[1] * z,
    )
    alpha = np.where(admin, B.ALPHA_ADMIN, alpha)
    alpha = np.where(slot == 0, B.ALPHA_CHAMPION, alpha)
    return {"acct": owner, "slot": slot, "admin": admin, "dept": dept, "alpha": alpha}


def _other_p() -> np.ndarray:
    w = np.array([1.5, 2.0, 2.0, 1.5, 1.5, 1.5, 1.2, 0.8, 1.0, 0.4])
    return w / w.sum()


def make_users(
    acc: Accounts,
    lat: Latent,
    hist: ContractHistory,
    agents: Agents,
    tl: Timeline,
    rng: np.random.Generator,
) -> Users:
    """Provision human users month by month and attach the agents; returns sorted users."""
    n, months = acc.n, tl.months
    ms = tl.month_start(np.arange(months + 1))
    cols = tl.col(ms[:months])
    growth_ref = lat.log_growth[tl.col(acc.ref_day), np.arange(n)]
    demand = (acc.fill * acc.seats0)[:, None] * np.exp(lat.log_growth[cols].T - growth_ref[:, None])
    target = np.where(hist.seats_ms > 0, np.clip(np.floor(demand), 1, hist.seats_ms), 0).astype(
        np.int64
    )

    batches: list[dict[str, np.ndarray]] = []
    current = np.zeros(n, dtype=np.int64)
    # opening users: existing accounts at the start, new accounts at their creation
    at_creation = np.clip(np.floor(acc.fill * acc.seats0), 1, acc.seats0).astype(np.int64)
    start_count = np.where(acc.is_new, at_creation, np.maximum(target[:, 0], 1))
    owner, slot = expand_ranges(np.zeros(n, dtype=np.int64), start_count)
    first = np.where(
        acc.is_new[owner],
        acc.created_day[owner] + rng.integers(0, 8, owner.shape[0]),
        acc.created_day[owner]
        + np.floor(rng.random(owner.shape[0]) * (-acc.created_day[owner])).astype(np.int64),
    )
    first = np.where(slot == 0, acc.created_day[owner], first)
    b = _new_humans(acc, owner, slot, rng)
    b["first"], b["last"] = first, np.full(owner.shape[0], NEVER, dtype=np.int64)
    batches.append(b)
    current[:] = start_count
    started = ~acc.is_new | (acc.created_day < ms[1])

    for m in range(1, months):  # month starts; each step vectorised over accounts
        t = ms[m]
        live = started & (hist.seats_ms[:, m] > 0)
        want = np.where(live, target[:, m], current)
        grow = np.flatnonzero(want > current)
        if grow.size:
            owner, slot = expand_ranges(current[grow], want[grow] - current[grow])
            owner = grow[owner]
            b = _new_humans(acc, owner, slot, rng)
            b["first"] = t + rng.integers(0, ms[m + 1] - t, owner.shape[0])
            b["last"] = np.full(owner.shape[0], NEVER, dtype=np.int64)
            batches.append(b)
        shrink = want < current
        if shrink.any():
            for b in batches:  # a handful of batches, each vectorised
                drop = shrink[b["acct"]] & (b["slot"] >= want[b["acct"]]) & (b["last"] == NEVER)
                b["last"][drop] = t
        current = want
        started |= acc.created_day < ms[m + 1]

    hum = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    # everyone leaves at churn; identities that never start inside the data are dropped
    hum["last"] = np.minimum(hum["last"], hist.churn_day[hum["acct"]])
    keep = (hum["first"] < hum["last"]) & (hum["first"] < tl.n_days)
    hum = {k: v[keep] for k, v in hum.items()}

    a_last = hist.churn_day[agents.acct]
    a_keep = agents.first_day < a_last
    n_h, n_a = hum["acct"].shape[0], int(a_keep.sum())
    acct = np.concatenate([hum["acct"], agents.acct[a_keep]])
    first = np.concatenate([hum["first"], agents.first_day[a_keep]])
    order = np.lexsort((first, acct))
    created = tl.day_us(first) - rng.integers(0, 12 * 3600 * 10**6, n_h + n_a)
    cat = {
        "acct": acct,
        "active_from": first,
        "active_to": np.concatenate([hum["last"], a_last[a_keep]]),
        "is_agent": np.r_[np.zeros(n_h, bool), np.ones(n_a, bool)],
        "admin": np.r_[hum["admin"], np.zeros(n_a, bool)],
        "dept": np.r_[hum["dept"], np.full(n_a, -1)],
        "alpha": np.r_[hum["alpha"], np.zeros(n_a)].astype(np.float32),
        "rate": np.r_[np.zeros(n_h), agents.rate[a_keep]].astype(np.float32),
        "created_us": created,
    }
    return Users(**{k: v[order] for k, v in cat.items()})
