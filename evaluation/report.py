"""Self-contained HTML report for customer-success leaders, one file per scoring run.

The portfolio page (KPIs, NRR decomposition, TAM x maturity grid, at-risk ARR, coverage
misalignment, top movers) is rendered here as HTML tables and inline SVG. The account list
and the per-account pages are drawn in the browser from compact, columnar JSON embedded in
the page, so a book of a few thousand accounts stays a small file. Nothing is fetched: all
CSS, JS and charts are inline and a Content-Security-Policy forbids any network access.

Escaping: Jinja autoescapes everything rendered here; the embedded JSON has ``<``, ``>``
and ``&`` written as ``\\u003c`` etc. so no ``</script>`` or ``<!--`` can end the data
block; the browser code sets data with ``textContent`` only.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from evaluation.report_territories import add_territories
from features.storage import atomic_write

ASSETS_DIR = Path(__file__).with_name("report_assets")

SEGMENT_LABELS: dict[str, str] = {
    "accelerate": "Accelerate",
    "strategic_partnership": "Strategic partnership",
    "efficient_expansion": "Efficient expansion & advocacy",
    "prove_value": "Prove value in 90 days",
}
SEGMENT_SHORT: dict[str, str] = {
    "accelerate": "Accelerate",
    "strategic_partnership": "Strategic partnership",
    "efficient_expansion": "Efficient expansion",
    "prove_value": "Prove value",
}
HIGH_TAM_SEGMENTS = frozenset({"accelerate", "strategic_partnership"})
COVERAGE_LABELS: dict[str, str] = {
    "digital": "Digital",
    "standard": "Standard",
    "high_touch": "High touch",
}
COVERAGE_RANK: dict[str, int] = {"digital": 0, "standard": 1, "high_touch": 2}
MATURITY_ORDER: tuple[str, ...] = ("Experimenter", "Builder", "Transformer")
BANDS: tuple[str, ...] = ("low", "medium", "high")

REQUIRED_SCORE_COLUMNS: tuple[str, ...] = (
    "account_id",
    "name",
    "as_of",
    "p_churn",
    "p_expand",
    "arr",
    "segment",
)
"""Columns the report cannot do without."""

OPTIONAL_SCORE_COLUMNS: dict[str, str] = {
    "csm_id": "str",
    "model_version_churn": "str",
    "model_version_expand": "str",
    "churn_band": "str",
    "expand_band": "str",
    "at_risk": "bool",
    "expansion_ready": "bool",
    "maturity_stage": "str",
    "tam_usd": "float",
    "whitespace": "float",
    "coverage_current": "str",
    "coverage_recommended": "str",
    "priority": "float",
    "arr_at_risk": "float",
    "arr_to_gain": "float",
    "playbook": "str",
    "playbook_reason": "str",
    "reasons_json": "str",
    "csm_name": "str",
    "data_gaps": "str",
}
"""Columns of the scores table the report shows when present (missing ones show as unknown)."""

HISTORY_COLUMNS: tuple[str, ...] = ("account_id", "as_of", "p_churn", "p_expand")


@dataclass(frozen=True)
class NRRPeriod:
    """One row of the NRR frame the report expects (columns = these field names).

    Money is USD ARR; ``grr`` and ``nrr`` are ratios (1.05 means 105%). ``period`` is an
    optional display label (e.g. ``"2025-Q1"``); ``new_arr`` is optional (ARR from accounts
    that were not customers at the period start, outside NRR). Rows are ordered by
    ``period_start`` in the report.
    """

    period_start: date
    start_arr: float
    expansion_arr: float
    contraction_arr: float
    churned_arr: float
    grr: float
    nrr: float
    period: str | None = None
    new_arr: float | None = None


NRR_OPTIONAL_COLUMNS: tuple[str, ...] = ("period", "new_arr")
NRR_REQUIRED_COLUMNS: tuple[str, ...] = tuple(
    f.name for f in fields(NRRPeriod) if f.name not in NRR_OPTIONAL_COLUMNS
)


@dataclass(frozen=True)
class ReportMeta:
    """What the run says about itself, shown in the report header.

    Parameters
    ----------
    run_id : str
        MLflow (or other) run id of the scoring run.
    as_of : date, optional
        Scoring date; defaults to the ``as_of`` of the scores.
    model_versions : mapping of str to str
        E.g. ``{"churn": "7", "expand": "5"}``; when empty the versions in the scores are shown.
    thresholds : mapping of str to float
        Alert thresholds in force, e.g. ``{"churn": 0.32, "expand": 0.41}``.
    drift_flags : sequence of str
        One plain-language line per drift flag raised for this run (empty: none).
    notes : sequence of str
        Other run notes worth a CS leader's attention (e.g. missing TAM enrichment).
    horizon_days : int
        Prediction horizon, used in sentences ("within the next 60 days").
    generated_at : datetime, optional
        When the report was made; passed in (no clock is read here).
    title : str
        Page title.
    """

    run_id: str = ""
    as_of: date | None = None
    model_versions: Mapping[str, str] = field(default_factory=dict)
    thresholds: Mapping[str, float] = field(default_factory=dict)
    drift_flags: Sequence[str] = ()
    notes: Sequence[str] = ()
    horizon_days: int = 60
    generated_at: datetime | None = None
    title: str = "Customer success report"


@dataclass(frozen=True)
class ReportOptions:
    """Sizes and limits of the report.

    Parameters
    ----------
    top_n : int
        Rows in the portfolio's top lists (movers, at-risk accounts).
    list_limit : int
        Rows in each coverage-misalignment list (the account list has them all).
    page_size : int
        Rows the account list draws before "Show more".
    history_runs : int
        Earlier runs kept per account for the probability history chart.
    compress_over_bytes : int
        Embedded JSON larger than this is stored gzip+base64 and inflated by the browser's
        built-in ``DecompressionStream``; 0 always compresses, a negative value never does.
    """

    top_n: int = 10
    list_limit: int = 10
    page_size: int = 100
    history_runs: int = 26
    compress_over_bytes: int = 1_000_000


@dataclass
class ReportInputs:
    """Everything one report is made from.

    Parameters
    ----------
    scores : DataFrame
        One scoring run: the scores table (one row per account, a single ``as_of``).
    history : DataFrame, optional
        Earlier scores with columns ``account_id, as_of, p_churn, p_expand``; rows on or
        after the scores' ``as_of`` are ignored. May be empty or None.
    nrr : DataFrame, optional
        Periods with the columns of :class:`NRRPeriod`. May be empty or None.
    meta : ReportMeta or mapping
        Run id, models, thresholds, drift flags (a mapping is passed to ``ReportMeta``).
    feature_labels : mapping of str to str, optional
        Short display names of features for the waterfall charts (default: the feature
        name with underscores as spaces).
    options : ReportOptions
        Sizes and limits.
    actions : DataFrame, optional
        ``evaluation.actions.action_table`` of the run: CSM names, play steps, owner, due
        date, success measure and what changed, shown on account pages and offered as
        the account-list CSV.
    flags : DataFrame, optional
        ``evaluation.actions.weekly_flags`` of the run, offered as the weekly-flags CSV.
    drift : DataFrame, optional
        ``evaluation.drift.drift_report`` of the run: in words on the portfolio, with PSI
        in the Technical section.
    """

    scores: pd.DataFrame
    history: pd.DataFrame | None = None
    nrr: pd.DataFrame | None = None
    meta: ReportMeta | Mapping[str, Any] = field(default_factory=ReportMeta)
    feature_labels: Mapping[str, str] | None = None
    options: ReportOptions = field(default_factory=ReportOptions)
    territories: Any = None  # a rebalancing (evaluation.report_territories); None: no section
    actions: pd.DataFrame | None = None
    flags: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None


# --------------------------------------------------------------------------- public API


def render_report(inputs: ReportInputs) -> str:
    """Render the report of one scoring run as a single self-contained HTML page.

    Parameters
    ----------
    inputs : ReportInputs
        Scores of the run, earlier scores, NRR periods and run metadata.

    Returns
    -------
    str
        The HTML document (UTF-8 text, no external resources).

    Raises
    ------
    ValueError
        If a required column is missing, the scores hold several ``as_of`` dates or
        duplicate accounts, or ``reasons_json`` is not valid JSON (the message names the
        table, column and row count).

    Examples
    --------
    >>> html = render_report(ReportInputs(scores=scores_df))  # doctest: +SKIP
    >>> write_report(ReportInputs(scores=scores_df), "reports/2025-06-30.html")  # doctest: +SKIP
    """
    meta = inputs.meta if isinstance(inputs.meta, ReportMeta) else ReportMeta(**inputs.meta)
    opts = inputs.options
    scores = _join_actions(_prepare_scores(inputs.scores), inputs.actions)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]) if len(scores) else _meta_as_of(meta)
    history = _prepare_history(inputs.history, scores, as_of, opts.history_runs)
    nrr = _prepare_nrr(inputs.nrr)
    scores, prev_as_of = _add_movers(scores, history)

    payload = _payload(scores, history, as_of, prev_as_of, meta, inputs.feature_labels, opts)
    territories_html = add_territories(inputs.territories, payload)
    labels = dict(inputs.feature_labels or {})
    at_risk_rows = _top(scores[scores["at_risk"]], "arr_at_risk", opts.top_n)
    data_text, encoding = _embed_json(payload, opts.compress_over_bytes)
    script = (ASSETS_DIR / "report.js").read_text(encoding="utf-8")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()

    context = {
        "meta": meta,
        "as_of": as_of.strftime("%Y-%m-%d") if not pd.isna(as_of) else "unknown",
        "prev_as_of": prev_as_of.strftime("%Y-%m-%d") if prev_as_of is not None else None,
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
        "territories_html": territories_html,
        "n_accounts": len(scores),
        "css": (ASSETS_DIR / "report.css").read_text(encoding="utf-8"),
        "script": script,
        "script_hash": script_hash,
        "data_text": data_text,
        "data_encoding": encoding,
        "segment_labels": SEGMENT_LABELS,
        "coverage_labels": COVERAGE_LABELS,
    }
    return _environment().get_template("report.html.j2").render(**context)


def write_report(inputs: ReportInputs, path: str | Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8), creating parent folders.

    Parameters
    ----------
    inputs : ReportInputs
        As for :func:`render_report`.
    path : str or Path
        Target file, conventionally ``<scores dir>/report_<as_of>.html``.

    Returns
    -------
    Path
        The written file. It is written to a temporary sibling first and renamed, so a
        failed render never leaves a half-written report.
    """
    path = Path(path)
    html = render_report(inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, html, point="report.write")


# --------------------------------------------------------------------------- input checks


def _meta_as_of(meta: ReportMeta) -> pd.Timestamp:
    return pd.Timestamp(meta.as_of) if meta.as_of is not None else pd.NaT


def _missing(frame: pd.DataFrame, required: Sequence[str], table: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{table}: missing column(s) {missing}; has {list(frame.columns)} ({len(frame)} rows)"
        )


def _prepare_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check the scores of one run and give every optional column a canonical dtype."""
    _missing(scores, REQUIRED_SCORE_COLUMNS, "scores")
    out = scores.copy()
    for col, kind in OPTIONAL_SCORE_COLUMNS.items():
        if col not in out.columns:
            out[col] = False if kind == "bool" else (np.nan if kind == "float" else None)
    for col in (
        "p_churn",
        "p_expand",
        "arr",
        *[c for c, k in OPTIONAL_SCORE_COLUMNS.items() if k == "float"],
    ):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    for col in ("at_risk", "expansion_ready"):
        out[col] = out[col].fillna(False).astype(bool)
    str_cols = ["account_id", "name", "segment"] + [
        c for c, k in OPTIONAL_SCORE_COLUMNS.items() if k == "str"
    ]
    for col in str_cols:
        out[col] = out[col].astype("string")
    out["as_of"] = pd.to_datetime(out["as_of"]).dt.normalize()

    dates = out["as_of"].dropna().unique()
    if len(dates) > 1:
        shown = ", ".join(pd.Timestamp(d).strftime("%Y-%m-%d") for d in sorted(dates)[:5])
        raise ValueError(
            f"scores.as_of: {len(dates)} dates ({shown}); pass one run's scores and put "
            "earlier runs in `history`"
        )
    dup = out["account_id"].duplicated(keep=False)
    if dup.any():
        raise ValueError(
            f"scores.account_id: {int(dup.sum())} rows share an account_id "
            f"(e.g. {out.loc[dup, 'account_id'].iloc[0]!r}); expected one row per account"
        )
    if out["account_id"].isna().any():
        raise ValueError(f"scores.account_id: {int(out['account_id'].isna().sum())} null ids")
    # Fill what can be derived so the report never shows an avoidable blank.
    ws = out["tam_usd"] - out["arr"]
    out["whitespace"] = out["whitespace"].fillna(ws.clip(lower=0))
    rank = pd.Series(COVERAGE_RANK, dtype="float64")
    diff = (
        out["coverage_recommended"].map(rank).astype("float64")
        - out["coverage_current"].map(rank).astype("float64")
    ).to_numpy(dtype="float64", na_value=np.nan)
    out["coverage_change"] = np.select(
        [diff > 0, diff < 0, diff == 0], ["upgrade", "downgrade", "aligned"], default="unknown"
    )
    out["name"] = out["name"].fillna(out["account_id"])
    # CSMs by name where the csms table gave one, else by id
    out["csm_label"] = out["csm_name"].fillna(out["csm_id"])
    return out.reset_index(drop=True)


ACTION_COLUMNS: tuple[str, ...] = (
    "owner",
    "due_date",
    "steps",
    "success_measure",
    "what_changed",
    "csm_email",
)


def _join_actions(scores: pd.DataFrame, actions: pd.DataFrame | None) -> pd.DataFrame:
    """Scores with the action table's people and play columns (by account_id)."""
    out = scores.copy()
    if actions is not None and len(actions):
        a = actions.drop_duplicates("account_id").set_index("account_id")
        ids = out["account_id"].astype(str)
        for col in ACTION_COLUMNS:
            if col in a.columns:
                out[col] = ids.map(a[col]).astype("string")
        if "csm" in a.columns:
            named = ids.map(a["csm"]).astype("string")
            out["csm_label"] = named.where(out["csm_id"].notna(), pd.NA)
        if "data_gaps" in a.columns and out["data_gaps"].isna().all():
            out["data_gaps"] = ids.map(a["data_gaps"]).astype("string")
    for col in ACTION_COLUMNS:
        if col not in out.columns:
            out[col] = pd.Series(pd.NA, index=out.index, dtype="string")
    out[list(ACTION_COLUMNS)] = out[list(ACTION_COLUMNS)].replace("", pd.NA)
    out["data_gaps"] = out["data_gaps"].replace("", pd.NA)
    return out


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
        r["label"] = _short_label(labels.get(r["column"], r["column"]))
    return rows


def _short_label(text: str) -> str:
    return str(text).split(":")[0].rstrip(".")


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


def _prepare_history(
    history: pd.DataFrame | None, scores: pd.DataFrame, as_of: pd.Timestamp, runs: int
) -> pd.DataFrame:
    """Earlier scores of the accounts in this run: the last ``runs`` dates before ``as_of``."""
    empty = pd.DataFrame(
        {
            "account_id": pd.Series([], dtype="string"),
            "as_of": pd.Series([], dtype="datetime64[us]"),
            "p_churn": pd.Series([], dtype="float64"),
            "p_expand": pd.Series([], dtype="float64"),
        }
    )
    if history is None or len(history) == 0 or pd.isna(as_of):
        return empty
    _missing(history, HISTORY_COLUMNS, "history")
    h = history.loc[:, list(HISTORY_COLUMNS)].copy()
    h["account_id"] = h["account_id"].astype("string")
    h["as_of"] = pd.to_datetime(h["as_of"]).dt.normalize()
    h["p_churn"] = pd.to_numeric(h["p_churn"], errors="coerce").astype("float64")
    h["p_expand"] = pd.to_numeric(h["p_expand"], errors="coerce").astype("float64")
    h = h[(h["as_of"] < as_of) & h["account_id"].isin(scores["account_id"])]
    keep = np.sort(h["as_of"].unique())[-runs:] if runs > 0 else []
    h = h[h["as_of"].isin(keep)]
    h = h.drop_duplicates(["account_id", "as_of"], keep="last")
    return h.sort_values(["account_id", "as_of"]).reset_index(drop=True)


def _prepare_nrr(nrr: pd.DataFrame | None) -> pd.DataFrame:
    """Check the NRR frame (columns of :class:`NRRPeriod`) and order it by period."""
    if nrr is None or len(nrr) == 0:
        return pd.DataFrame(columns=[f.name for f in fields(NRRPeriod)])
    _missing(nrr, NRR_REQUIRED_COLUMNS, "nrr")
    out = nrr.copy()
    out["period_start"] = pd.to_datetime(out["period_start"])
    for col in ("start_arr", "expansion_arr", "contraction_arr", "churned_arr", "grr", "nrr"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    if "new_arr" not in out.columns:
        out["new_arr"] = np.nan
    out["new_arr"] = pd.to_numeric(out["new_arr"], errors="coerce").astype("float64")
    if (out["nrr"] > 5).any():
        raise ValueError(
            f"nrr.nrr: {int((out['nrr'] > 5).sum())} rows above 5; nrr and grr are ratios "
            "(1.05 means 105%), not percentages"
        )
    out = out.sort_values("period_start").reset_index(drop=True)
    label = out["period_start"].dt.strftime("%Y-%m")
    out["period"] = out["period"].astype("string").fillna(label) if "period" in out else label
    return out


def _add_movers(
    scores: pd.DataFrame, history: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """Add the previous run's probabilities and the change since then (NaN when new)."""
    out = scores.copy()
    if len(history) == 0:
        out["prev_p_churn"] = np.nan
        out["prev_p_expand"] = np.nan
        prev_as_of = None
    else:
        prev_as_of = pd.Timestamp(history["as_of"].max())
        prev = history.loc[history["as_of"] == prev_as_of, ["account_id", "p_churn", "p_expand"]]
        prev = prev.set_index("account_id")
        out["prev_p_churn"] = out["account_id"].map(prev["p_churn"]).astype("float64")
        out["prev_p_expand"] = out["account_id"].map(prev["p_expand"]).astype("float64")
    out["d_churn"] = out["p_churn"] - out["prev_p_churn"]
    out["d_expand"] = out["p_expand"] - out["prev_p_expand"]
    return out, prev_as_of


# --------------------------------------------------------------------------- portfolio


def _model_versions(meta: ReportMeta, scores: pd.DataFrame) -> dict[str, str]:
    if meta.model_versions:
        return {str(k): str(v) for k, v in meta.model_versions.items()}
    out = {}
    for target in ("churn", "expand"):
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
    order = {s: i for i, s in enumerate(SEGMENT_LABELS)}
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
    known = {s.lower(): i for i, s in enumerate(MATURITY_ORDER)}
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
    levels = list(COVERAGE_RANK)
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
        hrefs = ["#account/" + quote(str(a), safe="") for a in frame["account_id"]]
        for rec, href in zip(recs, hrefs, strict=True):
            rec["href"] = href
    return recs


# --------------------------------------------------------------------------- NRR charts


def _nrr_section(nrr: pd.DataFrame) -> dict[str, Any]:
    if len(nrr) == 0:
        return {"available": False}
    return {
        "available": True,
        "bridge": _bridge_chart(nrr.iloc[-1]),
        "trend": _trend_chart(nrr),
        "periods": _rows(nrr.iloc[::-1]),
        "has_new": bool(nrr["new_arr"].notna().any()),
    }


def _bridge_chart(row: pd.Series, width: int = 560, height: int = 260) -> dict[str, Any]:
    """Waterfall from start ARR to retained (and ending) ARR of one period, in USD."""
    start = float(row["start_arr"])
    steps = [
        ("Start", start, "total"),
        ("Expansion", float(row["expansion_arr"]), "up"),
        ("Contraction", -abs(float(row["contraction_arr"])), "down"),
        ("Churned", -abs(float(row["churned_arr"])), "down"),
    ]
    retained = start + sum(v for _, v, k in steps[1:])
    steps.append(("Retained", retained, "total"))
    new = row.get("new_arr")
    if new is not None and not pd.isna(new) and float(new) != 0:
        steps.append(("New logos", float(new), "new"))
        steps.append(("End", retained + float(new), "total"))
    left, right, top, bottom = 64, 12, 24, 36
    plot_h = height - top - bottom
    level, lo, hi = 0.0, 0.0, 0.0
    spans = []
    for label, value, kind in steps:
        a, b = (0.0, value) if kind == "total" else (level, level + value)
        level = value if kind == "total" else level + value
        spans.append((label, value, kind, a, b))
        lo, hi = min(lo, a, b), max(hi, a, b)
    hi = hi * 1.08 or 1.0
    scale = plot_h / (hi - lo or 1.0)

    def y(v: float) -> float:
        return top + (hi - v) * scale

    slot = (width - left - right) / len(spans)
    bars = []
    for i, (label, value, kind, a, b) in enumerate(spans):
        x = left + i * slot + slot * 0.15
        bars.append(
            {
                "x": round(x, 1),
                "y": round(min(y(a), y(b)), 1),
                "w": round(slot * 0.7, 1),
                "h": round(max(abs(y(a) - y(b)), 1.0), 1),
                "cls": kind,
                "label": label,
                "value": _money(value, signed=kind in {"up", "down", "new"}),
                "label_x": round(x + slot * 0.35, 1),
                "value_y": round(min(y(a), y(b)) - 6, 1),
            }
        )
    ticks = [{"y": round(y(v), 1), "label": _money(v)} for v in _nice_ticks(lo, hi, 4)]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "ticks": ticks,
        "left": left,
        "right": width - right,
        "axis_y": round(height - bottom + 16, 1),
        "period": str(row["period"]),
        "nrr": float(row["nrr"]),
        "grr": float(row["grr"]),
    }


def _trend_chart(nrr: pd.DataFrame, width: int = 560, height: int = 260) -> dict[str, Any]:
    """NRR and GRR per period as two lines around a 100% reference."""
    left, right, top, bottom = 48, 34, 20, 36
    vals = np.concatenate([nrr["nrr"].to_numpy(float), nrr["grr"].to_numpy(float), [1.0]])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    pad = max((hi - lo) * 0.15, 0.02)
    lo, hi = lo - pad, hi + pad
    n = len(nrr)
    xs = np.linspace(left, width - right, n) if n > 1 else np.array([(left + width - right) / 2])

    def y(v: np.ndarray) -> np.ndarray:
        return top + (hi - v) / (hi - lo) * (height - top - bottom)

    def line(col: str) -> dict[str, Any]:
        ys = y(nrr[col].to_numpy(float))
        ok = np.isfinite(ys)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs[ok], ys[ok], strict=True))
        dots = [
            {"x": round(float(a), 1), "y": round(float(b), 1), "label": _pct(v), "period": p}
            for a, b, v, p in zip(xs[ok], ys[ok], nrr[col][ok], nrr["period"][ok], strict=True)
        ]
        return {"points": pts, "dots": dots}

    step = max(1, math.ceil(n / 8))
    xlabels = [
        {"x": round(float(xs[i]), 1), "label": str(nrr["period"].iloc[i])}
        for i in range(0, n, step)
    ]
    return {
        "width": width,
        "height": height,
        "nrr": line("nrr"),
        "grr": line("grr"),
        "ref_y": round(float(y(np.array([1.0]))[0]), 1),
        "left": left,
        "right": width - right,
        "ticks": [
            {"y": round(float(y(np.array([v]))[0]), 1), "label": _pct(v)}
            for v in _nice_ticks(lo, hi, 4)
        ],
        "xlabels": xlabels,
        "axis_y": height - bottom + 18,
    }


def _nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


# --------------------------------------------------------------------------- formatting


def _money(value: Any, signed: bool = False) -> str:
    """$1.2M, $350k, $900; '—' for missing."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    v = float(value)
    sign = "-" if v < 0 else ("+" if signed and v > 0 else "")
    a = abs(v)
    if a >= 1e9:
        body = f"{a / 1e9:.1f}B"
    elif a >= 1e6:
        body = f"{a / 1e6:.1f}M"
    elif a >= 1e4:
        body = f"{a / 1e3:.0f}k"
    elif a >= 1e3:
        body = f"{a / 1e3:.1f}k"
    else:
        body = f"{a:.0f}"
    return f"{sign}${body}"


def _pct(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def _pts(value: Any) -> str:
    """Change of a probability in percentage points, signed."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value) * 100:+.1f} pts"


def _label(value: Any, labels: Mapping[str, str]) -> str:
    if value is None:
        return "—"
    return labels.get(str(value), str(value).replace("_", " "))


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(ASSETS_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=_money,
        pct=_pct,
        pts=_pts,
        segment=lambda v: _label(v, SEGMENT_LABELS),
        coverage=lambda v: _label(v, COVERAGE_LABELS),
        num=lambda v: f"{int(v):,}" if v is not None else "—",
        num2=lambda v: f"{float(v):,.2f}" if v is not None and math.isfinite(float(v)) else "—",
    )
    return env


# --------------------------------------------------------------------------- embedded data


def _codes(values: pd.Series) -> tuple[list[int], list[str]]:
    """Dictionary-encode a string column: codes (-1 for null) and the distinct values."""
    codes, uniques = pd.factorize(values.astype("string"), sort=True)
    return codes.tolist(), [str(u) for u in uniques]


def _nums(values: Any, decimals: int) -> list[Any]:
    """Rounded numbers for JSON: ints when ``decimals == 0``, None for missing."""
    a = np.asarray(values, dtype="float64")
    ok = np.isfinite(a)
    r = np.round(np.where(ok, a, 0.0), decimals)
    out = (r.astype(np.int64) if decimals == 0 else r).astype(object)
    out[~ok] = None
    return out.tolist()


def _strings(values: pd.Series) -> list[Any]:
    s = values.astype("string")
    return s.astype(object).where(s.notna(), None).tolist()


_REASON_SCHEMA = json.dumps(
    [
        {
            "target": "VARCHAR",
            "direction": "VARCHAR",
            "feature": "VARCHAR",
            "value": "JSON",
            "contribution": "DOUBLE",
            "sentence": "VARCHAR",
            "state": "VARCHAR",
        }
    ]
)


def _reasons(scores: pd.DataFrame) -> pd.DataFrame:
    """Flatten ``reasons_json`` to one row per (account index, reason), set-wise in DuckDB."""
    frame = pd.DataFrame({"i": np.arange(len(scores)), "r": scores["reasons_json"].astype(object)})
    con = duckdb.connect()
    try:
        con.register("raw_reasons", frame)
        bad = con.execute(
            "SELECT count(*), min(i) FROM raw_reasons "
            "WHERE r IS NOT NULL AND (NOT json_valid(r) OR json_type(r) <> 'ARRAY')"
        ).fetchone()
        if bad[0]:
            raise ValueError(
                f"scores.reasons_json: {bad[0]} rows are not a JSON list "
                f"(first account_id {scores['account_id'].iloc[int(bad[1])]!r})"
            )
        return con.execute(
            f"""
            WITH parsed AS (
                SELECT i, unnest(from_json(r, '{_REASON_SCHEMA}')) AS x
                FROM raw_reasons WHERE r IS NOT NULL
            )
            SELECT i,
                   CASE x.target WHEN 'churn' THEN 0 ELSE 1 END AS t,
                   x.feature AS feature,
                   TRY_CAST(x.value AS DOUBLE) AS value_num,
                   CASE WHEN json_type(x.value) IN ('VARCHAR', 'BOOLEAN')
                        THEN x.value ->> '$' END AS value_str,
                   coalesce(x.contribution, 0.0) AS contribution,
                   coalesce(x.sentence, '') AS sentence,
                   coalesce(x.state, '') AS state
            FROM parsed
            WHERE x.target IN ('churn', 'expand')
            ORDER BY i, t, abs(x.contribution) DESC, x.feature
            """
        ).df()
    finally:
        con.close()


def _offsets(index: np.ndarray, n: int) -> list[int]:
    """Start offsets (length n + 1) of rows grouped by a sorted integer index in [0, n)."""
    counts = np.bincount(index.astype(np.int64), minlength=n) if len(index) else np.zeros(n, int)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64).tolist()


def _payload(
    scores: pd.DataFrame,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    prev_as_of: pd.Timestamp | None,
    meta: ReportMeta,
    feature_labels: Mapping[str, str] | None,
    opts: ReportOptions,
) -> dict[str, Any]:
    """Columnar, dictionary-encoded data the browser needs for the list and account pages."""
    n = len(scores)
    dicts: dict[str, list[str]] = {}
    acc: dict[str, Any] = {
        "id": _strings(scores["account_id"]),
        "name": _strings(scores["name"]),
    }
    for key, col in (
        ("csm", "csm_label"),
        ("gap", "data_gaps"),
        ("wc", "what_changed"),
        ("own", "owner"),
        ("due", "due_date"),
        ("stp", "steps"),
        ("suc", "success_measure"),
        ("seg", "segment"),
        ("mat", "maturity_stage"),
        ("pb", "playbook"),
        ("pbr", "playbook_reason"),
        ("chg", "coverage_change"),
    ):
        acc[key], dicts[key] = _codes(scores[col])
    cov_codes, cov_values = _codes(
        pd.concat([scores["coverage_current"], scores["coverage_recommended"]], ignore_index=True)
    )
    acc["cov"], acc["rec"], dicts["cov"] = cov_codes[:n], cov_codes[n:], cov_values
    band_codes, band_values = _codes(
        pd.concat([scores["churn_band"], scores["expand_band"]], ignore_index=True)
    )
    acc["cb"], acc["eb"], dicts["band"] = band_codes[:n], band_codes[n:], band_values
    acc["flag"] = (
        scores["at_risk"].to_numpy().astype(int)
        + 2 * scores["expansion_ready"].to_numpy().astype(int)
    ).tolist()
    for key, col, dec in (
        ("pc", "p_churn", 4),
        ("pe", "p_expand", 4),
        ("dpc", "d_churn", 4),
        ("dpe", "d_expand", 4),
        ("arr", "arr", 0),
        ("tam", "tam_usd", 0),
        ("ws", "whitespace", 0),
        ("pri", "priority", 0),
        ("risk", "arr_at_risk", 0),
        ("gain", "arr_to_gain", 0),
    ):
        acc[key] = _nums(scores[col], dec)

    reasons = _reasons(scores)
    f_codes, f_values = _codes(reasons["feature"])
    s_codes, s_values = _codes(reasons["sentence"])
    g_codes, g_values = _codes(reasons["state"].replace("", None))
    value = np.where(
        reasons["value_num"].notna().to_numpy(),
        np.asarray(_nums(reasons["value_num"], 4), dtype=object),
        np.asarray(_strings(reasons["value_str"]), dtype=object),
    )
    labels = dict(feature_labels or {})
    rs = {
        "off": _offsets(reasons["i"].to_numpy(), n),
        "t": reasons["t"].astype(int).tolist(),
        "f": f_codes,
        "v": value.tolist(),
        "c": _nums(reasons["contribution"], 3),
        "s": s_codes,
        "g": g_codes,
    }

    # History: a dense (account x run date) grid, row-major, in per-mille (0.1 point steps
    # are plenty for a chart and halve the size); null where an account was not scored.
    current = scores.loc[:, ["account_id", "as_of", "p_churn", "p_expand"]]
    h = pd.concat([history, current], ignore_index=True)
    acc_idx = pd.Index(scores["account_id"]).get_indexer(h["account_id"])
    d_codes, d_values = pd.factorize(h["as_of"].dt.strftime("%Y-%m-%d"), sort=True)
    keep = acc_idx >= 0
    n_dates = len(d_values)
    cell = acc_idx[keep] * n_dates + d_codes[keep]
    grid_pc = np.full(n * n_dates, np.nan)
    grid_pe = np.full(n * n_dates, np.nan)
    grid_pc[cell] = h["p_churn"].to_numpy(dtype="float64", na_value=np.nan)[keep] * 1000
    grid_pe[cell] = h["p_expand"].to_numpy(dtype="float64", na_value=np.nan)[keep] * 1000
    hist = {
        "dates": [str(d) for d in d_values],
        "pc": _nums(grid_pc, 0),
        "pe": _nums(grid_pe, 0),
    }
    return {
        "v": 1,
        "as_of": as_of.strftime("%Y-%m-%d") if not pd.isna(as_of) else None,
        "prev_as_of": prev_as_of.strftime("%Y-%m-%d") if prev_as_of is not None else None,
        "horizon_days": int(meta.horizon_days),
        "page_size": int(opts.page_size),
        "thresholds": {str(k): float(v) for k, v in meta.thresholds.items()},
        "labels": {
            "seg": SEGMENT_LABELS,
            "seg_short": SEGMENT_SHORT,
            "cov": COVERAGE_LABELS,
            "feature": {f: labels.get(f, f.replace("_", " ")) for f in f_values},
        },
        "dict": {**dicts, "feature": f_values, "sentence": s_values, "state": g_values},
        "acc": acc,
        "reasons": rs,
        "hist": hist,
    }


def _embed_json(payload: dict[str, Any], compress_over: int) -> tuple[str, str]:
    """JSON text safe inside <script>: '<', '>', '&' escaped; gzip+base64 when large."""
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    size = len(text.encode("utf-8"))
    if compress_over >= 0 and size > compress_over:
        packed = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
        return base64.b64encode(packed).decode("ascii"), "gzip+base64"
    safe = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return safe, "json"
