"""Benchmark: territory rebalancing of the 20k-account bench world over ~250 CSMs.

Book: the simulator's bench world (data/bench/world_20k) at its last month start. The
accounts are scored with the simulator's exact 60-day probabilities (``truth``: the
benchmark is about the assignment, not the models) and segmented with the default
`models.segment.SegmentConfig` (fallback thresholds 0.15 / 0.25 of `configs/default.yaml`),
with ``csms`` CSMs holding ``--seats`` high-touch seats each. The simulated world has
only ~60 named CSMs, so today's owners of the named-tier accounts are redrawn, seeded,
over the ``csms`` CSMs with uneven (Dirichlet) shares, as real books drift; the roster
(the ``csms`` table) gives each CSM a capacity of ``seats`` to ``seats + 2`` high-touch
accounts (the segmenter fills exactly ``csms x seats`` high-touch seats).
Renewal dates come from `features.renewals.days_to_renewal` on the world's subscriptions.

Both methods run on the same book, with the default `TerritoryConfig`: the MILP (HiGHS,
time limit and gap from the config) and the greedy fallback. Reported per method: load
balance before/after (max, min, CV), accounts moved and their share, exceptions, solve
time (wall and CPU) and each rule's violation count, checked from the output frames by
`models.territories.constraint_violations` (all must be 0). A third run shows the MILP
with ``renewal_min_term_months: 12`` (monthly contracts, which renew every month, are not
held by the renewal window).

Usage::

    .venv/bin/python bench/rebalance.py            # 20k accounts, 250 CSMs
    .venv/bin/python bench/rebalance.py --small    # 2,000-account world, 25 CSMs
    .venv/bin/python bench/rebalance.py --world PATH --csms 120 --seats 6
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    WORLD_FULL,
    WORLD_SMALL,
    cpu_seconds,
    emit,
    ensure_world,
    logger,
    machine,
)
from features.renewals import days_to_renewal  # noqa: E402
from models.segment import SegmentConfig, segment  # noqa: E402
from models.territories import TerritoryConfig, rebalance  # noqa: E402

_log = logger("rebalance-bench")
THRESHOLDS = {"churn": 0.15, "expand": 0.25}  # configs/default.yaml scoring fallbacks


def scored_book(world: Path, csms: int, seats: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(book with segment output, renewal days and redrawn owners; the csms roster)."""
    from features.data_end import manifest_data_end, read_manifest

    data_end = manifest_data_end(read_manifest(world / "manifest.json"), world / "manifest.json")
    truth = pd.read_parquet(world / "truth.parquet")
    truth["month_start"] = pd.to_datetime(truth["month_start"])
    day = truth.loc[truth["month_start"] < pd.Timestamp(data_end), "month_start"].max()
    rows = truth[(truth["month_start"] == day) & (truth["arr"] > 0)]
    acc = pd.read_parquet(world / "accounts.parquet")
    book = rows[["account_id", "arr", "p_churn", "p_expand", "maturity_level"]].merge(
        acc[["account_id", "name", "tam_usd", "csm_id", "coverage"]], on="account_id"
    )
    book["as_of"] = day
    rng = np.random.default_rng(seed)
    roster_ids = np.array([f"csm_{k:03d}" for k in range(csms)], dtype=object)
    named = book["coverage"].isin(["high_touch", "standard"]).to_numpy()
    share = rng.dirichlet(np.full(csms, 3.0))
    owners = book["csm_id"].to_numpy(dtype=object, copy=True)
    owners[named] = rng.choice(roster_ids, int(named.sum()), p=share)
    book["csm_id"] = owners
    cfg = SegmentConfig()
    cfg = cfg.model_copy(
        update={
            "coverage": cfg.coverage.model_copy(update={"csms": csms, "accounts_per_csm": seats})
        }
    )
    seg = segment(
        book, None, cfg, churn_threshold=THRESHOLDS["churn"], expand_threshold=THRESHOLDS["expand"]
    )
    con = duckdb.connect()
    for t in ("subscriptions", "plans"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{world / (t + '.parquet')}')")
    renew = days_to_renewal(con, day.date())
    con.close()
    seg = seg.merge(renew, on="account_id", how="left")
    roster = pd.DataFrame(
        {
            "csm_id": roster_ids,
            "name": [f"CSM {k:03d}" for k in range(csms)],
            "capacity": seats + rng.integers(0, 3, csms),
        }
    )
    return seg, roster


def run(book: pd.DataFrame, roster: pd.DataFrame, method: str, seats: int, **over) -> dict:
    cfg = TerritoryConfig(method=method, **over)
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    res = rebalance(book, roster, cfg, default_capacity=seats)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    b = res.balance
    s = b["solver"]
    return {
        "method_requested": method,
        "method_used": res.method,
        "balance_before": b["before"],
        "balance_after": b["after"],
        "accounts_named_after": b["accounts_named_after"],
        "accounts_moved": b["moves"],
        "handovers": b["handovers"],
        "first_assignments": b["first_assignments"],
        "share_moved": b["share_moved"],
        "exceptions": b["exceptions"],
        "deferred_tier_changes": b["deferred_tier_changes"],
        "objective": b["objective"],
        "violations": b["violations"],
        "violations_total": int(sum(b["violations"].values())),
        "seconds_total": round(wall, 2),
        "cpu_seconds_total": round(cpu, 2),
        "solver": {
            k: s.get(k)
            for k in (
                "status",
                "message",
                "mip_gap",
                "solve_seconds",
                "solve_cpu_seconds",
                "binary_variables",
                "constraints",
                "greedy_seconds",
            )
        },  # fmt: skip
        "csms_over_capacity_forced_by_exceptions": int(res.loads["capacity_forced"].sum()),
        "notes": res.notes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000-account world, 25 CSMs")
    ap.add_argument("--world", type=Path)
    ap.add_argument("--csms", type=int, help="CSMs on the roster (default 250; --small 25)")
    ap.add_argument("--seats", type=int, default=4, help="high-touch seats per CSM")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    world = ensure_world(args.world or (WORLD_SMALL if args.small else WORLD_FULL), 2000, _log)
    csms = args.csms or (25 if args.small else 250)
    t0 = time.perf_counter()
    book, roster = scored_book(world, csms, args.seats, args.seed)
    prep = time.perf_counter() - t0
    _log(f"book ready in {prep:.0f} s: {len(book)} accounts")
    results = {}
    for method in ("milp", "greedy"):
        _log(f"running {method}")
        results[method] = run(book, roster, method, args.seats)
    _log("running milp with renewal_min_term_months=12")
    variant = run(book, roster, "milp", args.seats, renewal_min_term_months=12)
    tiers = book["coverage_recommended"].value_counts().to_dict()
    out = {
        "benchmark": "rebalance",
        "world": str(world.relative_to(ROOT)) if world.is_relative_to(ROOT) else str(world),
        "as_of": str(pd.Timestamp(book["as_of"].iloc[0]).date()),
        "accounts": len(book),
        "csms": csms,
        "high_touch_seats_per_csm": args.seats,
        "coverage_recommended": tiers,
        "at_risk_accounts": int(book["at_risk"].sum()),
        "config": TerritoryConfig().model_dump(exclude={"plan"}),
        "baseline": "balance_before: today's owners (redrawn, uneven) with no rebalancing; "
        "greedy: the documented fallback on the same book",
        "milp": results["milp"],
        "greedy": results["greedy"],
        "milp_renewal_window_annual_contracts_only": variant,
        "book_seconds": round(prep, 1),
        "machine": machine(),
    }
    emit(out)


if __name__ == "__main__":
    main()
