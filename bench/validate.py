"""Benchmark: validate a 20,000-account x 18-month book (~100M events) against contract v1.

Target: under 30 s on 2 cores. Uses the simulator's world (data/bench/world_20k) when it
exists, otherwise a synthetic world generated here with numpy/pyarrow (written once to
data/bench/validate_synth, reused afterwards). The synthetic world has a few bad rows of
each kind so that the quarantine path (count, write, filtered view) is exercised.

Prints one JSON object: rows per table, seconds, peak RSS, machine load and the target.

Usage::

    .venv/bin/python bench/validate.py            # full size (~100M events)
    .venv/bin/python bench/validate.py --small    # 500 accounts, ~1M events
    .venv/bin/python bench/validate.py --source PATH
    .venv/bin/python bench/validate.py --synthetic   # even if the simulator's world exists
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BENCH,
    WORLD_FULL,
    cpu_seconds,
    emit,
    load_avg,
    peak_rss_mb,
)

SIM_WORLD = WORLD_FULL
SYNTH_WORLD = BENCH / "validate_synth"
TARGET_SECONDS = 30.0

EVENT_NAMES = [
    "login",
    "dashboard_view",
    "report_build",
    "report_share",
    "workflow_run",
    "workflow_edit",
    "integration_sync",
    "agent_run",
    "export_csv",
    "alert_create",
    "search",
    "comment",
    "file_upload",
    "api_call",
    "user_invite",
    "settings_change",
    "template_use",
    "notebook_run",
    "data_import",
    "billing_view",
]


def _month_starts(start: date, months: int) -> list[np.datetime64]:
    base = np.datetime64(start.isoformat(), "M")
    return [(base + i).astype("datetime64[us]") for i in range(months + 1)]


def _dict_strings(indices: np.ndarray, values: list[str] | np.ndarray) -> pa.DictionaryArray:
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, pa.int32()), pa.array(values, pa.string())
    )


def _write_accounts(out: Path, rng: np.random.Generator, accounts: int, t0) -> np.ndarray:
    """accounts.parquet (one duplicated row on purpose); returns the account ids."""
    acct_ids = np.array([f"A{i:06d}" for i in range(accounts)], dtype=object)
    created = t0 - rng.integers(1, 3 * 365 * 86_400, accounts).astype("timedelta64[s]")
    tam = np.round(rng.lognormal(12.5, 1.2, accounts), 2)
    tam[rng.random(accounts) < 0.15] = np.nan
    acct = pa.table(
        {
            "account_id": acct_ids,
            "name": [f"Company {i}" for i in range(accounts)],
            "created_at": created.astype("datetime64[us]"),
            "tam_usd": tam,
            "industry": rng.choice(["software", "retail", "finance", "health"], accounts),
            "region": rng.choice(["NA", "EMEA", "APAC"], accounts),
            "employees": rng.integers(5, 20_000, accounts),
            "csm_id": np.array([f"csm{i:03d}" for i in rng.integers(0, 60, accounts)]),
            "coverage": rng.choice(["high_touch", "standard", "digital"], accounts),
        }
    )
    # a duplicated account row and a negative TAM
    dup = acct.slice(0, 1)
    acct = pa.concat_tables([acct, dup])
    pq.write_table(acct, out / "accounts.parquet")
    return acct_ids


def _write_plans(out: Path) -> None:
    plans = pa.table(
        {
            "plan": ["starter", "growth", "enterprise", "agents_basic", "analytics_pro"],
            "seat_limit": [10, 50, 500, None, None],
            "usage_limit": [1e5, 1e6, 1e7, 5e6, None],
        }
    )
    pq.write_table(plans, out / "plans.parquet")


def _write_subscriptions(
    out: Path, rng: np.random.Generator, acct_ids: np.ndarray, t0, t_end
) -> None:
    """One platform subscription per account plus add-ons; three negative MRRs on purpose."""
    accounts = len(acct_ids)
    n_add = accounts // 3
    sub_acct = np.concatenate([np.arange(accounts), rng.integers(0, accounts, n_add)])
    n_sub = len(sub_acct)
    sub_start = (t0 - rng.integers(0, 700, n_sub).astype("timedelta64[D]")).astype("datetime64[D]")
    churned = rng.random(n_sub) < 0.12
    sub_end = sub_start + rng.integers(200, 1000, n_sub).astype("timedelta64[D]")
    sub_end = np.where(
        churned & (sub_end < t_end.astype("datetime64[D]")), sub_end, np.datetime64("NaT")
    )
    mrr = np.round(rng.lognormal(7, 1, n_sub), 2)
    mrr[:3] = -10.0  # bad: negative mrr
    subs = pa.table(
        {
            "subscription_id": [f"S{i:07d}" for i in range(n_sub)],
            "account_id": acct_ids[sub_acct],
            "product": np.where(np.arange(n_sub) < accounts, "platform", "ai_agents"),
            "plan": np.where(
                np.arange(n_sub) < accounts,
                rng.choice(["starter", "growth", "enterprise"], n_sub),
                "agents_basic",
            ),
            "start_date": pa.array(sub_start),
            "end_date": pa.array(sub_end.astype("datetime64[D]"), mask=np.isnat(sub_end)),
            "mrr": mrr,
            "seats": rng.integers(1, 300, n_sub),
            "term_months": rng.choice([1, 12], n_sub),
        }
    )
    pq.write_table(subs, out / "subscriptions.parquet")


def _write_users(
    out: Path, rng: np.random.Generator, acct_ids: np.ndarray, t0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """~25 users per account, 5% agents; returns (account index, user id, is agent) per user."""
    per_acct = rng.poisson(25, len(acct_ids)) + 1
    user_acct = np.repeat(np.arange(len(acct_ids)), per_acct)
    n_users = len(user_acct)
    user_ids = np.array([f"U{i:08d}" for i in range(n_users)], dtype=object)
    is_agent = rng.random(n_users) < 0.05
    users = pa.table(
        {
            "user_id": user_ids,
            "account_id": acct_ids[user_acct],
            "created_at": (
                t0 - rng.integers(0, 400 * 86_400, n_users).astype("timedelta64[s]")
            ).astype("datetime64[us]"),
            "department": rng.choice(["sales", "ops", "eng", "finance", "support"], n_users),
            "role": np.where(rng.random(n_users) < 0.1, "admin", "member"),
            "is_agent": is_agent,
        }
    )
    pq.write_table(users, out / "users.parquet")
    return user_acct, user_ids, is_agent


def _write_tickets(out: Path, rng: np.random.Generator, acct_ids: np.ndarray, t0, t_end) -> None:
    """~20 tickets per account, 5% still open, 60% without CSAT."""
    accounts = len(acct_ids)
    n_t = accounts * 20
    t_created = t0 + rng.integers(0, int((t_end - t0) / np.timedelta64(1, "s")), n_t).astype(
        "timedelta64[s]"
    )
    t_closed = t_created + rng.integers(600, 20 * 86_400, n_t).astype("timedelta64[s]")
    open_ = (rng.random(n_t) < 0.05) | (t_closed >= t_end)
    csat = rng.integers(1, 6, n_t)
    tickets = pa.table(
        {
            "ticket_id": [f"T{i:08d}" for i in range(n_t)],
            "account_id": acct_ids[rng.integers(0, accounts, n_t)],
            "created_at": t_created.astype("datetime64[us]"),
            "priority": rng.choice(["low", "normal", "high", "urgent"], n_t),
            "closed_at": pa.array(t_closed.astype("datetime64[us]"), mask=open_),
            "csat": pa.array(csat, mask=rng.random(n_t) < 0.6),
        }
    )
    pq.write_table(tickets, out / "tickets.parquet")


def _event_part(
    rng: np.random.Generator,
    n: int,
    lo,
    hi,
    users: tuple[np.ndarray, np.ndarray, np.ndarray],
    acct_ids: np.ndarray,
    bad_after=None,
) -> pa.Table:
    """`n` events between `lo` and `hi`, sorted by time; with `bad_after` (the data end), a
    few rows of each kind of bad (unknown account, unknown user, future, unknown actor)."""
    user_acct, user_ids, is_agent = users
    span = int((hi - lo) / np.timedelta64(1, "us"))
    ts = lo + np.sort(rng.integers(0, span, n)).astype("timedelta64[us]")
    u = rng.integers(0, len(user_ids), n).astype(np.int32)
    agent = is_agent[u]
    ev = rng.integers(0, len(EVENT_NAMES), n).astype(np.int32)
    ev[agent] = EVENT_NAMES.index("agent_run")
    actor = agent.astype(np.int32)  # 0 human, 1 agent
    status = (agent & (rng.random(n) < 0.08)).astype(np.int32)  # 1 error
    qty = np.where(agent, np.round(rng.lognormal(6, 1, n)), 1.0)
    acct_idx = user_acct[u].astype(np.int32)
    if bad_after is not None:
        k = n // 20_000
        bad = rng.choice(n, 4 * k, replace=False)
        acct_idx[bad[:k]] = len(acct_ids)  # unknown account
        u[bad[k : 2 * k]] = len(user_ids)  # unknown user
        ts[bad[2 * k : 3 * k]] = bad_after + np.timedelta64(3600, "s")  # future
        actor[bad[3 * k :]] = 2  # unknown actor
    return pa.table(
        {
            "account_id": _dict_strings(acct_idx, np.append(acct_ids, "A_unknown")),
            "user_id": _dict_strings(u, np.append(user_ids, "U_unknown")),
            "ts": ts,
            "event": pa.DictionaryArray.from_arrays(
                pa.array(ev, pa.int32()), pa.array(EVENT_NAMES, pa.string())
            ),
            "actor": _dict_strings(actor, ["human", "agent", "robot"]),
            "status": _dict_strings(status, ["ok", "error"]),
            "quantity": qty,
        }
    )


def make_synthetic_world(
    out: Path,
    *,
    accounts: int = 20_000,
    months: int = 18,
    events: int = 100_000_000,
    start: date = date(2025, 5, 1),
    seed: int = 7,
) -> Path:
    """Write a contract-v1 book of the given size to `out` (Parquet, events in monthly parts).

    About one event in 20,000 is bad on purpose (unknown account, unknown user, future
    timestamp, unknown actor), as are a handful of account, subscription and ticket rows.
    """
    rng = np.random.default_rng(seed)
    if out.exists():
        shutil.rmtree(out)
    (out / "events").mkdir(parents=True)
    edges = _month_starts(start, months)
    t0, t_end = edges[0], edges[-1]
    data_end = t_end.astype("datetime64[D]").item()

    acct_ids = _write_accounts(out, rng, accounts, t0)
    _write_plans(out)
    _write_subscriptions(out, rng, acct_ids, t0, t_end)
    users = _write_users(out, rng, acct_ids, t0)
    _write_tickets(out, rng, acct_ids, t0, t_end)
    # events: monthly parts, sorted by time, the bad rows in the last part
    per_month = events // months
    for m in range(months):
        n = per_month if m < months - 1 else events - per_month * (months - 1)
        last = t_end if m == months - 1 else None
        table = _event_part(rng, n, edges[m], edges[m + 1], users, acct_ids, last)
        pq.write_table(table, out / "events" / f"part-{m:03d}.parquet", row_group_size=1 << 20)

    manifest = {
        "data_end": data_end.isoformat(),
        "start": start.isoformat(),
        "seed": seed,
        "accounts": accounts,
        "months": months,
        "synthetic": "bench/validate.py",
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def run(source: Path, quarantine_dir: Path) -> dict:
    """Open and validate `source`; return the figures."""
    from features.sources import open_source
    from features.validate import validate

    t0, c0 = time.perf_counter(), cpu_seconds()
    src = open_source(source)
    if src.data_end is None:
        raise SystemExit(f"{source}: no manifest.json with data_end")
    now = src.data_end
    report = validate(src, now=now, quarantine_dir=quarantine_dir)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    t1 = time.perf_counter()
    clean_events = src.con.execute("SELECT count(*) FROM events").fetchone()[0]
    count_seconds = time.perf_counter() - t1
    counts = {
        t: {"read": c.read, "clean": c.clean, "quarantined": c.quarantined}
        for t, c in report.counts.items()
    }
    assert clean_events == report.counts["events"].clean, "events view disagrees with the report"
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "seconds_count_clean_events_view": round(count_seconds, 2),
        "ok": report.ok,
        "rows": counts,
        "problems": [
            {
                "table": p.table,
                "column": p.column,
                "problem": p.problem,
                "rows": p.rows,
                "action": p.action,
            }
            for p in report.problems
            if p.action != "info"
        ],
        "data_end": str(report.data_end),
        "duckdb_threads": src.con.execute("SELECT current_setting('threads')").fetchone()[0],
    }


def _generate(out: Path, accounts: int, events: int) -> float:
    """Write a synthetic world in a child process (its memory is not the benchmark's)."""
    t = time.perf_counter()
    cmd = [sys.executable, __file__, "--generate", str(out)]
    cmd += ["--accounts", str(accounts), "--events", str(events)]
    subprocess.run(cmd, check=True)
    return round(time.perf_counter() - t, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="500 accounts, ~1M events")
    parser.add_argument("--source", type=Path, default=None, help="validate this source instead")
    parser.add_argument("--synthetic", action="store_true", help="ignore the simulator's world")
    parser.add_argument("--generate", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--accounts", type=int, default=20_000, help=argparse.SUPPRESS)
    parser.add_argument("--events", type=int, default=100_000_000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.generate is not None:
        make_synthetic_world(args.generate, accounts=args.accounts, events=args.events)
        return

    gen_seconds = None
    if args.source is not None:
        source, kind = args.source, "given"
    elif args.small:
        source, kind = Path(tempfile.mkdtemp(prefix="nrr_validate_")) / "world", "synthetic-small"
        gen_seconds = _generate(source, 500, 1_000_000)
    elif (SIM_WORLD / "manifest.json").exists() and not args.synthetic:
        source, kind = SIM_WORLD, "simulator"
    else:
        source, kind = SYNTH_WORLD, "synthetic"
        if not (source / "manifest.json").exists():
            gen_seconds = _generate(source, 20_000, 100_000_000)

    load_before = load_avg()
    with tempfile.TemporaryDirectory(prefix="nrr_quarantine_") as qdir:
        result = run(source, Path(qdir))
    events = result["rows"]["events"]["read"]
    result = {
        "benchmark": "validate",
        "source": str(source),
        "world": kind,
        **result,
        "events_per_second": round(events / result["seconds"]) if result["seconds"] else None,
        "target_seconds": TARGET_SECONDS,
        "meets_target": result["seconds"] < TARGET_SECONDS if not args.small else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "generation_seconds": gen_seconds,
        "cpus": os.cpu_count(),
        "duckdb_threads": result.pop("duckdb_threads"),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }
    if args.small:
        shutil.rmtree(source.parent, ignore_errors=True)
    emit(result)


if __name__ == "__main__":
    main()
