"""MLflow at the edge: store setup, run logging helpers, the model registry and aliases.

The libraries return plain dicts, frames and figures; only this module talks to MLflow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import socket
import sqlite3
import tempfile
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from features.errors import MissingModelError
from features.storage import process_alive

log = logging.getLogger("nrrcast.tracking")

CHAMPION = "champion"
CHALLENGER = "challenger"
#: registered model name per target (the train flow registers under these)
MODEL_NAMES_BY_TARGET = {"churn": "nrrcast-churn", "expand": "nrrcast-expansion"}


def configure(uri: str, artifacts: str | Path, experiment: str) -> str:
    """Point MLflow at the sqlite store and return the experiment id (created if missing).

    Artifacts of a new experiment go under `artifacts/<experiment>`. A relative
    `artifacts` path is stored relative (MLflow would make it absolute), so a copied or
    moved `mlruns/` keeps writing into itself, not into the old location. A URL root
    (``s3://``, ``abfss://``, ``gs://``, ``file://``) is used as given, never taken for a
    local path; with a tracking server (``http(s)://``, ``databricks``) the server decides.
    Runs of this project left RUNNING by a process that no longer exists (killed) are
    marked FAILED.
    """
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient()
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        fail_stale_runs(found.experiment_id)
        return found.experiment_id
    if uri.startswith(("http://", "https://", "databricks")):
        # a tracking server (e.g. on PostgreSQL) decides where artifacts go (its
        # --artifacts-destination); a local path of this machine would be wrong for the team
        return client.create_experiment(experiment)
    root = str(artifacts)
    if "://" in root:  # an object store (or file://) root: not a path of this machine
        if root.startswith("file://"):
            Path(url2pathname(urlparse(root).path), experiment).mkdir(parents=True, exist_ok=True)
        return client.create_experiment(
            experiment, artifact_location=f"{root.rstrip('/')}/{experiment}"
        )
    location = Path(artifacts) / experiment
    location.mkdir(parents=True, exist_ok=True)
    exp_id = client.create_experiment(experiment, artifact_location=location.resolve().as_uri())
    if uri.startswith("sqlite:///") and not location.is_absolute():
        _store_relative_location(uri.removeprefix("sqlite:///"), exp_id, location.as_posix())
    return exp_id


def _store_relative_location(db: str, experiment_id: str, location: str) -> None:
    """Keep the experiment's artifact root relative to the working directory.

    MLflow resolves a relative location to an absolute one when the experiment is created;
    the experiment was created just now by this process, so nothing else refers to the
    absolute form yet. Run and model artifact URIs are derived from this root.
    """
    with sqlite3.connect(db) as con:
        con.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (location, int(experiment_id)),
        )


def fail_stale_runs(experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose process (on this host) no longer exists.

    Runs record ``nrrcast.host`` and ``nrrcast.pid`` when they start (see `run`); runs
    without them, or from another host, are left alone: they may still be running.

    Returns
    -------
    ids of the runs marked FAILED.
    """
    client = MlflowClient()
    host = socket.gethostname()
    stale = []
    for found in client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=1000
    ):
        tags = found.data.tags
        pid = tags.get("nrrcast.pid", "")
        if tags.get("nrrcast.host") != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        client.set_tag(found.info.run_id, "failure", f"interrupted: process {pid} ended")
        client.set_terminated(found.info.run_id, status="FAILED")
        stale.append(found.info.run_id)
    if stale:
        log.warning("marked %d interrupted run(s) FAILED: %s", len(stale), ", ".join(stale))
    return stale


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
    """Log a frame as CSV (small tables a person opens; formula prefixes escaped) or Parquet."""
    from evaluation.csv_safe import escape_frame

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        if path.suffix == ".parquet":
            frame.to_parquet(path, index=False)
        else:
            escape_frame(frame).to_csv(path, index=False)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


def log_json(data: Any, artifact_file: str) -> None:
    mlflow.log_text(json.dumps(data, indent=2, default=str), artifact_file)


def log_figures(figures: Mapping[str, Any], folder: str = "plots") -> None:
    """Log matplotlib figures as PNG (named once: ``x`` and ``x.png`` give ``x.png``), close them.

    Saved with a tight bounding box so long labels (feature names) are not cut.
    """
    import matplotlib.pyplot as plt

    for name, fig in figures.items():
        stem = name.removesuffix(".png")
        mlflow.log_figure(fig, f"{folder}/{stem}.png", save_kwargs={"bbox_inches": "tight"})
        plt.close(fig)


class Interrupted(Exception):
    """The process received SIGTERM while a run was active."""


@contextmanager
def _terminate_as_exception() -> Iterator[None]:
    """Turn SIGTERM into an exception (main thread only) so an active run ends as FAILED."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Interrupted(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def run(
    experiment_id: str,
    name: str,
    tags: Mapping[str, str] | None = None,
    *,
    nested: bool = False,
) -> Iterator[Any]:
    """An MLflow run that ends FAILED (with a ``failure`` tag) when the body raises or the
    process is terminated; a killed process's run is marked FAILED by the next `configure`.
    """
    own = {"nrrcast.host": socket.gethostname(), "nrrcast.pid": str(os.getpid())}
    with (
        _terminate_as_exception(),
        mlflow.start_run(
            experiment_id=experiment_id,
            run_name=name,
            tags={**own, **dict(tags or {})},
            nested=nested,
        ) as active,
    ):
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


def set_alias(name: str, alias: str, version: str | int, *, reason: str = "") -> None:
    """Point `name@alias` at `version` and record why on the version (tag + description)."""
    from datetime import UTC, datetime

    client = MlflowClient()
    client.set_registered_model_alias(name, alias, str(version))
    if reason:
        client.set_model_version_tag(name, str(version), f"nrrcast.{alias}_reason", reason)
        client.set_model_version_tag(
            name, str(version), f"nrrcast.{alias}_since", datetime.now(UTC).isoformat()
        )
        client.update_model_version(name, str(version), description=f"{alias}: {reason}")


def versions_frame(
    name: str, metrics: tuple[str, ...] = ("roc_auc", "pr_auc", "brier", "ece")
) -> pd.DataFrame:
    """One row per version of a registered model: aliases, test metrics, reason, run.

    Metrics are the candidate's test-slice metrics logged on the run that trained it.
    """
    client = MlflowClient()
    try:
        model = client.get_registered_model(name)
    except MlflowException:
        return pd.DataFrame()
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    target = next((t for t, n in MODEL_NAMES_BY_TARGET.items() if n == name), "")
    for mv in client.search_model_versions(f"name = '{name}'"):
        run_metrics = {}
        with suppress(MlflowException):
            run_metrics = client.get_run(mv.run_id).data.metrics if mv.run_id else {}
        row = {
            "version": int(mv.version),
            "aliases": ",".join(sorted(aliases.get(str(mv.version), []))),
            "created": pd.Timestamp(mv.creation_timestamp, unit="ms").strftime("%Y-%m-%d %H:%M"),
        }
        for m in metrics:
            row[m] = run_metrics.get(f"{target}.lgbm.test.{m}")
        row["reason"] = mv.description or ""
        row["run_id"] = mv.run_id
        rows.append(row)
    return pd.DataFrame(rows).sort_values("version", ascending=False).reset_index(drop=True)


def log_tuning(experiment_id: str, target: str, trials: pd.DataFrame) -> None:
    """One nested run per tuning trial (params, objective, best iteration) under the active run.

    Parameters
    ----------
    trials : ``optuna.Study.trials_dataframe`` columns ``number``, ``value``,
        ``params_<name>`` and ``user_attrs_<name>``.
    """
    best = trials["value"].idxmin() if trials["value"].notna().any() else None
    for idx, trial in zip(trials.index, trials.to_dict(orient="records"), strict=True):
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"tune {target} #{int(trial['number'])}",
            nested=True,
            tags={"flow": "tune", "target": target, "best": str(idx == best).lower()},
        ):
            params = {k.removeprefix("params_"): v for k, v in trial.items()
                      if k.startswith("params_")}  # fmt: skip
            log_params(params)
            values = {"valid_logloss": trial["value"], "number": trial["number"]}
            values.update({k.removeprefix("user_attrs_"): v for k, v in trial.items()
                           if k.startswith("user_attrs_")})  # fmt: skip
            log_metrics(values)


def load_champion(name: str, alias: str = CHAMPION) -> tuple[Any, Any]:
    """The `models.portable.PortableModel` behind `name@alias` and its model version.

    Only data files are read (LightGBM model text and JSON): nothing from the store is
    unpickled or executed. A clear error when nothing was promoted yet.
    """
    version = champion_version(name, alias)
    if version is None:
        raise MissingModelError(
            f"no '{alias}' version of registered model '{name}' in {mlflow.get_tracking_uri()}",
            hint="run `nrrcast train` first",
        )
    return load_version(name, version.version), version


def load_version(name: str, version: str | int) -> Any:
    """The `PortableModel` of one registered model version (data files only)."""
    from flows.pyfunc_model import ARTIFACT
    from models.portable import PortableModel

    with tempfile.TemporaryDirectory() as tmp:
        where = mlflow.artifacts.download_artifacts(
            f"models:/{name}/{version}/artifacts/{ARTIFACT}", dst_path=tmp
        )
        return PortableModel.load(where)


#: what the skops file of an `OutcomeClassifier` is made of; fixed here, never read from the
#: model's own files (whoever can write to mlruns/ must not choose what gets loaded);
#: files logged before the rename name the class `models.train.NrrClassifier`
SKOPS_TRUSTED_TYPES = (
    "lightgbm.basic.Booster",
    "models.calibrate.ProbabilityCalibrator",
    "models.train.OutcomeClassifier",
    "models.train.NrrClassifier",
)


def log_estimator(model: Any, artifact_file: str) -> None:
    """Log the fitted scikit-learn estimator itself (skops) for notebooks and audits."""
    import skops.io

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        skops.io.dump(model, path)
        parent = str(Path(artifact_file).parent)
        mlflow.log_artifact(str(path), artifact_path=None if parent == "." else parent)


def load_estimator(run_id: str, artifact_file: str) -> Any:
    """Load an estimator logged by `log_estimator`, trusting only `SKOPS_TRUSTED_TYPES`.

    Raises
    ------
    skops.io.exceptions.UntrustedTypesFoundException
        When the file holds any other type.
    """
    import skops.io

    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=artifact_file, dst_path=tmp
        )
        return skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES))


def log_model(
    model: Any,
    name: str,
    *,
    target: str,
    example: pd.DataFrame,
    registered_name: str,
    descriptions: Mapping[str, str] | None = None,
    schema_rows: pd.DataFrame | None = None,
    calibration: Mapping[str, Any] | None = None,
) -> str:
    """Log and register the pyfunc model of one target; returns the new version.

    The model is `flows/pyfunc_model.py` (models from code) over the portable parts of
    `model` (`models.portable`), with `models/portable.py` as its only code path and
    exactly the requirements those need. `predict` returns calibrated probabilities.
    The input schema is inferred from `schema_rows` (default `example`): columns with
    missing values anywhere in it are optional, integer columns that can be missing are
    declared double. `calibration` (portable parameters) replaces the estimator's own
    calibrator: a champion carries the calibrator in force when it is promoted.
    """
    from importlib.metadata import version as installed

    from mlflow.models import infer_signature

    import flows.pyfunc_model as wrapper
    import models.portable as portable

    parts = portable.PortableModel.from_estimator(model, target, descriptions, calibration)
    output = parts.predict_frame(example)
    with tempfile.TemporaryDirectory() as tmp:
        folder = parts.save(Path(tmp) / wrapper.ARTIFACT)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=wrapper.__file__,
            artifacts={wrapper.ARTIFACT: str(folder)},
            code_paths=[portable.__file__],
            signature=infer_signature(
                _schema_frame(example if schema_rows is None else schema_rows),
                output,
                params={"reasons": 0, "calibration": ""},
            ),
            input_example=example,
            pip_requirements=[
                f"{pkg}=={installed(pkg)}"
                for pkg in ("mlflow", "lightgbm", "numpy", "pandas", "scipy")
            ],
            registered_model_name=registered_name,
        )
    return str(info.registered_model_version)


def _schema_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """A small frame with the dtypes and nullability of `rows` for signature inference.

    Every column keeps one row where it is missing when it is missing anywhere, so the
    signature marks it optional; integer columns become float64 (a model input that may
    be missing cannot be an integer column, and the model computes in float64 anyway).
    """
    out = rows.head(5).astype(
        {c: "float64" for c in rows.columns if pd.api.types.is_integer_dtype(rows[c])}
    )
    nulls = rows.columns[rows.isna().any()]
    if len(nulls):
        blank = out.head(1).copy()
        blank[list(nulls)] = float("nan")
        out = pd.concat([out, blank], ignore_index=True)
    return out
