"""Warehouse in and out against a real PostgreSQL server started by the tests.

The server is Debian's `postgresql` (installed by `make postgres` when running as root),
initialised in a temporary directory and stopped at the end of the session; the tests are
skipped with the reason when it cannot be started. No SQLite stands in for it.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pg_server
import pyarrow as pa
import pytest
from pg_server import load_tables

from features.sources import open_source
from features.validate import validate

pytestmark = pytest.mark.xdist_group("postgres")
pg_url = pg_server.pg_url  # session fixture: a temporary PostgreSQL server


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("pgworld") / "raw"
    simulate(SimConfig(accounts=150, months=8, seed=11), out, progress=False)
    return out


def _pg(url: str):
    import adbc_driver_postgresql.dbapi as pg

    return pg.connect(url)


def _execute(url: str, *statements: str) -> None:
    with _pg(url) as con, con.cursor() as cur:
        for sql in statements:
            cur.execute(sql)
        con.commit()


def _schema_url(url: str, schema: str) -> str:
    return f"{url}&schema={schema}"


@pytest.fixture(scope="module")
def world_url(pg_url, world) -> str:
    """The simulated world in schema `world`, with its manifest as nrrcast_manifest."""
    load_tables(pg_url, world, schema="world")
    data_end = json.loads((world / "manifest.json").read_text())["data_end"]
    _execute(
        pg_url,
        "CREATE TABLE world.nrrcast_manifest (data_end date, exported_by text)",
        f"INSERT INTO world.nrrcast_manifest VALUES ('{data_end}', 'test')",
    )
    return _schema_url(pg_url, "world")


def _clean(src, table: str) -> pd.DataFrame:
    frame = src.con.execute(f"SELECT * FROM {table}").df()
    key = [c for c in frame.columns if c.endswith("_id")][:2] + (
        ["ts"] if "ts" in frame.columns else []
    )
    return frame.sort_values(key + list(frame.columns.difference(key))).reset_index(drop=True)


def test_database_source_validates_exactly_like_its_files(world, world_url, tmp_path):
    files = open_source(world)
    db = open_source(world_url)
    assert db.tables == files.tables
    assert set(db.formats.values()) == {"postgresql"}
    assert db.data_end == files.data_end and db.data_end is not None
    assert "***" not in str(db.url) and db.url.startswith("postgresql://")

    by_file = validate(files, now=files.data_end, quarantine_dir=tmp_path / "q_files")
    by_db = validate(db, now=db.data_end, quarantine_dir=tmp_path / "q_db")
    assert by_db.ok and by_file.ok
    assert by_db.counts == by_file.counts
    assert [(p.table, p.column, p.problem, p.rows) for p in by_db.problems] == [
        (p.table, p.column, p.problem, p.rows) for p in by_file.problems
    ]
    for table in ("accounts", "subscriptions", "users", "events", "tickets"):
        pd.testing.assert_frame_equal(_clean(db, table), _clean(files, table), check_dtype=False)
    files.close()
    db.close()


def test_bad_rows_in_the_database_are_quarantined_with_reasons(pg_url, tmp_path):
    _execute(
        pg_url,
        "CREATE SCHEMA bad",
        "CREATE TABLE bad.accounts (account_id text, name text, created_at timestamptz, "
        "tam_usd numeric(14,2))",
        "INSERT INTO bad.accounts VALUES ('a1', 'One', '2025-01-01 00:00+00', 1000.50), "
        "('a2', 'Two', '2025-01-02 00:00+00', NULL)",
        # dates kept as text, the way some exports land: cast per value like CSV
        "CREATE TABLE bad.subscriptions (subscription_id text, account_id text, product text, "
        "plan text, start_date text, end_date text, mrr numeric)",
        "INSERT INTO bad.subscriptions VALUES "
        "('s1', 'a1', 'platform', 'pro', '2025-01-01', NULL, 100), "
        "('s2', 'a2', 'platform', 'pro', '2025-01-05', NULL, -5), "
        "('s3', 'ghost', 'platform', 'pro', '2025-01-05', NULL, 10), "
        "('s4', 'a2', 'platform', 'pro', 'not a date', NULL, 10)",
        "CREATE TABLE bad.users (user_id text, account_id text, created_at timestamp)",
        "INSERT INTO bad.users VALUES ('u1', 'a1', '2025-01-01')",
        "CREATE TABLE bad.events (account_id text, user_id text, ts timestamp, event text)",
        "INSERT INTO bad.events VALUES ('a1', 'u1', '2025-02-01 10:00', 'login'), "
        "('a1', 'u1', '2030-01-01', 'login')",
        "CREATE TABLE bad.tickets (ticket_id text, account_id text, created_at timestamp)",
    )
    src = open_source(_schema_url(pg_url, "bad"))
    assert src.data_end is None  # no manifest table: the data's end comes from elsewhere
    report = validate(src, now=date(2025, 6, 1), quarantine_dir=tmp_path)
    counts = {t: (c.read, c.quarantined, c.clean) for t, c in report.counts.items()}
    assert counts["subscriptions"] == (4, 3, 1)
    assert counts["events"] == (2, 1, 1)
    assert counts["tickets"] == (0, 0, 0)
    quarantined = pd.read_parquet(tmp_path / "subscriptions.parquet")
    assert len(quarantined) == 3 and quarantined["reason"].notna().all()
    assert src.con.execute("SELECT tam_usd FROM accounts ORDER BY 1").fetchall()[0][0] == 1000.5
    src.close()


def test_missing_schema_and_other_databases_are_clear_errors(pg_url):
    with pytest.raises(ValueError, match="schema 'nope' holds no tables"):
        open_source(_schema_url(pg_url, "nope"))
    with pytest.raises(ValueError, match=r"mysql:// sources are not supported"):
        open_source("mysql://user:secret@db/crm")


def test_unreachable_database_is_a_connection_error_without_the_password(tmp_path):
    pytest.importorskip("adbc_driver_postgresql")
    url = f"postgresql://me:s3cret@/crm?host={tmp_path}&port=5999"
    with pytest.raises(ConnectionError, match=r"cannot connect to postgresql://me:\*\*\*@") as exc:
        open_source(url)
    assert "s3cret" not in str(exc.value)


def test_a_schema_with_only_some_tables_keeps_their_native_types(pg_url):
    """Absent tables are simply not listed (validation reports the required ones)."""
    _execute(
        pg_url,
        "CREATE SCHEMA snap",
        "CREATE TABLE snap.plans (plan text, seat_limit bigint, usage_limit double precision)",
        "INSERT INTO snap.plans VALUES ('pro', 10, 1000)",
    )
    src = open_source(_schema_url(pg_url, "snap"))
    assert src.tables == ("plans",)
    assert src.con.execute("SELECT * FROM raw_plans").fetchall() == [("pro", 10, 1000.0)]
    types = dict(
        src.con.execute("SELECT column_name, column_type FROM (DESCRIBE raw_plans)").fetchall()
    )
    assert types == {"plan": "VARCHAR", "seat_limit": "BIGINT", "usage_limit": "DOUBLE"}
    src.close()


def test_arrow_batches_stream_into_duckdb(pg_url):
    """A small batch size hint gives many batches; all rows arrive once."""
    import adbc_driver_postgresql.dbapi as pg

    n = 50_000
    with pg.connect(pg_url) as con, con.cursor() as cur:
        cur.execute("CREATE SCHEMA big")
        cur.adbc_ingest(
            "events",
            pa.table(
                {
                    "account_id": pa.array([f"a{i % 97}" for i in range(n)]),
                    "ts": pa.array(pd.date_range("2025-01-01", periods=n, freq="min")),
                    "event": pa.array(["login"] * n),
                }
            ),
            mode="create",
            db_schema_name="big",
        )
        con.commit()
    src = open_source(f"{_schema_url(pg_url, 'big')}&batch_bytes=65536")
    assert src.con.execute("SELECT count(*), count(DISTINCT ts) FROM raw_events").fetchall() == [
        (n, n)
    ]
    src.close()


def _scores(as_of: str, n: int = 5, p: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "as_of": pd.Timestamp(as_of),
            "p_churn": [p] * n,
            "segment": pd.Series(["accelerate"] * n, dtype="category"),
            "at_risk": [i % 2 == 0 for i in range(n)],
            "reasons_json": ['[{"feature": "login_decay"}]'] * n,
        }
    )


def _read(url: str, sql: str) -> list[tuple]:
    with _pg(url) as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_scores_go_to_postgresql_once_per_as_of(pg_url, tmp_path):
    from evaluation import scores_store

    url = _schema_url(pg_url.replace("postgresql://", "postgresql+psycopg://"), "public")
    scores_store.write_scores(_scores("2026-01-05"), tmp_path / "s", date(2026, 1, 5), sql_url=url)
    scores_store.write_scores(_scores("2026-01-12"), tmp_path / "s", date(2026, 1, 12), sql_url=url)
    scores_store.write_scores(
        _scores("2026-01-05", n=3, p=0.5), tmp_path / "s", date(2026, 1, 5), sql_url=url
    )
    assert _read(
        pg_url, "SELECT as_of, count(*), avg(p_churn) FROM scores GROUP BY 1 ORDER BY 1"
    ) == [
        (date(2026, 1, 5), 3, 0.5),
        (date(2026, 1, 12), 5, 0.1),
    ]
    types = dict(
        _read(
            pg_url,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = 'scores'",
        )
    )
    assert types["as_of"] == "date" and types["p_churn"] == "double precision"
    assert types["at_risk"] == "boolean"


def test_a_failed_postgresql_write_leaves_the_previous_scores(pg_url, monkeypatch):
    from evaluation import scores_sql

    url = _schema_url(pg_url, "failing")
    _execute(pg_url, "CREATE SCHEMA failing")
    scores_sql.write_scores_sql(_scores("2026-02-02", n=4), url, date(2026, 2, 2))
    # the second chunk breaks COPY (text in a double column) after the DELETE ran
    bad = _scores("2026-02-02", n=6, p=0.9).astype({"p_churn": object})
    bad.loc[5, "p_churn"] = "not a number"
    with pytest.raises(Exception, match="(?i)double|float|number|convert|cast"):
        scores_sql.write_scores_sql(bad, url, date(2026, 2, 2), chunk_rows=3)
    assert _read(pg_url, "SELECT count(*), avg(p_churn) FROM failing.scores") == [(4, 0.1)]
    wider = _scores("2026-02-02").assign(new_metric=1.0)
    with pytest.raises(ValueError, match=r"lacks the columns \['new_metric'\]"):
        scores_sql.write_scores_sql(wider, url, date(2026, 2, 2))
    assert _read(pg_url, "SELECT count(*) FROM failing.scores") == [(4,)]


def test_the_command_line_takes_a_database_url(world_url, tmp_path):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "validate", "--source", world_url,
         "--quarantine", str(tmp_path / "q")],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "input contract v1: OK" in proc.stdout
