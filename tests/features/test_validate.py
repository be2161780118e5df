"""Validation against input contract v1: one test per check on small bad data.

Every run goes through `_validate`, which asserts the bookkeeping invariant for every
table (read = clean + quarantined, the clean relation holds `clean` rows, the quarantine
file holds `quarantined` rows), so each test also guards against silent drops.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from features.contract import TABLES
from features.sources import open_source
from features.validate import ContractError, ValidationReport, claim_quarantine_dir, validate

NOW = datetime(2026, 1, 1)
DATA_END = date(2026, 1, 1)
TYPES = {"VARCHAR", "BIGINT", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP"}


def _ts(values: list[str | None]) -> pd.Series:
    return pd.Series(pd.to_datetime(values, format="ISO8601"), dtype="datetime64[us]")


def _dates(values: list[str | None]) -> pd.Series:
    return pd.Series(
        [date.fromisoformat(v) if v else None for v in values], dtype="date32[pyarrow]"
    )


def world() -> dict[str, pd.DataFrame]:
    """A small clean book: 4 accounts, 5 subscriptions, 8 users, 42 events, 4 tickets."""
    accounts = pd.DataFrame(
        {
            "account_id": ["A1", "A2", "A3", "A4"],
            "name": ["Acme", "Beta", "Gamma", "Delta"],
            "created_at": _ts(["2024-01-10", "2024-06-01", "2025-02-01", "2025-03-15 08:30"]),
            "tam_usd": [1e6, np.nan, 2e5, 5e5],
            "industry": ["software", "retail", "finance", None],
            "region": ["NA", "EMEA", "APAC", "NA"],
            "employees": pd.array([500, 40, None, 120], dtype="Int64"),
            "csm_id": ["c1", "c1", "c2", None],
            "coverage": ["high_touch", "standard", "digital", "standard"],
        }
    )
    plans = pd.DataFrame(
        {
            "plan": ["starter", "growth", "agents_basic"],
            "seat_limit": pd.array([10, 50, None], dtype="Int64"),
            "usage_limit": [1e5, 1e6, 5e6],
        }
    )
    subscriptions = pd.DataFrame(
        {
            "subscription_id": ["S1", "S2", "S3", "S4", "S5"],
            "account_id": ["A1", "A1", "A2", "A3", "A4"],
            "product": ["platform", "ai_agents", "platform", "platform", "platform"],
            "plan": ["growth", "agents_basic", "starter", "growth", "starter"],
            "start_date": _dates(
                ["2024-01-10", "2025-03-01", "2024-06-01", "2025-02-01", "2025-03-15"]
            ),
            "end_date": _dates([None, None, "2025-09-01", None, None]),
            "mrr": [2000.0, 500.0, 300.0, 1500.0, 250.0],
            "seats": pd.array([40, None, 8, 30, 5], dtype="Int64"),
            "term_months": pd.array([12, 1, 12, 12, 1], dtype="Int64"),
        }
    )
    users = pd.DataFrame(
        {
            "user_id": [f"U{i}" for i in range(1, 9)],
            "account_id": ["A1", "A1", "A1", "A2", "A3", "A3", "A4", "A4"],
            "created_at": _ts(
                ["2024-01-10"] * 3 + ["2024-06-02"] + ["2025-02-02"] * 2 + ["2025-03-16"] * 2
            ),
            "department": ["sales", "ops", None, "eng", "eng", "finance", "ops", None],
            "role": ["admin", "member", "member", "admin", "member", "admin", "member", "member"],
            "is_agent": pd.array(
                [False, False, True, False, False, False, False, True], dtype="boolean"
            ),
        }
    )
    rows = []
    names = ["login", "dashboard_view", "report_build", "workflow_run", "agent_run"]
    for i, (uid, acct, agent) in enumerate(
        zip(users.user_id, users.account_id, users.is_agent, strict=True)
    ):
        for k in range(5):
            rows.append(
                {
                    "account_id": acct,
                    "user_id": uid,
                    "ts": datetime(2025, 6, 1 + k, 9 + i, 15, 30, 123456),
                    "event": "agent_run" if agent else names[k],
                    "actor": "agent" if agent else "human",
                    "status": "error" if agent and k == 2 else "ok",
                    "quantity": 250.0 + k if agent else 1.0,
                }
            )
    rows.append(
        {
            "account_id": "A2",
            "user_id": None,
            "ts": datetime(2025, 12, 31, 23, 59, 59),
            "event": "integration_sync",
            "actor": "human",
            "status": "ok",
            "quantity": 3.0,
        }
    )
    events = pd.DataFrame(rows)
    events["ts"] = events["ts"].astype("datetime64[us]")
    tickets = pd.DataFrame(
        {
            "ticket_id": ["T1", "T2", "T3", "T4"],
            "account_id": ["A1", "A2", "A3", "A4"],
            "created_at": _ts(["2025-04-01", "2025-05-01", "2025-06-01", "2025-07-01"]),
            "priority": ["high", "normal", "urgent", "low"],
            "closed_at": _ts(["2025-04-03", None, "2025-06-10", "2025-07-02"]),
            "csat": pd.array([5, None, 2, None], dtype="Int64"),
        }
    )
    return {
        "accounts": accounts,
        "plans": plans,
        "subscriptions": subscriptions,
        "users": users,
        "events": events,
        "tickets": tickets,
    }


def _to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table of a frame; time-zone-aware columns keep their zone."""
    aware = [c for c in df.columns if isinstance(df[c].dtype, pd.DatetimeTZDtype)]
    table = pa.Table.from_pandas(df.drop(columns=aware), preserve_index=False)
    for c in aware:
        utc = df[c].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        col = pa.array(utc, pa.timestamp("us")).cast(pa.timestamp("us", tz=str(df[c].dt.tz)))
        table = table.add_column(list(df.columns).index(c), c, col)
    return table


def write_source(
    tables: dict[str, pd.DataFrame], root: Path, fmt: str = "parquet", manifest: bool = True
) -> Path:
    """Write `tables` as a contract source: Parquet (events in two parts), CSV or DuckDB."""
    root.mkdir(parents=True, exist_ok=True)
    arrow = {name: _to_arrow(df) for name, df in tables.items()}
    if fmt == "parquet":
        for name, table in arrow.items():
            if name == "events":
                (root / "events").mkdir()
                half = table.num_rows // 2
                pq.write_table(table.slice(0, half), root / "events" / "part-000.parquet")
                pq.write_table(table.slice(half), root / "events" / "part-001.parquet")
            else:
                pq.write_table(table, root / f"{name}.parquet")
        path = root
    elif fmt == "csv":
        for name, table in arrow.items():
            pacsv.write_csv(table, root / f"{name}.csv")
        path = root
    elif fmt == "duckdb":
        path = root / "book.duckdb"
        con = duckdb.connect(str(path))
        for name, table in arrow.items():
            con.register("frame", table)
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
            con.unregister("frame")
        con.close()
    else:
        raise ValueError(fmt)
    if manifest:
        (root / "manifest.json").write_text(
            json.dumps({"data_end": DATA_END.isoformat(), "start": "2024-01-01", "seed": 1})
        )
    return path


def _validate(
    tables: dict[str, pd.DataFrame],
    tmp_path: Path,
    fmt: str = "parquet",
    now: date | datetime = NOW,
    manifest: bool = True,
):
    root = tmp_path / f"src_{fmt}"
    src = open_source(write_source(tables, root, fmt, manifest))
    qdir = tmp_path / f"quarantine_{fmt}"
    report = validate(src, now=now, quarantine_dir=qdir)
    _assert_bookkeeping(src.con, report, qdir)
    return src, report


def _assert_bookkeeping(
    con: duckdb.DuckDBPyConnection, report: ValidationReport, qdir: Path
) -> None:
    for name in TABLES:
        c = report.counts[name]
        assert c.read == c.clean + c.quarantined, name
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == c.clean, name
        qfile = qdir / f"{name}.parquet"
        if c.quarantined:
            assert report.quarantine_files[name] == qfile
            assert pq.read_metadata(qfile).num_rows == c.quarantined, name
        else:
            assert not qfile.exists(), name


def _quarantine(report: ValidationReport, table: str) -> pd.DataFrame:
    return pd.read_parquet(report.quarantine_files[table])


def _clean(src, table: str) -> pd.DataFrame:
    return src.con.execute(f"SELECT * FROM {table}").df()


def _problem(report: ValidationReport, table: str, column: str | None, contains: str):
    hits = [
        p
        for p in report.problems
        if p.table == table and p.column == column and contains in p.problem
    ]
    assert len(hits) == 1, (table, column, contains, report.to_frame().to_string())
    return hits[0]


def _not_info(report: ValidationReport) -> list:
    return [p for p in report.problems if p.action != "info"]


# ----------------------------------------------------------------------------- clean source


def test_clean_source_passes_with_zero_quarantine(tmp_path):
    src, report = _validate(world(), tmp_path)
    assert report.ok
    assert _not_info(report) == []
    assert all(c.quarantined == 0 for c in report.counts.values())
    assert report.quarantine_files == {}
    assert report.counts["events"].read == 41
    assert report.data_end == DATA_END and report.data_end_from == "manifest"
    report.raise_if_failed()


def test_clean_relations_have_canonical_types_and_values(tmp_path):
    tables = world()
    src, _ = _validate(tables, tmp_path)
    for name, spec in TABLES.items():
        described = src.con.execute(f"DESCRIBE {name}").fetchall()
        assert [(r[0], r[1]) for r in described] == [(c.name, c.dtype) for c in spec.columns]
    ev = _clean(src, "events").sort_values(["user_id", "ts"], na_position="last")
    raw = tables["events"].sort_values(["user_id", "ts"], na_position="last")
    assert ev["ts"].tolist() == raw["ts"].tolist()  # microseconds survive
    assert ev["quantity"].tolist() == raw["quantity"].tolist()
    subs = _clean(src, "subscriptions").set_index("subscription_id")
    assert subs.loc["S3", "end_date"] == pd.Timestamp("2025-09-01")
    assert pd.isna(subs.loc["S1", "end_date"])
    assert pd.isna(_clean(src, "accounts").set_index("account_id").loc["A2", "tam_usd"])


def test_events_relation_is_a_view_over_the_files(tmp_path):
    src, _ = _validate(world(), tmp_path)
    views = {r[0] for r in src.con.execute("SELECT view_name FROM duckdb_views()").fetchall()}
    assert "events" in views and "raw_events" in views
    tables = {r[0] for r in src.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert {"accounts", "users", "subscriptions", "tickets", "plans"} <= tables
    assert not any(t.startswith("_nrr_stage") or t.startswith("_nrr_keys") for t in tables)


# ----------------------------------------------------------------------------- structure


def test_missing_required_table_is_an_error_and_leaves_an_empty_relation(tmp_path):
    tables = world()
    del tables["tickets"]
    src, report = _validate(tables, tmp_path)
    assert not report.ok
    p = _problem(report, "tickets", None, "required table missing")
    assert p.action == "error"
    assert _clean(src, "tickets").empty
    with pytest.raises(ContractError, match=r"tickets: required table missing \(0 rows\)"):
        report.raise_if_failed()


def test_missing_required_column_is_an_error_naming_table_column_and_rows(tmp_path):
    tables = world()
    tables["accounts"] = tables["accounts"].drop(columns=["name"])
    tables["subscriptions"] = tables["subscriptions"].drop(columns=["mrr"])
    src, report = _validate(tables, tmp_path)
    assert not report.ok
    assert {(p.table, p.column) for p in report.errors} == {
        ("accounts", "name"),
        ("subscriptions", "mrr"),
    }
    with pytest.raises(ContractError) as info:
        report.raise_if_failed()
    message = str(info.value)
    assert "2 errors" in message
    assert "accounts.name: required column missing (4 rows)" in message
    assert "subscriptions.mrr: required column missing (5 rows)" in message
    assert info.value.report is report
    # the rest of the table is still checked and exposed (NULL in the missing column)
    assert report.counts["accounts"].clean == 4
    assert _clean(src, "accounts")["name"].isna().all()


def test_wrong_type_that_cannot_be_cast_names_expected_and_found(tmp_path):
    tables = world()
    tables["subscriptions"]["mrr"] = _dates(["2025-01-01"] * 5)
    tables["users"]["created_at"] = [1.5] * 8
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "subscriptions", "mrr", "wrong type")
    assert p.action == "error" and p.rows == 5
    assert "expected DOUBLE, found DATE" in p.problem
    p = _problem(report, "users", "created_at", "wrong type")
    assert "expected TIMESTAMP, found DOUBLE" in p.problem
    # a column that cannot be read is not checked row by row: nothing is set aside for it
    assert report.counts["users"].quarantined == 0


def test_castable_types_are_cast_and_reported_as_info(tmp_path):
    tables = world()
    tables["accounts"]["employees"] = tables["accounts"]["employees"].astype("Int32")
    tables["tickets"]["created_at"] = tables["tickets"]["created_at"].astype("datetime64[ns]")
    tables["users"]["created_at"] = tables["users"]["created_at"].dt.tz_localize("Europe/Paris")
    tables["subscriptions"]["start_date"] = pd.to_datetime(
        tables["subscriptions"]["start_date"].astype(str)
    ).astype("datetime64[us]")
    src, report = _validate(tables, tmp_path)
    assert report.ok and _not_info(report) == []
    assert "cast from INTEGER" in _problem(report, "accounts", "employees", "cast").problem
    assert "TIMESTAMP_NS" in _problem(report, "tickets", "created_at", "cast").problem
    assert "UTC" in _problem(report, "users", "created_at", "UTC").problem
    users = _clean(src, "users").set_index("user_id")
    # 2024-01-10 00:00 in Paris is 2024-01-09 23:00 UTC
    assert users.loc["U1", "created_at"] == pd.Timestamp("2024-01-09 23:00")
    subs = _clean(src, "subscriptions").set_index("subscription_id")
    assert subs.loc["S1", "start_date"] == pd.Timestamp("2024-01-10")


def test_text_values_that_do_not_parse_are_set_aside(tmp_path):
    tables = world()
    subs = tables["subscriptions"].astype({"mrr": "object"})
    subs.loc[2, "mrr"] = "n/a"
    subs["mrr"] = subs["mrr"].astype(str)
    tables["subscriptions"] = subs
    tables["tickets"]["csat"] = ["5", None, "4.5", None]  # 4.5 is not an integer
    src, report = _validate(tables, tmp_path)
    assert report.ok
    p = _problem(report, "subscriptions", "mrr", "not a DOUBLE")
    assert p.action == "quarantined" and p.rows == 1 and "'n/a'" in p.problem
    assert _quarantine(report, "subscriptions")["reason"].tolist() == ["mrr is not a DOUBLE"]
    assert _clean(src, "subscriptions")["mrr"].tolist() == [2000.0, 500.0, 1500.0, 250.0]
    p = _problem(report, "tickets", "csat", "not a BIGINT")
    assert p.rows == 1 and "'4.5'" in p.problem


def test_text_column_where_no_value_parses_is_an_error(tmp_path):
    tables = world()
    tables["subscriptions"]["mrr"] = ["high", "low", "low", "mid", "high"]
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "subscriptions", "mrr", "wrong type")
    assert p.action == "error" and p.rows == 5
    assert "expected DOUBLE, found VARCHAR" in p.problem
    assert report.counts["subscriptions"].quarantined == 5


def test_missing_optional_table_yields_empty_typed_relation(tmp_path):
    tables = world()
    del tables["plans"]
    src, report = _validate(tables, tmp_path)
    assert report.ok
    assert _problem(report, "plans", None, "optional table missing").action == "info"
    described = src.con.execute("DESCRIBE plans").fetchall()
    assert [(r[0], r[1]) for r in described] == [
        ("plan", "VARCHAR"),
        ("seat_limit", "BIGINT"),
        ("usage_limit", "DOUBLE"),
    ]
    assert src.con.execute("SELECT count(*) FROM plans").fetchone()[0] == 0
    assert report.counts["plans"].read == 0


def test_missing_optional_columns_are_null_or_defaulted(tmp_path):
    tables = world()
    tables["events"] = tables["events"].drop(columns=["actor", "status", "quantity"])
    tables["accounts"] = tables["accounts"].drop(columns=["coverage", "employees"])
    src, report = _validate(tables, tmp_path)
    assert report.ok
    for col in ("actor", "status", "quantity"):
        assert _problem(report, "events", col, "optional column missing").action == "info"
    ev = _clean(src, "events")
    assert set(ev["actor"]) == {"human"} and set(ev["status"]) == {"ok"}
    assert set(ev["quantity"]) == {1.0}
    acc = _clean(src, "accounts")
    assert acc["coverage"].isna().all() and acc["employees"].isna().all()


def test_null_optional_values_take_the_defaults(tmp_path):
    tables = world()
    ev = tables["events"]
    ev.loc[0, ["actor", "status", "quantity"]] = [None, None, np.nan]
    src, report = _validate(tables, tmp_path)
    assert report.ok and _not_info(report) == []
    first = src.con.execute(
        "SELECT actor, status, quantity FROM events WHERE user_id = 'U1' ORDER BY ts LIMIT 1"
    ).fetchone()
    assert first == ("human", "ok", 1.0)


def test_extra_columns_are_reported_and_ignored(tmp_path):
    tables = world()
    tables["accounts"]["segment_x"] = "a"
    src, report = _validate(tables, tmp_path)
    assert "not in contract" in _problem(report, "accounts", "segment_x", "contract").problem
    assert "segment_x" not in _clean(src, "accounts").columns


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize("reverse", [False, True])
def test_duplicate_key_keeps_one_deterministic_row(tmp_path, reverse):
    tables = world()
    acc = tables["accounts"]
    # a less complete copy of A2 whose name sorts first: completeness must win over order
    sparse = acc.iloc[[1]].assign(name="B", industry=None, region=None)
    renamed = acc.iloc[[1]].assign(name="Beta Inc")  # as complete as the original
    acc = pd.concat([acc, sparse, renamed], ignore_index=True)
    # the storage order must not matter: the most complete row wins, then the smaller name
    tables["accounts"] = acc.iloc[::-1].reset_index(drop=True) if reverse else acc
    src, report = _validate(tables, tmp_path)
    p = _problem(report, "accounts", "account_id", "duplicate account_id")
    assert p.action == "quarantined" and p.rows == 2
    assert "kept one row per account_id" in p.problem
    kept = _clean(src, "accounts").set_index("account_id").loc["A2"]
    assert kept["name"] == "Beta" and kept["region"] == "EMEA"
    q = _quarantine(report, "accounts")
    assert sorted(q["name"]) == ["B", "Beta Inc"]
    assert q["industry"].isna().sum() == 1
    assert set(q["reason"]) == {"duplicate account_id (another row kept)"}


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("subscriptions", "subscription_id"),
        ("users", "user_id"),
        ("tickets", "ticket_id"),
        ("plans", "plan"),
    ],
)
def test_duplicate_keys_in_every_keyed_table(tmp_path, table, key):
    tables = world()
    df = tables[table]
    tables[table] = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    src, report = _validate(tables, tmp_path)
    p = _problem(report, table, key, f"duplicate {key}")
    assert p.rows == 1
    assert _clean(src, table)[key].is_unique
    assert report.counts[table].clean == len(df)
    # the kept copy is clean, so nothing downstream is set aside
    assert report.counts["events"].quarantined == 0


def test_null_ids_are_set_aside(tmp_path):
    tables = world()
    tables["users"].loc[7, "user_id"] = None
    tables["tickets"].loc[0, "ticket_id"] = ""
    tables["events"].loc[3, "account_id"] = None
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "users", "user_id", "null user_id").rows == 1
    assert _problem(report, "tickets", "ticket_id", "null ticket_id").rows == 1
    assert _problem(report, "events", "account_id", "null account_id").rows == 1
    # U8 no longer exists, so its 5 events point to an unknown user
    assert _problem(report, "events", "user_id", "user_id not in users").rows == 5
    assert report.counts["events"].quarantined == 6


# ----------------------------------------------------------------------------- values


def test_negative_mrr_is_set_aside(tmp_path):
    tables = world()
    tables["subscriptions"].loc[1, "mrr"] = -5.0
    src, report = _validate(tables, tmp_path)
    p = _problem(report, "subscriptions", "mrr", "negative mrr")
    assert (p.rows, p.action) == (1, "quarantined")
    q = _quarantine(report, "subscriptions")
    assert q["subscription_id"].tolist() == ["S2"] and q["reason"].tolist() == ["negative mrr"]
    assert "S2" not in set(_clean(src, "subscriptions")["subscription_id"])


def test_zero_mrr_is_allowed(tmp_path):
    tables = world()
    tables["subscriptions"].loc[1, "mrr"] = 0.0
    _, report = _validate(tables, tmp_path)
    assert _not_info(report) == []


def test_end_date_before_start_date_is_set_aside(tmp_path):
    tables = world()
    tables["subscriptions"]["end_date"] = _dates(
        [None, "2025-02-28", "2025-09-01", None, "2025-03-15"]
    )
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "subscriptions", "end_date", "end_date before start_date")
    assert p.rows == 1  # a same-day end (S5) is allowed
    assert _quarantine(report, "subscriptions")["subscription_id"].tolist() == ["S2"]


def test_negative_tam_is_nulled_with_a_warning_and_the_account_kept(tmp_path):
    tables = world()
    tables["accounts"].loc[2, "tam_usd"] = -1.0
    src, report = _validate(tables, tmp_path)
    p = _problem(report, "accounts", "tam_usd", "negative tam_usd")
    assert (p.rows, p.action) == (1, "warning") and "NULL" in p.problem
    acc = _clean(src, "accounts").set_index("account_id")
    assert pd.isna(acc.loc["A3", "tam_usd"]) and acc.loc["A1", "tam_usd"] == 1e6
    assert report.counts["accounts"].quarantined == 0
    assert report.counts["events"].quarantined == 0


def test_csat_outside_1_to_5_is_set_aside(tmp_path):
    tables = world()
    tables["tickets"]["csat"] = pd.array([5, 0, 6, 1], dtype="Int64")
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "tickets", "csat", "csat outside 1-5")
    assert (p.rows, p.action) == (2, "quarantined")
    assert sorted(_quarantine(report, "tickets")["ticket_id"]) == ["T2", "T3"]


def test_closed_at_before_created_at_is_set_aside(tmp_path):
    tables = world()
    tables["tickets"]["closed_at"] = _ts(["2025-03-31", None, "2025-06-10", "2025-07-01"])
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "tickets", "closed_at", "closed_at before created_at")
    assert p.rows == 1
    assert _quarantine(report, "tickets")["ticket_id"].tolist() == ["T1"]


def test_negative_quantity_is_set_aside(tmp_path):
    tables = world()
    tables["events"].loc[0, "quantity"] = -3.0
    _, report = _validate(tables, tmp_path)
    assert _problem(report, "events", "quantity", "negative quantity").rows == 1


# ----------------------------------------------------------------------------- enums


def test_unknown_descriptive_enums_are_kept_with_a_warning(tmp_path):
    tables = world()
    tables["users"].loc[0, "role"] = "owner"
    tables["tickets"].loc[1, "priority"] = "p1"
    tables["accounts"].loc[3, "coverage"] = "pooled"
    src, report = _validate(tables, tmp_path)
    assert report.ok
    for table, col, value in [
        ("users", "role", "owner"),
        ("tickets", "priority", "p1"),
        ("accounts", "coverage", "pooled"),
    ]:
        p = _problem(report, table, col, "unknown value")
        assert p.action == "warning" and p.rows == 1 and f"'{value}'" in p.problem
        assert value in set(_clean(src, table)[col])
    assert all(c.quarantined == 0 for c in report.counts.values())


def test_unknown_actor_and_status_are_set_aside(tmp_path):
    tables = world()
    tables["events"].loc[0, "actor"] = "robot"
    tables["events"].loc[1, "status"] = "timeout"
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "events", "actor", "unknown value")
    assert (p.rows, p.action) == (1, "quarantined") and "'robot'" in p.problem
    assert "expected human/agent" in p.problem
    assert _problem(report, "events", "status", "unknown value").rows == 1
    assert sorted(_quarantine(report, "events")["reason"]) == ["unknown actor", "unknown status"]


def test_enum_case_and_spaces_are_normalized(tmp_path):
    tables = world()
    tables["events"].loc[0, "actor"] = " Human"
    tables["users"].loc[0, "role"] = "ADMIN"
    src, report = _validate(tables, tmp_path)
    assert _not_info(report) == []
    assert _problem(report, "events", "actor", "lower-cased").rows == 1
    assert _clean(src, "users").set_index("user_id").loc["U1", "role"] == "admin"
    assert set(_clean(src, "events")["actor"]) == {"human", "agent"}


# ----------------------------------------------------------------------------- references


def test_rows_of_unknown_accounts_are_set_aside_in_every_child_table(tmp_path):
    tables = world()
    tables["subscriptions"].loc[4, "account_id"] = "A9"
    tables["tickets"].loc[3, "account_id"] = "A9"
    tables["users"].loc[7, "account_id"] = "A9"
    tables["events"].loc[0, "account_id"] = "A9"
    src, report = _validate(tables, tmp_path)
    for table in ("subscriptions", "tickets", "users"):
        p = _problem(report, table, "account_id", "account_id not in accounts")
        assert p.rows == 1 and "'A9'" in p.problem
    ev = _problem(report, "events", "account_id", "account_id not in accounts")
    assert ev.rows == 1
    # U8 is set aside, so are its 5 events; the event of U1 with account A9 also
    # has a user of another account
    assert _problem(report, "events", "user_id", "user_id set aside in users").rows == 5
    assert _problem(report, "events", "user_id", "another account").rows == 1
    assert report.counts["events"].quarantined == 6
    reasons = _quarantine(report, "events").set_index("user_id")["reason"]
    assert reasons["U1"] == "account_id not in accounts; user_id belongs to another account"
    assert "A9" not in set(_clean(src, "events")["account_id"])


def test_many_bad_keys_are_matched_without_a_literal_list(tmp_path, monkeypatch):
    monkeypatch.setattr("features.validate._MAX_LISTED", 1)
    tables = world()
    tables["events"].loc[[0, 1, 2], "account_id"] = ["A7", "A8", "A9"]
    tables["events"].loc[[10, 11], "user_id"] = ["U98", "U99"]
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "events", "account_id", "account_id not in accounts").rows == 3
    assert _problem(report, "events", "user_id", "user_id not in users").rows == 2
    assert report.counts["events"].quarantined == 5


def test_set_aside_account_takes_its_rows_along(tmp_path):
    tables = world()
    tables["accounts"].loc[3, "created_at"] = pd.Timestamp("2026-02-01")  # future
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "accounts", "created_at", "at or after now").rows == 1
    for table, n in [("subscriptions", 1), ("tickets", 1), ("users", 2)]:
        assert _problem(report, table, "account_id", "set aside in accounts").rows == n
    assert _problem(report, "events", "account_id", "set aside in accounts").rows == 10
    assert set(_clean(src, "events")["account_id"]) == {"A1", "A2", "A3"}


def test_events_of_unknown_users_are_set_aside_and_null_user_is_fine(tmp_path):
    tables = world()
    tables["events"].loc[[0, 1], "user_id"] = "U99"
    src, report = _validate(tables, tmp_path)
    p = _problem(report, "events", "user_id", "user_id not in users")
    assert p.rows == 2 and "'U99'" in p.problem
    assert report.counts["events"].clean == 39
    assert src.con.execute("SELECT count(*) FROM events WHERE user_id IS NULL").fetchone()[0] == 1


def test_subscription_plan_missing_from_plans_is_a_warning(tmp_path):
    tables = world()
    tables["subscriptions"].loc[0, "plan"] = "legacy"
    _, report = _validate(tables, tmp_path)
    p = _problem(report, "subscriptions", "plan", "plan not in plans")
    assert (p.rows, p.action) == (1, "warning")
    assert report.counts["subscriptions"].quarantined == 0


# ----------------------------------------------------------------------------- time


def test_timestamps_at_or_after_now_are_set_aside(tmp_path):
    tables = world()
    ev = tables["events"]
    ev.loc[0, "ts"] = pd.Timestamp(NOW)  # exactly now: in the future
    ev.loc[1, "ts"] = pd.Timestamp(NOW) + pd.Timedelta(days=30)
    ev.loc[2, "ts"] = pd.Timestamp(NOW) - pd.Timedelta(microseconds=1)  # kept
    tables["users"].loc[1, "created_at"] = pd.Timestamp("2027-01-01")
    tables["tickets"].loc[1, "closed_at"] = pd.Timestamp("2026-03-01")
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "events", "ts", "at or after now").rows == 2
    assert _problem(report, "users", "created_at", "at or after now").rows == 1
    assert _problem(report, "tickets", "closed_at", "at or after now").rows == 1
    max_ts = src.con.execute("SELECT max(ts) FROM events").fetchone()[0]
    assert max_ts == NOW - timedelta(microseconds=1)
    q = _quarantine(report, "events")
    assert (q["reason"] == "ts in the future").sum() == 2


def test_future_subscription_dates_are_kept_with_a_warning(tmp_path):
    tables = world()
    tables["subscriptions"]["end_date"] = _dates([None, None, "2026-06-30", None, None])
    tables["subscriptions"].loc[4, "start_date"] = date(2026, 1, 1)
    _, report = _validate(tables, tmp_path)
    assert _problem(report, "subscriptions", "end_date", "at or after now").action == "warning"
    assert _problem(report, "subscriptions", "start_date", "at or after now").rows == 1
    assert report.counts["subscriptions"].quarantined == 0


def test_now_accepts_a_date_or_an_aware_datetime(tmp_path):
    tables = world()
    tables["events"].loc[0, "ts"] = pd.Timestamp("2025-12-31 23:30")
    paris = timezone(timedelta(hours=1))
    # 2026-01-01 00:10 in Paris is 2025-12-31 23:10 UTC: the 23:30 event is in the future
    _, report = _validate(tables, tmp_path, now=datetime(2026, 1, 1, 0, 10, tzinfo=paris))
    assert report.now == datetime(2025, 12, 31, 23, 10)
    assert _problem(report, "events", "ts", "at or after now").rows == 2
    _, report = _validate(tables, tmp_path / "d", now=date(2026, 1, 1))
    assert report.now == NOW and report.ok and _not_info(report) == []


def test_data_end_without_manifest_is_the_day_after_the_latest_timestamp(tmp_path):
    tables = world()
    tables["events"].loc[0, "ts"] = pd.Timestamp("2026-05-01")  # future: not counted
    _, report = _validate(tables, tmp_path, manifest=False)
    assert report.data_end_from == "data"
    assert report.data_end == date(2026, 1, 1)  # the latest event is 2025-12-31 23:59:59


# ----------------------------------------------------------------------------- quarantine


def test_quarantine_keeps_original_columns_and_joins_reasons(tmp_path):
    tables = world()
    tables["events"]["channel"] = "web"  # a column outside the contract travels along
    tables["events"].loc[5, ["ts", "actor", "quantity"]] = [pd.Timestamp("2027-01-01"), "bot", -1.0]
    _, report = _validate(tables, tmp_path)
    q = _quarantine(report, "events")
    assert list(q.columns) == list(tables["events"].columns) + ["reason"]
    assert q["reason"].tolist() == ["ts in the future; unknown actor; negative quantity"]
    assert q["channel"].tolist() == ["web"]


def test_stale_quarantine_file_is_removed_and_none_dir_writes_nothing(tmp_path):
    qdir = tmp_path / "q"
    claim_quarantine_dir(qdir)  # a quarantine nrrcast wrote before (marked as its own)
    (qdir / "events.parquet").write_bytes(b"stale")
    src = open_source(write_source(world(), tmp_path / "src"))
    report = validate(src, now=NOW, quarantine_dir=qdir)
    assert not (qdir / "events.parquet").exists()
    bad = world()
    bad["subscriptions"].loc[0, "mrr"] = -1.0
    src = open_source(write_source(bad, tmp_path / "bad"))
    report = validate(src, now=NOW, quarantine_dir=None)
    assert report.counts["subscriptions"].quarantined == 1
    assert report.quarantine_files == {}


# ----------------------------------------------------------------------------- formats


def _messy() -> dict[str, pd.DataFrame]:
    """A book with one problem of several kinds, so every path filters something."""
    tables = world()
    tables["accounts"].loc[2, "tam_usd"] = -4.0
    tables["subscriptions"].loc[1, "mrr"] = -5.0
    tables["users"] = pd.concat([tables["users"], tables["users"].iloc[[2]]], ignore_index=True)
    tables["events"].loc[0, "user_id"] = "U99"
    tables["events"].loc[1, "ts"] = pd.Timestamp("2026-02-01")
    tables["events"].loc[2, "actor"] = "Agent "
    tables["tickets"].loc[0, "csat"] = 9
    return tables


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(list(df.columns), na_position="last").reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["csv", "duckdb"])
def test_csv_parquet_and_duckdb_give_the_same_clean_tables(tmp_path, fmt):
    tables = _messy()
    ref_src, ref = _validate(tables, tmp_path, "parquet")
    src, report = _validate(tables, tmp_path, fmt)
    assert report.counts == ref.counts
    assert report.to_frame()[lambda d: d.action != "info"].equals(
        ref.to_frame()[lambda d: d.action != "info"]
    )
    for name in TABLES:
        got, want = _sorted(_clean(src, name)), _sorted(_clean(ref_src, name))
        pd.testing.assert_frame_equal(got, want, check_dtype=True)
    assert sorted(_quarantine(report, "events")["reason"]) == sorted(
        _quarantine(ref, "events")["reason"]
    )


def test_csv_events_are_materialized_and_parquet_events_filtered_in_a_view(tmp_path):
    tables = _messy()
    src, report = _validate(tables, tmp_path, "parquet")
    sql = src.con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'events'").fetchone()[0]
    assert "_nrr_badkeys_events_user_id" in sql and "2026-01-01" in sql
    assert "_nrr_badkeys_events_account_id" not in sql  # that check found nothing
    csv_src, _ = _validate(tables, tmp_path, "csv")
    kinds = dict(csv_src.con.execute("SELECT table_name, 'table' FROM duckdb_tables()").fetchall())
    assert "events" in kinds


def test_report_summary_and_frames(tmp_path):
    _, report = _validate(_messy(), tmp_path)
    text = report.summary()
    assert "input contract v1: OK" in text
    assert "subscriptions.mrr" in text and "negative mrr" in text
    assert "quarantined rows written to" in text
    frame = report.to_frame()
    assert list(frame.columns) == ["table", "column", "problem", "rows", "action"]
    assert set(frame["action"]) <= {"error", "quarantined", "warning", "info"}
    counts = report.counts_frame()
    assert (counts["read"] == counts["clean"] + counts["quarantined"]).all()
    assert json.dumps(report.as_dict())  # JSON-ready for run tracking


def test_summary_of_a_failed_run_lists_errors_first(tmp_path):
    tables = world()
    tables["events"] = tables["events"].drop(columns=["ts"])
    tables["subscriptions"].loc[0, "mrr"] = -1.0
    _, report = _validate(tables, tmp_path)
    text = report.summary()
    assert text.startswith("input contract v1: FAILED (1 errors")
    lines = [line for line in text.splitlines() if line.startswith(("error", "quarantined"))]
    assert lines[0].startswith("error") and "events.ts" in lines[0]
    assert "required column missing" in lines[0] and " 41 " in lines[0]


def test_now_must_be_a_date(tmp_path):
    src = open_source(write_source(world(), tmp_path / "src"))
    with pytest.raises(TypeError, match="now must be a date or datetime"):
        validate(src, now="2026-01-01", quarantine_dir=None)  # type: ignore[arg-type]


def test_validating_twice_on_one_connection_gives_the_same_result(tmp_path):
    src = open_source(write_source(_messy(), tmp_path / "src"))
    first = validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    events = _sorted(_clean(src, "events"))
    second = validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    assert second.counts == first.counts and second.problems == first.problems
    pd.testing.assert_frame_equal(_sorted(_clean(src, "events")), events)
