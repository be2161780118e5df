"""Benchmark: PostgreSQL in and out, compared with Parquet on the same simulated world.

Starts its own PostgreSQL server (Debian's `postgresql`, `make postgres`) in a temporary
directory, loads a simulated world into it, then measures:

- in: `open_source` of the database (ADBC binary COPY -> Arrow batches -> DuckDB tables),
  alone and followed by contract validation, against the same world as Parquet files
  (materialised into DuckDB tables the same way, and `open_source` + validation);
- out: a scores table written with `evaluation.scores_sql.write_scores_sql` (one transaction,
  COPY) against `evaluation.scores_store.write_scores` (Parquet partition + DuckDB table) and
  a plain Parquet file.

Rows per second count every row of every contract table (in) or scores rows (out).
CPU seconds are given for this process and for the PostgreSQL server (postmaster and its
exited backends, from /proc). Prints one JSON
object with the figures, the Parquet baseline and the machine's load.

Usage::

    .venv/bin/python bench/warehouse.py            # 2,000 accounts x 12 months, 200k scores
    .venv/bin/python bench/warehouse.py --small    # 300 accounts x 8 months, 20k scores
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from pg_server import TempPostgres, load_tables, unavailable_reason  # noqa: E402

from bench.common import cpu_seconds, emit, load_avg, logger  # noqa: E402
from evaluation import scores_store  # noqa: E402
from evaluation.scores_sql import write_scores_sql  # noqa: E402
from features.contract import TABLES  # noqa: E402
from features.data_end import manifest_path, read_manifest  # noqa: E402
from features.sources import open_source  # noqa: E402
from features.validate import validate  # noqa: E402

_log = logger("warehouse")
SERVER: TempPostgres | None = None


def _server_cpu() -> float:
    return (SERVER.server_cpu_seconds() or 0.0) if SERVER else 0.0


def _timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[Any, float, float]:
    """Best wall time of `repeat` runs, with the CPU seconds of that run (this process
    plus the PostgreSQL server's)."""
    best, cpu, out = float("inf"), 0.0, None
    for _ in range(repeat):
        c0, s0, t0 = cpu_seconds(), _server_cpu(), time.perf_counter()
        out = fn()
        wall = time.perf_counter() - t0
        if SERVER:  # closed backends are counted once the postmaster has reaped them
            time.sleep(0.5)
        if wall < best:
            best, cpu = wall, cpu_seconds() - c0 + _server_cpu() - s0
    return out, best, cpu


def scores_frame(n: int, seed: int = 0) -> pd.DataFrame:
    """A scores table shaped like the scoring output (ids, floats, bands, text, JSON)."""
    rng = np.random.default_rng(seed)
    segments = np.array(
        ["accelerate", "strategic_partnership", "efficient_expansion", "prove_value"]
    )
    bands = np.array(["low", "medium", "high"])
    frame = pd.DataFrame(
        {
            "account_id": [f"acct_{i:07d}" for i in range(n)],
            "name": [f"Account {i}" for i in range(n)],
            "as_of": pd.Timestamp("2026-03-02"),
            "model_version_churn": "7",
            "model_version_expand": "7",
            "p_churn": rng.random(n),
            "p_expand": rng.random(n),
            "p_churn_raw": rng.random(n),
            "p_expand_raw": rng.random(n),
            "churn_band": bands[rng.integers(0, 3, n)],
            "expand_band": bands[rng.integers(0, 3, n)],
            "at_risk": rng.random(n) < 0.1,
            "expansion_ready": rng.random(n) < 0.05,
            "segment": segments[rng.integers(0, 4, n)],
            "maturity_stage": np.array(["Experimenter", "Builder", "Transformer"])[
                rng.integers(0, 3, n)
            ],
            "coverage_current": np.array(["high_touch", "standard", "digital"])[
                rng.integers(0, 3, n)
            ],
            "coverage_recommended": np.array(["high_touch", "standard", "digital"])[
                rng.integers(0, 3, n)
            ],
            "arr": rng.gamma(2, 20_000, n),
            "tam_usd": rng.gamma(2, 400_000, n),
            "tam_known": rng.random(n) < 0.9,
            "priority": rng.gamma(2, 2_000, n),
            "arr_at_risk": rng.gamma(2, 1_000, n),
            "arr_to_gain": rng.gamma(2, 1_000, n),
            "playbook": np.array(["Adoption plan", "Renewal plan", "Seat expansion"])[
                rng.integers(0, 3, n)
            ],
            "reasons_json": '[{"feature": "login_decay", "value": -0.4, "shap": 0.12, '
            '"sentence": "Logins fell 40% against the 60 days before"}]',
        }
    )
    return frame


def bench_in(world: Path, url: str, tmp: Path, repeat: int) -> dict[str, Any]:
    rows = {}

    def parquet_tables() -> None:
        src = open_source(world)
        for t in src.tables:  # materialise like the database path does
            src.con.execute(f"CREATE TABLE m_{t} AS SELECT * FROM raw_{t}")
            rows[t] = src.con.execute(f"SELECT count(*) FROM m_{t}").fetchall()[0][0]
        src.close()

    def postgres_tables() -> None:
        open_source(url).close()

    def parquet_validated() -> None:
        src = open_source(world)
        report = validate(src, now=src.data_end, quarantine_dir=tmp / "q_parquet")
        assert report.ok
        src.close()

    def postgres_validated() -> None:
        src = open_source(url)
        report = validate(src, now=src.data_end, quarantine_dir=tmp / "q_pg")
        assert report.ok
        src.close()

    _, pq_s, pq_cpu = _timed(parquet_tables, repeat)
    total = int(sum(rows.values()))
    _, pg_s, pg_cpu = _timed(postgres_tables, repeat)
    _, pqv_s, pqv_cpu = _timed(parquet_validated, repeat)
    _, pgv_s, pgv_cpu = _timed(postgres_validated, repeat)
    return {
        "rows": total,
        "rows_per_table": rows,
        "postgresql": {
            "read_s": round(pg_s, 2),
            "read_rows_per_s": round(total / pg_s),
            "read_cpu_s": round(pg_cpu, 2),
            "read_validate_s": round(pgv_s, 2),
            "read_validate_rows_per_s": round(total / pgv_s),
            "read_validate_cpu_s": round(pgv_cpu, 2),
            "read_rows_per_cpu_s": round(total / pg_cpu),
        },
        "parquet": {
            "read_s": round(pq_s, 2),
            "read_rows_per_s": round(total / pq_s),
            "read_cpu_s": round(pq_cpu, 2),
            "read_validate_s": round(pqv_s, 2),
            "read_validate_rows_per_s": round(total / pqv_s),
            "read_validate_cpu_s": round(pqv_cpu, 2),
            "read_rows_per_cpu_s": round(total / pq_cpu),
        },
        "postgresql_vs_parquet_read": round(pq_s / pg_s, 3),
        "postgresql_vs_parquet_read_validate": round(pqv_s / pgv_s, 3),
    }


def bench_out(url: str, tmp: Path, n: int, repeat: int) -> dict[str, Any]:
    scores = scores_frame(n)
    day = date(2026, 3, 2)

    def postgresql() -> None:  # replaces the date's rows: every repeat writes n rows
        write_scores_sql(scores, url, day)

    def store() -> None:
        scores_store.write_scores(scores, tmp / "scores", day)

    def parquet() -> None:
        scores.to_parquet(tmp / "scores.parquet", index=False)

    _, pg_s, pg_cpu = _timed(postgresql, repeat)
    _, st_s, st_cpu = _timed(store, repeat)
    _, pq_s, pq_cpu = _timed(parquet, repeat)
    return {
        "rows": n,
        "columns": scores.shape[1],
        "postgresql": {"write_s": round(pg_s, 2), "rows_per_s": round(n / pg_s),
                       "cpu_s": round(pg_cpu, 2), "rows_per_cpu_s": round(n / pg_cpu)},
        "scores_store_parquet_duckdb": {"write_s": round(st_s, 2), "rows_per_s": round(n / st_s),
                                        "cpu_s": round(st_cpu, 2),
                                        "rows_per_cpu_s": round(n / st_cpu)},
        "parquet_file": {"write_s": round(pq_s, 2), "rows_per_s": round(n / pq_s),
                         "cpu_s": round(pq_cpu, 2)},
        "postgresql_vs_scores_store": round(st_s / pg_s, 3),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--accounts", type=int)
    parser.add_argument("--months", type=int)
    parser.add_argument("--score-rows", type=int)
    parser.add_argument("--repeat", type=int, default=2, help="best of N timed runs")
    args = parser.parse_args()
    accounts = args.accounts or (300 if args.small else 2000)
    months = args.months or (8 if args.small else 12)
    n_scores = args.score_rows or (20_000 if args.small else 200_000)
    reason = unavailable_reason()
    if reason:
        emit({"skipped": reason}, indent=None)
        return

    from simulator import simulate
    from simulator.config import SimConfig

    global SERVER
    load_before = load_avg()
    with tempfile.TemporaryDirectory(prefix="nrrcast-bench-wh-") as tmp_name, TempPostgres() as pg:
        SERVER = pg
        tmp = Path(tmp_name)
        world = tmp / "raw"
        _log(f"simulating {accounts} accounts x {months} months")
        simulate(SimConfig(accounts=accounts, months=months, seed=7), world, progress=False)
        _log("loading the world into PostgreSQL")
        _, load_s, _ = _timed(lambda: load_tables(pg.url, world))
        manifest = read_manifest(manifest_path(world))
        import adbc_driver_postgresql.dbapi as pgdb

        with pgdb.connect(pg.url) as con, con.cursor() as cur:
            cur.execute("CREATE TABLE nrrcast_manifest (data_end date)")
            cur.execute(f"INSERT INTO nrrcast_manifest VALUES ('{manifest['data_end']}')")
            con.commit()
        _log("measuring reads")
        reads = bench_in(world, pg.url, tmp, args.repeat)
        _log("measuring writes")
        writes = bench_out(pg.url, tmp, n_scores, args.repeat)
    emit(
        {
            "benchmark": "warehouse",
            "world": {"accounts": accounts, "months": months, "tables": list(TABLES)},
            "setup_load_into_postgresql_s": round(load_s, 2),
            "in": reads,
            "out": writes,
            "baseline": "Parquet on the same world / the Parquet+DuckDB scores store",
            "cpu_s_counts": "this process + the PostgreSQL server (postmaster and backends)",
            "driver": "adbc-driver-postgresql (binary COPY <-> Arrow)",
            "repeat": args.repeat,
            "load_avg_1m_before_after": [load_before[0], load_avg()[0]],
            "cpus": os.cpu_count(),
        }
    )


if __name__ == "__main__":
    main()
