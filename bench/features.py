"""Benchmark: the point-in-time feature and label table of a 20,000-account book.

Targets: 20,000 accounts, ~100 million events, 18 monthly snapshots -> the full feature
and label table in <= 60 s wall on 2 cores with peak memory <= 6 GB; and at least 10x
faster per event than the same event features written plainly in pandas (baseline in
bench/baselines/features_pandas.py), run on a ~10-million-event sample.

The book is the simulator's benchmark world (data/bench/world_20k) when present, else the
validation benchmark's synthetic world (data/bench/validate_synth), else a world
simulated here. It is opened with features.sources.open_source and validated with
features.validate.validate (timed separately), or read through plain DuckDB views when
those modules are missing.

Prints one JSON object: figures, targets, pass/fail, machine load and CPU seconds (the
machine is shared: CPU seconds show the work done when the wall clock is inflated).

Usage::

    .venv/bin/python bench/features.py                 # full size
    .venv/bin/python bench/features.py --small         # 1,000 simulated accounts x 6 months
    .venv/bin/python bench/features.py --source PATH   # any contract source directory
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
# this file is named like the `features` package: keep bench/ off the import path
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))


def _load_baseline():
    spec = importlib.util.spec_from_file_location(
        "bench_features_pandas", ROOT / "bench" / "baselines" / "features_pandas.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_baseline = _load_baseline()
BASELINE_FEATURES, pandas_features = _baseline.FEATURES, _baseline.pandas_features

from bench.common import (  # noqa: E402
    BENCH,
    WORLD_FULL,
    cpu_seconds,
    emit,
    load_avg,
    peak_rss_mb,
    timed,
)
from features.build import build_feature_table  # noqa: E402
from features.config import FeatureConfig  # noqa: E402
from features.snapshots import add_months, observation_dates  # noqa: E402
from features.sql_quote import quote_ident, quote_literal, set_statement  # noqa: E402
from features.sqlrun import SqlRunner  # noqa: E402

WORLDS = [WORLD_FULL, BENCH / "validate_synth"]
TARGETS = {"wall_seconds_max": 60.0, "peak_rss_mb_max": 6144.0, "speedup_per_event_min": 10.0}
TABLES = ("accounts", "subscriptions", "users", "tickets", "plans")


def _connect(threads: int, memory: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(set_statement("threads", int(threads)))
    con.execute(set_statement("memory_limit", memory))
    con.execute("SET enable_progress_bar = false")
    return con


def _open(path: Path, threads: int, memory: str) -> tuple[duckdb.DuckDBPyConnection, date, dict]:
    """A connection with the clean relations, the data_end, and how they were made.

    Validated with features.validate when it is importable and works; a validation
    failure is recorded in the JSON and the figures use plain views instead.
    """
    from features.data_end import manifest_data_end, read_manifest

    data_end = manifest_data_end(read_manifest(path / "manifest.json"), path / "manifest.json")
    info: dict = {"source": str(path)}
    try:
        from features.sources import open_source
        from features.validate import validate
    except ImportError as exc:
        info["validate_error"] = f"not importable: {exc}"
    else:
        con = _connect(threads, memory)
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            src = open_source(path, con=con)
            report = validate(src, now=data_end, quarantine_dir=None)
            report.raise_if_failed()
        except Exception as exc:  # a validation failure must not hide the feature figures
            info["validate_error"] = f"{type(exc).__name__}: {exc}"[:300]
            con.close()
        else:
            info.update(
                opened_with="features.sources.open_source + features.validate.validate",
                validate_seconds=round(time.perf_counter() - t0, 2),
                validate_cpu_seconds=round(cpu_seconds() - c0, 2),
            )
            return con, data_end, info
    con = _connect(threads, memory)
    for t in TABLES:
        parquet = quote_literal(f"{path / t}.parquet")
        con.execute(f"CREATE VIEW {quote_ident(t)} AS SELECT * FROM read_parquet({parquet})")
    parts = quote_literal(f"{path}/events/*.parquet")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet({parts})")
    info["opened_with"] = "plain DuckDB views over the Parquet files"
    return con, data_end, info


def _dates(con: duckdb.DuckDBPyConnection, data_end: date, snapshots: int) -> list[date]:
    start = add_months(data_end.replace(day=1), -(snapshots - 1))
    return observation_dates(start, data_end)


def _sample(con: duckdb.DuckDBPyConnection, events_target: int, seed: int) -> tuple[list[str], int]:
    """Accounts (a random subset) whose events add up to about `events_target`."""
    per = con.execute("SELECT account_id, COUNT(*) FROM events GROUP BY account_id").df()
    per = per.sample(frac=1.0, random_state=seed)
    keep = per[per.iloc[:, 1].cumsum() <= events_target]
    return keep["account_id"].astype(str).tolist(), int(keep.iloc[:, 1].sum())


def _sample_connection(
    con: duckdb.DuckDBPyConnection, accounts: list[str], threads: int, memory: str
):
    """A new connection holding only the sampled accounts (tables in memory)."""
    sub = duckdb.connect()
    sub.execute(set_statement("threads", int(threads)))
    sub.execute(set_statement("memory_limit", memory))
    ids = pd.DataFrame({"account_id": accounts})
    frames = {}
    con.register("_bench_ids", ids)
    for t in (*TABLES, "events"):
        if t == "plans":
            frames[t] = con.execute("SELECT * FROM plans").df()
        else:
            frames[t] = con.execute(
                f"SELECT x.* FROM {t} AS x JOIN _bench_ids USING (account_id)"
            ).df()
    con.unregister("_bench_ids")
    for t, df in frames.items():
        sub.register("_frame", df)
        sub.execute(f"CREATE TABLE {t} AS SELECT * FROM _frame")
        sub.unregister("_frame")
    return sub, frames


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="1,000 simulated accounts x 6 months")
    parser.add_argument(
        "--source", type=Path, help="a contract source directory with manifest.json"
    )
    parser.add_argument("--snapshots", type=int, default=18)
    parser.add_argument("--sample-events", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-limit", default="5GB")
    parser.add_argument("--scan-chunk-months", type=int, default=3)
    parser.add_argument("--no-baseline", action="store_true")
    return parser.parse_args()


def _world(args: argparse.Namespace) -> tuple[Path, Any, int, int]:
    """(world directory, its temporary directory or None, snapshots, events to sample)."""
    from simulator import SimConfig, simulate

    if args.small:
        tmp = tempfile.TemporaryDirectory(prefix="nrr_bench_features_")
        path = Path(tmp.name) / "world"
        simulate(SimConfig(accounts=1000, months=6, seed=7), path, progress=False)
        return path, tmp, min(args.snapshots, 6), min(args.sample_events, 500_000)
    path = args.source or next((w for w in WORLDS if (w / "manifest.json").exists()), None)
    if path is None:
        path = BENCH / "features_world"
        simulate(SimConfig(accounts=20_000, months=18, seed=7), path, progress=False)
    return path, None, args.snapshots, args.sample_events


def _baseline(
    con: duckdb.DuckDBPyConnection,
    dates: list[date],
    cfg: FeatureConfig,
    data_end: date,
    args: argparse.Namespace,
    sample_events: int,
    full: dict[str, float],
) -> dict:
    """The event features in plain pandas against ours, on the same sample of accounts.

    `full` holds the whole world's ``wall``, ``cpu`` seconds and ``events``.
    """
    accounts, s_events = _sample(con, sample_events, seed=7)
    sub, frames = _sample_connection(con, accounts, args.threads, args.memory_limit)
    ours, ours_s, ours_cpu = timed(
        lambda: build_feature_table(sub, dates, cfg, data_end=data_end, progress=False)
    )
    base, pandas_s, pandas_cpu = timed(
        lambda: pandas_features(frames["events"], frames["users"], dates)
    )
    both = ours.merge(base, on=["account_id", "as_of"], suffixes=("", "_pd"))
    diffs = {
        f: float(np.nanmax(np.abs(both[f].to_numpy() - both[f + "_pd"].to_numpy()), initial=0.0))
        for f in BASELINE_FEATURES
    }
    wall, cpu, n_events = full["wall"], full["cpu"], full["events"]
    return {
        "what": "event-derived features (activity, breadth, depth, power users, champions, "
        "admins, AI share, agents, usage) in plain pandas, one as_of at a time",
        "sample_accounts": len(accounts),
        "sample_events": s_events,
        "pandas_seconds": round(pandas_s, 2),
        "pandas_cpu_seconds": round(pandas_cpu, 2),
        "duckdb_seconds_same_sample_all_features": round(ours_s, 2),
        "duckdb_cpu_seconds_same_sample": round(ours_cpu, 2),
        "pandas_us_per_event": round(pandas_s / s_events * 1e6, 3),
        "duckdb_us_per_event_full_world": round(wall / n_events * 1e6, 3),
        "speedup_per_event": round((pandas_s / s_events) / (wall / n_events), 1),
        "speedup_per_event_cpu": round((pandas_cpu / s_events) / (cpu / n_events), 1),
        "speedup_same_sample": round(pandas_s / ours_s, 1),
        "rows_compared": int(len(both)),
        "max_abs_difference": max(diffs.values()) if diffs else None,
    }


def main() -> dict:
    args = _args()
    load_before = load_avg()
    path, tmp, snapshots, sample_events = _world(args)

    con, data_end, info = _open(path, args.threads, args.memory_limit)
    dates = _dates(con, data_end, snapshots)
    n_events = con.execute("SELECT COUNT(*) FROM events").fetchall()[0][0]
    n_accounts = con.execute("SELECT COUNT(*) FROM accounts").fetchall()[0][0]
    # the simulated events are stored month by month, so a scan of 3 months at a time
    # reads each file once and keeps the hash tables small
    cfg = FeatureConfig(
        duckdb_threads=args.threads,
        duckdb_memory_limit=args.memory_limit,
        scan_chunk_months=args.scan_chunk_months,
    )

    run = SqlRunner(con)
    table, wall, cpu = timed(
        lambda: build_feature_table(con, dates, cfg, data_end=data_end, progress=False, runner=run)
    )
    peak = peak_rss_mb()
    result: dict = {
        "benchmark": "features",
        "world": info,
        "accounts": int(n_accounts),
        "events": int(n_events),
        "as_of_dates": len(dates),
        "first_as_of": dates[0].isoformat(),
        "last_as_of": dates[-1].isoformat(),
        "features": {
            "wall_seconds": round(wall, 2),
            "cpu_seconds": round(cpu, 2),
            "peak_rss_mb": round(peak, 1),
            "rows": int(len(table)),
            "columns": int(table.shape[1]),
            "labelled_rows": int(table["label_known"].sum()),
            "events_per_second": round(n_events / wall),
            "left_out": table.attrs.get("left_out", {}),
            "steps_wall_seconds": {k: round(v, 2) for k, v in run.timings.items() if v >= 0.05},
            "steps_cpu_seconds": {k: round(v, 2) for k, v in run.cpu.items() if v >= 0.05},
        },
        "targets": TARGETS,
    }
    if not args.no_baseline:
        full = {"wall": wall, "cpu": cpu, "events": n_events}
        result["baseline"] = _baseline(con, dates, cfg, data_end, args, sample_events, full)
    result["pass"] = {
        "wall_seconds": wall <= TARGETS["wall_seconds_max"],
        "peak_rss_mb": peak <= TARGETS["peak_rss_mb_max"],
    }
    if "baseline" in result:
        result["pass"]["speedup_per_event"] = (
            result["baseline"]["speedup_per_event"] >= TARGETS["speedup_per_event_min"]
        )
    result["machine"] = {
        "cores": os.cpu_count(),
        "duckdb_threads": args.threads,
        "duckdb_memory_limit": args.memory_limit,
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }
    if tmp is not None:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    emit(main())
