"""What every benchmark shares: paths, the bench worlds and their feature tables, CPU time,
machine load, progress lines and the JSON print.

Imported by the bench scripts as ``bench.common`` (each script puts the repository root
first on ``sys.path``); not a benchmark itself.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "data" / "bench"
WORLD_FULL = BENCH / "world_20k"
"""The 20,000-account world written by bench/simulate.py."""
WORLD_SMALL = BENCH / "models_world_2k"
"""The 2,000-account world of the ``--small`` runs, simulated on first use."""


def logger(tag: str) -> Callable[[str], None]:
    """A function printing ``[tag] message`` progress lines to stderr (stdout is the JSON)."""

    def log(msg: str) -> None:
        print(f"[{tag}] {msg}", file=sys.stderr, flush=True)

    return log


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads): less sensitive to load."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def load_avg() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages, rounded."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """CPU count and load average, for the ``machine`` block of a result."""
    return {"cpu_count": os.cpu_count(), "load": load_avg()}


def emit(result: dict[str, Any], *, indent: int = 2) -> None:
    """Print a benchmark's result (figures, targets, baseline, machine) as one JSON object."""
    print(json.dumps(result, indent=indent, default=str))


def ensure_world(path: Path, accounts: int, log: Callable[[str], None] | None = None) -> Path:
    """The world at `path`; the small one is simulated there (default settings) when missing.

    Any other missing world stops the benchmark: the full one is bench/simulate.py's output.
    """
    if (path / "manifest.json").exists():
        return path
    if path != WORLD_SMALL:
        raise SystemExit(f"{path} does not exist yet: run bench/simulate.py first")
    from simulator.config import SimConfig
    from simulator.world import simulate

    if log:
        log(f"simulating {accounts} accounts into {path}")
    simulate(SimConfig(accounts=accounts), path, progress=False)
    return path


def features_cache(world: Path) -> Path:
    """Where the feature table of a bench world is cached (shared by the model benchmarks)."""
    return BENCH / f"models_features_{world.name}.parquet"


def feature_table(
    world: Path,
    cache: Path | None = None,
    cfg: Any = None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Feature table of every month start of a world, validated first, cached as Parquet.

    The cache (default `features_cache`) is used while it is newer than the world's
    manifest. `cfg` is a `features.config.FeatureConfig` (default settings when None).
    """
    cache = cache or features_cache(world)
    manifest_path = world / "manifest.json"
    if cache.exists() and cache.stat().st_mtime >= manifest_path.stat().st_mtime:
        if log:
            log(f"using cached feature table {cache}")
        return pd.read_parquet(cache)
    from features.build import build_feature_table
    from features.config import FeatureConfig
    from features.data_end import manifest_data_end, read_manifest
    from features.snapshots import observation_dates
    from features.sources import open_source
    from features.validate import validate

    manifest = read_manifest(manifest_path)
    data_end = manifest_data_end(manifest, manifest_path)
    start = date.fromisoformat(manifest["start"])
    t0 = time.perf_counter()
    src = open_source(world)
    with tempfile.TemporaryDirectory() as q:
        validate(src, now=data_end, quarantine_dir=Path(q)).raise_if_failed()
    dates = observation_dates(start, data_end - timedelta(days=1), "monthly")
    table = build_feature_table(
        src.con, dates, cfg or FeatureConfig(), data_end=data_end, progress=False
    )
    src.close()
    if log:
        log(
            f"feature table {table.shape} over {len(dates)} dates in {time.perf_counter() - t0:.0f} s"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    table.to_parquet(tmp, index=False)
    tmp.replace(cache)
    return table


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and this process's CPU seconds over it."""
    t0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - t0, cpu_seconds() - c0


NON_FEATURES = {
    "account_id", "as_of", "csm_id", "coverage", "industry", "region", "maturity_stage",
    "arr_h", "label_churn", "label_expand", "label_contract", "label_known",
}  # fmt: skip
"""Columns of a feature table that are never model features."""


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The catalogue's features when the table has them, else every numeric non-id column."""
    from features.catalog import feature_names

    names = [c for c in feature_names() if c in frame.columns]
    if names:
        return names
    return [
        c
        for c in frame.columns
        if c not in NON_FEATURES and pd.api.types.is_numeric_dtype(frame[c])
    ]
