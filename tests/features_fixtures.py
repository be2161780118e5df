"""Small contract tables for the feature, label and leakage tests.

`load_tables` creates the clean relations (``accounts, subscriptions, users, events,
tickets, plans``) in a DuckDB connection from pandas frames, with the contract's column
types; absent tables are created empty and absent optional columns are NULL (events get
the validated defaults actor 'human', status 'ok', quantity 1.0).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pandas as pd

from features.contract import TABLES

EVENT_DEFAULTS = {"actor": "'human'", "status": "'ok'", "quantity": "1.0"}


def connect(frames: dict[str, pd.DataFrame]) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory connection holding the clean relations built from `frames`."""
    con = duckdb.connect()
    con.execute("SET threads = 1")
    load_tables(con, frames)
    return con


def load_tables(con: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """(Re)create every contract table in `con` from `frames` (missing -> empty)."""
    for name, spec in TABLES.items():
        cols = ", ".join(f"{c.name} {c.dtype}" for c in spec.columns)
        con.execute(f"CREATE OR REPLACE TABLE {name} ({cols})")
        df = frames.get(name)
        if df is None or df.empty:
            continue
        select = []
        for c in spec.columns:
            if c.name in df.columns:
                expr = f"CAST({c.name} AS {c.dtype})"
                if name == "events" and c.name in EVENT_DEFAULTS:
                    expr = f"COALESCE({expr}, {EVENT_DEFAULTS[c.name]})"
            else:
                expr = EVENT_DEFAULTS.get(c.name, "NULL") if name == "events" else "NULL"
                expr = f"CAST({expr} AS {c.dtype})"
            select.append(expr)
        con.register("_fixture_frame", df)
        con.execute(f"INSERT INTO {name} SELECT {', '.join(select)} FROM _fixture_frame")
        con.unregister("_fixture_frame")


FEATURES = ["dashboard_view", "report_build", "search", "workflow_run", "ai_assist", "export_csv"]


def random_world(
    seed: int, accounts: int = 6, start: date = date(2025, 1, 1), days: int = 200
) -> dict:
    """A small random book with every table and most optional columns filled.

    Accounts have 1-3 subscriptions (some ending, some overlapping, some starting late),
    3-6 users (one agent identity for half the accounts), a few hundred events, tickets.
    """
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp(start)
    acc_ids = [f"A{i}" for i in range(accounts)]
    acc = pd.DataFrame(
        {
            "account_id": acc_ids,
            "name": [f"Co {i}" for i in range(accounts)],
            "created_at": t0 - pd.to_timedelta(rng.integers(-30, 400, accounts), unit="D"),
            "tam_usd": np.where(
                rng.random(accounts) < 0.2, np.nan, rng.uniform(1e4, 1e6, accounts)
            ),
            "industry": rng.choice(["software", "retail"], accounts),
            "region": rng.choice(["NA", "EMEA"], accounts),
            "csm_id": rng.choice(["c1", "c2"], accounts),
            "coverage": rng.choice(["high_touch", "digital"], accounts),
        }
    )
    subs = []
    for i, a in enumerate(acc_ids):  # a handful of accounts: a loop over accounts is fine here
        for j in range(int(rng.integers(1, 4))):
            s0 = start + timedelta(days=int(rng.integers(-200, days)))
            end = s0 + timedelta(days=int(rng.integers(20, 300))) if rng.random() < 0.5 else None
            subs.append(
                {
                    "subscription_id": f"S{i}_{j}",
                    "account_id": a,
                    "product": "platform" if j == 0 else rng.choice(["platform", "ai_agents"]),
                    "plan": rng.choice(["starter", "growth", "ai_pro"]),
                    "start_date": s0,
                    "end_date": end,
                    "mrr": float(rng.choice([100.0, 250.0, 400.0])),
                    "seats": int(rng.integers(2, 8)),
                    "term_months": int(rng.choice([1, 12])),
                }
            )
    subs = pd.DataFrame(subs)
    users = []
    for i, a in enumerate(acc_ids):
        for k in range(int(rng.integers(3, 7))):
            users.append(
                {
                    "user_id": f"U{i}_{k}",
                    "account_id": a,
                    "created_at": t0 + pd.Timedelta(days=int(rng.integers(-100, days))),
                    "department": rng.choice(["sales", "ops", "finance"]),
                    "role": "admin" if k == 0 else "member",
                    "is_agent": False,
                }
            )
        if i % 2 == 0:
            users.append(
                {
                    "user_id": f"U{i}_bot",
                    "account_id": a,
                    "created_at": t0,
                    "department": None,
                    "role": "member",
                    "is_agent": True,
                }
            )
    users = pd.DataFrame(users)
    n = 60 * accounts
    u = users.sample(n=n, replace=True, random_state=seed).reset_index(drop=True)
    agent = u["is_agent"].to_numpy()
    names = np.array(["login", *FEATURES])
    events = pd.DataFrame(
        {
            "account_id": u["account_id"],
            "user_id": u["user_id"],
            "ts": t0
            + pd.to_timedelta(rng.integers(-40, days, n), unit="D")
            + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
            "event": np.where(agent, "agent_run", names[rng.integers(0, len(names), n)]),
            "actor": np.where(agent, "agent", "human"),
            "status": np.where(rng.random(n) < 0.2, "error", "ok"),
            "quantity": rng.integers(1, 50, n).astype(float),
        }
    )
    m = 3 * accounts
    created = (
        t0
        + pd.to_timedelta(rng.integers(-40, days, m), unit="D")
        + pd.to_timedelta(rng.integers(0, 86_400, m), unit="s")
    )
    closed = created + pd.to_timedelta(rng.integers(1, 20 * 86_400, m), unit="s")
    tickets = pd.DataFrame(
        {
            "ticket_id": [f"T{i}" for i in range(m)],
            "account_id": rng.choice(acc_ids, m),
            "created_at": created,
            "priority": rng.choice(["low", "normal", "high", "urgent"], m),
            "closed_at": pd.Series(closed).where(rng.random(m) < 0.7),
            "csat": pd.Series(rng.integers(1, 6, m)).where(rng.random(m) < 0.6).astype("Int64"),
        }
    )
    plans = pd.DataFrame(
        {
            "plan": ["starter", "growth", "ai_pro"],
            "seat_limit": [5, 50, None],
            "usage_limit": [500.0, 5000.0, None],
        }
    )
    return {
        "accounts": acc,
        "subscriptions": subs,
        "users": users,
        "events": events,
        "tickets": tickets,
        "plans": plans,
    }


def ts(s: str) -> datetime:
    """Timestamp from 'YYYY-MM-DD[ HH:MM]'."""
    return pd.Timestamp(s).to_pydatetime()
