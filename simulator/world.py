"""`simulate`: build a whole world and write it as contract-v1 tables plus `truth`.

Layout written to `out`::

    accounts.parquet  subscriptions.parquet  users.parquet  tickets.parquet
    plans.parquet     truth.parquet          manifest.json     csms.parquet
    events/part-YYYY-MM.parquet              (one file per calendar month)

The world is first assembled in a sibling temporary directory and moved into
place at the end, so an interrupted run never leaves a half-written world.
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import simulator.catalog as C
from features import storage
from simulator.accounts import (
    Accounts,
    assign_coverage,
    assign_csm,
    initial_addons,
    make_accounts,
)
from simulator.config import SimConfig
from simulator.contracts import AgentCapacity, Book, ContractHistory, arr_of, run_contracts
from simulator.events import EventContext, write_month
from simulator.latent import NEVER, Latent, simulate_latent
from simulator.summary import SimSummary, labels, summarize
from simulator.tickets import Tickets, make_tickets
from simulator.timeline import Timeline
from simulator.users import Users, make_agents, make_users

log = logging.getLogger("nrrcast.simulator")

STREAMS = ("accounts", "latent", "agents", "contracts", "users", "tickets", "coverage", "actions")


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent random stream per stage, so changing one stage leaves others intact."""
    return {
        name: np.random.default_rng(np.random.SeedSequence([seed, i]))
        for i, name in enumerate(STREAMS)
    }


class _PeakRss:
    """Samples resident memory (this process) every 50 ms; ru_maxrss as a floor."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.05):
            try:
                rss = int(Path("/proc/self/statm").read_text().split()[1]) * page
            except (OSError, IndexError, ValueError):
                return
            self.peak = max(self.peak, rss)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def mb(self) -> float:
        return self.peak / 2**20


def _date32(tl: Timeline, day: np.ndarray) -> pa.Array:
    """Day indices as a date32 array; NEVER becomes null."""
    day = np.asarray(day, dtype=np.int64)
    mask = day >= NEVER
    epoch = int((tl.start_d - np.datetime64("1970-01-01", "D")).astype(np.int64))
    return pa.array(np.where(mask, 0, day + epoch).astype(np.int32), pa.int32(), mask=mask).cast(
        pa.date32()
    )


def _ts(us: np.ndarray, mask: np.ndarray | None = None) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), pa.int64(), mask=mask).cast(pa.timestamp("us"))


def _ids(prefix: str, count: int, width: int) -> np.ndarray:
    return np.char.add(prefix, np.char.zfill(np.arange(count).astype(str), width)).astype(object)


def _write(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


WORLD_LAYOUT = (r"[a-z_]+\.parquet", "events", r"manifest\.json")


class ForeignDirectoryError(storage.UnsafePathError, FileExistsError):
    """The output directory holds something other than a world this simulator wrote."""


def _is_simulated_world(path: Path) -> bool:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("generator") == "nrrcast.simulator"


def _check_out(out: Path) -> Path:
    """Refuse to replace a directory that is not a world written here (a company's export
    with its own manifest.json, notes added to a world, ...)."""
    try:
        out = storage.claim_dir(
            out, "world", layout=WORLD_LAYOUT, adopt=_is_simulated_world, create=False
        )
        storage.check_replaceable(out, "simulated world", WORLD_LAYOUT)
    except storage.UnsafePathError as exc:
        raise ForeignDirectoryError(
            f"{getattr(exc, 'message', exc)}; only a world written by the simulator "
            "(nrrcast marker or its manifest.json) is replaced",
            hint="choose an empty or new directory",
        ) from None
    return out


def simulate(cfg: SimConfig, out: Path, *, progress: bool = True) -> SimSummary:
    """Generate a synthetic B2B SaaS book with known ground truth and write it to `out`.

    Parameters
    ----------
    cfg : SimConfig
        Size, seed, start date and behaviour knobs.
    out : Path
        Target directory. It is replaced if it holds a previous world (has
        `manifest.json`); any other non-empty directory is refused.
    progress : bool, default True
        Print a progress bar (stderr) while events are written.

    Returns
    -------
    SimSummary
        Counts, throughput, peak memory and the realism figures of `summarize`.

    Examples
    --------
    >>> from pathlib import Path
    >>> from simulator import SimConfig, simulate
    >>> s = simulate(SimConfig(accounts=100, months=3), Path("/tmp/world"), progress=False)
    >>> s.accounts
    100
    """
    out = _check_out(Path(out))
    with storage.StoreLock(storage.lock_path(out), what=f"world {out}"):
        storage.recover(out)
        _check_out(out)
        tmp = storage.staging_dir(out, kind="world")
        (tmp / "events").mkdir()
        t0 = time.perf_counter()
        try:
            with _PeakRss() as rss:
                counts = _build(cfg, tmp, progress=progress)
            wall = time.perf_counter() - t0
            storage.swap_dir(tmp, out, point="world")
        except BaseException:
            if tmp.exists():
                storage.cleanup(lambda: shutil.rmtree(tmp), f"remove {tmp.name}")
            raise
    figures = summarize(out)
    # sampled peak of this run; the process-lifetime high-water mark only if sampling failed
    peak = rss.mb if rss.peak else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    extra = figures.pop("extra")
    extra.update(counts["extra"])
    return SimSummary(
        wall_seconds=round(wall, 2),
        events_per_second=round(figures["events"] / wall, 1),
        peak_rss_mb=round(peak, 1),
        extra=extra,
        **figures,
    )


@dataclass
class World:
    """Everything but the events, in memory (events are generated month by month from it)."""

    tl: Timeline
    acc: Accounts
    lat: Latent
    coverage: np.ndarray
    csm: np.ndarray
    hist: ContractHistory
    users: Users
    tickets: Tickets
    timings: dict[str, float]
    agents: AgentCapacity | None = None  # agent run capacity, read by `simulator.rollout`


def build_world(cfg: SimConfig) -> World:
    """Accounts, latent state, contracts with truth, users and tickets (no I/O)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    tl = Timeline(cfg.start_date, cfg.months, cfg.burn_in_days)
    rng = _streams(cfg.seed)
    n_new = int(round(cfg.new_account_share * cfg.accounts))
    n_existing = cfg.accounts - n_new
    # candidates for the opening book: the pre-roll's churn removes some of them
    spare = 1.0 + (0.5 + 0.3 * max(cfg.churn_shift, 0.0)) * cfg.preroll_months / 12
    n_cand = int(np.ceil(n_existing * spare)) + 10 if cfg.preroll_months else n_existing
    acc = make_accounts(cfg, tl, rng["accounts"], n_existing=n_cand, n_new=n_new)
    arr_list = 12.0 * acc.seats0 * C.TIER_PRICE[acc.tier0]
    room = np.clip(np.log(acc.tam / arr_list), 0.0, 4.0)
    lat = simulate_latent(acc, room, tl, rng["latent"])
    lap("latent")
    stage_ref = lat.stage[tl.col(acc.ref_day), np.arange(acc.n)]
    has_ai, has_an = initial_addons(acc, stage_ref, rng["accounts"])
    arr0 = arr_of(Book(acc.tier0, acc.seats0, acc.monthly, has_ai, has_an))
    coverage = assign_coverage(arr0, cfg, rng["coverage"])
    agents = make_agents(acc, lat, tl, cfg, rng["agents"])
    capacity = AgentCapacity(agents.acct, agents.first_day, agents.rate, acc.n)
    hist = run_contracts(
        acc, lat, capacity, has_ai, has_an, coverage, tl, cfg, rng["contracts"], rng["actions"]
    )

    # the opening book: the first n_existing candidates still paying at the start, and
    # every new account; positions ordered by creation (ids grow with time, like a CRM's)
    paying = np.flatnonzero(~acc.is_new & (acc.created_day <= 0) & (hist.churn_day > 0))
    if paying.shape[0] < n_existing:
        raise ValueError(
            f"only {paying.shape[0]} of {n_cand} candidate accounts survive the "
            f"{cfg.preroll_months}-month pre-roll, {n_existing} needed: lower churn_shift "
            "or preroll_months"
        )
    keep = np.concatenate([paying[:n_existing], np.flatnonzero(acc.is_new)])
    keep = keep[np.argsort(acc.created_day[keep], kind="stable")]
    acc, lat, hist, coverage = acc.take(keep), lat.take(keep), hist.take(keep), coverage[keep]
    agents = agents.take(keep)
    csm = assign_csm(coverage, cfg, rng["coverage"])
    lap("contracts")
    users = make_users(acc, lat, hist, agents, tl, rng["users"])
    tickets = make_tickets(acc, lat, hist, users, tl, rng["tickets"])
    lap("users_tickets")
    capacity = AgentCapacity(agents.acct, agents.first_day, agents.rate, acc.n)
    return World(tl, acc, lat, coverage, csm, hist, users, tickets, timings, agents=capacity)


def event_context(world: World, cfg: SimConfig) -> EventContext:
    """What the event writers share: the world plus the id dictionaries of the parts."""
    return EventContext(
        tl=world.tl,
        cfg=cfg,
        acc=world.acc,
        lat=world.lat,
        users=world.users,
        account_dict=pa.array(_ids("A", world.acc.n, 6), pa.string()),
        user_dict=pa.array(_ids("U", world.users.acct.shape[0], 8), pa.string()),
    )


def _build(cfg: SimConfig, out: Path, *, progress: bool) -> dict:
    """Generate every table into `out`; returns counts and stage timings."""
    world = build_world(cfg)
    timings = world.timings
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 2)
        clock = now

    tl, acc, hist, users, tickets = world.tl, world.acc, world.hist, world.users, world.tickets
    coverage, csm = world.coverage, world.csm
    account_ids = _ids("A", acc.n, 6)
    user_ids = _ids("U", users.acct.shape[0], 8)
    _write_accounts(acc, coverage, csm, account_ids, tl, out)
    n_csms = _write_csms(csm, out)
    _write_subscriptions(hist, account_ids, tl, out)
    _write_users(users, account_ids, user_ids, out)
    _write_tickets(tickets, account_ids, tl, out)
    _write(pa.table(C.plans_rows()), out / "plans.parquet")
    _write_truth(hist, account_ids, tl, cfg, out)
    if hist.actions:
        _write_actions(hist, csm, account_ids, tl, cfg, out)
    lap("tables")

    ctx = event_context(world, cfg)
    n_events = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=tl.months, desc="events", unit="month", file=sys.stderr)
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        for count in pool.map(lambda m: write_month(ctx, m, out / "events"), range(tl.months)):
            n_events += count
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    lap("events")

    manifest = {
        "start": cfg.start,
        "data_end": str(tl.data_end),
        "seed": cfg.seed,
        "accounts": cfg.accounts,
        "months": cfg.months,
        "horizon_days": cfg.horizon_days,
        "expansion_pct": cfg.expansion_pct,
        "generator": "nrrcast.simulator",
        "contract": "v1",
        "tables": {
            "accounts": acc.n,
            "subscriptions": int(hist.rows["acct"].shape[0]),
            "users": int(users.acct.shape[0]),
            "tickets": int(tickets.acct.shape[0]),
            "events": n_events,
            "truth": int(hist.truth["acct"].shape[0]),
            **({"actions": int(hist.actions["acct"].shape[0])} if hist.actions else {}),
            "csms": n_csms,
        },
        "decisions": hist.decisions,
        "config": cfg.model_dump(mode="json"),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return {"events": n_events, "extra": {"stage_seconds": timings, "decisions": hist.decisions}}


def _write_accounts(acc, coverage, csm, account_ids, tl: Timeline, out: Path) -> None:
    tam = pa.array(acc.tam, pa.float64(), mask=~acc.tam_known)
    table = pa.table(
        {
            "account_id": pa.array(account_ids, pa.string()),
            "name": pa.array(acc.names, pa.string()),
            "created_at": _ts(acc.created_us),
            "tam_usd": tam,
            "industry": pa.array(np.array(C.INDUSTRIES, dtype=object)[acc.industry], pa.string()),
            "region": pa.array(np.array(C.REGIONS, dtype=object)[acc.region], pa.string()),
            "employees": pa.array(acc.employees, pa.int64()),
            "csm_id": pa.array(_ids("csm_", int(csm.max()) + 1, 4)[csm], pa.string()),
            "coverage": pa.array(np.array(C.COVERAGE, dtype=object)[coverage], pa.string()),
        }
    )
    _write(table, out / "accounts.parquet")


_CSM_FIRST = ("Ada", "Bilal", "Chen", "Dana", "Emeka", "Farah", "Gustav", "Hana", "Ines", "Jonas")
_CSM_LAST = ("Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Kowalski")


def _write_csms(csm: np.ndarray, out: Path) -> int:
    """The optional csms table: a name, e-mail and capacity for every csm_id (no RNG draw)."""
    n = int(csm.max()) + 1
    names = [
        f"{_CSM_FIRST[i % len(_CSM_FIRST)]} {_CSM_LAST[(i // len(_CSM_FIRST)) % len(_CSM_LAST)]}"
        + (f" {i // (len(_CSM_FIRST) * len(_CSM_LAST)) + 1}" if i >= 80 else "")
        for i in range(n)
    ]
    table = pa.table(
        {
            "csm_id": pa.array(_ids("csm_", n, 4), pa.string()),
            "name": pa.array(names, pa.string()),
            "email": pa.array(
                [nm.lower().replace(" ", ".") + "@example.com" for nm in names], pa.string()
            ),
            "capacity": pa.array(np.full(n, 25), pa.int64()),
        }
    )
    _write(table, out / "csms.parquet")
    return n


def _write_subscriptions(hist, account_ids, tl: Timeline, out: Path) -> None:
    r = hist.rows
    order = np.lexsort((r["product"], r["start"], r["acct"]))
    r = {k: v[order] for k, v in r.items()}
    products = np.array([C.CORE_PRODUCT] + [a[0] for a in C.ADDONS], dtype=object)
    plans = np.array(list(C.TIERS) + [a[1] for a in C.ADDONS], dtype=object)
    table = pa.table(
        {
            "subscription_id": pa.array(_ids("S", order.shape[0], 7), pa.string()),
            "account_id": pa.array(account_ids[r["acct"]], pa.string()),
            "product": pa.array(products[r["product"]], pa.string()),
            "plan": pa.array(plans[r["plan"]], pa.string()),
            "start_date": _date32(tl, r["start"]),
            "end_date": _date32(tl, r["end"]),
            "mrr": pa.array(r["mrr"], pa.float64()),
            "seats": pa.array(r["seats"], pa.int64()),
            "term_months": pa.array(r["term"], pa.int64()),
        }
    )
    _write(table, out / "subscriptions.parquet")


def _write_users(users, account_ids, user_ids, out: Path) -> None:
    depts = np.array((*C.DEPARTMENTS, ""), dtype=object)[users.dept]
    table = pa.table(
        {
            "user_id": pa.array(user_ids, pa.string()),
            "account_id": pa.array(account_ids[users.acct], pa.string()),
            "created_at": _ts(users.created_us),
            "department": pa.array(depts, pa.string(), mask=users.dept < 0),
            "role": pa.array(np.where(users.admin, "admin", "member").astype(object), pa.string()),
            "is_agent": pa.array(users.is_agent, pa.bool_()),
        }
    )
    _write(table, out / "users.parquet")


def _write_tickets(tk, account_ids, tl: Timeline, out: Path) -> None:
    table = pa.table(
        {
            "ticket_id": pa.array(_ids("T", tk.acct.shape[0], 8), pa.string()),
            "account_id": pa.array(account_ids[tk.acct], pa.string()),
            "created_at": _ts(tk.created_us),
            "priority": pa.array(np.array(C.PRIORITIES, dtype=object)[tk.priority], pa.string()),
            "closed_at": _ts(np.maximum(tk.closed_us, 0), mask=tk.closed_us < 0),
            "csat": pa.array(tk.csat, pa.int64(), mask=tk.csat == 0),
        }
    )
    _write(table, out / "tickets.parquet")


def _write_truth(hist, account_ids, tl: Timeline, cfg: SimConfig, out: Path) -> None:
    tr = hist.truth
    day = tl.month_start(tr["month"])
    r = hist.rows
    lab = labels(
        r["acct"], r["start"], r["end"], r["mrr"], tr["acct"], day,
        horizon=cfg.horizon_days, pct=cfg.expansion_pct, data_end=tl.n_days,
        n_acct=account_ids.shape[0],
    )  # fmt: skip
    stage = tr["stage"].astype(np.int64)
    table = pa.table(
        {
            "account_id": pa.array(account_ids[tr["acct"]], pa.string()),
            "month_start": _date32(tl, day),
            "arr": pa.array(tr["arr"], pa.float64()),
            "p_churn": pa.array(np.clip(tr["p_churn"], 0, 1), pa.float64()),
            "p_expand": pa.array(np.clip(tr["p_expand"], 0, 1), pa.float64()),
            "p_contract": pa.array(np.clip(tr["p_contract"], 0, 1), pa.float64()),
            "p_churn_touched": pa.array(np.clip(tr["p_churn_touched"], 0, 1), pa.float64()),
            "p_expand_touched": pa.array(np.clip(tr["p_expand_touched"], 0, 1), pa.float64()),
            "churn_driver": pa.array(tr["churn_driver"].astype(object), pa.string()),
            "expand_driver": pa.array(tr["expand_driver"].astype(object), pa.string()),
            "engagement": pa.array(tr["engagement"].astype(np.float64)),
            "value": pa.array(tr["value"].astype(np.float64)),
            "maturity_level": pa.array(stage, pa.int64()),
            "maturity_stage": pa.array(np.array(C.STAGES, dtype=object)[stage], pa.string()),
            "arr_h": pa.array(lab["arr_h"], pa.float64()),
            "label_churn": pa.array(lab["label_churn"], pa.float64()),
            "label_expand": pa.array(lab["label_expand"], pa.float64()),
            "label_contract": pa.array(lab["label_contract"], pa.float64()),
            "label_known": pa.array(lab["label_known"], pa.bool_()),
        }
    )
    _write(table, out / "truth.parquet")


def _write_actions(hist, csm, account_ids, tl: Timeline, cfg: SimConfig, out: Path) -> None:
    """The `actions` table: one row per flagged account and month (touch or holdout)."""
    from simulator.interventions import FAMILY_PLAY

    a = hist.actions
    n = a["acct"].shape[0]
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 99]))
    # a touch is logged on the first day of its month, during working hours
    us = tl.day_us(tl.month_start(a["month"])) + rng.integers(8 * 3600, 17 * 3600, n) * 1_000_000
    plays = np.array([FAMILY_PLAY.get(f, "") for f in a["family"]], dtype=object)
    table = pa.table(
        {
            "action_id": pa.array(_ids("X", n, 8), pa.string()),
            "account_id": pa.array(account_ids[a["acct"]], pa.string()),
            "ts": _ts(us),
            "csm_id": pa.array(_ids("csm_", int(csm.max()) + 1, 4)[csm[a["acct"]]], pa.string()),
            "play": pa.array(plays, pa.string()),
            "holdout": pa.array(a["holdout"].astype(bool), pa.bool_()),
        }
    )
    _write(table, out / "actions.parquet")
