"""Model training: reproducible for a seed, sklearn-style, baselines alongside, clear errors."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from models_synth import FEATURES, synthetic_panel
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from evaluation.metrics import expected_calibration_error
from models.baselines import HealthScoreBaseline
from models.config import ModelConfig
from models.predict import predict_frame
from models.train import OutcomeClassifier, train_all

SMALL = {
    "lgbm": {
        "num_threads": 1,
        "learning_rate": 0.1,
        "n_estimators": 300,
        "early_stopping_rounds": 30,
        "min_child_samples": 50,
    },
    "refit_on_valid": False,  # the early-stopped booster itself (refit has its own test)
}


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return synthetic_panel(n_accounts=500, months=14, seed=11)


@pytest.fixture(scope="module")
def result(panel):
    return train_all(panel, ModelConfig.model_validate(SMALL), FEATURES, horizon_days=60)


def test_same_data_config_and_seed_give_identical_results(panel, result):
    again = train_all(panel, ModelConfig.model_validate(SMALL), FEATURES, horizon_days=60)
    assert again.flat_metrics() == result.flat_metrics()
    pd.testing.assert_frame_equal(again.predictions, result.predictions)
    other_seed = train_all(
        panel, ModelConfig.model_validate({**SMALL, "seed": 7}), FEATURES, horizon_days=60
    )
    assert not np.array_equal(
        other_seed.predictions["p_churn_raw"], result.predictions["p_churn_raw"]
    )


def test_training_rows_respect_the_split(panel, result):
    split = result.split
    masks = split.masks(panel)
    tr, va = masks["train"], masks["valid"]
    train_as_of = pd.to_datetime(panel.loc[tr, "as_of"])
    assert (train_as_of + pd.Timedelta(days=60) <= split.valid_start).all()
    # the booster saw exactly these rows: a refit on them alone reproduces it
    model = result.models["churn"]
    y = panel["label_churn"]
    ref = clone(model).fit(panel[tr], y[tr], X_valid=panel[va], y_valid=y[va])
    np.testing.assert_array_equal(ref.predict_raw(panel), model.predict_raw(panel))
    assert result.targets["churn"].rows["train"] == int(tr.sum())
    preds = result.predictions
    assert set(preds["slice"]) == {"valid", "calib", "test"}
    assert pd.to_datetime(preds["as_of"]).min() >= split.valid_start
    assert result.test_predictions["as_of"].min() >= split.test_start


def test_every_run_reports_model_and_both_baselines(result):
    for target in ("churn", "expand"):
        metrics = result.targets[target].metrics
        assert set(metrics) == {"lgbm", "lgbm_raw", "logistic", "health"}
        for by_slice in metrics.values():
            assert set(by_slice) == {"valid", "calib", "test"}
        assert metrics["lgbm"]["test"]["roc_auc"] > 0.6
    table = result.comparison("test")
    assert len(table) == 8 and {"roc_auc", "pr_auc", "ece", "lift_top"} <= set(table.columns)
    flat = result.flat_metrics()
    assert "churn.health.test.roc_auc" in flat and "expand.lgbm.calib.ece" in flat
    seg = result.targets["churn"].segment_metrics
    assert set(seg) == {"coverage", "maturity_stage"}
    assert set(seg["coverage"]) == {"high_touch", "standard", "digital"}
    params = result.flat_params()
    assert params["churn.best_iteration"] >= 1 and params["split.test_start"]
    imp = result.targets["churn"].importance
    assert imp["feature"].iloc[0] in {"login_decay", "seat_utilization_30d", "tickets_30d"}


def test_calibrated_probabilities_on_the_calibration_slice(panel, result):
    model = result.models["churn"]
    calib = result.predictions[result.predictions["slice"] == "calib"]
    y = calib["label_churn"].to_numpy()
    assert (
        expected_calibration_error(y, calib["p_churn"])
        <= expected_calibration_error(y, calib["p_churn_raw"]) + 1e-9
    )
    np.testing.assert_allclose(
        model.predict_proba(panel.head(50))[:, 1],
        model.calibrator_.predict(model.predict_raw(panel.head(50))),
    )


def test_estimator_is_sklearn_style_and_pickles(panel, result):
    model = result.models["expand"]
    assert list(model.feature_names_in_) == FEATURES
    assert model.get_params()["feature_names"] == FEATURES
    fresh = clone(model)
    assert not hasattr(fresh, "booster_")
    with pytest.raises(NotFittedError):
        fresh.predict_proba(panel.head(3))
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        restored.predict_proba(panel.head(200)), model.predict_proba(panel.head(200))
    )
    # TreeSHAP contributions of the exposed booster add up to the raw log-odds
    X = panel.head(100)[FEATURES].to_numpy()
    contrib = model.booster_.predict(X, pred_contrib=True)
    raw = model.predict_raw(panel.head(100))
    np.testing.assert_allclose(1 / (1 + np.exp(-contrib.sum(axis=1))), raw, rtol=1e-6)
    assert model.model_ is model.booster_


def test_missing_feature_columns_are_listed(panel, result):
    broken = panel.drop(columns=["seat_utilization_30d", "noise_b"])
    with pytest.raises(ValueError, match=r"lacks 2 of the 9 .*'seat_utilization_30d', 'noise_b'"):
        result.models["churn"].predict_proba(broken)
    with pytest.raises(ValueError, match=r"lacks 2 of the 9"):
        predict_frame(result.models, broken)


def test_predict_frame_columns(panel, result):
    out = predict_frame(result.models, panel.tail(30))
    assert list(out.columns) == [
        "account_id",
        "as_of",
        "p_churn",
        "p_expand",
        "p_churn_raw",
        "p_expand_raw",
    ]
    assert out[["p_churn", "p_expand"]].apply(lambda s: s.between(0, 1).all()).all()


def test_fit_without_slices_and_bad_labels():
    panel = synthetic_panel(n_accounts=120, months=4, seed=2, unmatured=0)
    clf = OutcomeClassifier(
        feature_names=FEATURES, n_estimators=20, num_threads=1, min_child_samples=20
    )
    clf.fit(panel, panel["label_churn"])
    assert clf.calibrator_ is None and clf.best_iteration_ == 20
    np.testing.assert_array_equal(clf.predict_proba(panel)[:, 1], clf.predict_raw(panel))
    with pytest.raises(ValueError, match="0/1"):
        clf.fit(panel, panel["label_churn"].where(panel.index > 3))


def test_health_score_reports_missing_features(panel):
    weights = {"login_decay": 2.0, "tickets_30d": -1.0, "not_a_feature": 1.0}
    h = HealthScoreBaseline(weights=weights, invert=True).fit(panel)
    assert h.missing_features_ == ["not_a_feature"]
    healthy = panel.assign(login_decay=10.0, tickets_30d=0)
    sick = panel.assign(login_decay=-10.0, tickets_30d=20)
    assert (h.predict_raw(sick.head(5)) > h.predict_raw(healthy.head(5))).all()
    with pytest.raises(ValueError, match="none of the health-score features"):
        HealthScoreBaseline(weights={"x": 1.0}).fit(panel)


def test_optuna_search_is_seeded(panel):
    cfg = {**SMALL, "tune": {"enabled": True, "n_trials": 2}, "targets": {"churn": "label_churn"}}
    a = train_all(panel, ModelConfig.model_validate(cfg), FEATURES)
    b = train_all(panel, ModelConfig.model_validate(cfg), FEATURES)
    ta, tb = a.targets["churn"].tuning, b.targets["churn"].tuning
    assert len(ta) == 2
    pd.testing.assert_frame_equal(
        ta[["value", "params_num_leaves"]], tb[["value", "params_num_leaves"]]
    )
    assert a.targets["churn"].params["num_leaves"] == b.targets["churn"].params["num_leaves"]


def test_refit_on_valid_uses_only_rows_matured_before_calibration(panel, result):
    cfg = ModelConfig.model_validate(
        {**SMALL, "refit_on_valid": True, "targets": {"churn": "label_churn"}}
    )
    res = train_all(panel, cfg, FEATURES, horizon_days=60)
    split = res.split
    allowed = (
        split.matured_before(panel, split.calib_start) & panel["label_churn"].notna().to_numpy()
    )
    label_dates = pd.to_datetime(panel.loc[allowed, "as_of"]) + pd.Timedelta(days=60)
    assert (label_dates <= split.calib_start).all()
    assert res.targets["churn"].params["refit_rows"] == int(allowed.sum())
    assert (
        allowed.sum()
        > result.targets["churn"].rows["train"] + result.targets["churn"].rows["valid"]
    )
    assert res.models["churn"].best_iteration_ == result.targets["churn"].params["best_iteration"]
