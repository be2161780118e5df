"""Probability calibration on 1-D raw scores.

The calibrator maps one column of raw probabilities (or any score where higher means
"more likely") to calibrated probabilities. Working on 1-D scores rather than on a
wrapped model lets evaluation code refit it every quarter on matured outcomes without
touching the booster.

Issued probabilities must rank accounts exactly as the model does: a step function
(isotonic) puts hundreds of accounts on the same value and loses PR-AUC, so
``method='auto'`` chooses among strictly increasing maps only:

- ``sigmoid``: Platt scaling on the logit, ``sigmoid(a * logit(p) + b)``;
- ``beta``: beta calibration (Kull et al. 2017), ``sigmoid(a ln p - b ln(1 - p) + c)``
  with ``a, b >= 0``;
- ``pchip``: smoothed isotonic, a monotone cubic (PCHIP) in logit space through the
  centres of the isotonic blocks, extended linearly beyond the outer blocks;

by held-out log loss. ``isotonic`` stays available as a fixed choice. Every fitted
calibrator is a handful of numbers (:meth:`ProbabilityCalibrator.to_params`), stored in
YAML or JSON and never pickled. One function turns those numbers and raw scores into
probabilities: :func:`models.portable.apply_calibration` (in the file the registered
MLflow model ships with, so the model, ``nrrcast score`` and the thresholds files agree
exactly); :func:`fit_calibrator` is the one way calibrators are fitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from models.portable import EPS, STORED_METHODS, apply_calibration, logit, sigmoid

METHODS = ("auto", "pchip", "beta", "sigmoid", "isotonic")
AUTO_CANDIDATES = ("pchip", "beta", "sigmoid")  # strictly increasing: ranking kept
_KNOT_CLIP = 1e-4  # block rates of 0 or 1 are pulled in before taking the logit


def _fit_sigmoid(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Platt scaling on logit(p) with Platt's smoothed targets."""
    z = logit(p)
    n_pos = float(y.sum())
    n_neg = float(len(y) - n_pos)
    t = np.where(y > 0, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = w[0] * z + w[1]
        # log(1 + exp(s)) - t * s, stable; gradient uses sigmoid(s) - t
        val = np.logaddexp(0.0, s) - t * s
        r = sigmoid(s) - t
        return float(val.sum()), np.array([float(r @ z), float(r.sum())])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    return {"method": "sigmoid", "a": float(res.x[0]), "b": float(res.x[1])}


def _fit_beta(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Beta calibration: logistic regression on (ln p, -ln(1 - p)) with non-negative slopes."""
    q = np.clip(p, EPS, 1.0 - EPS)
    f1, f2 = np.log(q), -np.log1p(-q)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = w[0] * f1 + w[1] * f2 + w[2]
        val = np.logaddexp(0.0, s) - y * s
        r = sigmoid(s) - y
        return float(val.sum()), np.array([float(r @ f1), float(r @ f2), float(r.sum())])

    res = minimize(
        loss,
        x0=np.array([1.0, 1.0, 0.0]),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None), (0.0, None), (None, None)],
    )
    a, b, c = (float(v) for v in res.x)
    if a + b <= 1e-9:  # a constant would tie every account: keep a tiny slope
        a = 1e-9
    return {"method": "beta", "a": a, "b": b, "c": c}


def _fit_pchip(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Smoothed isotonic: knots at the isotonic blocks' centres, in logit space.

    A knot is (mean logit of the block's raw scores, logit of its positive rate shrunk
    toward the overall rate). Knot rates strictly increase, so the monotone cubic through them strictly increases too;
    beyond the outer knots the map continues linearly with the mean slope between them.
    Falls back to Platt scaling when isotonic finds fewer than two blocks.
    """
    z = logit(p)
    iso = IsotonicRegression(out_of_bounds="clip").fit(z, y)
    fitted = iso.predict(z)
    levels, inverse = np.unique(fitted, return_inverse=True)
    if len(levels) < 2:
        return _fit_sigmoid(p, y)
    counts = np.bincount(inverse).astype(np.float64)
    x = np.bincount(inverse, weights=z) / counts
    # a block of 0 positives is not a probability of 0: shrink each block's rate toward
    # the overall rate (weight of 2 rows), then restore monotonicity and merge equal knots
    rate = (levels * counts + 2.0 * float(y.mean())) / (counts + 2.0)
    rate = IsotonicRegression().fit(x, rate, sample_weight=counts).predict(x)
    rate = np.clip(rate, _KNOT_CLIP, 1.0 - _KNOT_CLIP)
    keep_levels, inv2 = np.unique(rate, return_inverse=True)
    w = np.bincount(inv2, weights=counts)
    x = np.bincount(inv2, weights=x * counts) / w
    if len(keep_levels) < 2:
        return _fit_sigmoid(p, y)
    v = logit(keep_levels)
    slope = float((v[-1] - v[0]) / (x[-1] - x[0]))
    return {
        "method": "pchip",
        "x": [float(t) for t in x],
        "v": [float(t) for t in v],
        "slope": slope,
    }


def _fit_isotonic(p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """Isotonic step function on the raw scores (breakpoints, linear between them)."""
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p, y)
    return {
        "method": "isotonic",
        "x": [float(t) for t in iso.X_thresholds_],
        "y": [float(t) for t in iso.y_thresholds_],
    }


_FITTERS = {"pchip": _fit_pchip, "beta": _fit_beta, "sigmoid": _fit_sigmoid}


def _fit_method(method: str, p: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    if method == "isotonic":
        return _fit_isotonic(p, y)
    return _FITTERS[method](p, y)


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
    method : {'auto', 'pchip', 'beta', 'sigmoid', 'isotonic'}, default='auto'
        'sigmoid' fits ``sigmoid(a * logit(p) + b)`` (Platt scaling on the logit);
        'beta' fits ``sigmoid(a ln p - b ln(1 - p) + c)``; 'pchip' a smoothed isotonic
        (monotone cubic through the isotonic blocks); 'isotonic' a step function (ties
        accounts). 'auto' fits pchip, beta and sigmoid on part of the data, scores them
        by log loss on the rest, and keeps the best one refitted on all rows.
    n_folds : int, default=5
        Stratified folds for the 'auto' comparison when no time order is given.
    time_ordered : bool, default=True
        With ``groups`` (e.g. snapshot dates) of at least two values, 'auto' fits on the
        earlier dates and scores on the latest third of them, as the calibrator will be
        used on later data.
    random_state : int or None, default=0
        Seed of the fold shuffling, so that the same scores give the same choice; None
        draws the folds from numpy's global RNG (a new process gets a new choice).

    Attributes
    ----------
    method_ : str
        The method in use.
    params_ : dict
        The fitted map as plain numbers (what
        :func:`models.portable.apply_calibration` evaluates).
    log_loss_, brier_ : dict[str, float]
        Held-out log loss (the choice) and Brier score of each candidate (empty unless
        method='auto').
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
        random_state: int | None = 0,
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
        self.log_loss_: dict[str, float] = {}
        if self.method == "auto":
            self.selection_, splits = _holdout_splits(
                y_arr,
                g,
                n_folds=self.n_folds,
                time_ordered=self.time_ordered,
                seed=self.random_state,
            )
            self.log_loss_, self.brier_ = _compare_methods(p_arr, y_arr, splits)
            # without a comparison, sigmoid: two parameters extrapolate most gently
            self.method_ = (
                min(AUTO_CANDIDATES, key=lambda m: self.log_loss_[m])
                if self.log_loss_
                else "sigmoid"
            )
        else:
            self.selection_ = "fixed"
            self.method_ = self.method
        self.params_ = _fit_method(self.method_, p_arr, y_arr)
        # pchip falls back to sigmoid when isotonic finds a single block
        self.method_ = self.params_["method"]
        self.n_samples_fit_ = len(p_arr)
        return self

    def predict(self, p: Any) -> np.ndarray:
        """Calibrated probabilities of raw scores (:func:`models.portable.apply_calibration`).

        Parameters
        ----------
        p : array-like of shape (n_samples,)
            Raw scores.

        Returns
        -------
        ndarray of shape (n_samples,)
            Clipped to [1e-6, 1 - 1e-6]; NaN where `p` is not finite.
        """
        check_is_fitted(self, "params_")
        return apply_calibration(self.params_, _as_1d(p, "p"))

    transform = predict

    def to_params(self) -> dict[str, Any]:
        """The fitted map as plain numbers: the one way a calibrator is stored.

        Returns
        -------
        dict
            YAML / JSON ready: sigmoid ``a, b``; beta ``a, b, c``; pchip logit knots
            ``x, v`` and ``slope``; isotonic breakpoints ``x, y`` (with ``method``), what
            :func:`models.portable.apply_calibration` evaluates.
        """
        check_is_fitted(self, "params_")
        return dict(self.params_)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> ProbabilityCalibrator:
        """A fitted calibrator from numbers written by :meth:`to_params`.

        Parameters
        ----------
        params : mapping
            Stored numbers, e.g. a thresholds file's ``calibrator.<target>``.

        Returns
        -------
        ProbabilityCalibrator
            Predicting exactly what the calibrator that wrote `params` predicts.
        """
        method = params.get("method")
        if method not in STORED_METHODS:
            raise ValueError(f"calibration method {method!r} is not one of {STORED_METHODS}")
        cal = cls(method=method if method in METHODS else "isotonic")
        cal.params_ = dict(params)
        cal.method_ = method
        cal.selection_ = "fixed"
        cal.brier_, cal.log_loss_ = {}, {}
        cal.n_samples_fit_ = 0
        return cal


def _compare_methods(
    p: np.ndarray, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Pooled held-out log loss and Brier score of each candidate over the splits."""
    if not splits:
        return {}, {}
    log_loss: dict[str, float] = {}
    brier: dict[str, float] = {}
    for method in AUTO_CANDIDATES:
        ll = sq = 0.0
        n = 0
        for fit_idx, held_idx in splits:
            params = _fit_method(method, p[fit_idx], y[fit_idx])
            pred = apply_calibration(params, p[held_idx])
            yh = y[held_idx]
            ll -= float((yh * np.log(pred) + (1.0 - yh) * np.log1p(-pred)).sum())
            sq += float(((pred - yh) ** 2).sum())
            n += len(held_idx)
        log_loss[method] = ll / n
        brier[method] = sq / n
    return log_loss, brier


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
        """Calibrated probabilities (raw ones when no calibrator was fitted).

        Parameters
        ----------
        X : array-like or DataFrame
            What the host's ``predict_raw`` takes.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Columns P(y=0), P(y=1).
        """
        check_is_fitted(self, "calibrator_")
        raw = self.predict_raw(X)  # type: ignore[attr-defined]
        p1 = raw if self.calibrator_ is None else self.calibrator_.predict(raw)
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any, threshold: float = 0.5) -> np.ndarray:
        """1 where the calibrated probability reaches `threshold`, else 0.

        Parameters
        ----------
        X : array-like or DataFrame
        threshold : float, default=0.5

        Returns
        -------
        ndarray of int64, shape (n_samples,)
        """
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
    """Labels as a float array of 0/1; unknown (NaN) or other values are an error.

    Parameters
    ----------
    y : array-like
        Labels.
    what : str
        Name of the input in the error message.

    Returns
    -------
    ndarray of float64, shape (n_samples,)
    """
    arr = np.asarray(y, dtype=np.float64).ravel()
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{what} must hold only 0/1 labels (drop rows whose label is unknown)")
    return arr


def fit_calibrator(
    raw: Any,
    y: Any,
    method: str = "auto",
    *,
    groups: Any = None,
    random_state: int | None = 0,
) -> ProbabilityCalibrator:
    """A `ProbabilityCalibrator` fitted on raw scores: training and quarterly refits alike.

    Parameters
    ----------
    raw : array-like of shape (n_samples,)
        Raw scores of the calibration rows.
    y : array-like of shape (n_samples,)
        Outcomes 0/1.
    method : {'auto', 'pchip', 'beta', 'sigmoid', 'isotonic'}, default='auto'
        One of `METHODS`.
    groups : array-like of shape (n_samples,), optional
        Snapshot dates of the rows ('auto' then compares methods on the latest ones).
    random_state : int or None, default=0
        Seed of the 'auto' fold comparison; None is not reproducible.

    Returns
    -------
    ProbabilityCalibrator
        Fitted.
    """
    return ProbabilityCalibrator(method=method, random_state=random_state).fit(
        raw, y, groups=groups
    )
