"""Roll a simulated book forward under a coverage policy: who is touched changes outcomes.

`Rollout` takes a built world (`simulator.world.build_world`) at a month start and walks
its contract decisions forward month by month with the same mechanics as the world's own
contract walk (`simulator.contracts`), except that

- the coverage effect of the world (a flat churn cut for high-touch accounts) is replaced
  by the touches the policy chooses, each with its play (`simulator.interventions`);
- every account's decision in every month uses one pre-drawn uniform number, so two
  policies differ only where their touches change a decision (common random numbers:
  the comparison of policies carries no noise of its own).

The cohort is the accounts paying at the start month; accounts created later are not
part of it (NRR and GRR are measured on a starting cohort).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import simulator.interventions as I
from simulator.config import SimConfig
from simulator.contracts import (
    CHURN,
    N_KINDS,
    Book,
    DriverReader,
    apply,
    arr_of,
    cooldown_months,
    outcome_arr,
    probabilities,
    touch_shift,
)
from simulator.latent import NEVER


@dataclass
class QuarterResult:
    """Outcome of one stretch of months for the cohort."""

    arr_start: np.ndarray  # ARR of every account at the start of the stretch
    arr_end: np.ndarray  # ... and at its end (0 after churn)
    churned: np.ndarray  # bool: churned during the stretch
    touched: np.ndarray  # bool


def book_at(world, day: int) -> tuple[Book, np.ndarray, np.ndarray]:
    """The contracted book of every account on `day`, from the world's subscription rows.

    Returns (book, anchor month, paying mask). Accounts not paying on `day` get seats 0.
    """
    rows, n, tl = world.hist.rows, world.acc.n, world.tl
    open_ = (rows["start"] <= day) & (rows["end"] > day)
    acct, product = rows["acct"][open_], rows["product"][open_]
    core = product == 0
    tier = np.zeros(n, np.int64)
    seats = np.zeros(n, np.int64)
    monthly = world.acc.monthly.copy()
    anchor = np.full(n, -(10**6), np.int64)
    tier[acct[core]] = rows["plan"][open_][core]
    seats[acct[core]] = rows["seats"][open_][core]
    monthly[acct[core]] = rows["term"][open_][core] == 1
    anchor[acct[core]] = tl.month_of_day(rows["start"][open_][core])
    ai = np.zeros(n, bool)
    an = np.zeros(n, bool)
    ai[acct[product == 1]] = True
    an[acct[product == 2]] = True
    return Book(tier, seats, monthly, ai, an), anchor, seats > 0


class Rollout:
    """The cohort paying at `start_month`, walked forward under chosen touches.

    Parameters
    ----------
    world : simulator.world.World (from `build_world`, same `cfg`).
    cfg : SimConfig of the world; ``cfg.touch`` sets the touch effects.
    start_month : relative month (0 = the world's first month) where the roll-out starts.
    seed : seed of the decision draws (shared by every policy compared).
    months : months the draws cover (the longest roll-out to be run).
    """

    def __init__(self, world, cfg: SimConfig, start_month: int, *, seed: int, months: int):
        self.world, self.cfg, self.tl = world, cfg, world.tl
        self.month = start_month
        self.end_month = start_month + months
        if start_month < 1 or self.end_month > world.tl.months:
            raise ValueError(
                f"the world has {world.tl.months} months: a roll-out of {months} months from "
                f"month {start_month} needs months 1..{self.end_month}"
            )
        day0 = int(self.tl.month_start(start_month))
        self.book, self.anchor, paying = book_at(world, day0)
        self.cohort = paying & (world.acc.created_day <= day0)
        self.churn_day = np.where(self.cohort, NEVER, -1).astype(np.int64)
        self.arr0 = np.where(self.cohort, arr_of(self.book), 0.0)
        self._u = np.random.default_rng(np.random.SeedSequence([seed, 4242])).random(
            (months, world.acc.n)
        )
        self._m0 = start_month
        no_coverage = np.zeros(world.acc.n, dtype=bool)  # touches replace the coverage effect
        self._drivers = DriverReader(world.acc, world.lat, world.agents, world.tl, no_coverage)
        self._cool = cooldown_months(cfg.horizon_days)

    @property
    def alive(self) -> np.ndarray:
        """Accounts of the cohort still paying."""
        return self.cohort & (self.churn_day == NEVER)

    @property
    def arr(self) -> np.ndarray:
        """Current ARR of every account (0 outside the cohort or after churn)."""
        return np.where(self.alive, arr_of(self.book), 0.0)

    def _point(self, idx: np.ndarray, m: int) -> tuple:
        day = self.tl.month_start(m) + self.world.acc.dom[idx] - 1
        k = m - self.anchor[idx]
        bk = self.book.take(idx)
        x = self._drivers(idx, bk, day - self.cfg.horizon_days, k)
        return bk, x, day, k >= self._cool

    def advance(self, months: int, family: np.ndarray | None = None) -> QuarterResult:
        """Walk `months` months; `family[i]` is the play family run on account i ('' = none).

        Parameters
        ----------
        months : int
        family : array of str, shape (accounts,), optional

        Returns
        -------
        QuarterResult of the stretch.
        """
        n = self.world.acc.n
        fam = np.full(n, "", dtype=object) if family is None else np.asarray(family, object)
        arr_start = self.arr
        start_alive = self.alive
        for m in range(self.month, self.month + months):
            if m >= self.end_month:
                raise ValueError("the roll-out ran past the months its draws cover")
            idx = np.flatnonzero(self.alive)
            bk, x, day, ok = self._point(idx, m)
            shift = touch_shift(x, bk, self.cfg, fam[idx])
            prob = probabilities(bk, x, self.cfg, shift, decides=ok)
            u = self._u[m - self._m0, idx]
            kind = np.minimum((u[:, None] >= np.cumsum(prob, axis=1)).sum(axis=1), N_KINDS - 1)
            ch = kind != 0
            if ch.any():
                cidx = idx[ch]
                self.book.put(cidx, apply(bk.take(np.flatnonzero(ch)), kind[ch],
                                          self.cfg.expansion_pct))  # fmt: skip
                self.anchor[cidx] = m
                gone = kind[ch] == CHURN
                self.churn_day[cidx[gone]] = day[ch][gone]
        self.month += months
        return QuarterResult(
            arr_start=arr_start,
            arr_end=self.arr,
            churned=start_alive & ~self.alive,
            touched=fam != "",
        )

    def touch_value(self, months: int, family: np.ndarray) -> np.ndarray:
        """Exact expected ARR change over the next `months` months with minus without a touch.

        For every live account: the expected ARR change from its first contract change in
        the stretch (the book frozen at today's contract otherwise), under a touch by
        `family[i]` minus untouched. This is the account's true treatment effect in dollars,
        which the oracle policy ranks by and against which uplift models are judged.
        """
        n = self.world.acc.n
        out = np.zeros(n)
        idx = np.flatnonzero(self.alive)
        if idx.shape[0] == 0:
            return out
        bk = self.book.take(idx)
        arr0 = arr_of(bk)
        gain = outcome_arr(bk, self.cfg.expansion_pct) - arr0[:, None]
        fam = np.asarray(family, dtype=object)
        value = {False: np.zeros(idx.shape[0]), True: np.zeros(idx.shape[0])}
        surv = {False: np.ones(idx.shape[0]), True: np.ones(idx.shape[0])}
        for m in range(self.month, self.month + months):
            _, x, _, ok = self._point(idx, m)
            for touched in (False, True):
                shift = touch_shift(x, bk, self.cfg, fam[idx]) if touched else None
                prob = probabilities(bk, x, self.cfg, shift, decides=ok)
                value[touched] += surv[touched] * (prob * gain).sum(axis=1)
                surv[touched] *= prob[:, 0]
        out[idx] = value[True] - value[False]
        return out

    def best_family(self, months: int) -> tuple[np.ndarray, np.ndarray]:
        """(family, value): the play family with the largest true touch value per account."""
        n = self.world.acc.n
        best_v = np.full(n, -np.inf)
        best_f = np.full(n, "", dtype=object)
        for f in I.FAMILIES:
            v = self.touch_value(months, np.full(n, f, dtype=object))
            better = v > best_v
            best_v[better], best_f[better] = v[better], f
        best_v[~self.alive] = 0.0
        best_f[~self.alive] = ""
        return best_f, best_v


def nrr_grr(arr_start: np.ndarray, arr_end: np.ndarray) -> tuple[float, float]:
    """Net and gross revenue retention of a cohort (ARR at the end over ARR at the start)."""
    base = float(arr_start.sum())
    if base <= 0:
        return float("nan"), float("nan")
    return float(arr_end.sum()) / base, float(np.minimum(arr_end, arr_start).sum()) / base
