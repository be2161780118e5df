"""Baselines trained on the same rows as the LightGBM models, so every run shows what it adds.

- `LogisticBaseline`: logistic regression on the same features (signed log, median
  imputation with missing indicators, standard scaling).
- `HealthScoreBaseline`: a weighted rule-based health score of the kind CS platforms
  ship; no learning beyond percentiles of the training rows, turned into a probability by
  calibration on the calibration slice.

Both expose ``predict_raw`` (uncalibrated score) and a calibrated ``predict_proba``.
The logistic fit runs BLAS on one thread (scoped): its matrices are small, and on a
shared 2-core machine a second BLAS thread mostly waits for a busy core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from models.calibrate import CalibratedScoreMixin, check_binary
from models.predict import feature_matrix

_GRID = np.linspace(0.0, 1.0, 101)


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): tames money and count tails, keeps ratios near 0..1 almost linear.

    Parameters
    ----------
    x : ndarray
        Values of any shape; NaN stays NaN.

    Returns
    -------
    ndarray
        Same shape as `x`.
    """
    return np.sign(x) * np.log1p(np.abs(x))


def _feature_list(feature_names: Sequence[str] | None, X: Any) -> list[str]:
    if feature_names is not None:
        return list(feature_names)
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    raise ValueError("pass feature_names or a DataFrame whose columns are the features")


class LogisticBaseline(CalibratedScoreMixin, ClassifierMixin, BaseEstimator):
    """Logistic regression on the model's features, calibrated like the model.

    Parameters
    ----------
    feature_names : list of str, optional
        Columns to use; default: all columns of the training DataFrame.
    C : float, default=1.0
        Inverse L2 strength.
    max_iter : int, default=2000
    log_transform : bool, default=True
        Apply ``sign(x) * log1p(|x|)`` before imputation (heavy-tailed money and counts).
    calibration : {'auto', 'pchip', 'beta', 'sigmoid', 'isotonic'}, default='auto'
    random_state : int, optional

    Attributes
    ----------
    pipeline_ : sklearn Pipeline (log, impute, scale, logistic regression).
    calibrator_ : ProbabilityCalibrator or None (when no calibration slice was given).
    feature_names_in_ : ndarray of str.
    """

    def __init__(
        self,
        *,
        feature_names: Sequence[str] | None = None,
        C: float = 1.0,
        max_iter: int = 2000,
        log_transform: bool = True,
        calibration: str = "auto",
        random_state: int | None = None,
    ):
        self.feature_names = feature_names
        self.C = C
        self.max_iter = max_iter
        self.log_transform = log_transform
        self.calibration = calibration
        self.random_state = random_state

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_calib: Any = None,
        y_calib: Any = None,
        calib_groups: Any = None,
    ) -> LogisticBaseline:
        """Fit on the training slice; calibrate on (`X_calib`, `y_calib`) when given.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Training features; a DataFrame when `feature_names` is not set.
        y : array-like of 0/1, shape (n_samples,)
            Training labels.
        X_calib : DataFrame, optional
            Later calibration slice; without it ``calibrator_`` is None.
        y_calib : array-like of 0/1, optional
            Labels of `X_calib`.
        calib_groups : array-like, optional
            Group of each calibration row (e.g. account), passed to the calibrator.

        Returns
        -------
        LogisticBaseline
            self, fitted.

        Raises
        ------
        ValueError
            When labels are not 0/1, or features are neither named nor DataFrame columns.
        """
        names = _feature_list(self.feature_names, X)
        y_arr = check_binary(y, "y")
        steps: list[Any] = []
        if self.log_transform:
            steps.append(FunctionTransformer(signed_log1p, feature_names_out="one-to-one"))
        steps += [
            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
            StandardScaler(),
            LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state),
        ]
        pipe: Pipeline = make_pipeline(*steps)
        with threadpool_limits(limits=1, user_api="blas"):
            pipe.fit(feature_matrix(X, names), y_arr)
        self.pipeline_ = pipe
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.classes_ = np.array([0, 1])
        self._fit_calibration(X_calib, y_calib, calib_groups)
        return self

    def predict_raw(self, X: Any) -> np.ndarray:
        """Uncalibrated probability of the positive class, shape (n_samples,).

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features)
            Features, same columns as in `fit`.

        Returns
        -------
        ndarray of float64, shape (n_samples,)
        """
        check_is_fitted(self, "pipeline_")
        with threadpool_limits(limits=1, user_api="blas"):
            return self.pipeline_.predict_proba(feature_matrix(X, self.feature_names_in_))[:, 1]


class HealthScoreBaseline(CalibratedScoreMixin, ClassifierMixin, BaseEstimator):
    """Weighted rule-based score, mapped to a probability on the calibration slice.

    Each weighted feature becomes its percentile among the training rows (0..1; NaN is
    neutral, 0.5). A positive weight means "higher value scores higher", a negative one
    "higher value scores lower". The score is the weighted mean, in [0, 1].

    Parameters
    ----------
    weights : mapping of feature name to weight
        Features absent from the training frame are skipped and listed in
        ``missing_features_``.
    invert : bool, default=False
        True when the weights describe health and the event is its opposite (churn):
        the raw score is then ``1 - health``.
    calibration : {'auto', 'pchip', 'beta', 'sigmoid', 'isotonic'}, default='auto'
    random_state : int, optional

    Attributes
    ----------
    features_ : list of str, weighted features found in the data.
    missing_features_ : list of str, weighted features not found.
    grid_ : ndarray of shape (n_features, 101), training percentiles of each feature.
    calibrator_ : ProbabilityCalibrator or None.
    """

    def __init__(
        self,
        *,
        weights: Mapping[str, float] | None = None,
        invert: bool = False,
        calibration: str = "auto",
        random_state: int | None = None,
    ):
        self.weights = weights
        self.invert = invert
        self.calibration = calibration
        self.random_state = random_state

    def fit(
        self,
        X: pd.DataFrame,
        y: Any = None,
        *,
        X_calib: Any = None,
        y_calib: Any = None,
        calib_groups: Any = None,
    ) -> HealthScoreBaseline:
        """Learn training percentiles; calibrate on (`X_calib`, `y_calib`) when given.

        Parameters
        ----------
        X : DataFrame
            Training rows; the weighted features are looked up by column name.
        y : array-like, optional
            Ignored (the score is rule-based); kept for the estimator interface.
        X_calib : DataFrame, optional
            Later calibration slice; without it ``calibrator_`` is None.
        y_calib : array-like of 0/1, optional
            Labels of `X_calib`.
        calib_groups : array-like, optional
            Group of each calibration row (e.g. account), passed to the calibrator.

        Returns
        -------
        HealthScoreBaseline
            self, fitted.

        Raises
        ------
        ValueError
            When `weights` is empty or none of its features is in `X`.
        TypeError
            When `X` is not a DataFrame.
        """
        if not self.weights:
            raise ValueError("HealthScoreBaseline needs a non-empty weights mapping")
        if not isinstance(X, pd.DataFrame):
            raise TypeError("HealthScoreBaseline.fit expects a DataFrame (weights name columns)")
        self.features_ = [f for f in self.weights if f in X.columns]
        self.missing_features_ = [f for f in self.weights if f not in X.columns]
        if not self.features_:
            raise ValueError(
                f"none of the health-score features {sorted(self.weights)} is in the frame"
            )
        values = feature_matrix(X, self.features_)
        all_nan = np.isnan(values).all(axis=0)
        grid = np.zeros((len(self.features_), _GRID.size))
        if (~all_nan).any():
            grid[~all_nan] = np.nanquantile(values[:, ~all_nan], _GRID, axis=0).T
        self.grid_ = grid
        self.coef_ = np.array([float(self.weights[f]) for f in self.features_])
        self.classes_ = np.array([0, 1])
        self._fit_calibration(X_calib, y_calib, calib_groups)
        return self

    def health_score(self, X: pd.DataFrame) -> np.ndarray:
        """The weighted score in [0, 1] (before `invert`), shape (n_samples,).

        Parameters
        ----------
        X : DataFrame
            Rows holding the features found at `fit` (``features_``).

        Returns
        -------
        ndarray of float64, shape (n_samples,)
            Weighted mean of the oriented training percentiles.
        """
        check_is_fitted(self, "grid_")
        values = feature_matrix(X, self.features_)
        pct = np.full(values.shape, 0.5)
        for j in range(values.shape[1]):  # a handful of features, vectorized over rows
            v = values[:, j]
            ok = ~np.isnan(v)
            g = self.grid_[j]
            mid = np.searchsorted(g, v[ok], "left") + np.searchsorted(g, v[ok], "right")
            pct[ok, j] = mid / (2.0 * g.size)
        oriented = np.where(self.coef_ > 0, pct, 1.0 - pct)
        w = np.abs(self.coef_)
        return oriented @ w / w.sum()

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated score of the event, shape (n_samples,): health or 1 - health.

        Parameters
        ----------
        X : DataFrame
            Rows holding the features found at `fit` (``features_``).

        Returns
        -------
        ndarray of float64, shape (n_samples,)
            In [0, 1]; ``1 - health_score(X)`` when `invert`.
        """
        s = self.health_score(X)
        return 1.0 - s if self.invert else s
