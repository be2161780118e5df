"""Realism figures of a simulated world, recomputed from the files on disk.

Everything here reads the contract tables (and `truth.parquet`), so the same
figures can be produced for any existing world, and the labels are computed from
`subscriptions` exactly as DESIGN.md defines them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from simulator.intervals import sum_active

NEVER_DAY = 10**9


@dataclass
class SimSummary:
    """What `simulate` produced and how realistic it is (see `summarize`)."""

    accounts: int
    months: int
    events: int
    users: int
    tickets: int
    wall_seconds: float
    events_per_second: float
    peak_rss_mb: float
    monthly_logo_churn: float
    annual_nrr: float
    annual_grr: float
    share_of_churn_near_renewal: float
    churn_60d_rate: float
    expand_60d_rate: float
    contract_60d_rate: float
    oracle_auc_churn: float
    oracle_auc_expand: float
    oracle_auc_contract: float
    mean_p_churn: float
    mean_p_expand: float
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC-AUC with ties averaged (Mann-Whitney); NaN when a class is missing."""
    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inv, counts = np.unique(np.asarray(score), return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts  # 0-based rank of the first of each tied group
    ranks = (first + (counts + 1) / 2.0)[inv]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _days(col) -> np.ndarray:
    """A date/timestamp column as int64 days since the epoch (NEVER_DAY for nulls)."""
    arr = col.cast("date32").to_numpy(zero_copy_only=False)
    out = np.full(arr.shape[0], NEVER_DAY, dtype=np.int64)
    ok = ~np.isnat(arr)
    out[ok] = arr[ok].astype("datetime64[D]").astype(np.int64)
    return out


def labels(
    sub_acct: np.ndarray,
    sub_start: np.ndarray,
    sub_end: np.ndarray,
    sub_mrr: np.ndarray,
    q_acct: np.ndarray,
    q_day: np.ndarray,
    *,
    horizon: int,
    pct: float,
    data_end: int,
    n_acct: int,
) -> dict[str, np.ndarray]:
    """ARR at as_of and as_of + horizon and the DESIGN labels, for (account, as_of) queries."""
    arr = 12.0 * sum_active(sub_acct, sub_start, sub_end, sub_mrr, q_acct, q_day, n_acct)
    arr_h = 12.0 * sum_active(
        sub_acct, sub_start, sub_end, sub_mrr, q_acct, q_day + horizon, n_acct
    )
    known = q_day + horizon < data_end
    nan = np.where(known, 1.0, np.nan)
    return {
        "arr": arr,
        "arr_h": np.where(known, arr_h, np.nan),
        "label_churn": nan * (arr_h == 0),
        "label_expand": nan * (arr_h >= (1 + pct) * arr),
        "label_contract": nan * ((arr_h > 0) & (arr_h <= (1 - pct) * arr)),
        "label_known": known,
    }


def _month_days(start_day: int, count: int) -> np.ndarray:
    base = np.datetime64(int(start_day), "D").astype("datetime64[M]")
    return (base + np.arange(count)).astype("datetime64[D]").astype(np.int64)


def _churn_near_renewal(acct, start, end, term, data_end: int, n_acct: int) -> tuple[float, int]:
    """Share of churned accounts whose churn date is within 30 days of a renewal date."""
    open_rows = np.bincount(acct[end >= NEVER_DAY], minlength=n_acct)
    last_end = np.full(n_acct, -1, dtype=np.int64)
    np.maximum.at(last_end, acct[end < NEVER_DAY], end[end < NEVER_DAY])
    churned = (open_rows == 0) & (last_end >= 0) & (last_end < data_end)
    closing = churned[acct] & (end == last_end[acct])
    if not closing.any():
        return float("nan"), 0
    s, c, t = start[closing], end[closing], np.maximum(term[closing], 1)
    s_m = np.datetime64(0, "D") + s
    c_m = np.datetime64(0, "D") + c
    s_month = s_m.astype("datetime64[M]")
    dom = (s_m - s_month.astype("datetime64[D]")).astype(np.int64)
    k = (c_m.astype("datetime64[M]") - s_month).astype(np.int64)
    best = np.full(s.shape[0], np.iinfo(np.int64).max)
    for step in (-1, 0, 1):  # the renewals just before and after the churn date
        q = (np.floor_divide(k, t) + step) * t
        month = s_month + np.maximum(q, t)
        first = month.astype("datetime64[D]")
        length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
        cand = (first + np.minimum(dom, length - 1)).astype(np.int64)
        best = np.minimum(best, np.abs(c - cand))
    near = np.zeros(n_acct, dtype=bool)
    np.logical_or.at(near, acct[closing], best <= 30)
    return float(near[churned].mean()), int(churned.sum())


def _arr_by_month(
    acct, start, end, mrr, first_day: int, data_end: int, n_months: int, n_acct: int
) -> np.ndarray:
    """ARR of every account at every month start, shape (n_acct, n_months + 1).

    The last month start is moved to the day before the data end when it is later.
    """
    ms = _month_days(first_day, n_months + 1)
    ms[-1] = min(ms[-1], data_end - 1)
    q_acct = np.repeat(np.arange(n_acct), ms.shape[0])
    q_day = np.tile(ms, n_acct)
    arr = 12.0 * sum_active(acct, start, end, mrr, q_acct, q_day, n_acct)
    return arr.reshape(n_acct, ms.shape[0])


def _retention(arr: np.ndarray) -> tuple[float, float, float, int]:
    """Mean monthly logo churn, annual NRR and GRR (cohorts by start month), their span."""
    alive = arr[:, :-1] > 0
    churned = alive & (arr[:, 1:] == 0)
    logo_churn = float(np.mean(churned.sum(axis=0) / np.maximum(alive.sum(axis=0), 1)))
    span = min(12, arr.shape[1] - 1)
    nrr, grr = [], []
    for m0 in range(arr.shape[1] - span):  # cohorts by start month
        base = arr[:, m0]
        cohort = base > 0
        later = arr[cohort, m0 + span]
        nrr.append(later.sum() / base[cohort].sum())
        grr.append(np.minimum(later, base[cohort]).sum() / base[cohort].sum())
    scale = 12.0 / span
    return logo_churn, float(np.mean(nrr) ** scale), float(np.mean(grr) ** scale), span


def _row_count(path: Path) -> int:
    """Rows of a Parquet file or of a folder of parts (0 when missing)."""
    if path.is_dir():
        return sum(pq.ParquetFile(f).metadata.num_rows for f in sorted(path.glob("*.parquet")))
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def summarize(out: Path) -> dict:
    """Recompute the realism figures of a world written by `simulate`.

    Parameters
    ----------
    out : Path
        Directory holding the contract tables, `truth.parquet` and `manifest.json`.

    Returns
    -------
    dict
        Counts (accounts, months, events, users, tickets), monthly logo churn, annual
        NRR/GRR, share of churn near renewal, 60-day label rates and the oracle ROC-AUC
        of `truth` probabilities against the labels realised in `subscriptions`.
    """
    out = Path(out)
    manifest = json.loads((out / "manifest.json").read_text())
    horizon = int(manifest.get("horizon_days", 60))
    pct = float(manifest.get("expansion_pct", 0.10))
    epoch = np.datetime64("1970-01-01", "D")
    start = int((np.datetime64(manifest["start"], "D") - epoch).astype(np.int64))
    data_end = int((np.datetime64(manifest["data_end"], "D") - epoch).astype(np.int64))

    subs = pq.read_table(out / "subscriptions.parquet")
    truth = pq.read_table(out / "truth.parquet")
    ids, inv = np.unique(
        np.concatenate(
            [
                subs["account_id"].to_numpy(zero_copy_only=False).astype(str),
                truth["account_id"].to_numpy(zero_copy_only=False).astype(str),
            ]
        ),
        return_inverse=True,
    )
    n_acct = ids.shape[0]
    s_acct, t_acct = inv[: subs.num_rows], inv[subs.num_rows :]
    s_start, s_end = _days(subs["start_date"]), _days(subs["end_date"])
    s_mrr = subs["mrr"].to_numpy()
    term = pc.fill_null(subs["term_months"], 12).to_numpy()

    n_months = int(manifest["months"])
    arr = _arr_by_month(s_acct, s_start, s_end, s_mrr, start, data_end, n_months, n_acct)
    logo_churn, annual_nrr, annual_grr, span = _retention(arr)
    near, n_churned = _churn_near_renewal(s_acct, s_start, s_end, term, data_end, n_acct)

    t_day = _days(truth["month_start"])
    lab = labels(
        s_acct, s_start, s_end, s_mrr, t_acct, t_day,
        horizon=horizon, pct=pct, data_end=data_end, n_acct=n_acct,
    )  # fmt: skip
    known = lab["label_known"]
    p = {k: truth[k].to_numpy() for k in ("p_churn", "p_expand", "p_contract")}

    def rate(name: str) -> float:
        return float(np.nanmean(lab[name][known])) if known.any() else float("nan")

    def oracle(name: str, prob: str) -> float:
        return auc(lab[name][known] == 1.0, p[prob][known]) if known.any() else float("nan")

    def rows(name: str) -> int:
        return _row_count(out / name)

    return {
        "accounts": rows("accounts.parquet"),
        "months": n_months,
        "events": rows("events"),
        "users": rows("users.parquet"),
        "tickets": rows("tickets.parquet"),
        "monthly_logo_churn": logo_churn,
        "annual_nrr": annual_nrr,
        "annual_grr": annual_grr,
        "share_of_churn_near_renewal": near,
        "churn_60d_rate": rate("label_churn"),
        "expand_60d_rate": rate("label_expand"),
        "contract_60d_rate": rate("label_contract"),
        "oracle_auc_churn": oracle("label_churn", "p_churn"),
        "oracle_auc_expand": oracle("label_expand", "p_expand"),
        "oracle_auc_contract": oracle("label_contract", "p_contract"),
        "mean_p_churn": float(p["p_churn"][known].mean()) if known.any() else float("nan"),
        "mean_p_expand": float(p["p_expand"][known].mean()) if known.any() else float("nan"),
        "extra": {
            "churned_accounts": n_churned,
            "labelled_rows": int(known.sum()),
            "truth_rows": int(truth.num_rows),
            "nrr_span_months": span,
            "truth_arr_matches_subscriptions": bool(
                np.allclose(lab["arr"], truth["arr"].to_numpy(), rtol=0, atol=1e-6)
            ),
        },
    }
