"""A fitted model in portable parts: LightGBM model text, calibration parameters, metadata.

Why: a registered model must load wherever its requirements are installed, without this
repository, and scoring must never execute code or unpickle objects read from a model
store that others can write to. The parts are plain text (LightGBM's model format and
JSON); loading them parses data, it runs nothing.

This module imports only numpy, pandas, lightgbm and scipy (no other module of the project), so
that it travels with the MLflow model as a single file (``code_paths``) and the pyfunc
wrapper (``flows/pyfunc_model.py``) and ``nrrcast score`` compute the same numbers with
the same code. For the same reason it is the one home of the calibration arithmetic
(:func:`apply_calibration`): ``models.calibrate`` fits calibrators and evaluates them with
it, so fitted, stored and registered calibrators agree exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

BOOSTER_FILE = "booster.txt"
META_FILE = "model.json"
FORMAT = 1


STORED_METHODS = ("pchip", "beta", "sigmoid", "isotonic", "table")
"""Calibration maps that stored numbers can describe (``table``: thresholds files of old)."""

EPS = 1e-6
"""Calibrated probabilities stay inside [EPS, 1 - EPS] (a log loss stays finite)."""


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds of `p` clipped to [EPS, 1 - EPS] (finite at 0 and 1).

    Parameters
    ----------
    p : ndarray
        Probabilities.

    Returns
    -------
    ndarray
        ``ln(q / (1 - q))`` with ``q = clip(p, EPS, 1 - EPS)``, same shape as `p`.
    """
    q = np.clip(p, EPS, 1.0 - EPS)
    return np.log(q) - np.log1p(-q)


def sigmoid(s: np.ndarray) -> np.ndarray:
    """Logistic function written with tanh (no overflow for large ``|s|``).

    Parameters
    ----------
    s : ndarray
        Log-odds.

    Returns
    -------
    ndarray
        ``1 / (1 + exp(-s))``, same shape as `s`.
    """
    return 0.5 * (1.0 + np.tanh(0.5 * s))


def apply_calibration(params: Mapping[str, Any], raw: Any) -> np.ndarray:
    """Calibrated probabilities from a calibrator's stored numbers; NaN scores stay NaN.

    The one place raw scores become calibrated probabilities: the fitted
    ``models.calibrate.ProbabilityCalibrator``, the registered MLflow model, ``nrrcast
    score`` and the quarterly thresholds files all evaluate their numbers here, so they
    agree exactly. It lives in this module because the registered model ships only this
    file.

    Parameters
    ----------
    params : mapping
        ``{"method": "sigmoid", "a", "b"}``, ``{"method": "beta", "a", "b", "c"}``,
        ``{"method": "pchip", "x", "v", "slope"}`` (knots in logit space) or
        ``{"method": "isotonic" | "table", "x", "y"}`` (linear between points, flat
        outside), as ``ProbabilityCalibrator.to_params`` writes them; other keys are
        ignored.
    raw : array-like
        Raw scores; non-finite ones give NaN.

    Returns
    -------
    ndarray of the shape of `raw`, clipped to [1e-6, 1 - 1e-6].

    Raises
    ------
    ValueError
        For a method not in `STORED_METHODS`.

    Examples
    --------
    >>> apply_calibration({"method": "isotonic", "x": [0.0, 1.0], "y": [0.0, 0.5]}, [0.5])
    array([0.25])
    >>> apply_calibration({"method": "sigmoid", "a": 1.0, "b": 0.0}, [0.2, 0.7]).round(3)
    array([0.2, 0.7])
    """
    p = np.asarray(raw, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    q = p[ok]
    method = params.get("method")
    if method == "sigmoid":
        val = sigmoid(float(params["a"]) * logit(q) + float(params["b"]))
    elif method == "beta":
        c = np.clip(q, EPS, 1.0 - EPS)
        val = sigmoid(
            float(params["a"]) * np.log(c) - float(params["b"]) * np.log1p(-c) + float(params["c"])
        )
    elif method == "pchip":
        val = sigmoid(_pchip_log_odds(params, logit(q)))
    elif method in ("isotonic", "table"):
        val = np.interp(q, np.asarray(params["x"], np.float64), np.asarray(params["y"], np.float64))
    else:
        raise ValueError(f"calibration method {method!r} is not one of {STORED_METHODS}")
    out[ok] = np.clip(val, EPS, 1.0 - EPS)
    return out


def _pchip_log_odds(params: Mapping[str, Any], z: np.ndarray) -> np.ndarray:
    """Monotone cubic through the knots ``(x, v)``, linear with ``slope`` beyond them."""
    from scipy.interpolate import PchipInterpolator

    x = np.asarray(params["x"], dtype=np.float64)
    v = np.asarray(params["v"], dtype=np.float64)
    slope = float(params["slope"])
    s = np.empty_like(z)
    lo, hi = z < x[0], z > x[-1]
    mid = ~(lo | hi)
    s[mid] = PchipInterpolator(x, v, extrapolate=False)(z[mid])
    s[lo] = v[0] + slope * (z[lo] - x[0])
    s[hi] = v[-1] + slope * (z[hi] - x[-1])
    return s


class ParamCalibrator:
    """A calibrator rebuilt from stored numbers (``predict(raw) -> probabilities``).

    Parameters
    ----------
    params : mapping
        What ``ProbabilityCalibrator.to_params`` wrote (see :func:`apply_calibration`).
    """

    def __init__(self, params: Mapping[str, Any]):
        self.params = dict(params)
        self.method_ = self.params.get("method")

    def predict(self, raw: Any) -> np.ndarray:
        """Calibrated probabilities of `raw` (see :func:`apply_calibration`).

        Parameters
        ----------
        raw : array-like
            Raw scores.

        Returns
        -------
        ndarray
            Calibrated probabilities, NaN where `raw` is not finite.
        """
        return apply_calibration(self.params, raw)


class PortableModel:
    """LightGBM booster + calibrator + metadata of one target, loadable without the project.

    Attributes
    ----------
    target : str, e.g. ``'churn'`` or ``'expand'``.
    booster_ : lightgbm.Booster
    calibrator_ : ParamCalibrator
    feature_names_in_ : ndarray of str
    descriptions : dict, feature name -> plain-language description (for reason codes).
    classes_ : ndarray [0, 1]
    """

    def __init__(
        self,
        target: str,
        booster: lgb.Booster,
        calibration: Mapping[str, Any],
        descriptions: Mapping[str, str] | None = None,
    ):
        self.target = target
        self.booster_ = booster
        self.calibrator_ = ParamCalibrator(calibration)
        self.feature_names_in_ = np.asarray(booster.feature_name(), dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        self.descriptions = dict(descriptions or {})
        self.classes_ = np.array([0, 1])

    @classmethod
    def from_estimator(
        cls,
        model: Any,
        target: str,
        descriptions: Mapping[str, str] | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> PortableModel:
        """The portable parts of a fitted `models.train.OutcomeClassifier`.

        Parameters
        ----------
        model : OutcomeClassifier
            Fitted, with a calibrator.
        target : str
            ``churn`` or ``expand``.
        descriptions : mapping of str to str, optional
            Plain-language description of each feature (for reason codes).
        calibration : mapping, optional
            Portable calibration parameters (e.g. those refit on matured outcomes when the
            model is promoted) replacing the model's own calibrator; without them the
            parts predict exactly what the estimator predicts.

        Returns
        -------
        PortableModel

        Raises
        ------
        TypeError
            When the model's calibrator has no ``to_params`` (nothing would reproduce it).
        """
        booster = lgb.Booster(model_str=model.booster_.model_to_string())
        if calibration is None:
            if not hasattr(model.calibrator_, "to_params"):
                kind = type(model.calibrator_).__name__
                raise TypeError(f"cannot export a calibrator of type {kind}")
            calibration = model.calibrator_.to_params()
        return cls(target, booster, calibration, descriptions)

    def save(self, directory: str | Path) -> Path:
        """Write ``booster.txt`` and ``model.json`` into `directory` (created).

        Parameters
        ----------
        directory : str or Path

        Returns
        -------
        Path
            The directory.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(out / BOOSTER_FILE))
        meta = {
            "format": FORMAT,
            "target": self.target,
            "feature_names": [str(n) for n in self.feature_names_in_],
            "calibration": self.calibrator_.params,
            "descriptions": self.descriptions,
        }
        (out / META_FILE).write_text(json.dumps(meta, indent=1))
        return out

    @classmethod
    def load(cls, directory: str | Path) -> PortableModel:
        """Read what `save` wrote (data only: nothing is executed or unpickled).

        Parameters
        ----------
        directory : str or Path

        Returns
        -------
        PortableModel

        Raises
        ------
        FileNotFoundError, ValueError
            Naming the file when a part is missing or wrong.
        """
        where = Path(directory)
        for name in (BOOSTER_FILE, META_FILE):
            if not (where / name).is_file():
                raise FileNotFoundError(f"model directory {where} lacks {name}")
        meta = json.loads((where / META_FILE).read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"{where / META_FILE}: unknown format {meta.get('format')!r}")
        booster = lgb.Booster(model_file=str(where / BOOSTER_FILE))
        if list(booster.feature_name()) != list(meta["feature_names"]):
            raise ValueError(f"{where}: booster features differ from {META_FILE}")
        return cls(meta["target"], booster, meta["calibration"], meta.get("descriptions"))

    def matrix(self, X: Any) -> np.ndarray:
        """The model's feature columns of a DataFrame as float64, in the model's order.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        ndarray of shape (n_samples, n_features_in_)
        """
        names = list(self.feature_names_in_)
        if not isinstance(X, pd.DataFrame):
            arr = np.asarray(X, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[1] != len(names):
                raise ValueError(f"X has shape {arr.shape}; expected (n, {len(names)})")
            return arr
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise ValueError(
                f"X lacks {len(missing)} of the {len(names)} feature columns: {missing}"
            )
        sub = X[names]
        bad = [
            c for c in names if not (pd.api.types.is_numeric_dtype(sub[c]) or sub[c].isna().all())
        ]
        if bad:
            raise ValueError(f"X: feature columns must be numeric, not {bad}")
        return sub.to_numpy(dtype=np.float64, na_value=np.nan)

    def predict_raw(self, X: Any) -> np.ndarray:
        """Uncalibrated booster probability.

        Parameters
        ----------
        X : DataFrame or array-like
            See :meth:`matrix`.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        return np.asarray(self.booster_.predict(self.matrix(X)), dtype=np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities with the model's own calibrator.

        Parameters
        ----------
        X : DataFrame or array-like
            See :meth:`matrix`.

        Returns
        -------
        ndarray of shape (n_samples, 2)
            Columns P(y=0), P(y=1).
        """
        p1 = self.calibrator_.predict(self.predict_raw(X))
        return np.column_stack([1.0 - p1, p1])

    def predict_frame(
        self,
        X: Any,
        *,
        reasons: int = 0,
        calibration: Mapping[str, Any] | None = None,
    ) -> pd.DataFrame:
        """``p_<target>`` (calibrated) and ``p_<target>_raw``, optionally reason codes.

        Parameters
        ----------
        X : DataFrame with the model's feature columns (others ignored).
        reasons : top drivers per direction to add as ``reasons_<target>`` (a JSON list
            of ``{feature, value, contribution, direction, description}`` per row); 0 = none.
        calibration : portable calibration parameters to apply instead of the model's own
            (e.g. the quarterly calibrator of ``configs/thresholds/<quarter>.yaml``).

        Returns
        -------
        DataFrame
            One row per row of `X` (same index when `X` is a DataFrame).
        """
        matrix = self.matrix(X)
        raw = np.asarray(self.booster_.predict(matrix), dtype=np.float64)
        cal = self.calibrator_ if calibration is None else ParamCalibrator(calibration)
        out = pd.DataFrame({f"p_{self.target}": cal.predict(raw), f"p_{self.target}_raw": raw})
        if reasons > 0:
            out[f"reasons_{self.target}"] = self.reason_codes(matrix, int(reasons))
        if isinstance(X, pd.DataFrame):
            out.index = X.index
        return out

    def reason_codes(self, matrix: np.ndarray, top_k: int) -> list[str]:
        """Top drivers up and down per row from LightGBM's exact TreeSHAP.

        Parameters
        ----------
        matrix : ndarray of shape (n_samples, n_features_in_)
            From :meth:`matrix`.
        top_k : int
            Drivers kept per direction.

        Returns
        -------
        list of str
            One JSON list per row.
        """
        contrib = np.asarray(self.booster_.predict(matrix, pred_contrib=True))[:, :-1]
        names: Sequence[str] = list(self.feature_names_in_)
        rows = []
        for i in range(len(contrib)):
            order = np.argsort(-contrib[i], kind="stable")
            up = [j for j in order[:top_k] if contrib[i, j] > 0]
            down = [j for j in order[::-1][:top_k] if contrib[i, j] < 0]
            items = [
                {
                    "feature": names[j],
                    "value": None if np.isnan(matrix[i, j]) else float(matrix[i, j]),
                    "contribution": float(contrib[i, j]),
                    "direction": direction,
                    "description": self.descriptions.get(names[j], names[j]),
                }
                for direction, picks in (("up", up), ("down", down))
                for j in picks
            ]
            rows.append(json.dumps(items))
        return rows
