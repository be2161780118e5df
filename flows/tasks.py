"""Prefect tasks shared by the flows: load and validate a source, build the feature table.

Each task is a thin call into a library; heavy objects (DuckDB connections, frames)
pass between tasks in-process, so caching is off for them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.commands import manifest_data_end

log = logging.getLogger("nrrcast.flows")


@dataclass
class LoadedSource:
    """A validated source: the DuckDB connection with clean relations, and what was found."""

    source: Any
    report: Any
    path: Path
    data_end: date


def open_validated(source: Path, quarantine_dir: Path, now: date | None = None) -> LoadedSource:
    """Open the source, validate it against the contract and stop on contract errors."""
    from features.sources import open_source
    from features.validate import validate

    src = open_source(source)
    data_end = now or src.data_end or manifest_data_end(source)
    if data_end is None:
        raise ValueError(
            f"{source}: no manifest.json with data_end; pass the extraction date explicitly (--now)"
        )
    report = validate(src, now=data_end, quarantine_dir=quarantine_dir)
    log.info("validation of %s:\n%s", source, report.summary())
    report.raise_if_failed()
    return LoadedSource(
        source=src, report=report, path=Path(source), data_end=report.data_end or data_end
    )


load_and_validate = task(
    open_validated,
    name="load-and-validate",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
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
