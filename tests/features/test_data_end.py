"""One rule for the data's end in every command, and rows after it quarantined by all alike.

manifest.json beside the tables, else --data-end, else the day after the latest timestamp
(with a notice). Bad manifests are clear errors naming the file and the key.
"""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import yaml

from features.data_end import (
    declared_data_end,
    manifest_data_end,
    parse_day,
    read_manifest,
)
from features.errors import InputError, PathNotFoundError
from features.sources import open_source
from features.validate import validate_until
from flows import tasks as _tasks  # noqa: F401  (Prefect sets up logging on import: before caplog)

TABLES = ("accounts", "subscriptions", "users", "events", "tickets", "plans")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("de_world") / "raw"
    simulate(SimConfig(accounts=60, months=13, seed=11), out, progress=False)
    return out


def _manifest_end(world: Path) -> date:
    return date.fromisoformat(json.loads((world / "manifest.json").read_text())["data_end"])


def _copy(world: Path, dest: Path, *, manifest: bool = True) -> Path:
    dest.mkdir(parents=True)
    for t in TABLES:
        src = world / f"{t}.parquet"
        if src.exists():
            shutil.copy(src, dest / src.name)
        elif (world / t).is_dir():
            shutil.copytree(world / t, dest / t)
    if manifest:
        shutil.copy(world / "manifest.json", dest / "manifest.json")
    return dest


def _late_events(world: Path, day: date, n: int = 7) -> pd.DataFrame:
    con = duckdb.connect()
    ev = con.execute(
        f"SELECT * FROM read_parquet('{world}/events/**/*.parquet') ORDER BY ts LIMIT {n}"
    ).df()
    con.close()
    ev["ts"] = pd.Timestamp(day) + pd.Timedelta(hours=3)
    return ev


def _duckdb_source(world: Path, dest: Path, late: pd.DataFrame) -> Path:
    """A DuckDB file with the world's tables plus `late` events, manifest.json beside it."""
    dest.mkdir(parents=True)
    db = dest / "book.duckdb"
    con = duckdb.connect(str(db))
    for t in TABLES:
        if (world / f"{t}.parquet").exists():
            con.execute(f"CREATE TABLE {t} AS SELECT * FROM read_parquet('{world}/{t}.parquet')")
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{world}/events/**/*.parquet')")
    con.register("late", late)
    con.execute("INSERT INTO events SELECT * FROM late")
    con.close()
    shutil.copy(world / "manifest.json", dest / "manifest.json")
    return db


def _config(tmp: Path, **paths: str) -> Path:
    cfg = {
        "paths": {
            "features": str(tmp / "features"),
            "quarantine": str(tmp / "quarantine"),
            **paths,
        }
    }
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _quarantined(qdir: Path, table: str) -> int:
    f = qdir / f"{table}.parquet"
    return len(pd.read_parquet(f)) if f.exists() else 0


# --- the DuckDB-file case: validate quarantined late events, features kept them -------------


def test_duckdb_source_events_after_manifest_end_quarantined_by_validate_and_features(
    world, tmp_path
):
    from flows.commands import run_features, run_validate

    end = _manifest_end(world)
    late = _late_events(world, end + timedelta(days=10))
    db = _duckdb_source(world, tmp_path / "src", late)

    cfg_v = _config(tmp_path / "v")
    run_validate(cfg_v, source=db, quarantine=tmp_path / "v" / "quarantine")
    by_validate = _quarantined(tmp_path / "v" / "quarantine", "events")
    assert by_validate == len(late)

    cfg_f = _config(tmp_path / "f")
    run_features(cfg_f, source=db, out=tmp_path / "f" / "features")
    assert _quarantined(tmp_path / "f" / "quarantine", "events") == by_validate


def test_every_command_opens_the_same_clean_rows(world, tmp_path):
    """validate (plain command) and the flows' open_validated agree on the clean events."""
    from flows.tasks import open_validated

    end = _manifest_end(world)
    late = _late_events(world, end + timedelta(days=3), n=5)
    db = _duckdb_source(world, tmp_path / "src", late)
    loaded = open_validated(db, tmp_path / "q")
    with loaded.source:
        assert loaded.data_end == end and loaded.data_end_from == "manifest"
        latest = loaded.source.con.execute("SELECT max(ts) FROM events").fetchone()[0]
        assert latest < pd.Timestamp(end)
        assert loaded.report.counts["events"].quarantined == 5


# --- no manifest: inferred with a notice, or the --data-end option ---------------------------


def test_no_manifest_infers_the_day_after_the_latest_timestamp(world, tmp_path, caplog):
    """train and score used to stop with 'pass --now' (an option that does not exist)."""
    from flows.tasks import open_validated

    src = _copy(world, tmp_path / "src", manifest=False)
    with caplog.at_level(logging.WARNING, logger="nrrcast.data_end"):
        loaded = open_validated(src, tmp_path / "q")
    with loaded.source:
        latest = loaded.source.con.execute("SELECT max(ts) FROM events").fetchone()[0]
    assert loaded.data_end_from == "data"
    assert loaded.data_end == pd.Timestamp(latest).date() + timedelta(days=1)
    assert loaded.data_end == _manifest_end(world)  # the simulator's data ends at its manifest
    assert "data_end not declared" in caplog.text and "--data-end" in caplog.text


def test_data_end_option_without_manifest_quarantines_later_rows(world, tmp_path):
    from flows.tasks import open_validated

    src = _copy(world, tmp_path / "src", manifest=False)
    cut = _manifest_end(world) - timedelta(days=30)
    loaded = open_validated(src, tmp_path / "q", cut.isoformat())
    with loaded.source:
        latest = loaded.source.con.execute("SELECT max(ts) FROM events").fetchone()[0]
    assert loaded.data_end == cut and loaded.data_end_from == "option"
    assert latest < pd.Timestamp(cut)
    assert loaded.report.counts["events"].quarantined > 0
    assert loaded.report.data_end_from == "option"


def test_option_that_disagrees_with_the_manifest_is_refused(world, tmp_path):
    src = _copy(world, tmp_path / "src")
    end = _manifest_end(world)
    with open_source(src) as s, pytest.raises(InputError, match="disagrees with data_end"):
        validate_until(s, option=end - timedelta(days=1), today=date.today(), quarantine_dir=None)
    with open_source(src) as s:  # the same day is not a conflict
        _, got = validate_until(s, option=end, today=date.today(), quarantine_dir=None)
    assert got.origin == "manifest"


def test_inferred_end_ignores_rows_at_or_after_today(world, tmp_path):
    """Future rows are quarantined against the caller's clock, not taken as the data's end."""
    src = _copy(world, tmp_path / "src", manifest=False)
    end = _manifest_end(world)
    today = end + timedelta(days=5)
    late = _late_events(world, today + timedelta(days=2), n=4)
    late.to_parquet(src / "events" / "zz-late.parquet")
    with open_source(src) as s:
        report, got = validate_until(s, today=today, quarantine_dir=None)
    assert got.day == end and got.origin == "data"
    assert report.counts["events"].quarantined == 4


def test_source_without_any_timestamp_needs_the_option(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    with open_source(src) as s, pytest.raises(InputError, match="pass --data-end"):
        validate_until(s, today=date(2026, 1, 1), quarantine_dir=None)


# --- bad manifests: clear errors naming the file and key --------------------------------------


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", r"manifest.json: the manifest is not valid JSON \(line 1"),
        ("[1, 2]", "expected a JSON object in the manifest, got list"),
        ('{"data_end": "2026-31-01"}', "key 'data_end': '2026-31-01' is not a date"),
        ('{"data_end": 20260701}', "key 'data_end': 20260701 is not a date"),
        ('{"data_end": "2026-07-01T10:00:00"}', "is not midnight"),
        (b"\xff\xfe{}", "not UTF-8"),
    ],
)
def test_bad_manifest_is_an_input_error_naming_file_and_key(tmp_path, content, match):
    path = tmp_path / "manifest.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(InputError, match=match):
        open_source(tmp_path)


def test_manifest_readers():
    assert read_manifest(Path("/nonexistent/manifest.json")) == {}
    assert manifest_data_end({}, "m") is None
    assert manifest_data_end({"data_end": "2026-07-01"}, "m") == date(2026, 7, 1)
    assert manifest_data_end({"data_end": "2026-07-01T00:00:00"}, "m") == date(2026, 7, 1)
    assert parse_day(" 2026-07-01 ", "x") == date(2026, 7, 1)
    assert declared_data_end(None, "m", None) is None
    assert declared_data_end(None, "m", "2026-01-05").origin == "option"


def test_missing_source_is_a_path_not_found_error(tmp_path):
    with pytest.raises(PathNotFoundError, match="source not found") as info:
        open_source(tmp_path / "nope")
    assert isinstance(info.value, FileNotFoundError)  # callers catching the old type still do


# --- an empty events table: validate said OK, features crashed --------------------------------


def test_empty_events_is_a_clear_error_in_validate_and_features(world, tmp_path):
    from flows.commands import run_features, run_validate

    src = _copy(world, tmp_path / "src")
    shutil.rmtree(src / "events")
    _late_events(world, date(2026, 1, 1)).head(0).to_parquet(src / "events.parquet")
    cfg = _config(tmp_path)
    with pytest.raises(InputError, match="table events has no usable rows"):
        run_validate(cfg, source=src)
    with pytest.raises(InputError, match="table events has no usable rows"):
        run_features(cfg, source=src)


def test_only_one_module_parses_manifest_json():
    """The rule lives in features/data_end.py; a second parser would drift from it.

    The simulator reads back the manifest it wrote itself (start, months, decisions) and
    does not depend on the libraries, so it is left out.
    """
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for folder in ("features", "flows", "models", "evaluation", "bench"):
        for path in (root / folder).rglob("*.py"):
            if path.name == "data_end.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), start=1):
                if "json.load" in line and "manifest" in line:
                    offenders.append(f"{path.relative_to(root)}:{number}")
    assert offenders == []
