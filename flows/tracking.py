"""MLflow at the edge: store setup, run logging helpers, the model registry and aliases.

The libraries return plain dicts, frames and figures; only this module talks to MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.errors import MissingModelError

log = logging.getLogger("nrrcast.tracking")

CHAMPION = "champion"
CHALLENGER = "challenger"


def configure(uri: str, artifacts: str | Path, experiment: str) -> str:
    """Point MLflow at the sqlite store and return the experiment id (created if missing).

    Artifacts go under `artifacts/<experiment>` so the store stays self-contained in mlruns/.
    """
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        return found.experiment_id
    location = (Path(artifacts) / experiment).resolve()
    location.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(experiment, artifact_location=location.as_uri())


def fingerprint(paths: list[Path] | Path, *, chunk: int = 1 << 22) -> str:
    """A content hash of input files (sorted by relative path) that identifies the data of a run."""
    roots = [paths] if isinstance(paths, Path) else list(paths)
    digest = hashlib.blake2b(digest_size=16)
    for root in roots:
        files = (
            sorted(p for p in Path(root).rglob("*") if p.is_file())
            if Path(root).is_dir()
            else [Path(root)]
        )
        for file in files:
            rel = file.relative_to(root) if Path(root).is_dir() else Path(file.name)
            digest.update(str(rel).encode())
            with file.open("rb") as fh:
                while block := fh.read(chunk):
                    digest.update(block)
    return digest.hexdigest()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict -> {'a.b.c': value} for MLflow params and metrics."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def log_metrics(metrics: Mapping[str, Any], prefix: str = "") -> None:
    """Log the finite numeric leaves of a nested metrics dict."""
    flat = {}
    for key, value in flatten(metrics, prefix).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if value != value or value in (float("inf"), float("-inf")):
            continue
        flat[key.replace("@", "_at_")] = float(value)
    if flat:
        mlflow.log_metrics(flat)


def log_params(params: Mapping[str, Any], prefix: str = "") -> None:
    """Log nested params, values stringified and truncated to MLflow's limit."""
    flat = {k: str(v)[:6000] for k, v in flatten(params, prefix).items()}
    for start in range(0, len(flat), 100):
        mlflow.log_params(dict(list(flat.items())[start : start + 100]))


def log_frame(frame: pd.DataFrame, artifact_file: str) -> None:
    """Log a frame as CSV (small tables a person opens) or Parquet (by extension)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


def log_json(data: Any, artifact_file: str) -> None:
    mlflow.log_text(json.dumps(data, indent=2, default=str), artifact_file)


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    """Log matplotlib figures as PNG and close them."""
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        mlflow.log_figure(fig, f"{folder}/{name}.png")
        plt.close(fig)


@contextmanager
def run(experiment_id: str, name: str, tags: Mapping[str, str] | None = None) -> Iterator[Any]:
    """An MLflow run that records the failure reason as a tag when the body raises."""
    with mlflow.start_run(
        experiment_id=experiment_id, run_name=name, tags=dict(tags or {})
    ) as active:
        try:
            yield active
        except BaseException as exc:
            mlflow.set_tag("failure", f"{type(exc).__name__}: {exc}"[:5000])
            raise


def champion_version(name: str, alias: str = CHAMPION) -> Any | None:
    """The model version behind an alias, or None when the model or alias does not exist."""
    try:
        return MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str | int) -> None:
    MlflowClient().set_registered_model_alias(name, alias, str(version))


def load_champion(name: str, alias: str = CHAMPION) -> tuple[Any, Any]:
    """Load the model behind `name@alias`; a clear error when nothing was promoted yet."""
    version = champion_version(name, alias)
    if version is None:
        raise MissingModelError(
            f"no '{alias}' version of registered model '{name}' in {mlflow.get_tracking_uri()}",
            hint="run `nrrcast train` first",
        )
    model = mlflow.sklearn.load_model(f"models:/{name}@{alias}")
    return model, version


def log_model(model: Any, name: str, *, example: pd.DataFrame, registered_name: str) -> str:
    """Log a fitted estimator (skops format) with signature and input example; returns the version.

    skops refuses types it does not know; the ones our own estimator is made of are
    listed as trusted so that loading needs no extra arguments.
    """
    import skops.io
    from mlflow.models import infer_signature

    trusted = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    info = mlflow.sklearn.log_model(
        model,
        name=name,
        signature=infer_signature(example, model.predict_proba(example)[:, 1]),
        input_example=example,
        registered_model_name=registered_name,
        skops_trusted_types=trusted,
    )
    return str(info.registered_model_version)
