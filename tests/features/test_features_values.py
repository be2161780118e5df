"""Exact value of every feature on a tiny hand-made book (as_of 2025-04-01).

Windows at as_of 2025-04-01: w7 = [03-25, 04-01), w30 = [03-02, 04-01),
p30 = [01-31, 03-02), w90 = [01-01, 04-01), p60 = [01-01, 03-02).
"""

from __future__ import annotations

import logging
import math
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from features_fixtures import connect

from features.build import build_feature_table
from features.catalog import CATALOG, feature_names
from features.config import FeatureConfig

AS_OF = date(2025, 4, 1)
FEAT4 = ["dashboard_view", "report_build", "search", "ai_assist"]  # ua1 uses FEAT4[day % 4]


def _ev(account, user, ts, event, actor="human", status="ok", quantity=1.0):
    return {
        "account_id": account,
        "user_id": user,
        "ts": pd.Timestamp(ts),
        "event": event,
        "actor": actor,
        "status": status,
        "quantity": quantity,
    }


def tiny_world() -> dict[str, pd.DataFrame]:
    """Accounts A (busy), B (new, churns), C (ended before as_of), D (created after)."""
    accounts = pd.DataFrame(
        {
            "account_id": ["A", "B", "C", "D"],
            "name": ["Acme", "Beta", "Gone", "Later"],
            "created_at": pd.to_datetime(
                ["2024-01-01 00:00", "2025-03-15 08:00", "2024-06-01 00:00", "2025-05-01 00:00"]
            ),
            "tam_usd": [100_000.0, np.nan, 50_000.0, 10_000.0],
            "industry": ["software", "retail", "media", None],
            "region": ["NA", "EMEA", "NA", "APAC"],
            "csm_id": ["c1", "c2", "c1", None],
            "coverage": ["standard", "digital", "digital", None],
        }
    )
    d = pd.to_datetime
    subs = pd.DataFrame(
        [
            ("S1", "A", "platform", "starter", "2024-02-10", None, 1000.0, 5, 12),
            ("S2", "A", "ai_agents", "agents_x", "2024-10-01", "2025-01-15", 200.0, 2, 1),
            ("S3", "A", "ai_agents", "agents_x", "2025-04-15", None, 200.0, 2, 1),
            ("S4", "A", "platform", "starter", "2025-02-05", "2025-04-10", 500.0, 3, 1),
            ("S5", "B", "platform", "starter", "2025-03-20", "2025-05-20", 100.0, 1, 1),
            ("S6", "C", "platform", "starter", "2024-06-01", "2025-03-01", 300.0, 2, 12),
            ("S7", "D", "platform", "starter", "2025-05-01", None, 300.0, 2, 12),
        ],
        columns=[
            "subscription_id",
            "account_id",
            "product",
            "plan",
            "start_date",
            "end_date",
            "mrr",
            "seats",
            "term_months",
        ],
    )
    subs["start_date"] = d(subs["start_date"]).dt.date
    subs["end_date"] = d(subs["end_date"]).dt.date
    users = pd.DataFrame(
        [
            ("ua1", "A", "2024-01-05", "sales", "admin", False),
            ("ua2", "A", "2024-01-05", "ops", "member", False),
            ("ua3", "A", "2025-03-10", None, "member", False),
            ("ua4", "A", "2025-05-01", "finance", "member", False),
            ("bot", "A", "2024-10-01", None, "member", True),
            ("ub1", "B", "2025-03-16", "sales", "admin", False),
            ("uc1", "C", "2024-06-02", "ops", "member", False),
            ("ud1", "D", "2025-05-01", "ops", "admin", False),
        ],
        columns=["user_id", "account_id", "created_at", "department", "role", "is_agent"],
    )
    users["created_at"] = d(users["created_at"])
    ev = []
    for day in range(8, 32):  # ua1: 24 active days in March, login + one of four features
        ev.append(_ev("A", "ua1", f"2025-03-{day:02d} 09:00", "login"))
        ev.append(_ev("A", "ua1", f"2025-03-{day:02d} 09:30", FEAT4[day % 4]))
    ev += [
        _ev("A", "ua1", "2025-02-10 10:00", "login"),
        _ev("A", "ua1", "2025-02-10 10:05", "search"),
        _ev("A", "ua2", "2025-03-28 11:00", "login"),
        _ev("A", "ua2", "2025-03-28 11:05", "dashboard_view"),
        _ev("A", "ua2", "2025-01-15 11:00", "login"),
        _ev("A", "ua2", "2025-01-15 11:05", "workflow_run"),
        _ev("A", "ua2", "2025-01-15 11:10", "export_csv"),
        _ev("A", "ua3", "2025-03-29 12:00", "search"),
        _ev("A", None, "2025-03-26 13:00", "export_csv"),
        _ev("A", "bot", "2025-03-30 01:00", "agent_run", "agent", "ok", 10.0),
        _ev("A", "bot", "2025-03-30 02:00", "agent_run", "agent", "error", 5.0),
        _ev("A", "bot", "2025-02-20 01:00", "agent_run", "agent", "ok", 10.0),
        # on or after as_of: never counted at 2025-04-01
        _ev("A", "ua2", "2025-04-01 00:00", "login"),
        _ev("A", "ua4", "2025-04-02 09:00", "login"),
        _ev("A", "ua4", "2025-04-02 09:10", "notebook_run"),
        _ev("B", "ub1", "2025-03-21 09:00", "login"),
        _ev("B", "ub1", "2025-03-21 09:05", "dashboard_view"),
        _ev("C", "uc1", "2025-01-20 09:00", "alert_create"),
        _ev("D", "ud1", "2025-05-02 09:00", "template_use"),
    ]
    events = pd.DataFrame(ev)
    tickets = pd.DataFrame(
        [
            ("T1", "A", "2025-03-20 10:00", "high", "2025-03-25 10:00", 4),
            ("T2", "A", "2025-02-15 10:00", "normal", "2025-04-05 10:00", 2),
            ("T3", "A", "2024-12-01 10:00", "urgent", None, None),
            ("T4", "A", "2025-01-10 10:00", "low", "2025-01-12 10:00", 5),
            ("T5", "A", "2025-04-03 10:00", "high", None, None),
        ],
        columns=["ticket_id", "account_id", "created_at", "priority", "closed_at", "csat"],
    )
    tickets["created_at"] = d(tickets["created_at"])
    tickets["closed_at"] = d(tickets["closed_at"])
    tickets["csat"] = tickets["csat"].astype("Int64")
    plans = pd.DataFrame(
        {"plan": ["starter", "agents_x"], "seat_limit": [10, None], "usage_limit": [1000.0, None]}
    )
    return {
        "accounts": accounts,
        "subscriptions": subs,
        "users": users,
        "events": events,
        "tickets": tickets,
        "plans": plans,
    }


NAN = float("nan")

EXPECTED_A = {
    "active_days_7d": 7,
    "events_7d": 18,
    "active_users_7d": 3,
    "active_days_30d": 24,
    "events_30d": 52,
    "active_users_30d": 3,
    "active_days_90d": 26,
    "events_90d": 57,
    "active_users_90d": 3,
    "events_trend_30d": 52 / 2 - 1,
    "active_users_trend_30d": 3 / 1 - 1,
    "login_decay": 25 / (2 / 2) - 1,
    "days_since_last_activity": 0,  # Monday, snapshot on Tuesday: no working day between
    "users": 3,
    "active_user_share_30d": 1.0,
    "features_used_7d": 5,
    "features_used_30d": 5,
    "features_used_90d": 6,
    "feature_share_30d": 5 / 7,
    "features_used_change_30d": 5 - 1,
    "depth_30d": 27 / 3,
    "depth_breadth_ratio_30d": 27 / 3 / 5,
    "power_users_30d": 1,
    "power_user_share_30d": 1 / 3,
    "champion_depth_30d": 2,
    "admins_active_30d": 1,
    "admin_engagement_30d": 1.0,
    "ai_feature_share_30d": 6 / 27,
    "seats": 8,
    "seat_utilization_30d": 3 / 8,
    "months_high_seat_util": 0,
    "seats_vs_plan_limit": 0.8,
    "usage_30d": 67.0,
    "usage_vs_limit_30d": 0.067,
    "agent_runs_30d": 2,
    "agent_runs_trend_30d": 1.0,
    "agent_success_rate_30d": 0.5,
    "agent_share_30d": 2 / 54,
    "tickets_30d": 1,
    "tickets_90d": 3,
    "tickets_trend_30d": 0.0,
    "high_priority_tickets_90d": 1,
    "open_tickets": 2,
    "open_ticket_max_age_days": 121,
    "csat_90d": 4.5,
    "tenure_days": 456,
    "contract_age_days": 416,
    "days_to_renewal": 4,
    "arr": 18_000.0,
    "arr_change_90d": 0.25,
    "arr_expansions_12m": 2,
    "arr_contractions_12m": 1,
    "tam_usd": 100_000.0,
    "whitespace": 82_000.0,
    "penetration": 0.18,
    "maturity_level": 1,  # AI share 22% >= 5%, but 2 agent runs < 50: Builder
}

EXPECTED_B = {
    "active_days_7d": 0,
    "events_7d": 0,
    "active_users_7d": 0,
    "active_days_30d": 1,
    "events_30d": 2,
    "active_users_30d": 1,
    "active_days_90d": 1,
    "events_90d": 2,
    "active_users_90d": 1,
    "events_trend_30d": NAN,
    "active_users_trend_30d": NAN,
    "login_decay": NAN,
    "days_since_last_activity": 6,  # Friday 21 March: 6 working days before Tuesday 1 April
    "users": 1,
    "active_user_share_30d": 1.0,
    "features_used_7d": 0,
    "features_used_30d": 1,
    "features_used_90d": 1,
    "feature_share_30d": 1 / 7,
    "features_used_change_30d": 1,
    "depth_30d": 1.0,
    "depth_breadth_ratio_30d": 1.0,
    "power_users_30d": 0,
    "power_user_share_30d": 0.0,
    "champion_depth_30d": 1,
    "admins_active_30d": 1,
    "admin_engagement_30d": 1.0,
    "ai_feature_share_30d": 0.0,
    "seats": 1,
    "seat_utilization_30d": 1.0,
    "months_high_seat_util": 1,
    "seats_vs_plan_limit": 0.1,
    "usage_30d": 2.0,
    "usage_vs_limit_30d": 0.002,
    "agent_runs_30d": 0,
    "agent_runs_trend_30d": NAN,
    "agent_success_rate_30d": NAN,
    "agent_share_30d": 0.0,
    "tickets_30d": 0,
    "tickets_90d": 0,
    "tickets_trend_30d": 0.0,
    "high_priority_tickets_90d": 0,
    "open_tickets": 0,
    "open_ticket_max_age_days": NAN,
    "csat_90d": NAN,
    "tenure_days": 17,
    "contract_age_days": 12,
    "days_to_renewal": 19,
    "arr": 1200.0,
    "arr_change_90d": NAN,
    "arr_expansions_12m": 0,
    "arr_contractions_12m": 0,
    "tam_usd": NAN,
    "whitespace": NAN,
    "penetration": NAN,
    "maturity_level": 0,
}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    con = connect(tiny_world())
    return build_feature_table(
        con, [AS_OF], FeatureConfig(), data_end=date(2025, 7, 1), progress=False
    )


def test_expected_covers_every_feature():
    assert set(EXPECTED_A) == set(feature_names()) == set(EXPECTED_B)


@pytest.mark.parametrize("account,expected", [("A", EXPECTED_A), ("B", EXPECTED_B)])
def test_every_feature_exact(table, account, expected):
    row = table.set_index("account_id").loc[account]
    wrong = {}
    for name, want in expected.items():
        got = float(row[name])
        if not (math.isnan(want) and math.isnan(got)) and not math.isclose(
            got, want, rel_tol=1e-9, abs_tol=1e-12
        ):
            wrong[name] = (got, want)
    assert not wrong, f"{account}: (got, expected) {wrong}"


def test_spine_context_and_labels(table):
    # C has ARR 0 at as_of (ended 03-01); D is created after as_of
    assert table["account_id"].tolist() == ["A", "B"]
    assert (table["as_of"] == pd.Timestamp(AS_OF)).all()
    assert str(table["as_of"].dtype) == "datetime64[us]"
    a, b = table.iloc[0], table.iloc[1]
    assert (a["csm_id"], a["coverage"], a["industry"], a["region"]) == (
        "c1",
        "standard",
        "software",
        "NA",
    )
    assert a["maturity_stage"] == "Builder" and b["maturity_stage"] == "Experimenter"
    # A at 05-31: S1 + S3 open (S4 ended 04-10) -> 14,400 <= 0.9 * 18,000: contraction
    assert (a["arr_h"], a["label_churn"], a["label_expand"], a["label_contract"]) == (
        14_400.0,
        0.0,
        0.0,
        1.0,
    )
    # B's only subscription ends 05-20: churn
    assert (b["arr_h"], b["label_churn"], b["label_contract"]) == (0.0, 1.0, 0.0)
    assert table["label_known"].all()


def test_column_order_and_types(table):
    names = feature_names()
    cols = list(table.columns)
    assert cols[:6] == ["account_id", "as_of", "csm_id", "coverage", "industry", "region"]
    assert cols[6 : 6 + len(names)] == names
    assert cols[6 + len(names) :] == [
        "maturity_stage",
        "arr_h",
        "label_churn",
        "label_expand",
        "label_contract",
        "label_known",
    ]
    assert all(table[n].dtype == np.float64 for n in names)
    assert table["label_known"].dtype == bool
    assert set(CATALOG) == set(names)


def test_panel_does_not_change_a_snapshot(table):
    """Features at an as_of do not depend on which other as_of dates are built with it."""
    con = connect(tiny_world())
    dates = [AS_OF - timedelta(days=45), AS_OF, date(2025, 4, 20)]
    panel = build_feature_table(
        con, dates, FeatureConfig(), data_end=date(2025, 7, 1), progress=False
    )
    got = panel[panel["as_of"] == pd.Timestamp(AS_OF)].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[feature_names()], table[feature_names()])


def test_missing_optional_data_gives_nan_and_is_logged(caplog):
    world = tiny_world()
    world["tickets"] = world["tickets"].iloc[0:0]
    world["plans"] = world["plans"].iloc[0:0]
    world["events"] = world["events"][world["events"]["actor"] != "agent"]
    world["users"] = world["users"].assign(department=None, role=None)
    world["accounts"] = world["accounts"].assign(tam_usd=np.nan)
    world["subscriptions"] = world["subscriptions"].assign(seats=None, term_months=None)
    con = connect(world)
    with caplog.at_level(logging.WARNING, logger="nrrcast.features"):
        out = build_feature_table(
            con, [AS_OF], FeatureConfig(), data_end=date(2025, 7, 1), progress=False
        )
    gone = [
        "tickets_30d",
        "tickets_90d",
        "tickets_trend_30d",
        "high_priority_tickets_90d",
        "open_tickets",
        "open_ticket_max_age_days",
        "csat_90d",
        "agent_runs_30d",
        "agent_runs_trend_30d",
        "agent_success_rate_30d",
        "agent_share_30d",
        "champion_depth_30d",
        "admins_active_30d",
        "admin_engagement_30d",
        "seats",
        "seat_utilization_30d",
        "months_high_seat_util",
        "seats_vs_plan_limit",
        "usage_vs_limit_30d",
        "days_to_renewal",
        "tam_usd",
        "whitespace",
        "penetration",
    ]
    assert out[gone].isna().all().all()
    assert set(gone) <= set(out.attrs["left_out"])
    text = caplog.text
    assert "left out" in text and "no ticket before as_of" in text and "agent_runs_30d" in text
    # the rest is still computed
    assert out.set_index("account_id").loc["A", "active_users_30d"] == 3
    # maturity rules read ai_feature_share_30d (present) and agent_runs_30d (missing):
    # a missing value fails its condition, so A can be a Builder at most
    assert out.set_index("account_id").loc["A", "maturity_stage"] == "Builder"


def test_as_of_after_data_end_is_an_error():
    con = connect(tiny_world())
    with pytest.raises(ValueError, match="after data_end"):
        build_feature_table(con, [date(2025, 8, 1)], FeatureConfig(), data_end=date(2025, 7, 1))


def test_duplicate_as_of_is_an_error():
    con = connect(tiny_world())
    with pytest.raises(ValueError, match="duplicate"):
        build_feature_table(con, [AS_OF, AS_OF], FeatureConfig(), data_end=date(2025, 7, 1))


def test_missing_relation_is_named():
    con = connect(tiny_world())
    con.execute("DROP TABLE tickets")
    with pytest.raises(ValueError, match="'tickets'"):
        build_feature_table(con, [AS_OF], FeatureConfig(), data_end=date(2025, 7, 1))


def test_configured_catalogue_list():
    con = connect(tiny_world())
    cfg = FeatureConfig(feature_catalog=["dashboard_view", "search", "report_build", "other"])
    out = build_feature_table(con, [AS_OF], cfg, data_end=date(2025, 7, 1), progress=False)
    a = out.set_index("account_id").loc["A"]
    assert a["features_used_30d"] == 3  # ai_assist and export_csv are not in the list
    assert a["feature_share_30d"] == pytest.approx(3 / 4)


def test_chunked_scan_gives_the_same_table(table):
    con = connect(tiny_world())
    cfg = FeatureConfig(scan_chunk_months=1)
    out = build_feature_table(con, [AS_OF], cfg, data_end=date(2025, 7, 1), progress=False)
    pd.testing.assert_frame_equal(out, table)
