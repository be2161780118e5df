"""Fault tests: a writer killed with SIGKILL inside each write leaves every store readable
and consistent, and the next run completes.

Each writer runs in a subprocess with ``NRRCAST_TEST_PAUSE_AT=<point>``: it signals when it
reaches the point and sleeps there until the test kills it (see `features.storage.pause_point`).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from storage_writers import write

from evaluation import scores_store
from features import storage
from features.build import read_feature_table

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("storage_faults")]

ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 1, 5)

WRITER = str(Path(__file__).resolve().parents[1] / "storage_writers.py")


def _env(point: str | None, signal_file: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.pop(storage.PAUSE_ENV, None)
    if point:
        env[storage.PAUSE_ENV] = point
        env[storage.PAUSE_FILE_ENV] = str(signal_file)
    return env


def run_writer(kind: str, target: Path, arg: str) -> None:
    """Run a writer to completion, in this process (the runs before and after a kill)."""
    write(kind, target, arg)


def start_paused(kind: str, target: Path, arg: str, point: str, tmp: Path) -> subprocess.Popen:
    """Start a writer and return once it sits at `point`."""
    flag = tmp / f"paused-{point}-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, WRITER, kind, str(target), arg],
        env=_env(point, flag),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not flag.exists():
        if proc.poll() is not None:
            raise AssertionError(f"writer ended before {point}: {proc.stderr.read()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"writer never reached {point}")
        time.sleep(0.05)
    return proc


def kill_at(kind: str, target: Path, arg: str, point: str, tmp: Path) -> None:
    """Run a writer, kill -9 it at `point`."""
    proc = start_paused(kind, target, arg, point, tmp)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _hidden_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# --------------------------------------------------------------------------- feature table


@pytest.mark.parametrize(
    ("point", "expect_rows"),
    [("features.staged", 6), ("features.swap", 3), ("features.swapped", 3)],
)
def test_feature_table_survives_a_kill(tmp_path, point, expect_rows):
    out = tmp_path / "features"
    run_writer("features", out, '["2025-03-01", "2025-04-01"]')
    kill_at("features", out, '["2025-05-01"]', point, tmp_path)
    # the reader sees one whole version: the old one until the swap began, then the new
    assert len(read_feature_table(out)) == expect_rows
    run_writer("features", out, '["2025-06-01", "2025-07-01", "2025-08-01"]')  # rerun
    assert len(read_feature_table(out)) == 9
    with duckdb.connect(str(out / "features.duckdb"), read_only=True) as db:
        assert db.execute("SELECT count(*) FROM features").fetchall()[0][0] == 9
    assert _hidden_leftovers(tmp_path) == []
    assert not (tmp_path / ".features.lock").exists()


# --------------------------------------------------------------------------- scores store


def _db_rows(out: Path) -> int:
    with duckdb.connect(str(out / scores_store.DB_FILE), read_only=True) as con:
        return con.execute(
            "SELECT count(*) FROM scores WHERE CAST(as_of AS DATE) = ?", [DAY]
        ).fetchall()[0][0]


@pytest.mark.parametrize(
    ("point", "expect_rows"),
    [
        ("scores.uncommitted", 5),  # before the DuckDB commit: the old scores everywhere
        ("scores.staged", 3),  # committed, nothing swapped yet: rolled forward
        ("scores.swap", 3),  # between the two renames (0 Parquet rows before)
        ("scores.swapped", 3),  # before the old partition was removed
    ],
)
def test_scores_store_survives_a_kill(tmp_path, point, expect_rows):
    out = tmp_path / "scores"
    run_writer("scores", out, "5,0.1")
    kill_at("scores", out, "3,0.9", point, tmp_path)
    # readers see whole, committed scores and Parquet agrees with DuckDB
    assert len(scores_store.read_scores(out, DAY)) == expect_rows
    assert _db_rows(out) == expect_rows
    assert _hidden_leftovers(out) == []
    # the rerun takes over the dead writer's lock and completes
    run_writer("scores", out, "4,0.5")
    got = scores_store.read_scores(out, DAY)
    assert len(got) == _db_rows(out) == 4 and (got["p_churn"] == 0.5).all()
    assert _hidden_leftovers(out) == []
    assert not (out / scores_store.LOCK_FILE).exists()


def test_a_second_score_writer_waits_for_the_first(tmp_path):
    out = tmp_path / "scores"
    run_writer("scores", out, "5,0.1")
    first = start_paused("scores", out, "3,0.9", "scores.uncommitted", tmp_path)
    try:
        t0 = time.monotonic()
        with pytest.raises(
            storage.LockHeldError, match=rf"{re.escape(str(out))}.*pid {first.pid} on "
        ):
            scores_store.write_scores(
                pd.DataFrame({"account_id": ["B"], "as_of": pd.Timestamp(DAY), "p_churn": 0.2}),
                out,
                DAY,
                lock_timeout=0.5,
            )
        assert time.monotonic() - t0 >= 0.5
        # a patient writer waits; it goes ahead once the holder is gone (here: killed)
        result: dict[str, object] = {}

        def patient() -> None:
            try:
                frame = pd.DataFrame(
                    {"account_id": ["B"], "as_of": pd.Timestamp(DAY), "p_churn": 0.2}
                )
                result["path"] = scores_store.write_scores(frame, out, DAY, lock_timeout=60)
            except BaseException as exc:  # noqa: BLE001 - reported below
                result["error"] = exc

        waiter = threading.Thread(target=patient)
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()  # still waiting
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    waiter.join(timeout=60)
    assert "error" not in result, result.get("error")
    got = scores_store.read_scores(out, DAY)
    assert list(got["account_id"]) == ["B"] and _db_rows(out) == 1


# --------------------------------------------------------------------------- quarantine, world, files


@pytest.fixture(scope="module")
def dirty_world(tmp_path_factory) -> Path:
    """A small simulated world plus one event of an unknown account (to be quarantined)."""
    from simulator import SimConfig, simulate

    raw = tmp_path_factory.mktemp("faults_world") / "raw"
    simulate(SimConfig(accounts=30, months=4, seed=5), raw, progress=False)
    part = sorted((raw / "events").glob("*.parquet"))[0]
    one = pq.read_table(part).slice(0, 1)
    one = one.set_column(
        one.schema.get_field_index("account_id"), "account_id", pa.array(["NO_SUCH_ACCOUNT"])
    )
    pq.write_table(one, raw / "events" / "part-zz-extra.parquet")
    return raw


def test_quarantine_survives_a_kill(tmp_path, dirty_world):
    q = tmp_path / "quarantine"
    run_writer("validate", q, str(dirty_world))
    before = pq.read_table(q / "events.parquet")
    assert before.num_rows == 1
    kill_at("validate", q, str(dirty_world), "quarantine.write", tmp_path)
    assert pq.read_table(q / "events.parquet").equals(before)  # the complete previous file
    run_writer("validate", q, str(dirty_world))
    assert pq.read_table(q / "events.parquet").equals(before)
    assert _hidden_leftovers(q) == []  # the dead writer's temp file is gone


@pytest.mark.parametrize("point", ["world.staged", "world.swap", "world.swapped"])
def test_simulated_world_survives_a_kill(tmp_path, point):
    from features.sources import open_source
    from features.validate import validate

    raw = tmp_path / "raw"
    run_writer("world", raw, "1")
    seed_before = json.loads((raw / "manifest.json").read_text())["seed"]
    kill_at("world", raw, "2", point, tmp_path)
    src = open_source(raw)  # the reader repairs the interrupted swap
    report = validate(src, now=src.data_end, quarantine_dir=None)
    src.con.close()
    assert report.ok
    seed_after = json.loads((raw / "manifest.json").read_text())["seed"]
    assert seed_after == (seed_before if point == "world.staged" else 2)
    run_writer("world", raw, "3")
    assert json.loads((raw / "manifest.json").read_text())["seed"] == 3
    assert _hidden_leftovers(tmp_path) == []


def test_thresholds_file_survives_a_kill(tmp_path):
    from evaluation.thresholds_file import load_latest_thresholds

    run_writer("thresholds", tmp_path / "th", "0.2")
    kill_at("thresholds", tmp_path / "th", "0.4", "thresholds.write", tmp_path)
    assert load_latest_thresholds(tmp_path / "th")["churn_threshold"] == 0.2
    run_writer("thresholds", tmp_path / "th", "0.5")
    assert load_latest_thresholds(tmp_path / "th")["churn_threshold"] == 0.5
    assert [p.name for p in (tmp_path / "th").iterdir()] == ["2026Q1.yaml"]


def test_every_pause_point_is_exercised():
    """The points the writers offer, so that a new one gets a kill test too."""
    names = set()
    for path in ["features/build.py", "features/validate.py", "evaluation/scores_store.py",
                 "simulator/world.py", "evaluation/thresholds_file.py",
                 "evaluation/report/render.py"]:  # fmt: skip
        text = (ROOT / path).read_text()
        names |= set(re.findall(r'pause_point\("([a-z_.]+)"\)', text))
        names |= {f"{p}.{s}" for p in re.findall(r'point="([a-z_]+)"\)', text)
                  for s in ("staged", "swap", "swapped")}  # fmt: skip
        names |= set(re.findall(r'point="([a-z_]+\.write)"', text))
    tested = {
        "features.staged", "features.swap", "features.swapped",
        "scores.uncommitted", "scores.staged", "scores.swap", "scores.swapped",
        "quarantine.write", "world.staged", "world.swap", "world.swapped",
        "thresholds.write",
    }  # fmt: skip
    # report.write is the same `atomic_write` as thresholds.write (a report needs a scored book)
    assert names - {"report.write"} <= tested, names - tested
    assert "report.write" in names
