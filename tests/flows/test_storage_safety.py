"""nrrcast never deletes or overwrites what it did not write, survives failed swaps and
commits with the original error, and one writer at a time gets into a store."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from evaluation import scores_store
from features import storage
from features.build import read_feature_table, write_feature_table

pytestmark = pytest.mark.xdist_group("storage_safety")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="session")
def small_world(tmp_path_factory) -> Path:
    """A 40-account, 8-month simulated world (contract tables + manifest), made once."""
    from simulator import SimConfig, simulate

    out = tmp_path_factory.mktemp("storage_world") / "raw"
    simulate(SimConfig(accounts=40, months=8, seed=3), out, progress=False)
    return out


def _tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its content hash: proof that nothing changed."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _scores(as_of: str, n: int = 5, p: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {"account_id": [f"A{i}" for i in range(n)], "as_of": pd.Timestamp(as_of), "p_churn": p}
    )


def _features(days=("2025-03-01", "2025-04-01"), n: int = 3) -> pd.DataFrame:
    rows = [
        {"account_id": f"A{i}", "as_of": pd.Timestamp(d), "x": float(i)}
        for d in days
        for i in range(n)
    ]
    frame = pd.DataFrame(rows)
    frame["as_of"] = frame["as_of"].astype("datetime64[us]")
    return frame


def _db_count(out: Path, as_of: date | None = None) -> int:
    with duckdb.connect(str(out / scores_store.DB_FILE), read_only=True) as con:
        if as_of is None:
            return con.execute("SELECT count(*) FROM scores").fetchall()[0][0]
        return con.execute(
            "SELECT count(*) FROM scores WHERE CAST(as_of AS DATE) = ?", [as_of]
        ).fetchall()[0][0]


def _hidden(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and ".tmp-" in p.name
                  or ".old-" in p.name)  # fmt: skip


# --------------------------------------------------------------------------- quarantine


def test_validate_refuses_quarantine_inside_source(small_world, tmp_path, monkeypatch):
    from flows.commands import run_validate

    raw = tmp_path / "raw"
    shutil.copytree(small_world, raw)
    before = _tree(raw)
    monkeypatch.chdir(tmp_path)
    for target in (raw, tmp_path, raw / "events"):  # the source, its parent, inside it
        with pytest.raises(storage.UnsafePathError, match="overlaps the source"):
            run_validate(None, source=raw, quarantine=target)
    assert _tree(raw) == before


def test_cli_validate_with_quarantine_equal_to_source_keeps_the_source(
    small_world, tmp_path, monkeypatch
):
    """The reported case, literally: `nrrcast validate --source raw --quarantine raw`."""
    from typer.testing import CliRunner

    from flows.cli import app

    shutil.copytree(small_world, tmp_path / "raw")
    before = _tree(tmp_path / "raw")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["validate", "--source", "raw", "--quarantine", "raw"])
    assert result.exit_code != 0
    assert "overlaps the source" in str(result.exception) + result.output
    assert _tree(tmp_path / "raw") == before


def test_validate_refuses_quarantine_with_foreign_files(small_world, tmp_path, monkeypatch):
    from flows.commands import run_validate

    monkeypatch.chdir(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "accounts.parquet").write_bytes(b"my own file")
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(storage.UnsafePathError, match="not written by nrrcast"):
        run_validate(None, source=small_world, quarantine=mine)
    assert (mine / "accounts.parquet").read_bytes() == b"my own file"
    assert (mine / "notes.txt").read_text() == "keep me"


def test_quarantine_in_new_or_empty_dir_is_marked_and_reused(small_world, tmp_path, monkeypatch):
    from flows.commands import run_validate

    monkeypatch.chdir(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    for target in (empty, tmp_path / "new" / "q"):
        assert run_validate(None, source=small_world, quarantine=target)
        assert json.loads((target / storage.MARKER).read_text())["kind"] == "quarantine"
        assert run_validate(None, source=small_world, quarantine=target)  # ours: reused


# --------------------------------------------------------------------------- feature table


def test_features_command_refuses_out_holding_other_files(small_world, tmp_path, monkeypatch):
    """`nrrcast features --out data` where data/ holds raw/ and a notes file deleted it all."""
    import features.build as build
    from flows.commands import run_features

    data = tmp_path / "data"
    shutil.copytree(small_world, data / "raw")
    (data / "notes.txt").write_text("my notes")
    before = _tree(data)
    monkeypatch.chdir(tmp_path)

    def expensive(*a, **k):
        raise AssertionError("the feature work started before the output was checked")

    monkeypatch.setattr(build, "build_feature_table", expensive)
    with pytest.raises(storage.UnsafePathError):
        run_features(None, source=data / "raw", out=data)
    with pytest.raises(storage.UnsafePathError):  # `--out .`: the working directory
        run_features(None, source=data / "raw", out=Path("."))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("x")
    with pytest.raises(storage.UnsafePathError, match="not written by nrrcast"):
        run_features(None, source=data / "raw", out=other)
    assert _tree(data) == before


def test_feature_table_replace_refuses_files_added_by_someone_else(tmp_path):
    out = tmp_path / "features"
    write_feature_table(_features(), out)
    assert json.loads((out / storage.MARKER).read_text())["kind"] == "features"
    (out / "README.md").write_text("my notes about these features")
    with pytest.raises(storage.UnsafePathError, match="README.md"):
        write_feature_table(_features(days=("2025-05-01",)), out)
    assert (out / "README.md").read_text() == "my notes about these features"
    assert len(read_feature_table(out)) == 6


def test_feature_table_written_before_markers_is_adopted(tmp_path):
    out = tmp_path / "features"
    write_feature_table(_features(), out)
    (out / storage.MARKER).unlink()  # as written by an earlier version
    write_feature_table(_features(days=("2025-05-01",)), out)
    assert len(read_feature_table(out)) == 3


def test_feature_swap_failing_between_renames_keeps_the_table(tmp_path, monkeypatch):
    """The second rename fails (e.g. the process is stopped there): the table stays readable."""
    out = tmp_path / "features"
    write_feature_table(_features(), out)
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    monkeypatch.setattr(Path, "rename", lambda self, dst: second_fails(self, dst))
    with pytest.raises(OSError, match="No space left"):
        write_feature_table(_features(days=("2025-05-01",)), out)
    monkeypatch.undo()
    assert len(read_feature_table(out)) == 6
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_new_partitions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_feature_table(_features(), tmp_path / "features")
        scores_store.write_scores(_scores("2026-01-05"), tmp_path / "scores", date(2026, 1, 5))
    finally:
        os.umask(old)
    dirs = [
        tmp_path / "features",
        tmp_path / "features" / "as_of=2025-03-01",
        tmp_path / "scores" / "as_of=2026-01-05",
    ]
    for d in dirs:
        assert stat.S_IMODE(d.stat().st_mode) == 0o755, d
    part = tmp_path / "scores" / "as_of=2026-01-05" / "part-0.parquet"
    assert stat.S_IMODE(part.stat().st_mode) == 0o644


# --------------------------------------------------------------------------- scores store


def test_scores_store_refuses_a_directory_it_did_not_write(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "budget.xlsx").write_bytes(b"x")
    with pytest.raises(storage.UnsafePathError, match="budget.xlsx"):
        scores_store.write_scores(_scores("2026-01-05"), mine, date(2026, 1, 5))
    assert sorted(p.name for p in mine.iterdir()) == ["budget.xlsx"]


def test_scores_swap_failing_between_renames_keeps_the_partition(tmp_path, monkeypatch):
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    real = os.replace
    calls = []

    def second_fails(src, dst):
        calls.append(dst)
        if Path(dst).name == "as_of=2026-01-05" and "old" not in Path(src).name:
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(os, "replace", second_fails)
    with pytest.raises(OSError, match="Input/output error"):
        scores_store.write_scores(_scores("2026-01-05", n=3, p=0.9), out, date(2026, 1, 5))
    monkeypatch.undo()
    # DuckDB committed the new rows before the swap failed: readers must not see 0 rows,
    # and after recovery both stores agree
    got = scores_store.read_scores(out, date(2026, 1, 5))
    assert len(got) in (3, 5)
    scores_store.write_scores(_scores("2026-01-12"), out, date(2026, 1, 12))  # a later run
    got = scores_store.read_scores(out, date(2026, 1, 5))
    assert len(got) == _db_count(out, date(2026, 1, 5)) == 3
    assert not _hidden(out)


class _FailingCommit:
    """A DuckDB connection whose COMMIT fails the way a full disk does: the transaction is
    rolled back by DuckDB, so a later ROLLBACK finds no transaction."""

    def __init__(self, con):
        self._con = con

    def execute(self, sql, *args):
        if sql.strip().upper() == "COMMIT":
            self._con.execute("ROLLBACK")
            raise duckdb.IOException("IO Error: Could not write file: No space left on device")
        return self._con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def test_failed_commit_reports_the_original_error_and_cleans_up(tmp_path, monkeypatch):
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: _FailingCommit(real(*a, **k)))
    with pytest.raises(duckdb.IOException, match="No space left on device"):
        scores_store.write_scores(_scores("2026-01-05", p=0.9), out, date(2026, 1, 5))
    monkeypatch.undo()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") and "-" in p.name]
    kept = scores_store.read_scores(out, date(2026, 1, 5))
    assert len(kept) == 5 and (kept["p_churn"] == 0.1).all()
    assert _db_count(out, date(2026, 1, 5)) == 5


def test_cleanup_failure_is_logged_not_raised(caplog):
    def broken():
        raise RuntimeError("cannot rollback - no transaction is active")

    with pytest.raises(ValueError, match="the real error"):
        try:
            raise ValueError("the real error")
        except ValueError:
            storage.cleanup(broken, "rollback")
            raise
    assert "no transaction is active" in caplog.text


_HOLD_DB = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(60)
"""


def test_scores_database_open_elsewhere_gives_a_clear_error(tmp_path):
    """Another process (a notebook, a second run) holds scores.duckdb: no raw lock error."""
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_DB, str(out / scores_store.DB_FILE)], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"ready"
        t0 = time.monotonic()
        with pytest.raises(storage.LockHeldError, match=rf"scores\.duckdb.*pid {holder.pid}"):
            scores_store.write_scores(
                _scores("2026-01-05", p=0.9), out, date(2026, 1, 5), lock_timeout=1.0
            )
        assert time.monotonic() - t0 >= 1.0  # it waited for the holder before giving up
    finally:
        holder.kill()
        holder.wait()
    kept = scores_store.read_scores(out, date(2026, 1, 5))
    assert (kept["p_churn"] == 0.1).all()
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]


def test_second_writer_waits_then_refuses_naming_the_holder(tmp_path):
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    with storage.StoreLock(out / scores_store.LOCK_FILE, what=str(out), timeout=0):
        # another process would see the lock: simulate by dropping this process's re-entry
        held = storage._HELD.copy()
        storage._HELD.clear()
        try:
            with pytest.raises(storage.LockHeldError, match=rf"pid {os.getpid()} on "):
                scores_store.write_scores(
                    _scores("2026-01-05", p=0.9), out, date(2026, 1, 5), lock_timeout=0.3
                )
        finally:
            storage._HELD.update(held)


# --------------------------------------------------------------------------- recovery states


def _state(root: Path, names: dict[str, str]) -> Path:
    """Build a directory state: name -> content of its `v` file."""
    for name, version in names.items():
        (root / name).mkdir()
        (root / name / "v").write_text(version)
    return root / "t"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"t": "old", ".t.tmp-1-ab": "new"}, "old"),  # killed while staging: discard
        ({".t.old-1-ab": "old", ".t.tmp-1-ab": "new"}, "new"),  # between the renames: forward
        ({"t": "new", ".t.old-1-ab": "old"}, "new"),  # before removing the old one
        ({".t.old-1-ab": "old"}, "old"),  # staging lost: back
        ({".t.tmp-1-ab": "new"}, None),  # first write, not committed: nothing
    ],
    ids=["killed-staging", "between-renames", "before-removing-old", "staging-lost", "first-write"],
)
def test_recover_is_deterministic(tmp_path, names, expected):
    final = _state(tmp_path, names)
    storage.recover(final)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if expected is None else ["t"])
    if expected is not None:
        assert (final / "v").read_text() == expected
    assert storage.recover(final) == []  # idempotent


def test_recover_with_an_external_commit_rolls_forward(tmp_path):
    final = _state(tmp_path, {"t": "old", ".t.tmp-1-ab": "new"})
    storage.recover(final, committed=lambda wid: wid == "1-ab")
    assert (final / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_reader_sees_the_previous_version_during_an_interrupted_swap(tmp_path):
    out = tmp_path / "features"
    write_feature_table(_features(), out)
    os.replace(out, tmp_path / ".features.old-1-ab")  # a kill right after the first rename
    assert len(read_feature_table(out)) == 6  # and the reader repaired it
    assert out.is_dir() and not (tmp_path / ".features.old-1-ab").exists()


# --------------------------------------------------------------------------- files


def test_atomic_write_leaves_no_temp_and_follows_umask(tmp_path):
    from evaluation.thresholds_file import thresholds_to_yaml

    old = os.umask(0o022)
    try:
        path = thresholds_to_yaml(
            {"quarter": "2026Q1", "churn_threshold": 0.2, "expand_threshold": 0.3}, tmp_path
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["2026Q1.yaml"]


def test_simulator_refuses_an_export_that_only_has_a_manifest(tmp_path):
    """A company export with manifest.json (the contract's) is not a simulated world."""
    from simulator import SimConfig, simulate

    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps({"data_end": "2026-01-01"}))
    (export / "accounts.csv").write_text("account_id,name\nA1,Acme\n")
    before = _tree(export)
    with pytest.raises((storage.UnsafePathError, FileExistsError)):
        simulate(SimConfig(accounts=20, months=4, seed=1), export, progress=False)
    assert _tree(export) == before


# --------------------------------------------------------------------------- up-front checks


@pytest.fixture()
def read_only_dir(tmp_path):
    """A directory this process cannot write into, even as root (immutable attribute)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    immutable = False
    try:
        (ro / "probe").touch()
    except OSError:
        pass
    else:
        (ro / "probe").unlink()
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(ro)]).returncode:
            pytest.skip("cannot make a read-only directory here")
        immutable = True
    yield ro
    if immutable:
        subprocess.run(["chattr", "-i", str(ro)], check=True)
    os.chmod(ro, 0o755)


def test_score_checks_its_outputs_are_writable_before_the_work(
    tmp_path, read_only_dir, monkeypatch
):
    import flows.score as score

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"paths:\n  scores: {read_only_dir / 'scores'}\n")

    def too_late(*a, **k):
        raise AssertionError("the scoring work started before the outputs were checked")

    monkeypatch.setattr(score, "load_champions", too_late)
    monkeypatch.setattr(score, "load_and_validate", too_late)
    with pytest.raises(storage.NotWritableError, match="not writable"):
        score.score_flow.fn(config_path=str(cfg))
    cfg.write_text(f"paths:\n  reports: {read_only_dir}\n  scores: {tmp_path / 's'}\n")
    with pytest.raises(storage.NotWritableError, match="report"):
        score.score_flow.fn(config_path=str(cfg))


def test_write_scores_to_a_read_only_dir_is_one_clear_error(read_only_dir):
    with pytest.raises(storage.NotWritableError, match=str(read_only_dir)):
        scores_store.write_scores(_scores("2026-01-05"), read_only_dir / "s", date(2026, 1, 5))


# --------------------------------------------------------------------------- more refusals


def test_outputs_of_another_kind_or_files_are_refused(tmp_path):
    storage.claim_dir(tmp_path / "features", "features")
    with pytest.raises(storage.UnsafePathError, match="holds nrrcast features output"):
        storage.claim_dir(tmp_path / "features", "quarantine")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(storage.UnsafePathError, match="is a file"):
        storage.claim_dir(tmp_path / "a_file", "scores")
    with pytest.raises(storage.UnsafePathError, match="overlaps the source"):
        storage.claim_dir(tmp_path / "src" / "out", "features", keep_clear_of=[tmp_path / "src"])


def test_features_out_inside_or_equal_to_the_source_is_refused(small_world, tmp_path):
    from features.build import check_feature_out

    raw = tmp_path / "raw"
    shutil.copytree(small_world, raw)
    for out in (raw, raw / "features", tmp_path):
        with pytest.raises(storage.UnsafePathError):
            check_feature_out(out, source=raw)
    assert not (raw / "features").exists()


def test_quarantine_written_before_markers_is_adopted_only_with_reason_column(tmp_path):
    from features.validate import claim_quarantine_dir

    old = tmp_path / "old_quarantine"
    old.mkdir()
    pd.DataFrame({"account_id": ["A"], "reason": ["negative mrr"]}).to_parquet(
        old / "subscriptions.parquet"
    )
    claim_quarantine_dir(old)
    assert (old / storage.MARKER).exists()
    export = tmp_path / "export"
    export.mkdir()
    pd.DataFrame({"account_id": ["A"], "mrr": [10.0]}).to_parquet(export / "subscriptions.parquet")
    with pytest.raises(storage.UnsafePathError, match="not written by nrrcast"):
        claim_quarantine_dir(export)
    assert not (export / storage.MARKER).exists()


def test_lock_left_by_a_dead_run_is_taken_over(tmp_path, caplog):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    lock = tmp_path / ".store.lock"
    lock.write_text(json.dumps({"pid": int(dead.stdout), "host": "h", "since": "t"}))
    with storage.StoreLock(lock, what="store", timeout=0):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert f"pid {int(dead.stdout)}" in caplog.text and "took over" in caplog.text
    assert not lock.exists()  # a clean release leaves nothing behind


def test_lock_is_reentrant_within_a_process(tmp_path):
    lock = tmp_path / ".store.lock"
    with storage.StoreLock(lock, what="store", timeout=0):
        with storage.StoreLock(lock, what="store", timeout=0):
            pass
        assert lock.exists()
    assert not lock.exists()


def test_second_feature_writer_waits_then_names_the_holder(tmp_path):
    out = tmp_path / "features"
    write_feature_table(_features(), out)
    with storage.StoreLock(storage.lock_path(out), what="features", timeout=0):
        held = storage._HELD.copy()
        storage._HELD.clear()  # as if another process held it
        try:
            with pytest.raises(storage.LockHeldError, match=rf"pid {os.getpid()} on "):
                write_feature_table(_features(days=("2025-05-01",)), out, lock_timeout=0.2)
        finally:
            storage._HELD.update(held)
    assert len(read_feature_table(out)) == 6


def test_read_only_quarantine_is_one_clear_error(small_world, read_only_dir):
    from features.sources import open_source
    from features.validate import validate

    src = open_source(small_world)
    with pytest.raises(storage.NotWritableError, match="not writable"):
        validate(src, now=src.data_end, quarantine_dir=read_only_dir / "q")
    with pytest.raises(storage.NotWritableError, match="not writable"):
        validate(src, now=src.data_end, quarantine_dir=read_only_dir)
    src.con.close()


def test_score_refuses_outputs_inside_the_source_before_the_work(
    small_world, tmp_path, monkeypatch
):
    import flows.score as score

    def too_late(*a, **k):
        raise AssertionError("the scoring work started before the outputs were checked")

    monkeypatch.setattr(score, "load_champions", too_late)
    raw = tmp_path / "raw"
    shutil.copytree(small_world, raw)
    before = _tree(raw)
    cfg = tmp_path / "cfg.yaml"
    for paths in (
        {"scores": raw / "scores", "reports": tmp_path / "r"},
        {"scores": tmp_path / "s", "reports": raw},
    ):
        cfg.write_text("paths:\n" + "".join(f"  {k}: {v}\n" for k, v in paths.items()))
        with pytest.raises(storage.UnsafePathError, match="overlaps the source"):
            score.score_flow.fn(config_path=str(cfg), source=str(raw))
    assert _tree(raw) == before


def test_scores_store_of_an_earlier_version_is_adopted(tmp_path):
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    (out / storage.MARKER).unlink()
    (out / ".staging-abc123").mkdir()  # what a crash of an earlier version left
    scores_store.write_scores(_scores("2026-01-12"), out, date(2026, 1, 12))
    assert len(scores_store.read_scores(out)) == 10


def test_a_read_racing_a_swap_reads_again(tmp_path, monkeypatch):
    out = tmp_path / "scores"
    scores_store.write_scores(_scores("2026-01-05"), out, date(2026, 1, 5))
    real = pd.read_parquet
    calls = []

    def moved_away_once(path, *a, **k):
        calls.append(path)
        if len(calls) == 1:  # the partition was swapped between listing and reading
            raise FileNotFoundError(path)
        return real(path, *a, **k)

    monkeypatch.setattr(pd, "read_parquet", moved_away_once)
    assert len(scores_store.read_scores(out, date(2026, 1, 5))) == 5
    assert len(calls) == 2
