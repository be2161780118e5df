"""Prefect-native operations: project logs in the API, store slots, time limits, freshness,
and deployments whose every setting is declared and documented."""

from __future__ import annotations

import logging
import re
import time
import warnings
from datetime import date
from pathlib import Path

import pytest
import yaml
from prefect import flow

from features.freshness import StaleDataError, check_freshness, source_key
from flows.config import Config, OrchestrationConfig, PathsConfig, ScoringConfig
from flows.deployments import SCHEDULES, run_guarded
from flows.prefect_logging import RunLogHandler, install, project_log_level
from flows.score import last_scored
from flows.store_slot import StoreBusyError, store_key, store_slot

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = yaml.safe_load((ROOT / "prefect.yaml").read_text())
README = (ROOT / "README.md").read_text()


# --- project logs reach the Prefect API -------------------------------------------------


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("logworld") / "raw"
    simulate(SimConfig(accounts=80, months=6, seed=5), out, progress=False)
    return out


@flow(name="nrrcast-validate-for-logs")
def _validate_flow(source: str, quarantine: str) -> bool:
    from flows.tasks import load_and_validate

    loaded = load_and_validate(Path(source), Path(quarantine))
    logging.getLogger("nrrcast.flows").info("flow-level project line for %s", loaded.data_end)
    loaded.source.close()
    return loaded.report.ok


def _api_logs(flow_run_id) -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogHandler

    APILogHandler().flush()  # the worker sends in batches
    with get_client(sync_client=True) as client:
        for _ in range(20):
            logs = client.read_logs(
                log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id]))
            )
            if any(log.name.startswith("nrrcast") for log in logs):
                return logs
            time.sleep(0.5)
    return logs


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_project_logs_of_a_flow_run_are_in_the_prefect_api(prefect_harness, small_world, tmp_path):
    with project_log_level():  # as the scheduled flows run (flows.deployments.run_guarded)
        state = _validate_flow(str(small_world), str(tmp_path / "q"), return_state=True)
    assert state.is_completed()
    logs = _api_logs(state.state_details.flow_run_id)
    project = [log for log in logs if log.name.startswith("nrrcast")]
    summary = [
        log for log in project if log.name == "nrrcast.flows" and "validation of" in log.message
    ]
    assert len(summary) == 1, [(log.name, log.message[:80]) for log in logs]
    assert "accounts" in summary[0].message and summary[0].task_run_id is not None
    assert any("flow-level project line" in log.message for log in project)
    # one copy each: the handler is attached once however often flows is imported
    assert len({log.message for log in project}) == len(project)


def test_run_handler_is_silent_outside_a_run(caplog):
    handler = install()
    assert install() is handler
    assert sum(isinstance(h, RunLogHandler) for h in logging.getLogger("nrrcast").handlers) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Prefect's own handler would warn here
        with caplog.at_level(logging.INFO, logger="nrrcast"):
            logging.getLogger("nrrcast.test").info("outside any flow run")
    assert "outside any flow run" in caplog.text
    assert handler._api is None or not handler._in_run()


def test_project_log_level_is_set_for_a_run_and_restored(monkeypatch):
    logger = logging.getLogger("nrrcast")
    assert logger.level == logging.NOTSET  # importing flows leaves the app's logging alone
    monkeypatch.setenv("NRRCAST_LOG_LEVEL", "debug")
    with project_log_level():
        assert logger.level == logging.DEBUG
    assert logger.level == logging.NOTSET
    logger.setLevel(logging.WARNING)  # an application's own choice wins
    try:
        with project_log_level():
            assert logger.level == logging.WARNING
    finally:
        logger.setLevel(logging.NOTSET)


# --- one flow per store, time limits ------------------------------------------------------


def _cfg(tmp_path: Path, **orchestration) -> Config:
    return Config(
        paths=PathsConfig(mlflow_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"),
        orchestration=OrchestrationConfig(**orchestration),
    )


def test_store_key_names_the_store():
    a = Config(paths=PathsConfig(mlflow_uri="sqlite:///mlruns/mlflow.db"))
    b = Config(paths=PathsConfig(mlflow_uri="sqlite:///other/mlflow.db"))
    assert store_key(a) != store_key(b) and store_key(a).startswith("nrrcast-store-")
    named = Config(orchestration=OrchestrationConfig(store_name="prod"))
    assert store_key(named) == "nrrcast-store-prod"
    with pytest.raises(ValueError):
        OrchestrationConfig(store_name="a/b")


@flow(name="nrrcast-quick")
def _quick(config_path: str | None = None, seconds: float = 0.0) -> str:
    time.sleep(seconds)
    return "done"


@flow(name="nrrcast-parent")
def _parent(config_path: str, seconds: float) -> str:
    return run_guarded(_quick, "score", "test-scoring", config_path, seconds=seconds)


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_a_second_flow_on_the_same_store_waits_then_gives_up(prefect_harness, tmp_path):
    cfg = _cfg(tmp_path, store_name=f"t{tmp_path.name[-12:]}", wait_for_store_minutes=0.03)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"paths": {"mlflow_uri": cfg.paths.mlflow_uri},
                                      "orchestration": {"store_name": cfg.orchestration.store_name,
                                                        "wait_for_store_minutes": 0.03}}))  # fmt: skip
    with store_slot(cfg, "training"):  # e.g. a long training run holds the store
        started = time.monotonic()
        with pytest.raises(StoreBusyError, match="stayed busy"):
            run_guarded(_quick, "score", "weekly-scoring", str(config))
        assert time.monotonic() - started < 30
    assert run_guarded(_quick, "score", "weekly-scoring", str(config)) == "done"


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_a_scheduled_flow_is_stopped_at_its_time_limit(prefect_harness, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "paths": {"mlflow_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
                "orchestration": {"timeout_minutes": {"score": 0.02}},
            }
        )
    )
    started = time.monotonic()
    state = _parent(str(config), 20.0, return_state=True)
    assert state.is_failed()
    assert time.monotonic() - started < 15
    assert "timed out" in str(state.message).lower() or "timeout" in str(state.message).lower()


# --- freshness ------------------------------------------------------------------------------


def test_freshness_modes():
    previous = (date(2026, 3, 2), "run1")
    assert check_freshness(date(2026, 3, 9), previous, "refuse") is None
    assert check_freshness(date(2026, 3, 2), None, "refuse") is None  # first run
    with pytest.raises(StaleDataError, match="not after the end of the data scored by run run1"):
        check_freshness(date(2026, 3, 2), previous, "refuse")
    with pytest.raises(StaleDataError):
        check_freshness(date(2026, 2, 23), previous, "refuse")  # older than last time
    assert "not refreshed" in check_freshness(date(2026, 3, 2), previous, "warn")
    assert check_freshness(date(2026, 3, 2), previous, "off") is None
    with pytest.raises(ValueError, match="freshness must be one of"):
        check_freshness(date(2026, 3, 2), previous, "maybe")


def test_last_scored_reads_finished_scoring_runs_of_the_same_source(mlflow_store, tmp_path):
    import mlflow

    mlflow.set_tracking_uri(mlflow_store["uri"])
    exp = mlflow.create_experiment("nrrcast-fresh", artifact_location=mlflow_store["artifacts"])
    key, other = source_key(tmp_path / "raw"), source_key(tmp_path / "elsewhere")
    assert key == source_key(str(tmp_path / "raw"))
    assert source_key("postgresql://u:one@h/db") == source_key("postgresql://u:two@h/db")
    for data_end, src, status in [
        ("2026-03-02", key, "FINISHED"),
        ("2026-03-09", key, "FINISHED"),
        ("2026-03-16", key, "FAILED"),  # a failed run scored nothing
        ("2026-03-23", other, "FINISHED"),  # another source
    ]:
        with mlflow.start_run(experiment_id=exp) as run:
            mlflow.set_tags({"flow": "score", "data_end": data_end, "source_key": src})
        mlflow.MlflowClient().set_terminated(run.info.run_id, status)
    found = last_scored(mlflow_store["uri"], "nrrcast-fresh", key)
    assert found is not None and found[0] == date(2026, 3, 9)
    assert last_scored(mlflow_store["uri"], "no-such-experiment", key) is None


# --- deployments ------------------------------------------------------------------------------


def test_prefect_yaml_is_a_valid_project_file_with_only_known_keys():
    from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel

    PrefectYamlModel.model_validate(PREFECT_YAML)
    for deployment in PREFECT_YAML["deployments"]:
        assert set(deployment) <= set(DeploymentConfig.model_fields), deployment["name"]


@pytest.mark.parametrize("deployment", PREFECT_YAML["deployments"], ids=lambda d: d["name"])
def test_every_deployment_is_limited_guarded_and_never_retried_whole(deployment):
    from importlib import import_module

    assert deployment["concurrency_limit"] == {"limit": 1, "collision_strategy": "ENQUEUE"}
    path, attr = deployment["entrypoint"].split(":")
    scheduled = getattr(import_module(path.removesuffix(".py").replace("/", ".")), attr)
    assert path == "flows/deployments.py" and scheduled.retries in (0, None)
    source = Path(ROOT / path).read_text()
    body = source[source.index(f"def {attr}(") :].split("\n\n\n")[0]
    assert "run_guarded(" in body  # store slot + time limit
    kind = re.search(r'run_guarded\(\s*\w+, "(\w+)"', body).group(1)
    assert kind in OrchestrationConfig().timeout_minutes
    assert SCHEDULES[deployment["name"]]["flow"] == f"flows.deployments:{attr}"


def test_scheduled_scoring_refuses_stale_data_by_default():
    by_name = {d["name"]: d for d in PREFECT_YAML["deployments"]}
    assert by_name["weekly-scoring"]["parameters"]["freshness"] == "refuse"
    from flows.deployments import weekly_scoring

    weekly_scoring.validate_parameters(by_name["weekly-scoring"]["parameters"])


def test_every_setting_is_documented_in_the_readme():
    assert "{{ $NRRCAST_HOME }}" in str(PREFECT_YAML["pull"])
    for env in ("NRRCAST_HOME", "NRRCAST_LOG_LEVEL", "PREFECT_API_URL", "PGPASSWORD"):
        assert env in README, env
    for section in (PathsConfig, ScoringConfig, OrchestrationConfig):
        for name in section.model_fields:
            assert re.search(rf"\b{name}\b", README), f"{section.__name__}.{name}"
    for key in ("schema", "batch_bytes", "nrrcast_manifest", "concurrency_limit"):
        assert key in README, key


def test_serve_runs_the_same_guarded_flows_with_the_same_limits(monkeypatch):
    import prefect

    from flows.deployments import serve_all

    served = []
    monkeypatch.setattr(prefect, "serve", lambda *deployments: served.extend(deployments))
    serve_all("configs/default.yaml")
    by_name = {d.name: d for d in served}
    assert set(by_name) == set(SCHEDULES)
    for name, deployment in by_name.items():
        assert deployment.concurrency_limit == 1
        assert deployment.entrypoint.endswith(SCHEDULES[name]["flow"].split(":")[1])
        assert deployment.parameters == {"config_path": "configs/default.yaml"}


def test_an_unknown_freshness_mode_stops_scoring_before_anything_runs(monkeypatch):
    import flows.score as score

    def must_not_run(cfg):
        raise AssertionError("champions were loaded before the mode was checked")

    monkeypatch.setattr(score, "load_champions", must_not_run)
    with pytest.raises(ValueError, match="freshness must be one of"):
        score.score_flow.fn(freshness="sometimes")
