"""Steps shared by the flows: load and validate a source, the panel's dates, the features,
the champions and the drift against their training window.

Each task is a thin call into a library; heavy objects (DuckDB connections, frames)
pass between tasks in-process, so caching is off for them. This module imports no flow.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from features.errors import InputError
from features.source_reads import event_count, first_event_ts
from features.sql_source import source_arg
from flows.config import EXPERIMENT, MODEL_NAMES, Config

log = logging.getLogger("nrrcast.flows")
score_log = logging.getLogger("nrrcast.score")  # drift is reported under scoring's name


@dataclass
class LoadedSource:
    """A validated source: the DuckDB connection with clean relations, and what was found."""

    source: Any
    report: Any
    path: Path | str  # a str for a database URL (password redacted by the source)
    data_end: date
    data_end_from: str = "manifest"


def open_source_for(source: Path, feature_cfg: Any = None) -> Any:
    """The source's raw views on the configured engine (DuckDB, or Spark when
    ``features.engine`` is ``spark``: a session on ``features.spark_master``)."""
    from features.sources import open_source

    if feature_cfg is None or getattr(feature_cfg, "engine", "duckdb") == "duckdb":
        return open_source(source)
    from features.spark_engine import open_spark_source, spark_session

    spark = spark_session(feature_cfg.spark_master, conf=feature_cfg.spark_conf)
    log.info("engine: Spark %s on %s", spark.version, feature_cfg.spark_master)
    return open_spark_source(source, spark, location=feature_cfg.spark_tmp_dir)


def open_validated(
    source: Path | str,
    quarantine_dir: Path | None,
    data_end: date | str | None = None,
    *,
    today: date | None = None,
    floor: date | None = None,
    feature_cfg: Any = None,
) -> LoadedSource:
    """Open the source, decide the data's end, validate and stop on contract errors.

    The data's end follows the one rule of `features.validate.validate_until`:
    manifest.json, else `data_end` (the ``--data-end`` option), else inferred from the data
    (with a notice). Rows on or after it are quarantined, the same for every command.
    `feature_cfg` (``cfg.features``) chooses the engine (DuckDB when None).
    """
    from features.validate import validate_until

    src = open_source_for(source, feature_cfg)
    try:
        report, end = validate_until(
            src,
            option=data_end,
            today=today or date.today(),
            quarantine_dir=quarantine_dir,
            floor=floor,
        )
        where = src.url or Path(source)  # a database URL without its password
        log.info("validation of %s:\n%s", where, report.summary())
        report.raise_if_failed()
        require_events(src.con, where)
    except BaseException:
        src.close()
        del src  # the traceback keeps this frame (and so the connection object) alive
        raise
    return LoadedSource(
        source=src, report=report, path=where, data_end=end.day, data_end_from=end.origin
    )


def validation_args(
    cfg: Config, source: str | Path | None = None, data_end: date | str | None = None,
    *, engine: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """The arguments of `open_validated` (or the `load_and_validate` task) for a config.

    Every command validates the same way: the source (default ``paths.raw``), the
    configured quarantine and data floor, and the configured engine unless `engine` is
    False (DuckDB).
    """
    return {
        "source": source_arg(source or cfg.paths.raw),
        "quarantine_dir": Path(cfg.paths.quarantine),
        "data_end": data_end,
        "floor": cfg.features.data_floor,
        "feature_cfg": cfg.features if engine else None,
    }


def require_events(con: Any, source: Path | str) -> None:
    """Refuse a source whose events table holds no clean row: there is no behaviour to learn
    from or score (validation alone accepts it, an optional-looking empty table)."""
    if event_count(con) == 0:
        raise InputError(
            f"{source}: table events has no usable rows (none read, or all quarantined)",
            hint="export the product events (account_id, ts, event) before building features",
        )


def is_transient(exc: BaseException) -> bool:
    """True for failures that may pass on a retry: timeouts and dropped connections.

    Deterministic errors (every `NrrcastError` except `TransientError`, a missing file,
    a permission error, a bad value) give the same result on every try and are not retried.
    """
    from features.errors import NrrcastError, TransientError

    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, NrrcastError):
        return False
    return isinstance(exc, (TimeoutError, ConnectionError)) or (
        isinstance(exc, OSError) and exc.errno in _TRANSIENT_ERRNOS
    )


_TRANSIENT_ERRNOS = {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ETIMEDOUT, errno.ECONNRESET}


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect `retry_condition_fn`: retry a failed task only on a transient error."""
    if isinstance(state.data, BaseException):
        return is_transient(state.data)
    try:
        state.result()
    except BaseException as exc:  # noqa: BLE001 - the failed state re-raises its exception
        return is_transient(exc)
    return False


TRANSIENT_RETRIES: dict[str, Any] = {
    "retries": 2,
    "retry_delay_seconds": [2, 10],
    "retry_condition_fn": retry_transient,
}


load_and_validate = task(
    open_validated, name="load-and-validate", cache_policy=NO_CACHE, **TRANSIENT_RETRIES
)


@task(name="build-features", cache_policy=NO_CACHE)
def build_features(loaded: LoadedSource, as_of_dates: list[date], feature_cfg: Any) -> pd.DataFrame:
    """The point-in-time feature and label table for the given observation dates."""
    from features.build import build_feature_table

    table = build_feature_table(
        loaded.source.con, as_of_dates, feature_cfg, data_end=loaded.data_end, progress=True
    )
    log.info(
        "feature table: %d rows x %d columns over %d dates",
        len(table),
        table.shape[1],
        len(as_of_dates),
    )
    return table


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
    first = first_event_ts(loaded.source.con)
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


@task(name="load-champions", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def load_champions(cfg: Config) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The champion model per target, its version and the run it came from."""
    from flows import tracking  # MLflow loads only for the commands that use it

    tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    models, versions, runs = {}, {}, {}
    for target, name in MODEL_NAMES.items():
        model, version = tracking.load_champion(name)
        models[target], versions[target], runs[target] = model, str(version.version), version.run_id
    return models, versions, runs


def drift_against_training(
    cfg: Config, runs: dict[str, str], table: pd.DataFrame, scores: pd.DataFrame
) -> pd.DataFrame:
    """PSI of each feature and of the scores: training window of the churn champion vs now."""
    import mlflow

    from evaluation.drift import drift_report

    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=runs["churn"], artifact_path="reference/training_window.parquet"
        )
    except Exception as exc:
        score_log.warning("no training reference for drift (%s)", exc)
        return pd.DataFrame()
    reference = pd.read_parquet(path)
    current = table.copy()
    for col in ("p_churn_raw", "p_expand_raw"):
        current[col] = scores[col].to_numpy()
    columns = [c for c in reference.columns if c != "as_of" and c in current.columns]
    return drift_report(reference, current, columns, config=cfg.evaluation.drift)
