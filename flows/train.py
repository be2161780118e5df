"""Training flow: validate, build the panel, train both models and baselines, log, register.

Every run is one MLflow run. A new model version becomes `champion` only when it is not
worse than the current champion on the latest out-of-time slice; otherwise it is kept
as `challenger` with the reason recorded.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.errors import StateError
from flows import tracking
from flows.config import EXPERIMENT, MODEL_NAMES, Config, engine_overrides, load_config
from flows.refit import refit_for_promotion, write_refit
from flows.tasks import (
    LoadedSource,
    build_features,
    load_and_validate,
    panel_dates,
    validation_args,
)

log = logging.getLogger("nrrcast.train")

REFERENCE_ROWS = 20_000


@task(name="train-models", cache_policy=NO_CACHE)
def train_models(table: pd.DataFrame, cfg: Config) -> Any:
    from features.catalog import feature_names
    from models.train import train_all

    return train_all(table, cfg.models, feature_names(), horizon_days=cfg.features.horizon_days)


def _champion_metrics(
    name: str, result: Any, target: str, table: pd.DataFrame, cfg: Config
) -> tuple[dict | None, Any, Any]:
    """The current champion scored on the candidate's test rows (like for like).

    Returns
    -------
    (metrics, version, model), all None when there is no champion yet.

    Raises
    ------
    ChampionUnavailableError
        When a champion exists but cannot be loaded or scored on these rows.
    """
    from evaluation.metrics import binary_metrics
    from models.registry import ChampionUnavailableError

    version = tracking.champion_version(name)
    if version is None:
        return None, None, None
    where = f"{name} v{version.version} (@{tracking.CHAMPION})"
    try:
        champion = tracking.load_version(name, version.version)
    except Exception as exc:
        raise ChampionUnavailableError(f"cannot load {where}: {exc}") from exc
    label = cfg.models.targets[target]
    test = table.loc[result.split.mask(table, "test") & table[label].notna()]
    missing = sorted(set(champion.feature_names_in_) - set(test.columns))
    if missing:
        raise ChampionUnavailableError(
            f"cannot score {where}: it needs {len(missing)} feature(s) the table lacks: "
            f"{missing[:10]}"
        )
    m = cfg.models.metrics
    try:
        p = champion.predict_proba(test)[:, 1]
    except Exception as exc:
        raise ChampionUnavailableError(f"cannot score {where}: {exc}") from exc
    metrics = binary_metrics(
        test[label].to_numpy(dtype=float),
        p,
        n_bins=m.ece_bins,
        top_fraction=m.top_fraction,
        k=m.flags,
    )
    return metrics, version, champion


def _decide(
    name: str, target: str, result: Any, table: pd.DataFrame, cfg: Config, force: bool
) -> dict[str, Any]:
    """Compare the candidate with the champion on the same rows; log both on this run."""
    from models.registry import ChampionUnavailableError, Decision, decide_champion

    res = result.targets[target]
    candidate = res.metrics["lgbm"]["test"]
    tracking.log_metrics(candidate, f"{target}.candidate.test.")
    registry = cfg.models.registry
    try:
        champion, version, model = _champion_metrics(name, result, target, table, cfg)
    except ChampionUnavailableError as exc:
        mlflow.set_tag(f"{target}.champion_error", str(exc)[:5000])
        cand = float(candidate.get(registry.metric, float("nan")))
        if force:
            reason = f"promoted with --force: {exc}"
            return {"decision": Decision(True, reason, registry.metric, cand, float("nan")),
                    "champion_model": None, "error": None}  # fmt: skip
        reason = f"not promoted: {exc}; compare by hand and `nrrcast promote`, or --force"
        return {"decision": Decision(False, reason, registry.metric, cand, float("nan")),
                "champion_model": None, "error": str(exc)}  # fmt: skip
    if champion is not None:
        tracking.log_metrics(champion, f"{target}.champion.test.")
        mlflow.set_tag(f"{target}.champion_version", str(version.version))
    decision = decide_champion(
        candidate, champion, metric=registry.metric, tolerance=registry.tolerance
    )
    return {"decision": decision, "champion_model": model, "error": None}


def _log_inputs(
    result: Any, table: pd.DataFrame, loaded: LoadedSource, cfg: Config, config_path: str | None
) -> None:
    """What the run was trained on and how: config, data, panel, datasets, split, metrics,
    predictions, the catalog and the drift reference."""
    from features.catalog import catalog_frame

    tracking.log_json(cfg.model_dump(mode="json"), "config.json")
    if config_path:
        mlflow.set_tag("config_file", str(config_path))
    if isinstance(loaded.path, Path):  # files; a database source has no file to hash
        mlflow.set_tag("data_fingerprint", tracking.fingerprint(loaded.path))
    mlflow.set_tag("data_end", loaded.data_end.isoformat())
    mlflow.set_tag("data_end_from", loaded.data_end_from)
    counts = loaded.report.counts_frame() if hasattr(loaded.report, "counts_frame") else None
    if counts is not None:
        tracking.log_frame(counts.reset_index(), "data/row_counts.csv")
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
    _log_datasets(table, result, loaded, cfg)
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


def _log_targets(
    exp: str, result: Any, table: pd.DataFrame, cfg: Config, force: bool
) -> dict[str, dict[str, Any]]:
    """Per target: figures, importance, segment metrics, tuning and the estimator; then the
    comparison with the champion. Returns the pending registration of each target."""
    from evaluation.plots import target_figures

    pending: dict[str, dict[str, Any]] = {}
    for target, res in result.targets.items():
        figures = target_figures(
            result.predictions, target=target, label=res.label, importance=res.importance
        )
        figures.update(_shap_figures(res.model, table, result, target))
        tracking.log_figures(figures, f"plots/{target}")
        tracking.log_frame(res.importance, f"importance/{target}.csv")
        _log_segment_metrics(target, res.segment_metrics)
        if res.tuning is not None:
            tracking.log_tuning(exp, target, res.tuning)
        tracking.log_estimator(res.model, f"estimator/{target}.skops")

        name = MODEL_NAMES[target]
        pending[target] = {"name": name,
                           **_decide(name, target, result, table, cfg, force)}  # fmt: skip
    return pending


def _register(
    pending: dict[str, dict[str, Any]],
    refit: dict[str, Any] | None,
    result: Any,
    table: pd.DataFrame,
    descriptions: dict[str, str],
) -> None:
    """Log each model as a registered version (a champion-to-be with the calibrator in
    force); its version number goes into `pending`."""
    for target, p in pending.items():
        # a champion carries the calibrator in force, so its pyfunc predicts what
        # `nrrcast score` scores; a challenger keeps its own
        in_force = refit["calibrator"][target] if refit and p["decision"].promote else None
        p["version"] = tracking.log_model(
            result.targets[target].model,
            target,
            target=target,
            example=table[result.feature_names].head(5),
            schema_rows=table[result.feature_names],
            registered_name=p["name"],
            descriptions=descriptions,
            calibration=in_force,
        )


def _write_refit(
    refit: dict[str, Any], promoted: list[str], pending: dict[str, dict[str, Any]], cfg: Config
) -> None:
    """Write the thresholds refit for the new versions and log them on the run."""
    for target in promoted:
        refit["model_versions"][target] = str(pending[target]["version"])
    refit["refit_reason"] = "promotion of " + ", ".join(
        f"{t} v{pending[t]['version']}" for t in promoted
    )
    path = write_refit(refit, cfg)
    mlflow.log_artifact(str(path), "thresholds")
    tracking.log_metrics(
        {
            "thresholds.churn": refit["churn_threshold"],
            "thresholds.expand": refit["expand_threshold"],
        }
    )


def _set_aliases(pending: dict[str, dict[str, Any]], summary: dict[str, Any]) -> None:
    """Point champion or challenger at each new version, with the reason; fill `summary`."""
    for target, p in pending.items():
        decision = p["decision"]
        alias = tracking.CHAMPION if decision.promote else tracking.CHALLENGER
        tracking.set_alias(p["name"], alias, p["version"], reason=decision.reason)
        mlflow.set_tag(
            f"{target}.registry", f"{p['name']} v{p['version']} -> {alias}: {decision.reason}"
        )
        log.info("%s v%s -> %s: %s", p["name"], p["version"], alias, decision.reason)
        summary["decisions"][target] = {
            "version": p["version"],
            "alias": alias,
            "reason": decision.reason,
        }
        if p["error"]:
            summary["errors"][target] = p["error"]


@task(name="log-and-register", cache_policy=NO_CACHE)
def log_and_register(
    result: Any,
    table: pd.DataFrame,
    loaded: LoadedSource,
    cfg: Config,
    config_path: str | None,
    force: bool = False,
) -> dict[str, Any]:
    """One MLflow run with everything a reviewer needs, then registry aliases.

    A candidate that is not worse than the champion (same rows) becomes champion only
    together with calibrators and thresholds refit for it (when a thresholds file is in
    force); if that refit is impossible the old champion stays.
    """
    from features.catalog import CATALOG

    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    summary: dict[str, Any] = {"decisions": {}, "versions": {}, "errors": {}}
    descriptions = {k: v.description for k, v in CATALOG.items()}
    with tracking.run(exp, "train", tags={"flow": "train", "source": str(loaded.path)}) as active:
        summary["run_id"] = active.info.run_id
        _log_inputs(result, table, loaded, cfg, config_path)
        pending = _log_targets(exp, result, table, cfg, force)
        promoted = [t for t, p in pending.items() if p["decision"].promote]
        refit = _refit_in_step(pending, promoted, result, loaded, cfg, descriptions, force)
        _register(pending, refit, result, table, descriptions)
        if refit is not None:
            _write_refit(refit, promoted, pending, cfg)
        _set_aliases(pending, summary)
    return summary


def _refit_in_step(
    pending: dict[str, dict[str, Any]],
    promoted: list[str],
    result: Any,
    loaded: LoadedSource,
    cfg: Config,
    descriptions: dict[str, str],
    force: bool,
) -> dict[str, Any] | None:
    """The thresholds in force refit for the champions-to-be (not written yet).

    None when nothing is promoted or no thresholds file is in force. When the refit is
    impossible the decisions in `pending` are changed: the old champion stays (unless
    `force`). The new versions do not exist yet: ``model_versions`` holds ``"new"`` for
    them until the caller fills them in.
    """
    from models.portable import PortableModel
    from models.registry import Decision

    if not promoted:
        return None
    models, versions = {}, {}
    for target, p in pending.items():
        if target in promoted:
            models[target] = PortableModel.from_estimator(
                result.targets[target].model, target, descriptions
            )
            versions[target] = "new"
        else:
            current = tracking.champion_version(p["name"])
            if current is None:  # neither promoted nor any champion: nothing to refit with
                return None
            models[target] = p["champion_model"] or tracking.load_version(
                p["name"], current.version
            )
            versions[target] = str(current.version)
    reason = "promotion of " + ", ".join(promoted)
    try:
        found = refit_for_promotion(cfg, loaded, models, versions, reason, write=False)
    except (ValueError, StateError) as exc:
        for target in promoted:
            d = pending[target]["decision"]
            if force:
                pending[target]["decision"] = Decision(
                    True, f"{d.reason}; forced although thresholds cannot be refit: {exc}",
                    d.metric, d.candidate, d.champion,
                )  # fmt: skip
            else:
                pending[target]["decision"] = Decision(
                    False,
                    f"kept the current champion: thresholds in force cannot be refit for this "
                    f"version ({exc}); `nrrcast promote` once outcomes have matured",
                    d.metric, d.candidate, d.champion,
                )  # fmt: skip
        log.warning("thresholds in force cannot be refit for %s: %s", reason, exc)
        return None
    return None if found is None else found[0]


def _log_segment_metrics(target: str, segments: dict[str, dict[str, dict[str, float]]]) -> None:
    """Test-slice metrics per segment: as metrics and as one table a person opens."""
    rows = []
    for column, by_value in segments.items():
        for value, metrics in by_value.items():
            safe = re.sub(r"[^0-9A-Za-z_\-. /]", "_", str(value))
            tracking.log_metrics(metrics, f"{target}.segment.{column}.{safe}.")
            rows.append({"column": column, "segment": value, **metrics})
    if rows:
        tracking.log_frame(pd.DataFrame(rows), f"metrics/segments_{target}.csv")


def _log_datasets(table: pd.DataFrame, result: Any, loaded: LoadedSource, cfg: Config) -> None:
    """The rows of each slice as MLflow datasets (schema, digest, source), not the data."""
    labels = list(cfg.models.targets.values())
    columns = ["account_id", "as_of", *result.feature_names, *labels]
    contexts = {"train": "training", "valid": "validation", "calib": "calibration",
                "test": "testing"}  # fmt: skip
    for slice_name, context in contexts.items():
        rows = table.loc[result.split.mask(table, slice_name), columns]
        dataset = mlflow.data.from_pandas(
            rows.reset_index(drop=True),
            # MLflow resolves file-like sources only; a database URL is the run's source tag
            source=str(loaded.path.resolve()) if isinstance(loaded.path, Path) else None,
            name=f"panel-{slice_name}",
            targets=labels[0],
        )
        mlflow.log_input(dataset, context=context)


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
    config_path: str | None = None,
    source: str | None = None,
    data_end: str | None = None,
    force: bool = False,
    engine: str | None = None,
) -> dict[str, Any]:
    """Train churn and expansion models on a source and register them in MLflow.

    `force` promotes a candidate even when the current champion cannot be evaluated or
    the thresholds in force cannot be refit for it. Raises `ChampionUnavailableError`
    (after the run is logged, the candidate kept as challenger) when the champion cannot
    be evaluated and `force` is not set.
    """
    from features.build import check_feature_out, write_feature_table
    from models.registry import ChampionUnavailableError

    cfg = load_config(config_path, engine_overrides(engine))
    args = validation_args(cfg, source, data_end)
    check_feature_out(cfg.paths.features, source=args["source"])  # before the work
    loaded = load_and_validate(**args)
    dates = panel_dates(cfg, loaded, include_unlabelled=True)
    table = build_features(loaded, dates, cfg.features)
    write_feature_table(table, cfg.paths.features)
    result = train_models(table, cfg)
    summary = log_and_register(result, table, loaded, cfg, config_path, force)
    loaded.source.con.close()
    if summary["errors"]:
        raise ChampionUnavailableError(
            "; ".join(f"{t}: {e}" for t, e in summary["errors"].items())
            + " - the candidates are kept as challenger (run "
            f"{summary['run_id']}); `nrrcast train --force` promotes anyway"
        )
    comparison = result.comparison("test")
    summary["test_metrics"] = comparison.to_dict(orient="records")
    print(
        comparison[["target", "model", "roc_auc", "pr_auc", "brier", "ece"]].to_string(index=False)
    )
    return summary
