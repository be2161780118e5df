"""Solvers of the territory rebalancing (`models.territories.rebalance` builds the problem).

Methods
-------
``milp`` (default): a mixed-integer programme solved by HiGHS through
`scipy.optimize.milp` with a time limit and a relative optimality gap. To stay small,
only accounts of CSMs above the mean load (or over capacity) get candidate receivers:
their current CSM plus ``candidates_per_account`` CSMs below the mean, spread across
them by rotation; everybody else stays. The greedy assignment's pairs are added to the
candidates, so the MILP's optimum is never worse than the greedy result. When the time
limit stops HiGHS, its best solution is kept only if it scores better than the greedy
one; when HiGHS is unavailable, finds no solution or fails, the greedy result is used.
`models.territories.rebalance` records which method produced the assignment.

``greedy`` (the documented fallback): accounts that must be placed go to the
least-loaded CSM with room (largest first); CSMs over capacity hand high-touch accounts
to the least-loaded CSMs with seats; then, repeatedly, the single move that lowers the
objective most among the movable accounts of the `GREEDY_DONORS` most-loaded CSMs and
the `GREEDY_RECEIVERS` least-loaded receivers is applied, until no move lowers it. No
optimality gap is known for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from models.territory_config import TerritoryConfig

__all__ = [
    "GREEDY_DONORS",
    "GREEDY_RECEIVERS",
    "Problem",
    "greedy_assignment",
    "milp_assignment",
    "objective",
    "score",
]

GREEDY_DONORS = 40
"""Most-loaded CSMs whose accounts the greedy local search tries to move, per step."""
GREEDY_RECEIVERS = 40
"""Least-loaded CSMs (with room to take on) it tries them on, per step."""


# ----------------------------------------------------------------------------- problem


@dataclass
class Problem:
    """Arrays of one rebalancing problem (indices into the scope frame and CSM list)."""

    csms: list[str]  # pool first, then outside-roster owners of frozen accounts
    n_pool: int
    capacity: np.ndarray  # per CSM (inf outside the pool)
    owner: np.ndarray  # CSM index of the current owner, -1 none/outside pool
    owner_any: np.ndarray  # CSM index of the current owner incl. outside pool, -1 none
    weight: np.ndarray  # weight after (target tier)
    high: np.ndarray  # target tier is high touch
    fixed: np.ndarray  # bool: stays with owner_any
    free: np.ndarray  # bool: movable (owner in pool) or must be placed (no pool owner)
    target: float
    cfg: TerritoryConfig

    @property
    def n_csm(self) -> int:
        return len(self.csms)

    def fixed_load(self) -> tuple[np.ndarray, np.ndarray]:
        """Load and high-touch count each CSM carries from frozen accounts alone.

        Returns
        -------
        load, high : ndarray of float64, shape (n_csm,)
            Summed weight and number of high-touch accounts that stay with their owner.
        """
        idx = self.owner_any[self.fixed]
        load = np.bincount(idx, self.weight[self.fixed], minlength=self.n_csm)
        high = np.bincount(idx, self.high[self.fixed].astype(float), minlength=self.n_csm)
        return load, high

    def seats(self) -> np.ndarray:
        """High-touch seats per CSM: capacity, or the frozen count when that is higher.

        Returns
        -------
        ndarray of float64, shape (n_csm,)
            Inf for owners outside the pool.
        """
        _, fixed_high = self.fixed_load()
        return np.maximum(self.capacity, fixed_high)

    def out_caps(self) -> np.ndarray:
        """Accounts each CSM may give up: the move cap, plus its excess of high-touch
        accounts over its seats when ``capacity_first``.

        Returns
        -------
        ndarray of float64, shape (n_csm,)
        """
        caps = np.full(self.n_csm, float(self.cfg.max_moves_per_csm))
        if self.cfg.capacity_first:
            movable = self.free & (self.owner >= 0)
            _, fixed_high = self.fixed_load()
            high0 = fixed_high + np.bincount(
                self.owner[movable], self.high[movable].astype(float), minlength=self.n_csm
            )
            caps += np.clip(high0 - self.seats(), 0, None)
        return caps


def score(p: Problem, assign: np.ndarray) -> float:
    """The MILP's objective of an assignment, capacity overflow penalised as in the MILP.

    Parameters
    ----------
    p : Problem
        The territory problem.
    assign : ndarray of int, shape (n_accounts,)
        CSM index of each account, -1 when unplaced (unplaced accounts add no load).

    Returns
    -------
    float
        :func:`objective` of the pool loads plus a penalty per high-touch account over a
        CSM's seats; lower is better.
    """
    placed = assign >= 0
    loads = np.bincount(assign[placed], p.weight[placed], minlength=p.n_csm)
    high = np.bincount(assign[placed], p.high[placed].astype(float), minlength=p.n_csm)
    moves = int(((p.owner >= 0) & p.free & (assign != p.owner)).sum())
    over = np.clip(high - p.seats(), 0, None)[: p.n_pool].sum()
    penalty = 1000.0 * (1.0 + float(p.weight.max(initial=1.0)))
    return objective(loads, p.n_pool, p.target, moves, p.cfg) + penalty * float(over)


def objective(loads: np.ndarray, n_pool: int, target: float, moves: int, cfg) -> float:
    """Distance of the pool's loads from the target, their spread and the moves' cost.

    Parameters
    ----------
    loads : ndarray of float, shape (n_csm,)
        Load per CSM, pool CSMs first.
    n_pool : int
        Number of pool CSMs (the first `n_pool` loads); the others are not balanced.
    target : float
        Target load per pool CSM.
    moves : int
        Accounts moved away from their current owner.
    cfg : TerritoryConfig
        Gives ``spread_weight`` and ``move_cost``.

    Returns
    -------
    float
        ``sum |load - target| + spread_weight * (max - min load) + move_cost * moves``.
    """
    pool = loads[:n_pool]
    spread = float(pool.max() - pool.min()) if n_pool else 0.0
    return float(np.abs(pool - target).sum() + cfg.spread_weight * spread + cfg.move_cost * moves)


# ----------------------------------------------------------------------------- greedy


class _Greedy:
    """Running state of the greedy method: assignment, loads, seats used, moves per CSM."""

    def __init__(self, p: Problem) -> None:
        cfg = p.cfg
        self.p = p
        self.assign = np.where(p.fixed, p.owner_any, -1)
        self.movable = p.free & (p.owner >= 0)
        self.assign[self.movable] = p.owner[self.movable]
        loads, high = p.fixed_load()
        mv = self.movable
        self.loads = loads + np.bincount(self.assign[mv], p.weight[mv], minlength=p.n_csm)
        self.high = high + np.bincount(self.assign[mv], p.high[mv].astype(float), minlength=p.n_csm)
        self.seats = p.seats()
        self.max_load = cfg.max_load if cfg.max_load is not None else np.inf
        self.out_n = np.zeros(p.n_csm, dtype=np.int64)
        self.in_n = np.zeros(p.n_csm, dtype=np.int64)
        self.K = cfg.max_moves_per_csm
        self.out_cap = p.out_caps()
        self.pool = np.arange(p.n_pool)

    def room(self, j: int, i: int) -> bool:
        p = self.p
        return (not p.high[i] or self.high[j] + 1 <= self.seats[j]) and self.loads[j] + p.weight[
            i
        ] <= self.max_load

    def by_load(self) -> np.ndarray:
        """Roster CSMs, least loaded first."""
        return self.pool[np.argsort(self.loads[: self.p.n_pool], kind="stable")]

    def move(self, i: int, j: int) -> None:
        p, d = self.p, self.assign[i]
        self.loads[d] -= p.weight[i]
        self.high[d] -= p.high[i]
        self.loads[j] += p.weight[i]
        self.high[j] += p.high[i]
        if p.owner[i] >= 0:
            self.out_n[d] += 1
            self.in_n[j] += 1
        self.assign[i] = j

    def place_unowned(self) -> None:
        """Accounts that must be placed: largest first to the least-loaded CSM with room."""
        p = self.p
        must = np.flatnonzero(p.free & (p.owner < 0))
        for i in must[np.argsort(-p.weight[must], kind="stable")]:
            order = self.by_load()
            j = next(
                (int(j) for j in order if self.room(int(j), i)), int(order[0]) if len(order) else -1
            )
            self.assign[i] = j
            self.loads[j] += p.weight[i]
            self.high[j] += p.high[i]

    def repair_capacity(self) -> None:
        """Over-capacity CSMs hand high-touch accounts to CSMs with seats."""
        p, assign = self.p, self.assign
        for d in self.pool:
            while self.high[d] > self.seats[d] and self.out_n[d] < self.out_cap[d]:
                mine = np.flatnonzero(self.movable & (assign == d) & (assign == p.owner) & p.high)
                if not len(mine):
                    break
                i = int(mine[np.argmax(p.weight[mine])])
                j = next(
                    (
                        int(j)
                        for j in self.by_load()
                        if j != d and self.in_n[j] < self.K and self.room(int(j), i)
                    ),
                    None,
                )
                if j is None:
                    break
                self.move(i, j)

    def _excluding(self, order: np.ndarray, d: int, rs: np.ndarray) -> np.ndarray:
        """Per receiver, the load of the first CSM in `order` that is neither d nor it."""
        head = order[:3]
        vals = self.loads[head]
        ok = (head[None, :] != d) & (head[None, :] != rs[:, None])
        first = np.argmax(ok, axis=1)
        return np.where(ok.any(axis=1), vals[first], np.nan)

    def best_move(self) -> tuple[float, int, int] | None:
        """The single move (gain, account, receiver) lowering the objective most, if any,
        from the `GREEDY_DONORS` most-loaded CSMs to the `GREEDY_RECEIVERS` least-loaded."""
        p, cfg, loads = self.p, self.p.cfg, self.loads
        max_load_arr = np.full(p.n_csm, self.max_load)
        pl = loads[: p.n_pool]
        spread0 = float(pl.max() - pl.min())
        best: tuple[float, int, int] | None = None
        desc = self.pool[np.argsort(-pl, kind="stable")]
        asc = desc[::-1]
        rs_all = np.array(
            [int(r) for r in asc if self.in_n[r] < self.K][:GREEDY_RECEIVERS], dtype=np.int64
        )
        for d in desc[:GREEDY_DONORS]:
            d = int(d)
            if self.out_n[d] >= self.out_cap[d] or not len(rs_all):
                continue
            mine = np.flatnonzero(self.movable & (self.assign == d) & (self.assign == p.owner))
            rs = rs_all[rs_all != d]
            if not len(mine) or not len(rs):
                continue
            w = p.weight[mine][:, None]
            ld_new = loads[d] - w
            lr_new = loads[rs][None, :] + w
            top = self._excluding(desc, d, rs)[None, :]
            bottom = self._excluding(asc, d, rs)[None, :]
            hi = np.fmax(np.maximum(ld_new, lr_new), top)
            lo = np.fmin(np.minimum(ld_new, lr_new), bottom)
            gain = (
                np.abs(ld_new - p.target)
                + np.abs(lr_new - p.target)
                - abs(loads[d] - p.target)
                - np.abs(loads[rs] - p.target)[None, :]
                + cfg.spread_weight * (hi - lo - spread0)
                + cfg.move_cost
            )
            fits = (~p.high[mine][:, None] | (self.high[rs] + 1 <= self.seats[rs])[None, :]) & (
                lr_new <= max_load_arr[rs][None, :]
            )
            gain = np.where(fits, gain, np.inf)
            k = int(np.argmin(gain))
            g = float(gain.flat[k])
            if g < -1e-9 and (best is None or g < best[0]):
                best = (g, int(mine[k // len(rs)]), int(rs[k % len(rs)]))
        return best


def greedy_assignment(p: Problem) -> np.ndarray:
    """Assignment (CSM index per account, -1 outside scope) by the documented greedy method.

    Parameters
    ----------
    p : Problem
        The rebalancing problem built by `models.territories.rebalance`.

    Returns
    -------
    ndarray of int
        CSM index (into ``p.csms``) of each account, -1 outside the named book.
    """
    g = _Greedy(p)
    g.place_unowned()  # 1. accounts that must be placed
    g.repair_capacity()  # 2. capacity repair
    for _ in range(max(1, len(p.weight)) * 2):  # 3. local search, one best move at a time
        best = g.best_move()
        if best is None:
            break
        g.move(best[1], best[2])
    return g.assign


# ----------------------------------------------------------------------------- milp


def _candidates(p: Problem, hint: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(account, CSM) pairs offered to the MILP (see module docstring).

    `hint` (an assignment, e.g. the greedy one) adds its pairs, so that the MILP's
    feasible set contains it and its optimum is never worse.
    """
    cfg = p.cfg
    loads, high = p.fixed_load()
    movable = p.free & (p.owner >= 0)
    loads = loads + np.bincount(p.owner[movable], p.weight[movable], minlength=p.n_csm)
    high = high + np.bincount(p.owner[movable], p.high[movable].astype(float), minlength=p.n_csm)
    seats = p.seats()
    pool_loads = loads[: p.n_pool]
    receivers = np.flatnonzero(pool_loads < p.target)
    receivers = receivers[np.argsort(pool_loads[receivers], kind="stable")]
    if not len(receivers):
        receivers = np.arange(p.n_pool)
    with_seats = receivers[high[receivers] < seats[receivers]]
    if not len(with_seats):
        with_seats = np.flatnonzero(high[: p.n_pool] < seats[: p.n_pool])
    if not len(with_seats):
        with_seats = receivers
    donors = (pool_loads > p.target) | (high[: p.n_pool] > seats[: p.n_pool])
    k = cfg.candidates_per_account
    acc: list[np.ndarray] = []
    csm: list[np.ndarray] = []
    free = np.flatnonzero(p.free)
    for rank, i in enumerate(free):
        own = p.owner[i]
        opts: list[int] = [int(own)] if own >= 0 else []
        if own < 0 or donors[own]:
            pool_i = with_seats if p.high[i] else receivers
            n_r = len(pool_i)
            want = k if own >= 0 else 2 * k
            step = max(1, n_r // min(want, n_r)) if n_r else 1
            picks = [int(pool_i[(rank + t * step) % n_r]) for t in range(min(want, n_r))]
            opts += [j for j in dict.fromkeys(picks) if j != own]
        acc.append(np.full(len(opts), i))
        csm.append(np.asarray(opts, dtype=np.int64))
    if hint is not None:
        acc.append(free)
        csm.append(hint[free].astype(np.int64))
    if not acc:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(
        np.column_stack([np.concatenate(acc).astype(np.int64), np.concatenate(csm)]), axis=0
    )
    return pairs[:, 0], pairs[:, 1]


class _Constraints:
    """Sparse constraint rows ``lo <= A x <= hi`` of the MILP, added block by block."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[float] = []
        self.hi: list[float] = []
        self.r = 0

    def add(self, rr, cc, vv) -> None:
        self.rows.append(np.asarray(rr, np.int64))
        self.cols.append(np.asarray(cc, np.int64))
        self.vals.append(np.asarray(vv, np.float64))

    def bound(self, lo, hi, n: int) -> None:
        """Bounds of the block of `n` rows just added; the next block starts after it."""
        self.lo += list(lo)
        self.hi += list(hi)
        self.r += n


def _load_rows(
    A: _Constraints, p: Problem, pa: np.ndarray, pc: np.ndarray, v: dict[str, int], fixed_load
) -> None:
    """Each free account exactly once; each roster CSM's deviation from the target load and
    its place under Lmax and above Lmin."""
    P, n_x = p.n_pool, len(pa)
    _, acc_row = np.unique(pa, return_inverse=True)
    n_acc = int(acc_row.max()) + 1 if n_x else 0
    A.add(A.r + acc_row, np.arange(n_x), np.ones(n_x))
    A.bound([1.0] * n_acc, [1.0] * n_acc, n_acc)
    w = p.weight[pa]
    xi = np.flatnonzero(pc < P)
    csm_ids = np.arange(P)
    # load_j - dpos_j + dneg_j = target - fixed_j
    A.add(A.r + pc[xi], xi, w[xi])
    A.add(A.r + csm_ids, v["dpos"] + csm_ids, -np.ones(P))
    A.add(A.r + csm_ids, v["dneg"] + csm_ids, np.ones(P))
    A.bound(p.target - fixed_load[:P], p.target - fixed_load[:P], P)
    # load_j - Lmax <= -fixed_j
    A.add(A.r + pc[xi], xi, w[xi])
    A.add(A.r + csm_ids, np.full(P, v["lmax"]), -np.ones(P))
    A.bound([-np.inf] * P, -fixed_load[:P], P)
    # load_j - Lmin >= -fixed_j
    A.add(A.r + pc[xi], xi, w[xi])
    A.add(A.r + csm_ids, np.full(P, v["lmin"]), -np.ones(P))
    A.bound(-fixed_load[:P], [np.inf] * P, P)


def _limit_rows(
    A: _Constraints,
    p: Problem,
    pa: np.ndarray,
    pc: np.ndarray,
    v: dict[str, int],
    fixed_load,
    fixed_high,
    is_move: np.ndarray,
) -> None:
    """High-touch seats (slack penalised), the optional load cap and the move caps."""
    cfg, P = p.cfg, p.n_pool
    w = p.weight[pa]
    xi = np.flatnonzero(pc < P)
    csm_ids = np.arange(P)
    hx = xi[p.high[pa[xi]]]
    A.add(A.r + pc[hx], hx, np.ones(len(hx)))
    A.add(A.r + csm_ids, v["slack"] + csm_ids, -np.ones(P))
    A.bound([-np.inf] * P, p.seats()[:P] - fixed_high[:P], P)
    if cfg.max_load is not None:
        A.add(A.r + pc[xi], xi, w[xi])
        A.bound([-np.inf] * P, np.maximum(cfg.max_load - fixed_load[:P], 0.0), P)
    # move caps: out of the owner, into the receiver (moves between roster CSMs only)
    mv = np.flatnonzero(is_move)
    A.add(A.r + p.owner[pa[mv]], mv, np.ones(len(mv)))
    A.bound([-np.inf] * P, p.out_caps()[:P], P)
    mv_in = mv[pc[mv] < P]
    A.add(A.r + pc[mv_in], mv_in, np.ones(len(mv_in)))
    A.bound([-np.inf] * P, [float(cfg.max_moves_per_csm)] * P, P)


def milp_assignment(p: Problem, hint: np.ndarray | None = None) -> tuple[np.ndarray | None, dict]:
    """Solve with HiGHS; (assignment or None, solver facts). See `_candidates` for `hint`.

    Parameters
    ----------
    p : Problem
        The rebalancing problem built by `models.territories.rebalance`.
    hint : ndarray of int, optional
        An assignment (e.g. the greedy one) whose pairs are offered to the solver.

    Returns
    -------
    tuple
        (CSM index per account, or None when HiGHS found no usable solution; solver facts:
        status, message, sizes, gap, wall and CPU seconds).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    cfg = p.cfg
    pa, pc = _candidates(p, hint)
    n_x, P = len(pa), p.n_pool
    fixed_load, fixed_high = p.fixed_load()
    # variables: x (n_x) | Lmax, Lmin | dpos (P) | dneg (P) | cap slack (P)
    v = {"lmax": n_x, "lmin": n_x + 1, "dpos": n_x + 2, "dneg": n_x + 2 + P}
    v["slack"] = n_x + 2 + 2 * P
    n_var = v["slack"] + P
    is_move = (p.owner[pa] >= 0) & (pc != p.owner[pa])
    c = np.zeros(n_var)
    c[:n_x] = cfg.move_cost * is_move
    c[v["lmax"]], c[v["lmin"]] = cfg.spread_weight, -cfg.spread_weight
    c[v["dpos"] : v["slack"]] = 1.0
    c[v["slack"] :] = 1000.0 * (1.0 + float(p.weight.max(initial=1.0)))  # capacity ~ hard

    A = _Constraints()
    _load_rows(A, p, pa, pc, v, fixed_load)
    _limit_rows(A, p, pa, pc, v, fixed_load, fixed_high, is_move)
    matrix = coo_array(
        (np.concatenate(A.vals), (np.concatenate(A.rows), np.concatenate(A.cols))),
        shape=(A.r, n_var),
    ).tocsr()
    integrality = np.zeros(n_var)
    integrality[:n_x] = 1
    ub = np.full(n_var, np.inf)
    ub[:n_x] = 1.0
    lb = np.zeros(n_var)
    lb[v["lmin"]] = -np.inf
    lb[v["lmax"]] = -np.inf
    t0 = time.process_time()
    w0 = time.perf_counter()
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(lb, ub),
        constraints=LinearConstraint(matrix, np.asarray(A.lo), np.asarray(A.hi)),
        options={"time_limit": float(cfg.time_limit_seconds), "mip_rel_gap": cfg.mip_rel_gap},
    )
    facts = {
        "status": int(res.status),
        "message": str(res.message),
        "variables": int(n_var),
        "binary_variables": int(n_x),
        "constraints": int(A.r),
        "mip_gap": None if getattr(res, "mip_gap", None) is None else float(res.mip_gap),
        "solve_seconds": round(time.perf_counter() - w0, 3),
        "solve_cpu_seconds": round(time.process_time() - t0, 3),
    }
    if res.x is None or res.status not in (0, 1):
        return None, facts
    x = res.x[:n_x] > 0.5
    assign = np.where(p.fixed, p.owner_any, -1)
    assign[pa[x]] = pc[x]
    if (assign[p.free] < 0).any():  # rounding trouble: treat as no solution
        return None, facts
    return assign, facts
