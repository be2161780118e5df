"""Metrics of binary probability forecasts, as pure functions returning numbers or dicts.

Conventions:

- a slice with a single class gives NaN for ROC-AUC, PR-AUC and lift, not an error;
- PR-AUC is average precision (step-wise area, as scikit-learn computes it);
- expected calibration error (ECE) uses equal-frequency bins: rows sorted by predicted
  probability are cut into ``n_bins`` groups of (nearly) equal size, and
  ECE = sum over bins of (bin share) * |mean outcome - mean prediction|;
- top-k precision is tie-aware: rows tied with the k-th score share the remaining
  slots in proportion (the expected precision under random tie-breaking), so step-like
  scores such as isotonic outputs are judged fairly;
- inputs are checked, not coerced: outcomes other than 0/1 (e.g. NaN labels), non-finite
  probabilities or lengths that differ raise ValueError naming the count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

_LOG_EPS = 1e-15


def _arrays(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    y_arr = np.asarray(y, dtype=np.float64).ravel()
    p_arr = np.asarray(p, dtype=np.float64).ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y has {y_arr.size} rows but p has {p_arr.size}")
    bad_y = ~np.isin(y_arr, (0.0, 1.0))
    if bad_y.any():
        raise ValueError(f"y must be 0/1; {int(bad_y.sum())} rows are not (NaN labels?)")
    bad_p = ~np.isfinite(p_arr)
    if bad_p.any():
        raise ValueError(f"p has {int(bad_p.sum())} non-finite values of {p_arr.size}")
    return y_arr, p_arr


def _two_classes(y: np.ndarray) -> bool:
    return y.size > 0 and y.min() != y.max()


def roc_auc(y: Any, p: Any) -> float:
    """Area under the ROC curve; NaN when `y` holds a single class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.

    Returns
    -------
    float
        The probability that a random positive outscores a random negative (ties count half).
    """
    y_arr, p_arr = _arrays(y, p)
    return float(roc_auc_score(y_arr, p_arr)) if _two_classes(y_arr) else math.nan


def pr_auc(y: Any, p: Any) -> float:
    """Average precision (area under the precision-recall steps); NaN for a single class.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.

    Returns
    -------
    float
        1 for a perfect ranking; random scores give about the base rate.
    """
    y_arr, p_arr = _arrays(y, p)
    return float(average_precision_score(y_arr, p_arr)) if _two_classes(y_arr) else math.nan


def brier(y: Any, p: Any) -> float:
    """Mean squared difference between probability and outcome.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.

    Returns
    -------
    float
        Lower is better; NaN for no rows.

    Examples
    --------
    >>> round(brier([0, 1], [0.2, 0.6]), 6)
    0.1
    """
    y_arr, p_arr = _arrays(y, p)
    return float(np.mean((p_arr - y_arr) ** 2)) if y_arr.size else math.nan


def log_loss(y: Any, p: Any) -> float:
    """Mean negative log-likelihood, probabilities clipped to [1e-15, 1 - 1e-15].

    The clipping keeps a confident miss finite (about 34.5) instead of infinite.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.

    Returns
    -------
    float
        Lower is better; NaN for no rows.
    """
    y_arr, p_arr = _arrays(y, p)
    if not y_arr.size:
        return math.nan
    q = np.clip(p_arr, _LOG_EPS, 1.0 - _LOG_EPS)
    return float(-np.mean(y_arr * np.log(q) + (1.0 - y_arr) * np.log1p(-q)))


def _equal_frequency_bins(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index (0..n_bins-1) of each row; bins hold consecutive ranks of `p`."""
    n = p.size
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(p, kind="stable")] = np.arange(n)
    k = max(1, min(n_bins, n))
    return (ranks * k) // max(n, 1)


def calibration_table(y: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table over equal-frequency bins.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    n_bins : int
        Number of bins (fewer when there are fewer rows).

    Returns
    -------
    pandas.DataFrame
        One row per bin, lowest probabilities first: ``bin, n, mean_p, frac_pos, p_min,
        p_max``; empty (with those columns) for no rows.

    Examples
    --------
    >>> calibration_table([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bins=2)
       bin  n  mean_p  frac_pos  p_min  p_max
    0    0  2   0.225       0.5    0.1   0.35
    1    1  2   0.600       0.5    0.4   0.80
    """
    y_arr, p_arr = _arrays(y, p)
    if not y_arr.size:
        return pd.DataFrame(columns=["bin", "n", "mean_p", "frac_pos", "p_min", "p_max"])
    b = _equal_frequency_bins(p_arr, n_bins)
    table = (
        pd.DataFrame({"bin": b, "p": p_arr, "y": y_arr})
        .groupby("bin", sort=True)
        .agg(
            n=("y", "size"),
            mean_p=("p", "mean"),
            frac_pos=("y", "mean"),
            p_min=("p", "min"),
            p_max=("p", "max"),
        )
        .reset_index()
    )
    return table


def expected_calibration_error(y: Any, p: Any, n_bins: int = 10) -> float:
    """ECE over `n_bins` equal-frequency bins (see the module docstring).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    n_bins : int
        Number of bins of `calibration_table`.

    Returns
    -------
    float
        Between 0 (calibrated in every bin) and 1; NaN for no rows.
    """
    t = calibration_table(y, p, n_bins)
    if t.empty:
        return math.nan
    w = t["n"].to_numpy() / t["n"].sum()
    return float(np.sum(w * np.abs(t["frac_pos"].to_numpy() - t["mean_p"].to_numpy())))


def precision_at_k(y: Any, p: Any, k: int) -> float:
    """Share of positives among the `k` highest scores (tie-aware); k is capped at n.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    k : int
        How many rows are flagged (e.g. the accounts a team can call).

    Returns
    -------
    float
        Expected precision under random tie-breaking; NaN for no rows or ``k <= 0``.

    Examples
    --------
    Two rows tie for the second slot, one of them positive: half a hit.

    >>> precision_at_k([1, 0, 1, 0], [0.9, 0.5, 0.5, 0.1], k=2)
    0.75
    """
    y_arr, p_arr = _arrays(y, p)
    n = y_arr.size
    if n == 0 or k <= 0:
        return math.nan
    k = min(int(k), n)
    t = np.sort(p_arr)[::-1][k - 1]
    above = p_arr > t
    tied = p_arr == t
    slots = k - int(above.sum())
    hits = y_arr[above].sum() + y_arr[tied].sum() * slots / int(tied.sum())
    return float(hits / k)


def top_fraction_k(n: int, fraction: float) -> int:
    """Number of rows in the top `fraction` of `n` (at least one).

    Parameters
    ----------
    n : int
        Number of rows.
    fraction : float
        Share flagged, e.g. 0.1 for the top decile (rounded up).

    Returns
    -------
    int
        The `k` for `precision_at_k`.

    Examples
    --------
    >>> top_fraction_k(1000, 0.1), top_fraction_k(5, 0.1)
    (100, 1)
    """
    return max(1, math.ceil(fraction * n))


def lift_table(y: Any, p: Any, n_bins: int = 10) -> pd.DataFrame:
    """Outcome rate per score decile (bin 1 = highest scores), lift and cumulative capture.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    n_bins : int
        Number of equal-frequency bins (10: deciles).

    Returns
    -------
    pandas.DataFrame
        ``decile, n, positives, rate, lift, cum_capture`` (lift = rate / overall rate;
        cum_capture = share of all positives found in this and higher deciles; NaN without
        positives); empty (with those columns) for no rows.
    """
    y_arr, p_arr = _arrays(y, p)
    cols = ["decile", "n", "positives", "rate", "lift", "cum_capture"]
    if not y_arr.size:
        return pd.DataFrame(columns=cols)
    b = _equal_frequency_bins(-p_arr, n_bins)
    t = (
        pd.DataFrame({"decile": b + 1, "y": y_arr})
        .groupby("decile", sort=True)
        .agg(n=("y", "size"), positives=("y", "sum"))
        .reset_index()
    )
    base = y_arr.mean()
    t["rate"] = t["positives"] / t["n"]
    t["lift"] = t["rate"] / base if base > 0 else math.nan
    total = t["positives"].sum()
    t["cum_capture"] = t["positives"].cumsum() / total if total > 0 else math.nan
    return t[cols]


def binary_metrics(
    y: Any,
    p: Any,
    *,
    n_bins: int = 10,
    top_fraction: float = 0.1,
    k: int = 200,
) -> dict[str, float]:
    """All headline metrics of one set of probabilities.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    n_bins : int
        Equal-frequency bins of the ECE.
    top_fraction : float
        Share of rows flagged for ``precision_top`` and ``lift_top`` (0.1 = top decile).
    k : int
        Fixed number of flags for ``precision_at_k``.

    Returns
    -------
    dict of str to float
        ``n, positives, base_rate, mean_p, roc_auc, pr_auc, brier, log_loss, ece,
        precision_top, lift_top, precision_at_k`` (NaN where undefined).

    Examples
    --------
    >>> m = binary_metrics([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], top_fraction=0.25, k=2)
    >>> m["roc_auc"], m["precision_top"], m["precision_at_k"]
    (0.75, 1.0, 0.5)
    """
    y_arr, p_arr = _arrays(y, p)
    n = y_arr.size
    base = float(y_arr.mean()) if n else math.nan
    prec_top = precision_at_k(y_arr, p_arr, top_fraction_k(n, top_fraction)) if n else math.nan
    return {
        "n": float(n),
        "positives": float(y_arr.sum()),
        "base_rate": base,
        "mean_p": float(p_arr.mean()) if n else math.nan,
        "roc_auc": roc_auc(y_arr, p_arr),
        "pr_auc": pr_auc(y_arr, p_arr),
        "brier": brier(y_arr, p_arr),
        "log_loss": log_loss(y_arr, p_arr),
        "ece": expected_calibration_error(y_arr, p_arr, n_bins),
        "precision_top": prec_top,
        "lift_top": prec_top / base if n and base > 0 else math.nan,
        "precision_at_k": precision_at_k(y_arr, p_arr, k),
    }


def slice_metrics(
    y: Any, p: Any, masks: Mapping[str, Any], **kwargs: Any
) -> dict[str, dict[str, float]]:
    """`binary_metrics` within each boolean mask (e.g. one per segment); empty masks skipped.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes, 0/1.
    p : array-like of shape (n_samples,)
        Predicted probabilities of outcome 1.
    masks : mapping of str to array-like of bool, shape (n_samples,)
        Slice name -> its rows (see `segment_masks`).
    **kwargs
        Passed to `binary_metrics` (``n_bins``, ``top_fraction``, ``k``).

    Returns
    -------
    dict of str to dict
        Slice name -> its `binary_metrics`, for the non-empty slices only.

    Raises
    ------
    ValueError
        When a mask's length differs from `y`'s.
    """
    y_arr, p_arr = _arrays(y, p)
    out: dict[str, dict[str, float]] = {}
    for name, mask in masks.items():
        m = np.asarray(mask, dtype=bool)
        if m.shape != y_arr.shape:
            raise ValueError(f"mask {name!r} has {m.size} rows, expected {y_arr.size}")
        if m.any():
            out[name] = binary_metrics(y_arr[m], p_arr[m], **kwargs)
    return out


def segment_masks(frame: pd.DataFrame, column: str) -> dict[str, np.ndarray]:
    """One mask per distinct value of `column` (missing values under ``'<missing>'``).

    Parameters
    ----------
    frame : pandas.DataFrame
        The scored rows, aligned with the `y`, `p` given to `slice_metrics`.
    column : str
        The column to slice by (e.g. the segment); values are compared as text.

    Returns
    -------
    dict of str to numpy.ndarray
        Value -> boolean mask of shape (n_rows,), values in sorted order.

    Raises
    ------
    KeyError
        When `frame` has no such column.

    Examples
    --------
    >>> segment_masks(pd.DataFrame({"segment": ["smb", None, "smb"]}), "segment")
    {'<missing>': array([False,  True, False]), 'smb': array([ True, False,  True])}
    """
    if column not in frame.columns:
        raise KeyError(f"no column {column!r} to slice metrics by")
    values = frame[column].astype("string").fillna("<missing>").to_numpy()
    return {str(v): values == v for v in sorted(set(values))}


ece = expected_calibration_error
"""Short alias of `expected_calibration_error`."""
