"""Contract decisions, the subscription history and the exact `truth` probabilities.

Every account has one decision point a month, on the day of month of its contract
(2..28), counted from its anchor (the start of its current subscription rows).
At a point the customer renews unchanged, churns, contracts (seat cut, downgrade,
add-on drop) or expands (seat add, upgrade, add-on purchase). Churn and
contraction happen at renewals (annual: every 12th point; monthly contracts:
every point); annual customers churn mid-term only rarely.

Two rules make the `truth` table exact rather than estimated:

1. A decision taking effect on day r is drawn from the latent state on day
   r - horizon (customers decide ahead of the date), so every decision inside
   (t, t + horizon] depends only on the state up to t.
2. After a change the next `cooldown` points are skipped (a new order form is not
   re-negotiated within the horizon), so at most one change falls inside any
   window of `horizon` days, and ARR(t + horizon) follows from the first change.

A change closes all open rows of the account (end_date = r) and opens new rows
(start_date = r): every row of an account shares its start date, so renewals fall
every `term_months` from any open row's start_date, as the input contract says.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import simulator.behaviour as B
import simulator.catalog as C
import simulator.interventions as I
from simulator.accounts import Accounts
from simulator.config import SimConfig
from simulator.intervals import sum_active
from simulator.latent import NEVER, Latent
from simulator.timeline import Timeline

KINDS = (
    "none",
    "churn",
    "seat_cut_15",
    "seat_cut_30",
    "seat_cut_50",
    "downgrade",
    "addon_drop",
    "seat_add_10",
    "seat_add_25",
    "seat_add_50",
    "seat_add_100",
    "upgrade",
    "buy_ai_agents",
    "buy_analytics",
)
N_KINDS = len(KINDS)
CHURN, DOWNGRADE, DROP, UPGRADE, BUY_AI, BUY_AN = 1, 5, 6, 11, 12, 13
CUTS, ADDS = (2, 3, 4), (7, 8, 9, 10)
CUT_FRAC = np.array([0.15, 0.30, 0.50])
ADD_FRAC = np.array([0.10, 0.25, 0.50, 1.00])
CUT_LOGW = np.log([0.5, 0.35, 0.15])
ADD_LOGW = np.log([0.35, 0.35, 0.2, 0.1])

ANNUAL_RENEWAL, ANNUAL_MID, MONTHLY = 0, 1, 2
_NO = -np.inf
#: log-odds intercepts by point type (annual renewal, annual mid-term, monthly renewal)
INTERCEPT = {
    "churn": np.array([-1.7, -6.7, -4.1]),
    "cut": np.array([-2.7, _NO, -4.4]),
    "downgrade": np.array([-4.2, _NO, -5.6]),
    "drop": np.array([-3.3, _NO, -4.9]),
    "add": np.array([-3.6, -5.0, -5.0]),
    "upgrade": np.array([-4.8, -5.8, -5.8]),
    "buy_ai": np.array([-5.0, -6.0, -6.0]),
    "buy_an": np.array([-5.4, -6.4, -6.4]),
}


@dataclass
class Book:
    """Contracted position of a set of accounts."""

    tier: np.ndarray  # int64
    seats: np.ndarray  # int64 (0 after churn)
    monthly: np.ndarray  # bool
    ai: np.ndarray  # bool
    an: np.ndarray  # bool

    def take(self, idx: np.ndarray) -> Book:
        return Book(self.tier[idx], self.seats[idx], self.monthly[idx], self.ai[idx], self.an[idx])

    def put(self, idx: np.ndarray, other: Book) -> None:
        self.tier[idx], self.seats[idx] = other.tier, other.seats
        self.monthly[idx], self.ai[idx], self.an[idx] = other.monthly, other.ai, other.an


def mrr_parts(book: Book) -> np.ndarray:
    """Monthly recurring revenue of the core, AI-agents and analytics rows, shape (3, n)."""
    mult = np.where(book.monthly, C.MONTHLY_PREMIUM, 1.0) * book.seats
    return np.stack(
        [
            mult * C.TIER_PRICE[book.tier],
            mult * C.ADDON_PRICE[0] * book.ai,
            mult * C.ADDON_PRICE[1] * book.an,
        ]
    )


def arr_of(book: Book) -> np.ndarray:
    return 12.0 * mrr_parts(book).sum(axis=0)


@dataclass
class Drivers:
    """What a decision depends on, read from the latent state on day r - horizon."""

    engagement: np.ndarray
    value: np.ndarray
    stage: np.ndarray
    demand_ratio: np.ndarray  # seats wanted / seats contracted
    utilization: np.ndarray  # expected 30-day active users / seats
    usage_ratio: np.ndarray  # expected monthly credits / plan limit
    high_touch: np.ndarray  # bool
    point_type: np.ndarray  # ANNUAL_RENEWAL / ANNUAL_MID / MONTHLY


EXPANSIONS = (*ADDS, UPGRADE, BUY_AI, BUY_AN)


def logits(
    book: Book,
    x: Drivers,
    cfg: SimConfig,
    shift: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Log-odds of every outcome against 'none', shape (n, N_KINDS); -inf = unavailable.

    `shift` = (churn, expansion) log-odds added by a touch (`simulator.interventions`).
    """
    n = book.seats.shape[0]
    pt = x.point_type
    health = 0.5 * x.engagement + 0.5 * x.value
    log_size = np.log(np.maximum(book.seats, 1)) - 2.0
    limit = C.TIER_SEAT_LIMIT[book.tier]
    out = np.full((n, N_KINDS), _NO)
    out[:, 0] = 0.0
    with np.errstate(invalid="ignore"):
        out[:, CHURN] = (
            INTERCEPT["churn"][pt]
            + cfg.churn_shift
            - 1.5 * health
            - 0.35 * log_size
            - 0.5 * x.high_touch
        )
        cut = (
            INTERCEPT["cut"][pt]
            + cfg.contraction_shift
            - 0.7 * health
            + 4.0 * np.maximum(0.0, 0.65 - x.utilization)
        )
        out[:, list(CUTS)] = np.where(book.seats[:, None] >= 2, cut[:, None] + CUT_LOGW, _NO)
        down = (
            INTERCEPT["downgrade"][pt]
            + cfg.contraction_shift
            - 0.8 * health
            + 3.0 * np.maximum(0.0, 0.25 - x.usage_ratio)
        )
        out[:, DOWNGRADE] = np.where(book.tier > 0, down, _NO)
        drop = INTERCEPT["drop"][pt] + cfg.contraction_shift - 0.9 * health
        out[:, DROP] = np.where(book.ai | book.an, drop, _NO)
        add = (
            INTERCEPT["add"][pt]
            + cfg.expansion_shift
            + 0.45 * health
            + 0.3 * log_size
            + 7.0 * np.maximum(0.0, np.minimum(x.demand_ratio, 1.0) - 0.8)
        )
        out[:, list(ADDS)] = np.where(
            book.seats[:, None] < limit[:, None], add[:, None] + ADD_LOGW, _NO
        )
        up = (
            INTERCEPT["upgrade"][pt]
            + cfg.expansion_shift
            + 0.5 * health
            + 3.5 * np.maximum(0.0, np.minimum(x.usage_ratio, 1.5) - 0.6)
            + 2.5 * (book.seats >= 0.85 * limit)
        )
        out[:, UPGRADE] = np.where(book.tier < 2, up, _NO)
        buy_ai = INTERCEPT["buy_ai"][pt] + cfg.expansion_shift + 0.9 * x.stage + 0.5 * health
        out[:, BUY_AI] = np.where(~book.ai, buy_ai, _NO)
        buy_an = INTERCEPT["buy_an"][pt] + cfg.expansion_shift + 0.4 * health
        out[:, BUY_AN] = np.where(~book.an, buy_an, _NO)
        if shift is not None:
            out[:, CHURN] += shift[0]
            out[:, list(EXPANSIONS)] += shift[1][:, None]
    return out


def probabilities(
    book: Book,
    x: Drivers,
    cfg: SimConfig,
    shift: tuple[np.ndarray, np.ndarray] | None = None,
    decides: np.ndarray | None = None,
) -> np.ndarray:
    """Multinomial-logit probabilities of the outcomes, shape (n, N_KINDS), rows sum to 1.

    Rows outside `decides` (no decision point: cooldown, outside the window) are 'none'.
    """
    e = np.exp(logits(book, x, cfg, shift))
    prob = e / e.sum(axis=1, keepdims=True)
    if decides is not None:
        prob[~decides] = 0.0
        prob[~decides, 0] = 1.0
    return prob


def _avoid_tie(old: np.ndarray, new: np.ndarray, ratio: float, step: int) -> np.ndarray:
    """Move a seat count off an exact label threshold (ARR scales with seats)."""
    tie = np.abs(new - ratio * old) < 1e-9 * np.maximum(old, 1)
    return np.where(tie, new + step, new)


def apply(book: Book, kind: np.ndarray, pct: float) -> Book:
    """The book after outcome `kind` (one per account)."""
    tier, seats = book.tier.copy(), book.seats.copy()
    ai, an = book.ai.copy(), book.an.copy()
    k = np.asarray(kind)
    cut = (k >= CUTS[0]) & (k <= CUTS[-1])
    if cut.any():
        s = seats[cut]
        frac = CUT_FRAC[k[cut] - CUTS[0]]
        new = np.maximum(1, s - np.maximum(1, np.round(frac * s).astype(np.int64)))
        seats[cut] = np.maximum(1, _avoid_tie(s, new, 1 - pct, -1))
    add = (k >= ADDS[0]) & (k <= ADDS[-1])
    if add.any():
        s = seats[add]
        limit = C.TIER_SEAT_LIMIT[tier[add]]
        frac = ADD_FRAC[k[add] - ADDS[0]]
        new = np.minimum(limit, s + np.maximum(1, np.round(frac * s).astype(np.int64)))
        new = _avoid_tie(s, new, 1 + pct, 1)
        seats[add] = np.where(new > limit, new - 2, new)
    # unavailable outcomes (priced for the menu only) leave the tier in range
    down = k == DOWNGRADE
    tier[down] = np.maximum(tier[down] - 1, 0)
    seats[down] = np.minimum(seats[down], C.TIER_SEAT_LIMIT[tier[down]])
    tier[k == UPGRADE] = np.minimum(tier[k == UPGRADE] + 1, 2)
    drop = k == DROP
    drop_an = drop & an
    an[drop_an] = False
    ai[drop & ~drop_an] = False
    ai[k == BUY_AI] = True
    an[k == BUY_AN] = True
    seats[k == CHURN] = 0
    return Book(tier, seats, book.monthly.copy(), ai, an)


def outcome_arr(book: Book, pct: float) -> np.ndarray:
    """ARR after each possible outcome, shape (n, N_KINDS)."""
    n = book.seats.shape[0]
    out = np.empty((n, N_KINDS))
    for k in range(N_KINDS):  # a fixed menu of 14 outcomes, each vectorised over accounts
        out[:, k] = arr_of(apply(book, np.full(n, k), pct))
    return out


class _Rows:
    """Growable column store of subscription rows."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.cols = {
            "acct": np.zeros(capacity, np.int64),
            "product": np.zeros(capacity, np.int8),  # 0 core, 1 ai_agents, 2 analytics
            "plan": np.zeros(capacity, np.int8),  # tier code for core; 3/4 for add-ons
            "start": np.zeros(capacity, np.int64),
            "end": np.full(capacity, NEVER, np.int64),
            "mrr": np.zeros(capacity),
            "seats": np.zeros(capacity, np.int64),
            "term": np.zeros(capacity, np.int64),
        }

    def add(self, **values: np.ndarray) -> np.ndarray:
        m = values["acct"].shape[0]
        if self.n + m > self.cols["acct"].shape[0]:
            grow = max(self.n + m, 2 * self.cols["acct"].shape[0])
            for name, col in self.cols.items():
                fill = NEVER if name == "end" else 0
                new = np.full(grow, fill, dtype=col.dtype)
                new[: self.n] = col[: self.n]
                self.cols[name] = new
        rows = np.arange(self.n, self.n + m)
        for name, v in values.items():
            self.cols[name][rows] = v
        self.n += m
        return rows

    def open_book(self, acct: np.ndarray, book: Book, day: np.ndarray) -> np.ndarray:
        """Open one row per product held; returns row ids, shape (n, 3), -1 where none."""
        parts = mrr_parts(book)
        held = np.stack([book.seats > 0, book.ai & (book.seats > 0), book.an & (book.seats > 0)])
        ids = np.full((acct.shape[0], 3), -1, dtype=np.int64)
        term = np.where(book.monthly, 1, 12)
        for p in range(3):  # three products
            h = held[p]
            ids[h, p] = self.add(
                acct=acct[h],
                product=np.full(h.sum(), p, np.int8),
                plan=(book.tier[h] if p == 0 else np.full(h.sum(), 2 + p)).astype(np.int8),
                start=day[h],
                mrr=parts[p][h],
                seats=book.seats[h],
                term=term[h],
            )
        return ids

    def table(self) -> dict[str, np.ndarray]:
        return {k: v[: self.n] for k, v in self.cols.items()}


@dataclass
class ContractHistory:
    rows: dict[str, np.ndarray]  # subscription rows, "acct" = account position
    churn_day: np.ndarray  # int64, NEVER if still a customer at data end
    seats_ms: np.ndarray  # int64 (n, months): seats at each month start (0 if not a customer)
    truth: dict[str, np.ndarray]  # one row per paying account and month start
    changes: dict[str, np.ndarray]  # acct, month, kind of every change from the start on
    actions: dict[str, np.ndarray] = field(default_factory=dict)  # acct, month, family, holdout

    def take(self, idx: np.ndarray) -> ContractHistory:
        """The history of the accounts at positions `idx`, renumbered 0..len(idx)-1."""
        new_pos = np.full(self.churn_day.shape[0], -1, dtype=np.int64)
        new_pos[idx] = np.arange(idx.shape[0])

        def keep(table: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            pos = new_pos[table["acct"]]
            mask = pos >= 0
            out = {k: v[mask] for k, v in table.items()}
            out["acct"] = pos[mask]
            return out

        return ContractHistory(
            rows=keep(self.rows),
            churn_day=self.churn_day[idx],
            seats_ms=self.seats_ms[idx],
            truth=keep(self.truth),
            changes=keep(self.changes),
            actions=keep(self.actions) if self.actions else {},
        )

    @property
    def decisions(self) -> dict[str, int]:
        """Changes by kind from the start on."""
        counts = np.bincount(self.changes["kind"], minlength=N_KINDS)
        return {KINDS[i]: int(c) for i, c in enumerate(counts) if i > 0}


class AgentCapacity:
    """Sum of agent run rates of an account on a day (agents exist from their first day)."""

    def __init__(self, acct: np.ndarray, first_day: np.ndarray, rate: np.ndarray, n: int) -> None:
        self.acct, self.first, self.rate, self.n = acct, first_day, rate, n
        self.never = np.full(acct.shape[0], NEVER, dtype=np.int64)

    def __call__(self, q_acct: np.ndarray, q_day: np.ndarray) -> np.ndarray:
        return sum_active(self.acct, self.first, self.never, self.rate, q_acct, q_day, self.n)


class DriverReader:
    """Reads what a decision depends on from the latent state (`Drivers`).

    Shared by the contract walk and the policy roll-out (`simulator.rollout`), so that a
    decision reads the same state whichever of the two draws it.
    """

    def __init__(
        self,
        acc: Accounts,
        lat: Latent,
        agents: AgentCapacity,
        tl: Timeline,
        high_touch: np.ndarray,
    ) -> None:
        self.acc, self.lat, self.agents, self.tl = acc, lat, agents, tl
        self.high_touch = high_touch
        self.demand_ref = acc.fill * acc.seats0
        ref_col = tl.col(acc.ref_day)
        self.growth_ref = lat.log_growth[ref_col, np.arange(acc.n)].astype(np.float64)

    def __call__(self, idx: np.ndarray, bk: Book, day: np.ndarray, k: np.ndarray) -> Drivers:
        """Drivers of accounts `idx` (book `bk`) read on `day`, at contract point `k`."""
        acc, lat = self.acc, self.lat
        col = self.tl.col(day)
        e = lat.engagement[col, idx].astype(np.float64)
        demand = self.demand_ref[idx] * np.exp(lat.log_growth[col, idx] - self.growth_ref[idx])
        seats = np.maximum(bk.seats, 1)
        usage = B.expected_usage(self.agents(idx, day), e, acc.credit_scale[idx])
        pt = np.where(bk.monthly, MONTHLY, np.where(k % 12 == 0, ANNUAL_RENEWAL, ANNUAL_MID))
        return Drivers(
            engagement=e,
            value=lat.value[col, idx].astype(np.float64),
            stage=lat.stage[col, idx].astype(np.int64),
            demand_ratio=demand / seats,
            utilization=np.minimum(demand, seats) / seats * B.active_share(e),
            usage_ratio=usage / C.TIER_USAGE_LIMIT[bk.tier],
            high_touch=self.high_touch[idx],
            point_type=pt,
        )


def cooldown_months(horizon: int) -> int:
    """Points skipped after a change so that two changes are always > horizon days apart."""
    return horizon // 28 + 1


TRUTH_KEYS = (
    "acct", "month", "arr", "p_churn", "p_expand", "p_contract",
    "p_churn_touched", "p_expand_touched", "churn_driver", "expand_driver",
)  # fmt: skip


def causes_of(x: Drivers, bk: Book, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """The real churn cause and expansion route of each account (`simulator.interventions`)."""
    fx = cfg.touch
    return (
        I.churn_driver(x.engagement, x.value),
        I.expand_driver(x.demand_ratio, x.usage_ratio, x.stage, bk.ai, fx),
    )


def touch_shift(
    x: Drivers, bk: Book, cfg: SimConfig, family: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(churn, expansion) log-odds shifts of a play of `family` on each account, read on x."""
    cause, route = causes_of(x, bk, cfg)
    health = 0.5 * x.engagement + 0.5 * x.value
    return I.logit_shifts(family, cause, route, health, cfg.touch)


def _touched_probs(
    bk: Book, x: Drivers, cfg: SimConfig, causes: tuple[np.ndarray, np.ndarray], ok: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Outcome probabilities at one point under the matched churn play and expansion play."""
    route = np.where(causes[1] == I.NO_DRIVER, I.GENERIC_EXPAND, causes[1])
    churn_play, expand_play = (
        probabilities(bk, x, cfg, touch_shift(x, bk, cfg, family), decides=ok)
        for family in (causes[0], route)
    )
    return churn_play, expand_play


def _window_outcomes(
    probs: list[np.ndarray], is_exp: np.ndarray, is_con: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(churn), P(expansion), P(contraction) over a window: the first change decides."""
    n = probs[0].shape[0]
    surv = np.ones(n)
    p_churn, p_exp, p_con = (np.zeros(n) for _ in range(3))
    for prob in probs:
        p_churn += surv * prob[:, CHURN]
        p_exp += surv * (prob * is_exp).sum(axis=1)
        p_con += surv * (prob * is_con).sum(axis=1)
        surv *= prob[:, 0]
    return p_churn, p_exp, p_con


@dataclass
class _Walk:
    """State of the month-by-month contract walk (see `run_contracts`)."""

    acc: Accounts
    lat: Latent
    tl: Timeline
    cfg: SimConfig
    book: Book
    anchor: np.ndarray  # month of each account's last change (its contract anchor)
    high_touch: np.ndarray
    rows: _Rows
    open_ids: np.ndarray  # (n, 3) open subscription row per product, -1 none
    first: int  # first month of the pre-roll (negative)
    month_starts: np.ndarray  # day of each month start from `first` on
    drivers: DriverReader
    touch_reader: DriverReader  # without the flat high-touch effect
    churn_day: np.ndarray = field(init=False)
    seats_ms: np.ndarray = field(init=False)
    truth: dict[str, list[np.ndarray]] = field(init=False)
    changes: dict[str, list[np.ndarray]] = field(init=False)
    actions: dict[str, list[np.ndarray]] = field(init=False)

    def __post_init__(self) -> None:
        n = self.acc.n
        self.churn_day = np.full(n, NEVER, dtype=np.int64)
        self.seats_ms = np.zeros((n, self.tl.months), dtype=np.int64)
        self.truth = {k: [] for k in TRUTH_KEYS}
        self.changes = {"acct": [], "month": [], "kind": []}
        self.actions = {k: [] for k in ("acct", "month", "family", "holdout")}

    def ms(self, m: int) -> int:
        return int(self.month_starts[m - self.first])


def _start_walk(
    acc: Accounts,
    lat: Latent,
    agents: AgentCapacity,
    has_ai: np.ndarray,
    has_an: np.ndarray,
    coverage: np.ndarray,
    tl: Timeline,
    cfg: SimConfig,
    rng: np.random.Generator,
) -> _Walk:
    """The books at their anchors, with one earlier core row for accounts that had history."""
    n, months = acc.n, tl.months
    cool, jmax = cooldown_months(cfg.horizon_days), cfg.horizon_days // 28
    first = -cfg.preroll_months
    book = Book(
        acc.tier0.copy(), acc.seats0.copy(), acc.monthly.copy(), has_ai.copy(), has_an.copy()
    )
    anchor = acc.anchor_month.copy()
    rows = _Rows(capacity=n * (4 + months // cool))
    # history before the anchor: one earlier core row with a different seat count
    prior = (~acc.is_new) & (acc.anchor_month > tl.month_of_day(acc.created_day))
    anchor_day = tl.month_start(anchor) + acc.dom - 1
    if prior.any():
        p_idx = np.flatnonzero(prior)
        ratio = np.exp(-0.1 + 0.25 * rng.standard_normal(p_idx.shape[0]))
        old = book.take(p_idx)
        old.seats = np.maximum(1, np.round(old.seats * ratio)).astype(np.int64)
        old.ai = np.zeros_like(old.ai)
        old.an = np.zeros_like(old.an)
        old_ids = rows.open_book(p_idx, old, acc.created_day[p_idx])
        rows.cols["end"][old_ids[:, 0]] = anchor_day[p_idx]
    open_ids = rows.open_book(np.arange(n), book, anchor_day)
    high_touch = coverage == 0
    return _Walk(
        acc=acc,
        lat=lat,
        tl=tl,
        cfg=cfg,
        book=book,
        anchor=anchor,
        high_touch=high_touch,
        rows=rows,
        open_ids=open_ids,
        first=first,
        month_starts=tl.month_start(np.arange(first, months + jmax + 2)),
        drivers=DriverReader(acc, lat, agents, tl, high_touch),
        touch_reader=DriverReader(acc, lat, agents, tl, np.zeros(n, dtype=bool)),
    )


def _window_probs(
    w: _Walk, m: int, idx: np.ndarray, bk: Book
) -> tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]], tuple | None]:
    """Outcome probabilities at the 1-3 decision points a window (t, t + H] can hold.

    The first point is this month's. From month 0 on, also the probabilities under the
    matched plays and the account's causes read at t (else an empty list and None).
    """
    acc, cfg, H = w.acc, w.cfg, w.cfg.horizon_days
    cool, jmax = cooldown_months(H), H // 28
    t = w.ms(m)
    probs, with_touch, causes = [], [], None
    for j in range(jmax + 1 if m >= 0 else 1):
        r = w.ms(m + j) + acc.dom[idx] - 1
        k = m + j - w.anchor[idx]
        ok = (r > t) & (r <= t + H) & (k >= cool)
        x = w.drivers(idx, bk, r - H, k)
        probs.append(probabilities(bk, x, cfg, decides=ok))
        if m >= 0:
            if j == 0:  # the play a CSM would match to the account's drivers at t
                causes = causes_of(x, bk, cfg)
            with_touch.append(_touched_probs(bk, x, cfg, causes, ok))
    return probs, with_touch, causes


def _record_truth(
    w: _Walk,
    m: int,
    idx: np.ndarray,
    bk: Book,
    alive: np.ndarray,
    probs: list[np.ndarray],
    with_touch: list[tuple[np.ndarray, np.ndarray]],
    causes: tuple,
) -> None:
    """Seats at the month start and the truth rows (window outcome probabilities, causes)."""
    pct = w.cfg.expansion_pct
    w.seats_ms[:, m] = np.where(alive, w.book.seats, 0)
    arr0 = arr_of(bk)
    after = outcome_arr(bk, pct)
    is_exp = after >= (1 + pct) * arr0[:, None]
    is_con = (after > 0) & (after <= (1 - pct) * arr0[:, None])
    p_churn, p_exp, p_con = _window_outcomes(probs, is_exp, is_con)
    p_churn_t = _window_outcomes([c for c, _ in with_touch], is_exp, is_con)[0]
    p_exp_t = _window_outcomes([e for _, e in with_touch], is_exp, is_con)[1]
    for key, val in zip(
        TRUTH_KEYS,
        (idx, np.full(idx.shape[0], m), arr0, p_churn, p_exp, p_con,
         p_churn_t, p_exp_t, causes[0], causes[1]),
        strict=True,
    ):  # fmt: skip
        w.truth[key].append(val)


def _decide(w: _Walk, m: int, idx: np.ndarray, bk: Book, p: np.ndarray, u: np.ndarray) -> None:
    """Draw this month's decisions (`u`: one uniform per account) and apply the changes.

    Every customer has exactly one decision point a month, on its contract day.
    """
    kind = np.minimum((u[:, None] >= np.cumsum(p, axis=1)).sum(axis=1), N_KINDS - 1)
    ch = kind != 0
    if m >= 0:
        for key, val in zip(
            ("acct", "month", "kind"), (idx[ch], np.full(ch.sum(), m), kind[ch]), strict=True
        ):
            w.changes[key].append(val)
    if not ch.any():
        return
    cidx = idx[ch]
    r = w.ms(m) + w.acc.dom[cidx] - 1
    old = w.open_ids[cidx]
    has = old >= 0
    w.rows.cols["end"][old[has]] = np.broadcast_to(r[:, None], old.shape)[has]
    new = apply(bk.take(np.flatnonzero(ch)), kind[ch], w.cfg.expansion_pct)
    w.book.put(cidx, new)
    w.anchor[cidx] = m
    gone = kind[ch] == CHURN
    w.churn_day[cidx[gone]] = r[gone]
    w.open_ids[cidx] = -1
    stay = ~gone
    w.open_ids[cidx[stay]] = w.rows.open_book(cidx[stay], new.take(np.flatnonzero(stay)), r[stay])


def _history(w: _Walk, logging_actions: bool) -> ContractHistory:
    """The walk's rows, truth (with the latent state at each month start) and logs."""
    tr = {k: np.concatenate(v) for k, v in w.truth.items()}
    col = w.tl.col(w.month_starts[tr["month"] - w.first] - 1)
    tr["engagement"] = w.lat.engagement[col, tr["acct"]]
    tr["value"] = w.lat.value[col, tr["acct"]]
    tr["stage"] = w.lat.stage[col, tr["acct"]]
    return ContractHistory(
        rows=w.rows.table(),
        churn_day=w.churn_day,
        seats_ms=w.seats_ms,
        truth=tr,
        changes={
            k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in w.changes.items()
        },
        actions={k: np.concatenate(v) for k, v in w.actions.items()} if logging_actions else {},
    )


def run_contracts(
    acc: Accounts,
    lat: Latent,
    agents: AgentCapacity,
    has_ai: np.ndarray,
    has_an: np.ndarray,
    coverage: np.ndarray,
    tl: Timeline,
    cfg: SimConfig,
    rng: np.random.Generator,
    action_rng: np.random.Generator | None = None,
) -> ContractHistory:
    """Walk the calendar month by month: truth at each month start, then the month's decisions.

    Decisions start `cfg.preroll_months` before the start (the pre-roll); truth rows,
    seat counts and the change log cover the simulated months only. With
    ``cfg.actions.enabled`` (and `action_rng`), CSM touches are drawn every simulated
    month and replace the flat high-touch effect (`_month_actions`).

    Parameters
    ----------
    acc, lat, agents : Accounts, Latent, AgentCapacity
        The accounts, their latent state and their agents' run rates.
    has_ai, has_an : ndarray of bool
        Add-ons held at each account's anchor.
    coverage : ndarray of int
        Coverage tier code per account (0 high touch).
    tl : Timeline
    cfg : SimConfig
    rng : Generator
        Draws the earlier history and the decisions.
    action_rng : Generator, optional
        Draws the logged CSM touches (with ``cfg.actions.enabled``).

    Returns
    -------
    ContractHistory
        Subscription rows, churn days, seats at month starts, truth rows, change log and
        logged actions.
    """
    w = _start_walk(acc, lat, agents, has_ai, has_an, coverage, tl, cfg, rng)
    cool = cooldown_months(cfg.horizon_days)
    logging_actions = cfg.actions.enabled and action_rng is not None
    for m in range(w.first, tl.months):  # calendar months; each step vectorised over accounts
        t = w.ms(m)
        alive = (acc.created_day <= t) & (w.churn_day > t)
        idx = np.flatnonzero(alive)
        bk = w.book.take(idx)
        probs, with_touch, causes = _window_probs(w, m, idx, bk)
        if m >= 0:
            _record_truth(w, m, idx, bk, alive, probs, with_touch, causes)
        if logging_actions and m >= 0:
            probs[0] = _month_actions(
                idx, bk, m, t, acc, w.anchor, w.high_touch, w.touch_reader, cfg, cool,
                action_rng, w.actions,
            )  # fmt: skip
        _decide(w, m, idx, bk, probs[0], rng.random(idx.shape[0]))
    return _history(w, logging_actions)


def _month_actions(
    idx: np.ndarray,
    bk: Book,
    m: int,
    t: int,
    acc: Accounts,
    anchor: np.ndarray,
    high_touch: np.ndarray,
    reader: DriverReader,
    cfg: SimConfig,
    cool: int,
    rng: np.random.Generator,
    log: dict[str, list[np.ndarray]],
) -> np.ndarray:
    """This month's touches: flag high-touch accounts, hold some out, run one play on the rest.

    Returns the outcome probabilities of this month's decision point with the touches
    (and without the flat coverage effect), which replace the untouched ones.
    """
    r = t + acc.dom[idx] - 1
    k = m - anchor[idx]
    x = reader(idx, bk, r - cfg.horizon_days, k)
    cause, route = causes_of(x, bk, cfg)
    flagged = high_touch[idx]
    holdout = flagged & (rng.random(idx.shape[0]) < cfg.actions.holdout_share)
    family = I.choose_families(cause, route, cfg.actions.csm_skill, rng)
    run = np.where(flagged & ~holdout, family, "")  # held-out accounts keep their play unrun
    health = 0.5 * x.engagement + 0.5 * x.value
    shift = I.logit_shifts(run, cause, route, health, cfg.touch)
    prob = probabilities(bk, x, cfg, shift, decides=(r > t) & (k >= cool))
    for key, val in zip(
        ("acct", "month", "family", "holdout"),
        (idx[flagged], np.full(int(flagged.sum()), m), family[flagged], holdout[flagged]),
        strict=True,
    ):
        log[key].append(val)
    return prob
