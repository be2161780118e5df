"""Daily product events, one calendar month at a time, fully vectorised.

Humans: a user is active on a day with probability sigmoid(alpha_user + beta *
engagement + weekday effect) (admins follow value realised); an active day is a
session: one `login` then Poisson feature events whose breadth and AI share grow
with engagement and maturity. Agents: Poisson runs per identity-day, failing more
often when value realised is low, each metering credits (`quantity`).

Each month draws from its own random stream (seed, month), so a part's content
does not depend on which thread writes it or in what order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import simulator.behaviour as B
import simulator.catalog as C
from simulator.accounts import Accounts
from simulator.config import SimConfig
from simulator.latent import Latent
from simulator.timeline import US_PER_DAY, Timeline
from simulator.users import Users

EVENT_STREAM = 1_000


@dataclass
class EventContext:
    """Everything a month of events needs (read-only, shared by writer threads)."""

    tl: Timeline
    cfg: SimConfig
    acc: Accounts
    lat: Latent
    users: Users
    account_dict: pa.Array
    user_dict: pa.Array


def month_rng(seed: int, month: int) -> np.random.Generator:
    """The random stream of one month of events."""
    return np.random.default_rng(np.random.SeedSequence([seed, EVENT_STREAM, month]))


def _human_events(
    ctx: EventContext, d0: int, d1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Sessions of human users on days [d0, d1): arrays of one column each, in day order."""
    us, lat, acc, cfg = ctx.users, ctx.lat, ctx.acc, ctx.cfg
    sel = np.flatnonzero((~us.is_agent) & (us.active_from < d1) & (us.active_to > d0))
    a = us.acct[sel]
    c0, c1 = ctx.tl.col(d0), ctx.tl.col(d1)
    days = np.arange(d0, d1)
    eng = lat.engagement[c0:c1][:, a]  # (days, users): day-major
    logit = us.alpha[sel][None, :] + B.BETA_ENG * eng
    adm = np.flatnonzero(us.admin[sel])
    logit[:, adm] = (
        us.alpha[sel[adm]][None, :]
        + 0.5 * B.BETA_ENG * eng[:, adm]
        + B.BETA_ADMIN_VALUE * lat.value[c0:c1][:, a[adm]]
    )
    logit += np.where(ctx.tl.weekday(days) >= 5, B.WEEKEND, 0.0).astype(np.float32)[:, None]
    window = (days[:, None] >= us.active_from[sel][None, :]) & (
        days[:, None] < us.active_to[sel][None, :]
    )
    p = 1.0 / (1.0 + np.exp(-logit))
    active = (rng.random(p.shape, dtype=np.float32) < p) & window
    nz = np.flatnonzero(active)  # day-major: events come out in day order
    n_users = sel.shape[0]
    d_idx = (nz // n_users).astype(np.int32)
    u_idx = nz % n_users
    acct_ud = a[u_idx]
    e_ud = eng[d_idx, u_idx]
    stage_ud = lat.stage[c0 + d_idx, acct_ud]

    lam = cfg.feature_events_per_session * np.exp(B.SESSION_ENG * e_ud + B.SESSION_STAGE * stage_ud)
    count = 1 + rng.poisson(lam)
    n_ud, total = count.shape[0], int(count.sum())
    grp = np.repeat(np.arange(n_ud, dtype=np.int32), count)
    starts = np.cumsum(count) - count
    pos = (np.arange(total, dtype=np.int64) - starts[grp]).astype(np.int32)

    # general features: rank within the account's adoption order, skewed to the top
    breadth = np.clip(
        B.BREADTH[0] + B.BREADTH[1] * e_ud + B.BREADTH[2] * stage_ud + acc.breadth0[acct_ud],
        1.5,
        len(C.GENERAL_FEATURES),
    ).astype(np.float32)
    acct_ev = acct_ud[grp]
    r2 = rng.random(total, dtype=np.float32)
    rank = (breadth[grp] * (r2 * r2)).astype(np.intp)
    event = acc.feature_rank[acct_ev, rank]
    # admin actions (admins only) and AI features (more as maturity grows) replace some
    thr_admin = np.where(us.admin[sel[u_idx]], B.ADMIN_SHARE, 0.0).astype(np.float32)
    thr_ai = thr_admin + B.AI_SHARE.astype(np.float32)[stage_ud]
    r1 = rng.random(total, dtype=np.float32)
    in_admin = np.flatnonzero(r1 < thr_admin[grp])
    in_ai = np.flatnonzero((r1 < thr_ai[grp]) & (r1 >= thr_admin[grp]))
    g_ai = grp[in_ai]
    ai_u = (r1[in_ai] - thr_admin[g_ai]) / (thr_ai[g_ai] - thr_admin[g_ai])
    ai_pick = np.where(stage_ud[g_ai] == 0, 0, (ai_u >= 0.5).astype(np.intp) + (ai_u >= 0.8))
    event[in_ai] = C.AI_CODES[ai_pick]
    adm_pick = np.minimum((r1[in_admin] / B.ADMIN_SHARE * 3).astype(np.intp), 2)
    event[in_admin] = C.ADMIN_CODES[adm_pick]
    event[starts] = C.EVENT_CODE[C.LOGIN]

    # a session starts in working hours; its actions follow a few minutes apart
    step_us = 150_000_000
    latest = 86_399_000_000 - count.astype(np.int64) * step_us
    start_us = np.minimum(
        (rng.normal(13.5, 2.5, n_ud).clip(6.5, 23.0) * 3.6e9).astype(np.int64), latest
    )
    base = ctx.tl.day_us(d0) + d_idx.astype(np.int64) * US_PER_DAY + start_us
    jitter = (rng.random(total, dtype=np.float32) * step_us).astype(np.int64)
    ts = base[grp] + pos.astype(np.int64) * step_us + jitter
    return {
        "acct": acct_ev.astype(np.int32),
        "user": sel[u_idx].astype(np.int32)[grp],
        "ts": ts,
        "event": event,
        "actor": np.zeros(total, np.int8),
        "status": np.zeros(total, np.int8),
        "quantity": np.ones(total),
    }


def _agent_events(
    ctx: EventContext, d0: int, d1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Runs of agent identities on days [d0, d1): arrays of one column each, in day order."""
    us, lat, acc = ctx.users, ctx.lat, ctx.acc
    sel = np.flatnonzero(us.is_agent & (us.active_from < d1) & (us.active_to > d0))
    a = us.acct[sel]
    c0, c1 = ctx.tl.col(d0), ctx.tl.col(d1)
    days = np.arange(d0, d1)
    eng = lat.engagement[c0:c1][:, a]  # (days, agents)
    window = (days[:, None] >= us.active_from[sel][None, :]) & (
        days[:, None] < us.active_to[sel][None, :]
    )
    lam = us.rate[sel][None, :] * np.exp(B.AGENT_ENG * eng) * window
    runs = rng.poisson(lam).ravel()  # day-major
    pair = np.flatnonzero(runs)  # agent-days with at least one run
    n_ag = sel.shape[0]
    d_p = pair // n_ag
    g_p = pair % n_ag
    acct_p = a[g_p]
    col_p = c0 + d_p
    err_logit = (
        B.AGENT_ERR[0]
        + B.AGENT_ERR[1] * lat.value[col_p, acct_p]
        + B.AGENT_ERR[2] * lat.stage[col_p, acct_p]
    )
    p_err = (1.0 / (1.0 + np.exp(-err_logit))).astype(np.float32)
    grp = np.repeat(np.arange(pair.shape[0], dtype=np.int32), runs[pair])
    total = grp.shape[0]
    etype = np.searchsorted(
        np.cumsum(C.AGENT_EVENT_P)[:-1].astype(np.float32),
        rng.random(total, dtype=np.float32),
        side="right",
    )
    error = rng.random(total, dtype=np.float32) < p_err[grp]
    qty = (
        acc.credit_scale[acct_p][grp] * B.AGENT_QTY_SCALE[etype] * rng.lognormal(-0.125, 0.5, total)
    )
    qty = np.round(np.where(error, 0.3 * qty, qty), 1)
    base = ctx.tl.day_us(d0) + d_p.astype(np.int64) * US_PER_DAY
    ts = base[grp] + rng.integers(0, US_PER_DAY, total)
    return {
        "acct": acct_p.astype(np.int32)[grp],
        "user": sel[g_p].astype(np.int32)[grp],
        "ts": ts,
        "event": C.AGENT_EVENTS[etype],
        "actor": np.ones(total, np.int8),
        "status": error.astype(np.int8),
        "quantity": qty,
    }


_EVENT_DICT = pa.array(C.EVENT_NAMES, pa.string())
_ACTOR_DICT = pa.array(C.ACTORS, pa.string())
_STATUS_DICT = pa.array(C.STATUSES, pa.string())


def month_table(ctx: EventContext, month: int) -> pa.Table:
    """All events of one calendar month as an Arrow table (human, then agent events; each by day)."""
    rng = month_rng(ctx.cfg.seed, month)
    ms = ctx.tl.month_start(np.array([month, month + 1]))
    d0, d1 = int(ms[0]), int(ms[1])
    hum = _human_events(ctx, d0, d1, rng)
    agt = _agent_events(ctx, d0, d1, rng)

    def col(name: str) -> np.ndarray:
        # humans then agents, each in day order: row groups still cover narrow time ranges
        return np.concatenate([hum[name], agt[name]])

    def dict_col(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(indices), dictionary)

    return pa.table(
        {
            "account_id": dict_col(col("acct"), ctx.account_dict),
            "user_id": dict_col(col("user"), ctx.user_dict),
            "ts": pa.array(col("ts"), pa.timestamp("us")),
            "event": dict_col(col("event"), _EVENT_DICT),
            "actor": dict_col(col("actor"), _ACTOR_DICT),
            "status": dict_col(col("status"), _STATUS_DICT),
            "quantity": pa.array(col("quantity"), pa.float64()),
        }
    )


def write_month(ctx: EventContext, month: int, folder: Path) -> int:
    """Generate and write `events/part-<yyyy-mm>.parquet`; returns the number of events."""
    table = month_table(ctx, month)
    label = str(ctx.tl.dates(ctx.tl.month_start(month)))[:7]
    pq.write_table(
        table,
        folder / f"part-{label}.parquet",
        compression=ctx.cfg.compression,
        row_group_size=ctx.cfg.row_group_size,
        # statistics of huge dictionary columns cost more than writing them; keep ts/quantity
        write_statistics=["ts", "quantity"],
        # timestamps are nearly sorted within a part: deltas are smaller and faster than a
        # dictionary attempt that falls back to plain
        use_dictionary=["account_id", "user_id", "event", "actor", "status", "quantity"],
        column_encoding={"ts": "DELTA_BINARY_PACKED"},
        # readers see plain string columns (the dictionaries stay as the Parquet encoding)
        store_schema=False,
    )
    return table.num_rows
