"""The demo: the whole pipeline on a generated book, in one Prefect flow run."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, task

from features.errors import InputError
from flows.calibrate import calibrate_flow
from flows.config import load_config
from flows.score import score_flow
from flows.train import train_flow

log = logging.getLogger("nrrcast.demo")


@task(name="simulate")
def simulate_world(config_path: str) -> dict[str, Any]:
    from simulator import simulate

    cfg = load_config(config_path)
    return simulate(cfg.simulate, Path(cfg.paths.raw)).as_dict()


def world_data_end(cfg: Any) -> date:
    """The simulated world's end, from its manifest.json (the first rule of the data's end)."""
    from features.data_end import manifest_data_end, manifest_path, read_manifest

    where = manifest_path(cfg.paths.raw)
    end = manifest_data_end(read_manifest(where), where)
    if end is None:
        raise InputError(f"{where}: the simulated world has no data_end", hint="rerun simulate")
    return end


@flow(name="nrrcast-demo", log_prints=True)
def demo_flow(config_path: str = "configs/demo.yaml") -> dict[str, Any]:
    """Simulate, validate, build features, train, calibrate, score twice (a week apart), report."""
    cfg = load_config(config_path)
    world = simulate_world(config_path)
    print(
        f"simulated {world['accounts']:,} accounts, {world['events']:,} events: monthly logo churn "
        f"{world['monthly_logo_churn']:.1%}, annual NRR {world['annual_nrr']:.0%}"
    )
    trained = train_flow(config_path=config_path)
    calibrated = calibrate_flow(config_path=config_path)
    # the simulator writes manifest.json: the data's end is decided by the same rule
    data_end = world_data_end(cfg)
    score_flow(as_of=(data_end - timedelta(days=7)).isoformat(), config_path=config_path)
    scored = score_flow(config_path=config_path)
    lines = [
        "",
        "nrrcast demo finished",
        f"  report       {Path(scored['report']).resolve() if scored.get('report') else '(disabled)'}",
        f"  scores       {Path(cfg.paths.scores).resolve()} (Parquet by as_of + scores.duckdb)",
        f"  features     {Path(cfg.paths.features).resolve()}",
        f"  quarantine   {Path(cfg.paths.quarantine).resolve()}",
        f"  thresholds   {calibrated['path']}",
        f"  champion     churn v{trained['decisions']['churn']['version']} ({trained['decisions']['churn']['alias']}), "
        f"expansion v{trained['decisions']['expand']['version']} ({trained['decisions']['expand']['alias']})",
        f"  MLflow UI    mlflow ui --backend-store-uri {cfg.paths.mlflow_uri}",
    ]
    print("\n".join(lines))
    return {"world": world, "train": trained, "calibrate": calibrated, "score": scored}
