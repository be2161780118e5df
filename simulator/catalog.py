"""Fixed vocabulary of the simulated world: products, plans, features, departments.

Kept in one place so that the generator, the tests and the benchmark agree on
names; nothing here is random.
"""

from __future__ import annotations

import numpy as np

from features.names import COVERAGE_LEVELS
from features.names import STAGES as STAGES  # re-exported: stage codes index it

# --- products and plans -------------------------------------------------------------
CORE_PRODUCT = "platform"
TIERS = ("starter", "growth", "enterprise")
#: list price per seat and month on an annual contract (monthly contracts pay MONTHLY_PREMIUM more)
TIER_PRICE = np.array([24.0, 52.0, 96.0])
MONTHLY_PREMIUM = 1.25
#: seats a plan allows (the enterprise plan has no limit)
TIER_SEAT_LIMIT = np.array([25, 300, 1_000_000])
#: metered credits a plan includes per month (sum of `events.quantity`)
TIER_USAGE_LIMIT = np.array([40_000.0, 400_000.0, 4_000_000.0])

#: add-on products: (product, plan, price per seat and month)
ADDONS = (("ai_agents", "ai_agents_pro", 14.0), ("analytics", "analytics_plus", 9.0))
ADDON_PRICE = np.array([a[2] for a in ADDONS])


def plans_rows() -> dict[str, list]:
    """The `plans` table: core tiers with limits, add-on plans without limits.

    Returns
    -------
    dict
        Column name (``plan``, ``seat_limit``, ``usage_limit``) -> values, one per plan;
        None where a plan has no such limit (enterprise seats, every add-on).
    """
    plan = list(TIERS) + [a[1] for a in ADDONS]
    seat_limit: list[int | None] = [int(TIER_SEAT_LIMIT[0]), int(TIER_SEAT_LIMIT[1]), None]
    usage_limit: list[float | None] = [float(x) for x in TIER_USAGE_LIMIT]
    seat_limit += [None] * len(ADDONS)
    usage_limit += [None] * len(ADDONS)
    return {"plan": plan, "seat_limit": seat_limit, "usage_limit": usage_limit}


# --- events ---------------------------------------------------------------------------
LOGIN = "login"
#: features any member uses; each account adopts them in its own order
GENERAL_FEATURES = (
    "dashboard_view",
    "search",
    "report_build",
    "report_share",
    "comment",
    "file_upload",
    "export_csv",
    "alert_create",
    "template_use",
    "data_import",
    "workflow_edit",
    "workflow_run",
    "integration_sync",
    "api_call",
)
AI_FEATURES = ("ai_assist", "agent_build", "notebook_run")
ADMIN_FEATURES = ("settings_change", "user_invite", "billing_view")
AGENT_RUN = "agent_run"
EVENT_NAMES = (LOGIN, *GENERAL_FEATURES, *AI_FEATURES, AGENT_RUN, *ADMIN_FEATURES)
EVENT_CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
GENERAL_CODES = np.array([EVENT_CODE[n] for n in GENERAL_FEATURES], dtype=np.int8)
AI_CODES = np.array([EVENT_CODE[n] for n in AI_FEATURES], dtype=np.int8)
ADMIN_CODES = np.array([EVENT_CODE[n] for n in ADMIN_FEATURES], dtype=np.int8)
#: what agent identities do, and how often
AGENT_EVENTS = np.array(
    [EVENT_CODE[n] for n in (AGENT_RUN, "api_call", "integration_sync", "workflow_run")],
    dtype=np.int8,
)
AGENT_EVENT_P = np.array([0.72, 0.14, 0.09, 0.05])
ACTORS = ("human", "agent")
STATUSES = ("ok", "error")

# --- people ---------------------------------------------------------------------------
DEPARTMENTS = (
    "operations",
    "sales",
    "marketing",
    "finance",
    "engineering",
    "support",
    "product",
    "hr",
    "data",
    "legal",
)
ROLES = ("member", "admin")
INDUSTRIES = (
    "software",
    "financial_services",
    "healthcare",
    "retail",
    "manufacturing",
    "media",
    "education",
    "professional_services",
)
REGIONS = ("NA", "EMEA", "APAC", "LATAM")
REGION_P = np.array([0.5, 0.3, 0.14, 0.06])
#: coverage tiers heaviest touch first: the simulator's tier codes (0 = high touch) index this,
#: so the order is part of every generated world (the reverse of `features.names`' rank order)
COVERAGE = tuple(reversed(COVERAGE_LEVELS))
PRIORITIES = ("low", "normal", "high", "urgent")
