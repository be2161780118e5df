"""No leakage: data dated on or after as_of never changes a feature at as_of.

Two property tests on small random books (hypothesis, few examples):

- appending or changing anything dated on or after as_of (events, users created later,
  tickets, closings and CSAT after as_of, subscriptions starting later, end dates on or
  after as_of, accounts created later) leaves every feature at as_of unchanged;
- truncating the data at as_of (DESIGN's guard: rows dated on or after it removed,
  later end dates and closings cleared) leaves every feature at as_of unchanged.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
from features_fixtures import connect, random_world
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.build import ID_COLUMNS, build_feature_table
from features.catalog import feature_names
from features.config import FeatureConfig

START = date(2025, 1, 1)
DATA_END = date(2026, 6, 1)
COMPARE = [*ID_COLUMNS, *feature_names(), "maturity_stage"]
CFG = FeatureConfig(scan_chunk_months=2)


def _features(world: dict, as_of: date) -> pd.DataFrame:
    out = build_feature_table(connect(world), [as_of], CFG, data_end=DATA_END, progress=False)
    return out[COMPARE]


def _later(rng: np.random.Generator, t0: pd.Timestamp, n: int, days: int = 120) -> pd.Series:
    """n timestamps on or after t0 (some exactly at t0)."""
    secs = rng.integers(0, days * 86_400, n)
    secs[rng.random(n) < 0.2] = 0
    return pd.Series(t0 + pd.to_timedelta(secs, unit="s"))


def _perturb(world: dict, as_of: date, rng: np.random.Generator) -> dict:
    """Change and append only data dated on or after as_of."""
    t0 = pd.Timestamp(as_of)
    w = {k: v.copy() for k, v in world.items()}
    acc_ids = list(w["accounts"]["account_id"])

    # accounts created later, with their own users, subscriptions and events below
    new_acc = pd.DataFrame(
        {
            "account_id": ["NEW1", "NEW2"],
            "name": ["n1", "n2"],
            "created_at": _later(rng, t0, 2),
            "tam_usd": [5e5, np.nan],
            "industry": ["media", None],
            "region": ["NA", "APAC"],
            "csm_id": ["c9", None],
            "coverage": ["digital", "standard"],
        }
    )
    w["accounts"] = pd.concat([w["accounts"], new_acc], ignore_index=True)
    all_acc = acc_ids + ["NEW1", "NEW2"]

    # users created later (existing and new accounts; departments, admins, an agent)
    k = 8
    new_users = pd.DataFrame(
        {
            "user_id": [f"NU{i}" for i in range(k)],
            "account_id": rng.choice(all_acc, k),
            "created_at": _later(rng, t0, k),
            "department": rng.choice(["legal", "sales", "hr"], k),
            "role": rng.choice(["admin", "member"], k),
            "is_agent": rng.random(k) < 0.25,
        }
    )
    w["users"] = pd.concat([w["users"], new_users], ignore_index=True)

    # events: change those on/after as_of, append new ones (new names, agents, new users)
    ev = w["events"]
    late = ev["ts"] >= t0
    n_late = int(late.sum())
    ev.loc[late, "event"] = rng.choice(["login", "brand_new", "ai_assist", "search"], n_late)
    ev.loc[late, "actor"] = rng.choice(["human", "agent"], n_late)
    ev.loc[late, "status"] = rng.choice(["ok", "error"], n_late)
    ev.loc[late, "quantity"] = rng.uniform(0, 1e4, n_late)
    ev.loc[late, "ts"] = _later(rng, t0, n_late).to_numpy()
    m = 300
    users = pd.concat([w["users"][["user_id", "account_id"]]], ignore_index=True)
    pick = users.sample(n=m, replace=True, random_state=int(rng.integers(1 << 30)))
    new_ev = pd.DataFrame(
        {
            "account_id": pick["account_id"].to_numpy(),
            "user_id": np.where(rng.random(m) < 0.1, None, pick["user_id"].to_numpy()),
            "ts": _later(rng, t0, m).to_numpy(),
            "event": rng.choice(
                ["login", "newer_feature", "agent_run", "report_build", "ai_assist"], m
            ),
            "actor": rng.choice(["human", "agent"], m),
            "status": rng.choice(["ok", "error"], m),
            "quantity": rng.uniform(0, 1e3, m),
        }
    )
    w["events"] = pd.concat([ev, new_ev], ignore_index=True)

    # tickets: closings and CSAT not known before as_of change; later tickets appended
    tk = w["tickets"]
    open_then = tk["closed_at"].isna() | (tk["closed_at"] >= t0)
    n_open = int(open_then.sum())
    closed = _later(rng, t0, n_open)
    base = tk.loc[open_then, "created_at"].clip(lower=t0).reset_index(drop=True)
    closed = pd.Series(np.maximum(closed.to_numpy(), base.to_numpy()))
    tk.loc[open_then, "closed_at"] = closed.where(rng.random(n_open) < 0.7).to_numpy()
    tk.loc[open_then, "csat"] = pd.array(rng.integers(1, 6, n_open), dtype="Int64")
    later_tk = tk["created_at"] >= t0
    tk.loc[later_tk, "priority"] = rng.choice(["urgent", "low"], int(later_tk.sum()))
    j = 6
    new_created = _later(rng, t0, j)
    new_tk = pd.DataFrame(
        {
            "ticket_id": [f"NT{i}" for i in range(j)],
            "account_id": rng.choice(all_acc, j),
            "created_at": new_created,
            "priority": rng.choice(["high", "urgent"], j),
            "closed_at": (new_created + pd.Timedelta(days=2)).where(rng.random(j) < 0.5),
            "csat": pd.array(rng.integers(1, 6, j), dtype="Int64"),
        }
    )
    w["tickets"] = pd.concat([tk, new_tk], ignore_index=True)

    # subscriptions: end dates not known at as_of change; later starts appended / changed
    sb = w["subscriptions"]
    unknown_end = sb["end_date"].isna() | (pd.to_datetime(sb["end_date"]) >= t0)
    n_end = int(unknown_end.sum())
    new_end = _later(rng, t0, n_end, days=300).dt.date.to_numpy()
    new_end = np.where(rng.random(n_end) < 0.3, None, new_end)
    starts = pd.to_datetime(sb.loc[unknown_end, "start_date"]).dt.date.to_numpy()
    sb.loc[unknown_end, "end_date"] = [
        None if e is None else max(e, s) for e, s in zip(new_end, starts, strict=True)
    ]
    later_sb = pd.to_datetime(sb["start_date"]) >= t0
    sb.loc[later_sb, "mrr"] = 9999.0
    sb.loc[later_sb, "seats"] = 99
    q = 5
    new_start = _later(rng, t0, q).dt.date
    new_sb = pd.DataFrame(
        {
            "subscription_id": [f"NS{i}" for i in range(q)],
            "account_id": rng.choice(all_acc, q),
            "product": rng.choice(["platform", "ai_agents"], q),
            "plan": rng.choice(["growth", "ai_pro"], q),
            "start_date": new_start,
            "end_date": [None] * q,
            "mrr": rng.uniform(10, 5000, q),
            "seats": rng.integers(1, 50, q),
            "term_months": rng.choice([1, 12], q),
        }
    )
    w["subscriptions"] = pd.concat([sb, new_sb], ignore_index=True)
    return w


def _truncate(world: dict, as_of: date) -> dict:
    """Rows dated on or after as_of removed; later end dates and closings cleared."""
    t0 = pd.Timestamp(as_of)
    w = {k: v.copy() for k, v in world.items()}
    w["accounts"] = w["accounts"][w["accounts"]["created_at"] < t0]
    keep = set(w["accounts"]["account_id"])
    w["users"] = w["users"][(w["users"]["created_at"] < t0) & w["users"]["account_id"].isin(keep)]
    w["events"] = w["events"][(w["events"]["ts"] < t0) & w["events"]["account_id"].isin(keep)]
    tk = w["tickets"]
    tk = tk[(tk["created_at"] < t0) & tk["account_id"].isin(keep)].copy()
    later = tk["closed_at"] >= t0
    tk.loc[later, "closed_at"] = pd.NaT
    tk.loc[later | tk["closed_at"].isna(), "csat"] = pd.NA
    w["tickets"] = tk
    sb = w["subscriptions"]
    sb = sb[(pd.to_datetime(sb["start_date"]) < t0) & sb["account_id"].isin(keep)].copy()
    sb.loc[pd.to_datetime(sb["end_date"]) >= t0, "end_date"] = None
    w["subscriptions"] = sb
    return w


_SETTINGS = settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(seed=st.integers(0, 10_000), day=st.integers(30, 190), pert=st.integers(0, 10_000))
def test_future_data_never_changes_features(seed, day, pert):
    world = random_world(seed, start=START)
    as_of = START + timedelta(days=day)
    before = _features(world, as_of)
    after = _features(_perturb(world, as_of, np.random.default_rng(pert)), as_of)
    assert len(before) > 0
    pd.testing.assert_frame_equal(before, after)


@_SETTINGS
@given(seed=st.integers(0, 10_000), day=st.integers(30, 190))
def test_truncating_at_as_of_changes_nothing(seed, day):
    world = random_world(seed, start=START)
    as_of = START + timedelta(days=day)
    full = _features(world, as_of)
    cut = _features(_truncate(world, as_of), as_of)
    pd.testing.assert_frame_equal(full, cut)
