"""The contract spec, the type casts it relies on, and how sources are opened."""

from __future__ import annotations

import json
from datetime import date, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.casting import cast_plan
from features.contract import TABLES
from features.sources import open_source

# The contract as DESIGN.md "The input contract (v1)" states it: (column, type, required).
DESIGN_V1 = {
    "accounts": [
        ("account_id", "VARCHAR", True),
        ("name", "VARCHAR", True),
        ("created_at", "TIMESTAMP", True),
        ("tam_usd", "DOUBLE", True),
        ("industry", "VARCHAR", False),
        ("region", "VARCHAR", False),
        ("employees", "BIGINT", False),
        ("csm_id", "VARCHAR", False),
        ("coverage", "VARCHAR", False),
    ],
    "subscriptions": [
        ("subscription_id", "VARCHAR", True),
        ("account_id", "VARCHAR", True),
        ("product", "VARCHAR", True),
        ("plan", "VARCHAR", True),
        ("start_date", "DATE", True),
        ("end_date", "DATE", False),
        ("mrr", "DOUBLE", True),
        ("seats", "BIGINT", False),
        ("term_months", "BIGINT", False),
    ],
    "users": [
        ("user_id", "VARCHAR", True),
        ("account_id", "VARCHAR", True),
        ("created_at", "TIMESTAMP", True),
        ("department", "VARCHAR", False),
        ("role", "VARCHAR", False),
        ("is_agent", "BOOLEAN", False),
    ],
    "events": [
        ("account_id", "VARCHAR", True),
        ("user_id", "VARCHAR", False),
        ("ts", "TIMESTAMP", True),
        ("event", "VARCHAR", True),
        ("actor", "VARCHAR", False),
        ("status", "VARCHAR", False),
        ("quantity", "DOUBLE", False),
    ],
    "tickets": [
        ("ticket_id", "VARCHAR", True),
        ("account_id", "VARCHAR", True),
        ("created_at", "TIMESTAMP", True),
        ("priority", "VARCHAR", False),
        ("closed_at", "TIMESTAMP", False),
        ("csat", "BIGINT", False),
    ],
    "plans": [
        ("plan", "VARCHAR", True),
        ("seat_limit", "BIGINT", False),
        ("usage_limit", "DOUBLE", False),
    ],
    "actions": [
        ("action_id", "VARCHAR", True),
        ("account_id", "VARCHAR", True),
        ("ts", "TIMESTAMP", True),
        ("csm_id", "VARCHAR", False),
        ("play", "VARCHAR", True),
        ("holdout", "BOOLEAN", False),
    ],
    "csms": [
        ("csm_id", "VARCHAR", True),
        ("name", "VARCHAR", True),
        ("email", "VARCHAR", False),
        ("capacity", "BIGINT", False),
    ],
}


# ----------------------------------------------------------------------------- spec


def test_tables_match_the_design_contract():
    assert set(TABLES) == set(DESIGN_V1)
    for name, columns in DESIGN_V1.items():
        spec = TABLES[name]
        assert [(c.name, c.dtype, c.required) for c in spec.columns] == columns, name
    assert [t for t, s in TABLES.items() if not s.required] == ["plans", "csms", "actions"]


def test_keys_references_and_defaults_are_consistent():
    order = list(TABLES)
    for name, spec in TABLES.items():
        keys = [c.name for c in spec.columns if c.key]
        assert len(keys) == (0 if name == "events" else 1), name
        for col in spec.columns:
            if col.key:
                assert not col.nullable and col.dtype == "VARCHAR"
            if col.references:
                assert TABLES[col.references].key is not None
                assert order.index(col.references) < order.index(name), "parents come first"
            if col.values:
                assert col.dtype == "VARCHAR"
            if col.default is not None:
                assert not col.required
        for earlier, later in spec.order_rules:
            assert spec.column(earlier).dtype == spec.column(later).dtype
        assert set(spec.dedupe_by) <= set(spec.column_names)
    events = TABLES["events"]
    assert (events.column("actor").default, events.column("status").default) == ("'human'", "'ok'")
    assert float(events.column("quantity").default) == 1.0


# ----------------------------------------------------------------------------- casts


@pytest.mark.parametrize(
    ("expected", "found"),
    [
        ("DOUBLE", "DATE"),
        ("DOUBLE", "BOOLEAN"),
        ("TIMESTAMP", "DOUBLE"),
        ("TIMESTAMP", "BIGINT"),
        ("DATE", "INTEGER"),
        ("BIGINT", "BOOLEAN"),
        ("BOOLEAN", "DOUBLE"),
        ("VARCHAR", "DOUBLE"),
        ("VARCHAR", "INTEGER[]"),
        ("BIGINT", "STRUCT(a INTEGER)"),
    ],
)
def test_incompatible_types_have_no_cast(expected, found):
    assert cast_plan('"c"', expected, found) is None


def _cast(expected: str, found: str, values: list) -> list:
    plan = cast_plan('"c"', expected, found)
    assert plan is not None
    con = duckdb.connect()
    con.execute(f'CREATE TABLE t (i INTEGER, "c" {found})')
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(values)))
    return [r[0] for r in con.execute(f"SELECT {plan.expr} FROM t ORDER BY i").fetchall()]


def test_text_casts_parse_or_give_null():
    assert _cast("DOUBLE", "VARCHAR", ["1.5", " 2 ", "1e3", "abc", None]) == [
        1.5,
        2.0,
        1000.0,
        None,
        None,
    ]
    # no silent rounding: 4.5 is not an integer
    assert _cast("BIGINT", "VARCHAR", ["4", "4.0", "4.5", "x"]) == [4, 4, None, None]
    assert _cast("BOOLEAN", "VARCHAR", ["true", "False", "1", "0", "maybe"]) == [
        True,
        False,
        True,
        False,
        None,
    ]
    assert _cast("DATE", "VARCHAR", ["2025-05-01", "2025-05-01 00:00:00", "05/01/2025"]) == [
        date(2025, 5, 1),
        date(2025, 5, 1),
        None,
    ]


def test_text_timestamps_with_an_offset_are_converted_to_utc():
    got = _cast(
        "TIMESTAMP",
        "VARCHAR",
        [
            "2025-05-01 12:00:00",
            "2025-05-01T12:00:00Z",
            "2025-05-01 12:00:00+02:00",
            "2025-05-01",
            "soon",
        ],
    )
    assert got == [
        datetime(2025, 5, 1, 12),
        datetime(2025, 5, 1, 12),
        datetime(2025, 5, 1, 10),
        datetime(2025, 5, 1),
        None,
    ]


def test_numeric_casts():
    assert _cast("BIGINT", "DOUBLE", [3.0, 3.5, float("nan"), None]) == [3, None, None, None]
    assert _cast("DOUBLE", "DOUBLE", [1.0, float("nan")]) == [1.0, None]
    assert _cast("DOUBLE", "INTEGER", [7]) == [7.0]
    assert _cast("BOOLEAN", "INTEGER", [0, 1, 2]) == [False, True, None]
    assert _cast("VARCHAR", "BIGINT", [12]) == ["12"]
    assert cast_plan('"c"', "BIGINT", "DOUBLE").fallible
    assert not cast_plan('"c"', "DOUBLE", "FLOAT").fallible


def test_timestamp_casts():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")  # the session zone must not matter
    plan = cast_plan('"c"', "TIMESTAMP", "TIMESTAMP WITH TIME ZONE")
    got = con.execute(
        f"SELECT {plan.expr} FROM (SELECT TIMESTAMPTZ '2025-05-01 12:00:00+02' AS c)"
    ).fetchone()[0]
    assert got == datetime(2025, 5, 1, 10)
    plan = cast_plan('"c"', "TIMESTAMP", "VARCHAR")
    got = con.execute(
        f"SELECT {plan.expr} FROM (SELECT '2025-05-01T12:00:00Z' AS c UNION ALL "
        "SELECT '2025-05-01 12:00:00') ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in got] == [datetime(2025, 5, 1, 12)] * 2
    assert _cast("DATE", "TIMESTAMP", [datetime(2025, 5, 1, 23, 59)]) == [date(2025, 5, 1)]


# ----------------------------------------------------------------------------- sources


def _write(root, tables: dict[str, dict]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, cols in tables.items():
        pq.write_table(pa.table(cols), root / f"{name}.parquet")


def test_open_source_registers_lazy_raw_views(tmp_path):
    _write(tmp_path, {"accounts": {"account_id": ["A1"]}, "users": {"user_id": ["U1"]}})
    (tmp_path / "events").mkdir()
    for i in range(3):
        pq.write_table(pa.table({"ts": [i]}), tmp_path / "events" / f"part-{i:03d}.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"data_end": "2026-11-01", "seed": 7}))
    src = open_source(tmp_path)
    assert src.tables == ("accounts", "users", "events")
    assert src.formats == {"accounts": "parquet", "users": "parquet", "events": "parquet"}
    assert len(src.files["events"]) == 3
    assert src.data_end == date(2026, 11, 1) and src.manifest["seed"] == 7
    views = {r[0] for r in src.con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert {"raw_accounts", "raw_users", "raw_events"} <= views
    assert src.con.execute("SELECT table_name FROM duckdb_tables()").fetchall() == []
    assert src.con.execute("SELECT count(*) FROM raw_events").fetchone()[0] == 3
    assert src.raw("events") == "raw_events"
    with pytest.raises(KeyError, match="tickets"):
        src.raw("tickets")


def test_open_source_reads_csv_as_text_and_uses_a_given_connection(tmp_path):
    (tmp_path / "accounts.csv").write_text("account_id,tam_usd\nA1,12.5\nA2,n/a\n")
    con = duckdb.connect()
    src = open_source(str(tmp_path), con=con)
    assert src.con is con and src.data_end is None
    assert (
        con.execute("SELECT typeof(tam_usd) FROM raw_accounts LIMIT 1").fetchone()[0] == "VARCHAR"
    )
    assert con.execute("SELECT tam_usd FROM raw_accounts ORDER BY 1").fetchall() == [
        ("12.5",),
        ("n/a",),
    ]


def test_open_source_attaches_a_duckdb_file_read_only(tmp_path):
    path = tmp_path / "book.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE accounts AS SELECT 'A1' AS account_id")
    con.execute("CREATE TABLE Events AS SELECT 'A1' AS account_id")
    con.execute("CREATE TABLE unrelated AS SELECT 1 AS x")
    con.close()
    with open_source(path) as src:
        assert src.tables == ("accounts", "events")
        assert src.formats["events"] == "duckdb"
        assert src.con.execute("SELECT account_id FROM raw_events").fetchall() == [("A1",)]
        with pytest.raises(duckdb.Error):
            src.con.execute("INSERT INTO nrr_src.accounts VALUES ('A2')")


def test_open_source_errors_a_user_can_act_on(tmp_path):
    with pytest.raises(ValueError, match="sqlite:// sources are not supported"):
        open_source("sqlite:///book.db")
    with pytest.raises(FileNotFoundError, match="source not found"):
        open_source(tmp_path / "nope")
    (tmp_path / "book.xlsx").write_text("x")
    with pytest.raises(ValueError, match="DuckDB file"):
        open_source(tmp_path / "book.xlsx")
    twice = tmp_path / "twice"
    _write(twice, {"accounts": {"account_id": ["A1"]}})
    (twice / "accounts.csv").write_text("account_id\nA1\n")
    with pytest.raises(ValueError, match="'accounts' is stored more than once"):
        open_source(twice)
    both = tmp_path / "both"
    _write(both, {"events": {"ts": [1]}})
    (both / "events").mkdir()
    pq.write_table(pa.table({"ts": [2]}), both / "events" / "part-000.parquet")
    with pytest.raises(ValueError, match="'events' is stored more than once"):
        open_source(both)
    bad = tmp_path / "bad_manifest"
    _write(bad, {"accounts": {"account_id": ["A1"]}})
    (bad / "manifest.json").write_text(json.dumps({"data_end": "next week"}))
    with pytest.raises(ValueError, match="key 'data_end': 'next week' is not a date"):
        open_source(bad)


def test_open_source_accepts_a_single_events_file_and_hive_parts(tmp_path):
    _write(tmp_path / "single", {"events": {"ts": [1, 2]}})
    assert open_source(tmp_path / "single").files["events"] == [
        tmp_path / "single" / "events.parquet"
    ]
    hive = tmp_path / "hive" / "events" / "month=2025-06"
    hive.mkdir(parents=True)
    pq.write_table(pa.table({"ts": [1]}), hive / "part-0.parquet")
    (hive / "_SUCCESS").write_text("")
    src = open_source(tmp_path / "hive")
    assert src.files["events"] == [hive / "part-0.parquet"]
    assert src.con.execute("SELECT count(*) FROM raw_events").fetchone() == (1,)
