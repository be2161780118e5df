"""Quarterly recalibration of probabilities and alert thresholds.

Every quarter the scores issued earlier whose outcomes have matured are used to refit
the probability calibrator and to choose two thresholds:

* churn alert: the threshold that gives each CSM a workable number of flags a week
  (a band, default 10-20) at the best precision;
* expansion-ready: the lowest threshold whose precision reaches a target (most recall
  at that precision).

**Weekly flags per CSM.** A *scoring week* is a Monday-to-Sunday week holding at least one
scoring run (an ``as_of``). An account scored more than once in a week counts once, with
its latest score of that week (the list a CSM sees is the latest run). For a threshold
``t``::

    flags_per_csm_week(t) = #{(account, scoring week): p >= t} / n_scoring_weeks / n_csms

With weekly scoring this is the average size of a CSM's weekly alert list. A monthly
snapshot panel counts each snapshot as one scoring week: the standing list a weekly run
would show, not the number of new alerts. ``n_csms`` is the number of distinct non-null
``csm_id`` in the window unless it is given. Precision and recall are computed over the
same account-weeks: precision = flagged account-weeks followed by the event / flagged
account-weeks; recall = flagged positives / all positives.

The calibrators are refit with :func:`models.calibrate.fit_calibrator`, as in training.
The result's ``as_dict()`` is what :func:`evaluation.thresholds_file.thresholds_to_yaml`
writes to ``configs/thresholds/<quarter>.yaml``; scoring reads the newest file with
:func:`evaluation.thresholds_file.load_latest_thresholds`. Each calibrator travels in the
file as its numbers (``ProbabilityCalibrator.to_params``), which
:func:`models.portable.apply_calibration` evaluates, so scoring needs neither the fitted
object nor pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation.config import ThresholdConfig
from evaluation.metrics import expected_calibration_error
from evaluation.thresholds_file import yaml_safe
from features.errors import NrrcastError
from features.names import TARGETS
from models.calibrate import fit_calibrator

WEEK_ANCHOR = pd.Timestamp("1970-01-05")  # a Monday: scoring weeks run Monday-Sunday


class ThresholdError(NrrcastError, ValueError):
    """No threshold meets the requested flag band or precision target (a failed check)."""


# --------------------------------------------------------------------------- quarters


def quarter_bounds(quarter: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Start (inclusive) and end (exclusive) of a quarter label such as ``"2026Q3"``.

    Parameters
    ----------
    quarter : str
        A label like ``"2026Q3"``.

    Returns
    -------
    (Timestamp, Timestamp)
        First day of the quarter and first day of the next one.

    Raises
    ------
    ValueError
        For a label that is not a quarter.

    Examples
    --------
    >>> quarter_bounds("2026Q3")
    (Timestamp('2026-07-01 00:00:00'), Timestamp('2026-10-01 00:00:00'))
    """
    try:
        period = pd.Period(str(quarter).strip(), freq="Q")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"quarter {quarter!r}: expected a label like '2026Q3'") from exc
    return period.start_time.normalize(), (period + 1).start_time.normalize()


def quarter_label(ts: object) -> str:
    """The quarter label of a timestamp.

    Parameters
    ----------
    ts : timestamp-like

    Returns
    -------
    str
        E.g. ``"2026Q3"``.

    Examples
    --------
    >>> quarter_label("2026-08-15")
    '2026Q3'
    """
    return str(pd.Period(pd.Timestamp(ts), freq="Q"))


def matured_window(scores: pd.DataFrame, *, quarter: str, horizon_days: int = 60) -> pd.DataFrame:
    """Scores whose outcome matured during the quarter before ``quarter``.

    A score issued at ``as_of`` matures at ``as_of + horizon_days``; the thresholds that
    take effect at the start of ``quarter`` are fitted on the scores that matured during
    the previous quarter, so each score is used by exactly one calibration and nothing
    after the quarter start is looked at.

    Parameters
    ----------
    scores : DataFrame
        Issued scores with ``as_of``.
    quarter : str
        The quarter the thresholds take effect in, e.g. ``"2026Q3"``.
    horizon_days : int, default 60
        Label horizon.

    Returns
    -------
    DataFrame
        The rows of `scores` in the window.
    """
    _require(scores, ["as_of"], "scores")
    start, _ = quarter_bounds(quarter)
    prev_start, _ = quarter_bounds(str(pd.Period(start, freq="Q") - 1))
    matures = pd.to_datetime(scores["as_of"]) + pd.Timedelta(days=horizon_days)
    return scores.loc[(matures >= prev_start) & (matures < start)]


def join_outcomes(scores: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Issued scores with their outcomes (``label_*`` of the feature table) attached.

    ``labels`` holds ``account_id, as_of`` and ``label_churn`` / ``label_expand`` (NaN while
    the horizon is not covered). Scores without a feature row keep NaN outcomes (they are
    then dropped and counted by :func:`calibrate_thresholds`).

    Parameters
    ----------
    scores : DataFrame
        Issued scores with ``account_id, as_of``; their own ``label_*`` are replaced.
    labels : DataFrame
        One row per ``(account_id, as_of)`` with the label columns.

    Returns
    -------
    DataFrame
        `scores` with ``as_of`` as ``datetime64[us]`` and the labels joined on.

    Raises
    ------
    ValueError
        For missing columns or duplicate ``(account_id, as_of)`` labels.
    """
    _require(scores, ["account_id", "as_of"], "scores")
    cols = [y for _, y in TARGETS.values()]
    _require(labels, ["account_id", "as_of", *cols], "labels")
    right = labels[["account_id", "as_of", *cols]].assign(
        as_of=pd.to_datetime(labels["as_of"]).astype("datetime64[us]")
    )
    if right.duplicated(["account_id", "as_of"]).any():
        n = int(right.duplicated(["account_id", "as_of"]).sum())
        raise ValueError(f"labels: {n} duplicate (account_id, as_of) rows")
    left = scores.drop(columns=[c for c in cols if c in scores.columns])
    left = left.assign(as_of=pd.to_datetime(left["as_of"]).astype("datetime64[us]"))
    return left.merge(right, on=["account_id", "as_of"], how="left")


# --------------------------------------------------------------------------- flag curves


def scoring_weeks(as_of: pd.Series) -> np.ndarray:
    """Index of the Monday-to-Sunday week of each ``as_of``.

    Parameters
    ----------
    as_of : Series
        Scoring dates.

    Returns
    -------
    ndarray of int
        Weeks since Monday 1970-01-05.
    """
    days = (pd.to_datetime(as_of) - WEEK_ANCHOR).dt.days.to_numpy()
    return np.floor_divide(days, 7)


def account_weeks(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per (account, scoring week): the latest score of that week.

    Parameters
    ----------
    scores : DataFrame
        Scores with ``account_id, as_of``.

    Returns
    -------
    DataFrame
        The kept rows, sorted by account and week, with the week index in ``_week``.
    """
    _require(scores, ["account_id", "as_of"], "scores")
    out = scores.assign(_week=scoring_weeks(scores["as_of"]))
    out = out.sort_values(["account_id", "_week", "as_of"], kind="stable")
    return out.drop_duplicates(["account_id", "_week"], keep="last")


def flag_curve(p: np.ndarray, y: np.ndarray, *, n_weeks: int, n_csms: int) -> pd.DataFrame:
    """Flags, precision, recall and weekly flags per CSM at every distinct threshold.

    Parameters
    ----------
    p : ndarray of shape (n,)
        Probabilities, one per account-week.
    y : ndarray of shape (n,)
        Outcomes 1.0/0.0 of the same account-weeks.
    n_weeks, n_csms : int
        Scoring weeks in the window and CSMs sharing the flags.

    Returns
    -------
    DataFrame
        One row per distinct value of ``p`` (descending): ``threshold`` (flag when
        ``p >= threshold``), ``flags``, ``true_flags``, ``precision``, ``recall``,
        ``flags_per_csm_week``.
    """
    p, y = np.asarray(p, float), np.asarray(y, float)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    tp = np.cumsum(ys)
    # the last position of each run of equal scores: flagging at that value flags them all
    last = np.flatnonzero(np.r_[ps[1:] != ps[:-1], True])
    flags = last + 1
    positives = ys.sum()
    return pd.DataFrame(
        {
            "threshold": ps[last],
            "flags": flags,
            "true_flags": tp[last],
            "precision": tp[last] / flags,
            "recall": tp[last] / positives if positives > 0 else np.zeros(len(last)),
            "flags_per_csm_week": flags / n_weeks / n_csms,
        }
    )


def evaluate_threshold(
    p: np.ndarray, y: np.ndarray, threshold: float, *, n_weeks: int, n_csms: int
) -> dict[str, float]:
    """Precision, recall and flag volume of ``p >= threshold`` on account-weeks.

    Parameters
    ----------
    p, y : ndarray of shape (n,)
        Probabilities and outcomes 1.0/0.0 of the account-weeks.
    threshold : float
        Flag when ``p >= threshold``.
    n_weeks, n_csms : int
        Scoring weeks in the window and CSMs sharing the flags.

    Returns
    -------
    dict
        ``threshold``, ``flags``, ``precision``, ``recall`` (NaN without flags or
        positives) and ``flags_per_csm_week``.
    """
    p, y = np.asarray(p, float), np.asarray(y, float)
    flagged = p >= threshold
    n_flags = int(flagged.sum())
    tp = float(y[flagged].sum())
    pos = float(y.sum())
    return {
        "threshold": float(threshold),
        "flags": n_flags,
        "precision": tp / n_flags if n_flags else float("nan"),
        "recall": tp / pos if pos else float("nan"),
        "flags_per_csm_week": n_flags / n_weeks / n_csms,
    }


# --------------------------------------------------------------------------- choices


def choose_churn_threshold(
    curve: pd.DataFrame, *, band: tuple[float, float], on_unmet: str = "nearest"
) -> dict[str, Any]:
    """The threshold with the best precision whose weekly flags per CSM lie in ``band``.

    Ties on precision go to the lower threshold (more recall). When no threshold gives a
    volume inside the band (too few accounts, or ties that jump over it), ``on_unmet``
    decides: ``"raise"`` raises :class:`ThresholdError`; ``"nearest"`` takes the
    threshold whose volume is closest to the band (ties: best precision) and sets
    ``status`` to ``"below_band"`` or ``"above_band"``. Otherwise ``status`` is ``"ok"``.

    Parameters
    ----------
    curve : DataFrame
        A :func:`flag_curve`.
    band : (float, float)
        Lowest and highest weekly flags per CSM.
    on_unmet : {"nearest", "raise"}, default "nearest"

    Returns
    -------
    dict
        ``threshold, flags, precision, recall, flags_per_csm_week, status`` (and
        ``message`` when the band is not met).
    """
    lo, hi = band
    rate = curve["flags_per_csm_week"].to_numpy()
    inside = (rate >= lo) & (rate <= hi)
    if inside.any():
        pick = _best(curve, inside, "precision")
        return _choice(curve, pick, "ok")
    gap = np.where(rate < lo, lo - rate, rate - hi)
    nearest = np.isclose(gap, gap.min(), rtol=0, atol=1e-12)
    pick = _best(curve, nearest, "precision")
    status = "below_band" if rate[pick] < lo else "above_band"
    msg = (
        f"no churn threshold gives {lo:g}-{hi:g} flags per CSM a week: the nearest gives "
        f"{rate[pick]:.2f} ({int(curve['flags'].iloc[pick])} flags); volumes available "
        f"range {rate.min():.2f}-{rate.max():.2f}"
    )
    if on_unmet == "raise":
        raise ThresholdError(msg)
    out = _choice(curve, pick, status)
    out["message"] = msg
    return out


def choose_expand_threshold(
    curve: pd.DataFrame,
    *,
    target_precision: float,
    min_flags: int = 20,
    on_unmet: str = "nearest",
) -> dict[str, Any]:
    """The lowest threshold whose precision reaches ``target_precision``.

    Only thresholds flagging at least ``min_flags`` account-weeks are considered (a
    precision over a handful of rows is noise). When none reaches the target,
    ``on_unmet="raise"`` raises :class:`ThresholdError`; ``"nearest"`` takes the best
    precision available (ties: lower threshold) with ``status="target_not_met"``. When
    the base rate itself reaches the target every account is flagged and ``status`` is
    ``"target_below_base_rate"``.

    Parameters
    ----------
    curve : DataFrame
        A :func:`flag_curve`.
    target_precision : float
        Precision the threshold must reach.
    min_flags : int, default 20
        Fewest flagged account-weeks a threshold may have.
    on_unmet : {"nearest", "raise"}, default "nearest"

    Returns
    -------
    dict
        ``threshold, flags, precision, recall, flags_per_csm_week, status`` (and
        ``message`` when the target is not met).
    """
    enough = curve["flags"].to_numpy() >= min_flags
    if not enough.any():
        enough = np.ones(len(curve), dtype=bool)
        status_unmet = "too_few_flags"
    else:
        status_unmet = "target_not_met"
    prec = curve["precision"].to_numpy()
    ok = enough & (prec >= target_precision - 1e-12)
    if ok.any():
        pick = int(np.flatnonzero(ok)[-1])  # curve is sorted by threshold descending
        if pick == len(curve) - 1 and len(curve) > 1:
            # the base rate itself reaches the target: the rule flags every account
            out = _choice(curve, pick, "target_below_base_rate")
            out["message"] = (
                f"the base rate {prec[pick]:.3f} already reaches precision "
                f"{target_precision:.2f}: every account is flagged; raise the target"
            )
            return out
        return _choice(curve, pick, "ok")
    pick = _best(curve, enough, "precision")
    msg = (
        f"no expansion threshold reaches precision {target_precision:.2f} with at least "
        f"{min_flags} flags: the best is {prec[pick]:.3f} at {curve['threshold'].iloc[pick]:.4f}"
    )
    if on_unmet == "raise":
        raise ThresholdError(msg)
    out = _choice(curve, pick, status_unmet)
    out["message"] = msg
    return out


def _best(curve: pd.DataFrame, mask: np.ndarray, column: str) -> int:
    """Row index of the highest ``column`` among ``mask``; ties go to the lowest threshold."""
    values = np.where(mask, curve[column].to_numpy(), -np.inf)
    best = np.flatnonzero(np.isclose(values, values.max(), rtol=0, atol=1e-12) & mask)
    return int(best[-1])


def _choice(curve: pd.DataFrame, pick: int, status: str) -> dict[str, Any]:
    row = curve.iloc[pick]
    return {
        "threshold": float(row["threshold"]),
        "flags": int(row["flags"]),
        "precision": float(row["precision"]),
        "recall": float(row["recall"]),
        "flags_per_csm_week": float(row["flags_per_csm_week"]),
        "status": status,
    }


# --------------------------------------------------------------------------- the quarterly run


@dataclass
class ThresholdCalibration:
    """Outcome of one quarterly calibration.

    ``as_dict()`` is what goes to ``configs/thresholds/<quarter>.yaml``;
    ``calibrators`` holds the fitted objects (for MLflow), keyed by target.
    """

    quarter: str
    churn: dict[str, Any]
    expand: dict[str, Any]
    calibrator: dict[str, Any]
    metrics: dict[str, Any]
    previous: dict[str, Any] | None
    window: dict[str, Any]
    calibrators: dict[str, Any] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The thresholds file's content.

        Returns
        -------
        dict
            Plain and YAML-safe (no numpy types): ``quarter``, ``churn_threshold``,
            ``expand_threshold``, ``churn``, ``expand``, ``calibrator``, ``metrics``,
            ``previous`` and ``window``.
        """
        return yaml_safe(
            {
                "quarter": self.quarter,
                "churn_threshold": self.churn["threshold"],
                "expand_threshold": self.expand["threshold"],
                "churn": self.churn,
                "expand": self.expand,
                "calibrator": self.calibrator,
                "metrics": self.metrics,
                "previous": self.previous,
                "window": self.window,
            }
        )


def calibrate_thresholds(
    scores: pd.DataFrame,
    *,
    quarter: str,
    horizon_days: int = 60,
    previous: Mapping[str, Any] | None = None,
    n_csms: int | None = None,
    config: ThresholdConfig | None = None,
    window: str = "matured_last_quarter",
) -> ThresholdCalibration:
    """Refit the calibrators and choose the churn and expansion thresholds for ``quarter``.

    Parameters
    ----------
    scores : DataFrame
        Issued scores with outcomes: ``account_id``, ``as_of``, ``csm_id`` (optional when
        ``n_csms`` is given), for each target ``p_<target>_raw`` (or ``p_<target>``) and
        ``label_<target>`` (1.0/0.0, NaN = not matured; such rows are dropped and counted).
        ``p_<target>`` is the probability as issued: last quarter's thresholds are judged
        on it.
    quarter : str
        The quarter the thresholds take effect in, e.g. ``"2026Q3"``.
    horizon_days : int, default 60
        Label horizon; with ``window="matured_last_quarter"`` only scores whose outcome
        matured during the quarter before ``quarter`` are used (see :func:`matured_window`).
    previous : mapping, optional
        Last quarter's thresholds file (as returned by
        :func:`evaluation.thresholds_file.load_thresholds`) or
        ``{"churn_threshold": .., "expand_threshold": ..}``; evaluated on the same window.
    n_csms : int, optional
        CSMs sharing the flags; default: distinct non-null ``csm_id`` in the window.
    config : ThresholdConfig, optional
        Band, target precision, calibration method, unmet policy.
    window : {"matured_last_quarter", "all"}
        ``"all"`` uses every row given (the caller selected the window).

    Returns
    -------
    ThresholdCalibration
    """
    cfg = config or ThresholdConfig()
    rows = _window_rows(scores, quarter, horizon_days, window)
    weeks = account_weeks(rows)
    n_weeks = int(weeks["_week"].nunique())
    csms = _n_csms(weeks, n_csms)
    chosen: dict[str, dict[str, Any]] = {}
    tables: dict[str, Any] = {}
    fitted: dict[str, Any] = {}
    metrics: dict[str, Any] = {"n_scores": int(len(rows)), "n_account_weeks": int(len(weeks))}
    prev_eval: dict[str, Any] = {}
    for target, (p_col, y_col) in TARGETS.items():
        sub, raw_col = _matured_rows(weeks, target)
        metrics[f"{target}_unmatured_dropped"] = int(len(weeks) - len(sub))
        p_raw = np.array(sub[raw_col], dtype="float64")
        y = np.array(sub[y_col], dtype="float64")
        groups = pd.to_datetime(sub["as_of"]).to_numpy()
        cal = fit_calibrator(p_raw, y, cfg.calibration_method, groups=groups)
        p_new = cal.predict(p_raw)
        fitted[target] = cal
        tables[target] = {"method": cal.method_, "input": raw_col, **cal.to_params()}
        curve = flag_curve(p_new, y, n_weeks=n_weeks, n_csms=csms)
        chosen[target] = _choose(target, curve, cfg)
        issued = np.array(sub[p_col] if p_col in sub.columns else sub[raw_col], dtype="float64")
        metrics[f"{target}_base_rate"] = float(y.mean())
        metrics[f"{target}_ece_issued"] = _ece(y, issued)
        metrics[f"{target}_ece_recalibrated"] = _ece(y, p_new)
        before = None if previous is None else _prev_threshold(previous, target)
        if before is not None:
            prev_eval[target] = evaluate_threshold(issued, y, before, n_weeks=n_weeks, n_csms=csms)
    if previous is not None:
        prev_eval["quarter"] = previous.get("quarter")
    as_of = pd.to_datetime(rows["as_of"])
    return ThresholdCalibration(
        quarter=str(pd.Period(quarter, freq="Q")),
        churn=chosen["churn"],
        expand=chosen["expand"],
        calibrator=tables,
        metrics=metrics,
        previous=prev_eval or None,
        window={
            "rule": window,
            "horizon_days": horizon_days,
            "as_of_min": str(as_of.min().date()),
            "as_of_max": str(as_of.max().date()),
            "scoring_weeks": n_weeks,
            "n_csms": csms,
        },
        calibrators=fitted,
    )


def _window_rows(
    scores: pd.DataFrame, quarter: str, horizon_days: int, window: str
) -> pd.DataFrame:
    """The scores a quarter's calibration uses; an empty window is an error."""
    if window not in {"matured_last_quarter", "all"}:
        raise ValueError(f"window={window!r}: expected 'matured_last_quarter' or 'all'")
    quarter_bounds(quarter)
    if window == "all":
        rows = scores
    else:
        rows = matured_window(scores, quarter=quarter, horizon_days=horizon_days)
    if len(rows) == 0:
        raise ValueError(
            f"scores: no rows in the calibration window for {quarter} "
            f"({window}, horizon {horizon_days} d) out of {len(scores)} rows"
        )
    return rows


def _matured_rows(weeks: pd.DataFrame, target: str) -> tuple[pd.DataFrame, str]:
    """Account-weeks of `target` whose outcome is known, and the raw score column to refit on.

    Both outcomes must be present: a calibrator cannot be fitted on one.
    """
    p_col, y_col = TARGETS[target]
    raw_col = f"{p_col}_raw" if f"{p_col}_raw" in weeks.columns else p_col
    _require(weeks, [raw_col, y_col], "scores")
    sub = weeks.loc[weeks[y_col].notna().to_numpy()]
    if len(sub) == 0 or sub[y_col].nunique() < 2:
        raise ValueError(
            f"scores.{y_col}: needs both outcomes among matured rows to calibrate "
            f"{target} (got {len(sub)} rows, {int(sub[y_col].sum())} positive)"
        )
    return sub, raw_col


def _choose(target: str, curve: pd.DataFrame, cfg: ThresholdConfig) -> dict[str, Any]:
    """The churn threshold in the flag band, or the expansion one at the target precision."""
    if target == "churn":
        band = [cfg.churn_flags_per_csm_week_min, cfg.churn_flags_per_csm_week_max]
        out = choose_churn_threshold(curve, band=(band[0], band[1]), on_unmet=cfg.on_unmet)
        out["band"] = band
        return out
    out = choose_expand_threshold(
        curve,
        target_precision=cfg.expand_target_precision,
        min_flags=cfg.expand_min_flags,
        on_unmet=cfg.on_unmet,
    )
    out["target_precision"] = cfg.expand_target_precision
    return out


def _n_csms(weeks: pd.DataFrame, n_csms: int | None) -> int:
    if n_csms is not None:
        if n_csms < 1:
            raise ValueError(f"n_csms={n_csms}: must be at least 1")
        return int(n_csms)
    if "csm_id" not in weeks.columns:
        raise ValueError("scores: no csm_id column; pass n_csms to count the CSMs")
    n = int(weeks["csm_id"].dropna().nunique())
    if n == 0:
        raise ValueError("scores.csm_id: all null in the window; pass n_csms")
    return n


def _prev_threshold(previous: Mapping[str, Any], target: str) -> float | None:
    value = previous.get(f"{target}_threshold")
    if value is None and isinstance(previous.get(target), Mapping):
        value = previous[target].get("threshold")
    return None if value is None else float(value)


def _ece(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> float:
    """ECE as :mod:`evaluation.metrics` defines it (equal-frequency bins)."""
    return float(expected_calibration_error(y, p, n_bins))


def _require(frame: pd.DataFrame, columns: list[str], table: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{table}: missing column(s) {missing} ({len(frame)} rows)")
