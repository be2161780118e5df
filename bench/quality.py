"""Benchmark: model quality on the simulated world against its ground truth.

The simulator's ``truth`` table holds the exact 60-day churn and expansion probabilities
of every account at every month start; scoring the test slice with them gives the best
ROC-AUC any model could reach (the oracle). Targets, on the test (latest matured,
out-of-time) slice, for churn and for expansion:

- (ROC-AUC - 0.5) / (oracle ROC-AUC - 0.5) >= 0.9,
- expected calibration error (10 equal-frequency bins) <= 0.02 after calibration,
- LightGBM beats the logistic and health-score baselines on ROC-AUC and PR-AUC,
- calibration keeps the ranking: calibrated ROC-AUC and PR-AUC within 0.002 of the raw
  booster's, distinct issued values >= 95% of distinct raw scores.

The ``calibration`` block compares, on the test slice, every calibration method fitted on
the calibration slice, the former rule ('auto' = isotonic or sigmoid by held-out Brier:
``before``) and the current one ('auto' = pchip, beta or sigmoid by held-out log loss:
``after``): ECE, ROC-AUC, PR-AUC, distinct values.

Pipeline: world (data/bench/world_20k, or a 2,000-account world simulated into
data/bench/models_world_2k with --small) -> validated source -> feature table (built once
with features.build and cached as data/bench/models_features_<world>.parquet) ->
`models.train.train_all` with the default configuration -> metrics joined with truth on
(account_id, month_start == as_of).

``--diagnose`` adds the analysis of what limits the ratio: a LightGBM model given the
simulator's latent state (engagement, value) next to the features (observability), and
the model's ratio on the training dates (fit) and per test date.

Usage::

    .venv/bin/python bench/quality.py               # 20k-account bench world
    .venv/bin/python bench/quality.py --small       # 2k-account world, quick
    .venv/bin/python bench/quality.py --diagnose
    .venv/bin/python bench/quality.py --world PATH [--features TABLE.parquet]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
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
    logger,
)
from evaluation.metrics import binary_metrics, roc_auc  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from models.train import OutcomeClassifier, train_all  # noqa: E402

_log = logger("quality")
TARGETS = {"ratio_min": 0.9, "ece_max": 0.02, "auc_gap_max": 0.002, "distinct_share_min": 0.95}
HORIZON = 60


def join_truth(pred: pd.DataFrame, world: Path) -> pd.DataFrame:
    """Prediction rows with the simulator's exact probabilities and labels (``truth_*``)."""
    truth = pd.read_parquet(
        world / "truth.parquet",
        columns=[
            "account_id", "month_start", "p_churn", "p_expand", "engagement", "value",
            "label_churn", "label_expand",
        ],
    )  # fmt: skip
    truth = truth.rename(columns={c: f"truth_{c}" for c in truth.columns if c != "account_id"})
    truth["as_of"] = pd.to_datetime(truth.pop("truth_month_start")).astype("datetime64[us]")
    left = pred.assign(as_of=pd.to_datetime(pred["as_of"]).astype("datetime64[us]"))
    return left.merge(truth, on=["account_id", "as_of"], how="left", validate="one_to_one")


def _ratio(auc: float, oracle: float) -> float:
    return (auc - 0.5) / (oracle - 0.5) if oracle > 0.5 else math.nan


def _r(x: float, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def quality_block(res: Any, joined: pd.DataFrame) -> dict[str, Any]:
    """Oracle, model and baselines side by side on the test slice, per target."""
    out: dict[str, Any] = {}
    test = joined[joined["slice"] == "test"]
    for target, tr in res.targets.items():
        label = tr.label
        rows = test[test[label].notna() & test[f"truth_p_{target}"].notna()]
        y = rows[label].to_numpy(float)
        oracle = binary_metrics(y, rows[f"truth_p_{target}"].to_numpy(float))
        models = {
            name: binary_metrics(y, rows[col].to_numpy(float))
            for name, col in (
                ("lgbm", f"p_{target}"),
                ("lgbm_raw", f"p_{target}_raw"),
                ("logistic", f"p_{target}_logistic"),
                ("health", f"p_{target}_health"),
            )
            if col in rows.columns
        }
        side = {
            name: {
                "roc_auc": _r(m["roc_auc"]),
                "ratio": _r(_ratio(m["roc_auc"], oracle["roc_auc"])),
                "pr_auc": _r(m["pr_auc"]),
                "ece": _r(m["ece"]),
                "brier": _r(m["brier"], 5),
                "lift_top_decile": _r(m["lift_top"], 2),
                "precision_at_200": _r(m["precision_at_k"], 3),
            }
            for name, m in {"oracle": oracle, **models}.items()
        }
        lg = models["lgbm"]
        beats = all(
            lg["roc_auc"] > models[b]["roc_auc"] and lg["pr_auc"] > models[b]["pr_auc"]
            for b in ("logistic", "health")
            if b in models
        )
        n_pos = int(y.sum())
        out[target] = {
            "test_rows": len(rows),
            "test_positives": n_pos,
            "base_rate": _r(float(y.mean())),
            "label_agreement_with_truth": _r(float((rows[label] == rows[f"truth_{label}"]).mean())),
            "auc_std_error": _r(_auc_se(oracle["roc_auc"], n_pos, len(rows) - n_pos)),
            "models": side,
            "ratio": side["lgbm"]["ratio"],
            "ece": side["lgbm"]["ece"],
            "calibration": tr.params["calibration"],
            "best_iteration": tr.params["best_iteration"],
            "meets_ratio": bool(side["lgbm"]["ratio"] >= TARGETS["ratio_min"]),
            "meets_ece": bool(lg["ece"] <= TARGETS["ece_max"]),
            "beats_baselines": beats,
            "top_features": tr.importance["feature"].head(8).tolist(),
            "notes": tr.notes,
        }
    return out


def _former_auto(p: np.ndarray, y: np.ndarray, groups: np.ndarray) -> tuple[str, Any]:
    """The former 'auto' rule: isotonic or sigmoid, the lower Brier on the latest third."""
    from models.calibrate import ProbabilityCalibrator, _holdout_splits

    _, splits = _holdout_splits(y, groups, n_folds=5, time_ordered=True, seed=42)
    brier = {}
    for m in ("isotonic", "sigmoid"):
        sq, n = 0.0, 0
        for fit_idx, held_idx in splits:
            c = ProbabilityCalibrator(m).fit(p[fit_idx], y[fit_idx])
            sq += float(((c.predict(p[held_idx]) - y[held_idx]) ** 2).sum())
            n += len(held_idx)
        brier[m] = sq / max(n, 1)
    method = "isotonic" if brier and brier["isotonic"] < brier["sigmoid"] else "sigmoid"
    return method, ProbabilityCalibrator(method).fit(p, y)


def calibration_block(res: Any) -> dict[str, Any]:
    """Before/after calibration on the test slice: ECE, ROC-AUC, PR-AUC, distinct values."""
    from models.calibrate import ProbabilityCalibrator

    pred = res.predictions
    out: dict[str, Any] = {}
    for target, tr in res.targets.items():
        label, raw_col = tr.label, f"p_{target}_raw"
        cal_rows = pred[(pred["slice"] == "calib") & pred[label].notna()]
        test = pred[(pred["slice"] == "test") & pred[label].notna()]
        p_c, y_c = cal_rows[raw_col].to_numpy(float), cal_rows[label].to_numpy(float)
        groups = pd.to_datetime(cal_rows["as_of"]).to_numpy()
        p_t, y_t = test[raw_col].to_numpy(float), test[label].to_numpy(float)
        former, former_cal = _former_auto(p_c, y_c, groups)
        current = ProbabilityCalibrator("auto", random_state=42).fit(p_c, y_c, groups=groups)
        issued = {"raw": p_t, f"before ({former})": former_cal.predict(p_t)}
        for m in ("isotonic", "sigmoid", "beta", "pchip"):
            issued[m] = ProbabilityCalibrator(m).fit(p_c, y_c).predict(p_t)
        issued[f"after ({current.method_})"] = current.predict(p_t)
        raw_m = binary_metrics(y_t, p_t)
        n_raw = len(np.unique(p_t))
        rows = {}
        for name, q in issued.items():
            m = binary_metrics(y_t, q)
            rows[name] = {
                "ece": _r(m["ece"]),
                "roc_auc": _r(m["roc_auc"]),
                "pr_auc": _r(m["pr_auc"]),
                "distinct_values": int(len(np.unique(q))),
                "distinct_share": _r(len(np.unique(q)) / n_raw),
            }
        after = rows[f"after ({current.method_})"]
        m_after = binary_metrics(y_t, issued[f"after ({current.method_})"])
        out[target] = {
            "test_rows": len(test),
            "held_out_log_loss": {k: _r(v, 5) for k, v in current.log_loss_.items()},
            "methods": rows,
            "meets_ranking": bool(
                abs(m_after["roc_auc"] - raw_m["roc_auc"]) <= TARGETS["auc_gap_max"]
                and abs(m_after["pr_auc"] - raw_m["pr_auc"]) <= TARGETS["auc_gap_max"]
                and after["distinct_share"] >= TARGETS["distinct_share_min"]
            ),
            "meets_ece": bool(m_after["ece"] <= TARGETS["ece_max"]),
        }
    return out


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley-McNeil standard error of an AUC (how much of a gap is noise)."""
    if n_pos == 0 or n_neg == 0 or math.isnan(auc):
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (
        n_pos * n_neg
    )
    return math.sqrt(max(var, 0.0))


def diagnose(res: Any, frame: pd.DataFrame, world: Path, cfg: ModelConfig) -> dict[str, Any]:
    """Which side limits the ratio: the model (fit) or what the features can observe."""
    out: dict[str, Any] = {}
    split = res.split
    masks = split.masks(frame)
    base = frame[["account_id", "as_of"]].assign(slice="")
    joined_all = join_truth(base, world)
    latent = joined_all[["truth_engagement", "truth_value"]].to_numpy(float)
    names = res.feature_names
    for target, tr in res.targets.items():
        label = tr.label
        y = frame[label].to_numpy(float)
        truth_p = joined_all[f"truth_p_{target}"].to_numpy(float)
        info: dict[str, Any] = {}
        # fit: ratio on the training dates, and per test date
        tr_idx = np.flatnonzero(masks["train"] & ~np.isnan(y) & ~np.isnan(truth_p))
        raw_tr = tr.model.predict_raw(frame.iloc[tr_idx])
        info["train_ratio"] = _r(
            _ratio(roc_auc(y[tr_idx], raw_tr), roc_auc(y[tr_idx], truth_p[tr_idx]))
        )
        per_date = {}
        for d in split.test:
            i = np.flatnonzero(
                masks["test"] & (frame["as_of"] == d).to_numpy() & ~np.isnan(truth_p)
            )
            per_date[d.date().isoformat()] = _r(
                _ratio(
                    roc_auc(y[i], tr.model.predict_raw(frame.iloc[i])), roc_auc(y[i], truth_p[i])
                )
            )
        info["test_ratio_by_date"] = per_date
        # observability: the same model given the latent state the simulator decides from
        X = np.column_stack([frame[names].to_numpy(float), latent])
        cols = [*names, "latent_engagement", "latent_value"]
        ok = ~np.isnan(y)
        idx = {k: np.flatnonzero(m & ok) for k, m in masks.items()}
        est = OutcomeClassifier.from_config(
            cfg.lgbm_for(target), feature_names=cols, calibration="auto", seed=cfg.seed
        ).fit(
            X[idx["train"]], y[idx["train"]],
            X_valid=X[idx["valid"]], y_valid=y[idx["valid"]],
        )  # fmt: skip
        te = idx["test"][~np.isnan(truth_p[idx["test"]])]
        info["ratio_with_latent_state"] = _r(
            _ratio(roc_auc(y[te], est.predict_raw(X[te])), roc_auc(y[te], truth_p[te]))
        )
        info["latent_state_auc"] = {
            "engagement": _r(
                roc_auc(y[te], -latent[te, 0] if target == "churn" else latent[te, 0])
            ),
            "value": _r(roc_auc(y[te], -latent[te, 1] if target == "churn" else latent[te, 1])),
        }
        out[target] = info
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000-account world (quick run)")
    ap.add_argument("--world", type=Path, help="simulated world directory (with truth.parquet)")
    ap.add_argument("--features", type=Path, help="prebuilt feature table of that world")
    ap.add_argument("--diagnose", action="store_true", help="what limits the ratio")
    args = ap.parse_args()

    if args.world:
        world = args.world
    elif args.small:
        world = ensure_world(WORLD_SMALL, 2000, _log)
    else:
        world = ensure_world(WORLD_FULL, 20000, _log)
    frame = pd.read_parquet(args.features) if args.features else feature_table(world, log=_log)
    frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")

    from features.catalog import feature_names

    names = [c for c in feature_names() if c in frame.columns]
    absent = [c for c in feature_names() if c not in frame.columns]
    cfg = ModelConfig()
    load_before = load_avg()
    t0 = time.perf_counter()
    res = train_all(frame, cfg, names, horizon_days=HORIZON)
    seconds = time.perf_counter() - t0
    joined = join_truth(res.predictions, world)
    from features.data_end import read_manifest

    manifest = read_manifest(world / "manifest.json")
    out: dict[str, Any] = {
        "benchmark": "quality",
        "world": str(world.relative_to(ROOT)) if world.is_relative_to(ROOT) else str(world),
        "world_manifest": {k: manifest.get(k) for k in ("seed", "accounts", "months", "tables")},
        "rows": len(frame),
        "features": len(names),
        "catalogue_features_absent": absent,
        "split": {k: v for k, v in res.split.to_dict().items() if k != "horizon_days"},
        "targets": TARGETS,
        "results": quality_block(res, joined),
        "calibration": calibration_block(res),
        "train_seconds": round(seconds, 1),
    }
    if args.diagnose:
        out["diagnosis"] = diagnose(res, frame, world, cfg)
    out["load_avg_before"] = load_before
    out["load_avg_after"] = load_avg()
    out["cpu_count"] = os.cpu_count()
    emit(out)


if __name__ == "__main__":
    main()
