"""Raw scores become calibrated probabilities in one place, whoever applies the calibrator.

The fitted estimator, the estimator rebuilt from its numbers, the portable model, the
registered pyfunc, a thresholds file read by ``nrrcast score`` and the scorer itself all
evaluate the same stored numbers with ``models.portable.apply_calibration``: identical
probabilities, bit for bit, also at the edges (0, 1, NaN, infinities).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from models.calibrate import ProbabilityCalibrator, fit_calibrator
from models.config import CalibrationConfig, ModelConfig
from models.portable import ParamCalibrator, PortableModel, apply_calibration

ROOT = Path(__file__).resolve().parents[2]
METHODS = ["pchip", "beta", "sigmoid", "isotonic"]
VERSIONS = {"churn": "3", "expand": "5"}


def _raw_and_outcomes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores that are too confident: a calibrator has something to correct."""
    rng = np.random.default_rng(seed)
    p = 0.003 + 0.9 * rng.beta(0.8, 9.0, n)
    raw = 1.0 / (1.0 + np.exp(-(1.7 * np.log(p / (1 - p)) + 1.2)))
    return raw, rng.binomial(1, p).astype(float)


def _thresholds_in_force(tmp_path: Path, calibrator: dict) -> dict:
    """The churn calibrator as ``nrrcast score`` reads it from a thresholds file."""
    from evaluation.thresholds_file import thresholds_to_yaml
    from flows.config import load_config
    from flows.score import thresholds_in_force

    thresholds_to_yaml(
        {
            "quarter": "2026Q1",
            "churn_threshold": 0.2,
            "expand_threshold": 0.3,
            "calibrator": {"churn": {"input": "p_churn_raw", **calibrator}},
            "model_versions": VERSIONS,
        },
        tmp_path / "thresholds",
    )
    cfg = load_config(overrides={"paths": {"thresholds_dir": str(tmp_path / "thresholds")}})
    found, calibrators = thresholds_in_force(cfg, dict(VERSIONS))
    assert found["quarter"] == "2026Q1" and set(calibrators) == {"churn"}
    return calibrators


@pytest.mark.parametrize("method", METHODS)
def test_every_path_gives_the_same_probabilities_from_one_stored_calibrator(method, tmp_path):
    raw, y = _raw_and_outcomes(4000, seed=1)
    cal = fit_calibrator(raw, y, method)
    params = json.loads(json.dumps(cal.to_params()))  # what a model or thresholds file holds
    probe = np.r_[raw, 0.0, 1e-9, 0.5, 1.0 - 1e-9, 1.0, np.nan, np.inf, -np.inf]
    expected = cal.predict(probe)
    paths = {
        "estimator from its numbers": ProbabilityCalibrator.from_params(params).predict,
        "portable model / pyfunc": ParamCalibrator(params).predict,
        "stored numbers": lambda p: apply_calibration(params, p),
        "nrrcast score, thresholds file": _thresholds_in_force(tmp_path, params)["churn"],
    }
    for name, predict in paths.items():
        got = predict(probe)
        assert got.dtype == np.float64, name
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert np.isnan(expected[-3:]).all()  # a score that is not a number gives no probability
    assert ((expected[:-3] >= 1e-6) & (expected[:-3] <= 1 - 1e-6)).all()


def test_the_arithmetic_is_written_once():
    """Only models/portable.py (shipped with the registered model) evaluates calibrators."""
    import models.calibrate
    import models.portable

    assert models.calibrate.apply_calibration is models.portable.apply_calibration
    holders = sorted(
        str(path.relative_to(ROOT))
        for folder in ("features", "models", "evaluation", "flows", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if "PchipInterpolator" in path.read_text()
    )
    assert holders == ["models/portable.py"]


@pytest.fixture(scope="module")
def fitted() -> tuple[dict, pd.DataFrame]:
    """Two small models with their own calibrators, and a 400-account snapshot."""
    from features.catalog import feature_names
    from models.train import OutcomeClassifier

    rng = np.random.default_rng(5)
    names = feature_names()
    n_fit, n_book = 2400, 400
    health = rng.normal(size=n_fit + n_book)
    X = pd.DataFrame(
        {name: rng.normal(size=len(health)) + (0.8 if j % 2 else -0.5) * health
         for j, name in enumerate(names)}
    )  # fmt: skip
    X.loc[rng.random(len(X)) < 0.1, names[0]] = np.nan
    models = {}
    for seed, (target, sign) in enumerate((("churn", 1.5), ("expand", -1.2))):
        y = (rng.random(n_fit) < 1 / (1 + np.exp(2.0 + sign * health[:n_fit]))).astype(float)
        models[target] = OutcomeClassifier(
            n_estimators=30, num_leaves=7, min_child_samples=20, num_threads=1, random_state=seed
        ).fit(X.iloc[:1600], y[:1600], X_calib=X.iloc[1600:n_fit], y_calib=y[1600:])
    book = X.iloc[n_fit:].reset_index(drop=True)
    context = pd.DataFrame(
        {
            "account_id": [f"acct-{i:04d}" for i in range(n_book)],
            "as_of": pd.Series([pd.Timestamp("2026-03-02")] * n_book, dtype="datetime64[us]"),
            "csm_id": [f"csm-{i % 8}" for i in range(n_book)],
            "coverage": rng.choice(["digital", "standard", "high_touch"], n_book),
            "arr": np.round(rng.lognormal(10.5, 1.0, n_book), 2),
            "maturity_level": rng.integers(0, 3, n_book).astype(np.float64),
        }
    )
    context["tam_usd"] = context["arr"] * rng.uniform(1.0, 40.0, n_book)
    context["whitespace"] = context["tam_usd"] - context["arr"]
    context["maturity_stage"] = np.array(["Experimenter", "Builder", "Transformer"])[
        context["maturity_level"].to_numpy(dtype=int)
    ]
    book = pd.concat([context, book.drop(columns=context.columns, errors="ignore")], axis=1)
    return models, book


def test_pyfunc_and_scorer_give_identical_probabilities_from_the_same_json(fitted, tmp_path):
    from flows.pyfunc_model import ARTIFACT, NrrcastModel
    from models.scoring import score_snapshot

    models, book = fitted
    raw, y = _raw_and_outcomes(3000, seed=2)
    quarterly = fit_calibrator(raw, y, "auto", random_state=0).to_params()
    assert quarterly != models["churn"].calibrator_.to_params()
    text = json.dumps(quarterly)  # the JSON a thresholds file and the pyfunc param carry

    portable = {t: PortableModel.from_estimator(m, t) for t, m in models.items()}
    pyfunc = {}
    for target, part in portable.items():
        wrapper = NrrcastModel()
        wrapper.load_context(
            SimpleNamespace(artifacts={ARTIFACT: str(part.save(tmp_path / target))})
        )
        params = {"calibration": text} if target == "churn" else None
        pyfunc[target] = wrapper.predict(None, book, params=params)

    calibrators = _thresholds_in_force(tmp_path, json.loads(text))
    scored = score_snapshot(
        book,
        portable,
        churn_threshold=0.2,
        expand_threshold=0.3,
        versions=VERSIONS,
        calibrators=calibrators,
        progress=False,
    ).scores
    assert scored["account_id"].tolist() == book["account_id"].tolist()
    for target in ("churn", "expand"):
        for column in (f"p_{target}", f"p_{target}_raw"):
            np.testing.assert_array_equal(
                scored[column].to_numpy(), pyfunc[target][column].to_numpy(), err_msg=column
            )
    # the expansion model kept its own calibrator: what the estimator itself predicts
    np.testing.assert_array_equal(
        scored["p_expand"].to_numpy(), models["expand"].predict_proba(book)[:, 1]
    )
    np.testing.assert_array_equal(
        scored["p_churn"].to_numpy(), apply_calibration(quarterly, scored["p_churn_raw"])
    )


def test_removed_calibration_settings_are_a_clear_error():
    assert set(CalibrationConfig.model_fields) == {"method"}
    for key, value in (("n_folds", 5), ("time_ordered", True)):
        with pytest.raises(ValidationError, match=f"{key}: no longer a setting .*delete it"):
            ModelConfig.model_validate({"calibration": {"method": "auto", key: value}})
    assert "n_folds" not in (ROOT / "configs" / "default.yaml").read_text()
