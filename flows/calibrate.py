"""Quarterly calibration flow: refit calibrators and alert thresholds on matured outcomes.

The window is the scores whose 60-day outcome matured during the quarter before the one
the thresholds take effect in. Scores issued and stored by the weekly scoring flow are
used as issued; weeks that were never scored (a new deployment) are backfilled by scoring
the point-in-time features of those dates with the champion models, and the run says so.
"""

from __future__ import annotations

from typing import Any

import mlflow
from prefect import flow

from evaluation.thresholds_file import thresholds_to_yaml
from evaluation.uplift import save_rate_of_holdout
from features.storage import check_writable
from flows import tracking
from flows.config import EXPERIMENT, load_config
from flows.refit import default_quarter, fit_thresholds
from flows.tasks import (
    drift_against_training,
    load_and_validate,
    load_champions,
    validation_args,
)


@flow(name="nrrcast-calibrate", log_prints=True)
def calibrate_flow(
    quarter: str | None = None,
    config_path: str | None = None,
    source: str | None = None,
    data_end: str | None = None,
) -> dict[str, Any]:
    """Refit the probability calibrators and choose the alert thresholds for a quarter."""
    cfg = load_config(config_path)
    check_writable(cfg.paths.thresholds_dir, "thresholds directory")  # before the work
    models, versions, runs = load_champions(cfg)
    loaded = load_and_validate(**validation_args(cfg, source, data_end, engine=False))
    quarter = quarter or default_quarter(loaded.data_end)
    data, scores, table, backfilled = fit_thresholds(cfg, loaded, models, versions, quarter)
    save = save_rate_of_holdout(scores)

    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    with tracking.run(
        exp, f"calibrate {quarter}", tags={"flow": "calibrate", "quarter": quarter}
    ) as active:
        path = thresholds_to_yaml(data, cfg.paths.thresholds_dir)
        mlflow.log_artifact(str(path), "thresholds")
        tracking.log_params(
            {"quarter": quarter, **{f"model_version.{k}": v for k, v in versions.items()}}
        )
        tracking.log_metrics(
            {
                "churn_threshold": data["churn_threshold"],
                "expand_threshold": data["expand_threshold"],
            }
        )
        tracking.log_metrics(data.get("metrics", {}), "window.")
        tracking.log_metrics({"account_weeks": len(scores), "backfilled": backfilled})
        if save is not None:
            tracking.log_metrics(
                {k: v for k, v in save.items() if isinstance(v, int | float)}, "save_rate."
            )
        drift = drift_against_training(cfg, runs, table, scores)
        if not drift.empty:
            tracking.log_frame(drift, "drift.csv")
            tracking.log_metrics(
                {
                    "drift.alert": int((drift["status"] == "alert").sum()),
                    "drift.watch": int((drift["status"] == "watch").sum()),
                }
            )
    loaded.source.con.close()
    print(
        f"{quarter}: churn threshold {data['churn_threshold']:.3f}, expansion threshold "
        f"{data['expand_threshold']:.3f} -> {path}"
    )
    if save is not None:
        print(
            f"plays: {save['churn_rate_touched']:.1%} of {save['touched']} worked at-risk "
            f"account-weeks churned vs {save['churn_rate_held_out']:.1%} of {save['held_out']} "
            f"held out: save rate {save['save_rate']:+.1%} "
            f"(95% interval {save['save_rate_low']:+.1%} to {save['save_rate_high']:+.1%})"
        )
        data["save_rate"] = save
    return {"quarter": quarter, "path": str(path), "run_id": active.info.run_id, **data}
