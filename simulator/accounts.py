"""Firmographics and the opening book of business (plan, seats, term, add-ons, coverage)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import simulator.catalog as C
from simulator.config import SimConfig
from simulator.timeline import Timeline

# fmt: off
_NAME_A = np.array([
    "North", "Blue", "Bright", "Silver", "Iron", "Cedar", "Summit", "Harbor", "Pioneer", "Quantum",
    "Granite", "Lumen", "Vertex", "Atlas", "Crescent", "Maple", "Falcon", "Orbit", "Beacon",
    "Prairie", "Coral", "Nimbus", "Sterling", "Vector",
])
_NAME_B = np.array([
    "wind", "stone", "field", "bridge", "point", "works", "forge", "labs", "path", "river", "line",
    "gate", "wave", "peak", "light", "grove", "core", "shift", "stack", "loop",
])
_NAME_C = np.array([
    "Inc", "LLC", "Group", "Systems", "Partners", "Health", "Logistics", "Capital", "Retail",
    "Studio",
])
# fmt: on


@dataclass
class Accounts:
    """Per-account attributes fixed for the whole simulation (arrays of length n)."""

    n: int
    is_new: np.ndarray  # bool: acquired during the simulated period
    created_day: np.ndarray  # int64 day index (negative = before the start)
    created_us: np.ndarray  # int64 account record timestamp: 12-24 h before created_day
    dom: np.ndarray  # int64 day of month (2..28) of every contract date
    anchor_month: np.ndarray  # int64 relative month of the last contract change
    ref_day: np.ndarray  # int64: pre-roll start or creation day, whichever is later
    seats0: np.ndarray  # int64 seats at ref_day
    tier0: np.ndarray  # int64 plan tier at ref_day
    monthly: np.ndarray  # bool: month-to-month contract
    employees: np.ndarray  # int64
    tam: np.ndarray  # float64 true TAM (USD/year)
    tam_known: np.ndarray  # bool: whether the enrichment found it
    industry: np.ndarray  # int64 code into catalog.INDUSTRIES
    region: np.ndarray  # int64 code into catalog.REGIONS
    core_dept: np.ndarray  # int64 code into catalog.DEPARTMENTS
    fill: np.ndarray  # float64 desired users / seats at ref_day
    mu: np.ndarray  # float64 baseline engagement
    fit: np.ndarray  # float64 value realised beyond engagement (product fit)
    breadth0: np.ndarray  # float64 account offset of feature breadth
    feature_rank: np.ndarray  # int8 (n, len(GENERAL_FEATURES)): adoption order of features
    credit_scale: np.ndarray  # float64 mean credits of one agent run
    names: np.ndarray  # object

    def take(self, idx: np.ndarray) -> Accounts:
        """The accounts at positions `idx`, in that order."""
        fields = {k: v[idx] for k, v in vars(self).items() if isinstance(v, np.ndarray)}
        return Accounts(n=int(idx.shape[0]), **fields)


def make_accounts(
    cfg: SimConfig, tl: Timeline, rng: np.random.Generator, *, n_existing: int, n_new: int
) -> Accounts:
    """Draw firmographics, tenure and the opening contract of every account.

    The first `n_existing` accounts are customers before the pre-roll starts
    (`cfg.preroll_months` before the start) or join during it; the last `n_new`
    are acquired during the simulated months.
    """
    n, preroll = n_existing + n_new, cfg.preroll_months
    is_new = np.arange(n) >= n_existing
    dom = rng.integers(2, 29, n).astype(np.int64)

    # tenure at the start in months (existing); acquisition month (new)
    # (mean ~4 years: the book acquires roughly what it loses, as new_account_share implies)
    tenure = np.minimum(2 + np.floor(rng.exponential(45.0, n)), 120).astype(np.int64)
    created_month = np.where(is_new, rng.integers(0, tl.months, n), -tenure)
    created_day = tl.month_start(created_month) + dom - 1
    # the last contract change before the pre-roll: uniformly within two years before it
    before = np.where(is_new, 0, np.maximum(tenure - preroll, 0))
    back = np.floor(rng.random(n) * np.minimum(before, 24)).astype(np.int64)
    anchor_month = np.where(before > 0, -preroll - 1 - back, created_month)
    ref_day = np.maximum(created_day, tl.month_start(-preroll))

    median = np.where(is_new, cfg.seats_median * 0.6, cfg.seats_median)
    sigma = np.where(is_new, cfg.seats_sigma * 0.8, cfg.seats_sigma)
    seats = np.clip(np.round(median * np.exp(sigma * rng.standard_normal(n))), 1, 5000)
    seats = seats.astype(np.int64)

    u = rng.random(n)
    tier = np.select(
        [seats <= 10, seats <= 25, seats <= 150, seats <= 300],
        [
            (u > 0.75).astype(np.int64),
            np.where(u < 0.35, 0, np.where(u < 0.95, 1, 2)),
            np.where(u < 0.8, 1, 2),
            np.where(u < 0.35, 1, 2),
        ],
        default=2,
    ).astype(np.int64)

    w = np.exp(-0.45 * np.log(seats / cfg.seats_median))
    p_monthly = np.clip((1.0 - cfg.annual_share) * w / w.mean(), 0.0, 0.95)
    monthly = rng.random(n) < p_monthly
    monthly &= seats <= 150  # large accounts always sign annual paper

    adoption = np.clip(np.exp(np.log(0.04) + 0.9 * rng.standard_normal(n)), 0.001, 0.9)
    employees = np.minimum(np.maximum(seats, np.round(seats / adoption)), 500_000).astype(np.int64)
    potential = np.clip(np.exp(np.log(0.25) + 0.5 * rng.standard_normal(n)), 0.02, 1.0)
    arr_list = 12.0 * seats * C.TIER_PRICE[tier]
    tam = employees * potential * 12.0 * (C.TIER_PRICE[2] + C.ADDON_PRICE.sum())
    tam = np.maximum(np.round(np.maximum(tam, arr_list * (1.05 + rng.random(n))), -3), 1000.0)
    tam_known = rng.random(n) >= cfg.tam_unknown_share

    mu, fit = _survivors(before, seats, cfg, rng)
    breadth0 = 0.8 * rng.standard_normal(n)
    # each account adopts the general features in its own order, popular ones first
    popularity = np.linspace(2.0, 0.0, len(C.GENERAL_FEATURES))
    keys = popularity[None, :] + 1.2 * rng.standard_normal((n, len(C.GENERAL_FEATURES)))
    feature_rank = C.GENERAL_CODES[np.argsort(-keys, axis=1)].astype(np.int8)
    credit_scale = 40.0 * (seats / 7.0) ** 0.4 * np.exp(0.3 * rng.standard_normal(n))

    names = np.char.add(
        np.char.add(rng.choice(_NAME_A, n), rng.choice(_NAME_B, n)),
        np.char.add(" ", rng.choice(_NAME_C, n)),
    ).astype(object)

    return Accounts(
        n=n,
        is_new=is_new,
        created_day=created_day,
        created_us=tl.day_us(created_day) - rng.integers(12 * 3600, 24 * 3600, n) * 10**6,
        dom=dom,
        anchor_month=anchor_month,
        ref_day=ref_day,
        seats0=seats,
        tier0=tier,
        monthly=monthly,
        employees=employees,
        tam=tam,
        tam_known=tam_known,
        industry=rng.integers(0, len(C.INDUSTRIES), n),
        region=rng.choice(len(C.REGIONS), n, p=C.REGION_P),
        core_dept=rng.choice(len(C.DEPARTMENTS), n, p=_dept_p()),
        fill=rng.uniform(0.65, 1.1, n),
        mu=mu,
        fit=fit,
        breadth0=breadth0,
        feature_rank=feature_rank,
        credit_scale=credit_scale,
        names=names,
    )


def _survivors(
    tenure: np.ndarray, seats: np.ndarray, cfg: SimConfig, rng: np.random.Generator, k: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Baseline engagement and product fit of accounts that survived `tenure` months.

    A book observed today has already lost its weakest customers: an account with
    years of tenure passed several renewals. Each account draws `k` candidates and
    keeps one with probability proportional to surviving tenure/12 annual renewals
    at the default churn odds (importance resampling). The pre-roll then applies the
    full process (including the transient state) to the last `preroll_months`.
    """
    n = tenure.shape[0]
    mu = 0.65 * rng.standard_normal((n, k)) + 0.08 * (np.log(seats)[:, None] - 2.0)
    fit = 0.45 * rng.standard_normal((n, k))
    health = mu + 0.5 * fit
    churn = 1.0 / (1.0 + np.exp(1.7 - cfg.churn_shift + 1.5 * health))
    weight = (1.0 - churn) ** (tenure[:, None] / 12.0)
    cum = np.cumsum(weight, axis=1)
    pick = (rng.random(n)[:, None] * cum[:, -1:] >= cum).sum(axis=1)
    pick = np.minimum(pick, k - 1)
    rows = np.arange(n)
    return mu[rows, pick], fit[rows, pick]


def _dept_p() -> np.ndarray:
    w = np.array([3.0, 2.5, 2.0, 1.5, 2.0, 1.5, 1.2, 0.5, 1.0, 0.3])
    return w / w.sum()


def initial_addons(
    acc: Accounts, stage_at_ref: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Which accounts already own the AI-agents and analytics add-ons at ref_day."""
    has_ai = rng.random(acc.n) < np.array([0.04, 0.2, 0.5])[stage_at_ref]
    has_an = rng.random(acc.n) < 0.12 + 0.1 * (acc.tier0 >= 1)
    return has_ai, has_an


def assign_coverage(arr0: np.ndarray, cfg: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """Coverage tier mostly by ARR, as companies do today (code into catalog.COVERAGE)."""
    n = arr0.shape[0]
    ht, std = cfg.coverage_arr
    cov = np.where(arr0 >= ht, 0, np.where(arr0 >= std, 1, 2))
    off = rng.random(n) < cfg.coverage_noise
    step = np.where(rng.random(n) < 0.5, -1, 1)
    return np.where(off, np.clip(cov + step, 0, 2), cov)


def assign_csm(cov: np.ndarray, cfg: SimConfig, rng: np.random.Generator) -> np.ndarray:
    """A CSM number for every account, from a pool sized by the tier's book per CSM."""
    n = cov.shape[0]
    csm = np.zeros(n, dtype=np.int64)
    first = 0
    for code, tier in enumerate(C.COVERAGE):  # three tiers, not rows
        members = cov == code
        count = int(members.sum())
        n_csm = max(1, -(-count // cfg.accounts_per_csm[tier]))
        csm[members] = first + rng.integers(0, n_csm, count)
        first += n_csm
    return csm
