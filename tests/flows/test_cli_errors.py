"""One error boundary in the CLI: expected errors end in one short line and an exit code.

2 for usage and input errors, 1 for failed checks and states that do not allow the run;
the traceback only with ``nrrcast --debug``. Prefect retries only transient I/O.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app

ROOT = Path(__file__).resolve().parents[2]
TABLES = ("accounts", "subscriptions", "users", "events", "tickets", "plans")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("cli_world") / "raw"
    simulate(SimConfig(accounts=60, months=13, seed=12), out, progress=False)
    return out


def _copy(world: Path, dest: Path, *, manifest: bool = True) -> Path:
    dest.mkdir(parents=True)
    for t in TABLES:
        if (world / f"{t}.parquet").exists():
            shutil.copy(world / f"{t}.parquet", dest / f"{t}.parquet")
        elif (world / t).is_dir():
            shutil.copytree(world / t, dest / t)
    if manifest:
        shutil.copy(world / "manifest.json", dest / "manifest.json")
    return dest


def _config(tmp: Path, raw: Path | str, store: dict | None = None, **extra) -> Path:
    paths = {
        "raw": str(raw),
        "features": str(tmp / "features"),
        "scores": str(tmp / "scores"),
        "quarantine": str(tmp / "quarantine"),
        "reports": str(tmp / "reports"),
        "thresholds_dir": str(tmp / "thresholds"),
    }
    if store:
        paths.update(mlflow_uri=store["uri"], mlflow_artifacts=store["artifacts"])
    cfg = {"paths": paths, **extra}
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("nrrcast: error:")]


def _assert_one_line(result, code: int, *needles: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert "Traceback" not in result.output
    lines = _error_lines(result)
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    return lines[0]


# --- input errors: exit 2, one line ----------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "features", "train", "calibrate", "score"])
def test_source_that_does_not_exist(tmp_path, command):
    missing = tmp_path / "no-such-dir"
    result = _run(command, "--source", str(missing), "-c", str(_config(tmp_path, missing)))
    _assert_one_line(result, 2, "source not found", str(missing), "--source")


def test_bad_manifest_names_file_and_key(world, tmp_path):
    src = _copy(world, tmp_path / "src")
    (src / "manifest.json").write_text(json.dumps({"data_end": "July 1st"}))
    cfg = _config(tmp_path, src)
    for command in ("validate", "features"):
        line = _assert_one_line(_run(command, "-c", str(cfg)), 2)
        assert f"{src / 'manifest.json'}: key 'data_end': 'July 1st' is not a date" in line
    (src / "manifest.json").write_text("{oops")
    _assert_one_line(_run("validate", "-c", str(cfg)), 2, "not valid JSON", "manifest.json")


def test_empty_events_table(world, tmp_path):
    """validate said OK and features crashed; both now say what is wrong."""
    src = _copy(world, tmp_path / "src")
    events = pd.read_parquet(next((world / "events").rglob("*.parquet")))
    shutil.rmtree(src / "events")
    events.head(0).to_parquet(src / "events.parquet")
    cfg = _config(tmp_path, src)
    for command in ("validate", "features"):
        _assert_one_line(_run(command, "-c", str(cfg)), 2, "table events has no usable rows")


def test_table_stored_as_file_and_directory(world, tmp_path):
    src = _copy(world, tmp_path / "src")
    shutil.copy(src / "users.parquet", tmp_path / "users.parquet")
    (src / "users").mkdir()
    shutil.copy(tmp_path / "users.parquet", src / "users" / "part-0.parquet")
    result = _run("validate", "-c", str(_config(tmp_path, src)))
    _assert_one_line(result, 2, "'users' is stored more than once")


def test_duckdb_source_that_is_not_a_database(tmp_path):
    db = tmp_path / "book.duckdb"
    db.write_text("not a database")
    result = _run("validate", "--source", str(db), "-c", str(_config(tmp_path, db)))
    _assert_one_line(result, 2, "cannot open as a DuckDB database", str(db))


def test_duckdb_source_locked_by_another_process(world, tmp_path):
    import duckdb

    db = tmp_path / "book.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE accounts (account_id VARCHAR)").close()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb,sys,time; c=duckdb.connect({str(db)!r}); "
         "print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = _run("validate", "--source", str(db), "-c", str(_config(tmp_path, db)))
        _assert_one_line(result, 1, "locked by another process", str(db))
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


def test_other_unusable_sources(tmp_path):
    csv = tmp_path / "accounts.csv"
    csv.write_text("account_id\n")
    _assert_one_line(_run("validate", "--source", str(csv)), 2, "expected a directory")
    _assert_one_line(
        _run("validate", "--source", "mysql://db/book"), 2, "sources are not supported"
    )
    # PostgreSQL is a source: a server that does not answer is one line (transient, exit 1)
    unreachable = f"postgresql://me:secret@/book?host={tmp_path}&port=5999"
    result = _run("validate", "--source", unreachable)
    _assert_one_line(result, 1, "cannot connect to postgresql://me:***@")
    assert "secret" not in result.stdout + result.stderr


def test_manifest_that_is_a_directory(world, tmp_path):
    src = _copy(world, tmp_path / "src", manifest=False)
    (src / "manifest.json").mkdir()
    result = _run("validate", "-c", str(_config(tmp_path, src)))
    _assert_one_line(result, 2, "manifest.json: cannot read the manifest")


def test_history_too_short_for_a_panel(world, tmp_path):
    src = _copy(world, tmp_path / "src", manifest=False)
    start = json.loads((world / "manifest.json").read_text())["start"]
    early = (pd.Timestamp(start) + pd.Timedelta(days=40)).date().isoformat()
    result = _run("features", "-c", str(_config(tmp_path, src)), "--data-end", early)
    _assert_one_line(result, 2, "no snapshot date between", "snapshot_start")


def test_config_with_an_unknown_key(tmp_path, world):
    cfg = _config(tmp_path, world, features={"horizon_dayz": 30})
    result = _run("validate", "-c", str(cfg))
    _assert_one_line(result, 2, "features.horizon_dayz: Extra inputs are not permitted")


def test_config_with_a_python_tag(tmp_path):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f'paths:\n  raw: !!python/object/apply:os.system ["touch {marker}"]\n')
    for command in ("validate", "train"):
        line = _assert_one_line(_run(command, "-c", str(cfg)), 2, "evil.yaml", "line 2")
        assert "python/object" in line
    assert not marker.exists()


def test_config_file_that_does_not_exist(tmp_path):
    _assert_one_line(_run("validate", "-c", str(tmp_path / "nope.yaml")), 2, "nope.yaml")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["validate", "--data-end", "2026-02-30"], "--data-end: '2026-02-30' is not a date"),
        (["score", "--as-of", "tomorrow"], "--as-of: 'tomorrow' is not a date"),
        (["calibrate", "--quarter", "Q9"], "--quarter 'Q9' is not a quarter"),
    ],
)
def test_bad_option_values(world, tmp_path, args, needle):
    cfg = _config(tmp_path, world)
    _assert_one_line(_run(*args, "-c", str(cfg)), 2, needle)


def test_data_end_option_that_disagrees_with_the_manifest(world, tmp_path):
    cfg = _config(tmp_path, world)
    result = _run("validate", "-c", str(cfg), "--data-end", "2020-01-01")
    _assert_one_line(result, 2, "disagrees with data_end", "manifest.json")


# --- failed checks: exit 1, no traceback -----------------------------------------------------


def _broken_source(world: Path, dest: Path) -> Path:
    """accounts without the required `name` column: a contract error, not a quarantine."""
    src = _copy(world, dest)
    pd.read_parquet(src / "accounts.parquet").drop(columns=["name"]).to_parquet(
        src / "accounts.parquet"
    )
    return src


def test_contract_error_in_validate_and_features(world, tmp_path):
    src = _broken_source(world, tmp_path / "src")
    cfg = _config(tmp_path, src)
    result = _run("validate", "-c", str(cfg))
    assert result.exit_code == 1 and "FAILED" in result.stdout and "Traceback" not in result.output
    result = _run("features", "-c", str(cfg))
    _assert_one_line(result, 1, "breaks input contract", "accounts.name: required column missing")


def test_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "nope"
    result = _run("--debug", "validate", "--source", str(missing))
    assert result.exit_code != 0
    assert type(result.exception).__name__ == "PathNotFoundError"
    assert not _error_lines(result)


# --- Prefect retries only transient errors ---------------------------------------------------


def test_retry_condition_only_for_transient_errors():
    from features.errors import ContractError, InputError, MissingModelError, TransientError
    from flows.tasks import is_transient

    assert is_transient(TimeoutError("read timed out"))
    assert is_transient(ConnectionResetError(errno.ECONNRESET, "reset"))
    assert is_transient(OSError(errno.EAGAIN, "try again"))
    assert is_transient(TransientError("socket closed"))
    for exc in (
        ContractError("broken"),
        InputError("bad"),
        MissingModelError("no champion"),
        FileNotFoundError(errno.ENOENT, "missing", "x"),
        PermissionError(errno.EACCES, "denied", "x"),
        ValueError("bug"),
        KeyError("bug"),
    ):
        assert not is_transient(exc), exc


def test_tasks_that_retry_carry_the_condition():
    from flows.score import load_champions
    from flows.tasks import load_and_validate, retry_transient

    for task in (load_and_validate, load_champions):
        assert task.retries == 2 and task.retry_condition_fn is retry_transient


def _nrrcast(tmp: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m flows.cli ...` in a fresh process, as a user runs it (own Prefect home)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "PREFECT_HOME": str(tmp / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    env.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _assert_one_line_process(proc, code: int, *needles: str) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == code, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    assert "Retry 1/" not in out, out[-3000:]  # Prefect's retry notice: none for these errors
    lines = [line for line in proc.stderr.splitlines() if line.startswith("nrrcast: error:")]
    assert len(lines) == 1, proc.stderr[-3000:]
    for needle in needles:
        assert needle in proc.stderr, proc.stderr[-3000:]


@pytest.mark.slow
def test_contract_error_in_train_is_one_line_and_not_retried(world, tmp_path, mlflow_store):
    src = _broken_source(world, tmp_path / "src")
    proc = _nrrcast(tmp_path, "train", "-c", str(_config(tmp_path, src, mlflow_store)))
    _assert_one_line_process(
        proc, 1, "breaks input contract", "accounts.name: required column missing"
    )
    assert proc.stderr.count("input contract v1: FAILED") == 1  # validated once


@pytest.mark.slow
def test_score_without_champion_is_one_line_and_not_retried(world, tmp_path, mlflow_store):
    proc = _nrrcast(tmp_path, "score", "-c", str(_config(tmp_path, world, mlflow_store)))
    _assert_one_line_process(proc, 1, "no 'champion' version", "run `nrrcast train` first")


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_train_and_score_without_manifest(world, tmp_path, mlflow_store, prefect_harness):
    """The first thing a user with their own export meets: no manifest.json.

    train and score used to stop after two retries asking for `--now` (no such option).
    The flows run in-process on the shared Prefect server; the CLI's part (options, the
    boundary) is covered above.
    """
    import mlflow

    from flows.score import score_flow
    from flows.train import train_flow

    src = _copy(world, tmp_path / "src", manifest=False)
    split = {"valid_dates": 1, "calib_dates": 1, "test_dates": 1, "min_train_dates": 2}
    cfg = _config(
        tmp_path,
        src,
        mlflow_store,
        models={
            "split": {**split, "purge": False},
            "lgbm": {"n_estimators": 30, "early_stopping_rounds": 5},
        },
        scoring={"report": False},
    )
    trained = train_flow(config_path=str(cfg))
    assert trained["decisions"]["churn"]["alias"] == "champion"
    tags = mlflow.MlflowClient(mlflow_store["uri"]).get_run(trained["run_id"]).data.tags
    assert tags["data_end_from"] == "data"
    scored = score_flow(config_path=str(cfg))
    end = json.loads((world / "manifest.json").read_text())["data_end"]
    assert scored["as_of"] == end
    assert (tmp_path / "scores" / f"as_of={end}").is_dir()


def test_explain_maps_expected_errors_to_one_line_and_code():
    from features.errors import ContractError, InputError, LockHeldError, StateError
    from flows.cli import explain

    assert explain(InputError("bad", hint="fix it")) == ("bad -> fix it", 2)
    assert explain(ContractError("broken:\n  a.b: x (1 row)"))[1] == 1
    assert explain(StateError("nothing matured")) == ("nothing matured", 1)
    assert explain(LockHeldError("store locked"))[1] == 1
    assert explain(PermissionError(errno.EACCES, "Permission denied", "/out")) == (
        "Permission denied: /out",
        2,
    )
    assert explain(OSError(errno.ENOSPC, "No space left on device", "/out"))[1] == 1
    assert explain(ValueError("a bug")) is None
    assert explain(OSError(errno.EIO, "I/O error")) is None


def test_os_error_from_a_command_is_one_line(world, tmp_path, monkeypatch):
    import flows.commands

    def read_only(*args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(tmp_path / "features"))

    monkeypatch.setattr(flows.commands, "run_features", read_only)
    result = _run("features", "-c", str(_config(tmp_path, world)))
    _assert_one_line(result, 2, "Read-only file system", str(tmp_path / "features"))


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("- a\n- b\n", "top level must be a mapping, got list"),
        ("paths: [unclosed\n", "cannot load the YAML at line 2"),
        ("paths:\n\traw: x\n", "cannot load the YAML at line 2"),
    ],
)
def test_config_that_is_not_a_mapping_or_not_yaml(tmp_path, text, needle):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    _assert_one_line(_run("validate", "-c", str(cfg)), 2, needle, "bad.yaml")


def test_source_directory_without_tables(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = _config(
        tmp_path,
        empty,
    )
    result = _run("validate", "-c", str(cfg), "--data-end", "2026-01-01")
    assert result.exit_code == 1 and "required table missing" in result.stdout
    assert "Traceback" not in result.output
    result = _run("features", "-c", str(cfg), "--data-end", "2026-01-01")
    _assert_one_line(result, 1, "breaks input contract", "events: required table missing")


def test_every_event_after_the_data_end(world, tmp_path):
    src = _copy(world, tmp_path / "src", manifest=False)
    start = json.loads((world / "manifest.json").read_text())["start"]
    result = _run("features", "-c", str(_config(tmp_path, src)), "--data-end", start)
    _assert_one_line(result, 2, "table events has no usable rows")


@pytest.mark.slow
@pytest.mark.xdist_group("prefect")
def test_prefect_retries_a_transient_error_and_not_a_deterministic_one(prefect_harness):
    from prefect import flow, task

    from features.errors import InputError
    from flows.tasks import TRANSIENT_RETRIES

    calls: list[str] = []

    @task(**{**TRANSIENT_RETRIES, "retry_delay_seconds": 0})
    def flaky(kind: str) -> str:
        calls.append(kind)
        if kind == "timeout" and len(calls) < 3:
            raise TimeoutError("read timed out")
        if kind == "input":
            raise InputError("bad input")
        return "ok"

    @flow
    def run(kind: str) -> str:
        return flaky(kind)

    assert run("timeout") == "ok" and calls == ["timeout"] * 3
    calls.clear()
    with pytest.raises(InputError):
        run("input")
    assert calls == ["input"]


def test_a_bug_keeps_its_traceback_and_ctrl_c_is_one_line(world, tmp_path, monkeypatch):
    import flows.commands

    cfg = str(_config(tmp_path, world))

    def bug(*args, **kwargs):
        return 1 / 0

    monkeypatch.setattr(flows.commands, "run_validate", bug)
    result = _run("validate", "-c", cfg)
    assert isinstance(result.exception, ZeroDivisionError)  # not hidden behind one line
    assert not _error_lines(result)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(flows.commands, "run_validate", interrupted)
    result = _run("validate", "-c", cfg)
    assert result.exit_code == 130 and "nrrcast: interrupted" in result.stderr


def test_usage_errors_exit_2():
    assert _run("no-such-command").exit_code == 2
    assert _run("validate", "--source").exit_code == 2
