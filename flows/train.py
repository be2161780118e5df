"""Training flow: validate, build the panel, train both models and baselines, log, register.

Every run is one MLflow run. A new model version becomes `champion` only when it is not
worse than the current champion on the latest out-of-time slice; otherwise it is kept
as `challenger` with the reason recorded.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.errors import InputError
from flows import tracking
from flows.config import Config, load_config
from flows.tasks import LoadedSource, build_features, load_and_validate

log = logging.getLogger("nrrcast.train")

MODEL_NAMES = {"churn": "nrrcast-churn", "expand": "nrrcast-expansion"}
EXPERIMENT = "nrrcast"
REFERENCE_ROWS = 20_000


def panel_dates(
    cfg: Config, loaded: LoadedSource, *, include_unlabelled: bool = False
) -> list[date]:
    """Observation dates of the training panel.

    Defaults: from the first snapshot with 90 days of event history, to the last one
    whose label horizon the data covers (or to the last date at all when
    `include_unlabelled`).
    """
    from features.snapshots import panel_dates as snapshot_dates

    fc = cfg.features
    # behaviour starts with the first event: snapshots before the longest window (90 days)
    # of it would see truncated windows
    first = loaded.source.con.execute("SELECT min(ts) FROM events").fetchall()[0][0]
    if first is None:
        raise InputError(f"{loaded.path}: table events has no rows to build a panel from")
    data_start = pd.Timestamp(first).date()
    last_known = loaded.data_end - timedelta(days=fc.horizon_days)
    end = fc.snapshot_end or (
        loaded.data_end - timedelta(days=1) if include_unlabelled else last_known
    )
    start = fc.snapshot_start
    dates = snapshot_dates(
        fc.snapshot_freq, data_start=data_start, data_end=loaded.data_end, start=start, end=end
    )
    if len(dates) < 4:
        raise InputError(
            f"only {len(dates)} observation dates between {start} and {end}: "
            "training needs at least 4 (train, validation, calibration, test)"
        )
    return dates


@task(name="train-models", cache_policy=NO_CACHE)
def train_models(table: pd.DataFrame, cfg: Config) -> Any:
    from features.catalog import feature_names
    from models.train import train_all

    return train_all(table, cfg.models, feature_names(), horizon_days=cfg.features.horizon_days)


def _champion_metrics(
    name: str, result: Any, target: str, table: pd.DataFrame, cfg: Config
) -> dict | None:
    """Score the current champion on the candidate's test rows, for a like-for-like comparison."""
    from evaluation.metrics import binary_metrics

    version = tracking.champion_version(name)
    if version is None:
        return None
    try:
        champion = mlflow.sklearn.load_model(f"models:/{name}@{tracking.CHAMPION}")
    except Exception as exc:  # an unreadable champion must not block a new one
        log.warning("could not load %s@champion (%s): comparing against nothing", name, exc)
        return None
    label = cfg.models.targets[target]
    test = table.loc[result.split.mask(table, "test") & table[label].notna()]
    missing = sorted(set(getattr(champion, "feature_names_in_", [])) - set(test.columns))
    if missing:
        log.warning(
            "champion %s v%s needs features %s the table lacks", name, version.version, missing
        )
        return None
    m = cfg.models.metrics
    p = champion.predict_proba(test)[:, 1]
    return binary_metrics(
        test[label].to_numpy(dtype=float),
        p,
        n_bins=m.ece_bins,
        top_fraction=m.top_fraction,
        k=m.flags,
    )


@task(name="log-and-register", cache_policy=NO_CACHE)
def log_and_register(
    result: Any, table: pd.DataFrame, loaded: LoadedSource, cfg: Config, config_path: str | None
) -> dict[str, Any]:
    """One MLflow run with everything a reviewer needs, then registry aliases."""
    from evaluation.plots import target_figures
    from features.catalog import catalog_frame
    from models.registry import decide_champion

    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    summary: dict[str, Any] = {"decisions": {}, "versions": {}}
    with tracking.run(exp, "train", tags={"flow": "train", "source": str(loaded.path)}) as active:
        summary["run_id"] = active.info.run_id
        tracking.log_json(cfg.model_dump(mode="json"), "config.json")
        if config_path:
            mlflow.set_tag("config_file", str(config_path))
        mlflow.set_tag("data_fingerprint", tracking.fingerprint(loaded.path))
        mlflow.set_tag("data_end", loaded.data_end.isoformat())
        mlflow.set_tag("data_end_from", loaded.data_end_from)
        counts = loaded.report.counts_frame() if hasattr(loaded.report, "counts_frame") else None
        if counts is not None:
            tracking.log_frame(counts, "data/row_counts.csv")
        tracking.log_frame(loaded.report.to_frame(), "data/validation.csv")
        tracking.log_metrics(_quarantine_counts(loaded.report), "data.")
        tracking.log_metrics(
            {
                "rows": len(table),
                "labelled_rows": int(table["label_known"].sum()),
                "as_of_dates": table["as_of"].nunique(),
                "accounts": table["account_id"].nunique(),
            },
            "panel.",
        )
        tracking.log_params(result.flat_params())
        tracking.log_json(result.split.to_dict(), "split.json")
        mlflow.log_metrics(
            {k.replace("@", "_at_"): v for k, v in result.flat_metrics().items() if v == v}
        )
        tracking.log_frame(result.comparison("test"), "metrics/comparison_test.csv")
        tracking.log_frame(result.predictions, "predictions/oot_predictions.parquet")
        tracking.log_frame(catalog_frame(), "feature_catalog.csv")
        left_out = table.attrs.get("left_out", {})
        if left_out:
            tracking.log_json(left_out, "features_left_out.json")

        reference = _reference_sample(table, result, cfg)
        tracking.log_frame(reference, "reference/training_window.parquet")

        for target, res in result.targets.items():
            figures = target_figures(
                result.predictions, target=target, label=res.label, importance=res.importance
            )
            figures.update(_shap_figures(res.model, table, result, target))
            tracking.log_figures(figures, f"plots/{target}")
            tracking.log_frame(res.importance, f"importance/{target}.csv")
            if res.tuning is not None:
                tracking.log_frame(res.tuning, f"tuning/{target}.csv")

            name = MODEL_NAMES[target]
            example = table[result.feature_names].head(5)
            version = tracking.log_model(res.model, target, example=example, registered_name=name)
            candidate = res.metrics["lgbm"]["test"]
            champion = _champion_metrics(name, result, target, table, cfg)
            decision = decide_champion(
                candidate,
                champion,
                metric=cfg.models.registry.metric,
                tolerance=cfg.models.registry.tolerance,
            )
            alias = tracking.CHAMPION if decision.promote else tracking.CHALLENGER
            tracking.set_alias(name, alias, version)
            mlflow.MlflowClient().update_model_version(name, version, description=decision.reason)
            mlflow.set_tag(f"{target}.registry", f"{name} v{version} -> {alias}: {decision.reason}")
            log.info("%s v%s -> %s: %s", name, version, alias, decision.reason)
            summary["decisions"][target] = {
                "version": version,
                "alias": alias,
                "reason": decision.reason,
            }
    return summary


def _quarantine_counts(report: Any) -> dict[str, float]:
    frame = report.to_frame()
    if frame.empty or "action" not in frame:
        return {}
    q = frame[frame["action"] == "quarantined"]
    return {f"quarantined.{t}": float(n) for t, n in q.groupby("table")["rows"].sum().items()}


def _reference_sample(table: pd.DataFrame, result: Any, cfg: Config) -> pd.DataFrame:
    """Training-window rows (features and raw scores) that later runs measure drift against."""
    train = table.loc[result.split.mask(table, "train")]
    sample = train.sample(min(REFERENCE_ROWS, len(train)), random_state=cfg.models.seed)
    out = sample[["as_of", *result.feature_names]].copy()
    for target, res in result.targets.items():
        # raw scores: the calibrator in force changes each quarter, the model does not
        out[f"p_{target}_raw"] = res.model.predict_raw(sample)
    return out.reset_index(drop=True)


def _shap_figures(model: Any, table: pd.DataFrame, result: Any, target: str) -> dict[str, Any]:
    """SHAP beeswarm of a seeded sample of the test slice."""
    from models.explain import beeswarm_figure, explain

    test = table.loc[result.split.mask(table, "test")]
    sample = test.sample(min(2000, len(test)), random_state=0)
    codes = explain({target: model}, sample[["account_id", *result.feature_names]])
    return {f"{target}_shap_beeswarm": beeswarm_figure(codes, target=target)}


@flow(name="nrrcast-train", log_prints=True)
def train_flow(
    config_path: str | None = None, source: str | None = None, data_end: str | None = None
) -> dict[str, Any]:
    """Train churn and expansion models on a source and register them in MLflow."""
    from features.build import check_feature_out, write_feature_table

    cfg = load_config(config_path)
    check_feature_out(cfg.paths.features, source=Path(source or cfg.paths.raw))  # before the work
    loaded = load_and_validate(Path(source or cfg.paths.raw), Path(cfg.paths.quarantine), data_end)
    dates = panel_dates(cfg, loaded, include_unlabelled=True)
    table = build_features(loaded, dates, cfg.features)
    write_feature_table(table, cfg.paths.features)
    result = train_models(table, cfg)
    summary = log_and_register(result, table, loaded, cfg, config_path)
    loaded.source.con.close()
    comparison = result.comparison("test")
    summary["test_metrics"] = comparison.to_dict(orient="records")
    print(
        comparison[["target", "model", "roc_auc", "pr_auc", "brier", "ece"]].to_string(index=False)
    )
    return summary
