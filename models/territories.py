"""Territory rebalancing: who takes which high-touch and standard account.

The segmenter recommends a coverage tier per account; this module assigns every account
whose (target) tier is served by a named CSM to one, so that complexity-weighted loads
(`models.segment.LoadConfig`: coverage x segment x at-risk weights, the same weights as
`models.segment.csm_load`) are balanced within each CSM's capacity while keeping as many
existing CSM relationships as possible.

Rules
-----
* **Frozen accounts never move.** An account that renews within
  ``renewal_window_days`` or is at risk stays with its current CSM and is listed as an
  exception; a downgrade it is due for is deferred (it keeps its current tier, and its
  weight, until the migration plan's last wave). An upgrade is applied in place. An
  account without a CSM has no relationship to keep: it is assigned even when at risk.
* **Capacity.** A CSM holds at most ``capacity`` high-touch accounts (the ``csms``
  table's ``capacity`` when given, else the configured default). Frozen accounts can
  force a CSM over it; that is reported (``capacity_forced``), never fixed by a move.
  An optional ``max_load`` caps each CSM's weighted load.
* **Move cap.** A CSM gives up at most ``max_moves_per_csm`` accounts and takes on at
  most as many (this plan is one quarter's). With ``capacity_first`` (default) a CSM
  over capacity may give up its excess of high-touch accounts on top, so that capacity
  can always be restored; those extra moves are counted in the balance figures. Handovers from CSMs outside the roster and
  first assignments of accounts without a CSM are not moves between two CSMs of the
  team and are not capped (they are listed, with their reason).
* **Objective** (load units): ``sum_j |load_j - mean| + spread_weight * (max - min)
  + move_cost * moves``, over the roster's CSMs.

Methods: see `models.territory_solvers` (MILP with HiGHS, and the greedy fallback).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

from features.errors import InputError
from features.names import COVERAGE_LEVELS
from models.segment import LoadConfig
from models.territory_config import MigrationConfig, TerritoryConfig
from models.territory_solvers import (
    Problem,
    greedy_assignment,
    milp_assignment,
    objective,
    score,
)

log = logging.getLogger("nrrcast.territories")

__all__ = [
    "BOOK_COLUMNS",
    "MigrationConfig",
    "RebalanceResult",
    "TerritoryConfig",
    "balance_measures",
    "check_roster",
    "constraint_violations",
    "rebalance",
]

BOOK_COLUMNS = ("account_id", "csm_id", "coverage_current", "coverage_recommended", "segment")
"""Columns `rebalance` needs (``at_risk`` and ``days_to_renewal`` are optional)."""
UNASSIGNED = "(unassigned)"


# ----------------------------------------------------------------------------- inputs


def check_roster(csms: pd.DataFrame | None) -> pd.DataFrame | None:
    """Validate the optional ``csms`` table (csm_id, name, email, capacity).

    Parameters
    ----------
    csms : DataFrame or None
        The roster; ``name``, ``email`` and ``capacity`` are optional columns.

    Returns
    -------
    DataFrame or None
        ``csm_id`` (str), ``name``, ``email`` and ``capacity`` (float, NaN = not given),
        one row per CSM; None when `csms` is None or empty.

    Raises
    ------
    InputError
        A ValueError naming the table, column and row count of a missing id column, null
        or duplicate ids, or a negative / non-numeric capacity.
    """
    if csms is None or len(csms) == 0:
        return None
    if "csm_id" not in csms.columns:
        raise InputError(f"csms: column csm_id is missing ({len(csms)} rows)")
    ids = csms["csm_id"]
    if ids.isna().any():
        raise InputError(f"csms.csm_id: {int(ids.isna().sum())} rows have no csm_id")
    ids = ids.astype("str")
    dup = ids.duplicated()
    if dup.any():
        raise InputError(f"csms.csm_id: {int(dup.sum())} duplicate rows, e.g. {ids[dup].iloc[0]!r}")
    out = pd.DataFrame({"csm_id": ids.to_numpy(dtype=object)})
    for col in ("name", "email"):
        out[col] = csms[col].astype(object).to_numpy() if col in csms.columns else None
    if "capacity" in csms.columns:
        cap = pd.to_numeric(csms["capacity"], errors="coerce").to_numpy(np.float64)
        bad = (np.isnan(cap) & csms["capacity"].notna().to_numpy()) | (cap < 0)
        if bad.any():
            raise InputError(f"csms.capacity: {int(bad.sum())} rows are negative or not a number")
        out["capacity"] = cap
    else:
        out["capacity"] = np.nan
    return out


def _require(book: pd.DataFrame) -> None:
    missing = [c for c in BOOK_COLUMNS if c not in book.columns]
    if missing:
        raise ValueError(f"book lacks columns {missing} ({len(book)} rows)")
    dup = book["account_id"].duplicated()
    if dup.any():
        raise ValueError(
            f"book: {int(dup.sum())} duplicate account_id rows, e.g. "
            f"{book.loc[dup, 'account_id'].iloc[0]!r}"
        )
    if "days_to_renewal" in book.columns:
        d = pd.to_numeric(book["days_to_renewal"], errors="coerce").to_numpy(np.float64)
        if (d < 0).any():
            raise ValueError(f"book.days_to_renewal: {int((d < 0).sum())} rows are negative")


def _tier_rank(col: pd.Series) -> np.ndarray:
    """0/1/2 for digital/standard/high_touch; -1 unknown."""
    return pd.Categorical(col.astype("str"), categories=list(COVERAGE_LEVELS)).codes.astype(
        np.int64
    )


def _weights(rank: np.ndarray, segment: pd.Series, at_risk: np.ndarray, w: LoadConfig):
    cov = np.array([w.coverage[c] for c in COVERAGE_LEVELS] + [0.0])
    seg_names = list(w.segment)
    seg_w = np.array([w.segment[s] for s in seg_names] + [1.0])
    seg_code = pd.Categorical(segment.astype("str"), categories=seg_names).codes
    risk = np.where(at_risk, w.at_risk, 1.0)
    return cov[rank] * seg_w[seg_code] * risk


# ----------------------------------------------------------------------------- result


@dataclass
class RebalanceResult:
    """A proposed assignment and everything a CS operations team checks before running it.

    Attributes
    ----------
    assignment : one row per account in scope (named book before or after): account_id,
        name, csm_before, csm_after, coverage_current, coverage_after (the tier it will
        have; a deferred downgrade keeps the current one), weight_before, weight_after,
        change (stay / move / handover / first_assignment / leaves_named_book), frozen,
        exception_reason, days_to_renewal, renewal_date, at_risk, p_churn.
    moves : accounts whose CSM changes: account_id, name, from_csm, to_csm, kind, reason,
        renewal_date, days_to_renewal, risk_notes, coverage_current, coverage_after, weight.
    loads : one row per CSM: in_roster, capacity, accounts/high-touch/load before and
        after, load_change, moves_out, moves_in, over_capacity, capacity_forced.
    exceptions : frozen accounts (they stay): account_id, name, csm_id, reason,
        deferred_tier_change, renewal_date, risk_notes.
    balance : measures before and after (max, min, mean, cv of load), moves, share
        moved, method, status, gap, solve seconds, objective, violations.
    method : 'milp' or 'greedy' (what produced the assignment).
    """

    assignment: pd.DataFrame
    moves: pd.DataFrame
    loads: pd.DataFrame
    exceptions: pd.DataFrame
    balance: dict[str, Any]
    method: str
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- main


def rebalance(
    book: pd.DataFrame,
    csms: pd.DataFrame | None = None,
    cfg: TerritoryConfig | None = None,
    *,
    load: LoadConfig | None = None,
    default_capacity: int = 25,
    as_of: date | None = None,
) -> RebalanceResult:
    """Assign every account served by a named CSM so that loads are balanced.

    Parameters
    ----------
    book : DataFrame, one row per account (the scores of one as_of), with
        `BOOK_COLUMNS`; optional ``at_risk`` (bool), ``days_to_renewal`` (days, NaN
        unknown), ``term_months`` (contract term, for ``renewal_min_term_months``),
        ``name``, ``arr``, ``p_churn``, ``playbook``.
    csms : the optional ``csms`` table (csm_id, name, email, capacity). When given it is
        the roster: only its CSMs receive accounts; accounts of other CSMs are handed over.
        Else the roster is every CSM that owns a named-tier account today.
    cfg : TerritoryConfig (defaults when None).
    load : complexity weights (`models.segment.LoadConfig`; defaults when None).
    default_capacity : high-touch accounts per CSM when neither `csms` nor
        ``cfg.capacity`` says (the segmenter's ``coverage.accounts_per_csm``).
    as_of : date of the book, for renewal dates (default: the book's ``as_of``).

    Returns
    -------
    RebalanceResult

    Examples
    --------
    >>> res = rebalance(scores, csms=None, as_of=date(2026, 9, 1))  # doctest: +SKIP
    >>> res.balance["after"]["cv"], res.method  # doctest: +SKIP
    """
    cfg = cfg or TerritoryConfig()
    load = load or LoadConfig()
    _require(book)
    roster = check_roster(csms)
    b = book.reset_index(drop=True)
    if as_of is None and "as_of" in b.columns and len(b):
        as_of = pd.Timestamp(b["as_of"].iloc[0]).date()
    f, notes = _book_state(b, cfg, load)
    prob = _problem(f, roster, cfg, default_capacity)
    assign, solver = _solve(prob, cfg, notes)
    for note in notes:
        log.info(note)
    return _result(b, prob, assign, locals_=f, roster=roster, solver=solver, notes=notes,
                   as_of=as_of)  # fmt: skip


@dataclass
class _Frame:
    """Per-account arrays of the book: tiers, what holds an account, weights."""

    scope: np.ndarray
    before_in: np.ndarray
    after_in: np.ndarray
    frozen: np.ndarray
    deferred: np.ndarray
    renew_soon: np.ndarray
    risky: np.ndarray
    cur: np.ndarray
    target: np.ndarray
    dtr: np.ndarray
    term: np.ndarray
    at_risk: np.ndarray
    owner_name: np.ndarray
    weight_before: np.ndarray
    weight_after: np.ndarray


def _optional_number(b: pd.DataFrame, col: str) -> np.ndarray:
    """A numeric column of the book as float64 (NaN when unparsable or missing)."""
    if col not in b.columns:
        return np.full(len(b), np.nan)
    return pd.to_numeric(b[col], errors="coerce").to_numpy(np.float64)


def _book_state(
    b: pd.DataFrame, cfg: TerritoryConfig, load: LoadConfig
) -> tuple[_Frame, list[str]]:
    """Which accounts are in the named book before and after, which are frozen, and why."""
    n = len(b)
    notes: list[str] = []
    cur = _tier_rank(b["coverage_current"])
    rec = _tier_rank(b["coverage_recommended"])
    named = np.array([COVERAGE_LEVELS.index(t) for t in cfg.tiers])
    at_risk = (
        b["at_risk"].fillna(False).to_numpy(dtype=bool)
        if "at_risk" in b.columns
        else np.zeros(n, bool)
    )
    dtr = _optional_number(b, "days_to_renewal")
    owner_name = b["csm_id"].astype(object).where(b["csm_id"].notna(), None).to_numpy()
    owner_name = np.array([None if v is None else str(v) for v in owner_name], dtype=object)
    has_owner = owner_name != None  # noqa: E711 (element-wise)
    term = _optional_number(b, "term_months")
    renew_soon = ~np.isnan(dtr) & (dtr <= cfg.renewal_window_days)
    if cfg.renewal_min_term_months:  # unknown terms are held
        renew_soon &= np.isnan(term) | (term >= cfg.renewal_min_term_months)
    risky = at_risk & cfg.keep_at_risk
    before_in = np.isin(cur, named) & has_owner
    frozen = (renew_soon | risky) & has_owner
    deferred = frozen & (cur >= 0) & (rec < cur)
    target = np.where(deferred, cur, rec)
    after_in = np.isin(target, named)
    scope = before_in | after_in
    unknown_renewal = int((np.isnan(dtr) & scope).sum())
    if unknown_renewal and "days_to_renewal" in b.columns:
        notes.append(
            f"{unknown_renewal} accounts in scope have no known renewal date: "
            "the renewal window cannot hold them"
        )
    f = _Frame(
        scope=scope, before_in=before_in, after_in=after_in, frozen=frozen,
        deferred=deferred, renew_soon=renew_soon, risky=risky, cur=cur, target=target,
        dtr=dtr, term=term, at_risk=at_risk, owner_name=owner_name,
        weight_before=_weights(np.where(before_in, cur, -1), b["segment"], at_risk, load),
        weight_after=_weights(np.where(after_in, target, -1), b["segment"], at_risk, load),
    )  # fmt: skip
    return f, notes


def _problem(
    f: _Frame, roster: pd.DataFrame | None, cfg: TerritoryConfig, default_capacity: int
) -> Problem:
    """The solvers' problem: the roster (plus outside owners of frozen accounts) and arrays."""
    if roster is not None:
        pool = list(roster["csm_id"])
        cap_given = dict(zip(roster["csm_id"], roster["capacity"], strict=True))
    else:
        pool = sorted(set(f.owner_name[f.before_in]))
        cap_given = {}
    default_cap = float(cfg.capacity if cfg.capacity is not None else default_capacity)
    pool_set = set(pool)
    outside = sorted(set(f.owner_name[f.after_in & f.frozen]) - pool_set)
    csm_list = pool + outside
    index = {c: k for k, c in enumerate(csm_list)}
    owner_any = np.array([index.get(o, -1) if o is not None else -1 for o in f.owner_name])
    owner = np.where(owner_any < len(pool), owner_any, -1)
    capacity = np.array(
        [cap_given[c] if not np.isnan(cap_given.get(c, np.nan)) else default_cap for c in pool]
        + [np.inf] * len(outside)
    )
    fixed = f.after_in & f.frozen
    free = f.after_in & ~f.frozen
    if free.any() and not pool:
        raise InputError(
            f"{int(free.sum())} accounts need a CSM but there is no CSM to assign them to "
            "(no csms table and no account has a CSM today)",
            hint="add a csms table (csm_id, name, email, capacity) to the source",
        )
    total = float(f.weight_after[f.after_in & (fixed & (owner >= 0) | free)].sum())
    return Problem(
        csms=csm_list,
        n_pool=len(pool),
        capacity=capacity,
        owner=owner,
        owner_any=owner_any,
        weight=f.weight_after,
        high=(f.target == COVERAGE_LEVELS.index("high_touch")) & f.after_in,
        fixed=fixed,
        free=free,
        target=total / len(pool) if pool else 0.0,
        cfg=cfg,
    )


def _solve(
    prob: Problem, cfg: TerritoryConfig, notes: list[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The assignment (MILP when asked and usable, else greedy) and the solver's facts.

    Why a method was not used is appended to `notes`.
    """
    solver: dict[str, Any] = {"requested": cfg.method}
    assign = None
    t0 = time.perf_counter()
    greedy = greedy_assignment(prob)
    solver["greedy_seconds"] = round(time.perf_counter() - t0, 3)
    if cfg.method == "milp" and prob.free.any():
        try:
            assign, facts = milp_assignment(prob, hint=greedy)
            solver.update(facts)
            if assign is None:
                notes.append(
                    f"HiGHS found no usable solution ({facts['message']}); greedy method used"
                )
        except ImportError as exc:  # scipy without HiGHS
            notes.append(f"scipy.optimize.milp unavailable ({exc}); greedy method used")
        except Exception as exc:  # noqa: BLE001 - any solver failure falls back, and says so
            log.warning("MILP failed (%s): using the greedy method", exc)
            notes.append(f"MILP failed ({exc}); greedy method used")
    if assign is not None and solver.get("status") == 1:
        notes.append(
            f"HiGHS stopped at the time limit ({cfg.time_limit_seconds:g} s) with a relative "
            f"gap of {solver.get('mip_gap')}"
        )
        solver["objective_milp"] = round(score(prob, assign), 4)
        solver["objective_greedy"] = round(score(prob, greedy), 4)
        if score(prob, greedy) < score(prob, assign) - 1e-9:
            assign = None  # the incumbent at the time limit is worse than the greedy start
            notes.append("the greedy assignment scores better than that incumbent: kept it")
    method = "milp" if assign is not None else "greedy"
    if assign is None:
        assign = greedy
    solver["method"] = method
    solver["seconds"] = round(time.perf_counter() - t0, 3)
    return assign, solver


def _tier_names(rank: np.ndarray) -> np.ndarray:
    names = np.array(list(COVERAGE_LEVELS) + [None], dtype=object)
    return names[rank]


def _risk_notes(b: pd.DataFrame, f: _Frame, rows: np.ndarray) -> list[str]:
    p = (
        b["p_churn"].to_numpy(np.float64, na_value=np.nan)
        if "p_churn" in b.columns
        else np.full(len(b), np.nan)
    )
    play = b["playbook"].astype(object).to_numpy() if "playbook" in b.columns else None
    out = []
    for i in rows:
        parts = []
        if f.at_risk[i]:
            parts.append("at risk" + (f" (p(churn) {p[i]:.0%})" if not np.isnan(p[i]) else ""))
        elif not np.isnan(p[i]):
            parts.append(f"p(churn) {p[i]:.0%}")
        if not np.isnan(f.dtr[i]):
            parts.append(f"renews in {int(f.dtr[i])} days")
        else:
            parts.append("renewal date unknown")
        if play is not None and isinstance(play[i], str) and play[i]:
            parts.append(f"playbook: {play[i]}")
        out.append("; ".join(parts))
    return out


@dataclass
class _Changes:
    """What the assignment changes, per account of the book (all arrays of its length)."""

    after_name: np.ndarray  # CSM after (None outside the named book)
    changed: np.ndarray  # in the named book after, with another CSM
    in_pool_owner: np.ndarray  # today's CSM is on the roster
    kind: np.ndarray  # stay / move / handover / first_assignment / leaves_named_book
    exc_reason: np.ndarray  # why a frozen account stays (None otherwise)
    names: np.ndarray
    p_churn: np.ndarray
    renew_date: list[date | None]

    def renewal_dates(self, rows: np.ndarray) -> np.ndarray:
        return pd.to_datetime(pd.Series([self.renew_date[i] for i in rows])).to_numpy()


def _changes(
    b: pd.DataFrame, p: Problem, assign: np.ndarray, f: _Frame, as_of: date | None
) -> _Changes:
    """Classify each account's change and say why each frozen account stays."""
    csm_arr = np.array(p.csms + [None], dtype=object)
    after_name = np.where(f.after_in, csm_arr[assign], None)
    before = f.owner_name
    changed = f.after_in & (after_name != before)
    in_pool_owner = p.owner >= 0
    kind = np.select(
        [
            ~f.after_in,
            ~changed,
            changed & (before == None),  # noqa: E711
            changed & ~in_pool_owner,
        ],
        ["leaves_named_book", "stay", "first_assignment", "handover"],
        "move",
    )
    exc_reason = np.full(len(b), None, dtype=object)
    for i in np.flatnonzero(f.frozen & f.scope):
        why = []
        if f.risky[i]:
            why.append("at risk")
        if f.renew_soon[i]:
            why.append(f"renews in {int(f.dtr[i])} days (window {p.cfg.renewal_window_days} days)")
        exc_reason[i] = "; ".join(why)
    return _Changes(
        after_name=after_name,
        changed=changed,
        in_pool_owner=in_pool_owner,
        kind=kind,
        exc_reason=exc_reason,
        names=(
            b["name"].astype(object).to_numpy() if "name" in b.columns else np.full(len(b), None)
        ),
        p_churn=(
            b["p_churn"].to_numpy(np.float64, na_value=np.nan)
            if "p_churn" in b.columns
            else np.full(len(b), np.nan)
        ),
        renew_date=(
            [None if np.isnan(d) else as_of + timedelta(days=int(d)) for d in f.dtr]
            if as_of is not None
            else [None] * len(b)
        ),
    )


def _assignment_frame(b: pd.DataFrame, f: _Frame, c: _Changes) -> pd.DataFrame:
    """One row per account in scope: CSM and tier before and after, and why it is held."""
    rows = np.flatnonzero(f.scope)
    return pd.DataFrame(
        {
            "account_id": b["account_id"].to_numpy(dtype=object)[rows],
            "name": c.names[rows],
            "csm_before": f.owner_name[rows],
            "csm_after": c.after_name[rows],
            "coverage_current": _tier_names(f.cur)[rows],
            "coverage_after": _tier_names(np.where(f.target >= 0, f.target, -1))[rows],
            "weight_before": f.weight_before[rows],
            "weight_after": f.weight_after[rows],
            "change": c.kind[rows],
            "frozen": f.frozen[rows],
            "exception_reason": c.exc_reason[rows],
            "days_to_renewal": f.dtr[rows],
            "term_months": f.term[rows],
            "renewal_date": c.renewal_dates(rows),
            "at_risk": f.at_risk[rows],
            "p_churn": c.p_churn[rows],
        }
    )


def _loads_frame(
    p: Problem, f: _Frame, c: _Changes, moved: np.ndarray, roster: pd.DataFrame | None
) -> pd.DataFrame:
    """One row per CSM: accounts, high-touch accounts and load before and after, moves."""
    before, after_name = f.owner_name, c.after_name
    everyone = sorted(
        set(p.csms) | set(before[f.before_in]) | {x for x in after_name[f.after_in] if x}
    )
    roster_set = set(p.csms[: p.n_pool])
    cap = dict(zip(p.csms, p.capacity, strict=True))
    hi = COVERAGE_LEVELS.index("high_touch")
    bi, ai = f.before_in, f.after_in
    before_grp = pd.DataFrame(
        {"csm_id": before[bi], "w": f.weight_before[bi], "h": f.cur[bi] == hi}
    ).groupby("csm_id").agg(accounts_before=("w", "size"), load_before=("w", "sum"),
                            high_touch_before=("h", "sum"))  # fmt: skip
    after_grp = pd.DataFrame(
        {"csm_id": after_name[ai], "w": f.weight_after[ai], "h": f.target[ai] == hi}
    ).groupby("csm_id").agg(accounts_after=("w", "size"), load_after=("w", "sum"),
                            high_touch_after=("h", "sum"))  # fmt: skip
    moves_out = pd.Series(before[moved]).value_counts()
    moves_in = pd.Series(after_name[moved]).value_counts()
    seats = dict(zip(p.csms, p.seats(), strict=True))
    loads = pd.DataFrame({"csm_id": everyone})
    loads["in_roster"] = loads["csm_id"].isin(roster_set)
    loads["capacity"] = [cap.get(x, np.nan) if x in roster_set else np.nan for x in everyone]
    loads = loads.join(before_grp, on="csm_id").join(after_grp, on="csm_id")
    for col in ("accounts_before", "high_touch_before", "accounts_after", "high_touch_after"):
        loads[col] = loads[col].fillna(0).astype(np.int64)
    for col in ("load_before", "load_after"):
        loads[col] = loads[col].fillna(0.0)
    loads["load_change"] = loads["load_after"] - loads["load_before"]
    loads["moves_out"] = loads["csm_id"].map(moves_out).fillna(0).astype(np.int64)
    loads["moves_in"] = loads["csm_id"].map(moves_in).fillna(0).astype(np.int64)
    loads["over_capacity"] = loads["in_roster"] & (loads["high_touch_after"] > loads["capacity"])
    loads["capacity_forced"] = loads["over_capacity"] & (
        loads["high_touch_after"] <= loads["csm_id"].map(seats).astype(float)
    )
    if roster is not None:
        extra = roster.set_index("csm_id")[["name", "email"]].rename(
            columns={"name": "csm_name", "email": "csm_email"}
        )
        loads = loads.join(extra, on="csm_id")
    loads = loads.sort_values(["in_roster", "load_after", "csm_id"], ascending=[False, False, True])
    return loads.reset_index(drop=True)


def _move_reasons(
    p: Problem, f: _Frame, c: _Changes, loads: pd.DataFrame, mrows: np.ndarray
) -> list[str]:
    """Why each account of `mrows` changes CSM (and tier), in the loads' own numbers."""
    before, after_name = f.owner_name, c.after_name
    lb = dict(zip(loads["csm_id"], loads["load_before"], strict=True))
    la = dict(zip(loads["csm_id"], loads["load_after"], strict=True))
    reasons = []
    for i in mrows:
        tier_txt = ""
        if f.target[i] != f.cur[i] and f.cur[i] >= 0:
            tier_txt = f"; tier {COVERAGE_LEVELS[f.cur[i]]} -> {COVERAGE_LEVELS[f.target[i]]}"
        if before[i] is None:
            why = "no CSM today: first assignment to the least-loaded CSM with room"
        elif not c.in_pool_owner[i]:
            why = f"current CSM {before[i]} is not on the roster of named-tier CSMs: handover"
        else:
            why = (
                f"balance: {before[i]} load {lb.get(before[i], 0):.1f} -> "
                f"{la.get(before[i], 0):.1f}, {after_name[i]} "
                f"{lb.get(after_name[i], 0):.1f} -> {la.get(after_name[i], 0):.1f} "
                f"(team mean {p.target:.1f})"
            )
        reasons.append(why + tier_txt)
    return reasons


def _moves_frame(
    b: pd.DataFrame, p: Problem, f: _Frame, c: _Changes, loads: pd.DataFrame
) -> pd.DataFrame:
    """Accounts whose CSM changes, with the reason and the risk to watch."""
    mrows = np.flatnonzero(c.changed & f.scope)
    risk = _risk_notes(b, f, mrows)
    return pd.DataFrame(
        {
            "account_id": b["account_id"].to_numpy(dtype=object)[mrows],
            "name": c.names[mrows],
            "from_csm": f.owner_name[mrows],
            "to_csm": c.after_name[mrows],
            "kind": c.kind[mrows],
            "reason": _move_reasons(p, f, c, loads, mrows),
            "renewal_date": c.renewal_dates(mrows),
            "days_to_renewal": f.dtr[mrows],
            "risk_notes": risk,
            "p_churn": c.p_churn[mrows],
            "coverage_current": _tier_names(f.cur)[mrows],
            "coverage_after": _tier_names(f.target)[mrows],
            "weight": f.weight_after[mrows],
        }
    )


def _exceptions_frame(b: pd.DataFrame, f: _Frame, c: _Changes) -> pd.DataFrame:
    """Frozen accounts in scope: they stay with their CSM, and why."""
    erows = np.flatnonzero(f.frozen & f.scope)
    return pd.DataFrame(
        {
            "account_id": b["account_id"].to_numpy(dtype=object)[erows],
            "name": c.names[erows],
            "csm_id": f.owner_name[erows],
            "reason": c.exc_reason[erows],
            "coverage_current": _tier_names(f.cur)[erows],
            "coverage_recommended": _tier_names(_tier_rank(b["coverage_recommended"]))[erows],
            "deferred_tier_change": f.deferred[erows],
            "renewal_date": c.renewal_dates(erows),
            "days_to_renewal": f.dtr[erows],
            "risk_notes": _risk_notes(b, f, erows),
            "p_churn": c.p_churn[erows],
        }
    )


def _balance(
    p: Problem,
    f: _Frame,
    c: _Changes,
    loads: pd.DataFrame,
    moved: np.ndarray,
    solver: dict[str, Any],
    as_of: date | None,
) -> dict[str, Any]:
    """Balance measures before and after, counts of each kind of change, the objective."""
    cfg = p.cfg
    kind = c.kind
    pool_loads = loads[loads["in_roster"]]
    obj = objective(
        pool_loads.set_index("csm_id").loc[p.csms[: p.n_pool], "load_after"].to_numpy(),
        p.n_pool, p.target, int(moved.sum()), cfg,
    ) if p.n_pool else 0.0  # fmt: skip
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "csms_in_roster": int(p.n_pool),
        "accounts_in_scope": int(f.scope.sum()),
        "accounts_named_after": int(f.after_in.sum()),
        "target_load": round(p.target, 4),
        "before": balance_measures(pool_loads["load_before"]),
        "after": balance_measures(pool_loads["load_after"]),
        "moves": int(moved.sum()),
        "handovers": int((kind == "handover").sum()),
        "first_assignments": int((kind == "first_assignment").sum()),
        "leaving_named_book": int((kind == "leaves_named_book").sum()),
        "share_moved": (round(float(c.changed[f.after_in].mean()), 4) if f.after_in.any() else 0.0),
        "exceptions": int((f.frozen & f.scope).sum()),
        "deferred_tier_changes": int((f.deferred & f.scope).sum()),
        "moves_beyond_cap_to_restore_capacity": int(
            np.clip(
                loads.loc[loads["in_roster"], "moves_out"] - cfg.max_moves_per_csm, 0, None
            ).sum()
        ),
        "objective": round(obj, 4),
        "solver": solver,
        "method": solver["method"],
    }


def _result(
    b: pd.DataFrame,
    p: Problem,
    assign: np.ndarray,
    *,
    locals_: _Frame,
    roster: pd.DataFrame | None,
    solver: dict[str, Any],
    notes: list[str],
    as_of: date | None,
) -> RebalanceResult:
    """Frames and figures of an assignment, its rules' violations checked from the frames."""
    f, cfg = locals_, p.cfg
    c = _changes(b, p, assign, f, as_of)
    moved = c.changed & c.in_pool_owner & f.after_in
    loads = _loads_frame(p, f, c, moved, roster)
    res = RebalanceResult(
        assignment=_assignment_frame(b, f, c),
        moves=_moves_frame(b, p, f, c, loads),
        loads=loads,
        exceptions=_exceptions_frame(b, f, c),
        balance=_balance(p, f, c, loads, moved, solver, as_of),
        method=solver["method"],
        notes=notes,
    )
    res.balance["violations"] = constraint_violations(res, cfg)
    over = res.balance["violations"]["capacity"]
    if over:
        notes.append(
            f"{over} high-touch accounts stay above their CSM's capacity: the move cap "
            f"({cfg.max_moves_per_csm} per CSM), the seats left on the team or the solver's "
            "time limit did not allow more moves; raise the cap or the time limit, add "
            "capacity or downgrade"
        )
    res.balance["notes"] = list(notes)
    return res


def balance_measures(loads: Any) -> dict[str, float]:
    """Max, min, mean, standard deviation and coefficient of variation of CSM loads.

    Parameters
    ----------
    loads : array-like of float
        Load per CSM.

    Returns
    -------
    dict of str to float
        ``max, min, mean, std, cv, spread`` (max - min), rounded to 4 decimals; all 0 when
        `loads` is empty, ``cv`` 0 when the mean is not positive.
    """
    x = np.asarray(loads, dtype=np.float64)
    if not len(x):
        return {"max": 0.0, "min": 0.0, "mean": 0.0, "std": 0.0, "cv": 0.0, "spread": 0.0}
    mean = float(x.mean())
    std = float(x.std())
    return {
        "max": round(float(x.max()), 4),
        "min": round(float(x.min()), 4),
        "mean": round(mean, 4),
        "std": round(std, 4),
        "cv": round(std / mean, 4) if mean > 0 else 0.0,
        "spread": round(float(x.max() - x.min()), 4),
    }


def constraint_violations(res: RebalanceResult, cfg: TerritoryConfig) -> dict[str, int]:
    """Count each rule's violations in a result (all must be 0), checked from its frames.

    * ``capacity``: high-touch accounts above a roster CSM's capacity that were not forced
      by frozen accounts (accounts over, summed over CSMs);
    * ``renewal_window``: accounts renewing within the window whose CSM changed;
    * ``at_risk``: at-risk accounts whose CSM changed (when ``keep_at_risk``);
    * ``move_cap``: moves beyond the cap, out of and into each CSM, summed (a CSM over
      capacity may give up its excess of high-touch accounts on top, when
      ``capacity_first``);
    * ``unassigned``: accounts of a named tier left without a CSM;
    * ``max_load``: roster CSMs above ``max_load`` (when set).

    Parameters
    ----------
    res : RebalanceResult
        A rebalance's ``assignment`` and ``loads`` frames.
    cfg : TerritoryConfig
        The rules the rebalance was run with.

    Returns
    -------
    dict of str to int
        Violation count per rule above.
    """
    a = res.assignment
    had = a["csm_before"].notna()
    changed = had & a["csm_after"].notna() & (a["csm_after"] != a["csm_before"])
    d = a["days_to_renewal"].to_numpy(np.float64)
    soon = ~np.isnan(d) & (d <= cfg.renewal_window_days)
    if cfg.renewal_min_term_months and "term_months" in a.columns:
        term = a["term_months"].to_numpy(np.float64)
        soon &= np.isnan(term) | (term >= cfg.renewal_min_term_months)
    ld = res.loads[res.loads["in_roster"]]
    forced_seats = (
        a[a["frozen"] & (a["coverage_after"] == "high_touch")].groupby("csm_after").size()
    )
    allowed = np.maximum(
        ld["capacity"].to_numpy(np.float64),
        ld["csm_id"].map(forced_seats).fillna(0).to_numpy(np.float64),
    )
    over = np.clip(ld["high_touch_after"].to_numpy(np.float64) - allowed, 0, None)
    K = cfg.max_moves_per_csm
    mv = a[(a["change"] == "move")]
    out_n = mv.groupby("csm_before").size()
    in_n = mv.groupby("csm_after").size()
    out_limit = pd.Series(float(K), index=ld["csm_id"].to_numpy())
    if cfg.capacity_first:
        high0 = a[a["coverage_after"] == "high_touch"].groupby("csm_before").size()
        excess = ld["csm_id"].map(high0).fillna(0).to_numpy(np.float64) - allowed
        out_limit += np.clip(excess, 0, None)
    out_over = out_n - out_limit.reindex(out_n.index).fillna(float(K))
    named = a["coverage_after"].isin(cfg.tiers) & (a["change"] != "leaves_named_book")
    return {
        "capacity": int(over.sum()),
        "renewal_window": int((changed & soon).sum()),
        "at_risk": int((changed & a["at_risk"].astype(bool)).sum()) if cfg.keep_at_risk else 0,
        "move_cap": int(np.clip(out_over, 0, None).sum() + np.clip(in_n - K, 0, None).sum()),
        "unassigned": int((named & a["csm_after"].isna()).sum()),
        "max_load": int((ld["load_after"] > cfg.max_load + 1e-9).sum())
        if cfg.max_load is not None
        else 0,
    }
