"""Vectorised point-in-interval sums, used for ARR at a date and agent capacity at a date."""

from __future__ import annotations

import numpy as np


def expand_ranges(lo: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For ranges [lo, lo + count): (index of the range, position) of every element."""
    count = np.asarray(count, dtype=np.int64)
    total = int(count.sum())
    owner = np.repeat(np.arange(count.shape[0], dtype=np.int64), count)
    starts = np.cumsum(count) - count
    pos = np.arange(total, dtype=np.int64) - starts[owner]
    return owner, np.asarray(lo, dtype=np.int64)[owner] + pos


def sum_active(
    key: np.ndarray,
    start: np.ndarray,
    end: np.ndarray,
    weight: np.ndarray,
    q_key: np.ndarray,
    q_day: np.ndarray,
    n_keys: int,
) -> np.ndarray:
    """Sum of `weight` over rows with key == q_key and start <= q_day < end, per query.

    Parameters
    ----------
    key, start, end, weight : arrays of shape (n_rows,)
        Row owner (0..n_keys-1), half-open validity interval [start, end) in days, value.
    q_key, q_day : arrays of shape (n_queries,)
        Owner and day of each query.
    n_keys : int
        Number of distinct owners.

    Returns
    -------
    ndarray of shape (n_queries,), float64
    """
    order = np.argsort(key, kind="stable")
    bounds = np.searchsorted(key[order], np.arange(n_keys + 1))
    q_key = np.asarray(q_key, dtype=np.int64)
    lo, hi = bounds[q_key], bounds[q_key + 1]
    owner, pos = expand_ranges(lo, hi - lo)
    rows = order[pos]
    day = np.asarray(q_day)[owner]
    hit = (start[rows] <= day) & (day < end[rows])
    return np.bincount(owner[hit], weights=weight[rows][hit], minlength=q_key.shape[0])
