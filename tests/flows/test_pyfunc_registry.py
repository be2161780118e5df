"""The registered model end to end: a pyfunc that loads outside the repository, a registry
that compares like with like, thresholds kept in step with promotion, complete runs.

One small simulated world; the flows run once (module fixture) in a working directory of
their own with the default relative paths (`sqlite:///mlruns/mlflow.db`, `mlruns/artifacts`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("world") / "raw"
    simulate(SimConfig(accounts=500, months=16, seed=3), out, progress=False)
    return out


def _write_config(home: Path, world: Path, seed: int = 42) -> Path:
    cfg = {
        "paths": {"raw": str(world), "thresholds_dir": "thresholds"},
        "models": {
            "seed": seed,
            # the retrained model (another seed) is promoted unless clearly worse
            "registry": {"tolerance": 0.05},
            "split": {"valid_dates": 1, "calib_dates": 2, "test_dates": 2, "min_train_dates": 2},
        },
    }
    path = home / f"config-{seed}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _flags(scored: dict) -> tuple[int, int]:
    return int(scored["at_risk_accounts"]), int(scored["expansion_ready_accounts"])


@pytest.fixture(scope="module")
def pipeline(world, tmp_path_factory, _mlflow_template, prefect_harness):
    """Train, calibrate, score; retrain with another seed (promoted), score again."""
    from flows.calibrate import calibrate_flow
    from flows.score import score_flow
    from flows.train import train_flow

    home = tmp_path_factory.mktemp("home")
    (home / "mlruns").mkdir()
    shutil.copy(_mlflow_template, home / "mlruns" / "mlflow.db")
    before = os.getcwd()
    os.chdir(home)
    try:
        config = str(_write_config(home, world))
        first = train_flow(config_path=config)
        calibrated = calibrate_flow(config_path=config)
        scored = score_flow(config_path=config)
        thresholds_v1 = yaml.safe_load(Path(calibrated["path"]).read_text())
        retrain_config = str(_write_config(home, world, seed=7))
        second = train_flow(config_path=retrain_config)
        rescored = score_flow(config_path=config)
    finally:
        os.chdir(before)
    return {"home": home, "config": config, "train": first, "train2": second,
            "calibrate": calibrated, "thresholds_v1": thresholds_v1, "score": scored,
            "score2": rescored, "uri": f"sqlite:///{home / 'mlruns' / 'mlflow.db'}"}  # fmt: skip


@pytest.fixture(autouse=True)
def _in_home(pipeline, monkeypatch):
    """Paths in the store and config are relative to the working directory, as in use."""
    monkeypatch.chdir(pipeline["home"])


def _client(pipeline) -> mlflow.MlflowClient:
    mlflow.set_tracking_uri(pipeline["uri"])
    return mlflow.MlflowClient(tracking_uri=pipeline["uri"])


def _snapshot(pipeline) -> pd.DataFrame:
    """The feature rows `nrrcast score` scored (rebuilt point in time)."""
    from features.build import build_feature_table
    from flows.config import load_config
    from flows.tasks import open_validated

    cfg = load_config(pipeline["config"])
    home = Path(pipeline["home"])
    loaded = open_validated(Path(cfg.paths.raw), home / "quarantine-test")
    day = pd.Timestamp(pipeline["score2"]["as_of"]).date()
    table = build_feature_table(
        loaded.source.con, [day], cfg.features, data_end=loaded.data_end, progress=False
    )
    loaded.source.con.close()
    return table


_CLEAN_SCRIPT = r"""
import json, sys
sys.path[:] = [p for p in sys.path if p and "{repo}" not in p] + [{site!r}]
for name in ("features", "models", "flows", "evaluation"):
    try:
        __import__(name)
    except ImportError:
        pass
    else:
        raise SystemExit(f"{{name}} is importable: the repository leaks into this process")
import mlflow, pandas as pd
mlflow.set_tracking_uri("sqlite:///mlruns/mlflow.db")
mlflow.set_experiment("nrrcast")
X = pd.read_parquet("X.parquet")
model = mlflow.pyfunc.load_model("models:/nrrcast-churn@champion")
calibration = open("calibration.json").read()
own = model.predict(X)
quarterly = model.predict(X, params={{"calibration": calibration, "reasons": 2}})
own.to_parquet("own.parquet")
quarterly.to_parquet("quarterly.parquet")
with mlflow.start_run(run_name="from the moved store") as run:
    mlflow.log_text("hello", "moved.txt")
print(json.dumps({{"run_id": run.info.run_id, "artifact_uri": run.info.artifact_uri,
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in
                                    ("features", "models", "flows", "evaluation", "portable"))}}))
"""


def test_champion_pyfunc_loads_outside_the_repository_and_matches_nrrcast_score(pipeline, tmp_path):
    """Copy mlruns/ elsewhere; a process that cannot import this repository loads the
    champion and returns the probabilities `nrrcast score` wrote; it logs into the copy."""
    from flows import tracking

    home = Path(pipeline["home"])
    moved = tmp_path / "moved"
    shutil.copytree(home / "mlruns", moved / "mlruns")
    X = _snapshot(pipeline)
    version = pipeline["train2"]["decisions"]["churn"]["version"]
    thresholds = yaml.safe_load(
        (home / "thresholds" / f"{pipeline['calibrate']['quarter']}.yaml").read_text()
    )
    assert thresholds["model_versions"]["churn"] == version  # refit for the new champion
    (moved / "calibration.json").write_text(json.dumps(thresholds["calibrator"]["churn"]))
    names = [c["name"] for c in _signature_inputs(pipeline)]
    X[names].to_parquet(moved / "X.parquet")

    site = sysconfig.get_paths()["purelib"]
    script = _CLEAN_SCRIPT.format(repo=str(REPO), site=site)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MLFLOW_TRACKING_URI")}
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        cwd=moved, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    print("clean process:", out)
    assert out["modules"] == ["portable"]  # only the code shipped with the model
    own = pd.read_parquet(moved / "own.parquet")
    quarterly = pd.read_parquet(moved / "quarterly.parquet")
    assert list(own.columns) == ["p_churn", "p_churn_raw"]

    # nrrcast score: same rows, quarterly calibrator in force
    scores = pd.read_parquet(
        next((home / "data" / "scores").glob(f"as_of={pipeline['score2']['as_of']}/*.parquet"))
    )
    merged = (
        X[["account_id"]]
        .assign(q=quarterly["p_churn"].to_numpy(), raw=own["p_churn_raw"].to_numpy())
        .merge(scores[["account_id", "p_churn", "p_churn_raw"]], on="account_id")
    )
    assert len(merged) == len(scores) == len(X)
    np.testing.assert_array_equal(merged["raw"], merged["p_churn_raw"])
    np.testing.assert_allclose(merged["q"], merged["p_churn"], rtol=0, atol=1e-12)
    # the scoring library with the model's own calibrator
    _client(pipeline)
    model, _ = tracking.load_champion("nrrcast-churn")
    np.testing.assert_allclose(own["p_churn"], model.predict_proba(X)[:, 1], rtol=0, atol=1e-12)
    # the champion was promoted with the calibrator in force: its plain predict() is what
    # `nrrcast score` wrote
    np.testing.assert_allclose(
        own["p_churn"].to_numpy(), merged["p_churn"].to_numpy(), rtol=0, atol=1e-12
    )
    reasons = json.loads(quarterly["reasons_churn"].iloc[0])
    assert reasons and {"feature", "value", "contribution", "description"} <= set(reasons[0])
    print(f"pyfunc vs nrrcast score on {len(merged)} accounts: p_churn max |diff| "
          f"{np.abs(merged['q'] - merged['p_churn']).max():.2e}")  # fmt: skip

    # the moved store wrote into itself, not into the original
    assert not out["artifact_uri"].startswith("/") and "mlruns/artifacts" in out["artifact_uri"]
    written = list((moved / "mlruns" / "artifacts").rglob("moved.txt"))
    assert len(written) == 1 and not list((home / "mlruns").rglob("moved.txt"))


def _signature_inputs(pipeline) -> list[dict]:
    _client(pipeline)
    info = mlflow.models.get_model_info("models:/nrrcast-churn@champion")
    return info.signature.inputs.to_dict()


def test_pyfunc_requirements_and_signature(pipeline):
    client = _client(pipeline)
    mv = client.get_model_version_by_alias("nrrcast-churn", "champion")
    where = mlflow.artifacts.download_artifacts(f"models:/nrrcast-churn/{mv.version}")
    reqs = Path(where, "requirements.txt").read_text().split()
    assert sorted(r.split("==")[0] for r in reqs) == [
        "lightgbm",
        "mlflow",
        "numpy",
        "pandas",
        "scipy",
    ]
    assert sorted(p.name for p in Path(where, "code").iterdir()) == ["portable.py"]
    info = mlflow.models.get_model_info(f"models:/nrrcast-churn/{mv.version}")
    outputs = {c["name"]: c["type"] for c in info.signature.outputs.to_dict()}
    assert outputs == {"p_churn": "double", "p_churn_raw": "double"}
    assert {p.name for p in info.signature.params.params} == {"reasons", "calibration"}


def test_champion_and_candidate_metrics_on_the_same_rows(pipeline):
    client = _client(pipeline)
    run = client.get_run(pipeline["train2"]["run_id"])
    m = run.data.metrics
    for target in ("churn", "expand"):
        assert m[f"{target}.champion.test.n"] == m[f"{target}.candidate.test.n"]
        assert f"{target}.champion.test.roc_auc" in m
        assert run.data.tags[f"{target}.champion_version"] == "1"
    decision = pipeline["train2"]["decisions"]["churn"]
    mv = client.get_model_version("nrrcast-churn", decision["version"])
    assert mv.tags[f"nrrcast.{decision['alias']}_reason"] == decision["reason"]


def test_flag_volumes_stay_in_step_across_a_retrain(pipeline):
    """A new champion is scored with thresholds refit for it, not with the old ones."""
    home = Path(pipeline["home"])
    quarter = pipeline["calibrate"]["quarter"]
    refit = yaml.safe_load((home / "thresholds" / f"{quarter}.yaml").read_text())
    promoted = {t: d["version"] for t, d in pipeline["train2"]["decisions"].items()
                if d["alias"] == "champion"}  # fmt: skip
    assert promoted, pipeline["train2"]["decisions"]
    for target, version in promoted.items():
        assert refit["model_versions"][target] == version
    assert "promotion of" in refit["refit_reason"]
    run = _client(pipeline).get_run(pipeline["score2"]["run_id"])
    for target in ("churn", "expand"):  # scoring applies the refit thresholds
        assert float(run.data.params[f"{target}_threshold"]) == pytest.approx(
            refit[f"{target}_threshold"]
        )
    before, after = _flags(pipeline["score"]), _flags(pipeline["score2"])
    print(f"flags before/after retrain (at risk, expansion-ready): {before} -> {after}")
    # the churn threshold is chosen for a flag volume: a new model flags about as many;
    # the expansion threshold is chosen for a precision, so its volume follows the model
    assert abs(after[0] - before[0]) <= max(3, 0.25 * before[0]), (before, after)


def test_run_is_complete(pipeline):
    client = _client(pipeline)
    run_id = pipeline["train"]["run_id"]
    run = client.get_run(run_id)
    plots = [a.path for a in client.list_artifacts(run_id, "plots/churn")]
    assert plots and all(p.endswith(".png") and not p.endswith(".png.png") for p in plots)
    assert any("beeswarm" in p for p in plots)
    assert any(k.startswith("churn.segment.coverage.") for k in run.data.metrics)
    contexts = {
        {t.key: t.value for t in i.tags}["mlflow.data.context"] for i in run.inputs.dataset_inputs
    }
    assert contexts == {"training", "validation", "calibration", "testing"}
    counts = pd.read_csv(mlflow.artifacts.download_artifacts(run_id=run_id,
                                                             artifact_path="data/row_counts.csv"))  # fmt: skip
    assert "table" in counts.columns and "events" in set(counts["table"])


def test_models_and_promote_commands(pipeline):
    from typer.testing import CliRunner

    from flows.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["models", "-c", pipeline["config"]])
    assert listed.exit_code == 0, listed.output
    assert "champion" in listed.output and "roc_auc" in listed.output
    moved = runner.invoke(
        app,
        ["promote", "--model", "churn", "--version", "1", "--reason", "rollback drill",
         "-c", pipeline["config"]],
    )  # fmt: skip
    assert moved.exit_code == 0, moved.output
    client = _client(pipeline)
    mv = client.get_model_version_by_alias("nrrcast-churn", "champion")
    assert str(mv.version) == "1" and "rollback drill" in mv.tags["nrrcast.champion_reason"]
    quarter = pipeline["calibrate"]["quarter"]
    refit = yaml.safe_load((Path("thresholds") / f"{quarter}.yaml").read_text())
    assert refit["model_versions"]["churn"] == "1"
    missing = runner.invoke(
        app, ["promote", "--model", "churn", "--version", "99", "--reason", "x",
              "-c", pipeline["config"]],
    )  # fmt: skip
    assert missing.exit_code != 0
