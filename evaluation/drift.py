"""Population stability index (PSI) of features and scores between two populations.

The reference is the training window, the current population the latest snapshot.
Numeric columns are cut at the reference's quantiles; every column gets one more bin
for missing values, so a feature that starts arriving null drifts visibly:

* cut points = distinct reference quantiles at 1/b, 2/b, ..., (b-1)/b, taken as observed
  values (inverse of the empirical CDF, so no bin of the reference is empty); bins are
  ``(-inf, c1], (c1, c2], ..., (ck, +inf)`` plus a NaN bin. Heavy ties (a feature that is
  0 for 70% of accounts) merge bins rather than create empty ones.
* bins of the reference holding less than ``min_bin_share`` (default 5%) are merged into
  their smaller neighbour: a discrete feature (a count, a streak) ties on a few values,
  and a thin tail bin turns sampling noise into PSI.
* a reference with a single distinct value ``v`` gets bins ``< v``, ``== v``, ``> v``
  (and NaN): any movement away from the constant shows.
* string / categorical columns: one bin per reference category, one for unseen
  categories, one for missing.

``PSI = sum_i (c_i - r_i) * ln(c_i / r_i)`` over bins, with shares floored at
``epsilon`` (default 1e-4) so that an empty bin gives a large but finite value.
Flags: ``psi >= alert`` is ``"alert"``, ``psi >= watch`` is ``"watch"``, else ``"ok"``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from evaluation.config import DriftConfig

REPORT_COLUMNS = (
    "column",
    "kind",
    "psi",
    "status",
    "bins",
    "n_reference",
    "n_current",
    "null_share_reference",
    "null_share_current",
    "mean_reference",
    "mean_current",
)


def bin_shares(
    reference: pd.Series | np.ndarray,
    current: pd.Series | np.ndarray,
    *,
    bins: int = 10,
    min_bin_share: float = 0.05,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Bin shares of ``reference`` and ``current`` on bins learnt from ``reference``.

    Parameters
    ----------
    reference, current : array-like of shape (n,) and (m,)
        Values of the reference (training) and current populations; string, categorical
        and boolean values get one bin per reference category.
    bins : int, default 10
        Quantile bins of a numeric reference before ties and thin bins are merged.
    min_bin_share : float, default 0.05
        Reference share below which a numeric bin is merged into its smaller neighbour.

    Returns
    -------
    ref_share, cur_share : ndarray of shape (n_bins,)
        Shares (summing to 1 when the population is not empty); the last bin is NaN.
    kind : {"numeric", "constant", "categorical", "empty"}
    """
    ref, cur = pd.Series(reference), pd.Series(current)
    if _is_categorical(ref) or _is_categorical(cur):
        return (*_categorical_shares(ref, cur), "categorical")
    r = np.array(pd.to_numeric(ref, errors="coerce"), dtype="float64")
    c = np.array(pd.to_numeric(cur, errors="coerce"), dtype="float64")
    finite = r[~np.isnan(r)]
    if len(finite) == 0:
        cuts, kind, side = np.empty(0), "empty", "right"
    elif finite.min() == finite.max():
        cuts, kind, side = np.array([finite[0], finite[0]]), "constant", "left"
    else:
        qs = np.quantile(finite, np.arange(1, bins) / bins, method="inverted_cdf")
        cuts, kind, side = _merge_thin(np.unique(qs), finite, min_bin_share), "numeric", "left"
    n_bins = len(cuts) + 2  # value bins + NaN bin
    return _shares(r, cuts, side, n_bins, kind), _shares(c, cuts, side, n_bins, kind), kind


def _merge_thin(cuts: np.ndarray, finite: np.ndarray, min_share: float) -> np.ndarray:
    """Drop cut points until every value bin holds at least `min_share` of the reference."""
    cuts = np.asarray(cuts, dtype=np.float64)
    while len(cuts) > 1:
        share = np.bincount(
            np.searchsorted(cuts, finite, side="left"), minlength=len(cuts) + 1
        ) / len(finite)
        j = int(np.argmin(share))
        if share[j] >= min_share:
            break
        if j == 0:
            drop = 0
        elif j == len(cuts):
            drop = j - 1
        else:
            drop = j - 1 if share[j - 1] <= share[j + 1] else j
        cuts = np.delete(cuts, drop)
    return cuts


def _shares(x: np.ndarray, cuts: np.ndarray, side: str, n_bins: int, kind: str) -> np.ndarray:
    """Share of ``x`` in each bin; right-closed intervals, the NaN bin last."""
    nan = np.isnan(x)
    idx = np.full(len(x), n_bins - 1)
    if kind == "constant":
        # (-inf, v) -> 0, [v, v] -> 1, (v, inf) -> 2
        v = cuts[0]
        idx[~nan] = np.where(x[~nan] < v, 0, np.where(x[~nan] == v, 1, 2))
    else:
        idx[~nan] = np.searchsorted(cuts, x[~nan], side=side)
    counts = np.bincount(idx, minlength=n_bins).astype(float)
    return counts / len(x) if len(x) else counts


def _is_categorical(s: pd.Series) -> bool:
    return bool(
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(s.dtype)
        or s.dtype == object
        or pd.api.types.is_bool_dtype(s.dtype)
    )


def _categorical_shares(ref: pd.Series, cur: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    cats = pd.Index(ref.dropna().astype(str).unique()).sort_values()

    def shares(s: pd.Series) -> np.ndarray:
        vals = s.astype("string")
        code = cats.get_indexer(vals.fillna("").to_numpy(dtype=object))
        code = np.where(code < 0, len(cats), code)  # unseen category
        code = np.where(vals.isna().to_numpy(), len(cats) + 1, code)
        counts = np.bincount(code, minlength=len(cats) + 2).astype(float)
        return counts / len(s) if len(s) else counts

    return shares(ref), shares(cur)


def psi_from_shares(ref_share: np.ndarray, cur_share: np.ndarray, epsilon: float = 1e-4) -> float:
    """PSI of two share vectors, shares floored at ``epsilon``.

    Parameters
    ----------
    ref_share, cur_share : array-like of shape (n_bins,)
        Bin shares of the reference and current populations, as from :func:`bin_shares`.
    epsilon : float, default 1e-4
        Floor on each share, so that an empty bin gives a large but finite PSI.

    Returns
    -------
    float
        ``sum_i (c_i - r_i) * ln(c_i / r_i)``; 0 when the shares are equal.

    Examples
    --------
    >>> round(psi_from_shares(np.array([0.5, 0.5]), np.array([0.25, 0.75])), 6)
    0.274653
    """
    r = np.maximum(np.asarray(ref_share, float), epsilon)
    c = np.maximum(np.asarray(cur_share, float), epsilon)
    return float(np.sum((c - r) * np.log(c / r)))


def psi(
    reference: pd.Series | np.ndarray,
    current: pd.Series | np.ndarray,
    *,
    bins: int = 10,
    epsilon: float = 1e-4,
    min_bin_share: float = 0.05,
) -> float:
    """Population stability index of one column (see the module docstring for the bins).

    Parameters
    ----------
    reference, current : array-like of shape (n,) and (m,)
        Values in the reference (training) and current (latest snapshot) populations.
    bins : int, default 10
        Quantile bins of the reference before ties are merged.
    epsilon : float, default 1e-4
        Floor on each bin's share.
    min_bin_share : float, default 0.05
        Reference share below which a numeric bin is merged into its smaller neighbour.

    Returns
    -------
    float
        The PSI, >= 0.

    Examples
    --------
    >>> round(psi(np.arange(100.0), np.arange(100.0)), 6)
    0.0
    """
    ref_share, cur_share, _ = bin_shares(reference, current, bins=bins, min_bin_share=min_bin_share)
    return psi_from_shares(ref_share, cur_share, epsilon)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    config: DriftConfig | None = None,
) -> pd.DataFrame:
    """PSI and flag of each column between a reference and a current population.

    Parameters
    ----------
    reference : DataFrame
        Rows of the training window (features, and scores issued on it).
    current : DataFrame
        Rows of the latest snapshot.
    columns : sequence of str, optional
        Columns to compare; default: numeric columns present in both frames.
    config : DriftConfig, optional
        Bins, ``watch`` / ``alert`` limits and the share floor.

    Returns
    -------
    DataFrame
        One row per column, sorted by PSI descending: ``column, kind, psi, status, bins,
        n_reference, n_current, null_share_reference, null_share_current,
        mean_reference, mean_current``.
    """
    cfg = config or DriftConfig()
    if columns is None:
        columns = [
            c
            for c in reference.columns
            if c in current.columns and pd.api.types.is_numeric_dtype(reference[c].dtype)
        ]
    missing = [
        (name, c)
        for name, frame in (("reference", reference), ("current", current))
        for c in columns
        if c not in frame.columns
    ]
    if missing:
        raise ValueError(f"drift: missing column(s) {missing}")
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(
            f"drift: empty population (reference {len(reference)} rows, current {len(current)})"
        )
    rows = []
    for col in columns:
        ref_share, cur_share, kind = bin_shares(
            reference[col], current[col], bins=cfg.bins, min_bin_share=cfg.min_bin_share
        )
        value = psi_from_shares(ref_share, cur_share, cfg.epsilon)
        rows.append(
            {
                "column": col,
                "kind": kind,
                "psi": value,
                "status": "alert"
                if value >= cfg.alert
                else "watch"
                if value >= cfg.watch
                else "ok",
                "bins": len(ref_share),
                "n_reference": len(reference),
                "n_current": len(current),
                "null_share_reference": float(reference[col].isna().mean()),
                "null_share_current": float(current[col].isna().mean()),
                "mean_reference": _mean(reference[col]),
                "mean_current": _mean(current[col]),
            }
        )
    out = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return out.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _mean(s: pd.Series) -> float:
    if not pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        return float("nan")
    return float(pd.to_numeric(s, errors="coerce").mean())


def drift_between(
    panel: pd.DataFrame,
    *,
    reference_as_of: tuple[object, object],
    current_as_of: object,
    columns: Sequence[str] | None = None,
    config: DriftConfig | None = None,
) -> pd.DataFrame:
    """Drift of a feature (or scores) panel: a window of ``as_of`` against one snapshot.

    Parameters
    ----------
    panel : DataFrame
        Rows with an ``as_of`` column (a feature or scores panel).
    reference_as_of : (date-like, date-like)
        ``(first, last)`` ``as_of`` of the reference window, inclusive.
    current_as_of : date-like
        The one ``as_of`` of the current population.
    columns : sequence of str, optional
        Columns to compare; default: numeric ones other than labels (``label_*``, ``arr_h``).
    config : DriftConfig, optional
        Bins, ``watch`` / ``alert`` limits and the share floor.

    Returns
    -------
    DataFrame
        As :func:`drift_report`: one row per column, sorted by PSI descending.

    Raises
    ------
    ValueError
        When ``as_of`` or a column is missing, or either population has no row.
    """
    if "as_of" not in panel.columns:
        raise ValueError("panel: missing column 'as_of'")
    as_of = pd.to_datetime(panel["as_of"])
    lo, hi = (pd.Timestamp(v) for v in reference_as_of)
    ref = panel.loc[(as_of >= lo) & (as_of <= hi)]
    cur = panel.loc[as_of == pd.Timestamp(current_as_of)]
    if columns is None:
        columns = [
            c
            for c in panel.columns
            if c != "as_of"
            and not c.startswith("label_")
            and c != "arr_h"
            and pd.api.types.is_numeric_dtype(panel[c].dtype)
            and not pd.api.types.is_bool_dtype(panel[c].dtype)
        ]
    return drift_report(ref, cur, columns, config=config)


def drift_flags(report: pd.DataFrame) -> list[str]:
    """One plain-language line per flagged column (for the report header).

    Parameters
    ----------
    report : DataFrame
        A :func:`drift_report` output.

    Returns
    -------
    list of str
        One line per column whose status is not "ok": PSI, status, means and missing
        shares, in the report's order.
    """
    flagged = report[report["status"] != "ok"]
    return [
        f"{r.column}: PSI {r.psi:.2f} ({r.status}); mean {r.mean_reference:.3g} -> "
        f"{r.mean_current:.3g}, missing {r.null_share_reference:.0%} -> {r.null_share_current:.0%}"
        for r in flagged.itertuples()
    ]


def drift_sentences(report: pd.DataFrame, labels: dict[str, str] | None = None) -> list[str]:
    """Drift alerts in words for CS readers: what moved and whose scores to double-check.

    One sentence per column with status "alert" (PSI stays in the technical section),
    e.g. "Active users in the last 30 days: higher than in the training data (mean 12 ->
    18); scores of accounts where this drives the prediction deserve a second look."

    Parameters
    ----------
    report : DataFrame
        A :func:`drift_report` output.
    labels : dict of str to str, optional
        Plain-language name of each column (text after a ":" is dropped); default: the
        column name with spaces for underscores.

    Returns
    -------
    list of str
        One sentence per alerted column, in the report's order.

    Examples
    --------
    >>> r = pd.DataFrame({"column": ["tickets_30d"], "status": ["alert"], "psi": [0.4],
    ...                   "mean_reference": [1.0], "mean_current": [2.0],
    ...                   "null_share_reference": [0.0], "null_share_current": [0.0]})
    >>> drift_sentences(r)[0][:44]
    'tickets 30d: higher than in the training dat'
    """
    labels = labels or {}
    out = []
    for r in report[report["status"] == "alert"].itertuples():
        label = str(labels.get(r.column, r.column.replace("_", " "))).split(":")[0].rstrip(".")
        nulls = r.null_share_current - r.null_share_reference
        if abs(nulls) >= 0.1:
            what = (
                f"missing for {r.null_share_current:.0%} of accounts now "
                f"(was {r.null_share_reference:.0%})"
            )
        elif np.isfinite(r.mean_reference) and np.isfinite(r.mean_current):
            word = "higher" if r.mean_current > r.mean_reference else "lower"
            what = (
                f"{word} than in the training data (mean {r.mean_reference:.3g} -> "
                f"{r.mean_current:.3g})"
            )
        else:
            what = "distributed differently than in the training data"
        out.append(
            f"{label}: {what}; scores of accounts where this drives the prediction deserve "
            "a second look"
        )
    return out
