"""Benchmark: rolling-origin backtest by quarter on the simulated bench world.

For each of the last ``--quarters`` (default 4) quarters whose snapshots have matured:
retrain (``models.train.train_all``) on what was known at the quarter start, recalibrate
and choose thresholds on the latest matured slice (``evaluation.thresholds``), score the
quarter and judge it; forecast the quarter's NRR from the scores at its first snapshot
and compare with the NRR computed from the subscriptions table.

Targets: at least 4 quarters; ECE after quarterly recalibration <= 0.02 in every quarter
(LightGBM, both targets). Reported beside them: the NRR forecast's absolute error per
quarter (points), the baselines' metrics, drift of the latest snapshot, machine load.

Input, in this order: ``--source PATH`` (a contract-v1 world directory); the simulator's
bench world ``data/bench/world_20k``; with ``--small`` the 2,000-account world of
bench/quality.py (``data/bench/models_world_2k``, simulated when missing). The feature
table is built with ``features.build.build_feature_table`` and cached as
``data/bench/models_features_<world>.parquet`` (the cache bench/quality.py uses);
``--features PATH`` skips the build.

Usage::

    .venv/bin/python bench/backtest.py            # full size (world_20k)
    .venv/bin/python bench/backtest.py --small    # 2,000 accounts
    .venv/bin/python bench/backtest.py --small --compare-refit

``--compare-refit`` runs the backtest twice, with ``models.refit_on_valid`` false (the
booster early-stopped on the valid dates) and true (then refitted on train + valid for
the best number of rounds), and prints LightGBM's per-quarter ROC-AUC, PR-AUC and ECE
side by side: on small books (few positives in the two valid dates) the choice of
default comes from these figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    WORLD_FULL,
    WORLD_SMALL,
    emit,
    ensure_world,
    feature_table,
    load_avg,
    peak_rss_mb,
)
from evaluation.backtest import models_trainer, rolling_backtest  # noqa: E402
from evaluation.drift import drift_between  # noqa: E402
from evaluation.nrr import nrr_alerts, nrr_table  # noqa: E402
from evaluation.thresholds import quarter_bounds, quarter_label  # noqa: E402
from flows.config import load_config  # noqa: E402

TARGET_ECE = 0.02
TARGET_QUARTERS = 4
WARM_UP_DAYS = 90  # the longest feature window


def _world(args: argparse.Namespace) -> Path:
    if args.source:
        return args.source
    return ensure_world(WORLD_SMALL if args.small else WORLD_FULL, 2000)


def _features(world: Path, args: argparse.Namespace, cfg: Any) -> pd.DataFrame:
    """Feature table of every month start of ``world`` (the cache bench/quality.py uses)."""
    return pd.read_parquet(args.features) if args.features else feature_table(world, cfg=cfg)


def _quarters(panel: pd.DataFrame, n: int) -> list[str]:
    """The last ``n`` quarters whose every snapshot has a known label."""
    as_of = pd.to_datetime(panel["as_of"])
    known = panel.groupby(as_of)["label_known"].all()
    q = pd.Series(known.index.map(quarter_label), index=known.index)
    full = known.groupby(q.to_numpy()).all()
    # a quarter counts only if it is complete (three monthly snapshots or more)
    counts = q.value_counts()
    full = full[full & (counts.reindex(full.index) >= 3)]
    return sorted(full.index)[-n:]


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000 accounts (quick run)")
    ap.add_argument("--source", type=Path, help="contract-v1 world directory")
    ap.add_argument("--features", type=Path, help="feature table (Parquet) to use as is")
    ap.add_argument("--quarters", type=int, default=TARGET_QUARTERS)
    ap.add_argument(
        "--purged-only",
        action="store_true",
        help="never fall back to an unpurged split (fewer quarters on a short history)",
    )
    ap.add_argument(
        "--compare-refit",
        action="store_true",
        help="compare models.refit_on_valid false vs true (LightGBM per quarter)",
    )
    return ap.parse_args()


def _world_name(world: Path) -> str:
    return str(world.relative_to(ROOT) if world.is_relative_to(ROOT) else world)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(frame.round(4).to_json(orient="records"))


def _splits_block(result: Any) -> dict[str, Any]:
    """Each quarter's split: kind and dates of the train, valid, calib and test slices."""
    return {
        q: {
            "kind": sp.get("kind"),
            "train": f"{sp['train_dates'][0]}..{sp['train_dates'][-1]} ({len(sp['train_dates'])})",
            "valid": sp["valid_dates"],
            "calib": sp["calib_dates"],
            "test": sp["test_dates"],
        }
        for q, sp in result.splits.items()
    }


def _thresholds_block(result: Any) -> dict[str, Any]:
    """Each quarter's and model's alert thresholds and their status."""
    return {
        q: {
            m: {
                "churn": round(v["churn_threshold"], 4),
                "expand": round(v["expand_threshold"], 4),
                "churn_status": v["churn"]["status"],
                "expand_status": v["expand"]["status"],
                "n_csms": v["window"]["n_csms"],
            }
            for m, v in by_model.items()
        }
        for q, by_model in result.thresholds.items()
    }


def _nrr_block(nrr: pd.DataFrame | None) -> dict[str, Any]:
    """The NRR forecast per quarter against the actual NRR, and its mean absolute error."""
    return {
        "nrr_forecast": []
        if nrr is None
        else [
            {
                "quarter": r.period,
                "forecast": round(float(r.nrr_forecast), 4),
                "actual": round(float(r.nrr_actual), 4),
                "abs_error_points": round(float(r.nrr_abs_error_points), 2),
                "history": r.history,
            }
            for r in nrr.itertuples()
        ],
        "nrr_mean_abs_error_points": None
        if nrr is None
        else round(float(nrr["nrr_abs_error_points"].mean()), 2),
    }


def _drift_block(
    panel: pd.DataFrame,
    result: Any,
    quarters: list[str],
    manifest: dict,
    names: list[str],
    cfg: Any,
) -> dict[str, Any]:
    """Drift of the latest snapshot against the last model's training window.

    The window runs from the train to the calib dates, without the warm-up snapshots whose
    90-day windows reach before the data starts.
    """
    as_of = pd.to_datetime(panel["as_of"])
    last_split = result.splits.get(quarters[-1], {})
    warm = pd.Timestamp(manifest["start"]) + pd.Timedelta(days=WARM_UP_DAYS)
    ref_lo = max(pd.Timestamp(last_split.get("train_dates", [as_of.min()])[0]), warm)
    ref_hi = pd.Timestamp(last_split.get("calib_dates", [as_of.max()])[-1])
    drift = drift_between(
        panel,
        reference_as_of=(ref_lo, ref_hi),
        current_as_of=as_of.max(),
        columns=names,
        config=cfg.evaluation.drift,
    )
    return {
        "reference": f"{ref_lo.date()}..{ref_hi.date()}",
        "current": str(as_of.max().date()),
        "watch": int((drift["status"] == "watch").sum()),
        "alert": int((drift["status"] == "alert").sum()),
        "top": _records(drift.head(5)[["column", "psi", "status"]]),
    }


def main() -> None:
    args = _args()
    if args.compare_refit:
        compare_refit(args)
        return

    load_before = load_avg()
    t0 = time.perf_counter()
    cfg = load_config()
    horizon = cfg.features.horizon_days
    world = _world(args)
    t_feat = time.perf_counter()
    panel = _features(world, args, cfg.features)
    feature_seconds = time.perf_counter() - t_feat
    from features.catalog import feature_names

    names = [c for c in feature_names() if c in panel.columns]
    from features.data_end import manifest_data_end, read_manifest

    manifest = read_manifest(world / "manifest.json")
    data_end = pd.Timestamp(manifest_data_end(manifest, world / "manifest.json"))
    quarters = _quarters(panel, args.quarters)

    subs = pd.read_parquet(world / "subscriptions.parquet")
    accounts = pd.read_parquet(world / "accounts.parquet")
    history_start = quarter_bounds(quarter_label(pd.to_datetime(panel["as_of"]).min()))[0]
    actuals = nrr_table(subs, start=history_start, end=data_end, freq="Q")

    t_bt = time.perf_counter()
    result = rolling_backtest(
        panel,
        quarters,
        models_trainer(
            cfg.models, names, horizon_days=horizon, allow_unpurged=not args.purged_only
        ),
        horizon_days=horizon,
        config=cfg.evaluation,
        actuals=actuals,
    )
    backtest_seconds = time.perf_counter() - t_bt

    table = result.table
    lgbm = table[table["model"] == "lgbm"]
    ece = {
        q: {t: round(float(v), 4) for t, v in zip(g["target"], g["ece"], strict=True)}
        for q, g in lgbm.groupby("quarter")
    }
    by_coverage = nrr_table(
        subs, start=history_start, end=data_end, freq="Q", accounts=accounts, by="coverage"
    )
    by_coverage = by_coverage[by_coverage["period"] == quarters[-1]]
    out = {
        "world": _world_name(world),
        "accounts": int(panel["account_id"].nunique()),
        "panel_rows": len(panel),
        "features": len(names),
        "quarters": quarters,
        "targets": {
            "quarters_min": TARGET_QUARTERS,
            "ece_after_recalibration_max": TARGET_ECE,
            "quarters_met": len(quarters) >= TARGET_QUARTERS,
            "ece_met": bool((lgbm["ece"] <= TARGET_ECE).all()),
        },
        "ece_after_recalibration": ece,
        "splits": _splits_block(result),
        "skipped_models": result.skipped,
        **_nrr_block(result.nrr),
        "table": _records(table),
        "thresholds": _thresholds_block(result),
        "nrr_actual": _records(actuals[["period", "start_arr", "grr", "nrr"]]),
        "nrr_by_coverage_last_quarter": _records(
            by_coverage[["coverage", "n_accounts", "start_arr", "grr", "nrr"]]
        ),
        "nrr_alerts": nrr_alerts(actuals, points=cfg.evaluation.nrr.alert_points)[
            "message"
        ].tolist(),
        "drift_latest_snapshot": _drift_block(panel, result, quarters, manifest, names, cfg),
        "seconds": {
            "features": round(feature_seconds, 1),
            "backtest": round(backtest_seconds, 1),
            "per_quarter": {q: round(s, 1) for q, s in result.seconds.items()},
            "total": round(time.perf_counter() - t0, 1),
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
        "cpus": os.cpu_count(),
    }
    emit(out, indent=1)


def compare_refit(args: argparse.Namespace) -> None:
    """LightGBM per quarter with refit_on_valid false vs true, on the same panel."""
    load_before = load_avg()
    cfg = load_config()
    horizon = cfg.features.horizon_days
    world = _world(args)
    panel = _features(world, args, cfg.features)
    from features.catalog import feature_names

    names = [c for c in feature_names() if c in panel.columns]
    quarters = _quarters(panel, args.quarters)
    runs: dict[str, Any] = {}
    for refit in (False, True):
        t0 = time.perf_counter()
        mc = cfg.models.model_copy(update={"refit_on_valid": refit})
        result = rolling_backtest(
            panel,
            quarters,
            models_trainer(mc, names, horizon_days=horizon, allow_unpurged=not args.purged_only),
            horizon_days=horizon,
            config=cfg.evaluation,
        )
        lg = result.table[result.table["model"] == "lgbm"]
        cols = [c for c in ("roc_auc", "pr_auc", "ece", "n_positive", "n") if c in lg.columns]
        runs[f"refit_on_valid={str(refit).lower()}"] = {
            "per_quarter": _records(lg[["quarter", "target", *cols]]),
            "mean": {
                t: {c: round(float(g[c].mean()), 4) for c in ("roc_auc", "pr_auc", "ece")}
                for t, g in lg.groupby("target")
            },
            "seconds": round(time.perf_counter() - t0, 1),
        }
    out = {
        "benchmark": "backtest_refit_on_valid",
        "world": _world_name(world),
        "accounts": int(panel["account_id"].nunique()),
        "quarters": quarters,
        "default": cfg.models.refit_on_valid,
        "runs": runs,
        "load_avg_before": load_before,
        "load_avg_after": load_avg(),
    }
    emit(out, indent=1)


if __name__ == "__main__":
    main()
