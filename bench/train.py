"""Benchmark: train both models (and both baselines) on ~360,000 rows x ~80 features.

Target: `models.train.train_all` (LightGBM churn + expansion with early stopping and
calibration, logistic and health-score baselines, metrics) in <= 120 s on 2 cores.

Input, in this order: ``--features PATH`` (a feature-table Parquet file or directory);
the cached feature table of the simulator's bench world written by bench/quality.py
(data/bench/models_features_world_20k.parquet); otherwise a synthetic panel generated
here with numpy (20,000 accounts x 18 monthly snapshots x 80 features, no file written).

Prints one JSON object: rows, features, wall and CPU seconds (per stage and target), best
iterations, machine load and the target. On a shared machine the wall time depends on the
load; the CPU time of the process does much less.

Usage::

    .venv/bin/python bench/train.py             # full size
    .venv/bin/python bench/train.py --small     # 2,000 accounts
    .venv/bin/python bench/train.py --features data/bench/some_table.parquet
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    WORLD_FULL,
    cpu_seconds,
    emit,
    feature_columns,
    features_cache,
    load_avg,
    peak_rss_mb,
)
from models.config import ModelConfig  # noqa: E402
from models.train import train_all  # noqa: E402

CACHED = features_cache(WORLD_FULL)
TARGET_SECONDS = 120.0


def synthetic_panel(accounts: int, months: int, n_features: int, seed: int = 0) -> pd.DataFrame:
    """A feature-table-shaped panel: persistent account health, noisy correlated features."""
    rng = np.random.default_rng(seed)
    n = accounts * months
    acct = np.repeat(np.arange(accounts), months)
    month = np.tile(np.arange(months), accounts)
    level = rng.normal(size=accounts)[acct]
    drift = rng.normal(0, 0.05, accounts)[acct] * month
    health = level + drift + rng.normal(0, 0.4, n)
    size = rng.lognormal(9.5, 1.2, accounts)[acct]
    loadings = rng.normal(0, 1, n_features)
    feats = {}
    for j in range(n_features):
        x = loadings[j] * health + rng.normal(0, 1.0 + (j % 5), n)
        if j % 4 == 0:
            x = np.exp(0.3 * x) * size / 1e4  # heavy-tailed money/count-like columns
        if j % 7 == 0:
            x[rng.random(n) < 0.08] = np.nan  # optional enrichment missing
        feats[f"f{j:02d}"] = x.astype(np.float64)
    p_churn = 1 / (1 + np.exp(-(-3.6 - 1.2 * health + 0.5 * (health < -1.5))))
    p_expand = 1 / (1 + np.exp(-(-3.0 + 0.8 * health + 0.4 * np.log(size) - 3.8)))
    y_churn = (rng.random(n) < p_churn).astype(float)
    y_expand = ((rng.random(n) < p_expand) & (y_churn == 0)).astype(float)
    known = month < months - 2
    as_of = pd.date_range("2025-05-01", periods=months, freq="MS").values.astype("datetime64[us]")
    return pd.DataFrame(
        {
            "account_id": np.char.add("A", acct.astype(str)),
            "as_of": as_of[month],
            "coverage": np.array(["digital", "standard", "high_touch"])[
                rng.integers(0, 3, accounts)
            ][acct],
            **feats,
            "label_churn": np.where(known, y_churn, np.nan),
            "label_expand": np.where(known, y_expand, np.nan),
            "label_known": known,
        }
    )


def load_table(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    return frame


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000 accounts (quick run)")
    ap.add_argument("--features", type=Path, help="feature table (Parquet) to train on")
    ap.add_argument("--synthetic", action="store_true", help="ignore cached tables")
    ap.add_argument("--threads", type=int, help="LightGBM num_threads (default: the config's)")
    args = ap.parse_args()

    accounts = 2000 if args.small else 20000
    if args.features:
        frame, source = load_table(args.features), str(args.features)
    elif CACHED.exists() and not args.small and not args.synthetic:
        frame, source = load_table(CACHED), str(CACHED.relative_to(ROOT))
    else:
        frame, source = synthetic_panel(accounts, 18, 80), "synthetic (numpy)"
    names = feature_columns(frame)
    cfg = ModelConfig()
    if args.threads:
        cfg = ModelConfig.model_validate({"lgbm": {"num_threads": args.threads}})

    load_before = load_avg()
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    res = train_all(frame, cfg, names, horizon_days=60)
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    lgbm_seconds = sum(r.seconds["lgbm"] for r in res.targets.values())
    out = {
        "benchmark": "train",
        "source": source,
        "rows": len(frame),
        "features": len(names),
        "rows_per_slice": res.split.rows,
        "seconds_train_all": round(seconds, 2),
        "cpu_seconds_train_all": round(cpu, 2),
        "seconds_lgbm_both_targets": round(lgbm_seconds, 2),
        "seconds_by_target": {
            t: {k: round(v, 2) for k, v in r.seconds.items()} for t, r in res.targets.items()
        },
        "best_iteration": {t: r.model.best_iteration_ for t, r in res.targets.items()},
        "test_roc_auc": {
            t: round(r.metrics["lgbm"]["test"]["roc_auc"], 4) for t, r in res.targets.items()
        },
        "num_threads": cfg.lgbm.num_threads,
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds <= TARGET_SECONDS,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "cpu_count": os.cpu_count(),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }
    emit(out)


if __name__ == "__main__":
    main()
