"""Figures of model quality: ROC and precision-recall, calibration, lift, importance.

Every function returns a `matplotlib.figure.Figure` built without pyplot, so nothing
touches global state or opens a window; the caller saves it or logs it
(``mlflow.log_figure(fig, "roc_pr.png")``). Inputs are plain arrays keyed by model name,
so the LightGBM model and the baselines appear side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from evaluation.metrics import (
    calibration_table,
    expected_calibration_error,
    lift_table,
    pr_auc,
    roc_auc,
)
from features.names import MODEL_SUFFIX


def _y(y: Any) -> np.ndarray:
    return np.asarray(y, dtype=np.float64).ravel()


def roc_pr_figure(y: Any, scores: Mapping[str, Any], *, title: str = "") -> Figure:
    """ROC curve (left) and precision-recall curve (right), one line per model.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes 0/1.
    scores : mapping of str to array-like of shape (n_samples,)
        Model name -> predicted probabilities.
    title : str
        Figure title (e.g. "churn, test slice").

    Returns
    -------
    Figure
        Two panels; with a single class the ROC panel says the curves are undefined.
    """
    y_arr = _y(y)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax_roc, ax_pr = fig.subplots(1, 2)
    two = y_arr.min() != y_arr.max() if y_arr.size else False
    for name, p in scores.items():
        p_arr = np.asarray(p, dtype=np.float64)
        if not two:
            continue
        fpr, tpr, _ = roc_curve(y_arr, p_arr)
        ax_roc.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(y_arr, p_arr):.3f})")
        prec, rec, _ = precision_recall_curve(y_arr, p_arr)
        ax_pr.step(rec, prec, where="post", label=f"{name} (AP {pr_auc(y_arr, p_arr):.3f})")
    ax_roc.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    base = float(y_arr.mean()) if y_arr.size else 0.0
    ax_pr.axhline(base, color="grey", lw=0.8, ls="--", label=f"base rate {base:.3f}")
    ax_pr.set(xlabel="recall", ylabel="precision", title="precision-recall", ylim=(0, 1.02))
    for ax in (ax_roc, ax_pr):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
    if not two:
        ax_roc.text(0.5, 0.5, "single class: undefined", ha="center", transform=ax_roc.transAxes)
    if title:
        fig.suptitle(title)
    return fig


def calibration_figure(
    y: Any, probs: Mapping[str, Any], *, n_bins: int = 10, title: str = ""
) -> Figure:
    """Reliability diagram over equal-frequency bins, with the ECE of each model.

    Both axes are on the same scale up to the largest bin value, so small
    probabilities (churn is rare) stay readable.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes 0/1.
    probs : mapping of str to array-like of shape (n_samples,)
        Model name -> predicted probabilities.
    n_bins : int
        Equal-frequency bins.
    title : str
        Figure title (default: the number of bins).

    Returns
    -------
    Figure
        One panel with the diagonal of perfect calibration.
    """
    y_arr = _y(y)
    fig = Figure(figsize=(5.5, 5), layout="constrained")
    ax = fig.subplots()
    top = 0.0
    for name, p in probs.items():
        p_arr = np.asarray(p, dtype=np.float64)
        t = calibration_table(y_arr, p_arr, n_bins)
        ece = expected_calibration_error(y_arr, p_arr, n_bins)
        ax.plot(t["mean_p"], t["frac_pos"], marker="o", label=f"{name} (ECE {ece:.3f})")
        top = max(top, float(t["mean_p"].max()), float(t["frac_pos"].max()))
    top = min(1.0, top * 1.05) if top > 0 else 1.0
    ax.plot([0, top], [0, top], color="grey", lw=0.8, ls="--", label="perfect")
    ax.set(
        xlabel="mean predicted probability",
        ylabel="observed frequency",
        xlim=(0, top),
        ylim=(0, top),
        title=title or f"calibration ({n_bins} equal-frequency bins)",
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


def lift_figure(y: Any, scores: Mapping[str, Any], *, n_bins: int = 10, title: str = "") -> Figure:
    """Lift per score decile (left) and cumulative share of positives captured (right).

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Outcomes 0/1.
    scores : mapping of str to array-like of shape (n_samples,)
        Model name -> scores (higher means more likely).
    n_bins : int
        Score bins (10: deciles).
    title : str
        Figure title.

    Returns
    -------
    Figure
        Two panels, with the random baseline on each.
    """
    y_arr = _y(y)
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax_lift, ax_cap = fig.subplots(1, 2)
    for name, p in scores.items():
        t = lift_table(y_arr, np.asarray(p, dtype=np.float64), n_bins)
        ax_lift.plot(t["decile"], t["lift"], marker="o", label=name)
        share = t["n"].cumsum() / t["n"].sum()
        ax_cap.plot(
            np.r_[0.0, share], np.r_[0.0, t["cum_capture"].to_numpy(float)], marker=".", label=name
        )
    ax_lift.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax_lift.set(xlabel="decile (1 = highest score)", ylabel="lift over base rate", title="lift")
    ax_cap.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--", label="random")
    ax_cap.set(xlabel="share of accounts flagged", ylabel="share of events captured", title="gain")
    for ax in (ax_lift, ax_cap):
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def importance_figure(
    importance: pd.DataFrame | pd.Series, *, top: int = 20, title: str = ""
) -> Figure:
    """Horizontal bars of the `top` features by gain share.

    Parameters
    ----------
    importance : DataFrame or Series
        `OutcomeClassifier.importance_frame()` (columns ``feature``, ``gain``) or a Series of
        importance indexed by feature name.
    top : int
        Features shown.
    title : str
        Figure title.

    Returns
    -------
    Figure
        One panel, largest share on top.
    """
    if isinstance(importance, pd.DataFrame):
        s = importance.set_index("feature")["gain"]
    else:
        s = importance
    s = s.astype(float)
    total = s.sum()
    share = (s / total if total > 0 else s).sort_values(ascending=False, kind="stable").head(top)
    fig = Figure(figsize=(7, 0.3 * len(share) + 1.2), layout="constrained")
    ax = fig.subplots()
    ax.barh(share.index[::-1].astype(str), share.to_numpy()[::-1])
    ax.set(xlabel="share of total gain", title=title or f"top {len(share)} features by gain")
    return fig


def target_figures(
    predictions: pd.DataFrame,
    *,
    target: str,
    label: str,
    importance: pd.DataFrame | None = None,
    slice_name: str = "test",
    n_bins: int = 10,
) -> dict[str, Figure]:
    """All figures of one target on one slice, keyed by a file name for logging.

    Parameters
    ----------
    predictions : ``TrainResult.predictions`` (columns ``slice``, `label`, ``p_<target>``,
        ``p_<target>_raw``, ``p_<target>_logistic``, ``p_<target>_health``; missing model
        columns are skipped).
    target, label : e.g. ``'churn'``, ``'label_churn'``.
    importance : ``TargetResult.importance`` for the importance chart (optional).

    Returns
    -------
    dict like ``{'churn_test_roc_pr.png': Figure, ...}``.
    """
    rows = predictions[(predictions["slice"] == slice_name) & predictions[label].notna()]
    y = rows[label].to_numpy(dtype=np.float64)
    probs = {
        name: rows[f"p_{target}{sfx}"].to_numpy(dtype=np.float64)
        for name, sfx in MODEL_SUFFIX.items()
        if f"p_{target}{sfx}" in rows.columns
    }
    ranked = {k: v for k, v in probs.items() if k != "lgbm_raw"}
    where = f"{target}, {slice_name} slice (n={len(rows)})"
    out = {
        f"{target}_{slice_name}_roc_pr.png": roc_pr_figure(y, ranked, title=where),
        f"{target}_{slice_name}_calibration.png": calibration_figure(
            y, probs, n_bins=n_bins, title=f"calibration, {where}"
        ),
        f"{target}_{slice_name}_lift.png": lift_figure(y, ranked, title=where),
    }
    if importance is not None:
        out[f"{target}_importance.png"] = importance_figure(
            importance, title=f"{target}: top features by gain"
        )
    return out
