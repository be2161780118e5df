"""Probability calibration on 1-D raw scores.

The calibrator maps one column of raw probabilities (or any score where higher means
"more likely") to calibrated probabilities. Working on 1-D scores rather than on a
wrapped model lets evaluation code refit it every quarter on matured outcomes without
touching the booster. ``method='auto'`` picks isotonic or sigmoid (Platt on the logit)
by the Brier score on held-out rows of the calibration slice.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

METHODS = ("auto", "isotonic", "sigmoid")
_EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(q) - np.log1p(-q)


def _fit_sigmoid(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling on logit(p) with Platt's smoothed targets; returns (slope, intercept)."""
    z = _logit(p)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = w[0] * z + w[1]
        # log(1 + exp(s)) - t * s, stable; gradient uses sigmoid(s) - t
        val = np.logaddexp(0.0, s) - t * s
        r = 0.5 * (1.0 + np.tanh(0.5 * s)) - t
        return float(val.sum()), np.array([float(r @ z), float(r.sum())])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def _apply_sigmoid(p: np.ndarray, coef: tuple[float, float]) -> np.ndarray:
    s = coef[0] * _logit(p) + coef[1]
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def _fit_method(method: str, p: np.ndarray, y: np.ndarray) -> Any:
    if method == "isotonic":
        return IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return _fit_sigmoid(p, y)


def _apply_method(method: str, model: Any, p: np.ndarray) -> np.ndarray:
    out = model.predict(p) if method == "isotonic" else _apply_sigmoid(p, model)
    return np.clip(out, _EPS, 1.0 - _EPS)


def _holdout_splits(
    y: np.ndarray, groups: np.ndarray | None, *, n_folds: int, time_ordered: bool, seed: int | None
) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Index pairs (fit, held out) used to compare methods, and the name of the scheme."""
    if time_ordered and groups is not None:
        order = np.unique(groups)
        if len(order) >= 2:
            n_hold = max(1, len(order) // 3)
            held = np.isin(groups, order[-n_hold:])
            if y[~held].min() != y[~held].max() and y[held].min() != y[held].max():
                return "time", [(np.flatnonzero(~held), np.flatnonzero(held))]
    n_minor = int(min(y.sum(), len(y) - y.sum()))
    k = min(n_folds, n_minor)
    if k < 2:
        return "none", []
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return "kfold", list(cv.split(np.zeros(len(y)), y))


class ProbabilityCalibrator(BaseEstimator):
    """Map 1-D raw probabilities to calibrated probabilities.

    Parameters
    ----------
    method : {'auto', 'isotonic', 'sigmoid'}, default='auto'
        'sigmoid' fits ``sigmoid(a * logit(p) + b)`` (Platt scaling on the logit);
        'isotonic' fits a monotone step function; 'auto' fits both on part of the data,
        scores them by Brier on the rest, and keeps the better one refitted on all rows.
    n_folds : int, default=5
        Stratified folds for the 'auto' comparison when no time order is given.
    time_ordered : bool, default=True
        With ``groups`` (e.g. snapshot dates) of at least two values, 'auto' fits on the
        earlier dates and scores on the latest third of them, as the calibrator will be
        used on later data.
    random_state : int or None, default=None
        Seed of the fold shuffling.

    Attributes
    ----------
    method_ : str
        The method in use ('isotonic' or 'sigmoid').
    brier_ : dict[str, float]
        Held-out Brier score of each candidate (empty unless method='auto').
    selection_ : str
        How candidates were compared: 'time', 'kfold', 'none' (too few positives: sigmoid)
        or 'fixed'.
    n_samples_fit_ : int

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p_true = rng.uniform(0, 0.3, 5000)
    >>> y = rng.binomial(1, p_true)
    >>> cal = ProbabilityCalibrator(method="sigmoid").fit(np.sqrt(p_true), y)
    >>> bool(abs(cal.predict(np.sqrt(p_true)).mean() - y.mean()) < 0.01)
    True
    """

    def __init__(
        self,
        method: str = "auto",
        *,
        n_folds: int = 5,
        time_ordered: bool = True,
        random_state: int | None = None,
    ):
        self.method = method
        self.n_folds = n_folds
        self.time_ordered = time_ordered
        self.random_state = random_state

    def fit(self, p: Any, y: Any, *, groups: Any = None) -> ProbabilityCalibrator:
        """Fit on raw scores `p` of shape (n_samples,) and binary outcomes `y`.

        Parameters
        ----------
        p : array-like of shape (n_samples,)
            Raw probabilities (or scores; higher = more likely).
        y : array-like of shape (n_samples,)
            Outcomes 0/1.
        groups : array-like of shape (n_samples,), optional
            Time order of the rows (e.g. ``as_of``), used by the 'auto' choice.

        Returns
        -------
        self
        """
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r}; expected one of {METHODS}")
        p_arr = _as_1d(p, "p")
        y_arr = _as_1d(y, "y")
        if len(p_arr) != len(y_arr):
            raise ValueError(f"p has {len(p_arr)} rows but y has {len(y_arr)}")
        ok = np.isfinite(p_arr) & np.isfinite(y_arr)
        if not ok.all():
            raise ValueError(f"{int((~ok).sum())} of {len(ok)} calibration rows have NaN p or y")
        if not np.isin(y_arr, (0.0, 1.0)).all():
            raise ValueError("y must hold only 0 and 1")
        if y_arr.min() == y_arr.max():
            raise ValueError(
                f"calibration needs both outcomes; all {len(y_arr)} rows have y={y_arr[0]:g}"
            )
        g = None if groups is None else np.asarray(groups)
        self.brier_: dict[str, float] = {}
        if self.method == "auto":
            self.selection_, splits = _holdout_splits(
                y_arr,
                g,
                n_folds=self.n_folds,
                time_ordered=self.time_ordered,
                seed=self.random_state,
            )
            self.brier_ = _compare_methods(p_arr, y_arr, splits)
            # ties go to sigmoid: two parameters extrapolate more gently than steps
            self.method_ = (
                "isotonic"
                if self.brier_ and self.brier_["isotonic"] < self.brier_["sigmoid"]
                else "sigmoid"
            )
        else:
            self.selection_ = "fixed"
            self.method_ = self.method
        self.model_ = _fit_method(self.method_, p_arr, y_arr)
        self.n_samples_fit_ = len(p_arr)
        return self

    def predict(self, p: Any) -> np.ndarray:
        """Calibrated probabilities of shape (n_samples,), clipped to [1e-6, 1 - 1e-6]."""
        check_is_fitted(self, "model_")
        p_arr = _as_1d(p, "p")
        out = np.full(len(p_arr), np.nan)
        ok = np.isfinite(p_arr)
        out[ok] = _apply_method(self.method_, self.model_, p_arr[ok])
        return out

    transform = predict


def _compare_methods(
    p: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> dict[str, float]:
    """Pooled held-out Brier score of each method over the splits."""
    if not splits:
        return {}
    out: dict[str, float] = {}
    for method in ("isotonic", "sigmoid"):
        sq_err = 0.0
        n = 0
        for fit_idx, held_idx in splits:
            model = _fit_method(method, p[fit_idx], y[fit_idx])
            pred = _apply_method(method, model, p[held_idx])
            sq_err += float(((pred - y[held_idx]) ** 2).sum())
            n += len(held_idx)
        out[method] = sq_err / n
    return out


def _as_1d(a: Any, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one score per row), got shape {arr.shape}")
    return arr


class CalibratedScoreMixin:
    """`predict_proba` / `predict` of models that produce a raw score and own a calibrator.

    The host class provides ``predict_raw(X) -> (n_samples,)`` and sets ``calibrator_``
    (a fitted `ProbabilityCalibrator`, or None to return raw scores) and ``classes_``.
    """

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, shape (n_samples, 2): columns P(y=0), P(y=1)."""
        check_is_fitted(self, "calibrator_")
        raw = self.predict_raw(X)  # type: ignore[attr-defined]
        p1 = raw if self.calibrator_ is None else self.calibrator_.predict(raw)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """1 where the calibrated probability reaches `threshold`, else 0."""
        return (self.predict_proba(X)[:, 1] >= threshold).astype(np.int64)

    def _fit_calibration(self, X_calib: Any, y_calib: Any, groups: Any = None) -> None:
        """Set ``calibrator_`` from this model's raw scores on a later slice (None without one).

        The host class has ``calibration`` and ``random_state`` parameters.
        """
        self.calibrator_ = None
        if X_calib is not None:
            self.calibrator_ = fit_calibrator(
                self.predict_raw(X_calib),  # type: ignore[attr-defined]
                check_binary(y_calib, "y_calib"),
                method=self.calibration,  # type: ignore[attr-defined]
                groups=groups,
                random_state=self.random_state,  # type: ignore[attr-defined]
            )


def check_binary(y: Any, what: str) -> np.ndarray:
    """Labels as a float array of 0/1; unknown (NaN) or other values are an error."""
    arr = np.asarray(y, dtype=np.float64).ravel()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{what} must hold only 0/1 labels (drop rows whose label is unknown)")
    return arr


def fit_calibrator(
    raw: np.ndarray, y: Any, *, method: str, groups: Any = None, random_state: int | None = None
) -> ProbabilityCalibrator:
    """A `ProbabilityCalibrator` fitted on raw scores of the calibration slice."""
    return ProbabilityCalibrator(method=method, random_state=random_state).fit(
        raw, y, groups=groups
    )
