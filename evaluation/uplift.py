"""Judging who-to-touch rankings: uplift (Qini-style) curves and their areas.

In the field, the effect of a touch on one account is never seen, so uplift curves are
estimated from treated and control groups. In simulation each account's true effect is
known (`simulator.rollout.Rollout.touch_value`), so a ranking is judged directly: the
curve is the cumulative true effect of the top-k accounts of the ranking, for k = 0..n.
Its area above the random line, divided by the oracle's, is the normalised AUUC
(1 = the oracle's order, 0 = no better than random, < 0 = worse).
"""

from __future__ import annotations

import numpy as np

__all__ = ["observed_save_rate", "save_rate_of_holdout", "uplift_curve", "uplift_summary"]


def uplift_curve(true_effect: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Cumulative true effect of the accounts taken in decreasing `score`, shape (n + 1,).

    Parameters
    ----------
    true_effect : array-like of shape (n,)
        Each account's true effect of a touch.
    score : array-like of shape (n,)
        The ranking (higher = touch first); ties keep the input order.

    Returns
    -------
    numpy.ndarray of shape (n + 1,)
        Entry k is the total effect of the top k accounts (entry 0 is 0).

    Examples
    --------
    >>> uplift_curve(np.array([0.0, 2.0, 1.0]), np.array([0.1, 0.9, 0.5]))
    array([0., 2., 3., 3.])
    """
    effect = np.asarray(true_effect, dtype=float)
    order = np.argsort(-np.asarray(score, dtype=float), kind="stable")
    return np.concatenate([[0.0], np.cumsum(effect[order])])


def uplift_summary(true_effect: np.ndarray, score: np.ndarray, top_share: float = 0.1) -> dict:
    """Normalised AUUC, Qini coefficient and the effect captured in the top share.

    Parameters
    ----------
    true_effect : array-like of float, shape (n,)
        Each account's true effect of a touch.
    score : array-like of float, shape (n,)
        The ranking to judge (higher = touch first).
    top_share : float
        Share of accounts a team can touch (rounded to at least one account).

    Returns
    -------
    dict
        ``auuc_normalised`` (oracle = 1, random = 0; NaN when the oracle is no better than
        random), ``qini`` (area between the curve and the random line, per account, in the
        effect's unit), ``top_share``, ``top_effect`` (true effect of the top share),
        ``top_effect_oracle`` and ``top_effect_random`` (the top share's expected effect
        under a random order).

    Raises
    ------
    ValueError
        When there is no account.
    """
    effect = np.asarray(true_effect, dtype=float)
    n = effect.shape[0]
    if n == 0:
        raise ValueError("no accounts to judge")
    curve = uplift_curve(effect, score)
    best = uplift_curve(effect, effect)
    line = np.linspace(0.0, effect.sum(), n + 1)
    area = float(np.trapezoid(curve - line)) / n
    best_area = float(np.trapezoid(best - line)) / n
    k = max(1, int(round(top_share * n)))
    return {
        "auuc_normalised": round(area / best_area, 4) if best_area > 0 else float("nan"),
        "qini": round(area, 4),
        "top_share": top_share,
        "top_effect": round(float(curve[k]), 2),
        "top_effect_oracle": round(float(best[k]), 2),
        "top_effect_random": round(float(effect.sum() * k / n), 2),
    }


def observed_save_rate(
    churned: np.ndarray, touched: np.ndarray, z: float = 1.96
) -> dict[str, float | int]:
    """Churn rate of touched vs held-out accounts, and the difference with a 95% interval.

    The save rate is the held-out churn rate minus the touched churn rate (a Wald
    interval on the difference of two proportions). Only meaningful when the held-out
    accounts were chosen at random among the same flagged accounts.

    Parameters
    ----------
    churned : array-like of bool, shape (n,)
        Whether each account churned.
    touched : array-like of bool, shape (n,)
        Whether it was touched (False = held out).
    z : float
        Normal quantile of the interval (1.96: 95%).

    Returns
    -------
    dict
        ``touched``, ``held_out`` (counts), ``churn_rate_touched``, ``churn_rate_held_out``,
        ``save_rate`` and its interval ``save_rate_low``, ``save_rate_high`` (rounded to
        4 decimals).

    Raises
    ------
    ValueError
        When either group is empty.
    """
    c = np.asarray(churned, dtype=bool)
    t = np.asarray(touched, dtype=bool)
    n1, n0 = int(t.sum()), int((~t).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError(f"need touched and held-out accounts (touched {n1}, held out {n0})")
    p1, p0 = c[t].mean(), c[~t].mean()
    se = float(np.sqrt(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0))
    diff = float(p0 - p1)
    return {
        "touched": n1,
        "held_out": n0,
        "churn_rate_touched": round(float(p1), 4),
        "churn_rate_held_out": round(float(p0), 4),
        "save_rate": round(diff, 4),
        "save_rate_low": round(diff - z * se, 4),
        "save_rate_high": round(diff + z * se, 4),
    }


def save_rate_of_holdout(scores) -> dict[str, float | int] | None:
    """Observed save rate of the issued at-risk flags whose outcome matured.

    Parameters
    ----------
    scores : pandas.DataFrame
        Issued scores with ``at_risk``, ``holdout`` (the randomised holdout of the scoring
        flow) and ``label_churn`` (NaN = not matured).

    Returns
    -------
    dict or None
        `observed_save_rate` of worked vs held-out at-risk account-weeks; None when a
        column is missing, or the window holds no held-out or no worked at-risk account
        with a matured outcome.
    """
    need = {"at_risk", "holdout", "label_churn"}
    if not need <= set(scores.columns):
        return None
    rows = scores[scores["at_risk"].fillna(False).astype(bool) & scores["label_churn"].notna()]
    held = rows["holdout"].fillna(False).astype(bool).to_numpy()
    if held.all() or not held.any():
        return None
    return observed_save_rate(rows["label_churn"].to_numpy(float) == 1.0, ~held)
