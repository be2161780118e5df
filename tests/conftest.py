"""Shared fixtures: a migrated MLflow store made once, a Prefect harness shared per session."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@pytest.fixture(scope="session", autouse=True)
def _prefect_logging_on_the_session_streams():
    """Set Prefect's log handlers up once, on the session's streams.

    Prefect binds its console handler to the stderr of the moment it first sets logging
    up; if that happened inside a CliRunner invocation, every later flow run in the
    process would write to the runner's closed stream.
    """
    from prefect.logging.configuration import setup_logging

    setup_logging()


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory) -> Path:
    """An empty, migrated MLflow sqlite DB: migrations run once per session, not per test."""
    import mlflow

    root = tmp_path_factory.mktemp("mlflow_template")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.MlflowClient(tracking_uri=uri).search_experiments()
    return root / "mlflow.db"


@pytest.fixture()
def mlflow_store(tmp_path, _mlflow_template) -> dict[str, str]:
    """A fresh MLflow store for one test: {'uri': sqlite URI, 'artifacts': dir}."""
    store = tmp_path / "mlruns"
    store.mkdir()
    shutil.copy(_mlflow_template, store / "mlflow.db")
    return {"uri": f"sqlite:///{store / 'mlflow.db'}", "artifacts": str(store / "artifacts")}


@pytest.fixture(scope="session")
def prefect_harness():
    """One temporary Prefect server for the whole session (it takes ~15 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for the whole session (~20 s to start); skipped without Java.

    Spark tests carry ``@pytest.mark.xdist_group("spark")`` so that one xdist worker owns it.
    """
    from features.spark_engine import java_problem, spark_session

    problem = java_problem()
    if problem is not None:
        pytest.skip(f"Spark tests skipped: {problem}")
    session = spark_session(
        "local[2]",
        app_name="nrrcast-tests",
        conf={"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2"},
    )
    yield session
    session.stop()
