"""Scheduled deployments: weekly scoring, monthly retraining, quarterly calibration.

`prefect.yaml` declares the same three for `prefect deploy`; `serve_all` serves them from
this process (a Prefect API must be reachable, e.g. `prefect server start`).
"""

from __future__ import annotations

from typing import Any

SCHEDULES: dict[str, dict[str, Any]] = {
    "weekly-scoring": {"flow": "flows.score:score_flow", "cron": "0 6 * * 1"},
    "monthly-retraining": {"flow": "flows.train:train_flow", "cron": "0 4 1 * *"},
    "quarterly-calibration": {"flow": "flows.calibrate:calibrate_flow", "cron": "0 5 1 1,4,7,10 *"},
}


def serve_all(config_path: str | None = None) -> None:
    """Serve every scheduled deployment until interrupted."""
    from importlib import import_module

    from prefect import serve

    deployments = []
    for name, spec in SCHEDULES.items():
        module, attr = spec["flow"].split(":")
        flow = getattr(import_module(module), attr)
        deployments.append(
            flow.to_deployment(
                name=name,
                cron=spec["cron"],
                parameters={"config_path": config_path} if config_path else {},
            )
        )
    serve(*deployments)
