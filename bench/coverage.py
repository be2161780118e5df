"""Benchmark: does the segmenter put high-touch coverage where ARR actually moves?

On the default simulated world (data/bench/world_20k; ``--small``: a 2,000-account world
in data/bench/models_world_2k), the production models are trained with
`models.train.train_all`; for every date of the out-of-time test slice the accounts are
scored, explained and segmented (`models.segment.segment`, default configuration,
high-touch capacity = distinct CSMs x accounts per CSM). With the same capacity, compare
the ARR that actually moved in the next 60 days

    ARR lost to churn (ARR of accounts that churned) + ARR gained (ARR(as_of + 60 d) -
    ARR(as_of) where positive)

inside the high-touch set chosen by the segmenter versus the set chosen by ARR rank
alone (the usual "biggest accounts get a CSM" rule). For scale it also prints the
oracle (the accounts whose ARR actually moved most), the expected value of a random set
of that size, and today's high-touch accounts (column ``coverage``, whatever their number),
and two variants of the segmenter whose capture rate is measured on the training slice
(`models.segment.estimate_capture_rate`), with the expected expansion a share of
whitespace (the default base) or of current ARR (``expansion_base: arr``).

Usage::

    .venv/bin/python bench/coverage.py            # 20k-account bench world
    .venv/bin/python bench/coverage.py --small    # 2k-account world, quick
    .venv/bin/python bench/coverage.py --world PATH [--features TABLE.parquet]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    BENCH,
    WORLD_FULL,
    WORLD_SMALL,
    emit,
    ensure_world,
    feature_table,
    features_cache,
    logger,
    machine,
)
from models.config import ModelConfig  # noqa: E402
from models.explain import explain  # noqa: E402
from models.segment import SegmentConfig, estimate_capture_rate, segment  # noqa: E402

_log = logger("coverage-bench")
HORIZON = 60
SCORED_COLUMNS = [
    "account_id", "as_of", "csm_id", "coverage", "arr", "tam_usd", "whitespace",
    "maturity_level", "maturity_stage",
]  # fmt: skip


def trained(table: pd.DataFrame, world: Path, retrain: bool):
    """train_all on the table (cached as a pickle next to the feature table)."""
    from features.catalog import feature_names
    from models.train import train_all

    cache = BENCH / f"coverage_models_{world.name}.pkl"
    feats = features_cache(world)
    fresh = cache.exists() and (
        not feats.exists() or cache.stat().st_mtime >= feats.stat().st_mtime
    )
    if fresh and not retrain:
        _log(f"using cached models {cache.relative_to(ROOT)}")
        return pickle.loads(cache.read_bytes())
    names = [c for c in feature_names() if c in table.columns]
    t0 = time.perf_counter()
    res = train_all(table, ModelConfig(), names, horizon_days=HORIZON)
    _log(f"trained both models in {time.perf_counter() - t0:.0f} s")
    cache.write_bytes(pickle.dumps(res))
    return res


def thresholds(res, table: pd.DataFrame) -> dict[str, float]:
    """This quarter's thresholds as evaluation/thresholds.py would set them on calib rows."""
    from evaluation.thresholds import choose_churn_threshold, choose_expand_threshold, flag_curve

    pred = res.predictions[res.predictions["slice"] == "calib"]
    n_dates = pred["as_of"].nunique()
    n_csms = max(1, int(table["csm_id"].dropna().nunique()))
    out = {}
    for target, pick in (
        ("churn", lambda c: choose_churn_threshold(c, band=(10, 20))),
        ("expand", lambda c: choose_expand_threshold(c, target_precision=0.5)),
    ):
        label = res.targets[target].label
        curve = flag_curve(
            pred[f"p_{target}"].to_numpy(float), pred[label].to_numpy(float),
            n_weeks=n_dates, n_csms=n_csms,
        )  # fmt: skip
        out[target] = float(pick(curve)["threshold"])
    return out


def moved(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(ARR lost to churn, ARR gained) of every account over the horizon."""
    arr = rows["arr"].to_numpy(float)
    arr_h = rows["arr_h"].to_numpy(float)
    lost = np.where(rows["label_churn"].to_numpy(float) == 1.0, arr, 0.0)
    gained = np.clip(arr_h - arr, 0.0, None)
    return lost, gained


def in_set(mask: np.ndarray, lost: np.ndarray, gained: np.ndarray) -> dict[str, float]:
    return {
        "accounts": int(mask.sum()),
        "arr_lost_to_churn": round(float(lost[mask].sum())),
        "arr_gained": round(float(gained[mask].sum())),
        "arr_moved": round(float(lost[mask].sum() + gained[mask].sum())),
        "churned_accounts": int((lost[mask] > 0).sum()),
        "expanded_accounts": int((gained[mask] > 0).sum()),
    }


def evaluate_date(
    res,
    table: pd.DataFrame,
    day: pd.Timestamp,
    thr: dict,
    cfg: SegmentConfig,
    variants: dict[str, SegmentConfig],
):
    rows = table[(table["as_of"] == day) & table["label_known"]].reset_index(drop=True)
    pred = res.predictions[(res.predictions["slice"] == "test") & (res.predictions["as_of"] == day)]
    rows = rows.merge(pred[["account_id", "p_churn", "p_expand"]], on="account_id", how="inner")
    codes = explain(res.models, rows, top_k=3)
    scored = rows[SCORED_COLUMNS + ["p_churn", "p_expand"]]
    kw = {"churn_threshold": thr["churn"], "expand_threshold": thr["expand"]}
    out = segment(scored, codes, cfg, **kw)
    alt = {
        name: segment(scored, codes, v, **kw)["coverage_recommended"].to_numpy() == "high_touch"
        for name, v in variants.items()
    }
    capacity = int(out.attrs["high_touch_capacity"])
    lost, gained = moved(rows)
    n = len(rows)
    by_seg = out["coverage_recommended"].to_numpy() == "high_touch"
    by_arr = np.zeros(n, dtype=bool)
    by_arr[
        np.lexsort((rows["account_id"].to_numpy(str), -rows["arr"].to_numpy(float)))[:capacity]
    ] = True
    oracle = np.zeros(n, dtype=bool)
    oracle[np.argsort(-(lost + gained), kind="stable")[:capacity]] = True
    current = rows["coverage"].to_numpy(dtype=object) == "high_touch"
    total = lost.sum() + gained.sum()
    return {
        "as_of": day.date().isoformat(),
        "accounts": n,
        "csms": int(out.attrs["csms"]),
        "high_touch_capacity": capacity,
        "arr_moved_all_accounts": round(float(total)),
        "segmenter": in_set(by_seg, lost, gained),
        "arr_rank": in_set(by_arr, lost, gained),
        **{name: in_set(mask, lost, gained) for name, mask in alt.items()},
        "oracle": in_set(oracle, lost, gained),
        "random_expected_arr_moved": round(float(total * capacity / n)),
        "current_high_touch": in_set(current, lost, gained),
        "segments": out["segment"].value_counts().to_dict(),
        "playbooks_top": out["playbook"].value_counts().head(6).to_dict(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000-account world")
    ap.add_argument("--world", type=Path, help="a simulated world directory")
    ap.add_argument("--features", type=Path, help="its feature table (Parquet)")
    ap.add_argument("--retrain", action="store_true", help="ignore cached models")
    args = ap.parse_args()
    world = args.world or (WORLD_SMALL if args.small else WORLD_FULL)
    world = ensure_world(world, 2000, _log)
    t0 = time.perf_counter()
    table = feature_table(world, args.features, log=_log)
    table["as_of"] = pd.to_datetime(table["as_of"]).astype("datetime64[us]")
    res = trained(table, world, args.retrain)
    thr = thresholds(res, table)
    cfg = SegmentConfig()
    history = table[np.isin(table["as_of"], np.asarray(res.split.dates("train"), "datetime64[us]"))]
    rates = {b: estimate_capture_rate(history, base=b) for b in ("whitespace", "arr")}
    variants = {
        f"segmenter_{base}_base_estimated_rate": cfg.model_copy(
            update={"expansion_base": base, "capture_rate": min(1.0, rates[base])}
        )
        for base in ("whitespace", "arr")
    }
    per_date = [evaluate_date(res, table, d, thr, cfg, variants) for d in res.split.dates("test")]

    def total(key: str) -> dict[str, int]:
        return {
            k: sum(d[key][k] for d in per_date)
            for k in ("accounts", "arr_lost_to_churn", "arr_gained", "arr_moved")
        }

    seg, rank = total("segmenter"), total("arr_rank")

    def vs_rank(x: dict[str, int]) -> float | None:
        return round(x["arr_moved"] / rank["arr_moved"], 3) if rank["arr_moved"] else None

    out = {
        "benchmark": "coverage",
        "world": str(world.relative_to(ROOT)) if world.is_relative_to(ROOT) else str(world),
        "test_dates": [d["as_of"] for d in per_date],
        "thresholds": thr,
        "segment_config": {
            "save_rate": cfg.save_rate,
            "capture_rate": cfg.capture_rate,
            "expansion_base": cfg.expansion_base,
            "accounts_per_csm": cfg.coverage.accounts_per_csm,
            "tam_cut_usd": cfg.tam.usd,
        },
        "total": {
            "segmenter": seg,
            "arr_rank": rank,
            "segmenter_vs_arr_rank": vs_rank(seg),
            "oracle": total("oracle"),
            "random_expected_arr_moved": sum(d["random_expected_arr_moved"] for d in per_date),
            "variants": {
                name: {**total(name), "vs_arr_rank": vs_rank(total(name))} for name in variants
            },
        },
        "capture_rate_estimated_on_train_slice": {k: round(v, 4) for k, v in rates.items()},
        "variants": "default configuration except expansion_base and capture_rate, the rate "
        "measured on the train slice with models.segment.estimate_capture_rate",
        "per_date": per_date,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    emit(out)


if __name__ == "__main__":
    main()
