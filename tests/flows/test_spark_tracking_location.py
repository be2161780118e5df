"""Where a missing experiment keeps its artifacts: this machine's directory only for a
local root; a configured object-store root (s3://, abfss://, file://) is used as given,
and a tracking server decides for itself (its --artifacts-destination)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest


@pytest.mark.parametrize(
    "root", ["s3://cs-ml/mlflow-artifacts", "abfss://ml@acct.dfs.core.windows.net/mlflow/"]
)
def test_a_url_artifact_root_is_used_as_given(mlflow_store, root, monkeypatch, tmp_path):
    from flows import tracking

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)  # a URL taken for a path would be created under here
    exp = tracking.configure(mlflow_store["uri"], root, "nrrcast")
    location = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"]).get_experiment(exp)
    assert location.artifact_location == root.rstrip("/") + "/nrrcast"
    assert list(cwd.iterdir()) == []


def test_a_file_url_root_is_created_and_kept_absolute(mlflow_store, tmp_path):
    from flows import tracking

    root = (tmp_path / "store").as_uri()
    exp = tracking.configure(mlflow_store["uri"], root, "nrrcast")
    location = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"]).get_experiment(exp)
    assert location.artifact_location == root + "/nrrcast"
    assert (tmp_path / "store" / "nrrcast").is_dir()


def test_a_local_root_stays_a_local_directory(mlflow_store):
    from flows import tracking

    exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "nrrcast")
    location = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"]).get_experiment(exp)
    assert location.artifact_location == Path(mlflow_store["artifacts"], "nrrcast").as_uri()
    assert Path(mlflow_store["artifacts"], "nrrcast").is_dir()
