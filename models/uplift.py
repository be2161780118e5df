"""Treatment-effect (uplift) models: who does a CSM touch actually help?

A churn model ranks accounts by risk; a touch only pays where it changes the outcome.
`TwoModelUplift` (the "T-learner") fits one LightGBM regressor on touched accounts and
one on untouched ones, each predicting the relative ARR change over the following period;
the uplift of an account is the difference of the two predictions. It needs accounts of
both kinds with similar profiles, which a randomised holdout of flagged accounts gives
(the `holdout` flag of the `actions` table).
"""

from __future__ import annotations

from collections.abc import Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

__all__ = ["TwoModelUplift", "relative_arr_change"]


def relative_arr_change(arr_start: np.ndarray, arr_end: np.ndarray) -> np.ndarray:
    """ARR change over a period as a share of the starting ARR, clipped to [-1, 1].

    Churn is -1; clipping keeps one large expansion from dominating the squared loss.

    Parameters
    ----------
    arr_start, arr_end : array-like of float, shape (n,)
        ARR at the start and the end of the period.

    Returns
    -------
    ndarray of float64, shape (n,)
        ``arr_end / arr_start - 1`` clipped to [-1, 1]; 0 where `arr_start` is not positive.

    Examples
    --------
    >>> relative_arr_change([100.0, 100.0, 100.0, 0.0], [0.0, 150.0, 900.0, 5.0])
    array([-1. ,  0.5,  1. ,  0. ])
    """
    start = np.asarray(arr_start, dtype=float)
    end = np.asarray(arr_end, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(start > 0, end / start - 1.0, 0.0)
    return np.clip(out, -1.0, 1.0)


class TwoModelUplift(BaseEstimator):
    """T-learner on LightGBM: uplift(x) = E[y | x, touched] - E[y | x, untouched].

    Parameters
    ----------
    feature_names : features to use (numeric columns of X).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings of
        both outcome models (small trees: effect data sets are small).
    random_state : seed of both models.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"x": rng.normal(size=2000)})
    >>> t = rng.random(2000) < 0.5
    >>> y = 0.1 * X["x"].to_numpy() + np.where(t, 0.2 * (X["x"].to_numpy() > 0), 0.0)
    >>> m = TwoModelUplift(feature_names=["x"], n_estimators=50).fit(X, t, y)
    >>> bool(m.predict(pd.DataFrame({"x": [1.0]}))[0] > m.predict(pd.DataFrame({"x": [-1.0]}))[0])
    True
    """

    def __init__(
        self,
        *,
        feature_names: Sequence[str],
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 40,
        random_state: int = 0,
    ) -> None:
        self.feature_names = feature_names
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.random_state = random_state

    def _model(self) -> lgb.LGBMRegressor:
        return lgb.LGBMRegressor(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            subsample=0.8,
            subsample_freq=1,
            colsample_bytree=0.8,
            random_state=self.random_state,
            num_threads=1,
            deterministic=True,
            verbose=-1,
        )

    def _X(self, X: pd.DataFrame) -> np.ndarray:
        missing = [c for c in self.feature_names if c not in X.columns]
        if missing:
            raise ValueError(f"X lacks features {missing[:5]}")
        return X.loc[:, list(self.feature_names)].to_numpy(dtype=np.float64, na_value=np.nan)

    def fit(self, X: pd.DataFrame, treated: np.ndarray, y: np.ndarray) -> TwoModelUplift:
        """Fit the touched and untouched outcome models.

        Parameters
        ----------
        X : DataFrame with `feature_names`, one row per account and period.
        treated : bool array of shape (n,), True where the account was touched.
        y : float array of shape (n,), the outcome (e.g. `relative_arr_change`).

        Returns
        -------
        self
        """
        t = np.asarray(treated, dtype=bool)
        y = np.asarray(y, dtype=float)
        if len(t) != len(X) or len(y) != len(X):
            raise ValueError("X, treated and y must have the same length")
        for name, mask in (("touched", t), ("untouched", ~t)):
            if mask.sum() < 2 * self.min_child_samples:
                raise ValueError(
                    f"{int(mask.sum())} {name} rows: at least {2 * self.min_child_samples} "
                    "are needed to fit an uplift model"
                )
        Xa = self._X(X)
        self.treated_model_ = self._model().fit(Xa[t], y[t])
        self.control_model_ = self._model().fit(Xa[~t], y[~t])
        self.n_treated_, self.n_control_ = int(t.sum()), int((~t).sum())
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Estimated uplift of a touch on the outcome, shape (n,).

        Parameters
        ----------
        X : DataFrame
            Rows holding `feature_names`.

        Returns
        -------
        ndarray of float64, shape (n,)
            Treated model's prediction minus the untreated model's.

        Raises
        ------
        ValueError
            When `X` lacks a feature.
        """
        check_is_fitted(self, "treated_model_")
        Xa = self._X(X)
        return self.treated_model_.predict(Xa) - self.control_model_.predict(Xa)
