"""The feature catalogue: one entry per model feature, used to explain predictions.

Each `FeatureSpec` has a name, a plain-language description, a unit, a group and a
sentence template. `FeatureSpec.sentence(value)` renders the template with these
placeholders:

- ``{value}``: the value formatted for its unit ("12 users", "35%", "$48k", "3.4 of 5");
- ``{change}``: for changes, "rose 35%" / "fell 35%" / "did not change"
  (unit ``pct_change``), or "rose by 3 features" (units ``delta_<noun>``);
- ``{pct}``: the absolute value as a percentage ("35%").

Units: ``share`` (a fraction rendered as %), ``pct_change`` (relative change, -0.35 =
35% lower), ``usd``, ``ratio``, ``csat`` (1-5), ``level`` (maturity 0/1/2), or a plural
noun for counts ("days", "users", "events", ...), or ``delta_<noun>`` for differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

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

_SINGULAR = {
    "days": "day",
    "events": "event",
    "users": "user",
    "features": "feature",
    "tickets": "ticket",
    "runs": "run",
    "months": "month",
    "departments": "department",
    "admins": "admin",
    "seats": "seat",
    "units": "unit",
    "logins": "login",
}
_STAGES = ("Experimenter", "Builder", "Transformer")


def _num(x: float) -> str:
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.1f}" if abs(x) >= 10 else f"{x:,.2f}".rstrip("0").rstrip(".")


def _count(x: float, noun: str) -> str:
    word = _SINGULAR.get(noun, noun) if abs(x) == 1 else noun
    return f"{_num(x)} {word}"


def _usd(x: float) -> str:
    sign = "-" if x < 0 else ""
    a = abs(x)
    if a >= 1e6:
        return f"{sign}${a / 1e6:.1f}M"
    if a >= 1e4:
        return f"{sign}${a / 1e3:.0f}k"
    return f"{sign}${a:,.0f}"


def _pct(x: float) -> str:
    p = abs(x) * 100
    return f"{p:.0f}%" if p >= 1 or p == 0 else f"{p:.1f}%"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it measures and how to say it in a sentence.

    Attributes
    ----------
    name : column name in the feature table.
    description : plain-language definition (window, numerator, denominator).
    unit : see module docstring.
    template : sentence template (placeholders ``{value}``, ``{change}``, ``{pct}``).
    group : one of `GROUPS` (activity, adoption, seats_usage, agents, support, contract,
        opportunity, maturity).
    """

    name: str
    description: str
    unit: str
    template: str
    group: str

    def format_value(self, value: float) -> str:
        """The value in words for its unit ("12 users", "35%", "$48k")."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "unknown"
        x = float(value)
        if self.unit == "share":
            return _pct(x)
        if self.unit == "pct_change":
            return ("+" if x > 0 else "-" if x < 0 else "") + _pct(x)
        if self.unit == "usd":
            return _usd(x)
        if self.unit == "ratio":
            return _num(round(x, 2))
        if self.unit == "csat":
            return f"{x:.1f} out of 5"
        if self.unit == "level":
            i = int(round(x))
            return _STAGES[i] if 0 <= i < len(_STAGES) else _num(x)
        if self.unit.startswith("delta_"):
            return ("+" if x > 0 else "") + _count(x, self.unit[len("delta_") :])
        return _count(x, self.unit)

    def _change(self, x: float) -> str:
        if x == 0:
            return "did not change"
        verb = "rose" if x > 0 else "fell"
        if self.unit.startswith("delta_"):
            return f"{verb} by {_count(abs(x), self.unit[len('delta_') :])}"
        return f"{verb} {_pct(x)}"

    def sentence(self, value: float | None, contribution: float | None = None) -> str:
        """A plain-language sentence about `value`, e.g. "Active users fell 35% ...".

        Parameters
        ----------
        value : the feature value (NaN/None renders as "not available").
        contribution : optional model contribution (e.g. SHAP, log-odds); when given,
            the sentence ends with whether it pushes the prediction up or down.

        Examples
        --------
        >>> CATALOG["active_users_trend_30d"].sentence(-0.35)
        'Active users fell 35% in the last 30 days compared with the 30 days before'
        """
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = f"{self.description.split(':')[0].rstrip('.')}: not available"
        else:
            x = float(value)
            text = self.template.format(
                value=self.format_value(x), change=self._change(x), pct=_pct(x)
            )
            text = text[:1].upper() + text[1:]
        if contribution is not None and not math.isnan(contribution) and contribution != 0:
            text += (
                " (pushes the prediction up)"
                if contribution > 0
                else " (pushes the prediction down)"
            )
        return text


def _f(name: str, group: str, unit: str, description: str, template: str) -> FeatureSpec:
    return FeatureSpec(
        name=name, description=description, unit=unit, template=template, group=group
    )


_SPECS: list[FeatureSpec] = []
for _w in (7, 30, 90):
    _SPECS += [
        _f(
            f"active_days_{_w}d",
            "activity",
            "days",
            f"Active days in the last {_w} days: days with at least one event by a person "
            "(not an agent).",
            f"{{value}} with activity in the last {_w} days",
        ),
        _f(
            f"events_{_w}d",
            "activity",
            "events",
            f"Events by people (logins and feature use, not agents) in the last {_w} days.",
            f"{{value}} by people in the last {_w} days",
        ),
        _f(
            f"active_users_{_w}d",
            "activity",
            "users",
            f"Active users in the last {_w} days: distinct people with at least one event.",
            f"{{value}} active in the last {_w} days",
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
    ),
    _f(
        "active_users_trend_30d",
        "activity",
        "pct_change",
        "Active users trend: active users in the last 30 days relative to the 30 days before, "
        "minus 1.",
        "Active users {change} in the last 30 days compared with the 30 days before",
    ),
    _f(
        "login_decay",
        "activity",
        "pct_change",
        "Login decay: logins in the last 30 days relative to the monthly average of the 60 "
        "days before, minus 1 (-0.4 = 40% fewer logins).",
        "Logins {change} in the last 30 days compared with the two months before",
    ),
    _f(
        "days_since_last_activity",
        "activity",
        "days",
        "Days since last activity: working days (Monday to Friday) between the last day "
        "with an event by a person and the snapshot, 64 when none in 90 days. Weekends are "
        "not counted, so the value does not depend on the weekday of the snapshot.",
        "Last activity by a person was {value} ago (working days)",
    ),
    _f(
        "users",
        "activity",
        "users",
        "Provisioned users: people (not agent identities) created before the snapshot.",
        "{value} provisioned",
    ),
    _f(
        "active_user_share_30d",
        "activity",
        "share",
        "Active user share: active users in the last 30 days / provisioned users.",
        "{value} of provisioned users were active in the last 30 days",
    ),
]
for _w in (7, 30, 90):
    _SPECS.append(
        _f(
            f"features_used_{_w}d",
            "adoption",
            "features",
            f"Adoption breadth: distinct product features people used in the last {_w} days.",
            f"{{value}} used in the last {_w} days",
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
    ),
    _f(
        "features_used_change_30d",
        "adoption",
        "delta_features",
        "Breadth change: features used in the last 30 days minus features used in the 30 "
        "days before.",
        "Features in use {change} in the last 30 days",
    ),
    _f(
        "depth_30d",
        "adoption",
        "events",
        "Usage depth: feature events (not logins) per active user in the last 30 days.",
        "Each active user made {value} in product features in the last 30 days",
    ),
    _f(
        "depth_breadth_ratio_30d",
        "adoption",
        "ratio",
        "Depth/breadth ratio: usage depth divided by features used in the last 30 days "
        "(high = heavy use of few features).",
        "Depth per feature used was {value} events per user in the last 30 days",
    ),
    _f(
        "power_users_30d",
        "adoption",
        "users",
        "Power users: people active on at least 5 days a week on average and using at least "
        "4 features in the last 30 days (thresholds in the config).",
        "{value} were power users in the last 30 days",
    ),
    _f(
        "power_user_share_30d",
        "adoption",
        "share",
        "Power user share: power users / active users in the last 30 days.",
        "{value} of active users were power users in the last 30 days",
    ),
    _f(
        "champion_depth_30d",
        "adoption",
        "departments",
        "Champion depth: distinct departments with an active user in the last 30 days.",
        "Activity came from {value} in the last 30 days",
    ),
    _f(
        "admins_active_30d",
        "adoption",
        "admins",
        "Active admins: admins with at least one event in the last 30 days.",
        "{value} active in the last 30 days",
    ),
    _f(
        "admin_engagement_30d",
        "adoption",
        "share",
        "Admin engagement: active admins in the last 30 days / admins provisioned.",
        "{value} of admins were active in the last 30 days",
    ),
    _f(
        "ai_feature_share_30d",
        "adoption",
        "share",
        "AI feature share: people's events on AI features (configured list) / their feature "
        "events in the last 30 days.",
        "AI features made up {value} of feature use in the last 30 days",
    ),
    _f(
        "seats",
        "seats_usage",
        "seats",
        "Seats: seats purchased on the open core subscriptions.",
        "The account has {value}",
    ),
    _f(
        "seat_utilization_30d",
        "seats_usage",
        "share",
        "Seat utilization: active users in the last 30 days / seats purchased.",
        "{value} of purchased seats were in use over the last 30 days",
    ),
    _f(
        "months_high_seat_util",
        "seats_usage",
        "months",
        "High seat utilization streak: consecutive complete calendar months before the "
        "snapshot with monthly active users / seats at or above 80% (threshold in the config, "
        "capped at 3 months: more history is not observable at every snapshot).",
        "Seat utilization has been at or above 80% for {value} in a row",
    ),
    _f(
        "seats_vs_plan_limit",
        "seats_usage",
        "share",
        "Seats vs plan limit: seats purchased / the seat limit of the current plan.",
        "The account uses {value} of its plan's seat limit",
    ),
    _f(
        "usage_30d",
        "seats_usage",
        "units",
        "Metered usage: sum of event quantity (API calls, tokens) in the last 30 days, all actors.",
        "Metered usage was {value} in the last 30 days",
    ),
    _f(
        "usage_vs_limit_30d",
        "seats_usage",
        "share",
        "Usage vs plan limit: metered usage in the last 30 days / the plan's monthly usage limit.",
        "Usage reached {value} of the plan's monthly limit",
    ),
    _f(
        "agent_runs_30d",
        "agents",
        "runs",
        "Agent runs: events by AI agents or service identities in the last 30 days.",
        "AI agents made {value} in the last 30 days",
    ),
    _f(
        "agent_runs_trend_30d",
        "agents",
        "pct_change",
        "Agent runs trend: agent runs in the last 30 days relative to the 30 days before, minus 1.",
        "Agent runs {change} in the last 30 days compared with the 30 days before",
    ),
    _f(
        "agent_success_rate_30d",
        "agents",
        "share",
        "Agent success rate: agent runs without error / agent runs in the last 30 days.",
        "{value} of agent runs succeeded in the last 30 days",
    ),
    _f(
        "agent_share_30d",
        "agents",
        "share",
        "Agent share of activity: agent events / all events in the last 30 days.",
        "Agents produced {value} of all activity in the last 30 days",
    ),
    _f(
        "tickets_30d",
        "support",
        "tickets",
        "Support tickets opened in the last 30 days.",
        "{value} opened in the last 30 days",
    ),
    _f(
        "tickets_90d",
        "support",
        "tickets",
        "Support tickets opened in the last 90 days.",
        "{value} opened in the last 90 days",
    ),
    _f(
        "tickets_trend_30d",
        "support",
        "delta_tickets",
        "Ticket trend: tickets opened in the last 30 days minus the monthly average of the 60 "
        "days before.",
        "Support tickets {change} a month in the last 30 days",
    ),
    _f(
        "high_priority_tickets_90d",
        "support",
        "tickets",
        "High-priority tickets: tickets of priority high or urgent opened in the last 90 days.",
        "{value} of high or urgent priority in the last 90 days",
    ),
    _f(
        "open_tickets",
        "support",
        "tickets",
        "Open tickets: tickets opened before the snapshot and not closed before it.",
        "{value} open",
    ),
    _f(
        "open_ticket_max_age_days",
        "support",
        "days",
        "Open ticket age: days the oldest open ticket has been open.",
        "The oldest open ticket has waited {value}",
    ),
    _f(
        "csat_90d",
        "support",
        "csat",
        "CSAT: mean satisfaction score (1-5) of tickets closed in the last 90 days.",
        "Support satisfaction averaged {value} over the last 90 days",
    ),
    _f(
        "tenure_days",
        "contract",
        "days",
        "Tenure: days since the account was created.",
        "The account has been a customer for {value}",
    ),
    _f(
        "contract_age_days",
        "contract",
        "days",
        "Contract age: days since the earliest open core subscription started.",
        "The current contract started {value} ago",
    ),
    _f(
        "days_to_renewal",
        "contract",
        "days",
        "Days to renewal: days until the next renewal of an open core subscription "
        "(every term_months from its start).",
        "Renewal is due in {value}",
    ),
    _f(
        "arr",
        "contract",
        "usd",
        "ARR: 12 x monthly recurring revenue of the open subscriptions at the snapshot.",
        "ARR is {value}",
    ),
    _f(
        "arr_change_90d",
        "contract",
        "pct_change",
        "ARR change: ARR now relative to 90 days before, minus 1.",
        "ARR {change} over the last 90 days",
    ),
    _f(
        "arr_expansions_12m",
        "contract",
        "months",
        "Past expansions: 30-day steps over the last 12 with higher ARR than the step before "
        "(from a positive ARR).",
        "ARR grew in {value} of the last 12",
    ),
    _f(
        "arr_contractions_12m",
        "contract",
        "months",
        "Past contractions: 30-day steps over the last 12 with lower, still positive ARR than "
        "the step before.",
        "ARR shrank in {value} of the last 12",
    ),
    _f(
        "tam_usd",
        "opportunity",
        "usd",
        "TAM: estimated total annual revenue obtainable from the account (enrichment).",
        "Estimated account potential (TAM) is {value}",
    ),
    _f(
        "whitespace",
        "opportunity",
        "usd",
        "Whitespace: TAM minus ARR (revenue still to capture).",
        "Whitespace still to capture is {value}",
    ),
    _f(
        "penetration",
        "opportunity",
        "share",
        "Penetration: ARR / TAM.",
        "The account spends {value} of its estimated potential",
    ),
    _f(
        "maturity_level",
        "maturity",
        "level",
        "AI maturity level: 0 Experimenter, 1 Builder, 2 Transformer, from the transparent "
        "rules of features.maturity.",
        "AI maturity stage is {value}",
    ),
]

CATALOG: dict[str, FeatureSpec] = {s.name: s for s in _SPECS}
"""Every model feature by name, in feature-table column order."""


def feature_names(group: str | None = None) -> list[str]:
    """Model feature names in column order (optionally only those of one group)."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; groups: {GROUPS}")
    return [n for n, s in CATALOG.items() if group is None or s.group == group]


def catalog_frame() -> pd.DataFrame:
    """The catalogue as a DataFrame (name, group, unit, description, template)."""
    import pandas as pd

    return pd.DataFrame(
        [(s.name, s.group, s.unit, s.description, s.template) for s in CATALOG.values()],
        columns=["name", "group", "unit", "description", "template"],
    )


# Which way is healthier for the customer, per feature: +1 higher is better, -1 lower is
# better, 0 neither (context such as size or the renewal date). A reason is "working well"
# only when its value is on the healthy side of its comparison (0 for changes, else the
# median of the account's segment).
HEALTHIER: dict[str, int] = {
    **{f"{k}_{w}d": 1 for k in ("active_days", "events", "active_users") for w in (7, 30, 90)},
    "events_trend_30d": 1,
    "active_users_trend_30d": 1,
    "login_decay": 1,
    "days_since_last_activity": -1,
    "users": 0,
    "active_user_share_30d": 1,
    "features_used_7d": 1,
    "features_used_30d": 1,
    "features_used_90d": 1,
    "feature_share_30d": 1,
    "features_used_change_30d": 1,
    "depth_30d": 1,
    "depth_breadth_ratio_30d": 0,
    "power_users_30d": 1,
    "power_user_share_30d": 1,
    "champion_depth_30d": 1,
    "admins_active_30d": 1,
    "admin_engagement_30d": 1,
    "ai_feature_share_30d": 1,
    "seats": 0,
    "seat_utilization_30d": 1,
    "months_high_seat_util": 1,
    "seats_vs_plan_limit": 0,
    "usage_30d": 1,
    "usage_vs_limit_30d": 0,
    "agent_runs_30d": 1,
    "agent_runs_trend_30d": 1,
    "agent_success_rate_30d": 1,
    "agent_share_30d": 0,
    "tickets_30d": -1,
    "tickets_90d": -1,
    "tickets_trend_30d": -1,
    "high_priority_tickets_90d": -1,
    "open_tickets": -1,
    "open_ticket_max_age_days": -1,
    "csat_90d": 1,
    "tenure_days": 0,
    "contract_age_days": 0,
    "days_to_renewal": 0,
    "arr": 0,
    "arr_change_90d": 1,
    "arr_expansions_12m": 1,
    "arr_contractions_12m": -1,
    "tam_usd": 0,
    "whitespace": 0,
    "penetration": 0,
    "maturity_level": 1,
}
"""Healthy direction of every catalogue feature (+1 higher, -1 lower, 0 neither)."""

_GAP_BY_GROUP = {
    "support": "No support tickets recorded",
    "agents": "No agent runs recorded",
    "opportunity": "No TAM estimate",
    "seats_usage": "No seat or plan-limit data",
}
_GAP_BY_FEATURE = {
    "csat_90d": "No CSAT recorded in the last 90 days",
    "high_priority_tickets_90d": "No ticket priorities recorded",
    "ai_feature_share_30d": "No AI feature use recorded",
    "usage_vs_limit_30d": "No plan usage limit recorded",
    "seats_vs_plan_limit": "No plan seat limit recorded",
    "days_since_last_activity": "No activity recorded yet",
}


def gap_text(name: str) -> str:
    """What a missing value of `name` means, for the "data gaps" list ("No CSAT recorded").

    Examples
    --------
    >>> gap_text("csat_90d")
    'No CSAT recorded in the last 90 days'
    """
    if name in _GAP_BY_FEATURE:
        return _GAP_BY_FEATURE[name]
    spec = CATALOG.get(name)
    if spec is not None and spec.group in _GAP_BY_GROUP:
        return _GAP_BY_GROUP[spec.group]
    label = spec.description.split(":")[0].rstrip(".") if spec else name.replace("_", " ")
    return f"No data for {label[:1].lower() + label[1:]}"
