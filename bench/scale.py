"""Benchmark: how validation + features scale with events, on DuckDB and on Spark local.

Worlds of about 1M, 10M, 100M events come from the simulator (18 months; accounts =
events / 5,000) and are cached under bench/out/world_<size>. The 1B world is the 100M
world tiled ten times with disjoint account, user, subscription and ticket ids
(`tile_world`; its records say ``"tiled_from"``): the simulator would take hours here. For each size
and engine, one child process opens the source, validates it and builds the feature and
label table for the last 18 monthly as_of dates (the same recorded statements on both
engines). The parent measures, per run: wall seconds, CPU seconds of the whole process
tree (the JVM included), peak resident memory of the tree (sampled every 0.2 s from
/proc), and per-event costs; the child reports the validate / features split.

DuckDB runs out of core: ``--duckdb-memory`` is its memory limit and intermediate data
spills to a temporary directory under bench/out. Spark runs ``local[2]`` with
``--spark-memory`` of driver heap (the executor is the driver in local mode).

Targets: DuckDB builds 1B events of features in <= 10 minutes within 16 GB; Spark local
within 3x of DuckDB's wall time at 100M events.

Prints one JSON object: one record per (size, engine), the targets, and the load average
of the machine (it is shared: CPU seconds are the figure load cannot inflate).

Usage::

    .venv/bin/python bench/scale.py                          # 1M, 10M, 100M on both engines
    .venv/bin/python bench/scale.py --sizes 1M --engines spark
    .venv/bin/python bench/scale.py --sizes 1B --engines duckdb
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from features.data_end import manifest_path, read_manifest  # noqa: E402

OUT = ROOT / "bench" / "out"
SIZES = {"1M": 1_000_000, "10M": 10_000_000, "100M": 100_000_000, "1B": 1_000_000_000}
EVENTS_PER_ACCOUNT = 5_000  # over 18 months, in the default simulator config
TARGETS = {
    "duckdb_1B_wall_seconds_max": 600.0,
    "duckdb_1B_peak_rss_gb_max": 16.0,
    "spark_vs_duckdb_wall_ratio_at_100M_max": 3.0,
}


# ------------------------------------------------------------------ measuring a child


def _tree(root: int) -> list[int]:
    """Pids of `root` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _rss_bytes(pids: list[int]) -> int:
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            continue
    return total


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _measure(cmd: list[str], env: dict[str, str], timeout: float | None) -> dict:
    """Run `cmd`, sampling the tree's memory; wall, CPU and peak RSS of the whole tree.

    CPU: the larger of the reaped children's rusage and the sum over every process of
    the tree of its last sampled CPU time (the JVM that pyspark starts is not reaped).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)
    peak = [0]
    cpu_by_pid: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            pids = _tree(proc.pid)
            peak[0] = max(peak[0], _rss_bytes(pids))
            for pid in pids:
                cpu_by_pid[pid] = max(cpu_by_pid.get(pid, 0.0), _cpu_seconds(pid))
            done.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    timed_out = False
    try:
        stdout, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, 9)  # the run we started, and the JVM it started
        stdout, _ = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    reaped = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    cpu = max(reaped, sum(cpu_by_pid.values()))
    record = {
        "ok": proc.returncode == 0 and not timed_out,
        "timed_out_after_seconds": timeout if timed_out else None,
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(cpu, 1),
        "peak_rss_gb": round(peak[0] / 2**30, 2),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if lines:
        record.update(json.loads(lines[-1]))
    return record


# ------------------------------------------------------------------ worlds


TILED = {"1B": ("100M", 10)}
"""Sizes made by tiling a smaller world (base size, copies) rather than simulated: the
simulator wrote 2 of the 18 event months of the 1B world in 24 minutes here (and held
8 GB), far past the half hour a benchmark world may take."""

ID_COLUMNS = ("account_id", "user_id", "subscription_id", "ticket_id")


def world(size: str) -> Path:
    """The cached world of about SIZES[size] events (simulated, or tiled, on first use)."""
    out = OUT / f"world_{size}"
    if (out / "manifest.json").exists():
        return out
    if size in TILED:
        base, copies = TILED[size]
        return tile_world(world(base), out, copies)
    from flows.config import load_config
    from simulator import simulate

    accounts = max(50, SIZES[size] // EVENTS_PER_ACCOUNT)
    cfg = load_config().simulate.model_copy(update={"accounts": accounts, "months": 18})
    simulate(cfg, out, progress=False)
    return out


def _tile(table, copy: int):
    """Copy number `copy` of a table: its ids get the digit `copy` after their letter
    (``A000123`` -> ``A3000123``), so the copies are disjoint books with equal shapes."""
    import pyarrow.compute as pc

    for name in ID_COLUMNS:
        if name in table.column_names:
            col = pc.utf8_replace_slice(table[name], start=1, stop=1, replacement=str(copy))
            table = table.set_column(table.column_names.index(name), name, col)
    return table


def _tile_events(job: tuple[Path, Path, int]) -> int:
    """Write `copies` tiles of one month of events (one file each); returns rows written."""
    import pyarrow.parquet as pq

    part, folder, copies = job
    table = pq.read_table(part)
    for copy in range(copies):
        out = folder / f"{part.stem}-{copy}.parquet"
        pq.write_table(_tile(table, copy), out, write_statistics=["ts", "quantity"])
    return table.num_rows * copies


def tile_world(base: Path, out: Path, copies: int) -> Path:
    """A world `copies` times as large as `base`: every table of accounts (accounts,
    subscriptions, users, tickets, events, truth) repeated with disjoint ids, the shared
    tables (plans, csms) and the dates as they are. Each account of the tiled world
    behaves like its original, so the features computed are those of `base` repeated;
    the work (rows scanned, groups aggregated, rows joined) is `copies` times larger.
    Its manifest says it is tiled (``"tiled_from"``)."""
    from concurrent.futures import ProcessPoolExecutor

    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = out.with_name(out.name + ".tiling")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "events").mkdir(parents=True)
    for path in sorted(base.glob("*.parquet")):
        table = pq.read_table(path)
        if "account_id" in table.column_names:
            table = pa.concat_tables([_tile(table, k) for k in range(copies)])
        pq.write_table(table, tmp / path.name)
    jobs = [(p, tmp / "events", copies) for p in sorted((base / "events").glob("*.parquet"))]
    with ProcessPoolExecutor(max_workers=2) as pool:
        events = sum(pool.map(_tile_events, jobs))
    manifest = read_manifest(manifest_path(base))
    manifest["accounts"] = manifest["accounts"] * copies
    manifest["tables"] = {k: v * copies for k, v in manifest["tables"].items()}
    manifest["tables"].update(csms=manifest["tables"]["csms"] // copies, events=events)
    manifest["tiled_from"] = {"world": base.name, "copies": copies}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    tmp.rename(out)
    return out


# ------------------------------------------------------------------ one run (child)


def _one(args: argparse.Namespace) -> None:
    """Validate and build features once on one engine; print the split as JSON."""
    from features.build import build_feature_table
    from features.config import FeatureConfig
    from features.snapshots import add_months, observation_dates
    from features.sources import open_source
    from features.sqlrun import SqlRunner
    from features.validate import validate

    t0 = time.perf_counter()
    spill = Path(tempfile.mkdtemp(prefix="spill-", dir=OUT))
    if args.engine == "spark":
        from features.spark_engine import open_spark_source, spark_session

        spark = spark_session(
            "local[2]",
            conf={
                "spark.driver.memory": args.spark_memory,
                "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
                "spark.local.dir": str(spill),
            },
        )
        started = time.perf_counter() - t0
        src = open_spark_source(args.source, spark, location=str(spill))
    else:
        import duckdb

        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
        con.execute("SET threads = 2")
        con.execute(f"SET memory_limit = '{args.duckdb_memory}'")
        con.execute(f"SET temp_directory = '{spill}'")
        started = time.perf_counter() - t0
        src = open_source(args.source, con=con)
    t1 = time.perf_counter()
    if args.features_only:  # the simulator's tables are clean: read them as they are
        for table in src.tables:
            src.con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM raw_{table}")
        data_end = src.data_end
        counts = src.con.execute(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM accounts)"
        ).fetchone()
    else:
        report = validate(src, now=src.data_end, quarantine_dir=None)
        report.raise_if_failed()
        data_end = report.data_end
        counts = (report.counts["events"].read, report.counts["accounts"].read)
    t2 = time.perf_counter()
    start = add_months(data_end.replace(day=1), -(args.snapshots - 1))
    dates = observation_dates(start, data_end)
    cfg = FeatureConfig(
        scan_chunk_months=args.scan_chunk_months,
        duckdb_memory_limit=args.duckdb_memory if args.engine == "duckdb" else None,
    )
    run = SqlRunner(src.con)
    table = build_feature_table(src.con, dates, cfg, data_end=data_end, progress=False, runner=run)
    t3 = time.perf_counter()
    steps = sorted(run.timings.items(), key=lambda kv: -kv[1])
    events = counts[0]
    src.close()
    shutil.rmtree(spill, ignore_errors=True)
    print(
        json.dumps(
            {
                "events": events,
                "accounts": counts[1],
                "validated": not args.features_only,
                "as_of_dates": len(dates),
                "feature_rows": len(table),
                "engine_start_seconds": round(started, 1),
                "validate_seconds": round(t2 - t1, 1),
                "features_seconds": round(t3 - t2, 1),
                # wall seconds of the slowest feature steps (a step's appends summed)
                "slowest_steps": {name: round(sec, 1) for name, sec in steps[:8]},
            }
        )
    )


# ------------------------------------------------------------------ driver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1M,10M,100M", help="comma list of 1M,10M,100M,1B")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--duckdb-memory", default="12GB")
    parser.add_argument("--spark-memory", default="10g")
    parser.add_argument("--shuffle-partitions", type=int, default=4, help="2 per core")
    parser.add_argument("--snapshots", type=int, default=18)
    parser.add_argument("--scan-chunk-months", type=int, default=3)
    parser.add_argument(
        "--features-only", action="store_true", help="skip validation (simulated data is clean)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="seconds per run")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--engine", help=argparse.SUPPRESS)
    parser.add_argument("--source", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _one(args)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for size in args.sizes.split(","):
        path = world(size)
        for engine in args.engines.split(","):
            cmd = [
                sys.executable,
                __file__,
                "--one",
                f"--engine={engine}",
                f"--source={path}",
                f"--duckdb-memory={args.duckdb_memory}",
                f"--spark-memory={args.spark_memory}",
                f"--shuffle-partitions={args.shuffle_partitions}",
                f"--snapshots={args.snapshots}",
                f"--scan-chunk-months={args.scan_chunk_months}",
                *(["--features-only"] if args.features_only else []),
            ]
            rec = {"size": size, "engine": engine, **_measure(cmd, env, args.timeout)}
            tiled = read_manifest(manifest_path(path)).get("tiled_from")
            if tiled:
                rec["tiled_from"] = tiled
            if rec.get("events"):
                rec["ns_per_event_wall"] = round(1e9 * rec["wall_seconds"] / rec["events"], 1)
                rec["ns_per_event_cpu"] = round(1e9 * rec["cpu_seconds"] / rec["events"], 1)
            runs.append(rec)
            print(json.dumps(rec), file=sys.stderr, flush=True)
    by = {(r["size"], r["engine"]): r for r in runs}
    checks = {}
    if ("1B", "duckdb") in by:
        r = by[("1B", "duckdb")]
        checks["duckdb_1B_wall"] = r["wall_seconds"] <= TARGETS["duckdb_1B_wall_seconds_max"]
        checks["duckdb_1B_memory"] = r["peak_rss_gb"] <= TARGETS["duckdb_1B_peak_rss_gb_max"]
    if ("100M", "duckdb") in by and ("100M", "spark") in by:
        ratio = by[("100M", "spark")]["wall_seconds"] / by[("100M", "duckdb")]["wall_seconds"]
        checks["spark_vs_duckdb_100M_ratio"] = round(ratio, 2)
        checks["spark_within_3x_at_100M"] = (
            ratio <= TARGETS["spark_vs_duckdb_wall_ratio_at_100M_max"]
        )
    print(
        json.dumps(
            {
                "bench": "scale",
                "runs": runs,
                "targets": TARGETS,
                "checks": checks,
                "machine": {"cpus": os.cpu_count(), "loadavg_end": os.getloadavg()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
