"""The feature registry: every model feature defined once, from its SQL to its sentence.

Each `FeatureSpec` holds what the build computes and what a reason says about it:

- ``sql``: the feature's select expression over the builders' tables, joined on
  (account_id, as_of) under the aliases of `ALIASES` (``t.csat_90d`` reads the column
  ``csat_90d`` of ``tickets_asof``); empty for features computed after the SQL
  (``maturity_level``, `features.maturity`);
- ``measures``: the aggregates the feature adds to a builder's table (`Measure`);
  aggregates several features read are the shared `SHARED_MEASURES`;
- ``needs`` / ``optional``: the source columns it reads and the optional data without
  which it is left NaN (`OPTIONAL_DATA`);
- ``unit``, ``group``, ``description``, ``template``, ``healthier`` and ``gap``: how it is
  shown and judged in a reason.

The builders of `features.activity`, `features.commercial` and `features.support` keep
the CTE and join structure and generate their select lists from here (`select_list`);
`features.build` selects every ``sql``. Adding a feature is one entry (plus its test).

How values read in sentences (units, placeholders): `features.feature_spec`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.config_source import default_section
from features.feature_spec import FeatureSpec, Measure, OptionalData
from features.names import STAGES
from features.snapshots import WINDOWS

if TYPE_CHECKING:
    import pandas as pd

GROUPS = (
    "activity",
    "adoption",
    "seats_usage",
    "agents",
    "support",
    "contract",
    "opportunity",
    "maturity",
)


# ----------------------------------------------------------------------------- parameters

_DEFAULTS = default_section("features")
"""Default feature settings (``configs/default.yaml``): the thresholds the descriptions
and templates quote. Users configure them (`features.config.FeatureConfig`); the SQL
reads the configured values."""

RECENT_WINDOWS: dict[int, str] = {start: key for key, (start, end) in WINDOWS.items() if end == 0}
"""Days -> window key of the windows ending at as_of (7 -> 'w7', 30 -> 'w30', 90 -> 'w90')."""

ARR_STEP_DAYS = 30
"""ARR history is sampled every 30 days back from as_of (`features.commercial.arr_history`)."""

HIGH_PRIORITIES = ("high", "urgent")
"""Ticket priorities that count as high priority."""

NO_ACTIVITY_WORKING_DAYS = 64
"""days_since_last_activity of an account with no activity in the 90-day window (~90 days)."""

HUMAN = "actor IS NULL OR actor <> 'agent'"
"""SQL predicate on events: an event by a person (not an AI agent or service identity)."""
AGENT = "actor = 'agent'"
"""SQL predicate on events: an agent run."""


OPTIONAL_DATA: dict[str, OptionalData] = {
    "tickets": OptionalData("no ticket before as_of", "SELECT MIN(created_at) FROM tickets"),
    "priority": OptionalData(
        "no ticket priority before as_of",
        "SELECT MIN(created_at) FROM tickets WHERE priority IS NOT NULL",
    ),
    "csat": OptionalData(
        "no CSAT on a ticket closed before as_of",
        "SELECT MIN(closed_at) FROM tickets WHERE csat IS NOT NULL",
    ),
    "agents": OptionalData("no agent event before as_of", scan="first_agent"),
    "ai": OptionalData("none of the configured AI features used before as_of", scan="first_ai"),
    "departments": OptionalData(
        "no user department before as_of",
        "SELECT MIN(created_at) FROM users WHERE department IS NOT NULL",
    ),
    "roles": OptionalData(
        "no user role before as_of", "SELECT MIN(created_at) FROM users WHERE role IS NOT NULL"
    ),
    "seats": OptionalData(
        "no subscription with seats before as_of",
        "SELECT MIN(start_date) FROM subscriptions WHERE seats IS NOT NULL",
    ),
    "seat_limit": OptionalData(
        "no plan seat_limit", "SELECT COUNT(seat_limit) FROM plans", static=True
    ),
    "usage_limit": OptionalData(
        "no plan usage_limit", "SELECT COUNT(usage_limit) FROM plans", static=True
    ),
    "terms": OptionalData(
        "no subscription with term_months before as_of",
        "SELECT MIN(start_date) FROM subscriptions WHERE term_months IS NOT NULL",
    ),
    "tam": OptionalData(
        "no account has tam_usd", "SELECT COUNT(tam_usd) FROM accounts", static=True
    ),
}
"""Optional data by key: features listing the key in ``optional`` are NaN at the as_of
dates before it appears (`features.build`)."""

ALIASES: dict[str, str] = {
    "subs_asof": "s",
    "accounts": "acc",
    "catalogue": "c",
    "acc_win": "w",
    "user_win": "u",
    "users_known": "k",
    "arr_hist": "h",
    "util_streak": "m",
    "tickets_asof": "t",
}
"""Builder table (or source) -> its alias in the final join that ``FeatureSpec.sql`` reads."""

_GAP_BY_GROUP = {
    "support": "No support tickets recorded",
    "agents": "No agent runs recorded",
    "opportunity": "No TAM estimate",
    "seats_usage": "No seat or plan-limit data",
}


# ----------------------------------------------------------------------------- SQL pieces


def _div(num: str, den: str) -> str:
    # A denominator of zero, or too small to mean anything (a TAM of 5e-324 dollars), gives
    # NULL rather than an overflow to infinity.
    return f"CAST({num} AS DOUBLE) / CASE WHEN abs({den}) >= 1e-12 THEN {den} END"


def _z(col: str) -> str:
    return f"COALESCE({col}, 0)"


def _win_sum(col: str, key: str) -> str:
    """Sum of a segment column over window `key` (`features.activity.account_windows` rows)."""
    return f"SUM(CASE WHEN w.{key} = 1 THEN a.{col} ELSE 0 END)"


def _working_days_since(last: str, as_of: str) -> str:
    """Weekdays strictly between the last active day and as_of (weekends not counted).

    Calendar days since the last activity swing with the weekday of the snapshot (a
    Monday sees Friday's activity 3 days back, a Wednesday sees Tuesday's 1 day back);
    counting working days makes a steady book look the same on every weekday. Portable
    SQL: n days strictly between, 5 per full week, and the weekdays of the remainder
    (weekday 1..7 of the first of them, from a known Monday, 2001-01-01).
    """
    n = f"(DATE_DIFF('day', {last}, {as_of}) - 1)"
    r = f"({n} % 7)"
    w = f"((DATE_DIFF('day', DATE '2001-01-01', {last}) + 1) % 7 + 1)"
    end = f"({w} + {r} - 1)"
    weekend = (
        f"(CASE WHEN {w} <= 6 AND {end} >= 6 THEN 1 ELSE 0 END"
        f" + CASE WHEN {end} >= 7 THEN 1 ELSE 0 END"
        f" + CASE WHEN {end} >= 13 THEN 1 ELSE 0 END)"
    )
    days = f"(5 * CAST(({n} - {r}) / 7 AS INTEGER) + {r} - {weekend})"
    return f"COALESCE({days}, {NO_ACTIVITY_WORKING_DAYS})"


def arr_sql(mrr: str) -> str:
    """ARR of a group of subscription rows: 12 x the sum of `mrr`, rounded to cents.

    Parameters
    ----------
    mrr : SQL expression of each row's MRR (e.g. ``s.mrr``).

    Returns
    -------
    str, SQL aggregate expression.

    Examples
    --------
    >>> arr_sql("s.mrr")
    'ROUND(12 * SUM(s.mrr), 2)'
    """
    return f"ROUND(12 * SUM({mrr}), 2)"


_OPEN_TICKET = "t.closed_at IS NULL OR t.closed_at >= a.as_of"
_HIGH = "(" + ", ".join(f"'{p}'" for p in HIGH_PRIORITIES) + ")"
_CORE = "y.use_core = 1"

# source columns (input contract) read by many features
_EV = ("events.ts", "events.actor")
_EV_USER = (*_EV, "events.user_id")
_EV_NAME = (*_EV, "events.event")
_SUBS = ("subscriptions.start_date", "subscriptions.end_date", "subscriptions.mrr")
_CORE_SUBS = (*_SUBS, "subscriptions.product")
_SEATS = (*_CORE_SUBS, "subscriptions.seats")
_USERS = ("users.created_at", "users.is_agent")


def _f(
    name: str,
    group: str,
    unit: str,
    description: str,
    template: str,
    *,
    healthier: int,
    sql: str = "",
    agg: tuple[str, str] | None = None,
    extra: tuple[Measure, ...] = (),
    needs: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    gap: str = "",
) -> FeatureSpec:
    """One entry; `agg` = (table, expression) of the feature's own aggregate of its name."""
    own = (Measure(agg[0], name, agg[1]),) if agg is not None else ()
    return FeatureSpec(
        name=name,
        description=description,
        unit=unit,
        template=template,
        group=group,
        healthier=healthier,
        sql=sql,
        measures=own + extra,
        needs=tuple(dict.fromkeys(needs)),
        optional=optional,
        gap=gap,
    )


_SPECS: list[FeatureSpec] = []
for _w, _k in RECENT_WINDOWS.items():
    _SPECS += [
        _f(
            f"active_days_{_w}d",
            "activity",
            "days",
            f"Active days in the last {_w} days: days with at least one event by a person "
            "(not an agent).",
            f"{{value}} with activity in the last {_w} days",
            healthier=1,
            sql=_z(f"w.active_days_{_w}d"),
            agg=("acc_win", _win_sum("active_days", _k)),
            needs=_EV,
        ),
        _f(
            f"events_{_w}d",
            "activity",
            "events",
            f"Events by people (logins and feature use, not agents) in the last {_w} days.",
            f"{{value}} by people in the last {_w} days",
            healthier=1,
            sql=_z(f"w.events_{_w}d"),
            agg=("acc_win", _win_sum("n_human", _k)),
            needs=_EV,
        ),
        _f(
            f"active_users_{_w}d",
            "activity",
            "users",
            f"Active users in the last {_w} days: distinct people with at least one event.",
            f"{{value}} active in the last {_w} days",
            healthier=1,
            sql=_z(f"u.active_users_{_w}d"),
            agg=("user_win", f"SUM(CASE WHEN x.ad{_w} > 0 THEN 1 ELSE 0 END)"),
            needs=_EV_USER,
        ),
    ]
_SPECS += [
    _f(
        "events_trend_30d",
        "activity",
        "pct_change",
        "Events trend: events by people in the last 30 days relative to the 30 days before, "
        "minus 1 (-0.35 = 35% fewer).",
        "Usage {change} in the last 30 days compared with the 30 days before",
        healthier=1,
        sql=_div(_z("w.events_30d"), "w.events_p30") + " - 1",
        extra=(Measure("acc_win", "events_p30", _win_sum("n_human", "p30")),),
        needs=_EV,
    ),
    _f(
        "active_users_trend_30d",
        "activity",
        "pct_change",
        "Active users trend: active users in the last 30 days relative to the 30 days before, "
        "minus 1.",
        "Active users {change} in the last 30 days compared with the 30 days before",
        healthier=1,
        sql=_div(_z("u.active_users_30d"), "u.active_users_p30") + " - 1",
        extra=(
            Measure("user_win", "active_users_p30", "SUM(CASE WHEN x.adp30 > 0 THEN 1 ELSE 0 END)"),
        ),
        needs=_EV_USER,
    ),
    _f(
        "login_decay",
        "activity",
        "pct_change",
        "Login decay: logins in the last 30 days relative to the monthly average of the 60 "
        "days before, minus 1 (-0.4 = 40% fewer logins).",
        "Logins {change} in the last 30 days compared with the two months before",
        healthier=1,
        sql=_div(_z("w.logins_30d"), "w.logins_p60 / 2.0") + " - 1",
        extra=(
            Measure("acc_win", "logins_30d", _win_sum("n_login", "w30")),
            Measure("acc_win", "logins_p60", _win_sum("n_login", "p60")),
        ),
        needs=_EV_NAME,
    ),
    _f(
        "days_since_last_activity",
        "activity",
        "days",
        "Days since last activity: working days (Monday to Friday) between the last day "
        f"with an event by a person and the snapshot, {NO_ACTIVITY_WORKING_DAYS} when none in "
        "90 days. Weekends are not counted, so the value does not depend on the weekday of "
        "the snapshot.",
        "Last activity by a person was {value} ago (working days)",
        healthier=-1,
        sql=_working_days_since("w.last_active", "s.as_of"),
        extra=(
            Measure("acc_win", "last_active", "MAX(CASE WHEN w.w90 = 1 THEN a.last_active END)"),
        ),
        needs=_EV,
        gap="No activity recorded yet",
    ),
    _f(
        "users",
        "activity",
        "users",
        "Provisioned users: people (not agent identities) created before the snapshot.",
        "{value} provisioned",
        healthier=0,
        sql=_z("k.users"),
        agg=("users_known", "SUM(CASE WHEN u.is_agent THEN 0 ELSE 1 END)"),
        needs=_USERS,
    ),
    _f(
        "active_user_share_30d",
        "activity",
        "share",
        "Active user share: active users in the last 30 days / provisioned users.",
        "{value} of provisioned users were active in the last 30 days",
        healthier=1,
        sql=_div(_z("u.active_users_30d"), "k.users"),
        needs=(*_EV_USER, *_USERS),
    ),
]
for _w, _k in RECENT_WINDOWS.items():
    _SPECS.append(
        _f(
            f"features_used_{_w}d",
            "adoption",
            "features",
            f"Adoption breadth: distinct product features people used in the last {_w} days.",
            f"{{value}} used in the last {_w} days",
            healthier=1,
            sql=_z(f"w.features_used_{_w}d"),
            agg=("acc_win", f"{{used[{_k}]}}"),
            needs=_EV_NAME,
        )
    )
_SPECS += [
    _f(
        "feature_share_30d",
        "adoption",
        "share",
        "Catalogue share: features used in the last 30 days / features in the catalogue "
        "(names seen before the snapshot, or the configured list).",
        "The account used {value} of the product's features in the last 30 days",
        healthier=1,
        sql=_div(_z("w.features_used_30d"), "c.catalogue_size"),
        extra=(Measure("catalogue", "catalogue_size", "COUNT(f.event)"),),
        needs=_EV_NAME,
    ),
    _f(
        "features_used_change_30d",
        "adoption",
        "delta_features",
        "Breadth change: features used in the last 30 days minus features used in the 30 "
        "days before.",
        "Features in use {change} in the last 30 days",
        healthier=1,
        sql=f"{_z('w.features_used_30d')} - {_z('w.features_used_p30')}",
        extra=(Measure("acc_win", "features_used_p30", "{used[p30]}"),),
        needs=_EV_NAME,
    ),
    _f(
        "depth_30d",
        "adoption",
        "events",
        "Usage depth: feature events (not logins) per active user in the last 30 days.",
        "Each active user made {value} in product features in the last 30 days",
        healthier=1,
        sql=_div(_z("w.feature_events_30d"), "u.active_users_30d"),
        needs=(*_EV_USER, "events.event"),
    ),
    _f(
        "depth_breadth_ratio_30d",
        "adoption",
        "ratio",
        "Depth/breadth ratio: usage depth divided by features used in the last 30 days "
        "(high = heavy use of few features).",
        "Depth per feature used was {value} events per user in the last 30 days",
        healthier=0,
        sql=_div(_z("w.feature_events_30d"), "u.active_users_30d")
        + " / NULLIF(w.features_used_30d, 0)",
        needs=(*_EV_USER, "events.event"),
    ),
    _f(
        "power_users_30d",
        "adoption",
        "users",
        "Power users: people active on at least "
        f"{_DEFAULTS['power_user_days_per_week']:g} days a week on average and using at least "
        f"{_DEFAULTS['power_user_min_features']} features in the last 30 days (thresholds in the "
        "config).",
        "{value} were power users in the last 30 days",
        healthier=1,
        sql=_z("u.power_users_30d"),
        agg=(
            "user_win",
            "SUM(CASE WHEN x.ad30 >= {power_days} AND {m30_used} >= {power_min_features} "
            "THEN 1 ELSE 0 END)",
        ),
        needs=(*_EV_USER, "events.event"),
    ),
    _f(
        "power_user_share_30d",
        "adoption",
        "share",
        "Power user share: power users / active users in the last 30 days.",
        "{value} of active users were power users in the last 30 days",
        healthier=1,
        sql=_div(_z("u.power_users_30d"), "u.active_users_30d"),
        needs=(*_EV_USER, "events.event"),
    ),
    _f(
        "champion_depth_30d",
        "adoption",
        "departments",
        "Champion depth: distinct departments with an active user in the last 30 days.",
        "Activity came from {value} in the last 30 days",
        healthier=1,
        sql=_z("u.departments_30d"),
        extra=(
            Measure(
                "user_win",
                "departments_30d",
                "COUNT(DISTINCT CASE WHEN x.ad30 > 0 THEN usr.department END)",
            ),
        ),
        needs=(*_EV_USER, "users.created_at", "users.department"),
        optional=("departments",),
    ),
    _f(
        "admins_active_30d",
        "adoption",
        "admins",
        "Active admins: admins with at least one event in the last 30 days.",
        "{value} active in the last 30 days",
        healthier=1,
        sql=_z("u.admins_active_30d"),
        agg=("user_win", "SUM(CASE WHEN x.ad30 > 0 AND usr.role = 'admin' THEN 1 ELSE 0 END)"),
        needs=(*_EV_USER, "users.created_at", "users.role"),
        optional=("roles",),
    ),
    _f(
        "admin_engagement_30d",
        "adoption",
        "share",
        "Admin engagement: active admins in the last 30 days / admins provisioned.",
        "{value} of admins were active in the last 30 days",
        healthier=1,
        sql=_div(_z("u.admins_active_30d"), "k.admins"),
        extra=(
            Measure(
                "users_known",
                "admins",
                "SUM(CASE WHEN u.role = 'admin' AND NOT COALESCE(u.is_agent, FALSE) "
                "THEN 1 ELSE 0 END)",
            ),
        ),
        needs=(*_EV_USER, *_USERS, "users.role"),
        optional=("roles",),
    ),
    _f(
        "ai_feature_share_30d",
        "adoption",
        "share",
        "AI feature share: people's events on AI features (configured list) / their feature "
        "events in the last 30 days.",
        "AI features made up {value} of feature use in the last 30 days",
        healthier=1,
        sql=_div(_z("w.ai_events_30d"), "w.feature_events_30d"),
        extra=(Measure("acc_win", "ai_events_30d", _win_sum("n_ai", "w30")),),
        needs=_EV_NAME,
        optional=("ai",),
        gap="No AI feature use recorded",
    ),
    _f(
        "seats",
        "seats_usage",
        "seats",
        "Seats: seats purchased on the open core subscriptions.",
        "The account has {value}",
        healthier=0,
        sql="s.seats",
        agg=("subs_asof", f"SUM(CASE WHEN {_CORE} THEN y.seats END)"),
        needs=_SEATS,
        optional=("seats",),
    ),
    _f(
        "seat_utilization_30d",
        "seats_usage",
        "share",
        "Seat utilization: active users in the last 30 days / seats purchased.",
        "{value} of purchased seats were in use over the last 30 days",
        healthier=1,
        sql=_div(_z("u.active_users_30d"), "s.seats"),
        needs=(*_EV_USER, *_SEATS),
        optional=("seats",),
    ),
    _f(
        "months_high_seat_util",
        "seats_usage",
        "months",
        "High seat utilization streak: consecutive complete calendar months before the "
        "snapshot with monthly active users / seats at or above "
        f"{_DEFAULTS['seat_util_threshold']:.0%} (threshold in the config, capped at "
        f"{_DEFAULTS['seat_util_lookback_months']} months: more history is not observable at "
        "every snapshot).",
        f"Seat utilization has been at or above {_DEFAULTS['seat_util_threshold']:.0%} for "
        "{value} in a row",
        healthier=1,
        sql=_z("m.months_high_seat_util"),
        agg=("util_streak", "LEAST(r.streak, {lookback})"),
        needs=(*_EV_USER, *_SEATS),
        optional=("seats",),
    ),
    _f(
        "seats_vs_plan_limit",
        "seats_usage",
        "share",
        "Seats vs plan limit: seats purchased / the seat limit of the current plan.",
        "The account uses {value} of its plan's seat limit",
        healthier=0,
        sql=_div("s.seats", "s.seat_limit"),
        extra=(
            Measure("subs_asof", "seat_limit", f"MAX(CASE WHEN {_CORE} THEN y.seat_limit END)"),
        ),
        needs=(*_SEATS, "subscriptions.plan", "plans.seat_limit"),
        optional=("seats", "seat_limit"),
        gap="No plan seat limit recorded",
    ),
    _f(
        "usage_30d",
        "seats_usage",
        "units",
        "Metered usage: sum of event quantity (API calls, tokens) in the last 30 days, all actors.",
        "Metered usage was {value} in the last 30 days",
        healthier=1,
        sql=_z("w.usage_30d"),
        agg=("acc_win", f"CAST({_win_sum('qty', 'w30')} AS DOUBLE)"),
        needs=("events.ts", "events.quantity"),
    ),
    _f(
        "usage_vs_limit_30d",
        "seats_usage",
        "share",
        "Usage vs plan limit: metered usage in the last 30 days / the plan's monthly usage limit.",
        "Usage reached {value} of the plan's monthly limit",
        healthier=0,
        sql=_div(_z("w.usage_30d"), "s.usage_limit"),
        extra=(
            Measure("subs_asof", "usage_limit", f"MAX(CASE WHEN {_CORE} THEN y.usage_limit END)"),
        ),
        needs=(
            "events.ts",
            "events.quantity",
            *_CORE_SUBS,
            "subscriptions.plan",
            "plans.usage_limit",
        ),
        optional=("usage_limit",),
        gap="No plan usage limit recorded",
    ),
    _f(
        "agent_runs_30d",
        "agents",
        "runs",
        "Agent runs: events by AI agents or service identities in the last 30 days.",
        "AI agents made {value} in the last 30 days",
        healthier=1,
        sql=_z("w.agent_runs_30d"),
        agg=("acc_win", _win_sum("n_agent", "w30")),
        needs=_EV,
        optional=("agents",),
    ),
    _f(
        "agent_runs_trend_30d",
        "agents",
        "pct_change",
        "Agent runs trend: agent runs in the last 30 days relative to the 30 days before, minus 1.",
        "Agent runs {change} in the last 30 days compared with the 30 days before",
        healthier=1,
        sql=_div(_z("w.agent_runs_30d"), "w.agent_runs_p30") + " - 1",
        extra=(Measure("acc_win", "agent_runs_p30", _win_sum("n_agent", "p30")),),
        needs=_EV,
        optional=("agents",),
    ),
    _f(
        "agent_success_rate_30d",
        "agents",
        "share",
        "Agent success rate: agent runs without error / agent runs in the last 30 days.",
        "{value} of agent runs succeeded in the last 30 days",
        healthier=1,
        sql="1 - " + _div("w.agent_errors_30d", "w.agent_runs_30d"),
        extra=(Measure("acc_win", "agent_errors_30d", _win_sum("n_agent_err", "w30")),),
        needs=(*_EV, "events.status"),
        optional=("agents",),
    ),
    _f(
        "agent_share_30d",
        "agents",
        "share",
        "Agent share of activity: agent events / all events in the last 30 days.",
        "Agents produced {value} of all activity in the last 30 days",
        healthier=0,
        sql=_div(_z("w.agent_runs_30d"), f"{_z('w.agent_runs_30d')} + {_z('w.events_30d')}"),
        needs=_EV,
        optional=("agents",),
    ),
    _f(
        "tickets_30d",
        "support",
        "tickets",
        "Support tickets opened in the last 30 days.",
        "{value} opened in the last 30 days",
        healthier=-1,
        sql=_z("t.tickets_30d"),
        agg=("tickets_asof", "SUM(CASE WHEN t.created_at >= a.d30 THEN 1 ELSE 0 END)"),
        needs=("tickets.created_at",),
        optional=("tickets",),
    ),
    _f(
        "tickets_90d",
        "support",
        "tickets",
        "Support tickets opened in the last 90 days.",
        "{value} opened in the last 90 days",
        healthier=-1,
        sql=_z("t.tickets_90d"),
        agg=("tickets_asof", "SUM(CASE WHEN t.created_at >= a.d90 THEN 1 ELSE 0 END)"),
        needs=("tickets.created_at",),
        optional=("tickets",),
    ),
    _f(
        "tickets_trend_30d",
        "support",
        "delta_tickets",
        "Ticket trend: tickets opened in the last 30 days minus the monthly average of the 60 "
        "days before.",
        "Support tickets {change} a month in the last 30 days",
        healthier=-1,
        sql=f"{_z('t.tickets_30d')} - {_z('t.tickets_p60')} / 2.0",
        extra=(
            Measure(
                "tickets_asof",
                "tickets_p60",
                "SUM(CASE WHEN t.created_at >= a.d90 AND t.created_at < a.d30 THEN 1 ELSE 0 END)",
            ),
        ),
        needs=("tickets.created_at",),
        optional=("tickets",),
    ),
    _f(
        "high_priority_tickets_90d",
        "support",
        "tickets",
        "High-priority tickets: tickets of priority "
        f"{' or '.join(HIGH_PRIORITIES)} opened in the last 90 days.",
        "{value} of high or urgent priority in the last 90 days",
        healthier=-1,
        sql=_z("t.high_priority_tickets_90d"),
        agg=(
            "tickets_asof",
            f"SUM(CASE WHEN t.created_at >= a.d90 AND t.priority IN {_HIGH} THEN 1 ELSE 0 END)",
        ),
        needs=("tickets.created_at", "tickets.priority"),
        optional=("priority",),
        gap="No ticket priorities recorded",
    ),
    _f(
        "open_tickets",
        "support",
        "tickets",
        "Open tickets: tickets opened before the snapshot and not closed before it.",
        "{value} open",
        healthier=-1,
        sql=_z("t.open_tickets"),
        agg=("tickets_asof", f"SUM(CASE WHEN {_OPEN_TICKET} THEN 1 ELSE 0 END)"),
        needs=("tickets.created_at", "tickets.closed_at"),
        optional=("tickets",),
    ),
    _f(
        "open_ticket_max_age_days",
        "support",
        "days",
        "Open ticket age: days the oldest open ticket has been open.",
        "The oldest open ticket has waited {value}",
        healthier=-1,
        sql="t.open_ticket_max_age_days",
        agg=(
            "tickets_asof",
            f"MAX(CASE WHEN {_OPEN_TICKET} "
            "THEN DATE_DIFF('day', CAST(t.created_at AS DATE), a.as_of) END)",
        ),
        needs=("tickets.created_at", "tickets.closed_at"),
        optional=("tickets",),
    ),
    _f(
        "csat_90d",
        "support",
        "csat",
        "CSAT: mean satisfaction score (1-5) of tickets closed in the last 90 days.",
        "Support satisfaction averaged {value} over the last 90 days",
        healthier=1,
        sql="t.csat_90d",
        agg=(
            "tickets_asof",
            "AVG(CASE WHEN t.closed_at < a.as_of AND t.closed_at >= a.d90 THEN t.csat END)",
        ),
        needs=("tickets.created_at", "tickets.closed_at", "tickets.csat"),
        optional=("csat",),
        gap="No CSAT recorded in the last 90 days",
    ),
    _f(
        "tenure_days",
        "contract",
        "days",
        "Tenure: days since the account was created.",
        "The account has been a customer for {value}",
        healthier=0,
        sql="DATE_DIFF('day', CAST(acc.created_at AS DATE), s.as_of)",
        needs=("accounts.created_at",),
    ),
    _f(
        "contract_age_days",
        "contract",
        "days",
        "Contract age: days since the earliest open core subscription started.",
        "The current contract started {value} ago",
        healthier=0,
        sql="s.contract_age_days",
        agg=(
            "subs_asof",
            f"MAX(CASE WHEN {_CORE} THEN DATE_DIFF('day', y.start_date, y.as_of) END)",
        ),
        needs=_CORE_SUBS,
    ),
    _f(
        "days_to_renewal",
        "contract",
        "days",
        "Days to renewal: days until the next renewal of an open core subscription "
        "(every term_months from its start).",
        "Renewal is due in {value}",
        healthier=0,
        sql="s.days_to_renewal",
        agg=("subs_asof", f"MIN(CASE WHEN {_CORE} THEN DATE_DIFF('day', y.as_of, y.renewal) END)"),
        needs=(*_CORE_SUBS, "subscriptions.term_months"),
        optional=("terms",),
    ),
    _f(
        "arr",
        "contract",
        "usd",
        "ARR: 12 x monthly recurring revenue of the open subscriptions at the snapshot.",
        "ARR is {value}",
        healthier=0,
        sql="s.arr",
        agg=("subs_asof", arr_sql("y.mrr")),
        needs=_SUBS,
    ),
    _f(
        "arr_change_90d",
        "contract",
        "pct_change",
        "ARR change: ARR now relative to 90 days before, minus 1.",
        "ARR {change} over the last 90 days",
        healthier=1,
        sql="h.arr_change_90d",
        agg=("arr_hist", f"arr_k0 / NULLIF(arr_k{90 // ARR_STEP_DAYS}, 0) - 1"),
        needs=_SUBS,
    ),
    _f(
        "arr_expansions_12m",
        "contract",
        "months",
        f"Past expansions: {ARR_STEP_DAYS}-day steps over the last "
        f"{_DEFAULTS['arr_history_steps']} with higher ARR than the step before "
        "(from a positive ARR).",
        f"ARR grew in {{value}} of the last {_DEFAULTS['arr_history_steps']}",
        healthier=1,
        sql=_z("h.arr_expansions_12m"),
        extra=(
            Measure(
                "arr_hist",
                "arr_expansions_12m",
                "CASE WHEN arr_k{k} > 0 AND arr_k{prev} > arr_k{k} THEN 1 ELSE 0 END",
                per_step=True,
            ),
        ),
        needs=_SUBS,
    ),
    _f(
        "arr_contractions_12m",
        "contract",
        "months",
        f"Past contractions: {ARR_STEP_DAYS}-day steps over the last "
        f"{_DEFAULTS['arr_history_steps']} with lower, still positive ARR than the step before.",
        f"ARR shrank in {{value}} of the last {_DEFAULTS['arr_history_steps']}",
        healthier=-1,
        sql=_z("h.arr_contractions_12m"),
        extra=(
            Measure(
                "arr_hist",
                "arr_contractions_12m",
                "CASE WHEN arr_k{prev} > 0 AND arr_k{prev} < arr_k{k} THEN 1 ELSE 0 END",
                per_step=True,
            ),
        ),
        needs=_SUBS,
    ),
    _f(
        "tam_usd",
        "opportunity",
        "usd",
        "TAM: estimated total annual revenue obtainable from the account (enrichment).",
        "Estimated account potential (TAM) is {value}",
        healthier=0,
        sql="acc.tam_usd",
        needs=("accounts.tam_usd",),
        optional=("tam",),
    ),
    _f(
        "whitespace",
        "opportunity",
        "usd",
        "Whitespace: TAM minus ARR (revenue still to capture).",
        "Whitespace still to capture is {value}",
        healthier=0,
        sql="CASE WHEN acc.tam_usd - s.arr < 0 THEN 0 ELSE acc.tam_usd - s.arr END",  # NULL stays
        needs=("accounts.tam_usd", *_SUBS),
        optional=("tam",),
    ),
    _f(
        "penetration",
        "opportunity",
        "share",
        "Penetration: ARR / TAM.",
        "The account spends {value} of its estimated potential",
        healthier=0,
        sql=_div("s.arr", "acc.tam_usd"),
        needs=("accounts.tam_usd", *_SUBS),
        optional=("tam",),
    ),
    _f(
        "maturity_level",
        "maturity",
        "level",
        "AI maturity level: "
        + ", ".join(f"{i} {stage}" for i, stage in enumerate(STAGES))
        + ", from the transparent rules of features.maturity.",
        "AI maturity stage is {value}",
        healthier=1,
        needs=_EV_NAME,
    ),
]

SHARED_MEASURES: tuple[Measure, ...] = (
    Measure(
        "acc_win",
        "feature_events_30d",
        f"{_win_sum('n_human', 'w30')} - {_win_sum('n_login', 'w30')}",
    ),
)
"""Aggregates several features read (each feature's own ones are in its entry)."""

CATALOG: dict[str, FeatureSpec] = {s.name: s for s in _SPECS}
"""Every model feature by name, in feature-table column order."""

MEASURES: dict[str, Measure] = {
    m.name: m for m in (*(m for s in _SPECS for m in s.measures), *SHARED_MEASURES)
}
"""Every builder aggregate by column name (names are unique across builder tables)."""


def feature_names(group: str | None = None) -> list[str]:
    """Model feature names in column order (optionally only those of one group).

    Parameters
    ----------
    group : one of `GROUPS`, or None for every feature.

    Returns
    -------
    list of str

    Examples
    --------
    >>> feature_names("opportunity")
    ['tam_usd', 'whitespace', 'penetration']
    """
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; groups: {GROUPS}")
    return [n for n, s in CATALOG.items() if group is None or s.group == group]


def catalog_frame() -> pd.DataFrame:
    """The catalogue as a DataFrame, for run artifacts.

    Returns
    -------
    DataFrame with columns name, group, unit, description, template (one row per
    feature, in column order).
    """
    import pandas as pd

    return pd.DataFrame(
        [(s.name, s.group, s.unit, s.description, s.template) for s in CATALOG.values()],
        columns=["name", "group", "unit", "description", "template"],
    )


def select_list(table: str, fields: dict[str, object] | None = None) -> str:
    """The ``expression AS name`` items of every aggregate a builder table holds.

    Parameters
    ----------
    table : the builder's table (a key of `ALIASES`).
    fields : values of the ``{fields}`` of its measures (mask words, thresholds).

    Returns
    -------
    str, comma-separated select items in registry order.

    Examples
    --------
    >>> select_list("catalogue")
    'COUNT(f.event) AS catalogue_size'
    """
    items = [f"{m.render(fields or {})} AS {m.name}" for m in MEASURES.values() if m.table == table]
    if not items:
        raise KeyError(f"no registered measure is computed in {table!r}")
    return ",\n  ".join(items)


def feature_sql() -> dict[str, str]:
    """SQL expression of every feature the SQL computes, over the final join (`ALIASES`).

    Returns
    -------
    dict name -> expression, in column order (features computed later are left out).
    """
    return {n: s.sql for n, s in CATALOG.items() if s.sql}


def optional_features() -> dict[str, tuple[tuple[str, ...], str]]:
    """Optional data -> (features it feeds, what is missing when it is absent).

    Returns
    -------
    dict in `OPTIONAL_DATA` order; features in column order.

    Examples
    --------
    >>> optional_features()["csat"]
    (('csat_90d',), 'no CSAT on a ticket closed before as_of')
    """
    return {
        key: (tuple(n for n, s in CATALOG.items() if key in s.optional), data.missing)
        for key, data in OPTIONAL_DATA.items()
    }


def gap_text(name: str) -> str:
    """What a missing value of `name` means, for the "data gaps" list ("No CSAT recorded").

    Parameters
    ----------
    name : a feature name (others get a generic text).

    Returns
    -------
    str

    Examples
    --------
    >>> gap_text("csat_90d")
    'No CSAT recorded in the last 90 days'
    """
    spec = CATALOG.get(name)
    if spec is not None and spec.gap:
        return spec.gap
    if spec is not None and spec.group in _GAP_BY_GROUP:
        return _GAP_BY_GROUP[spec.group]
    label = spec.label if spec else name.replace("_", " ")
    return f"No data for {label[:1].lower() + label[1:]}"
