"""The report's Territories section and each moved account's move, from a rebalancing.

`evaluation.report.render` calls `add_territories` once: it returns the section's HTML
(rendered with autoescaping from ``assets/territories.html.j2``: loads per CSM before
and after, the moves, the exceptions and the waves) and adds ``territory`` to the embedded
data: per account, its move (from, to, kind, reason, wave, date) or why it stays, which
the account page shows.

Works on plain frames (duck-typed `models.territories.RebalanceResult` and
`models.territory_plan.MigrationPlan`), so this module imports neither models nor flows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from evaluation.report.charts import load_chart
from evaluation.report.format import account_href, environment
from features.names import COVERAGE_LABELS, COVERAGE_LEVELS

TEMPLATE = "territories.html.j2"
KIND_LABELS = {
    "move": "Move",
    "handover": "Handover",
    "first_assignment": "First assignment",
}

__all__ = ["TerritoryReport", "add_territories", "account_moves", "render_section"]


@dataclass(frozen=True)
class TerritoryReport:
    """What the section shows.

    Parameters
    ----------
    loads : DataFrame
        One row per CSM (csm_id, in_roster, capacity, accounts_before/after,
        high_touch_after, load_before, load_after, load_change, moves_out, moves_in).
    moves : DataFrame
        account_id, name, from_csm, to_csm, kind, reason, coverage_current,
        coverage_after, renewal_date.
    exceptions : DataFrame
        account_id, name, csm_id, reason, deferred_tier_change, renewal_date.
    balance : dict
        The rebalancing's measures (``before``/``after`` dicts, moves, method...).
    actions : DataFrame, optional
        The migration plan's actions (account_id, wave, wave_date).
    waves : DataFrame, optional
        The plan's waves (wave, date, actions, moves, tier_changes).
    top_n : int
        Rows shown per table (the CSV files beside the scores hold them all).
    """

    loads: pd.DataFrame
    moves: pd.DataFrame
    exceptions: pd.DataFrame
    balance: dict[str, Any]
    actions: pd.DataFrame | None = None
    waves: pd.DataFrame | None = None
    top_n: int = 15

    @classmethod
    def from_run(cls, result: Any, plan: Any = None, top_n: int = 15) -> TerritoryReport:
        """From a rebalancing result and (optionally) its migration plan.

        Parameters
        ----------
        result : RebalanceResult-like
            Has ``loads``, ``moves``, ``exceptions`` and ``balance``.
        plan : MigrationPlan-like, optional
            Has ``actions`` and ``waves``.
        top_n : int
            Rows shown per table.

        Returns
        -------
        TerritoryReport
        """
        return cls(
            loads=result.loads,
            moves=result.moves,
            exceptions=result.exceptions,
            balance=result.balance,
            actions=getattr(plan, "actions", None),
            waves=getattr(plan, "waves", None),
            top_n=top_n,
        )


def _date(v: Any) -> str | None:
    return None if v is None or pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")


def _text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


def _waves_of(data: TerritoryReport) -> dict[str, tuple[int, str | None]]:
    if data.actions is None or not len(data.actions):
        return {}
    a = data.actions
    return {
        str(k): (int(w), _date(d))
        for k, w, d in zip(a["account_id"], a["wave"], a["wave_date"], strict=True)
    }


def render_section(data: TerritoryReport) -> str:
    """The Territories section as an HTML fragment (autoescaped).

    Parameters
    ----------
    data : TerritoryReport
        The rebalancing to show.

    Returns
    -------
    str
        HTML of the section (KPIs, load chart, loads, moves, exceptions, waves).
    """
    roster = data.loads[data.loads["in_roster"].astype(bool)]
    outside = data.loads[~data.loads["in_roster"].astype(bool)]
    ordered = roster.assign(_abs=roster["load_change"].abs()).sort_values(
        ["_abs", "csm_id"], ascending=[False, True]
    )
    waves = _waves_of(data)

    def move_row(r: Any) -> dict[str, Any]:
        wave = waves.get(str(r.account_id), (None, None))
        return {
            "href": account_href(r.account_id),
            "name": _text(r.name) or str(r.account_id),
            "from_csm": _text(r.from_csm),
            "to_csm": _text(r.to_csm),
            "kind": KIND_LABELS.get(r.kind, r.kind),
            "tier_from": r.coverage_current,
            "tier_to": r.coverage_after,
            "reason": r.reason,
            "wave": wave[0],
            "date": wave[1],
        }

    def exc_row(r: Any) -> dict[str, Any]:
        return {
            "href": account_href(r.account_id),
            "name": _text(r.name) or str(r.account_id),
            "csm_id": _text(r.csm_id),
            "reason": r.reason,
            "deferred": bool(r.deferred_tier_change),
            "renewal_date": _date(r.renewal_date),
        }

    moves = data.moves.sort_values(["kind", "account_id"])
    b = data.balance
    context = {
        "b": b,
        "solver": b.get("solver", {}),
        "chart": load_chart(roster),
        "csms": [r._asdict() for r in ordered.head(data.top_n).itertuples(index=False)],
        "n_csms": len(roster),
        "outside": len(outside),
        "moves": [move_row(r) for r in moves.head(data.top_n).itertuples(index=False)],
        "n_moves": len(moves),
        "exceptions": [
            exc_row(r) for r in data.exceptions.head(data.top_n).itertuples(index=False)
        ],
        "n_exceptions": len(data.exceptions),
        "waves": []
        if data.waves is None
        else [{**w, "date": _date(w["date"])} for w in data.waves.to_dict("records")],
        "violations": b.get("violations", {}),
        "named_tier": COVERAGE_LABELS[COVERAGE_LEVELS[-1]],  # the heaviest touch, seat-limited
    }
    return environment().get_template(TEMPLATE).render(**context)


def account_moves(data: TerritoryReport) -> dict[str, dict[str, Any]]:
    """Per account: its move and why (kind, from, to, reason, wave, date) or why it stays.

    Parameters
    ----------
    data : TerritoryReport
        The rebalancing.

    Returns
    -------
    dict
        Account id -> ``kind``, ``from``, ``to``, ``tier``, ``reason``, ``risk``, ``wave``
        and ``date``; exceptions (accounts that stay) have kind ``"Stays"``.
    """
    waves = _waves_of(data)
    out: dict[str, dict[str, Any]] = {}
    for r in data.moves.itertuples(index=False):
        wave = waves.get(str(r.account_id), (None, None))
        out[str(r.account_id)] = {
            "kind": KIND_LABELS.get(r.kind, r.kind),
            "from": _text(r.from_csm),
            "to": _text(r.to_csm),
            "tier": None
            if r.coverage_current == r.coverage_after or _text(r.coverage_current) is None
            else f"{COVERAGE_LABELS.get(r.coverage_current)} → {COVERAGE_LABELS.get(r.coverage_after)}",
            "reason": r.reason,
            "risk": _text(r.risk_notes) if hasattr(r, "risk_notes") else None,
            "wave": wave[0],
            "date": wave[1],
        }
    for r in data.exceptions.itertuples(index=False):
        out.setdefault(
            str(r.account_id),
            {
                "kind": "Stays",
                "from": _text(r.csm_id),
                "to": _text(r.csm_id),
                "tier": "tier change deferred" if bool(r.deferred_tier_change) else None,
                "reason": f"stays with its CSM: {r.reason}",
                "risk": None,
                "wave": waves.get(str(r.account_id), (None, None))[0],
                "date": waves.get(str(r.account_id), (None, None))[1],
            },
        )
    return out


def add_territories(territories: Any, payload: dict[str, Any]) -> str:
    """The Territories section's HTML, and each account's move in the report's payload.

    Parameters
    ----------
    territories : TerritoryReport, rebalancing result or None
        The rebalancing to show (also an object with ``result`` and optional ``plan``);
        None for a report without the section.
    payload : dict
        The report's embedded data; ``payload["territory"]`` (account id -> move, see
        :func:`account_moves`) is added for the account pages.

    Returns
    -------
    str
        The section's HTML; ``''`` when there is no rebalancing.
    """
    if territories is None:
        return ""
    data = territories if isinstance(territories, TerritoryReport) else (
        TerritoryReport.from_run(territories.result, getattr(territories, "plan", None))
        if hasattr(territories, "result") else TerritoryReport.from_run(territories)
    )  # fmt: skip
    payload["territory"] = account_moves(data)
    return render_section(data)
