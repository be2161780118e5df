"""LightGBM churn and expansion classifiers, trained out of time with baselines alongside.

`OutcomeClassifier` (one per target: it predicts whether an account churns, or expands,
within the horizon) is a scikit-learn style estimator: a LightGBM booster early-stopped on a
validation slice plus a `ProbabilityCalibrator` fitted on a later calibration slice.
`train_all` runs the whole recipe on a feature table: time split, optional Optuna search,
both targets, both baselines, metrics per model and slice, predictions for logging.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from evaluation.metrics import binary_metrics, segment_masks, slice_metrics
from features.names import MODEL_SUFFIX
from models.baselines import HealthScoreBaseline, LogisticBaseline
from models.calibrate import METHODS, CalibratedScoreMixin, check_binary
from models.config import LGBMParams, ModelConfig
from models.predict import feature_matrix
from models.split import TimeSplit, split_from_config

log = logging.getLogger(__name__)

_BOOSTER_KEYS = (
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_child_samples",
    "min_sum_hessian_in_leaf",
    "feature_fraction",
    "bagging_fraction",
    "bagging_freq",
    "lambda_l1",
    "lambda_l2",
    "min_gain_to_split",
    "max_bin",
    "num_threads",
)


def lgbm_params(est: Any, seed: int | None) -> dict[str, Any]:
    """Native LightGBM parameters of an estimator, with every source of randomness fixed.

    Parameters
    ----------
    est : OutcomeClassifier or object
        Holds the booster settings as attributes (``num_leaves``, ``learning_rate``, ...).
    seed : int or None
        Seed of every LightGBM random stream; None means 0.

    Returns
    -------
    dict
        Parameters for ``lightgbm.train``: the estimator's settings, a binary objective
        (early stopping on log loss) and deterministic row-wise training.
    """
    s = 0 if seed is None else int(seed)
    params = {k: getattr(est, k) for k in _BOOSTER_KEYS}
    params.update(
        objective="binary",
        metric=["binary_logloss", "auc"],
        first_metric_only=True,
        deterministic=True,
        force_row_wise=True,
        feature_pre_filter=False,
        verbosity=-1,
        seed=s,
        bagging_seed=s,
        feature_fraction_seed=s,
        data_random_seed=s,
    )
    return params


def _fit_booster(
    params: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    names: list[str],
    *,
    n_estimators: int,
    early_stopping_rounds: int,
    X_valid: np.ndarray | None,
    y_valid: np.ndarray | None,
) -> tuple[lgb.Booster, int, dict[str, list[float]]]:
    """Train, early-stop on the validation rows, and keep only the best iterations."""
    dtrain = lgb.Dataset(X, label=y, feature_name=names, params={"max_bin": params["max_bin"]})
    evals: dict[str, dict[str, list[float]]] = {}
    callbacks: list[Any] = []
    valid_sets = None
    if X_valid is not None and y_valid is not None:
        valid_sets = [lgb.Dataset(X_valid, label=y_valid, reference=dtrain)]
        callbacks = [
            lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
            lgb.record_evaluation(evals),
        ]
    booster = lgb.train(
        params,
        dtrain,
        num_boost_round=n_estimators,
        valid_sets=valid_sets,
        valid_names=["valid"] if valid_sets else None,
        callbacks=callbacks,
    )
    best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
    # keep only the trees that are used, so predict / pred_contrib / pickles agree
    trimmed = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
    return trimmed, int(best), evals.get("valid", {})


class OutcomeClassifier(CalibratedScoreMixin, ClassifierMixin, BaseEstimator):
    """LightGBM binary classifier with out-of-time early stopping and calibration.

    Parameters
    ----------
    feature_names : list of str, optional
        Feature columns; default: all columns of the training DataFrame. Other columns of
        X (ids, labels) are ignored at fit and predict time.
    learning_rate, num_leaves, max_depth, min_child_samples, min_sum_hessian_in_leaf,
    feature_fraction, bagging_fraction, bagging_freq, lambda_l1, lambda_l2,
    min_gain_to_split, max_bin, num_threads :
        LightGBM parameters (native names; see `models.config.LGBMParams`).
    n_estimators : int, default=2000
        Maximum boosting rounds.
    early_stopping_rounds : int, default=100
        Patience on the validation log loss.
    calibration : {'auto', 'pchip', 'beta', 'sigmoid', 'isotonic'}, default='auto'
    random_state : int, default=42
        Seed of bagging, feature sampling and the calibration folds.

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Trained booster holding only the best iterations; use
        ``booster_.predict(X, pred_contrib=True)`` for TreeSHAP contributions.
    calibrator_ : ProbabilityCalibrator or None
        None when no calibration slice was given (then predict_proba is raw).
    feature_names_in_ : ndarray of str
    best_iteration_ : int
    evals_result_ : dict
        Validation curves (``binary_logloss``, ``auc``) per iteration.
    classes_ : ndarray [0, 1]

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    >>> y = (X["a"] + rng.normal(size=600) > 1).astype(int)
    >>> clf = OutcomeClassifier(n_estimators=20, min_child_samples=20, num_threads=1)
    >>> clf = clf.fit(X[:400], y[:400], X_calib=X[400:], y_calib=y[400:])
    >>> clf.predict_proba(X[:3]).shape
    (3, 2)
    """

    def __init__(
        self,
        *,
        feature_names: Sequence[str] | None = None,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        max_depth: int = -1,
        min_child_samples: int = 200,
        min_sum_hessian_in_leaf: float = 1e-3,
        feature_fraction: float = 0.8,
        bagging_fraction: float = 0.8,
        bagging_freq: int = 1,
        lambda_l1: float = 0.0,
        lambda_l2: float = 5.0,
        min_gain_to_split: float = 0.0,
        max_bin: int = 255,
        num_threads: int = 1,
        n_estimators: int = 2000,
        early_stopping_rounds: int = 100,
        calibration: str = "auto",
        random_state: int | None = 42,
    ):
        self.feature_names = feature_names
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.min_sum_hessian_in_leaf = min_sum_hessian_in_leaf
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.bagging_freq = bagging_freq
        self.lambda_l1 = lambda_l1
        self.lambda_l2 = lambda_l2
        self.min_gain_to_split = min_gain_to_split
        self.max_bin = max_bin
        self.num_threads = num_threads
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.random_state = random_state

    @classmethod
    def from_config(
        cls,
        params: LGBMParams,
        *,
        feature_names: Sequence[str],
        calibration: str = "auto",
        seed: int = 42,
    ) -> OutcomeClassifier:
        """An unfitted classifier with the parameters of a `LGBMParams` section.

        Parameters
        ----------
        params : LGBMParams
            Booster parameters (``models.lgbm`` of the configuration, per-target overrides
            applied).
        feature_names : sequence of str
            Model features.
        calibration : str, default 'auto'
            Calibration method (see `models.calibrate.METHODS`).
        seed : int, default 42
            Seed of bagging, feature sampling and the calibration folds.

        Returns
        -------
        OutcomeClassifier
            Not fitted.
        """
        return cls(
            feature_names=list(feature_names),
            calibration=calibration,
            random_state=seed,
            **params.model_dump(),
        )

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_valid: Any = None,
        y_valid: Any = None,
        X_calib: Any = None,
        y_calib: Any = None,
        calib_groups: Any = None,
    ) -> OutcomeClassifier:
        """Fit the booster on the training slice and the calibrator on the calibration slice.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Training rows (a DataFrame may hold extra columns).
        y : array-like of shape (n_samples,), 0/1.
        X_valid, y_valid : validation slice for early stopping; without it the booster
            runs `n_estimators` rounds.
        X_calib, y_calib : calibration slice (later than validation); without it no
            calibrator is fitted.
        calib_groups : array-like of shape (n_calib,), optional
            Snapshot dates of the calibration rows (time-ordered method choice).

        Returns
        -------
        self
        """
        if self.calibration not in METHODS:
            raise ValueError(f"calibration={self.calibration!r}")
        if (X_valid is None) != (y_valid is None) or (X_calib is None) != (y_calib is None):
            raise ValueError("give X_valid with y_valid and X_calib with y_calib")
        names = _names(self.feature_names, X)
        y_arr = check_binary(y, "y")
        if y_arr.min() == y_arr.max():
            raise ValueError(
                f"training labels hold a single class ({y_arr[0]:g}) in {len(y_arr)} rows"
            )
        Xv = None if X_valid is None else feature_matrix(X_valid, names, what="X_valid")
        yv = None if y_valid is None else check_binary(y_valid, "y_valid")
        self.booster_, self.best_iteration_, self.evals_result_ = _fit_booster(
            lgbm_params(self, self.random_state),
            feature_matrix(X, names, what="X"),
            y_arr,
            names,
            n_estimators=self.n_estimators,
            early_stopping_rounds=self.early_stopping_rounds,
            X_valid=Xv,
            y_valid=yv,
        )
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.classes_ = np.array([0, 1])
        self._fit_calibration(X_calib, y_calib, calib_groups)
        return self

    def predict_raw(self, X: Any) -> np.ndarray:
        """Uncalibrated booster probability of the positive class.

        Parameters
        ----------
        X : DataFrame or array of shape (n_samples, n_features)
            Rows to score (a DataFrame may hold extra columns).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self, "booster_")
        return self.booster_.predict(feature_matrix(X, self.feature_names_in_))

    @property
    def model_(self) -> lgb.Booster:
        """Alias of `booster_` (the underlying LightGBM model)."""
        check_is_fitted(self, "booster_")
        return self.booster_

    @property
    def feature_importances_(self) -> np.ndarray:
        """Total gain of each feature, in `feature_names_in_` order."""
        check_is_fitted(self, "booster_")
        return self.booster_.feature_importance(importance_type="gain")

    def importance_frame(self) -> pd.DataFrame:
        """Gain and split counts per feature, largest gain first.

        Returns
        -------
        DataFrame
            ``feature``, ``gain``, ``split`` and ``gain_share`` (sums to 1), one row per
            feature.
        """
        check_is_fitted(self, "booster_")
        gain = self.booster_.feature_importance(importance_type="gain")
        total = gain.sum()
        return (
            pd.DataFrame(
                {
                    "feature": list(self.feature_names_in_),
                    "gain": gain,
                    "split": self.booster_.feature_importance(importance_type="split"),
                    "gain_share": gain / total if total > 0 else 0.0,
                }
            )
            .sort_values(["gain", "feature"], ascending=[False, True], kind="stable")
            .reset_index(drop=True)
        )


NrrClassifier = OutcomeClassifier
"""Former name of `OutcomeClassifier`, kept only so that estimators saved under it (skops
files logged with MLflow runs, pickles) still load; code uses `OutcomeClassifier`."""


def _names(feature_names: Sequence[str] | None, X: Any) -> list[str]:
    if feature_names is not None:
        return list(feature_names)
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    raise ValueError("pass feature_names or a DataFrame whose columns are the features")


# --------------------------------------------------------------------------- tuning


def tune_lgbm(
    X: np.ndarray,
    y: np.ndarray,
    X_valid: np.ndarray,
    y_valid: np.ndarray,
    base: LGBMParams,
    *,
    feature_names: Sequence[str],
    n_trials: int,
    seed: int,
) -> tuple[LGBMParams, pd.DataFrame]:
    """Optuna search (seeded TPE, fixed trial count) of the tree shape and regularisation.

    Each trial is early-stopped on the validation slice and scored by its best
    validation log loss. The learning rate and the round budget stay as configured.

    Parameters
    ----------
    X, y : ndarray
        Training features (n_samples, n_features) and 0/1 labels.
    X_valid, y_valid : ndarray
        Validation slice for early stopping and scoring.
    base : LGBMParams
        Configured parameters; the searched ones are replaced per trial.
    feature_names : sequence of str
        Names of the columns of `X`.
    n_trials : int
        Number of trials.
    seed : int
        Seed of the sampler and of every booster.

    Returns
    -------
    best : LGBMParams with the best trial's values.
    trials : DataFrame, one row per trial (number, value, params).
    """
    import optuna

    names = list(feature_names)

    def objective(trial: optuna.Trial) -> float:
        cand = base.model_copy(
            update={
                "num_leaves": trial.suggest_int("num_leaves", 8, 128, log=True),
                "min_child_samples": trial.suggest_int("min_child_samples", 20, 2000, log=True),
                "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
                "bagging_fraction": trial.suggest_float("bagging_fraction", 0.5, 1.0),
                "lambda_l2": trial.suggest_float("lambda_l2", 1e-2, 100.0, log=True),
            }
        )
        est = OutcomeClassifier.from_config(
            cand, feature_names=names, calibration="auto", seed=seed
        )
        _, best, curve = _fit_booster(
            lgbm_params(est, seed),
            X,
            y,
            names,
            n_estimators=cand.n_estimators,
            early_stopping_rounds=cand.early_stopping_rounds,
            X_valid=X_valid,
            y_valid=y_valid,
        )
        trial.set_user_attr("best_iteration", best)
        return float(curve["binary_logloss"][best - 1])

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials, show_progress_bar=False)
    best = base.model_copy(update=study.best_params)
    trials = study.trials_dataframe(attrs=("number", "value", "params", "user_attrs"))
    return LGBMParams.model_validate(best.model_dump()), trials


# --------------------------------------------------------------------------- train_all


@dataclass
class TargetResult:
    """Everything trained and measured for one target.

    ``metrics[model][slice]`` holds `evaluation.metrics.binary_metrics` for models
    ``lgbm`` (calibrated), ``lgbm_raw``, ``logistic``, ``health`` and slices
    ``valid``, ``calib``, ``test``. ``segment_metrics[column][value]`` holds the calibrated
    LightGBM metrics on the test slice per segment.
    """

    target: str
    label: str
    model: OutcomeClassifier
    baselines: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, float]]]
    segment_metrics: dict[str, dict[str, dict[str, float]]]
    params: dict[str, Any]
    importance: pd.DataFrame
    rows: dict[str, int]
    seconds: dict[str, float]
    tuning: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class TrainResult:
    """Output of `train_all`: models, split, metrics and predictions to log with the run."""

    split: TimeSplit
    feature_names: list[str]
    targets: dict[str, TargetResult]
    predictions: pd.DataFrame
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def models(self) -> dict[str, OutcomeClassifier]:
        """Calibrated LightGBM model per target (input of `models.predict.predict_frame`)."""
        return {t: r.model for t, r in self.targets.items()}

    @property
    def test_predictions(self) -> pd.DataFrame:
        """Predictions of every model on the test (latest out-of-time) slice."""
        return self.predictions[self.predictions["slice"] == "test"].reset_index(drop=True)

    def flat_metrics(self) -> dict[str, float]:
        """``{target}.{model}.{slice}.{metric}`` -> value, for ``mlflow.log_metrics``.

        Returns
        -------
        dict of str to float
        """
        out: dict[str, float] = {}
        for t, r in self.targets.items():
            for model, by_slice in r.metrics.items():
                for sl, ms in by_slice.items():
                    out.update({f"{t}.{model}.{sl}.{k}": float(v) for k, v in ms.items()})
        return out

    def comparison(self, slice_name: str = "test") -> pd.DataFrame:
        """One row per (target, model) with the metrics of one slice, side by side.

        Parameters
        ----------
        slice_name : {'test', 'valid', 'calib'}, default 'test'
            Slice whose metrics are shown; models without it are left out.

        Returns
        -------
        DataFrame
            Columns ``target, model`` and one per metric.
        """
        rows = [
            {"target": t, "model": model, **by_slice[slice_name]}
            for t, r in self.targets.items()
            for model, by_slice in r.metrics.items()
            if slice_name in by_slice
        ]
        return pd.DataFrame(rows)

    def flat_params(self) -> dict[str, Any]:
        """Parameters of each target's booster and calibrator, for ``mlflow.log_params``.

        Returns
        -------
        dict of str to object
            ``{target}.{param}``, ``n_features`` and the split's ``split.*start`` dates.
        """
        out: dict[str, Any] = {}
        for t, r in self.targets.items():
            out.update({f"{t}.{k}": v for k, v in r.params.items()})
        out["n_features"] = len(self.feature_names)
        out.update(
            {f"split.{k}": v for k, v in self.split.to_dict().items() if k.endswith("start")}
        )
        return out


_REQUIRED = ("account_id", "as_of", "label_known")


def _check_frame(frame: pd.DataFrame, feature_names: Sequence[str], labels: Sequence[str]) -> None:
    missing = [c for c in (*_REQUIRED, *labels) if c not in frame.columns]
    if missing:
        raise ValueError(f"feature table lacks columns {missing} ({len(frame)} rows)")
    feature_matrix(frame.head(0), feature_names, what="feature table")


def _evaluate(
    y: np.ndarray, preds: dict[str, np.ndarray], cfg: ModelConfig
) -> dict[str, dict[str, float]]:
    m = cfg.metrics
    return {
        name: binary_metrics(y, p, n_bins=m.ece_bins, top_fraction=m.top_fraction, k=m.flags)
        for name, p in preds.items()
    }


@dataclass
class _Rows:
    """Labelled row positions of one target per slice, and the label and date arrays."""

    masks: dict[str, np.ndarray]
    y: np.ndarray
    has: np.ndarray
    idx: dict[str, np.ndarray]
    as_of: np.ndarray

    @classmethod
    def of(cls, frame: pd.DataFrame, label: str, split: TimeSplit) -> _Rows:
        masks = split.masks(frame)
        y = frame[label].to_numpy(dtype=np.float64, na_value=np.nan)
        has = ~np.isnan(y)
        idx = {s: np.flatnonzero(m & has) for s, m in masks.items()}
        return cls(masks, y, has, idx, frame["as_of"].to_numpy())


def _fit_lgbm(
    frame: pd.DataFrame,
    X: np.ndarray,
    rows: _Rows,
    split: TimeSplit,
    names: list[str],
    params: LGBMParams,
    cfg: ModelConfig,
) -> tuple[OutcomeClassifier, np.ndarray, int]:
    """The calibrated LightGBM model, the rows it learnt from, and the refit row count.

    With ``cfg.refit_on_valid`` the booster early-stopped on the valid slice is refitted
    for its best number of rounds on every row matured before the calibration slice.
    """
    y, tr, va, ca = rows.y, rows.idx["train"], rows.idx["valid"], rows.idx["calib"]
    calib_kw = {"X_calib": X[ca], "y_calib": y[ca], "calib_groups": rows.as_of[ca]}
    model = OutcomeClassifier.from_config(
        params, feature_names=names, calibration=cfg.calibration.method, seed=cfg.seed
    )
    refit_rows = 0
    if cfg.refit_on_valid:
        stopped = clone(model).fit(X[tr], y[tr], X_valid=X[va], y_valid=y[va])
        # baselines learn from the same rows as the final booster
        tr = np.flatnonzero(split.matured_before(frame, split.calib_start) & rows.has)
        refit_rows = len(tr)
        model.set_params(n_estimators=stopped.best_iteration_)
        model.fit(X[tr], y[tr], **calib_kw)
        model.evals_result_ = stopped.evals_result_
    else:
        model.fit(X[tr], y[tr], X_valid=X[va], y_valid=y[va], **calib_kw)
    return model, tr, refit_rows


def _fit_logistic(
    X: np.ndarray, rows: _Rows, tr: np.ndarray, names: list[str], cfg: ModelConfig
) -> LogisticBaseline:
    """The logistic baseline on the training rows, calibrated on the calibration slice."""
    lc, ca = cfg.baselines.logistic, rows.idx["calib"]
    return LogisticBaseline(
        feature_names=names,
        C=lc.C,
        max_iter=lc.max_iter,
        log_transform=lc.log_transform,
        calibration=cfg.calibration.method,
        random_state=cfg.seed,
    ).fit(X[tr], rows.y[tr], X_calib=X[ca], y_calib=rows.y[ca], calib_groups=rows.as_of[ca])


def _fit_health(
    target: str, frame: pd.DataFrame, rows: _Rows, tr: np.ndarray, cfg: ModelConfig
) -> tuple[HealthScoreBaseline | None, list[str]]:
    """The health-score baseline of `target` (None when it has no usable weights), and notes."""
    hc, ca = cfg.baselines.health, rows.idx["calib"]
    cols = [c for c in hc.weights.get(target, {}) if c in frame.columns]
    if target not in hc.weights:
        return None, [f"no health-score weights for target {target!r}: baseline skipped"]
    if not cols:
        return None, [
            f"none of the health-score features of {target!r} "
            f"{sorted(hc.weights[target])} is in the table: baseline skipped"
        ]
    health = HealthScoreBaseline(
        weights=hc.weights[target],
        invert=target in hc.invert,
        calibration=hc.calibration,
        random_state=cfg.seed,
    )
    health.fit(
        frame[cols].iloc[tr],
        rows.y[tr],
        X_calib=frame[cols].iloc[ca],
        y_calib=rows.y[ca],
        calib_groups=rows.as_of[ca],
    )
    notes = []
    if health.missing_features_:
        notes.append(f"health score of {target!r} lacks {health.missing_features_}")
    return health, notes


def _predict_scored(
    frame: pd.DataFrame,
    X: np.ndarray,
    scored: np.ndarray,
    model: OutcomeClassifier,
    baselines: dict[str, Any],
) -> dict[str, np.ndarray]:
    """Every model's probabilities on the `scored` rows (each row scored once per model)."""
    logistic = baselines["logistic"]
    preds = {
        "lgbm_raw": model.predict_raw(X[scored]),
        "logistic": logistic.predict_proba(X[scored])[:, 1],
    }
    preds["lgbm"] = model.calibrator_.predict(preds["lgbm_raw"])  # type: ignore[union-attr]
    if "health" in baselines:
        h = baselines["health"]
        preds["health"] = h.predict_proba(frame[h.features_].iloc[scored])[:, 1]
    return preds


def _slice_metrics(
    rows: _Rows, scored: np.ndarray, preds: dict[str, np.ndarray], cfg: ModelConfig
) -> dict[str, dict[str, dict[str, float]]]:
    """``metrics[model][slice]`` on the valid, calib and test slices."""
    pos = pd.Series(np.arange(len(scored)), index=scored)
    metrics: dict[str, dict[str, dict[str, float]]] = {
        name: {} for name in MODEL_SUFFIX if name in preds
    }
    for s in ("valid", "calib", "test"):
        at = pos[rows.idx[s]].to_numpy()
        for name, ms in _evaluate(
            rows.y[rows.idx[s]], {k: v[at] for k, v in preds.items()}, cfg
        ).items():
            metrics[name][s] = ms
    return metrics


def _segment_metrics(
    frame: pd.DataFrame,
    rows: _Rows,
    scored: np.ndarray,
    p_lgbm: np.ndarray,
    cfg: ModelConfig,
) -> dict[str, dict[str, dict[str, float]]]:
    """Calibrated LightGBM metrics on the test slice per value of each segment column."""
    test = rows.idx["test"]
    test_at = pd.Series(np.arange(len(scored)), index=scored)[test].to_numpy()
    seg_cols = [c for c in cfg.metrics.segment_columns if c in frame.columns]
    test_frame = frame[seg_cols].iloc[test]
    return {
        col: slice_metrics(
            rows.y[test],
            p_lgbm[test_at],
            segment_masks(test_frame, col),
            n_bins=cfg.metrics.ece_bins,
            top_fraction=cfg.metrics.top_fraction,
            k=cfg.metrics.flags,
        )
        for col in seg_cols
    }


def _target_params(params: LGBMParams, model: OutcomeClassifier, refit_rows: int) -> dict[str, Any]:
    """Booster and calibrator parameters of one target, as logged with the run."""
    cal = model.calibrator_
    assert cal is not None
    return {
        **params.model_dump(),
        "best_iteration": model.best_iteration_,
        "refit_rows": refit_rows,
        "calibration": cal.method_,
        "calibration_selection": cal.selection_,
        **{f"calibration_brier_{k}": v for k, v in cal.brier_.items()},
        **{f"calibration_log_loss_{k}": v for k, v in cal.log_loss_.items()},
    }


def _train_target(
    target: str,
    label: str,
    frame: pd.DataFrame,
    X: np.ndarray,
    split: TimeSplit,
    names: list[str],
    cfg: ModelConfig,
) -> tuple[TargetResult, dict[str, np.ndarray]]:
    """Fit the model and both baselines for one target; score all non-train slices."""
    rows = _Rows.of(frame, label, split)
    tr, va = rows.idx["train"], rows.idx["valid"]
    seconds: dict[str, float] = {}

    params = cfg.lgbm_for(target)
    tuning = None
    if cfg.tune.enabled:
        t0 = time.perf_counter()
        params, tuning = tune_lgbm(
            X[tr], rows.y[tr], X[va], rows.y[va], params,
            feature_names=names, n_trials=cfg.tune.n_trials, seed=cfg.seed,
        )  # fmt: skip
        seconds["tune"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model, tr, refit_rows = _fit_lgbm(frame, X, rows, split, names, params, cfg)
    seconds["lgbm"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    baselines: dict[str, Any] = {"logistic": _fit_logistic(X, rows, tr, names, cfg)}
    seconds["logistic"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    health, notes = _fit_health(target, frame, rows, tr, cfg)
    if health is not None:
        baselines["health"] = health
        seconds["health"] = time.perf_counter() - t0
    for note in notes:
        log.warning(note)

    masks = rows.masks
    scored = np.flatnonzero(masks["valid"] | masks["calib"] | masks["test"])
    preds = _predict_scored(frame, X, scored, model, baselines)
    result = TargetResult(
        target=target,
        label=label,
        model=model,
        baselines=baselines,
        metrics=_slice_metrics(rows, scored, preds, cfg),
        segment_metrics=_segment_metrics(frame, rows, scored, preds["lgbm"], cfg),
        params=_target_params(params, model, refit_rows),
        importance=model.importance_frame(),
        rows={s: len(i) for s, i in rows.idx.items()},
        seconds=seconds,
        tuning=tuning,
        notes=notes,
    )
    full = {k: np.full(len(frame), np.nan) for k in preds}
    for k, v in preds.items():
        full[k][scored] = v
    return result, full


def train_all(
    frame: pd.DataFrame,
    cfg: ModelConfig,
    feature_names: Sequence[str],
    *,
    horizon_days: int = 60,
) -> TrainResult:
    """Train the churn and expansion models and both baselines on a feature table.

    Parameters
    ----------
    frame : feature table (one row per account_id and as_of) with the feature columns,
        ``label_known`` and the label columns named in ``cfg.targets``.
    cfg : `ModelConfig` (the ``models:`` section of the configuration).
    feature_names : model features, e.g. ``features.catalog.feature_names()``; all must
        be numeric columns of `frame`.
    horizon_days : label horizon of the table (``cfg.features.horizon_days``); used
        to purge rows whose label window crosses a slice boundary.

    Returns
    -------
    TrainResult with the split, one `TargetResult` per target, and ``predictions``:
    ``account_id, as_of, slice`` plus, per target, the label and ``p_<t>`` (calibrated),
    ``p_<t>_raw``, ``p_<t>_logistic``, ``p_<t>_health`` for every valid/calib/test row.
    """
    t_start = time.perf_counter()
    names = list(feature_names)
    if not names:
        raise ValueError("feature_names is empty")
    _check_frame(frame, names, list(cfg.targets.values()))
    frame = frame.reset_index(drop=True)
    split = split_from_config(frame, cfg.split, horizon_days=horizon_days)
    masks = split.masks(frame)
    X = feature_matrix(frame, names, what="feature table")

    scored = masks["valid"] | masks["calib"] | masks["test"]
    slice_name = np.select(
        [masks["valid"], masks["calib"], masks["test"]], ["valid", "calib", "test"], ""
    )
    out: dict[str, Any] = {
        "account_id": frame["account_id"].to_numpy()[scored],
        "as_of": frame["as_of"].to_numpy()[scored],
        "slice": slice_name[scored],
    }
    targets: dict[str, TargetResult] = {}
    for target, label in cfg.targets.items():
        res, preds = _train_target(target, label, frame, X, split, names, cfg)
        targets[target] = res
        out[label] = frame[label].to_numpy(dtype=np.float64, na_value=np.nan)[scored]
        for k, v in preds.items():
            out[f"p_{target}{MODEL_SUFFIX[k]}"] = v[scored]
    return TrainResult(
        split=split,
        feature_names=names,
        targets=targets,
        predictions=pd.DataFrame(out),
        config=cfg.model_dump(mode="json"),
        seconds=time.perf_counter() - t_start,
    )
