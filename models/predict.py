"""Scoring a feature table with fitted models, and the feature-matrix check they share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

ID_COLUMNS = ("account_id", "as_of")


def feature_matrix(X: Any, feature_names: Sequence[str], *, what: str = "X") -> np.ndarray:
    """The model's feature columns of `X` as a float64 array, in the model's order.

    Parameters
    ----------
    X : DataFrame holding at least `feature_names` (other columns are ignored), or an
        array of shape (n_samples, len(feature_names)) already in that order.
    feature_names : columns the model was fitted on.
    what : name of the input used in error messages.

    Returns
    -------
    ndarray of float64, shape (n_samples, len(feature_names))
        Missing values as NaN.

    Raises
    ------
    ValueError
        Listing the missing columns, or naming a non-numeric one.
    """
    names = list(feature_names)
    if isinstance(X, pd.DataFrame):
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(
                f"{what} lacks {len(missing)} of the {len(names)} feature columns the model "
                f"was fitted on: {missing}"
            )
        sub = X[names]
        non_numeric = [
            c for c in names if not (pd.api.types.is_numeric_dtype(sub[c]) or sub[c].isna().all())
        ]
        if non_numeric:
            raise ValueError(f"{what}: feature columns must be numeric, not {non_numeric}")
        return sub.to_numpy(dtype=np.float64, na_value=np.nan)
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != len(names):
        raise ValueError(
            f"{what} has shape {arr.shape}; expected (n_samples, {len(names)}) in the order "
            "of feature_names_in_ (pass a DataFrame to select columns by name)"
        )
    return arr


def predict_frame(models: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """Calibrated and raw probabilities of every model for every row of `frame`.

    Parameters
    ----------
    models : mapping of target name (e.g. ``'churn'``, ``'expand'``) to a fitted model
        with ``predict_proba`` (calibrated) and ``predict_raw`` (uncalibrated), such as
        `models.train.OutcomeClassifier` or `TrainResult.models`.
    frame : feature table with ``account_id``, ``as_of`` and the models' features.

    Returns
    -------
    DataFrame with ``account_id, as_of`` then ``p_<target>`` for each target, then
    ``p_<target>_raw``; for the default targets:
    ``account_id, as_of, p_churn, p_expand, p_churn_raw, p_expand_raw``.
    """
    missing_ids = [c for c in ID_COLUMNS if c not in frame.columns]
    if missing_ids:
        raise ValueError(f"frame lacks id columns {missing_ids}")
    out = frame.loc[:, list(ID_COLUMNS)].reset_index(drop=True)
    calibrated = {f"p_{t}": np.asarray(m.predict_proba(frame))[:, 1] for t, m in models.items()}
    raw = {f"p_{t}_raw": np.asarray(m.predict_raw(frame)) for t, m in models.items()}
    return out.assign(**calibrated, **raw)
