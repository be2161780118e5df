"""The input contract (v1): which tables and columns a source holds, with types and rules.

This module is data only: `features.validate` turns the specs into SQL checks, so a rule
changes in one place. Types are DuckDB type names (what the clean relations expose).

Actions when a row breaks a rule (documented here because they are choices):

- identity, time and money problems set the row aside (quarantine): null ids, duplicate
  keys, unparseable values, negative ``mrr`` or ``quantity``, ``csat`` outside 1-5,
  ``end_date`` before ``start_date``, ``closed_at`` before ``created_at``, timestamps at or
  after the extraction time, rows of unknown or set-aside accounts and users, and unknown
  ``actor`` / ``status`` values (they define what an event is, so a guess would bias the
  activity and agent-success features);
- unknown values of descriptive enums (``role``, ``priority``, ``coverage``) are kept with
  a warning: the features only look for the known values;
- infinite numbers, values above a ceiling (money and quantities above 1e15, terms above
  600 months) and timestamps before the floor (`DEFAULT_FLOOR`) are set aside like the
  other impossible values of their column (below);
- impossible values of optional enrichment columns (``tam_usd`` < 0 or infinite, negative
  ``employees``, ``seats``, limits; ``term_months`` < 1) become NULL (unknown) with a
  warning, because setting an account aside would drop its whole history for one bad
  enrichment value;
- subscription dates at or after the extraction time are kept with a warning (a scheduled
  start or end is not yet known at any earlier ``as_of``, and the features treat it so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

ContractType = Literal["VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"]
RowAction = Literal["quarantine", "warning", "nullify"]

CONTRACT_VERSION = "v1"

DEFAULT_FLOOR = date(2000, 1, 1)
"""Timestamps and dates before it are set aside: well before any SaaS subscription, so a
value before it is a placeholder (1900-01-01, the Unix epoch) or a parsing accident, and
accepting it would stretch every panel back to that year."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the contract and the rules its values follow.

    Attributes
    ----------
    name, dtype : column name and canonical DuckDB type of the clean relation.
    required : a missing required column is an error; a missing optional one is NULL
        (or `default`) in the clean relation.
    nullable : False means a NULL value sets the row aside.
    key : the table's primary key (unique; duplicates are set aside).
    values : allowed values of an enum column (matched after trimming and lower-casing).
    on_unknown : what an unknown enum value does: "quarantine" or "warning" (kept).
    default : SQL literal used for NULLs and for a missing optional column.
    min_value, max_value : allowed range (inclusive); `on_range` says what breaking it does.
    ceiling : largest plausible magnitude; a value above it is a unit or export mistake
        (1e308 in mrr makes ARR infinite) and is treated as `on_range` says.
    references : parent table whose key this column must match; `on_orphan` says what a
        value missing from the parent's clean rows does ("quarantine" or "warning").
    future : action when the value is at or after the extraction time `now`.
    """

    name: str
    dtype: ContractType
    required: bool = True
    nullable: bool = True
    key: bool = False
    values: tuple[str, ...] | None = None
    on_unknown: Literal["quarantine", "warning"] = "warning"
    default: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    on_range: Literal["quarantine", "nullify"] = "quarantine"
    ceiling: float | None = None
    references: str | None = None
    on_orphan: Literal["quarantine", "warning"] = "quarantine"
    future: Literal["quarantine", "warning"] | None = None
    description: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract.

    `order_rules` lists (earlier, later) column pairs where ``later < earlier`` sets the row
    aside. `dedupe_by` orders duplicate-key rows: the most complete row is kept, ties go to
    the smallest values of these columns (NULLs last), so the choice never depends on the
    storage order of the source.
    """

    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool = True
    order_rules: tuple[tuple[str, str], ...] = ()
    dedupe_by: tuple[str, ...] = ()
    description: str = ""
    _by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {c.name: c for c in self.columns})

    def column(self, name: str) -> ColumnSpec:
        """The spec of column `name`.

        Parameters
        ----------
        name : str
            A contract column of this table.

        Returns
        -------
        ColumnSpec
            Its type, nullability and rules.

        Raises
        ------
        KeyError
            When the table's contract has no such column.
        """
        return self._by_name[name]

    @property
    def key(self) -> str | None:
        """Name of the primary-key column, or None (events have no key)."""
        return next((c.name for c in self.columns if c.key), None)

    @property
    def column_names(self) -> list[str]:
        """Contract columns in canonical order."""
        return [c.name for c in self.columns]


def _c(name: str, dtype: ContractType, **kw: object) -> ColumnSpec:
    return ColumnSpec(name, dtype, **kw)  # type: ignore[arg-type]


_OPT = {"required": False}
_ID = {"nullable": False}

MAX_AMOUNT = 1e15
"""Ceiling of money and quantities (a quadrillion): far above any real contract, far below
where sums over a book could overflow to infinity."""
_AMOUNT = {"ceiling": MAX_AMOUNT}

TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (
        TableSpec(
            "plans",
            (
                _c("plan", "VARCHAR", key=True, **_ID, description="plan name"),
                _c("seat_limit", "BIGINT", **_OPT, min_value=0, on_range="nullify"),
                _c("usage_limit", "DOUBLE", **_OPT, min_value=0, on_range="nullify", **_AMOUNT),
            ),
            required=False,
            dedupe_by=("plan", "seat_limit", "usage_limit"),
            description="plan limits (seats, monthly usage quantity)",
        ),
        TableSpec(
            "csms",
            (
                _c("csm_id", "VARCHAR", key=True, **_ID),
                _c("name", "VARCHAR", description="shown wherever the CSM appears"),
                _c("email", "VARCHAR", **_OPT),
                _c(
                    "capacity",
                    "BIGINT",
                    **_OPT,
                    min_value=0,
                    on_range="nullify",
                    description="accounts this CSM can cover high touch",
                ),
            ),
            required=False,
            dedupe_by=("csm_id", "name", "email"),
            description="customer success managers (names, e-mail, high-touch capacity)",
        ),
        TableSpec(
            "accounts",
            (
                _c("account_id", "VARCHAR", key=True, **_ID),
                _c("name", "VARCHAR"),
                _c("created_at", "TIMESTAMP", **_ID, future="quarantine"),
                _c(
                    "tam_usd",
                    "DOUBLE",
                    min_value=0,
                    on_range="nullify",
                    **_AMOUNT,
                    description="estimated total annual revenue obtainable; NULL = unknown",
                ),
                _c("industry", "VARCHAR", **_OPT),
                _c("region", "VARCHAR", **_OPT),
                _c("employees", "BIGINT", **_OPT, min_value=0, on_range="nullify"),
                _c("csm_id", "VARCHAR", **_OPT),
                _c("coverage", "VARCHAR", **_OPT, values=("high_touch", "standard", "digital")),
            ),
            dedupe_by=("created_at", "name", "tam_usd", "csm_id"),
        ),
        TableSpec(
            "users",
            (
                _c("user_id", "VARCHAR", key=True, **_ID),
                _c("account_id", "VARCHAR", **_ID, references="accounts"),
                _c("created_at", "TIMESTAMP", **_ID, future="quarantine"),
                _c("department", "VARCHAR", **_OPT),
                _c("role", "VARCHAR", **_OPT, values=("admin", "member")),
                _c("is_agent", "BOOLEAN", **_OPT, description="service or AI-agent identity"),
            ),
            dedupe_by=("created_at", "account_id"),
        ),
        TableSpec(
            "subscriptions",
            (
                _c("subscription_id", "VARCHAR", key=True, **_ID),
                _c("account_id", "VARCHAR", **_ID, references="accounts"),
                _c("product", "VARCHAR", **_ID),
                _c("plan", "VARCHAR", references="plans", on_orphan="warning"),
                _c("start_date", "DATE", **_ID, future="warning"),
                _c("end_date", "DATE", **_OPT, future="warning", description="NULL = open"),
                _c("mrr", "DOUBLE", **_ID, min_value=0, **_AMOUNT),
                _c("seats", "BIGINT", **_OPT, min_value=0, on_range="nullify"),
                _c(
                    "term_months",
                    "BIGINT",
                    **_OPT,
                    min_value=1,
                    on_range="nullify",
                    ceiling=600,  # 50 years; renewal dates beyond overflow date arithmetic
                ),
            ),
            order_rules=(("start_date", "end_date"),),
            dedupe_by=("start_date", "account_id", "end_date", "mrr"),
        ),
        TableSpec(
            "tickets",
            (
                _c("ticket_id", "VARCHAR", key=True, **_ID),
                _c("account_id", "VARCHAR", **_ID, references="accounts"),
                _c("created_at", "TIMESTAMP", **_ID, future="quarantine"),
                _c("priority", "VARCHAR", **_OPT, values=("low", "normal", "high", "urgent")),
                _c("closed_at", "TIMESTAMP", **_OPT, future="quarantine"),
                _c("csat", "BIGINT", **_OPT, min_value=1, max_value=5),
            ),
            order_rules=(("created_at", "closed_at"),),
            dedupe_by=("created_at", "account_id", "closed_at"),
        ),
        TableSpec(
            "events",
            (
                _c("account_id", "VARCHAR", **_ID, references="accounts"),
                _c("user_id", "VARCHAR", **_OPT, references="users"),
                _c("ts", "TIMESTAMP", **_ID, future="quarantine"),
                _c("event", "VARCHAR", **_ID, description="'login' or a feature/action name"),
                _c(
                    "actor",
                    "VARCHAR",
                    **_OPT,
                    values=("human", "agent"),
                    on_unknown="quarantine",
                    default="'human'",
                ),
                _c(
                    "status",
                    "VARCHAR",
                    **_OPT,
                    values=("ok", "error"),
                    on_unknown="quarantine",
                    default="'ok'",
                ),
                _c("quantity", "DOUBLE", **_OPT, min_value=0, default="1.0", **_AMOUNT),
            ),
        ),
        TableSpec(
            "actions",
            (
                _c("action_id", "VARCHAR", key=True, **_ID),
                _c("account_id", "VARCHAR", **_ID, references="accounts"),
                _c("ts", "TIMESTAMP", **_ID, future="quarantine"),
                _c("csm_id", "VARCHAR", **_OPT),
                _c("play", "VARCHAR", **_ID, description="the play run (or assigned, if held out)"),
                _c(
                    "holdout",
                    "BOOLEAN",
                    **_OPT,
                    default="false",
                    description="randomly held out: flagged but not touched",
                ),
            ),
            required=False,
            dedupe_by=("ts", "account_id", "play"),
            description="CSM touches and randomised holdouts (optional)",
        ),
    )
}
"""Contract v1, in dependency order (a table's parents come before it)."""

TABLE_ORDER: tuple[str, ...] = tuple(TABLES)
