"""The event-derived features of `features.activity`, written plainly in pandas.

This is the benchmark baseline (bench/features.py): the straightforward way to compute
the features one as_of at a time with boolean masks and groupby. It covers every feature
computed from events (activity, breadth, depth, power users, champions, admins, AI
share, agents, usage); it is also a cross-check of the SQL, since both must agree.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

FEATURES = [
    "active_days_7d",
    "events_7d",
    "active_users_7d",
    "active_days_30d",
    "events_30d",
    "active_users_30d",
    "active_days_90d",
    "events_90d",
    "active_users_90d",
    "events_trend_30d",
    "active_users_trend_30d",
    "login_decay",
    "days_since_last_activity",
    "features_used_7d",
    "features_used_30d",
    "features_used_90d",
    "features_used_change_30d",
    "depth_30d",
    "power_users_30d",
    "champion_depth_30d",
    "admins_active_30d",
    "ai_feature_share_30d",
    "agent_runs_30d",
    "agent_success_rate_30d",
    "agent_share_30d",
    "usage_30d",
]


def _window(ev: pd.DataFrame, a: pd.Timestamp, start: int, end: int) -> pd.DataFrame:
    return ev[(ev["ts"] >= a - pd.Timedelta(days=start)) & (ev["ts"] < a - pd.Timedelta(days=end))]


def pandas_features(
    events: pd.DataFrame,
    users: pd.DataFrame,
    as_of_dates: list[date],
    *,
    ai_features: tuple[str, ...] = ("ai_assist", "agent_build", "notebook_run"),
    power_days_per_week: float = 5.0,
    power_min_features: int = 4,
) -> pd.DataFrame:
    """One row per (account_id, as_of) with activity in the 90 days before as_of."""
    ev = events.copy()
    ev["d"] = ev["ts"].dt.normalize()
    ev["human"] = ev["actor"] != "agent"
    rows = []
    for as_of in as_of_dates:
        a = pd.Timestamp(as_of)
        w90 = _window(ev, a, 90, 0)
        h90 = w90[w90["human"]]
        out = pd.DataFrame(index=pd.Index(w90["account_id"].unique(), name="account_id"))
        for w in (7, 30, 90):
            h = h90[h90["ts"] >= a - pd.Timedelta(days=w)]
            g = h.groupby("account_id")
            out[f"active_days_{w}d"] = g["d"].nunique()
            out[f"events_{w}d"] = g.size()
            out[f"active_users_{w}d"] = (
                h.dropna(subset=["user_id"]).groupby("account_id")["user_id"].nunique()
            )
            feats = h[h["event"] != "login"]
            out[f"features_used_{w}d"] = feats.groupby("account_id")["event"].nunique()
        hp30 = _window(h90, a, 60, 30)
        hp60 = _window(h90, a, 90, 30)
        h30 = h90[h90["ts"] >= a - pd.Timedelta(days=30)]
        out = out.fillna(0)
        events_p30 = hp30.groupby("account_id").size().reindex(out.index).fillna(0)
        users_p30 = hp30.dropna(subset=["user_id"]).groupby("account_id")["user_id"].nunique()
        users_p30 = users_p30.reindex(out.index).fillna(0)
        logins_30 = (
            h30[h30["event"] == "login"].groupby("account_id").size().reindex(out.index).fillna(0)
        )
        logins_p60 = (
            hp60[hp60["event"] == "login"].groupby("account_id").size().reindex(out.index).fillna(0)
        )
        out["events_trend_30d"] = out["events_30d"] / events_p30.replace(0, np.nan) - 1
        out["active_users_trend_30d"] = out["active_users_30d"] / users_p30.replace(0, np.nan) - 1
        out["login_decay"] = logins_30 / (logins_p60 / 2).replace(0, np.nan) - 1
        last = h90.groupby("account_id")["d"].max().reindex(out.index)
        out["days_since_last_activity"] = ((a - last).dt.days).fillna(90)
        fp30 = hp30[hp30["event"] != "login"].groupby("account_id")["event"].nunique()
        out["features_used_change_30d"] = out["features_used_30d"] - fp30.reindex(out.index).fillna(
            0
        )
        feat30 = h30[h30["event"] != "login"]
        n_feat30 = feat30.groupby("account_id").size().reindex(out.index).fillna(0)
        out["depth_30d"] = n_feat30 / out["active_users_30d"].replace(0, np.nan)
        # users: power users, departments and admins among the users active in 30 days
        u30 = h30.dropna(subset=["user_id"])
        per_user = u30.groupby(["account_id", "user_id"]).agg(days=("d", "nunique"))
        per_user["features"] = (
            feat30.dropna(subset=["user_id"]).groupby(["account_id", "user_id"])["event"].nunique()
        )
        per_user = per_user.fillna(0).reset_index()
        known = users[users["created_at"] < a][["user_id", "department", "role"]]
        per_user = per_user.merge(known, on="user_id", how="left")
        power = (per_user["days"] >= power_days_per_week * 30 / 7) & (
            per_user["features"] >= power_min_features
        )
        out["power_users_30d"] = (
            per_user[power].groupby("account_id").size().reindex(out.index).fillna(0)
        )
        out["champion_depth_30d"] = (
            per_user.groupby("account_id")["department"].nunique().reindex(out.index).fillna(0)
        )
        admins = per_user[per_user["role"] == "admin"]
        out["admins_active_30d"] = admins.groupby("account_id").size().reindex(out.index).fillna(0)
        ai30 = (
            feat30[feat30["event"].isin(ai_features)]
            .groupby("account_id")
            .size()
            .reindex(out.index)
            .fillna(0)
        )
        out["ai_feature_share_30d"] = ai30 / n_feat30.replace(0, np.nan)
        w30 = w90[w90["ts"] >= a - pd.Timedelta(days=30)]
        ag30 = w30[~w30["human"]]
        runs = ag30.groupby("account_id").size().reindex(out.index).fillna(0)
        errors = (
            ag30[ag30["status"] == "error"]
            .groupby("account_id")
            .size()
            .reindex(out.index)
            .fillna(0)
        )
        out["agent_runs_30d"] = runs
        out["agent_success_rate_30d"] = 1 - errors / runs.replace(0, np.nan)
        out["agent_share_30d"] = runs / (runs + out["events_30d"]).replace(0, np.nan)
        out["usage_30d"] = w30.groupby("account_id")["quantity"].sum().reindex(out.index).fillna(0)
        out["as_of"] = a
        rows.append(out.reset_index())
    df = pd.concat(rows, ignore_index=True)
    return df[["account_id", "as_of", *FEATURES]]
