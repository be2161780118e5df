"""Is the data newer than what was last scored? Refuse (or warn) to re-score a stale export.

A weekly scoring run that finds the same data's end as the previous run of the same source
is re-scoring an export that was not refreshed: the scores would look new and be old.
Every scoring run tags its MLflow run with the data's end and a key of its source; the
next run compares against the latest finished one. ``scoring.freshness`` (or the flow's
`freshness` parameter, which the scheduled deployment sets to ``refuse``) decides what
happens: ``refuse`` stops before anything is written, ``warn`` logs and goes on, ``off``
skips the look-up.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

from features.errors import InputError, StateError

log = logging.getLogger("nrrcast.score")

FRESHNESS_MODES = ("refuse", "warn", "off")


class StaleDataError(StateError):
    """The data's end has not advanced since the last scoring run of the same source."""


def source_key(source: str | Path) -> str:
    """A short stable key of a source (its resolved path, or its URL without password)."""
    from features.sql_source import is_sql_url, redact

    text = str(source)
    ident = redact(text) if is_sql_url(text) else str(Path(text).expanduser().resolve())
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


def last_scored(mlflow_uri: str, experiment: str, key: str) -> tuple[date, str] | None:
    """The latest data end among finished scoring runs of source `key`, with its run id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.flow = 'score' AND tags.source_key = '{key}' AND attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    ends = [
        (date.fromisoformat(r.data.tags["data_end"]), r.info.run_id)
        for r in runs
        if r.data.tags.get("data_end")
    ]
    return max(ends) if ends else None


def check_freshness(data_end: date, previous: tuple[date, str] | None, mode: str) -> str | None:
    """Apply `mode` to a data end and the previous run's; returns the warning, if any.

    Raises
    ------
    StaleDataError
        With ``mode="refuse"`` when `data_end` is not after the previous run's.
    InputError
        For an unknown mode (a ValueError).
    """
    if mode not in FRESHNESS_MODES:
        raise InputError(f"freshness must be one of {FRESHNESS_MODES}, got {mode!r}")
    if mode == "off" or previous is None or data_end > previous[0]:
        return None
    message = (
        f"the data ends on {data_end}, which is not after the end of the data scored by "
        f"run {previous[1]} ({previous[0]}): the export was not refreshed"
    )
    if mode == "refuse":
        raise StaleDataError(
            message,
            hint="refresh the source, or score anyway with --freshness warn "
            "(scoring.freshness, or the flow's freshness parameter)",
        )
    log.warning("%s; scoring anyway (scoring.freshness: warn)", message)
    return message
