"""Benchmark: simulate the default world (20,000 accounts x 18 months, ~100M events).

Targets: >= 2 million events per second on 2 cores, the whole world written in
under 90 s, peak resident memory under 4 GB, and the realism figures of the default
config inside their ranges (monthly logo churn 1-3%, annual NRR 90-120%, churn
concentrated near renewals, 60-day expansion positives a few percent).

The world is left in data/bench/world_20k for the other benchmarks to reuse.

Prints one JSON object: the summary, the targets with pass/fail, and the machine load.

Usage::

    .venv/bin/python bench/simulate.py            # full size
    .venv/bin/python bench/simulate.py --small    # 1,000 accounts x 6 months (a few seconds)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BENCH, cpu_seconds, emit, load_avg, peak_rss_mb  # noqa: E402
from flows.config import load_config  # noqa: E402
from simulator import simulate  # noqa: E402

TARGETS = {
    "events_per_second_min": 2_000_000,
    "wall_seconds_max": 90.0,
    "peak_rss_mb_max": 4096.0,
    "monthly_logo_churn": [0.01, 0.03],
    "annual_nrr": [0.90, 1.20],
    "share_of_churn_near_renewal_min": 0.6,
    "expand_60d_rate": [0.01, 0.10],
}


def _checks(s: dict) -> dict[str, bool]:
    t = TARGETS
    return {
        "events_per_second": s["events_per_second"] >= t["events_per_second_min"],
        "wall_seconds": s["wall_seconds"] <= t["wall_seconds_max"],
        "peak_rss_mb": s["peak_rss_mb"] <= t["peak_rss_mb_max"],
        "monthly_logo_churn": t["monthly_logo_churn"][0]
        <= s["monthly_logo_churn"]
        <= t["monthly_logo_churn"][1],
        "annual_nrr": t["annual_nrr"][0] <= s["annual_nrr"] <= t["annual_nrr"][1],
        "share_of_churn_near_renewal": s["share_of_churn_near_renewal"]
        >= t["share_of_churn_near_renewal_min"],
        "expand_60d_rate": t["expand_60d_rate"][0]
        <= s["expand_60d_rate"]
        <= t["expand_60d_rate"][1],
    }


def _cpu_pressure() -> str | None:
    """Linux PSI line: how much of the time runnable tasks waited for a CPU."""
    try:
        return Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except OSError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1,000 accounts x 6 months")
    parser.add_argument("--out", type=Path, default=None, help="where the world is written")
    args = parser.parse_args()

    cfg = load_config().simulate
    if args.small:
        cfg = cfg.model_copy(update={"accounts": 1000, "months": 6})
        out = args.out or BENCH / "world_small"
    else:
        out = args.out or BENCH / "world_20k"
    load_before = load_avg()
    cpu_before = cpu_seconds()
    started = time.perf_counter()
    summary = simulate(cfg, out, progress=False).as_dict()
    total = time.perf_counter() - started
    # CPU time is what the machine's other users cannot inflate; wall time is
    cpu = cpu_seconds() - cpu_before
    load_after = load_avg()
    summary["extra"].pop("decisions", None)
    checks = _checks(summary)
    emit(
        {
            "bench": "simulate",
            "config": {
                "accounts": cfg.accounts,
                "months": cfg.months,
                "seed": cfg.seed,
                "workers": cfg.workers,
            },
            "out": str(out),
            "summary": summary,
            "seconds_including_summary": round(total, 2),
            "cpu_seconds": round(cpu, 2),
            "events_per_cpu_second": round(summary["events"] / cpu, 1),
            "cpu_utilisation": round(cpu / total, 2),
            "ru_maxrss_mb": round(peak_rss_mb(), 1),
            "targets": TARGETS,
            "pass": checks,
            "all_pass": all(checks.values()),
            "machine": {
                "cpus": os.cpu_count(),
                "loadavg_before": load_before,
                "loadavg_after": load_after,
                "cpu_pressure": _cpu_pressure(),
            },
        }
    )


if __name__ == "__main__":
    main()
