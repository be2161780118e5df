"""Benchmark: score 1,000,000 accounts end to end once their features exist.

Stages, as `flows/score.py` runs them: `models.scoring.score_snapshot` (per partition of
``partition_rows`` accounts: predict + calibrate, explain; then segment the whole book)
and `evaluation.scores_store.write_scores` (Parquet + DuckDB). Stage times come from timing
wrappers put around the functions `score_snapshot` calls, so the measured path is the
production one; a breakdown inside explain (SHAP, sentences) and segment (reasons_json,
playbooks, coverage) shows where the time goes.

Target: <= 180 s and <= 8 GB peak RSS for 1,000,000 accounts on 2 cores.

Models: both targets trained with `models.train.train_all` and the default `ModelConfig`
on the demo feature table (data/features, written by ``make demo``), else on the bench
world's cached feature table (data/bench/models_features_world_20k.parquet), or on
``--features PATH``. Training is not timed as scoring.

Book: rows of the table's latest as_of drawn with replacement (seeded), each numeric
feature multiplied by exp(N(0, 0.05)) (integer features rounded, all clipped to the
observed range; whitespace and penetration recomputed from the noisy ARR and TAM), with
fresh account_ids and one CSM per ~80 accounts.

Outputs go to data/bench/score/ and are removed at the end (``--keep`` to look at them).

Usage::

    .venv/bin/python bench/score.py            # 1,000,000 accounts
    .venv/bin/python bench/score.py --small    # 50,000 accounts
"""

from __future__ import annotations

import argparse
import functools
import gc
import os
import shutil
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import models.explain  # noqa: E402
import models.scoring  # noqa: E402
import models.segment  # noqa: E402
from bench.common import (  # noqa: E402
    BENCH,
    WORLD_FULL,
    cpu_seconds,
    emit,
    features_cache,
    load_avg,
    logger,
    peak_rss_mb,
)
from evaluation.scores_store import DB_FILE, write_scores  # noqa: E402
from features.build import read_feature_table  # noqa: E402
from features.catalog import feature_names  # noqa: E402
from flows.config import load_config  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from models.train import OutcomeClassifier, train_all  # noqa: E402

DEMO_FEATURES = ROOT / "data" / "features"
WORLD_FEATURES = features_cache(WORLD_FULL)
OUT_DIR = BENCH / "score"
TARGETS = {"seconds_max": 180.0, "peak_rss_mb_max": 8192.0}
ACCOUNTS_PER_CSM = 80
NOISE_SIGMA = 0.05
NOT_NOISED = {"maturity_level", "whitespace", "penetration"}  # a stage; derived columns
_log = logger("score-bench")


# ----------------------------------------------------------------------------- inputs


def load_feature_table(path: Path | None) -> tuple[pd.DataFrame, str]:
    """The feature table to train on and resample: --features, demo, else the bench world."""
    candidates = [path] if path else [DEMO_FEATURES, WORLD_FEATURES]
    for cand in candidates:
        if cand is not None and cand.exists():
            frame = read_feature_table(cand) if cand.is_dir() else pd.read_parquet(cand)
            frame["as_of"] = pd.to_datetime(frame["as_of"]).astype("datetime64[us]")
            return frame, str(cand.relative_to(ROOT) if cand.is_relative_to(ROOT) else cand)
    raise SystemExit(
        f"no feature table: looked for {[str(c) for c in candidates]}; run `make demo` "
        "(writes data/features) or pass --features PATH"
    )


def train_models(frame: pd.DataFrame, names: list[str], horizon_days: int) -> dict[str, Any]:
    """Both production models (default ModelConfig) and what they cost to train."""
    t0 = time.perf_counter()
    res = train_all(frame, ModelConfig(), names, horizon_days=horizon_days)
    return {
        "models": res.models,
        "train_seconds": round(time.perf_counter() - t0, 1),
        "test_roc_auc": {
            t: round(float(r.metrics["lgbm"]["test"]["roc_auc"]), 4) for t, r in res.targets.items()
        },
    }


def model_size(model: OutcomeClassifier) -> dict[str, int]:
    trees = model.booster_.dump_model()["tree_info"]
    return {
        "trees": len(trees),
        "leaves": int(sum(t["num_leaves"] for t in trees)),
        "best_iteration": int(model.best_iteration_),
    }


def synthetic_book(
    frame: pd.DataFrame, names: list[str], rows: int, seed: int
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """`rows` accounts resampled from the latest as_of, with small noise and fresh ids."""
    as_of = frame["as_of"].max()
    latest = frame.loc[frame["as_of"] == as_of].reset_index(drop=True)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(latest), rows)
    cols: dict[str, Any] = {}
    for name in names:
        src = latest[name].to_numpy(dtype=np.float64, na_value=np.nan)
        x = src[pick]
        if name not in NOT_NOISED:
            x = x * np.exp(rng.normal(0.0, NOISE_SIGMA, rows))
            known = src[~np.isnan(src)]
            if len(known) and np.array_equal(known, np.round(known)):
                x = np.round(x)
            if len(known):
                x = np.clip(x, known.min(), known.max())
        cols[name] = x
    tam, arr = cols["tam_usd"], cols["arr"]
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["whitespace"] = np.clip(tam - arr, 0.0, None)
        cols["penetration"] = np.where(tam > 0, arr / tam, np.nan)
    ids = pd.Series(np.arange(rows)).astype(str).str.zfill(7)
    csm = rng.integers(0, max(1, rows // ACCOUNTS_PER_CSM), rows)
    context = {
        "account_id": ("B" + ids).to_numpy(),
        "as_of": np.full(rows, np.datetime64(as_of, "us")),
        "name": ("Company " + ids).to_numpy(),
        "csm_id": ("CSM" + pd.Series(csm).astype(str).str.zfill(5)).to_numpy(),
    }
    for col in ("coverage", "industry", "region", "maturity_stage"):
        if col in latest.columns:
            context[col] = latest[col].to_numpy()[pick]
    book = pd.DataFrame({**context, **cols})
    return book, pd.Timestamp(as_of)


# ----------------------------------------------------------------------------- measuring


class StageClock:
    """Wall time spent inside chosen module functions (wrapped in place, then restored)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.missing: list[str] = []
        self._undo: list[tuple[Any, str, Any]] = []

    def wrap(self, owner: Any, attr: str, stage: str) -> None:
        original = getattr(owner, attr, None)
        if original is None:  # an optional detail the code under test no longer has
            self.missing.append(f"{getattr(owner, '__name__', owner)}.{attr}")
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - t0
                self.calls[stage] += 1

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    @contextmanager
    def installed(self, spec: list[tuple[Any, str, str]]) -> Iterator[StageClock]:
        for owner, attr, stage in spec:
            self.wrap(owner, attr, stage)
        try:
            yield self
        finally:
            for owner, attr, original in reversed(self._undo):
                setattr(owner, attr, original)
            self._undo.clear()


STAGES = [(models.scoring, "_predict_partition", "partition"),
          (models.scoring, "explain", "explain"),
          (models.scoring, "segment", "segment")]  # fmt: skip
"""The functions `score_snapshot` calls whose times make the stages."""
_COVERAGE = (
    "_coverage_codes" if hasattr(models.segment, "_coverage_codes") else "recommend_coverage"
)  # the inner function when there is one (recommend_coverage calls it)
DETAIL = [
    (OutcomeClassifier, "predict_raw", "predict.booster"),
    (models.explain, "_contributions", "explain.shap"),
    (models.explain, "compile_lightgbm", "explain.shap_compile"),
    (models.explain, "render_sentences", "explain.sentences"),
    (models.explain, "_reasons_json", "segment.reasons_json"),
    (models.segment, "choose_playbooks", "segment.playbooks"),
    (models.segment, _COVERAGE, "segment.coverage"),
    (pd.DataFrame, "to_parquet", "write.parquet"),
]
"""Functions inside the stages (skipped when absent); one stage name per call path."""


def _reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (Linux), so a stage can be measured."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


# ----------------------------------------------------------------------------- main


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="50,000 accounts")
    ap.add_argument("--rows", type=int, help="accounts to score (default 1,000,000)")
    ap.add_argument("--partition-rows", type=int, help="accounts per partition (config default)")
    ap.add_argument("--features", type=Path, help="feature table (directory or Parquet file)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", action="store_true", help="keep data/bench/score/ afterwards")
    return ap.parse_args()


def _score_and_write(
    book: pd.DataFrame,
    fitted: dict[str, Any],
    score_kw: dict[str, Any],
    partition_rows: int,
    as_of: pd.Timestamp,
    keep: bool,
) -> dict[str, Any]:
    """Score the book and write the scores under the stage clock; what each step cost.

    The peak-RSS mark is reset before scoring and before writing (when the kernel allows),
    so each stage's peak is its own.
    """
    m: dict[str, Any] = {"rss_before": _status_mb("VmRSS"), "peak_before": _status_mb("VmHWM")}
    m["peak_reset"] = _reset_peak_rss()
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    clock = StageClock()
    m["load_before"] = load_avg()
    try:
        calibrator = (type(fitted["churn"].calibrator_), "predict", "predict.calibrate")
        with clock.installed([*STAGES, *DETAIL, calibrator]):
            cpu0 = cpu_seconds()
            m["scored"], m["score_seconds"] = _timed(
                lambda: models.scoring.score_snapshot(
                    book, fitted, partition_rows=partition_rows, **score_kw
                )
            )
            scores = m["scored"].scores
            m["peak_score"] = _status_mb("VmHWM") if m["peak_reset"] else float("nan")
            _log(f"scored in {m['score_seconds']:.1f} s; writing")
            _reset_peak_rss()
            _, m["write_seconds"] = _timed(lambda: write_scores(scores, OUT_DIR, as_of.date()))
            m["cpu_seconds"] = cpu_seconds() - cpu0
        m["load_after"] = load_avg()
        m["peak_write"] = _status_mb("VmHWM") if m["peak_reset"] else float("nan")
        m["parquet_mb"] = _dir_mb(OUT_DIR) - (OUT_DIR / DB_FILE).stat().st_size / 2**20
        m["duckdb_mb"] = (OUT_DIR / DB_FILE).stat().st_size / 2**20
    finally:
        if not keep:
            shutil.rmtree(OUT_DIR, ignore_errors=True)
    m["clock"] = clock
    return m


def main() -> None:
    args = _args()
    rows = args.rows or (50_000 if args.small else 1_000_000)
    cfg = load_config()
    partition_rows = args.partition_rows or cfg.scoring.partition_rows

    frame, source = load_feature_table(args.features)
    names = [c for c in feature_names() if c in frame.columns]
    _log(f"training both models on {len(frame):,} rows x {len(names)} features ({source})")
    trained = train_models(frame, names, cfg.features.horizon_days)
    fitted = trained["models"]
    _log(f"trained in {trained['train_seconds']} s")

    t0 = time.perf_counter()
    book, as_of = synthetic_book(frame, names, rows, args.seed)
    build_seconds = time.perf_counter() - t0
    del frame
    gc.collect()
    _log(f"book of {len(book):,} accounts as of {as_of.date()} built in {build_seconds:.1f} s")

    score_kw = {
        "churn_threshold": cfg.scoring.churn_threshold,
        "expand_threshold": cfg.scoring.expand_threshold,
        "versions": {"churn": "bench", "expand": "bench"},
        "segment_config": cfg.segment,
        "top_k": cfg.scoring.top_k_reasons,
        "progress": False,
    }
    # load the compiled kernels once (a scoring process pays this once per run)
    _, warmup_seconds = _timed(
        lambda: models.scoring.score_snapshot(book.iloc[:2_000], fitted, **score_kw)
    )
    gc.collect()
    m = _score_and_write(book, fitted, score_kw, partition_rows, as_of, args.keep)
    book_scored, scores = m["scored"], m["scored"].scores
    score_seconds, write_seconds = m["score_seconds"], m["write_seconds"]

    clock = m["clock"]
    s = clock.seconds
    total = score_seconds + write_seconds
    stages = {
        "predict_calibrate": s["partition"] - s["explain"],
        "explain": s["explain"],
        "segment": s["segment"],
        "write": write_seconds,
        "other": score_seconds - s["partition"] - s["segment"],  # checks, concat, copies
    }
    detail = {k: v for k, v in s.items() if "." in k}
    # ru_maxrss follows the reset mark too: the process peak is the max over the periods
    peak_process = max(m["peak_before"], peak_rss_mb())
    peak = max(m["peak_score"], m["peak_write"]) if m["peak_reset"] else peak_process
    out = {
        "benchmark": "score",
        "rows": rows,
        "partitions": clock.calls["partition"],
        "partition_rows": partition_rows,
        "as_of": str(as_of.date()),
        "seconds": {k: round(v, 2) for k, v in stages.items()} | {"total": round(total, 2)},
        "seconds_detail": {k: round(v, 2) for k, v in detail.items()},
        "seconds_detail_not_found": clock.missing,
        "cpu_seconds": round(m["cpu_seconds"], 1),
        "rows_per_second": round(rows / total),
        "peak_rss_mb": round(peak, 1),
        "peak_rss_mb_by_stage": {
            "score": round(m["peak_score"], 1),
            "write": round(m["peak_write"], 1),
        },
        "peak_rss_mb_process": round(peak_process, 1),
        "rss_mb_before_scoring": round(m["rss_before"], 1),
        "targets": TARGETS,
        "meets": {
            "seconds": total <= TARGETS["seconds_max"],
            "peak_rss": peak <= TARGETS["peak_rss_mb_max"],
        },
        "models": {t: model_size(x) for t, x in fitted.items()},
        "model_training": {
            "source": source,
            "features": len(names),
            "seconds": trained["train_seconds"],
            "test_roc_auc": trained["test_roc_auc"],
        },
        "book": {
            "build_seconds": round(build_seconds, 1),
            "csms": int(book["csm_id"].nunique()),
            "at_risk": int(scores["at_risk"].sum()),
            "expansion_ready": int(scores["expansion_ready"].sum()),
            "high_touch": int((scores["coverage_recommended"] == "high_touch").sum()),
            "high_touch_capacity": int(scores.attrs.get("high_touch_capacity", -1)),
            "reason_rows": len(book_scored.reasons),
        },
        "output_mb": {"parquet": round(m["parquet_mb"], 1), "duckdb": round(m["duckdb_mb"], 1)},
        "warmup_seconds": round(warmup_seconds, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_before": m["load_before"],
            "loadavg_after": m["load_after"],
        },
    }
    emit(out)


if __name__ == "__main__":
    main()
