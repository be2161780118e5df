"""Tracking edges: interrupted runs end FAILED, CSV artifacts are not formulas, skops
loads only fixed types, plot names, tuning trials as nested runs, portable models."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from evaluation.csv_safe import escape_frame, write_csv

REPO = Path(__file__).resolve().parents[2]

_RUN_AND_WAIT = """
import sys, time
from flows import tracking
exp = tracking.configure(sys.argv[1], sys.argv[2], "nrrcast")
with tracking.run(exp, "long") as run:
    print(run.info.run_id, flush=True)
    time.sleep(120)
"""


def _start_run_process(store: dict) -> tuple[subprocess.Popen, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", _RUN_AND_WAIT, store["uri"], store["artifacts"]],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    run_id = proc.stdout.readline().strip()
    assert run_id, "the child did not start a run"
    return proc, run_id


def test_sigterm_ends_the_run_as_failed(mlflow_store):
    proc, run_id = _start_run_process(mlflow_store)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    run = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"]).get_run(run_id)
    assert run.info.status == "FAILED"
    assert "signal" in run.data.tags["failure"]


def test_killed_run_is_marked_failed_at_next_start(mlflow_store):
    from flows import tracking

    proc, run_id = _start_run_process(mlflow_store)
    proc.kill()
    proc.wait(timeout=60)
    client = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"])
    assert client.get_run(run_id).info.status == "RUNNING"
    tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    run = client.get_run(run_id)
    assert run.info.status == "FAILED" and "interrupted" in run.data.tags["failure"]


def test_running_run_of_a_live_process_is_left_alone(mlflow_store):
    from flows import tracking

    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    with tracking.run(exp, "mine") as active:
        assert tracking.fail_stale_runs(exp) == []
        assert mlflow.get_run(active.info.run_id).info.status == "RUNNING"


def test_csv_cells_and_headers_cannot_be_formulas(tmp_path):
    frame = pd.DataFrame(
        {'=HYPERLINK("http://x")': ["=1+1", "+a", "-b", "@c", "ok", None], "n": [-1, 2, 3, 4, 5, 6]}
    )
    out = escape_frame(frame)
    assert list(out.columns) == ['\'=HYPERLINK("http://x")', "n"]
    assert out.iloc[:4, 0].tolist() == ["'=1+1", "'+a", "'-b", "'@c"]
    assert out.iloc[4, 0] == "ok" and pd.isna(out.iloc[5, 0])
    assert out["n"].tolist() == [-1, 2, 3, 4, 5, 6]  # numbers are not formulas
    text = write_csv(frame, tmp_path / "x.csv").read_text(encoding="utf-8-sig")
    assert "\n=" not in text and not text.startswith("=")


def test_logged_csv_artifact_is_escaped(mlflow_store):
    from flows import tracking

    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    with tracking.run(exp, "csv") as active:
        tracking.log_frame(pd.DataFrame({"=cmd": ["@SUM(A1)"]}), "data/x.csv")
    path = mlflow.artifacts.download_artifacts(
        run_id=active.info.run_id, artifact_path="data/x.csv"
    )
    assert Path(path).read_text().splitlines() == ["'=cmd", "'@SUM(A1)"]


def _fitted_classifier():
    sys.path.insert(0, str(REPO / "tests"))
    from models_synth import FEATURES, synthetic_panel

    from models.train import OutcomeClassifier

    panel = synthetic_panel(300, 6)
    y = panel["label_churn"].fillna(0)
    model = OutcomeClassifier(n_estimators=20, min_child_samples=20, num_threads=1).fit(
        panel[FEATURES][:1000], y[:1000], X_calib=panel[FEATURES][1000:], y_calib=y[1000:]
    )
    return model, panel[FEATURES]


def test_skops_trusts_only_the_types_fixed_in_code(mlflow_store, tmp_path):
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    from flows import tracking
    from models.baselines import HealthScoreBaseline

    model, X = _fitted_classifier()
    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    with tracking.run(exp, "skops") as active:
        tracking.log_estimator(model, "estimator/churn.skops")
        # a file holding another type (anyone who can write to mlruns/ could put one there)
        skops.io.dump(HealthScoreBaseline(weights={"a": 1.0}), tmp_path / "evil.skops")
        mlflow.log_artifact(str(tmp_path / "evil.skops"), "estimator")
    back = tracking.load_estimator(active.info.run_id, "estimator/churn.skops")
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))
    with pytest.raises(UntrustedTypesFoundException):
        tracking.load_estimator(active.info.run_id, "estimator/evil.skops")


def test_portable_model_predicts_what_the_estimator_predicts(tmp_path):
    from models.portable import PortableModel

    model, X = _fitted_classifier()
    for method in ("isotonic", "sigmoid", "beta", "pchip"):
        model.set_params(calibration=method)
        model._fit_calibration(X[1000:], (X["login_decay"][1000:] < -0.5).astype(float))
        back = PortableModel.load(
            PortableModel.from_estimator(model, "churn").save(tmp_path / method)
        )
        np.testing.assert_array_equal(back.predict_raw(X), model.predict_raw(X))
        np.testing.assert_allclose(
            back.predict_proba(X)[:, 1], model.predict_proba(X)[:, 1], rtol=0, atol=1e-12
        )
    (tmp_path / "sigmoid" / "booster.txt").unlink()
    with pytest.raises(FileNotFoundError, match="booster.txt"):
        PortableModel.load(tmp_path / "sigmoid")


def test_plot_names_have_one_extension_and_tuning_trials_are_nested_runs(mlflow_store):
    from matplotlib.figure import Figure

    from flows import tracking

    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    trials = pd.DataFrame(
        {"number": [0, 1], "value": [0.30, 0.25], "params_num_leaves": [8, 31],
         "user_attrs_best_iteration": [40, 55]}
    )  # fmt: skip
    with tracking.run(exp, "train") as parent:
        tracking.log_figures({"a.png": Figure(), "b": Figure()}, "plots/churn")
        tracking.log_tuning(exp, "churn", trials)
    client = mlflow.MlflowClient()
    names = sorted(a.path for a in client.list_artifacts(parent.info.run_id, "plots/churn"))
    assert names == ["plots/churn/a.png", "plots/churn/b.png"]
    children = client.search_runs(
        [exp], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert len(children) == 2
    best = [c for c in children if c.data.tags["best"] == "true"]
    assert len(best) == 1 and best[0].data.params["num_leaves"] == "31"
    assert best[0].data.metrics["valid_logloss"] == pytest.approx(0.25)


def test_relative_artifact_root_is_stored_relative(tmp_path, monkeypatch, _mlflow_template):
    import shutil

    from flows import tracking

    monkeypatch.chdir(tmp_path)
    (tmp_path / "mlruns").mkdir()
    shutil.copy(_mlflow_template, tmp_path / "mlruns" / "mlflow.db")
    exp = tracking.configure("sqlite:///mlruns/mlflow.db", "mlruns/artifacts", "nrrcast")
    assert mlflow.get_experiment(exp).artifact_location == "mlruns/artifacts/nrrcast"
    with tracking.run(exp, "rel") as active:
        mlflow.log_text("x", "x.txt")
    assert (
        tmp_path / "mlruns/artifacts/nrrcast" / active.info.run_id / "artifacts/x.txt"
    ).is_file()


@pytest.mark.parametrize("force", [False, True])
def test_unloadable_champion_blocks_promotion_unless_forced(mlflow_store, monkeypatch, force):
    from types import SimpleNamespace

    from flows import tracking
    from flows.config import load_config
    from flows.train import _decide

    def unreadable(name, version):
        raise OSError(f"{name} v{version}: booster.txt is missing")

    monkeypatch.setattr(tracking, "champion_version", lambda name: SimpleNamespace(version="3"))
    monkeypatch.setattr(tracking, "load_version", unreadable)
    metrics = {"n": 100.0, "roc_auc": 0.8}
    result = SimpleNamespace(
        targets={"churn": SimpleNamespace(metrics={"lgbm": {"test": metrics}})}
    )
    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    with tracking.run(exp, "train") as active:
        out = _decide("nrrcast-churn", "churn", result, None, load_config(), force)
    decision = out["decision"]
    assert decision.promote is force
    assert "cannot load nrrcast-churn v3 (@champion)" in decision.reason
    assert (out["error"] is None) is force
    run = mlflow.get_run(active.info.run_id)
    assert "booster.txt is missing" in run.data.tags["churn.champion_error"]
    assert run.data.metrics["churn.candidate.test.roc_auc"] == pytest.approx(0.8)


@pytest.mark.parametrize("force", [False, True])
def test_champion_stays_when_thresholds_cannot_be_refit(monkeypatch, force):
    from types import SimpleNamespace

    import flows.train
    from features.errors import StateError
    from flows.config import load_config
    from flows.train import _refit_in_step
    from models.registry import Decision

    def impossible(*args, **kwargs):
        raise StateError("2026Q4: no outcome of the previous quarter has matured")

    monkeypatch.setattr(flows.train, "refit_for_promotion", impossible)
    model, _ = _fitted_classifier()
    pending = {"churn": {"name": "nrrcast-churn", "version": "2", "champion_model": None,
                         "decision": Decision(True, "promoted: better", "roc_auc", 0.9, 0.8)}}  # fmt: skip
    result = SimpleNamespace(targets={"churn": SimpleNamespace(model=model)})
    refit = _refit_in_step(pending, ["churn"], result, None, load_config(), {}, force)
    assert refit is None
    decision = pending["churn"]["decision"]
    assert decision.promote is force
    assert "no outcome of the previous quarter has matured" in decision.reason
    if not force:
        assert "kept the current champion" in decision.reason
