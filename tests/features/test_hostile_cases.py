"""Named hostile cases, one line each: what an export may hold and how validation ends.

Each case breaks the small clean book of `test_validate.world` in one way (in the tables
or in the written files) and states the outcome: ``ok`` (accepted, nothing set aside),
``quarantine <table>`` (rows set aside with a reason), ``report <text>`` (a contract error
in the report) or ``raises <text>`` (an `InputError` naming the file). Every run that
ends in a report also keeps the bookkeeping: read = clean + quarantined in every table.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_validate import NOW, _assert_bookkeeping, world, write_source

from features.sources import open_source
from features.validate import validate

Tables = dict[str, pd.DataFrame]


def _set(table: str, column: str, row: int, value: object) -> Callable[[Tables], None]:
    def apply(t: Tables) -> None:
        if isinstance(value, str) and not pd.api.types.is_string_dtype(t[table][column]):
            t[table][column] = t[table][column].astype(str).astype(object)
        t[table].loc[row, column] = value

    return apply


def _column(table: str, column: str, values: object) -> Callable[[Tables], None]:
    def apply(t: Tables) -> None:
        t[table][column] = values

    return apply


def _part(column: str, typ: pa.DataType) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        part = root / "events" / "part-001.parquet"
        t = pq.read_table(part)
        i = t.schema.get_field_index(column)
        pq.write_table(t.set_column(i, column, t.column(i).cast(typ)), part)

    return apply


def _csv_bytes(table: str, edit: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        path = root / f"{table}.csv"
        path.write_bytes(edit(path.read_bytes()))

    return apply


def _duckdb(sql: str) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        con = duckdb.connect(str(root / "book.duckdb"))
        con.execute(sql)
        con.close()

    return apply


_PLANS_VIEW = "ALTER TABLE plans RENAME TO plans_t; CREATE VIEW plans AS SELECT plan, seat_limit, "

CASES = [
    # (id, format, table edit, file edit, expected outcome)
    ("nul-in-name", "parquet", _set("accounts", "name", 0, "a\x00b"), None, "ok"),
    ("nul-in-name-csv", "csv", _set("accounts", "name", 0, "a\x00b"), None, "ok"),
    ("one-megabyte-name", "parquet", _set("accounts", "name", 0, "x" * 1_000_000), None, "ok"),
    ("emoji-and-rtl-event", "csv", _set("events", "event", 0, "\U0001f680\u202eevil"), None, "ok"),
    ("formula-account-name", "csv", _set("accounts", "name", 1, "=HYPERLINK(1)"), None, "ok"),
    ("quote-in-ids", "parquet", _set("accounts", "name", 1, 'O\'Brien "&" Co'), None, "ok"),
    (
        "sql-in-event-name",
        "csv",
        _set("events", "event", 3, "'; DROP TABLE events; --"),
        None,
        "ok",
    ),
    ("negative-zero-mrr", "parquet", _set("subscriptions", "mrr", 0, -0.0), None, "ok"),
    ("tiny-subnormal-quantity", "parquet", _set("events", "quantity", 0, 5e-324), None, "ok"),
    (
        "mrr-1e308",
        "parquet",
        _set("subscriptions", "mrr", 0, 1e308),
        None,
        "quarantine subscriptions",
    ),
    (
        "nan-text-mrr-csv",
        "csv",
        _set("subscriptions", "mrr", 0, "NaN"),
        None,
        "quarantine subscriptions",
    ),
    (
        "inf-text-quantity-csv",
        "csv",
        _set("events", "quantity", 0, "inf"),
        None,
        "quarantine events",
    ),
    ("hex-quantity-csv", "csv", _set("events", "quantity", 0, "0x10"), None, "quarantine events"),
    (
        "uint64-employees",
        "parquet",
        _column("accounts", "employees", pd.Series([2**64 - 1, 1, 2, 3], dtype="uint64")),
        None,
        "quarantine accounts",
    ),
    (
        "huge-seats",
        "parquet",
        _column("subscriptions", "seats", pd.array([2**62] * 5, dtype="Int64")),
        None,
        "ok",
    ),
    (
        "ts-year-1",
        "parquet",
        _set("events", "ts", 0, pd.Timestamp("0001-01-01")),
        None,
        "quarantine events",
    ),
    (
        "ts-epoch",
        "parquet",
        _set("events", "ts", 0, pd.Timestamp("1970-01-01")),
        None,
        "quarantine events",
    ),
    (
        "ts-year-9999",
        "csv",
        _set("events", "ts", 0, "9999-12-31 23:59:59"),
        None,
        "quarantine events",
    ),
    (
        "ts-day-month-year",
        "csv",
        _set("events", "ts", 0, "01/06/2025 10:00"),
        None,
        "quarantine events",
    ),
    (
        "ts-impossible-day",
        "csv",
        _set("events", "ts", 0, "2025-02-30 10:00"),
        None,
        "quarantine events",
    ),
    ("ts-iso-z", "csv", _set("events", "ts", 0, "2025-06-01T10:00:00Z"), None, "ok"),
    ("ts-offset", "csv", _set("events", "ts", 0, "2025-06-01 10:00:00+05:30"), None, "ok"),
    (
        "ts-named-zone",
        "csv",
        _set("events", "ts", 0, "2025-06-01 10:00 Europe/Paris"),
        None,
        "ok",
    ),
    (
        "ts-unknown-zone",
        "csv",
        _set("events", "ts", 0, "2025-06-01 10:00 Mars/Base"),
        None,
        "quarantine events",
    ),
    (
        "excel-serial-date",
        "csv",
        _set("tickets", "created_at", 0, "45748"),
        None,
        "quarantine tickets",
    ),
    (
        "date-as-dd-mm-yyyy",
        "csv",
        _set("subscriptions", "start_date", 0, "10/01/2024"),
        None,
        "quarantine subscriptions",
    ),
    ("bool-yes-no", "csv", _set("users", "is_agent", 0, "maybe"), None, "quarantine users"),
    ("parts-double-and-text", "parquet", None, _part("quantity", pa.string()), "ok"),
    ("parts-timestamp-and-date", "parquet", None, _part("ts", pa.date32()), "ok"),
    ("parts-us-and-ns", "parquet", None, _part("ts", pa.timestamp("ns")), "ok"),
    ("parts-naive-and-aware", "parquet", None, _part("ts", pa.timestamp("us", tz="UTC")), "ok"),
    (
        "parts-aware-kolkata",
        "parquet",
        None,
        _part("ts", pa.timestamp("us", tz="Asia/Kolkata")),
        "ok",
    ),
    ("utf8-bom", "csv", None, _csv_bytes("accounts", lambda b: b"\xef\xbb\xbf" + b), "ok"),
    ("crlf", "csv", None, _csv_bytes("events", lambda b: b.replace(b"\n", b"\r\n")), "ok"),
    (
        "tab-delimited",
        "csv",
        None,
        _csv_bytes("subscriptions", lambda b: b.replace(b",", b"\t")),
        "ok",
    ),
    (
        "pipe-delimited",
        "csv",
        None,
        _csv_bytes("subscriptions", lambda b: b.replace(b",", b"|")),
        "ok",
    ),
    (
        "semicolon-delimited",
        "csv",
        None,
        _csv_bytes("tickets", lambda b: b.replace(b",", b";")),
        "ok",
    ),
    (
        "trailing-delimiter",
        "csv",
        None,
        _csv_bytes("plans", lambda b: b.replace(b"\n", b",\n")),
        "ok",
    ),
    ("no-header", "csv", None, _csv_bytes("plans", lambda b: b.split(b"\n", 1)[1]), "report plans"),
    (
        "header-only-events",
        "csv",
        None,
        _csv_bytes("events", lambda b: b.split(b"\n", 1)[0] + b"\n"),
        "raises table events has no usable rows",
    ),
    ("whitespace-file", "csv", None, _csv_bytes("plans", lambda b: b"  \n\n"), "report empty file"),
    (
        "latin1-whole-file",
        "csv",
        None,
        _csv_bytes("accounts", lambda b: b.replace(b"Acme", b"Acm\xe9")),
        "raises not valid UTF-8",
    ),
    (
        "cp1252-smart-quotes",
        "csv",
        None,
        _csv_bytes("tickets", lambda b: b.replace(b'"high"', b'"\x93high\x94"')),
        "raises not valid UTF-8",
    ),
    (
        "parquet-zero-bytes",
        "parquet",
        None,
        lambda r: (r / "plans.parquet").write_bytes(b""),
        "raises plans.parquet",
    ),
    (
        "parquet-garbage",
        "parquet",
        None,
        lambda r: (r / "accounts.parquet").write_bytes(b"PAR1xxxxPAR1"),
        "raises accounts.parquet",
    ),
    (
        "duckdb-garbage",
        "duckdb",
        None,
        lambda r: (r / "book.duckdb").write_bytes(b"x" * 4096),
        "raises cannot open as a DuckDB database",
    ),
    (
        "empty-events-dir",
        "parquet",
        None,
        lambda r: [p.unlink() for p in (r / "events").iterdir()],
        "report required table missing",
    ),
    (
        "duckdb-quote-in-schema-name",
        "duckdb",
        None,
        _duckdb(
            'CREATE SCHEMA "we\'ird""s"; CREATE TABLE "we\'ird""s".plans AS '
            "SELECT * FROM plans; DROP TABLE plans"
        ),
        "ok",
    ),
    (
        "duckdb-view-dividing-by-zero",
        "duckdb",
        None,
        _duckdb(_PLANS_VIEW + "1/0 AS usage_limit FROM plans_t"),
        "ok",
    ),
    (
        "duckdb-view-failing-when-read",
        "duckdb",
        None,
        _duckdb(_PLANS_VIEW + "CAST('x' || plan AS DOUBLE) AS usage_limit FROM plans_t"),
        "raises table 'plans': cannot read .*book.duckdb",
    ),
    (
        "duckdb-timestamptz-tokyo-session",
        "duckdb",
        None,
        _duckdb("SET TimeZone='Asia/Tokyo'; ALTER TABLE events ALTER ts TYPE TIMESTAMPTZ"),
        "ok",
    ),
    (
        "duckdb-struct-quantity",
        "duckdb",
        None,
        _duckdb("ALTER TABLE events DROP quantity; ALTER TABLE events ADD quantity STRUCT(a INT)"),
        "report wrong type",
    ),
    (
        "duckdb-time-created_at",
        "duckdb",
        None,
        _duckdb("ALTER TABLE users ALTER created_at TYPE TIME USING created_at::TIME"),
        "report wrong type",
    ),
    (
        "duckdb-upper-table-name",
        "duckdb",
        None,
        _duckdb("ALTER TABLE tickets RENAME TO TICKETS"),
        "ok",
    ),
    (
        "epoch-seconds-as-double-ts",
        "parquet",
        lambda t: t["events"].__setitem__("ts", t["events"]["ts"].astype("int64") / 1e6),
        None,
        "report wrong type",
    ),
    (
        "schema-only-plans",
        "parquet",
        None,
        lambda r: pq.write_table(
            pq.read_table(r / "plans.parquet").slice(0, 0), r / "plans.parquet"
        ),
        "ok",
    ),
]


@pytest.mark.parametrize(
    ("fmt", "edit", "files", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_hostile_case(tmp_path, fmt, edit, files, expected):
    tables = world()
    if edit is not None:
        edit(tables)
    path = write_source(tables, tmp_path / "src", fmt)
    if files is not None:
        files(tmp_path / "src")
    kind, _, text = expected.partition(" ")
    qdir = tmp_path / "q"
    if kind == "raises":
        with pytest.raises(ValueError, match=text) as err:
            validate(open_source(path), now=NOW, quarantine_dir=qdir)
        assert type(err.value).__name__ == "InputError"
        return
    src = open_source(path)
    report = validate(src, now=NOW, quarantine_dir=qdir)
    _assert_bookkeeping(src.con, report, qdir)
    quarantined = {t for t, c in report.counts.items() if c.quarantined}
    if kind == "ok":
        assert report.ok and not quarantined, report.summary()
    elif kind == "quarantine":
        assert report.ok and text in quarantined, report.summary()
    else:
        assert not report.ok
        assert any(text in f"{p.table} {p.problem}" for p in report.errors), report.summary()
    for name, col in (("subscriptions", "mrr"), ("events", "quantity"), ("accounts", "tam_usd")):
        bad = src.con.execute(f"SELECT count(*) FROM {name} WHERE NOT isfinite({col})")
        assert bad.fetchone()[0] == 0, (name, col)
