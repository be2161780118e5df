"""A randomised holdout of flagged accounts: the only honest way to learn whether plays work.

Accounts flagged at risk (or expansion-ready) are normally all worked; holding a random
share of them out (flagged, recorded, not touched) lets the quarterly calibration compare
the outcomes of worked and held-out accounts (an intention-to-treat estimate,
`evaluation.uplift.observed_save_rate`) and gives an uplift model both kinds of rows.

The draw is a hash of (seed, account_id, as_of), so re-running a scoring date holds out
the same accounts, and the share is exact in expectation for any book.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["assign_holdout"]


def assign_holdout(
    account_ids: Sequence[str] | pd.Series,
    flagged: np.ndarray | pd.Series,
    as_of: object,
    *,
    share: float,
    seed: int = 0,
) -> np.ndarray:
    """Which flagged accounts are held out this scoring date.

    Parameters
    ----------
    account_ids : sequence of str, shape (n,)
        The scored accounts (compared as text).
    flagged : array-like of bool, shape (n,)
        The accounts a CSM would work.
    as_of : object
        The scoring date (any value with a stable ``str``).
    share : float
        Share of flagged accounts to hold out, 0 <= share < 1 (0 = none).
    seed : int
        Changes the draw (the same seed, ids and date give the same holdout).

    Returns
    -------
    numpy.ndarray of bool, shape (n,)
        True for held-out accounts (always a subset of `flagged`).

    Raises
    ------
    ValueError
        When `share` is outside [0, 1) or the ids and flags differ in length.

    Examples
    --------
    >>> ids = [f"A{i}" for i in range(10000)]
    >>> held = assign_holdout(ids, np.ones(10000, bool), "2026-11-02", share=0.2)
    >>> bool(0.18 < held.mean() < 0.22)
    True
    >>> bool((held == assign_holdout(ids, np.ones(10000, bool), "2026-11-02", share=0.2)).all())
    True
    """
    if not 0.0 <= share < 1.0:
        raise ValueError(f"holdout share must be in [0, 1), got {share}")
    mask = np.asarray(flagged, dtype=bool)
    ids = pd.Series(np.asarray(account_ids, dtype=object)).astype(str)
    if len(ids) != mask.shape[0]:
        raise ValueError(f"{len(ids)} account ids but {mask.shape[0]} flags")
    if share == 0.0 or len(ids) == 0:
        return np.zeros(mask.shape[0], dtype=bool)
    keyed = f"{seed}|{as_of}|" + ids
    h = pd.util.hash_pandas_object(keyed, index=False).to_numpy(dtype=np.uint64)
    u = (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    return mask & (u < share)
