"""Scheduled deployments: weekly scoring, monthly retraining, quarterly calibration.

Each schedule runs a small wrapper flow that (1) waits for its store's slot, so training
at 04:00 and calibration at 05:00 on the 1st never run side by side on the same MLflow
registry and thresholds (`flows.store_slot`), and (2) runs the real flow as a subflow
with the time limit of ``orchestration.timeout_minutes``. Whole flows are not retried:
an error that is not transient I/O happens again on a retry; the tasks that read and
write stores retry transient failures themselves. The scheduled scoring refuses data
whose end has not advanced since the last scoring run (`features.freshness`).

`prefect.yaml` declares the same three for `prefect deploy`; `serve_all` serves them from
this process (a Prefect API must be reachable, e.g. `prefect server start`).
"""

from __future__ import annotations

from typing import Any

from prefect import Flow, flow

from flows.config import load_config
from flows.prefect_logging import project_log_level
from flows.store_slot import store_slot

SCHEDULES: dict[str, dict[str, Any]] = {
    "weekly-scoring": {"flow": "flows.deployments:weekly_scoring", "cron": "0 6 * * 1"},
    "monthly-retraining": {"flow": "flows.deployments:monthly_retraining", "cron": "0 4 1 * *"},
    "quarterly-calibration": {
        "flow": "flows.deployments:quarterly_calibration",
        "cron": "0 5 1 1,4,7,10 *",
    },
}


def run_guarded(target: Flow, kind: str, what: str, config_path: str | None, **params: Any) -> Any:
    """Run flow `target` as a subflow holding the store's slot, within its time limit,
    with the project's INFO lines on (they go to the Prefect API with the run's logs).

    Parameters
    ----------
    target : Flow
        The flow to run (called with ``config_path`` and `params`).
    kind : str
        Key of ``orchestration.timeout_minutes`` ("score", "train" or "calibrate").
    what : str
        Name for log lines and errors (the deployment's name).
    config_path : str or None
        The configuration both the slot and the flow read.
    """
    cfg = load_config(config_path)
    timeout = cfg.orchestration.timeout_minutes[kind] * 60
    with project_log_level(), store_slot(cfg, what):
        return target.with_options(timeout_seconds=timeout)(config_path=config_path, **params)


@flow(name="nrrcast-weekly-scoring", retries=0)
def weekly_scoring(
    config_path: str | None = None, source: str | None = None, freshness: str = "refuse"
) -> Any:
    """Scheduled scoring: one flow per store, time-limited, refuses an unrefreshed export."""
    from flows.score import score_flow

    return run_guarded(
        score_flow, "score", "weekly-scoring", config_path, source=source, freshness=freshness
    )


@flow(name="nrrcast-monthly-retraining", retries=0)
def monthly_retraining(config_path: str | None = None, source: str | None = None) -> Any:
    """Scheduled retraining: one flow per store, time-limited."""
    from flows.train import train_flow

    return run_guarded(train_flow, "train", "monthly-retraining", config_path, source=source)


@flow(name="nrrcast-quarterly-calibration", retries=0)
def quarterly_calibration(config_path: str | None = None, source: str | None = None) -> Any:
    """Scheduled threshold calibration: one flow per store, time-limited."""
    from flows.calibrate import calibrate_flow

    return run_guarded(
        calibrate_flow, "calibrate", "quarterly-calibration", config_path, source=source
    )


def serve_all(config_path: str | None = None) -> None:
    """Serve every scheduled deployment until interrupted."""
    from importlib import import_module

    from prefect import serve

    deployments = []
    for name, spec in SCHEDULES.items():
        module, attr = spec["flow"].split(":")
        scheduled = getattr(import_module(module), attr)
        deployments.append(
            scheduled.to_deployment(
                name=name,
                cron=spec["cron"],
                parameters={"config_path": config_path} if config_path else {},
                concurrency_limit=1,  # a late run waits for the previous one of its kind
            )
        )
    serve(*deployments)
