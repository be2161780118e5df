"""Rolling-origin backtest by quarter: retrain, recalibrate, score a quarter, compare.

For each quarter ``Q`` (``[start, end)``):

1. The trainer receives the panel rows with ``as_of < end``, the labels of rows that had
   not matured at ``start`` (``as_of + horizon >= start`` and ``as_of < start``) blanked:
   it may train only on what was known at the quarter start. The quarter's own rows keep
   their labels so that a trainer with a built-in test slice (``models.train.train_all``)
   can score them; the backtest judges them with the panel's labels, not the trainer's.
2. The trainer returns predictions for a ``calib`` slice (the latest matured snapshots
   before ``Q``, not trained on) and a ``test`` slice (the quarter's snapshots).
3. Quarterly recalibration, as in production: :func:`evaluation.thresholds.calibrate_thresholds`
   refits the calibrator on the calib slice and chooses the thresholds in force for ``Q``.
4. The quarter's scores, recalibrated, are judged: ROC-AUC, PR-AUC, Brier, ECE, top-decile
   lift, and flags / precision / recall at the thresholds in force.
5. Optionally, next-quarter NRR is forecast from the scores at the quarter's first snapshot
   (:class:`evaluation.nrr.NRRForecaster`, fitted on quarters ended before ``Q``) and
   compared with what happened.

Predictions use the column names of ``models.train.TrainResult.predictions``:
``p_<target>`` (LightGBM, calibrated), ``p_<target>_raw``, ``p_<target>_logistic``,
``p_<target>_health``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluation.config import EvalConfig
from evaluation.metrics import binary_metrics, expected_calibration_error
from evaluation.nrr import NRRForecaster, forecast_error
from evaluation.thresholds import (
    account_weeks,
    calibrate_thresholds,
    evaluate_threshold,
    quarter_bounds,
)
from features import names
from features.names import TARGETS
from models.portable import apply_calibration

MODEL_SUFFIX: dict[str, str] = {m: names.MODEL_SUFFIX[m] for m in names.MODELS}
"""Model id (`features.names.MODELS`) -> suffix of its probability column (``p_churn`` + suffix)."""

Trainer = Callable[[pd.DataFrame, str], pd.DataFrame]
"""``trainer(frame, quarter) -> predictions``.

``predictions`` has ``account_id, as_of, slice`` (``"calib"`` / ``"test"``; other slices
are ignored) and the probability columns of :data:`MODEL_SUFFIX` for each target, plus
``p_<target>_raw`` for LightGBM when available (recalibration then starts from it).
"""

TABLE_COLUMNS = (
    "quarter",
    "target",
    "model",
    "n",
    "base_rate",
    "mean_p",
    "roc_auc",
    "pr_auc",
    "brier",
    "ece",
    "ece_issued",
    "ece_raw",
    "lift_top",
    "threshold",
    "threshold_status",
    "flags",
    "flags_per_csm_week",
    "precision_at_threshold",
    "recall_at_threshold",
    "calib_rows",
)


@dataclass
class BacktestResult:
    """Backtest output.

    Attributes
    ----------
    table : DataFrame
        One row per quarter, target and model (columns :data:`TABLE_COLUMNS`).
        ``ece`` is after quarterly recalibration; ``ece_issued`` is the trainer's own
        calibrated output; ``ece_raw`` the uncalibrated LightGBM score.
    thresholds : dict
        ``thresholds[quarter][model]`` = the thresholds file content in force.
    nrr : DataFrame or None
        Forecast vs realised NRR per quarter (:func:`evaluation.nrr.forecast_error`).
    seconds : dict
        Wall time per quarter.
    splits : dict
        Per quarter, the trainer's description of its split (``predictions.attrs["split"]``).
    skipped : list of dict
        Models the trainer returned no probabilities for (e.g. a health score without
        any of its features), per quarter: ``{"quarter", "model", "missing"}``.
    """

    table: pd.DataFrame
    thresholds: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    nrr: pd.DataFrame | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    splits: dict[str, Any] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def point_in_time_frame(panel: pd.DataFrame, quarter: str, horizon_days: int) -> pd.DataFrame:
    """Rows a trainer may see for ``quarter``: before its end, immature labels blanked.

    A snapshot before the quarter whose outcome window reaches into it has a label not
    known at the quarter start: its labels (and ``arr_h``) become NaN and ``label_known``
    False, so nothing trained for the quarter sees its outcomes.

    Parameters
    ----------
    panel : DataFrame
        Feature panel with ``as_of``, ``label_*`` columns and optionally ``arr_h``.
    quarter : str
        The quarter, e.g. ``"2026Q1"``.
    horizon_days : int
        Outcome window of the labels, in days.

    Returns
    -------
    DataFrame
        A copy of the rows with ``as_of`` before the quarter's end.
    """
    start, end = quarter_bounds(quarter)
    as_of = pd.to_datetime(panel["as_of"])
    frame = panel.loc[as_of < end].copy()
    as_of = as_of[as_of < end]
    immature = ((as_of + pd.Timedelta(days=horizon_days)) >= start) & (as_of < start)
    labels = [c for c in frame.columns if c.startswith("label_") and c != "label_known"]
    frame.loc[immature, labels] = np.nan
    if "arr_h" in frame.columns:
        frame.loc[immature, "arr_h"] = np.nan
    if "label_known" in frame.columns:
        frame["label_known"] = frame["label_known"].astype(bool) & ~immature.to_numpy()
    return frame


LEAN_SPLIT = {"valid_dates": 1, "calib_dates": 1, "min_train_dates": 1}
"""Split used when the configured one does not fit the history before a quarter."""


def models_trainer(
    model_config: Any,
    feature_names: Sequence[str],
    *,
    horizon_days: int = 60,
    allow_unpurged: bool = False,
) -> Trainer:
    """A :data:`Trainer` running ``models.train.train_all`` with the quarter as test slice.

    The test slice is the quarter's snapshot dates, so ``calib`` is the latest matured
    dates before it. Splits are tried in order: the configured valid / calib counts;
    :data:`LEAN_SPLIT` (one valid and one calib date) for a short history; and, only
    with ``allow_unpurged=True``, the lean split without the purge between slices
    (labels are still only those known at the quarter start, but neighbouring slices
    then share outcome windows). The split used is in ``predictions.attrs["split"]``.

    Parameters
    ----------
    model_config : ModelConfig
        Model settings (``split``, LightGBM, baselines) passed to ``train_all``.
    feature_names : sequence of str
        Feature columns of the panel.
    horizon_days : int, default 60
        Outcome window of the labels, in days.
    allow_unpurged : bool, default False
        Also try the lean split without the purge when no other fits.

    Returns
    -------
    Trainer
        ``train(frame, quarter) -> predictions``; it raises ValueError when the quarter
        has no snapshot with a known label or no split fits the history.
    """
    names = list(feature_names)

    def train(frame: pd.DataFrame, quarter: str) -> pd.DataFrame:
        from models.split import split_from_config
        from models.train import train_all

        start, _ = quarter_bounds(quarter)
        as_of = pd.to_datetime(frame["as_of"])
        test_dates = int(as_of[(as_of >= start) & frame["label_known"].astype(bool)].nunique())
        if test_dates == 0:
            raise ValueError(f"backtest {quarter}: no snapshot with a known label in the quarter")
        fixed = {"test_dates": test_dates, "valid_start": None, "calib_start": None}
        fixed["test_start"] = None
        candidates = [("configured", {}), ("lean", LEAN_SPLIT)]
        if allow_unpurged:
            candidates.append(("lean_unpurged", {**LEAN_SPLIT, "purge": False}))
        problems = []
        for name, update in candidates:
            split = model_config.split.model_copy(update={**update, **fixed})
            try:
                split_from_config(frame, split, horizon_days=horizon_days)
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
                continue
            cfg = model_config.model_copy(update={"split": split})
            result = train_all(frame, cfg, names, horizon_days=horizon_days)
            if result.split.test_start < start:
                raise RuntimeError(
                    f"backtest {quarter}: test slice starts {result.split.test_start.date()} "
                    "before the quarter"
                )
            preds = result.predictions
            preds.attrs["split"] = {"kind": name, **result.split.to_dict()}
            return preds
        raise ValueError(f"backtest {quarter}: no split fits the history; " + "; ".join(problems))

    return train


def rolling_backtest(
    panel: pd.DataFrame,
    quarters: Sequence[str],
    trainer: Trainer,
    *,
    horizon_days: int = 60,
    config: EvalConfig | None = None,
    actuals: pd.DataFrame | None = None,
    n_csms: int | None = None,
    nrr_model: str = "lgbm",
) -> BacktestResult:
    """Rolling-origin backtest over ``quarters``.

    Parameters
    ----------
    panel : DataFrame
        Feature table: ``account_id, as_of, csm_id, arr, label_known``, the labels
        ``label_churn`` / ``label_expand`` and whatever features the trainer uses.
    quarters : sequence of str
        Quarters to score, e.g. ``["2025Q4", "2026Q1", "2026Q2", "2026Q3"]``.
    trainer : Trainer
        See :data:`Trainer`; :func:`models_trainer` wraps ``models.train.train_all``.
    horizon_days : int, default 60
    config : EvalConfig, optional
        ``backtest`` (models, ECE bins, top fraction) and ``thresholds`` sections.
    actuals : DataFrame, optional
        Quarterly :func:`evaluation.nrr.nrr_table` (no segments); enables the NRR
        forecast check.
    n_csms : int, optional
        CSMs sharing the flags; default: distinct ``csm_id`` of the scored rows.
    nrr_model : str, default "lgbm"
        Model whose probabilities drive the NRR forecast.

    Returns
    -------
    BacktestResult
    """
    cfg = config or EvalConfig()
    bt = cfg.backtest
    _check_panel(panel, bt.models)
    panel = panel.assign(as_of=pd.to_datetime(panel["as_of"]).astype("datetime64[us]"))
    context = [c for c in ("csm_id", "arr") if c in panel.columns]
    truth = panel[["account_id", "as_of", *context, *(y for _, y in TARGETS.values())]]

    rows: list[dict[str, Any]] = []
    in_force: dict[str, dict[str, dict[str, Any]]] = {}
    forecasts: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    splits: dict[str, Any] = {}
    skipped: list[dict[str, Any]] = []
    for quarter in quarters:
        t0 = time.perf_counter()
        split, calib, test = _quarter_predictions(
            panel, truth, quarter, trainer, horizon_days, bt.min_train_rows
        )
        if split is not None:
            splits[quarter] = split
        in_force[quarter] = {}
        for model in bt.models:
            absent = [c for t in TARGETS if (c := _columns(model, t)[0]) not in calib.columns]
            if absent:
                skipped.append({"quarter": quarter, "model": model, "missing": absent})
                continue
            res, p_test = _recalibrate(calib, test, model, quarter, horizon_days, cfg, n_csms)
            in_force[quarter][model] = res.as_dict()
            rows.extend(_judge(test, p_test, res, model, quarter, cfg, len(calib)))
            if model == nrr_model and actuals is not None:
                fc = _forecast(panel, test, p_test, actuals, quarter, horizon_days, cfg)
                if fc is not None:
                    forecasts.append(fc)
        seconds[quarter] = time.perf_counter() - t0
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    nrr = forecast_error(forecasts, actuals) if forecasts and actuals is not None else None
    return BacktestResult(
        table=table,
        thresholds=in_force,
        nrr=nrr,
        seconds=seconds,
        splits=splits,
        skipped=skipped,
    )


def _check_panel(panel: pd.DataFrame, models: Sequence[str]) -> None:
    """Stop on a panel without the needed columns or on a model id nobody knows."""
    need = ["account_id", "as_of", "arr", "label_known", *(y for _, y in TARGETS.values())]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"panel: missing column(s) {missing} ({len(panel)} rows)")
    unknown = sorted(set(models) - set(MODEL_SUFFIX))
    if unknown:
        raise ValueError(f"backtest.models: unknown {unknown}; expected {sorted(MODEL_SUFFIX)}")


def _quarter_predictions(
    panel: pd.DataFrame,
    truth: pd.DataFrame,
    quarter: str,
    trainer: Trainer,
    horizon_days: int,
    min_train_rows: int,
) -> tuple[Any, pd.DataFrame, pd.DataFrame]:
    """The trainer's predictions on what was known at the quarter start, with the panel's
    labels: the split it reports (or None), its calib slice and the quarter's test rows
    (both must be non-empty)."""
    start, end = quarter_bounds(quarter)
    frame = point_in_time_frame(panel, quarter, horizon_days)
    n_train = int((frame["label_known"].astype(bool) & (frame["as_of"] < start)).sum())
    if n_train < min_train_rows:
        raise ValueError(
            f"backtest {quarter}: {n_train} rows matured before {start.date()}, fewer "
            f"than backtest.min_train_rows={min_train_rows}; start at a later quarter"
        )
    preds = trainer(frame, quarter)
    split = preds.attrs.get("split")
    preds = _attach_truth(preds, truth, quarter)
    calib = preds[preds["slice"] == "calib"]
    test = preds[(preds["slice"] == "test") & (preds["as_of"] >= start)]
    test = test[test["as_of"] < end]
    if len(calib) == 0 or len(test) == 0:
        raise ValueError(
            f"backtest {quarter}: trainer returned {len(calib)} calib and {len(test)} "
            "test rows; both are needed"
        )
    return split, calib, test


def _attach_truth(preds: pd.DataFrame, truth: pd.DataFrame, quarter: str) -> pd.DataFrame:
    """Predictions joined to the panel's ids, context and labels (the trainer's are dropped)."""
    missing = [c for c in ("account_id", "as_of", "slice") if c not in preds.columns]
    if missing:
        raise ValueError(f"backtest {quarter}: trainer predictions lack {missing}")
    labels = [y for _, y in TARGETS.values()]
    keep = [c for c in preds.columns if c not in labels and c not in ("csm_id", "arr")]
    out = preds[keep].assign(as_of=pd.to_datetime(preds["as_of"]).astype("datetime64[us]"))
    out = out.merge(truth, on=["account_id", "as_of"], how="left", validate="one_to_one")
    return out


def _columns(model: str, target: str) -> tuple[str, str]:
    """(issued probability column, raw score column) of a model and target."""
    p_col = TARGETS[target][0]
    issued = p_col + MODEL_SUFFIX[model]
    raw = f"{p_col}_raw" if model == "lgbm" else issued
    return issued, raw


def _recalibrate(
    calib: pd.DataFrame,
    test: pd.DataFrame,
    model: str,
    quarter: str,
    horizon_days: int,
    cfg: EvalConfig,
    n_csms: int | None,
) -> tuple[Any, dict[str, np.ndarray]]:
    """Thresholds in force for the quarter and the quarter's recalibrated probabilities."""
    scores = calib[["account_id", "as_of"] + (["csm_id"] if "csm_id" in calib else [])].copy()
    for target, (p_col, y_col) in TARGETS.items():
        issued, raw = _columns(model, target)
        if issued not in calib.columns:
            raise ValueError(f"backtest {quarter}: predictions lack {issued!r} for {model}")
        raw = raw if raw in calib.columns else issued
        scores[f"{p_col}_raw"] = calib[raw].to_numpy()
        scores[p_col] = calib[issued].to_numpy()
        scores[y_col] = calib[y_col].to_numpy()
    res = calibrate_thresholds(
        scores,
        quarter=quarter,
        horizon_days=horizon_days,
        n_csms=n_csms,
        config=cfg.thresholds,
        window="all",
    )
    p_test = {}
    for target in TARGETS:
        issued, raw = _columns(model, target)
        raw = raw if raw in test.columns else issued
        p_test[target] = apply_calibration(res.calibrator[target], test[raw].to_numpy())
    return res, p_test


def _judge(
    test: pd.DataFrame,
    p_test: Mapping[str, np.ndarray],
    res: Any,
    model: str,
    quarter: str,
    cfg: EvalConfig,
    calib_rows: int,
) -> list[dict[str, Any]]:
    bt = cfg.backtest
    out = []
    for target, (_, y_col) in TARGETS.items():
        issued, raw = _columns(model, target)
        known = test[y_col].notna().to_numpy()
        y = test.loc[known, y_col].to_numpy(dtype="float64")
        p = p_test[target][known]
        m = binary_metrics(y, p, n_bins=bt.ece_bins, top_fraction=bt.top_fraction)
        chosen = res.churn if target == "churn" else res.expand
        weeks = account_weeks(test.loc[known].assign(_p=p))
        n_csms = res.window["n_csms"]
        at = evaluate_threshold(
            weeks["_p"].to_numpy(),
            weeks[y_col].to_numpy(dtype="float64"),
            chosen["threshold"],
            n_weeks=int(weeks["_week"].nunique()),
            n_csms=n_csms,
        )
        ece_issued = expected_calibration_error(y, test.loc[known, issued], bt.ece_bins)
        ece_raw = (
            expected_calibration_error(y, test.loc[known, raw], bt.ece_bins)
            if raw != issued and raw in test.columns
            else np.nan
        )
        out.append(
            {
                "quarter": quarter,
                "target": target,
                "model": model,
                "n": int(m["n"]),
                "base_rate": m["base_rate"],
                "mean_p": m["mean_p"],
                "roc_auc": m["roc_auc"],
                "pr_auc": m["pr_auc"],
                "brier": m["brier"],
                "ece": m["ece"],
                "ece_issued": ece_issued,
                "ece_raw": ece_raw,
                "lift_top": m["lift_top"],
                "threshold": chosen["threshold"],
                "threshold_status": chosen["status"],
                "flags": at["flags"],
                "flags_per_csm_week": at["flags_per_csm_week"],
                "precision_at_threshold": at["precision"],
                "recall_at_threshold": at["recall"],
                "calib_rows": calib_rows,
            }
        )
    return out


def _forecast(
    panel: pd.DataFrame,
    test: pd.DataFrame,
    p_test: Mapping[str, np.ndarray],
    actuals: pd.DataFrame,
    quarter: str,
    horizon_days: int,
    cfg: EvalConfig,
) -> dict[str, Any] | None:
    """NRR forecast for ``quarter`` from its first snapshot, fitted on earlier quarters."""
    start, _ = quarter_bounds(quarter)
    act = actuals.assign(period_start=pd.to_datetime(actuals["period_start"]))
    past = act[(act["period_start"] + pd.DateOffset(months=3)) <= start]
    known = pd.to_datetime(panel["as_of"]) + pd.Timedelta(days=horizon_days) < start
    history = panel.loc[known]
    first = test["as_of"].min()
    snap = test.assign(p_churn=p_test["churn"], p_expand=p_test["expand"])
    snap = snap[snap["as_of"] == first]
    try:
        forecaster = NRRForecaster(cfg.nrr.forecast_history_quarters).fit(history, past)
    except ValueError:
        return None
    out = forecaster.predict(snap)
    return {
        "period": quarter,
        "snapshot": str(pd.Timestamp(first).date()),
        "history": ",".join(forecaster.fitted_quarters_),
        **out,
    }
