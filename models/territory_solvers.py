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
        idx = self.owner_any[self.fixed]
        load = np.bincount(idx, self.weight[self.fixed], minlength=self.n_csm)
        high = np.bincount(idx, self.high[self.fixed].astype(float), minlength=self.n_csm)
        return load, high

    def seats(self) -> np.ndarray:
        """High-touch seats per CSM: capacity, or the frozen count when that is higher."""
        _, fixed_high = self.fixed_load()
        return np.maximum(self.capacity, fixed_high)

    def out_caps(self) -> np.ndarray:
        """Accounts each CSM may give up: the move cap, plus its excess of high-touch
        accounts over its seats when ``capacity_first``."""
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
    """The MILP's objective of an assignment, capacity overflow penalised as in the MILP."""
    placed = assign >= 0
    loads = np.bincount(assign[placed], p.weight[placed], minlength=p.n_csm)
    high = np.bincount(assign[placed], p.high[placed].astype(float), minlength=p.n_csm)
    moves = int(((p.owner >= 0) & p.free & (assign != p.owner)).sum())
    over = np.clip(high - p.seats(), 0, None)[: p.n_pool].sum()
    penalty = 1000.0 * (1.0 + float(p.weight.max(initial=1.0)))
    return objective(loads, p.n_pool, p.target, moves, p.cfg) + penalty * float(over)


def objective(loads: np.ndarray, n_pool: int, target: float, moves: int, cfg) -> float:
    pool = loads[:n_pool]
    spread = float(pool.max() - pool.min()) if n_pool else 0.0
    return float(np.abs(pool - target).sum() + cfg.spread_weight * spread + cfg.move_cost * moves)


# ----------------------------------------------------------------------------- greedy


def greedy_assignment(p: Problem) -> np.ndarray:
    """Assignment (CSM index per account, -1 outside scope) by the documented greedy method."""
    cfg = p.cfg
    n_acc = len(p.weight)
    assign = np.where(p.fixed, p.owner_any, -1)
    movable = p.free & (p.owner >= 0)
    assign[movable] = p.owner[movable]
    loads, high = p.fixed_load()
    loads = loads + np.bincount(assign[movable], p.weight[movable], minlength=p.n_csm)
    high = high + np.bincount(assign[movable], p.high[movable].astype(float), minlength=p.n_csm)
    seats = p.seats()
    max_load = cfg.max_load if cfg.max_load is not None else np.inf
    out_n = np.zeros(p.n_csm, dtype=np.int64)
    in_n = np.zeros(p.n_csm, dtype=np.int64)
    K = cfg.max_moves_per_csm
    out_cap = p.out_caps()
    pool = np.arange(p.n_pool)

    def room(j: int, i: int) -> bool:
        return (not p.high[i] or high[j] + 1 <= seats[j]) and loads[j] + p.weight[i] <= max_load

    # 1. accounts that must be placed: largest first to the least-loaded CSM with room
    must = np.flatnonzero(p.free & (p.owner < 0))
    for i in must[np.argsort(-p.weight[must], kind="stable")]:
        order = pool[np.argsort(loads[: p.n_pool], kind="stable")]
        j = next((int(j) for j in order if room(int(j), i)), int(order[0]) if len(order) else -1)
        assign[i] = j
        loads[j] += p.weight[i]
        high[j] += p.high[i]

    def move(i: int, j: int) -> None:
        d = assign[i]
        loads[d] -= p.weight[i]
        high[d] -= p.high[i]
        loads[j] += p.weight[i]
        high[j] += p.high[i]
        if p.owner[i] >= 0:
            out_n[d] += 1
            in_n[j] += 1
        assign[i] = j

    # 2. capacity repair: over-capacity CSMs hand high-touch accounts to CSMs with seats
    for d in pool:
        while high[d] > seats[d] and out_n[d] < out_cap[d]:
            mine = np.flatnonzero(movable & (assign == d) & (assign == p.owner) & p.high)
            if not len(mine):
                break
            i = int(mine[np.argmax(p.weight[mine])])
            order = pool[np.argsort(loads[: p.n_pool], kind="stable")]
            j = next((int(j) for j in order if j != d and in_n[j] < K and room(int(j), i)), None)
            if j is None:
                break
            move(i, j)

    # 3. local search: best single move from the most-loaded CSMs to the least-loaded
    def excluding(order: np.ndarray, d: int, rs: np.ndarray) -> np.ndarray:
        """Per receiver, the load of the first CSM in `order` that is neither d nor it."""
        head = order[:3]
        vals = loads[head]
        ok = (head[None, :] != d) & (head[None, :] != rs[:, None])
        first = np.argmax(ok, axis=1)
        return np.where(ok.any(axis=1), vals[first], np.nan)

    max_load_arr = np.full(p.n_csm, max_load)
    for _ in range(max(1, n_acc) * 2):
        pl = loads[: p.n_pool]
        spread0 = float(pl.max() - pl.min())
        best: tuple[float, int, int] | None = None
        desc = pool[np.argsort(-pl, kind="stable")]
        asc = desc[::-1]
        rs_all = np.array([int(r) for r in asc if in_n[r] < K][:GREEDY_RECEIVERS], dtype=np.int64)
        for d in desc[:GREEDY_DONORS]:
            d = int(d)
            if out_n[d] >= out_cap[d] or not len(rs_all):
                continue
            mine = np.flatnonzero(movable & (assign == d) & (assign == p.owner))
            rs = rs_all[rs_all != d]
            if not len(mine) or not len(rs):
                continue
            w = p.weight[mine][:, None]
            ld_new = loads[d] - w
            lr_new = loads[rs][None, :] + w
            top = excluding(desc, d, rs)[None, :]
            bottom = excluding(asc, d, rs)[None, :]
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
            fits = (~p.high[mine][:, None] | (high[rs] + 1 <= seats[rs])[None, :]) & (
                lr_new <= max_load_arr[rs][None, :]
            )
            gain = np.where(fits, gain, np.inf)
            k = int(np.argmin(gain))
            g = float(gain.flat[k])
            if g < -1e-9 and (best is None or g < best[0]):
                best = (g, int(mine[k // len(rs)]), int(rs[k % len(rs)]))
        if best is None:
            break
        move(best[1], best[2])
    return assign


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


def milp_assignment(p: Problem, hint: np.ndarray | None = None) -> tuple[np.ndarray | None, dict]:
    """Solve with HiGHS; (assignment or None, solver facts). See `_candidates` for `hint`."""
    from scipy.optimize import Bounds, LinearConstraint, milp
    from scipy.sparse import coo_array

    cfg = p.cfg
    pa, pc = _candidates(p, hint)
    n_x, P = len(pa), p.n_pool
    fixed_load, fixed_high = p.fixed_load()
    seats = p.seats()
    # variables: x (n_x) | Lmax, Lmin | dpos (P) | dneg (P) | cap slack (P)
    i_lmax, i_lmin = n_x, n_x + 1
    o_dp, o_dn, o_s = n_x + 2, n_x + 2 + P, n_x + 2 + 2 * P
    n_var = o_s + P
    is_move = (p.owner[pa] >= 0) & (pc != p.owner[pa])
    c = np.zeros(n_var)
    c[:n_x] = cfg.move_cost * is_move
    c[i_lmax], c[i_lmin] = cfg.spread_weight, -cfg.spread_weight
    c[o_dp:o_s] = 1.0
    c[o_s:] = 1000.0 * (1.0 + float(p.weight.max(initial=1.0)))  # capacity is (almost) hard

    rows, cols, vals, lo, hi = [], [], [], [], []
    r = 0

    def add(rr, cc, vv):
        rows.append(np.asarray(rr, np.int64))
        cols.append(np.asarray(cc, np.int64))
        vals.append(np.asarray(vv, np.float64))

    # each free account exactly once
    _, acc_row = np.unique(pa, return_inverse=True)
    n_acc = int(acc_row.max()) + 1 if n_x else 0
    add(r + acc_row, np.arange(n_x), np.ones(n_x))
    lo += [1.0] * n_acc
    hi += [1.0] * n_acc
    r += n_acc
    w = p.weight[pa]
    in_pool = pc < P
    xi = np.flatnonzero(in_pool)
    csm_ids = np.arange(P)
    # load_j - dpos_j + dneg_j = target - fixed_j
    add(r + pc[xi], xi, w[xi])
    add(r + csm_ids, o_dp + csm_ids, -np.ones(P))
    add(r + csm_ids, o_dn + csm_ids, np.ones(P))
    lo += list(p.target - fixed_load[:P])
    hi += list(p.target - fixed_load[:P])
    r += P
    # load_j - Lmax <= -fixed_j
    add(r + pc[xi], xi, w[xi])
    add(r + csm_ids, np.full(P, i_lmax), -np.ones(P))
    lo += [-np.inf] * P
    hi += list(-fixed_load[:P])
    r += P
    # load_j - Lmin >= -fixed_j
    add(r + pc[xi], xi, w[xi])
    add(r + csm_ids, np.full(P, i_lmin), -np.ones(P))
    lo += list(-fixed_load[:P])
    hi += [np.inf] * P
    r += P
    # high-touch seats (slack penalised)
    hx = xi[p.high[pa[xi]]]
    add(r + pc[hx], hx, np.ones(len(hx)))
    add(r + csm_ids, o_s + csm_ids, -np.ones(P))
    lo += [-np.inf] * P
    hi += list(seats[:P] - fixed_high[:P])
    r += P
    if cfg.max_load is not None:
        add(r + pc[xi], xi, w[xi])
        lo += [-np.inf] * P
        hi += list(np.maximum(cfg.max_load - fixed_load[:P], 0.0))
        r += P
    # move caps: out of the owner, into the receiver (moves between roster CSMs only)
    mv = np.flatnonzero(is_move)
    add(r + p.owner[pa[mv]], mv, np.ones(len(mv)))
    lo += [-np.inf] * P
    hi += list(p.out_caps()[:P])
    r += P
    mv_in = mv[pc[mv] < P]
    add(r + pc[mv_in], mv_in, np.ones(len(mv_in)))
    lo += [-np.inf] * P
    hi += [float(cfg.max_moves_per_csm)] * P
    r += P

    A = coo_array(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(r, n_var)
    ).tocsr()
    integrality = np.zeros(n_var)
    integrality[:n_x] = 1
    ub = np.full(n_var, np.inf)
    ub[:n_x] = 1.0
    lb = np.zeros(n_var)
    lb[i_lmin] = -np.inf
    lb[i_lmax] = -np.inf
    t0 = time.process_time()
    w0 = time.perf_counter()
    res = milp(
        c,
        integrality=integrality,
        bounds=Bounds(lb, ub),
        constraints=LinearConstraint(A, np.asarray(lo), np.asarray(hi)),
        options={"time_limit": float(cfg.time_limit_seconds), "mip_rel_gap": cfg.mip_rel_gap},
    )
    facts = {
        "status": int(res.status),
        "message": str(res.message),
        "variables": int(n_var),
        "binary_variables": int(n_x),
        "constraints": int(r),
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
