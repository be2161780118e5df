"""`nrrcast models` and `nrrcast promote`: see and move the registry's aliases, with reasons.

Promotion by hand follows the same rule as promotion by training: the calibrators and
thresholds in force are refit for the new champion on the latest matured outcomes, or
the alias does not move (unless ``--force``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from features.errors import InputError, StateError


class PromotionError(StateError):
    """A promotion that cannot be carried out as asked (exit 1, one line)."""


def list_models(config: Path | None = None) -> Any:
    """Every version of both registered models: aliases, test metrics, reason (a DataFrame)."""
    import pandas as pd

    from flows import tracking
    from flows.config import EXPERIMENT, MODEL_NAMES, load_config

    cfg = load_config(config)
    tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    frames = []
    for target, name in MODEL_NAMES.items():
        frame = tracking.versions_frame(name)
        if not frame.empty:
            frames.append(frame.assign(model=target)[["model", *frame.columns]])
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def promote_version(
    target: str,
    version: int,
    reason: str,
    *,
    config: Path | None = None,
    alias: str = "champion",
    force: bool = False,
) -> dict[str, Any]:
    """Point `<model>@alias` at `version`, refitting the thresholds in force for a champion.

    Raises
    ------
    InputError
        Unknown target or an empty reason.
    PromotionError
        Unknown version, or thresholds that cannot be refit for it (without `force`).
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from flows import tracking
    from flows.config import EXPERIMENT, MODEL_NAMES, load_config
    from flows.refit import current_thresholds, refit_for_promotion
    from flows.tasks import open_validated, validation_args

    if target not in MODEL_NAMES:
        raise InputError(f"--model {target!r}: expected one of {sorted(MODEL_NAMES)}")
    if not reason.strip():
        raise InputError("--reason is empty: say why the alias moves")
    cfg = load_config(config)
    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    name = MODEL_NAMES[target]
    try:
        MlflowClient().get_model_version(name, str(version))
    except MlflowException:
        raise PromotionError(
            f"{name} has no version {version} in {cfg.paths.mlflow_uri} (see `nrrcast models`)"
        ) from None
    refit = None
    if alias == tracking.CHAMPION and current_thresholds(cfg) is not None:
        models, versions = {target: tracking.load_version(name, version)}, {target: str(version)}
        for other, other_name in MODEL_NAMES.items():
            if other != target:
                found = tracking.champion_version(other_name)
                if found is None:
                    raise PromotionError(f"{other_name} has no champion to calibrate beside")
                models[other] = tracking.load_version(other_name, found.version)
                versions[other] = str(found.version)
        loaded = open_validated(**validation_args(cfg, engine=False))
        try:
            refit = refit_for_promotion(
                cfg, loaded, models, versions, f"promotion of {target} v{version}: {reason}"
            )
        except (ValueError, StateError) as exc:
            if not force:
                raise PromotionError(
                    f"{name} v{version} not promoted: the thresholds in force cannot be refit "
                    f"for it ({exc}); --force promotes with its own calibration"
                ) from exc
        finally:
            loaded.source.con.close()
    with tracking.run(exp, f"promote {name} v{version}", tags={"flow": "promote"}):
        tracking.log_params(
            {"model": name, "version": version, "alias": alias, "reason": reason, "force": force}
        )
        if refit is not None:
            import mlflow

            mlflow.log_artifact(str(refit[1]), "thresholds")
        tracking.set_alias(name, alias, version, reason=f"{reason} (by hand)")
    return {"model": name, "version": str(version), "alias": alias,
            "thresholds": str(refit[1]) if refit else None}  # fmt: skip


def models_command(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML on top of configs/default.yaml")
    ] = None,
) -> None:
    """List the registered model versions with their aliases, test metrics and reasons."""
    import pandas as pd

    frame = list_models(config)
    if frame.empty:
        typer.echo("no registered models yet: run `nrrcast train`")
        return
    with pd.option_context("display.width", 200, "display.max_colwidth", 90):
        typer.echo(frame.drop(columns=["run_id"]).to_string(index=False, float_format="%.4f"))


def promote_command(
    model: Annotated[str, typer.Option("--model", help="churn or expand")],
    version: Annotated[int, typer.Option("--version", help="model version to point the alias at")],
    reason: Annotated[str, typer.Option("--reason", help="why (recorded on the version)")],
    alias: Annotated[str, typer.Option("--alias", help="alias to move")] = "champion",
    force: Annotated[
        bool, typer.Option("--force", help="promote even if thresholds cannot be refit")
    ] = False,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML on top of configs/default.yaml")
    ] = None,
) -> None:
    """Move an alias (default champion) to a model version, with a recorded reason."""
    done = promote_version(model, version, reason, config=config, alias=alias, force=force)
    extra = f"; thresholds refit -> {done['thresholds']}" if done["thresholds"] else ""
    typer.echo(f"{done['model']}@{done['alias']} -> v{done['version']}{extra}")


def register(app: typer.Typer) -> None:
    """Add `models` and `promote` to the `nrrcast` command line."""
    app.command("models")(models_command)
    app.command("promote")(promote_command)
