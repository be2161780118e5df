"""End to end: train, calibrate and score flows on a small simulated world under Prefect.

One temporary Prefect server serves the whole module (prefect_harness); the MLflow store
is a copy of a migrated empty sqlite DB.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import mlflow
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("prefect")]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("world") / "raw"
    simulate(SimConfig(accounts=500, months=16, seed=3), out, progress=False)
    return out


def _config(tmp: Path, world: Path, store: dict, **models) -> Path:
    cfg = {
        "paths": {
            "raw": str(world),
            "features": str(tmp / "features"),
            "scores": str(tmp / "scores"),
            "quarantine": str(tmp / "quarantine"),
            "reports": str(tmp / "reports"),
            "mlflow_uri": store["uri"],
            "mlflow_artifacts": store["artifacts"],
            "thresholds_dir": str(tmp / "thresholds"),
        },
        "models": {
            "split": {"valid_dates": 1, "calib_dates": 2, "test_dates": 2, "min_train_dates": 2},
            **models,
        },
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def pipeline(world, tmp_path_factory, _mlflow_template, prefect_harness):
    """Train, calibrate and score once; later tests read what the flows left behind."""
    import shutil

    from flows.calibrate import calibrate_flow
    from flows.score import score_flow
    from flows.train import train_flow

    tmp = tmp_path_factory.mktemp("pipeline")
    (tmp / "mlruns").mkdir()
    shutil.copy(_mlflow_template, tmp / "mlruns" / "mlflow.db")
    store = {
        "uri": f"sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
        "artifacts": str(tmp / "mlruns" / "artifacts"),
    }
    config = str(_config(tmp, world, store))
    trained = train_flow(config_path=config)
    calibrated = calibrate_flow(config_path=config)
    scored = score_flow(config_path=config)
    scored_again = score_flow(config_path=config)
    return {"tmp": tmp, "config": config, "store": store, "train": trained,
            "calibrate": calibrated, "score": scored, "score_again": scored_again}  # fmt: skip


def test_training_run_is_complete(pipeline):
    mlflow.set_tracking_uri(pipeline["store"]["uri"])
    run = mlflow.get_run(pipeline["train"]["run_id"])
    metrics = run.data.metrics
    for target in ("churn", "expand"):
        for model in ("lgbm", "logistic", "health"):
            assert f"{target}.{model}.test.roc_auc" in metrics
    assert "data_fingerprint" in run.data.tags
    assert metrics["panel.rows"] > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"config.json", "feature_catalog.csv", "plots", "reference"} <= artifacts
    plots = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "plots/churn")}
    assert any("beeswarm" in p for p in plots) and any("calibration" in p for p in plots)
    for name in ("nrrcast-churn", "nrrcast-expansion"):
        assert (
            str(mlflow.MlflowClient().get_model_version_by_alias(name, "champion").version) == "1"
        )


def test_calibration_writes_a_thresholds_file(pipeline):
    path = Path(pipeline["calibrate"]["path"])
    data = yaml.safe_load(path.read_text())
    assert 0 < data["churn_threshold"] < 1 and 0 < data["expand_threshold"] < 1
    assert data["model_versions"] == {"churn": "1", "expand": "1"}


def test_scores_are_written_once_per_as_of(pipeline):
    scores_dir = Path(pipeline["tmp"]) / "scores"
    parts = list(scores_dir.glob("as_of=*/part-*.parquet"))
    assert len(parts) == 1
    scores = pd.read_parquet(parts[0])
    assert scores["account_id"].is_unique
    assert scores["p_churn"].between(0, 1).all() and scores["p_expand"].between(0, 1).all()
    assert set(scores["segment"]) <= {
        "accelerate",
        "strategic_partnership",
        "efficient_expansion",
        "prove_value",
    }
    assert scores["reasons_json"].str.startswith("[").all()
    con = duckdb.connect(str(scores_dir / "scores.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == len(
        scores
    )  # re-run replaced
    con.close()
    report = Path(pipeline["score"]["report"])
    assert report.is_file() and "<html" in report.read_text()[:500].lower()


def test_scoring_uses_the_quarterly_thresholds(pipeline):
    data = yaml.safe_load(Path(pipeline["calibrate"]["path"]).read_text())
    mlflow.set_tracking_uri(pipeline["store"]["uri"])
    run = mlflow.get_run(pipeline["score"]["run_id"])
    assert float(run.data.params["churn_threshold"]) == pytest.approx(data["churn_threshold"])
    assert run.data.params["thresholds_quarter"] == data["quarter"]
    assert "drift.alert" in run.data.metrics


def test_worse_challenger_does_not_take_the_champion_alias(pipeline, world):
    from flows.train import train_flow

    tmp = Path(pipeline["tmp"])
    weak = {"lgbm": {"n_estimators": 1, "num_leaves": 2, "early_stopping_rounds": 1}}
    config = _config(tmp, world, pipeline["store"], **weak)
    result = train_flow(config_path=str(config))
    assert result["decisions"]["churn"]["alias"] == "challenger"
    mlflow.set_tracking_uri(pipeline["store"]["uri"])
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("nrrcast-churn", "champion").version) == "1"
    assert str(client.get_model_version_by_alias("nrrcast-churn", "challenger").version) == "2"


def test_score_without_champion_is_a_clear_error(tmp_path, world, mlflow_store, prefect_harness):
    from flows.score import score_flow

    config = _config(tmp_path, world, mlflow_store)
    with pytest.raises(LookupError, match="no 'champion' version"):
        score_flow(config_path=str(config))


def test_scoring_writes_exports_and_a_digest_per_csm(pipeline):
    day = pipeline["score"]["as_of"]
    exports = Path(pipeline["tmp"]) / "scores" / "exports" / day
    accounts = pd.read_csv(exports / "account_list.csv", encoding="utf-8-sig")
    flags = pd.read_csv(exports / "weekly_flags.csv", encoding="utf-8-sig")
    scores = pd.read_parquet(next((Path(pipeline["tmp"]) / "scores").glob("as_of=*/*.parquet")))
    assert len(accounts) == len(scores)
    # the simulated world has a csms table: CSMs appear by name, not by id
    assert not accounts["csm"].astype(str).str.startswith("csm_").any()
    assert flags.groupby("csm").size().max() <= 20
    digests = sorted((Path(pipeline["tmp"]) / "reports" / f"digests-{day}").glob("digest-*"))
    assert len(digests) == 2 * flags["csm"].nunique() > 0
    html = Path(pipeline["score"]["report"]).read_text()
    assert 'id="view-technical"' in html and 'id="export-accounts"' in html
