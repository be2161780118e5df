"""The writers the fault tests kill: one small call per store, run in a subprocess (the
killed write) or in the test process (the writes before and after)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import pandas as pd


def write(kind: str, target: str | Path, arg: str) -> None:
    """Write store `kind` at `target`; `arg` is its small payload (see each branch)."""
    target = Path(target)
    if kind == "features":  # arg: JSON list of as_of days, 3 accounts each
        from features.build import write_feature_table

        rows = [
            {"account_id": f"A{i}", "as_of": pd.Timestamp(d), "x": float(i)}
            for d in json.loads(arg)
            for i in range(3)
        ]
        df = pd.DataFrame(rows)
        df["as_of"] = df["as_of"].astype("datetime64[us]")
        write_feature_table(df, target)
    elif kind == "scores":  # arg: "<rows>,<p_churn>" for 2026-01-05
        from evaluation import scores_store

        n, p = arg.split(",")
        df = pd.DataFrame(
            {
                "account_id": [f"A{i}" for i in range(int(n))],
                "as_of": pd.Timestamp("2026-01-05"),
                "p_churn": float(p),
            }
        )
        scores_store.write_scores(df, target, date(2026, 1, 5), lock_timeout=30)
    elif kind == "validate":  # arg: the source; target: the quarantine directory
        from features.sources import open_source
        from features.validate import validate

        src = open_source(arg)
        validate(src, now=src.data_end, quarantine_dir=target)
        src.con.close()
    elif kind == "world":  # arg: the seed
        from simulator import SimConfig, simulate

        simulate(SimConfig(accounts=20, months=3, seed=int(arg)), target, progress=False)
    elif kind == "thresholds":  # arg: the churn threshold of 2026Q1
        from evaluation.thresholds_file import thresholds_to_yaml

        thresholds_to_yaml(
            {"quarter": "2026Q1", "churn_threshold": float(arg), "expand_threshold": 0.3}, target
        )
    else:
        raise ValueError(f"unknown writer {kind!r}")


if __name__ == "__main__":
    write(*sys.argv[1:4])
