"""What a report is made from, checked: the scores of one run, earlier runs, NRR periods.

The dataclasses here are the report's public inputs. The functions check each input table
(a missing column is an error naming the table, the column and the row count) and turn it
into the frame the rest of the package reads: canonical dtypes, one ``as_of``, derived
columns filled so the page never shows an avoidable blank. Nothing here formats or draws.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from features.names import COVERAGE_RANK

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
    territories: Any = None  # a rebalancing (evaluation.report.territories); None: no section
    actions: pd.DataFrame | None = None
    flags: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None


def meta_as_of(meta: ReportMeta) -> pd.Timestamp:
    """The scoring date the run states, for a report of no accounts.

    Parameters
    ----------
    meta : ReportMeta
        What the run says about itself.

    Returns
    -------
    Timestamp
        ``meta.as_of``, or NaT when the run did not say.
    """
    return pd.Timestamp(meta.as_of) if meta.as_of is not None else pd.NaT


def _check_columns(frame: pd.DataFrame, required: Sequence[str], table: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{table}: missing column(s) {missing}; has {list(frame.columns)} ({len(frame)} rows)"
        )


def prepare_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Check the scores of one run and give every optional column a canonical dtype.

    Parameters
    ----------
    scores : DataFrame
        One scoring run, with at least :data:`REQUIRED_SCORE_COLUMNS`.

    Returns
    -------
    DataFrame
        A copy with every column of :data:`OPTIONAL_SCORE_COLUMNS` (missing ones as
        unknown), ``whitespace`` filled from TAM - ARR, ``coverage_change`` (upgrade,
        downgrade, aligned or unknown) and ``csm_label`` (CSM name, else id).

    Raises
    ------
    ValueError
        If a required column is missing, the rows hold several ``as_of`` dates, or an
        account id is duplicated or null.
    """
    _check_columns(scores, REQUIRED_SCORE_COLUMNS, "scores")
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


def join_actions(scores: pd.DataFrame, actions: pd.DataFrame | None) -> pd.DataFrame:
    """Scores with the action table's people and play columns (by account_id).

    Parameters
    ----------
    scores : DataFrame
        Output of :func:`prepare_scores`.
    actions : DataFrame or None
        ``evaluation.actions.action_table`` of the run.

    Returns
    -------
    DataFrame
        A copy with every column of :data:`ACTION_COLUMNS` (null when unknown); the CSM
        label and data gaps from the action table when it has them.
    """
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


def prepare_history(
    history: pd.DataFrame | None, scores: pd.DataFrame, as_of: pd.Timestamp, runs: int
) -> pd.DataFrame:
    """Earlier scores of the accounts in this run: the last ``runs`` dates before ``as_of``.

    Parameters
    ----------
    history : DataFrame or None
        Earlier scores with :data:`HISTORY_COLUMNS`.
    scores : DataFrame
        This run's scores (only their accounts are kept).
    as_of : Timestamp
        This run's date; rows on or after it are ignored (no leakage from the future).
    runs : int
        How many earlier run dates to keep.

    Returns
    -------
    DataFrame
        One row per (account, earlier run date), sorted; empty with the right dtypes when
        there is no history.
    """
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
    _check_columns(history, HISTORY_COLUMNS, "history")
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


def prepare_nrr(nrr: pd.DataFrame | None) -> pd.DataFrame:
    """Check the NRR frame (columns of :class:`NRRPeriod`) and order it by period.

    Parameters
    ----------
    nrr : DataFrame or None
        NRR periods; may be empty or None.

    Returns
    -------
    DataFrame
        Ordered by ``period_start``, with ``new_arr`` and a ``period`` label (``YYYY-MM``
        when not given).

    Raises
    ------
    ValueError
        If a required column is missing or NRR looks like a percentage (above 5).
    """
    if nrr is None or len(nrr) == 0:
        return pd.DataFrame(columns=[f.name for f in fields(NRRPeriod)])
    _check_columns(nrr, NRR_REQUIRED_COLUMNS, "nrr")
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


def add_movers(
    scores: pd.DataFrame, history: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Timestamp | None]:
    """Add the previous run's probabilities and the change since then (NaN when new).

    Parameters
    ----------
    scores : DataFrame
        This run's prepared scores.
    history : DataFrame
        Output of :func:`prepare_history`.

    Returns
    -------
    tuple of (DataFrame, Timestamp or None)
        The scores with ``prev_p_churn``, ``prev_p_expand``, ``d_churn``, ``d_expand``;
        and the date of the previous run (None when there is none).
    """
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
