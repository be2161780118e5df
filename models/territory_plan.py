"""A migration plan for a rebalancing: phased waves and the texts that announce them.

Every change of `models.territories.rebalance` (a move to another CSM, a handover, a
first assignment, a tier change, and a deferred tier change of a frozen account) becomes
one action. Actions are ranked by risk (``p_churn``, +0.5 when at risk, +0.25 when the
renewal falls within twice the renewal window) and cut into ``waves`` equal groups a
fixed number of days apart: the least risky first, the riskiest last. Deferred tier
changes always go to the last wave, flagged for review.

The internal announcement and the customer notices are rendered from editable Jinja2
templates (``configs/territories/*.j2`` by default) with the account's facts only: names,
tiers, dates and the CSM's name and e-mail when the ``csms`` table gives them. Nothing is
said that the data does not hold (no service promises: the templates leave that to the
team that edits them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from models.territories import MigrationConfig, RebalanceResult

__all__ = ["MigrationPlan", "TIER_LABELS", "migration_plan", "render_texts"]

TIER_LABELS = {"high_touch": "High-touch", "standard": "Standard", "digital": "Digital"}
ANNOUNCEMENT = "internal_announcement.md.j2"
NOTICE = "customer_tier_notice.md.j2"


@dataclass
class MigrationPlan:
    """Actions in waves, and the generated texts.

    Attributes
    ----------
    actions : one row per account that changes: account_id, name, action, from_csm,
        to_csm, coverage_from, coverage_to, wave, wave_date, risk_score, notes.
    waves : one row per wave: wave, date, actions, moves, tier_changes, max_risk.
    announcement : internal announcement text (Markdown), None until `render_texts`.
    notices : account_id, name, wave_date, subject, body: one customer notice per tier
        change (empty until `render_texts`).
    """

    actions: pd.DataFrame
    waves: pd.DataFrame
    announcement: str | None = None
    notices: pd.DataFrame | None = None


def _risk(a: pd.DataFrame, window: int) -> np.ndarray:
    p = np.nan_to_num(a["p_churn"].to_numpy(np.float64, na_value=np.nan), nan=0.0)
    d = a["days_to_renewal"].to_numpy(np.float64, na_value=np.nan)
    near = ~np.isnan(d) & (d <= 2 * window)
    return p + 0.5 * a["at_risk"].to_numpy(dtype=bool) + 0.25 * near


def _changing_rows(result: RebalanceResult) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Rows of the assignment that change CSM or tier (or defer a tier change), with the tier
    each goes to (``coverage_to``); whether each moves, and whether its change is deferred."""
    a = result.assignment
    exc = result.exceptions.set_index("account_id") if len(result.exceptions) else None
    moved = a["change"].isin(["move", "handover", "first_assignment"])
    tier = a["coverage_after"].astype(object) != a["coverage_current"].astype(object)
    tier &= a["coverage_current"].notna()
    deferred = pd.Series(False, index=a.index)
    if exc is not None:
        d = a["account_id"].map(exc["deferred_tier_change"]).fillna(False).astype(bool)
        deferred = d & a["frozen"].astype(bool)
    rows = a[moved | tier | deferred].copy()
    to_tier = rows["coverage_after"].astype(object)
    if exc is not None:
        rec = rows["account_id"].map(exc["coverage_recommended"])
        to_tier = to_tier.where(~deferred[rows.index], rec)
    rows["coverage_to"] = to_tier
    rows["coverage_to"] = rows["coverage_to"].where(
        ~(rows["change"] == "leaves_named_book"), "digital"
    )
    return rows, moved[rows.index], deferred[rows.index]


def _wave_notes(rows: pd.DataFrame, is_def: pd.Series, wave: np.ndarray, dates: dict) -> list[str]:
    """What to watch in each action: frozen, renewing before its wave, at risk."""
    notes = []
    for i, (_, r) in enumerate(rows.iterrows()):
        parts = []
        if is_def.iloc[i]:
            parts.append(f"frozen ({r['exception_reason']}): review before acting")
        renews = r["renewal_date"]
        if isinstance(renews, pd.Timestamp) and renews.date() <= dates[int(wave[i])]:
            parts.append(f"renews {renews.date()} before this wave")
        if bool(r["at_risk"]):
            parts.append("at risk")
        notes.append("; ".join(parts))
    return notes


def _waves_frame(actions: pd.DataFrame, dates: dict, n_waves: int) -> pd.DataFrame:
    """One row per wave: date, actions, moves, tier changes and the highest risk."""
    return pd.DataFrame(
        [
            {
                "wave": k,
                "date": pd.Timestamp(dates[k]),
                "actions": int((actions["wave"] == k).sum()),
                "moves": int(
                    ((actions["wave"] == k) & actions["action"].str.startswith("move")).sum()
                ),
                "tier_changes": int(
                    ((actions["wave"] == k) & actions["action"].str.contains("tier")).sum()
                ),
                "max_risk": float(actions.loc[actions["wave"] == k, "risk_score"].max())
                if (actions["wave"] == k).any()
                else 0.0,
            }
            for k in range(1, n_waves + 1)
        ]
    )


def migration_plan(
    result: RebalanceResult,
    as_of: date,
    cfg: MigrationConfig | None = None,
    *,
    renewal_window_days: int = 90,
) -> MigrationPlan:
    """Group the moves and tier changes of `result` into waves, riskiest last.

    Parameters
    ----------
    result : output of `models.territories.rebalance`.
    as_of : the book's date; wave k starts ``first_wave_days + (k - 1) * wave_gap_days``
        later.
    cfg : MigrationConfig (defaults when None).
    renewal_window_days : the rebalancing's window (renewals within twice it add risk).

    Returns
    -------
    MigrationPlan (texts empty: see `render_texts`).
    """
    cfg = cfg or MigrationConfig()
    rows, is_move, is_def = _changing_rows(result)
    is_tier = (rows["coverage_to"].astype(object) != rows["coverage_current"].astype(object)) & (
        rows["coverage_current"].notna()
    )
    action = np.select(
        [is_def, is_move & is_tier, is_move, is_tier],
        ["deferred tier change", "move + tier change", "move", "tier change"],
        "tier change",
    )
    risk = _risk(rows, renewal_window_days)
    n = len(rows)
    wave = np.zeros(n, dtype=np.int64)
    order = np.lexsort((rows["account_id"].astype(str).to_numpy(), risk, is_def.to_numpy()))
    normal = order[~is_def.to_numpy()[order]]
    for k, chunk in enumerate(np.array_split(normal, cfg.waves)):
        wave[chunk] = k + 1
    wave[is_def.to_numpy()] = cfg.waves
    dates = {
        k: as_of + timedelta(days=cfg.first_wave_days + (k - 1) * cfg.wave_gap_days)
        for k in range(1, cfg.waves + 1)
    }
    actions = pd.DataFrame(
        {
            "account_id": rows["account_id"].to_numpy(dtype=object),
            "name": rows["name"].to_numpy(dtype=object),
            "action": action,
            "from_csm": rows["csm_before"].to_numpy(dtype=object),
            "to_csm": rows["csm_after"].to_numpy(dtype=object),
            "coverage_from": rows["coverage_current"].to_numpy(dtype=object),
            "coverage_to": rows["coverage_to"].to_numpy(dtype=object),
            "wave": wave,
            "wave_date": pd.to_datetime(pd.Series([dates[int(k)] for k in wave])).to_numpy()
            if n
            else np.array([], dtype="datetime64[ns]"),
            "risk_score": np.round(risk, 4),
            "renewal_date": rows["renewal_date"].to_numpy(),
            "notes": _wave_notes(rows, is_def, wave, dates),
        }
    ).sort_values(["wave", "risk_score", "account_id"], ignore_index=True)
    return MigrationPlan(actions=actions, waves=_waves_frame(actions, dates, cfg.waves))


def _environment(templates_dir: Path) -> Environment:
    return Environment(
        loader=FileSystemLoader(str(templates_dir)),
        undefined=StrictUndefined,
        autoescape=False,  # plain text and Markdown, never served as HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_texts(
    plan: MigrationPlan,
    result: RebalanceResult,
    templates_dir: str | Path,
    *,
    as_of: date,
    csms: pd.DataFrame | None = None,
) -> MigrationPlan:
    """Fill the announcement and the customer notices from the templates in `templates_dir`.

    Parameters
    ----------
    plan : output of `migration_plan`.
    result : the rebalancing it was made from.
    templates_dir : folder with ``internal_announcement.md.j2`` and
        ``customer_tier_notice.md.j2``.
    as_of : the book's date.
    csms : the roster (`models.territories.check_roster` output) for CSM names and e-mail.

    Returns
    -------
    The same plan with ``announcement`` and ``notices`` set.
    """
    env = _environment(Path(templates_dir))
    who: dict[str, dict[str, Any]] = {}
    if csms is not None:
        for r in csms.itertuples(index=False):
            who[str(r.csm_id)] = {
                "name": r.name if isinstance(r.name, str) and r.name else None,
                "email": r.email if isinstance(r.email, str) and r.email else None,
            }

    def person(csm: Any) -> dict[str, Any]:
        if csm is None or (isinstance(csm, float) and np.isnan(csm)):
            return {"id": None, "name": None, "email": None}
        return {"id": str(csm), **who.get(str(csm), {"name": None, "email": None})}

    def action_row(r: pd.Series) -> dict[str, Any]:
        return {
            "account_id": r["account_id"],
            "name": r["name"] if isinstance(r["name"], str) else r["account_id"],
            "action": r["action"],
            "from_csm": person(r["from_csm"]),
            "to_csm": person(r["to_csm"]),
            "tier_from": TIER_LABELS.get(r["coverage_from"], r["coverage_from"]),
            "tier_to": TIER_LABELS.get(r["coverage_to"], r["coverage_to"]),
            "tier_changes": r["coverage_from"] != r["coverage_to"],
            "wave": int(r["wave"]),
            "date": pd.Timestamp(r["wave_date"]).date(),
            "notes": r["notes"],
        }

    acts = [action_row(r) for _, r in plan.actions.iterrows()]
    loads = result.loads[result.loads["in_roster"]]
    changes = loads[(loads["moves_in"] > 0) | (loads["moves_out"] > 0)]
    context = {
        "as_of": as_of,
        "balance": result.balance,
        "waves": [
            {
                "wave": int(w["wave"]),
                "date": w["date"].date(),
                "actions": [x for x in acts if x["wave"] == int(w["wave"])],
            }
            for _, w in plan.waves.iterrows()
        ],
        "csm_changes": [
            {
                **person(r["csm_id"]),
                "load_before": float(r["load_before"]),
                "load_after": float(r["load_after"]),
                "moves_in": int(r["moves_in"]),
                "moves_out": int(r["moves_out"]),
            }
            for _, r in changes.iterrows()
        ],
        "exceptions": result.exceptions.to_dict("records"),
        "method": result.method,
    }
    plan.announcement = env.get_template(ANNOUNCEMENT).render(**context)
    notice = env.get_template(NOTICE)
    notices = []
    for x in acts:
        if not x["tier_changes"] or x["action"] == "deferred tier change":
            continue  # deferred changes are reviewed first; no notice is drafted for them
        body = notice.render(account=x, as_of=as_of)
        subject, _, text = body.partition("\n")
        notices.append(
            {
                "account_id": x["account_id"],
                "name": x["name"],
                "wave_date": pd.Timestamp(x["date"]),
                "subject": subject.removeprefix("Subject:").strip(),
                "body": text.strip() + "\n",
            }
        )
    plan.notices = pd.DataFrame(
        notices, columns=["account_id", "name", "wave_date", "subject", "body"]
    )
    return plan
