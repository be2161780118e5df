"""Benchmark: exact reason codes for 1,000,000 accounts with the production-size models.

Target: SHAP values for 1,000,000 accounts with the trained production model in <= 120 s
on 2 cores, agreeing with the shap package's TreeExplainer to 1e-9, and >= 3x faster than
it (shap's TreeExplainer on LightGBM calls LightGBM's own ``pred_contrib``; its time is
measured on a sample of the same rows and scaled up). The full reason codes (top-3 up and
down drivers of both targets with values and sentences, plus the ``reasons_json`` column)
are timed too.

Models: `models.train.train_all` with the default configuration (production LightGBM
parameters, early stopping) on, in this order: ``--features PATH``; the cached feature
table of the 20k-account bench world (data/bench/models_features_world_20k.parquet,
written by bench/quality.py); otherwise a synthetic panel (20,000 accounts x 18 months x
80 features, numpy). The 1,000,000 scored accounts are rows of that table drawn with
replacement (seeded). Trained boosters are cached under data/bench/explain_models/; for
the 20k world the models bench/coverage.py trained (same recipe) are reused when present.

Usage::

    .venv/bin/python bench/explain.py             # 1,000,000 accounts
    .venv/bin/python bench/explain.py --small     # 50,000 accounts, synthetic 2,000 x 18
    .venv/bin/python bench/explain.py --features data/bench/some_table.parquet --retrain
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import lightgbm as lgb  # noqa: E402

from bench.common import (  # noqa: E402
    BENCH,
    WORLD_FULL,
    emit,
    feature_columns,
    features_cache,
    load_avg,
    logger,
    timed,
)
from models.config import ModelConfig  # noqa: E402
from models.explain import explain  # noqa: E402
from models.treeshap import compile_lightgbm, tree_shap  # noqa: E402

CACHED_20K = features_cache(WORLD_FULL)
MODEL_DIR = BENCH / "explain_models"
TARGETS = {"seconds_max": 120.0, "speedup_min": 3.0, "max_abs_diff_vs_shap": 1e-9}
_log = logger("explain-bench")


def synthetic_panel(accounts: int, months: int, n_features: int, seed: int = 0) -> pd.DataFrame:
    """A feature-table-shaped panel: persistent account health, noisy correlated features."""
    rng = np.random.default_rng(seed)
    n = accounts * months
    acct = np.repeat(np.arange(accounts), months)
    month = np.tile(np.arange(months), accounts)
    health = rng.normal(size=accounts)[acct] + rng.normal(0, 0.05, accounts)[acct] * month
    health = health + rng.normal(0, 0.4, n)
    size = rng.lognormal(9.5, 1.2, accounts)[acct]
    loadings = rng.normal(0, 1, n_features)
    feats = {}
    for j in range(n_features):
        x = loadings[j] * health + rng.normal(0, 1.0 + (j % 5), n)
        if j % 4 == 0:
            x = np.round(np.exp(0.3 * x) * size / 1e4)  # heavy-tailed counts
        if j % 7 == 0:
            x[rng.random(n) < 0.08] = np.nan  # enrichment missing
        feats[f"f{j:02d}"] = x
    p_churn = 1 / (1 + np.exp(3.6 + 1.2 * health - 0.5 * (health < -1.5)))
    p_expand = 1 / (1 + np.exp(6.8 - 0.8 * health - 0.4 * np.log(size)))
    y_churn = (rng.random(n) < p_churn).astype(float)
    y_expand = ((rng.random(n) < p_expand) & (y_churn == 0)).astype(float)
    known = month < months - 2
    as_of = pd.date_range("2025-05-01", periods=months, freq="MS").values.astype("datetime64[us]")
    return pd.DataFrame(
        {
            "account_id": pd.Series(acct).astype(str).radd("A").to_numpy(),
            "as_of": as_of[month],
            "coverage": np.array(["digital", "standard", "high_touch"])[acct % 3],
            "maturity_stage": np.array(["Experimenter", "Builder", "Transformer"])[acct % 3],
            **feats,
            "label_churn": np.where(known, y_churn, np.nan),
            "label_expand": np.where(known, y_expand, np.nan),
            "label_known": known,
        }
    )


def load_source(args: argparse.Namespace) -> tuple[pd.DataFrame, str]:
    if args.features:
        return pd.read_parquet(args.features), str(args.features)
    if CACHED_20K.exists() and not args.small and not args.synthetic:
        return pd.read_parquet(CACHED_20K), str(CACHED_20K.relative_to(ROOT))
    accounts = 2000 if args.small else 20000
    return synthetic_panel(accounts, 18, 80), f"synthetic ({accounts} accounts x 18 months x 80)"


def trained_boosters(
    frame: pd.DataFrame, names: list[str], source: str, retrain: bool
) -> tuple[dict[str, lgb.Booster], dict]:
    """Both production models, trained with train_all once per source and cached as text."""
    key = hashlib.sha1(f"{source}|{len(frame)}|{','.join(names)}".encode()).hexdigest()[:10]
    folder = MODEL_DIR / key
    files = {t: folder / f"{t}.txt" for t in ("churn", "expand")}
    meta_file = folder / "meta.json"
    if not retrain and all(f.exists() for f in files.values()) and meta_file.exists():
        _log(f"using cached models in {folder.relative_to(ROOT)}")
        meta = json.loads(meta_file.read_text())
        return {t: lgb.Booster(model_file=str(f)) for t, f in files.items()}, meta
    shared = BENCH / "coverage_models_world_20k.pkl"  # the same train_all, from bench/coverage.py
    if (
        not retrain
        and source == str(CACHED_20K.relative_to(ROOT))
        and shared.exists()
        and shared.stat().st_mtime >= CACHED_20K.stat().st_mtime
    ):
        _log(f"using the models bench/coverage.py trained ({shared.relative_to(ROOT)})")
        res = pickle.loads(shared.read_bytes())
        return {t: m.booster_ for t, m in res.models.items()}, _meta(res, None)
    from models.train import train_all

    frame = frame.copy()
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
    _log(f"training both models on {len(frame):,} rows x {len(names)} features (train_all)")
    t0 = time.perf_counter()
    res = train_all(frame, ModelConfig(), names, horizon_days=60)
    meta = _meta(res, time.perf_counter() - t0)
    folder.mkdir(parents=True, exist_ok=True)
    for t, model in res.models.items():
        model.booster_.save_model(str(files[t]))
    meta_file.write_text(json.dumps(meta))
    return {t: lgb.Booster(model_file=str(files[t])) for t in files}, meta


def _meta(res, seconds: float | None) -> dict:
    return {
        "train_seconds": None if seconds is None else round(seconds, 1),
        "test_roc_auc": {
            t: round(float(r.metrics["lgbm"]["test"]["roc_auc"]), 4) for t, r in res.targets.items()
        },
        "best_iteration": {t: r.params["best_iteration"] for t, r in res.targets.items()},
    }


def model_size(booster: lgb.Booster) -> dict:
    c = compile_lightgbm(booster)
    depth = c.arrays["leaf_d"]
    return {
        "trees": c.n_trees,
        "leaves": c.n_leaves,
        "mean_distinct_features_per_path": round(float(depth.mean()), 2),
        "max_distinct_features_per_path": int(depth.max()),
    }


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="50,000 accounts, small synthetic model")
    ap.add_argument("--features", type=Path, help="feature table (Parquet) to train on")
    ap.add_argument("--synthetic", action="store_true", help="ignore cached feature tables")
    ap.add_argument("--retrain", action="store_true", help="ignore cached models")
    ap.add_argument("--rows", type=int, help="accounts to explain (default 1,000,000)")
    ap.add_argument("--shap-sample", type=int, default=None, help="rows timed with shap")
    ap.add_argument("--threads", type=int, default=2)
    return ap.parse_args()


def _accounts(frame: pd.DataFrame, names: list[str], rows: int) -> tuple[np.ndarray, pd.DataFrame]:
    """`rows` accounts drawn (seeded) from the table: the feature matrix and the frame."""
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(frame), rows)
    X = np.ascontiguousarray(frame[names].to_numpy(dtype=np.float64, na_value=np.nan)[pick])
    accounts = pd.DataFrame(X, columns=names, copy=False)
    accounts.insert(0, "account_id", pd.Series(np.arange(rows)).astype(str).radd("B"))
    return X, accounts


def _shap_reference(churn: lgb.Booster, fast: np.ndarray, X: np.ndarray, rows: int, n: int) -> dict:
    """shap's TreeExplainer (LightGBM's pred_contrib) on the first `n` rows: time, agreement."""
    import shap

    sample = X[:n]
    t0 = time.perf_counter()
    explainer = shap.TreeExplainer(churn)
    init_seconds = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs, shap_seconds, shap_cpu = timed(lambda: np.asarray(explainer.shap_values(sample)))
    theirs = theirs[1] if theirs.ndim == 3 else theirs
    raw = churn.predict(sample, raw_score=True)
    _log(f"shap TreeExplainer: {shap_seconds:.1f} s for {n:,} rows")
    return {
        "sample_rows": n,
        "seconds_init": init_seconds,
        "seconds_sample": shap_seconds,
        "cpu_seconds_sample": shap_cpu,
        "seconds_scaled": init_seconds + shap_seconds * rows / n,
        "max_diff": float(np.abs(fast[:n, :-1] - theirs).max()),
        "additivity": float(np.abs(fast[:n].sum(axis=1) - raw).max()),
    }


def main() -> None:
    args = _args()
    rows = args.rows or (50_000 if args.small else 1_000_000)
    shap_sample = args.shap_sample or (2_000 if args.small else 10_000)

    frame, source = load_source(args)
    names = feature_columns(frame)
    boosters, meta = trained_boosters(frame, names, source, args.retrain)
    X, accounts = _accounts(frame, names, rows)
    del frame

    churn = boosters["churn"]
    compiled = compile_lightgbm(churn)
    tree_shap(compiled, X[:1000], n_threads=args.threads)  # load / compile numba kernels

    load_before = load_avg()
    fast, fast_seconds, fast_cpu = timed(lambda: tree_shap(compiled, X, n_threads=args.threads))
    _log(f"fast TreeSHAP, churn, {rows:,} rows: {fast_seconds:.1f} s")
    ref = _shap_reference(churn, fast, X, rows, shap_sample)
    shap_scaled, max_diff = ref["seconds_scaled"], ref["max_diff"]
    del fast

    # full reason codes: both targets, top-3 up/down, values, sentences, reasons_json
    codes, explain_seconds, explain_cpu = timed(
        lambda: explain(boosters, accounts, top_k=3, n_threads=args.threads)
    )
    rj, json_seconds, json_cpu = timed(codes.reasons_json)
    load_after = load_avg()
    _log(f"reason codes both targets: {explain_seconds:.1f} s; reasons_json {json_seconds:.1f} s")

    out = {
        "benchmark": "explain",
        "model_source": source,
        "features": len(names),
        "models": {t: model_size(b) for t, b in boosters.items()},
        "model_training": meta,
        "rows": rows,
        "threads": args.threads,
        "seconds_shap_values_churn_model": round(fast_seconds, 2),
        "cpu_seconds_shap_values_churn_model": round(fast_cpu, 2),
        "rows_per_second": round(rows / fast_seconds),
        "shap_treeexplainer": {
            "sample_rows": shap_sample,
            "seconds_init": round(ref["seconds_init"], 2),
            "seconds_sample": round(ref["seconds_sample"], 2),
            "cpu_seconds_sample": round(ref["cpu_seconds_sample"], 2),
            "seconds_scaled_to_rows": round(shap_scaled, 1),
        },
        "speedup_vs_shap": round(shap_scaled / fast_seconds, 1),
        "cpu_speedup_vs_shap": round(ref["cpu_seconds_sample"] * rows / shap_sample / fast_cpu, 1),
        "max_abs_diff_vs_shap": max_diff,
        "max_abs_additivity_error": ref["additivity"],
        "seconds_reason_codes_both_targets": round(explain_seconds, 2),
        "cpu_seconds_reason_codes_both_targets": round(explain_cpu, 2),
        "seconds_reasons_json": round(json_seconds, 2),
        "cpu_seconds_reasons_json": round(json_cpu, 2),
        "note": "wall seconds depend on the machine's load (see machine); cpu_seconds count "
        "this process's CPU time over all its threads (about 2x wall on 2 idle cores)",
        "reason_rows": len(codes.frame),
        "reasons_json_example": rj.iloc[0][:300],
        "targets": TARGETS,
        "meets": {
            "seconds": fast_seconds <= TARGETS["seconds_max"],
            "seconds_full_reason_codes": explain_seconds + json_seconds <= TARGETS["seconds_max"],
            "speedup": shap_scaled / fast_seconds >= TARGETS["speedup_min"],
            "agreement": max_diff <= TARGETS["max_abs_diff_vs_shap"],
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_before": load_before,
            "load_after": load_after,
        },
    }
    emit(out)


if __name__ == "__main__":
    main()
