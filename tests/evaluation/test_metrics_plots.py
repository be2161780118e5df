"""Quality figures render from plain arrays (no pyplot state) and from train_all predictions."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaluation.plots import (
    calibration_figure,
    importance_figure,
    lift_figure,
    roc_pr_figure,
    target_figures,
)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def test_figures_render_side_by_side():
    rng = np.random.default_rng(0)
    y = rng.binomial(1, 0.1, 500)
    scores = {
        "lgbm": np.clip(0.1 + 0.3 * y + rng.normal(0, 0.1, 500), 0, 1),
        "health": rng.random(500),
    }
    for fig in (
        roc_pr_figure(y, scores, title="churn"),
        calibration_figure(y, scores),
        lift_figure(y, scores),
        importance_figure(pd.Series({"a": 3.0, "b": 1.0})),
    ):
        assert _png(fig).startswith(b"\x89PNG")
    legend = [t.get_text() for t in roc_pr_figure(y, scores).axes[0].get_legend().get_texts()]
    assert any(t.startswith("lgbm (AUC") for t in legend)
    # a single-class slice still draws
    assert _png(roc_pr_figure(np.zeros(10), {"m": np.linspace(0, 1, 10)}))


def test_target_figures_from_prediction_frame():
    rng = np.random.default_rng(1)
    n = 300
    preds = pd.DataFrame(
        {
            "slice": np.where(np.arange(n) < 200, "test", "calib"),
            "label_churn": rng.binomial(1, 0.2, n).astype(float),
            "p_churn": rng.random(n),
            "p_churn_raw": rng.random(n),
            "p_churn_logistic": rng.random(n),
        }
    )
    imp = pd.DataFrame({"feature": ["x", "y"], "gain": [2.0, 1.0]})
    figs = target_figures(preds, target="churn", label="label_churn", importance=imp)
    assert set(figs) == {
        "churn_test_roc_pr.png",
        "churn_test_calibration.png",
        "churn_test_lift.png",
        "churn_importance.png",
    }
    assert all(isinstance(f, Figure) for f in figs.values())
