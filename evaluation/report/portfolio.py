"""The portfolio page's sections, as plain records for the template.

KPIs, the segment and CSM tables, the TAM x maturity grid, coverage misalignment, top
movers, NRR, drift in words and the CSV downloads: each is computed from the prepared
frames of :mod:`evaluation.report.prepare` and handed to ``report.html.j2``, which formats
them. Stage, segment and coverage names come from :mod:`features.names`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evaluation.report.charts import bridge_chart, trend_chart
from evaluation.report.format import account_href, short_label
from evaluation.report.prepare import ReportInputs, ReportMeta
from features.names import (
    COVERAGE_LEVELS,
    COVERAGE_RANK,
    HIGH_TAM_SEGMENTS,
    SEGMENT_LABELS,
    SEGMENTS,
    STAGES,
    TARGETS,
)


def portfolio_sections(
    scores: pd.DataFrame,
    nrr: pd.DataFrame,
    prev_as_of: pd.Timestamp | None,
    meta: ReportMeta,
    inputs: ReportInputs,
) -> dict[str, Any]:
    """Every section of the portfolio page, keyed as the template reads them.

    Parameters
    ----------
    scores : DataFrame
        Prepared scores with actions joined and movers added.
    nrr : DataFrame
        Prepared NRR periods (may be empty).
    prev_as_of : Timestamp or None
        Date of the previous run (None: no movers).
    meta : ReportMeta
        The run's metadata (model versions).
    inputs : ReportInputs
        For the options, feature labels, drift, actions and flags.

    Returns
    -------
    dict
        ``model_versions``, ``kpis``, ``segments``, ``grid``, ``csms``, ``at_risk``,
        ``at_risk_total``, ``drift_words``, ``drift_rows``, ``exports``, ``coverage``,
        ``movers`` and ``nrr``.
    """
    opts = inputs.options
    labels = dict(inputs.feature_labels or {})
    at_risk_rows = _top(scores[scores["at_risk"]], "arr_at_risk", opts.top_n)
    return {
        "model_versions": _model_versions(meta, scores),
        "kpis": _kpis(scores, nrr),
        "segments": _segment_table(scores),
        "grid": _tam_maturity_grid(scores),
        "csms": _csm_table(scores),
        "at_risk": _rows(at_risk_rows),
        "at_risk_total": float(at_risk_rows["arr_at_risk"].sum()),
        "drift_words": _drift_words(inputs.drift, labels),
        "drift_rows": _drift_rows(inputs.drift, labels),
        "exports": _exports(inputs.actions, inputs.flags),
        "coverage": _coverage_section(scores, opts.list_limit),
        "movers": _movers_section(scores, prev_as_of, opts.top_n),
        "nrr": _nrr_section(nrr),
    }


def _drift_words(drift: pd.DataFrame | None, labels: Mapping[str, str]) -> list[str]:
    """Drift alerts in words: which accounts deserve a second look, no PSI."""
    from evaluation.drift import drift_sentences

    return [] if drift is None or drift.empty else drift_sentences(drift, labels)


def _drift_rows(drift: pd.DataFrame | None, labels: Mapping[str, str]) -> list[dict[str, Any]]:
    """The flagged (else the top 10) drift rows for the Technical section."""
    if drift is None or drift.empty:
        return []
    shown = drift[drift["status"] != "ok"]
    if shown.empty:
        shown = drift.head(10)
    rows = _rows(shown[["column", "psi", "status", "mean_reference", "mean_current"]])
    for r in rows:
        r["label"] = short_label(labels.get(r["column"], r["column"]))
    return rows


def _exports(actions: pd.DataFrame | None, flags: pd.DataFrame | None) -> list[dict[str, str]]:
    """Download links (data: URLs, no network) of the account-list and weekly-flags CSV."""
    from evaluation.actions import ACCOUNT_LIST_COLUMNS, FLAG_COLUMNS
    from evaluation.csv_safe import escape_frame

    out = []
    for key, label, frame, cols in (
        ("accounts", "Account list (CSV)", actions, ACCOUNT_LIST_COLUMNS),
        ("flags", "Weekly flags (CSV)", flags, FLAG_COLUMNS),
    ):
        if frame is None:
            continue
        text = escape_frame(frame[[c for c in cols if c in frame.columns]]).to_csv(index=False)
        b64 = base64.b64encode(("\ufeff" + text).encode("utf-8")).decode("ascii")
        out.append(
            {
                "key": key,
                "label": label,
                "filename": "account_list.csv" if key == "accounts" else "weekly_flags.csv",
                "href": "data:text/csv;charset=utf-8;base64," + b64,
            }
        )
    return out


def _model_versions(meta: ReportMeta, scores: pd.DataFrame) -> dict[str, str]:
    if meta.model_versions:
        return {str(k): str(v) for k, v in meta.model_versions.items()}
    out = {}
    for target in TARGETS:
        vals = scores[f"model_version_{target}"].dropna().unique()
        if len(vals):
            out[target] = ", ".join(sorted(str(v) for v in vals))
    return out


def _kpis(scores: pd.DataFrame, nrr: pd.DataFrame) -> dict[str, Any]:
    at_risk = scores["at_risk"]
    ready = scores["expansion_ready"]
    change = scores["coverage_change"]
    k: dict[str, Any] = {
        "accounts": len(scores),
        "arr": float(scores["arr"].sum()),
        "at_risk_n": int(at_risk.sum()),
        "at_risk_arr": float(scores.loc[at_risk, "arr"].sum()),
        "expected_at_risk": float(scores["arr_at_risk"].sum()),
        "expected_at_risk_flagged": float(scores.loc[at_risk, "arr_at_risk"].sum()),
        "ready_n": int(ready.sum()),
        "to_gain": float(scores["arr_to_gain"].sum()),
        "to_gain_ready": float(scores.loc[ready, "arr_to_gain"].sum()),
        "upgrade_n": int((change == "upgrade").sum()),
        "downgrade_n": int((change == "downgrade").sum()),
        "nrr": None,
        "grr": None,
        "nrr_delta": None,
        "nrr_period": None,
    }
    if len(nrr):
        last = nrr.iloc[-1]
        k["nrr"], k["grr"], k["nrr_period"] = float(last["nrr"]), float(last["grr"]), last["period"]
        if len(nrr) > 1:
            k["nrr_delta"] = float(last["nrr"] - nrr["nrr"].iloc[-2])
    return k


def _segment_table(scores: pd.DataFrame) -> list[dict[str, Any]]:
    g = _group_summary(scores, "segment")
    order = {s: i for i, s in enumerate(SEGMENTS)}
    g["order"] = g["segment"].map(order).fillna(len(order))
    g = g.sort_values(["order", "segment"])
    g["label"] = g["segment"].map(SEGMENT_LABELS).fillna(g["segment"])
    return _rows(g)


def _csm_table(scores: pd.DataFrame) -> list[dict[str, Any]]:
    s = scores.assign(csm_label=scores["csm_label"].fillna("(unassigned)"))
    g = _group_summary(s, "csm_label")
    return _rows(g.sort_values(["expected_at_risk", "arr"], ascending=False))


def _group_summary(scores: pd.DataFrame, key: str) -> pd.DataFrame:
    s = scores.assign(
        at_risk_arr=scores["arr"].where(scores["at_risk"], 0.0),
        upgrade=scores["coverage_change"] == "upgrade",
        downgrade=scores["coverage_change"] == "downgrade",
    )
    s[key] = s[key].fillna("(unknown)")
    return (
        s.groupby(key, dropna=False, observed=True)
        .agg(
            accounts=("account_id", "size"),
            arr=("arr", "sum"),
            at_risk_n=("at_risk", "sum"),
            at_risk_arr=("at_risk_arr", "sum"),
            expected_at_risk=("arr_at_risk", "sum"),
            ready_n=("expansion_ready", "sum"),
            to_gain=("arr_to_gain", "sum"),
            upgrade_n=("upgrade", "sum"),
            downgrade_n=("downgrade", "sum"),
        )
        .reset_index()
    )


def _stage_order(stages: pd.Series) -> list[str]:
    known = {s.lower(): i for i, s in enumerate(STAGES)}
    uniq = sorted(stages.dropna().unique(), key=lambda s: (known.get(str(s).lower(), 99), str(s)))
    return [str(s) for s in uniq]


def _tam_maturity_grid(scores: pd.DataFrame) -> dict[str, Any]:
    """Counts and ARR per (TAM high/low from the segment) x (maturity stage)."""
    s = scores.assign(
        tam=np.where(scores["segment"].isin(list(HIGH_TAM_SEGMENTS)).fillna(False), "high", "low"),
        stage=scores["maturity_stage"].fillna("Unknown"),
        at_risk_arr=scores["arr"].where(scores["at_risk"], 0.0),
    )
    g = (
        s.groupby(["tam", "stage", "segment"], dropna=False, observed=True)
        .agg(n=("account_id", "size"), arr=("arr", "sum"), at_risk_n=("at_risk", "sum"))
        .reset_index()
        .sort_values("n", ascending=False)
    )
    cells = (
        g.groupby(["tam", "stage"], observed=True)
        .agg(
            n=("n", "sum"),
            arr=("arr", "sum"),
            at_risk_n=("at_risk_n", "sum"),
            segment=("segment", "first"),
        )
        .reset_index()
    )
    stages = _stage_order(s["stage"])
    lookup = {(r["tam"], r["stage"]): r for r in _rows(cells)}
    total_arr = float(scores["arr"].sum()) or 1.0
    rows = []
    for tam in ("high", "low"):
        row_cells = []
        for stage in stages:
            c = lookup.get((tam, stage), {"n": 0, "arr": 0.0, "at_risk_n": 0, "segment": None})
            c = dict(c)
            c["share"] = float(c["arr"]) / total_arr
            c["segment_label"] = SEGMENT_LABELS.get(c["segment"] or "", c["segment"] or "")
            row_cells.append(c)
        rows.append({"tam": tam, "cells": row_cells})
    return {
        "stages": stages,
        "rows": rows,
        "tam_unknown": int(scores["tam_usd"].isna().sum()),
    }


def _coverage_section(scores: pd.DataFrame, limit: int) -> dict[str, Any]:
    levels = list(COVERAGE_LEVELS)
    cur = scores["coverage_current"].where(scores["coverage_current"].isin(levels), "unknown")
    rec = scores["coverage_recommended"].where(
        scores["coverage_recommended"].isin(levels), "unknown"
    )
    ct = pd.crosstab(cur.fillna("unknown"), rec.fillna("unknown"))
    row_keys = [k for k in [*levels, "unknown"] if k in ct.index or k in levels]
    col_keys = [k for k in [*levels, "unknown"] if k in ct.columns or k in levels]
    ct = ct.reindex(index=row_keys, columns=col_keys, fill_value=0)
    up = scores[scores["coverage_change"] == "upgrade"]
    down = scores[scores["coverage_change"] == "downgrade"]

    def cls(r: str, c: str) -> str:
        if r not in COVERAGE_RANK or c not in COVERAGE_RANK:
            return ""
        diff = COVERAGE_RANK[c] - COVERAGE_RANK[r]
        return "diag" if diff == 0 else ("up" if diff > 0 else "down")

    return {
        "rows": row_keys,
        "cols": col_keys,
        "matrix": {
            r: [{"v": int(ct.at[r, c]), "cls": cls(r, c)} for c in col_keys] for r in row_keys
        },
        "upgrade_n": len(up),
        "downgrade_n": len(down),
        "upgrade_arr": float(up["arr"].sum()),
        "downgrade_arr": float(down["arr"].sum()),
        "upgrades": _rows(_top(up, "priority", limit)),
        "downgrades": _rows(_top(down, "priority", limit, ascending=True)),
    }


def _movers_section(
    scores: pd.DataFrame, prev_as_of: pd.Timestamp | None, n: int
) -> dict[str, Any]:
    if prev_as_of is None:
        return {"available": False}
    known = scores[scores["d_churn"].notna() | scores["d_expand"].notna()]
    churn_up = _top(known[known["d_churn"] > 0], "d_churn", n)
    churn_down = _top(known[known["d_churn"] < 0], "d_churn", n, ascending=True)
    expand_up = _top(known[known["d_expand"] > 0], "d_expand", n)
    return {
        "available": True,
        "compared": len(known),
        "new": int(len(scores) - len(known)),
        "churn_up": _rows(churn_up),
        "churn_down": _rows(churn_down),
        "expand_up": _rows(expand_up),
    }


def _top(frame: pd.DataFrame, col: str, n: int, ascending: bool = False) -> pd.DataFrame:
    return frame.sort_values([col, "arr"], ascending=[ascending, False], na_position="last").head(n)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Records for the template, with NA as None and an ``href`` when there is an account."""
    recs = frame.astype(object).where(frame.notna(), None).to_dict("records")
    if "account_id" in frame.columns:
        hrefs = [account_href(a) for a in frame["account_id"]]
        for rec, href in zip(recs, hrefs, strict=True):
            rec["href"] = href
    return recs


def _nrr_section(nrr: pd.DataFrame) -> dict[str, Any]:
    if len(nrr) == 0:
        return {"available": False}
    return {
        "available": True,
        "bridge": bridge_chart(nrr.iloc[-1]),
        "trend": trend_chart(nrr),
        "periods": _rows(nrr.iloc[::-1]),
        "has_new": bool(nrr["new_arr"].notna().any()),
    }
