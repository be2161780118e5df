"""What a CS team acts on: the account list and the weekly flags, with people and plays.

The scores table speaks in ids and model terms; a CSM needs names, the play with its
steps, owner, due date and success measure, and the reasons in words. `action_table`
builds one row per account with all of that; `weekly_flags` keeps each CSM's flagged
accounts (at risk or expansion-ready), highest expected ARR at stake first, capped at
a workable number per CSM. Both are plain DataFrames: `write_exports` writes them as
formula-safe CSV beside the scores, the report embeds them, `evaluation.digest`
renders one digest per CSM from the flags.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.csv_safe import write_csv

UNASSIGNED = "(unassigned)"
LIST_SEP = " | "
"""Separator of the items of a list cell (reasons contain "; " themselves)."""
SEGMENT_WORDS = {
    "accelerate": "Accelerate",
    "strategic_partnership": "Strategic partnership",
    "efficient_expansion": "Efficient expansion & advocacy",
    "prove_value": "Prove value in 90 days",
}
ACCOUNT_LIST_COLUMNS = (
    "account_id",
    "name",
    "csm",
    "csm_email",
    "flag",
    "churn_probability_pct",
    "expansion_probability_pct",
    "arr_usd",
    "expected_arr_loss_usd",
    "expected_arr_gain_usd",
    "priority_usd",
    "segment",
    "coverage_current",
    "coverage_recommended",
    "play",
    "play_why",
    "owner",
    "due_date",
    "success_measure",
)
FLAG_COLUMNS = (
    *ACCOUNT_LIST_COLUMNS,
    "steps",
    "risk_reasons",
    "strengths",
    "expansion_reasons",
    "data_gaps",
    "what_changed",
)


def csm_directory(scores: pd.DataFrame, csms: pd.DataFrame | None = None) -> pd.DataFrame:
    """``csm_id, csm_name, csm_email, capacity`` for every CSM of the scores.

    Names come from the optional ``csms`` table; a CSM missing from it (or no table)
    is shown by its id. Accounts without a CSM get no row here (the account list shows
    them as "(unassigned)").

    Parameters
    ----------
    scores : DataFrame
        Scored accounts with a ``csm_id`` column (null: no CSM).
    csms : DataFrame, optional
        Roster with ``csm_id`` and optional ``name``, ``email``, ``capacity``; the first
        row of a duplicated id wins.

    Returns
    -------
    DataFrame
        One row per distinct CSM of `scores`: ``csm_id`` (str), ``csm_name``,
        ``csm_email`` and ``capacity`` (None when not given).
    """
    ids = pd.Series(scores["csm_id"].dropna().astype(str).unique(), dtype=object)
    out = pd.DataFrame({"csm_id": ids})
    if csms is not None and len(csms):
        info = csms.drop_duplicates("csm_id").astype({"csm_id": str})
        cols = [c for c in ("csm_id", "name", "email", "capacity") if c in info.columns]
        out = out.merge(info[cols], on="csm_id", how="left")
    for col in ("name", "email", "capacity"):
        if col not in out.columns:
            out[col] = None
    out["csm_name"] = out["name"].where(out["name"].notna() & (out["name"] != ""), out["csm_id"])
    return out.rename(columns={"email": "csm_email"})[
        ["csm_id", "csm_name", "csm_email", "capacity"]
    ]


def _reasons_text(reasons_json: pd.Series) -> pd.DataFrame:
    """risk_reasons, strengths, expansion_reasons: "; "-joined sentences per account."""
    risk, good, grow = [], [], []
    for text in reasons_json.to_numpy(dtype=object):  # one parse per account
        items = json.loads(text) if isinstance(text, str) and text else []
        risk.append(
            LIST_SEP.join(
                r["sentence"]
                for r in items
                if r.get("target") == "churn"
                and (r.get("contribution") or 0) > 0
                and r.get("state") != "good"
            )
        )
        good.append(
            LIST_SEP.join(
                r["sentence"]
                for r in items
                if r.get("state") == "good"
                and (
                    (r.get("target") == "churn" and (r.get("contribution") or 0) < 0)
                    or (r.get("target") == "expand" and (r.get("contribution") or 0) > 0)
                )
            )
        )
        grow.append(
            LIST_SEP.join(
                r["sentence"]
                for r in items
                if r.get("target") == "expand" and (r.get("contribution") or 0) > 0
            )
        )
    good = [LIST_SEP.join(dict.fromkeys(g.split(LIST_SEP))) if g else g for g in good]
    return pd.DataFrame({"risk_reasons": risk, "strengths": good, "expansion_reasons": grow})


def action_table(
    scores: pd.DataFrame,
    *,
    csms: pd.DataFrame | None = None,
    playbook_details: Mapping[str, Any] | None = None,
    changes: pd.DataFrame | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """One row per account: who owns it, its flag, play (steps, owner, due, success), reasons.

    Parameters
    ----------
    scores : scores table of one run (``models.scoring.score_snapshot``).
    csms : optional ``csms`` table (``csm_id, name, email, capacity``).
    playbook_details : play name -> ``models.playbooks.PlaybookDetail`` (or a mapping with
        ``steps, owner, due_days, success``).
    changes : ``models.reason_context.changes_since`` output (what moved since last run).
    as_of : scoring date (default: the scores' ``as_of``); due dates count from it.

    Returns
    -------
    DataFrame with `FLAG_COLUMNS` (money in USD, probabilities in percent) plus
    ``csm_id``, ``at_risk``, ``expansion_ready`` and ``priority`` for sorting.
    """
    s = scores.reset_index(drop=True)
    if as_of is None:
        as_of = pd.Timestamp(s["as_of"].iloc[0]).date() if len(s) else date.today()
    people = csm_directory(s, csms).set_index("csm_id")
    csm_id = s["csm_id"].astype(object).where(s["csm_id"].notna(), None)
    csm_name = csm_id.map(people["csm_name"]).fillna(UNASSIGNED)
    csm_email = csm_id.map(people["csm_email"])
    at_risk = s["at_risk"].astype(bool).to_numpy()
    ready = s["expansion_ready"].astype(bool).to_numpy()
    flag = np.select(
        [at_risk & ready, at_risk, ready],
        ["At risk; expansion-ready", "At risk", "Expansion-ready"],
        default="",
    )
    details = {
        k: (v.model_dump() if hasattr(v, "model_dump") else dict(v))
        for k, v in (playbook_details or {}).items()
    }
    play = s["playbook"].astype(object)
    owner = play.map(lambda p: details.get(p, {}).get("owner"))
    due_days = play.map(lambda p: details.get(p, {}).get("due_days"))
    due = [
        (as_of + timedelta(days=int(d))).isoformat() if f and pd.notna(d) else ""
        for f, d in zip(flag, due_days, strict=True)
    ]
    out = pd.DataFrame(
        {
            "account_id": s["account_id"].astype(str),
            "name": s["name"].astype(object),
            "csm_id": csm_id,
            "csm": csm_name,
            "csm_email": csm_email,
            "flag": flag,
            "churn_probability_pct": (s["p_churn"].astype(float) * 100).round(1),
            "expansion_probability_pct": (s["p_expand"].astype(float) * 100).round(1),
            "arr_usd": s["arr"].astype(float).round(0),
            "expected_arr_loss_usd": s["arr_at_risk"].astype(float).round(0),
            "expected_arr_gain_usd": s["arr_to_gain"].astype(float).round(0),
            "priority_usd": s["priority"].astype(float).round(0),
            "segment": s["segment"].map(SEGMENT_WORDS).fillna(s["segment"]),
            "coverage_current": s.get("coverage_current"),
            "coverage_recommended": s.get("coverage_recommended"),
            "play": play,
            "play_why": s.get("playbook_reason"),
            "owner": owner,
            "due_date": due,
            "success_measure": play.map(lambda p: details.get(p, {}).get("success")),
            "steps": play.map(
                lambda p: " / ".join(
                    f"{i}. {x}" for i, x in enumerate(details.get(p, {}).get("steps", []), 1)
                )
            ),
            "data_gaps": s["data_gaps"] if "data_gaps" in s.columns else "",
            "at_risk": at_risk,
            "expansion_ready": ready,
            "priority": s["priority"].astype(float),
        }
    )
    text = _reasons_text(s["reasons_json"] if "reasons_json" in s.columns else pd.Series([""]))
    out = pd.concat([out, text.iloc[: len(out)].reset_index(drop=True)], axis=1)
    moved = pd.Series("", index=out.index, dtype=object)
    if changes is not None and len(changes):
        words = {"churn": "churn", "expand": "expansion"}
        lines = changes.assign(
            line=lambda c: c.apply(
                lambda r: (
                    f"{words.get(r.target, r.target)} {r.p_before * 100:.0f}% -> "
                    f"{r.p_now * 100:.0f}%: {r.drivers}"
                ),
                axis=1,
            )
        )
        joined = lines.groupby("account_id")["line"].agg(LIST_SEP.join)
        moved = out["account_id"].map(joined).fillna("")
    out["what_changed"] = moved
    return out


def weekly_flags(actions: pd.DataFrame, *, max_per_csm: int = 20) -> pd.DataFrame:
    """Each CSM's flagged accounts, highest priority first, at most `max_per_csm` each.

    Parameters
    ----------
    actions : DataFrame
        The account list (:func:`action_table`) with ``flag``, ``csm``, ``priority`` and
        ``account_id``.
    max_per_csm : int, default 20
        Most accounts kept per CSM.

    Returns
    -------
    DataFrame
        The flagged rows, ordered by CSM, then priority descending, then account id.
    """
    flagged = actions[actions["flag"] != ""]
    ranked = flagged.sort_values(
        ["csm", "priority", "account_id"], ascending=[True, False, True], kind="stable"
    )
    return ranked.groupby("csm", sort=True, dropna=False).head(max_per_csm).reset_index(drop=True)


def write_exports(actions: pd.DataFrame, flags: pd.DataFrame, directory: str | Path) -> dict:
    """``account_list.csv`` and ``weekly_flags.csv`` in `directory` (formula-safe CSV).

    Parameters
    ----------
    actions : DataFrame
        The account list (:func:`action_table`), with every column of `ACCOUNT_LIST_COLUMNS`.
    flags : DataFrame
        The weekly flags (:func:`weekly_flags`), with every column of `FLAG_COLUMNS`.
    directory : str or Path
        Output directory, created if missing; the two files are replaced if they exist.

    Returns
    -------
    dict of str to Path
        ``{"account_list": path, "weekly_flags": path}``.
    """
    directory = Path(directory)
    return {
        "account_list": write_csv(
            actions[list(ACCOUNT_LIST_COLUMNS)], directory / "account_list.csv"
        ),
        "weekly_flags": write_csv(flags[list(FLAG_COLUMNS)], directory / "weekly_flags.csv"),
    }
