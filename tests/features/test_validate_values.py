"""Values a careless or hostile export holds: ancient dates, infinities, mixed time zones,
undecodable bytes, odd delimiters, unreadable files. Each ends in a quarantine with a
reason or in one clear error naming the table and file; nothing is accepted silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_validate import (
    NOW,
    _assert_bookkeeping,
    _clean,
    _problem,
    _quarantine,
    _to_arrow,
    _validate,
    world,
    write_source,
)

from features.contract import DEFAULT_FLOOR
from features.sources import open_source
from features.validate import validate

ROOT = Path(__file__).resolve().parents[2]


def _csv_source(tables: dict[str, pd.DataFrame], root: Path) -> Path:
    return write_source(tables, root, "csv")


# ----------------------------------------------------------------------------- the floor


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("events", "ts", pd.Timestamp("1900-01-01 10:00")),
        ("accounts", "created_at", pd.Timestamp("1900-01-01")),
        ("users", "created_at", pd.Timestamp("1899-12-31 23:00")),
        ("tickets", "created_at", pd.Timestamp("1970-01-01")),
        ("subscriptions", "start_date", date(1900, 1, 1)),
    ],
)
def test_timestamps_before_the_floor_are_set_aside(tmp_path, table, column, value):
    tables = world()
    tables[table].loc[1, column] = value
    _, report = _validate(tables, tmp_path)
    p = _problem(report, table, column, "before the floor")
    assert p.rows == 1 and p.action == "quarantined"
    assert "2000-01-01" in p.problem
    q = _quarantine(report, table)
    assert f"{column} before the floor (2000-01-01)" in q["reason"].iloc[0]


def test_fifty_events_from_1900_do_not_move_the_data_start(tmp_path):
    tables = world()
    ev = tables["events"]
    old = ev.iloc[:1].copy()
    extra = pd.concat([old] * 50, ignore_index=True)
    extra["ts"] = pd.Series(pd.to_datetime(["1900-06-01"] * 50)).astype("datetime64[us]")
    tables["events"] = pd.concat([ev, extra], ignore_index=True)
    src, report = _validate(tables, tmp_path)
    assert report.counts["events"].quarantined == 50
    first = src.con.execute("SELECT min(ts) FROM events").fetchone()[0]
    assert first.year == 2025


def test_floor_is_a_parameter_and_end_dates_before_it_are_set_aside(tmp_path):
    tables = world()
    tables["events"].loc[0, "ts"] = pd.Timestamp("1990-05-01")
    tables["tickets"].loc[0, ["created_at", "closed_at"]] = [
        pd.Timestamp("1985-01-01"),
        pd.Timestamp("1986-01-01"),
    ]
    src = open_source(write_source(tables, tmp_path / "src"))
    report = validate(src, now=NOW, quarantine_dir=tmp_path / "q", floor=date(1980, 1, 1))
    _assert_bookkeeping(src.con, report, tmp_path / "q")
    assert report.ok and report.counts["events"].quarantined == 0
    assert report.counts["tickets"].quarantined == 0
    assert date(2000, 1, 1) == DEFAULT_FLOOR
    tables["tickets"].loc[0, ["created_at", "closed_at"]] = [
        pd.Timestamp("2025-01-01"),
        pd.Timestamp("1960-01-01"),
    ]
    _, report = _validate(tables, tmp_path / "b")
    assert _problem(report, "tickets", "closed_at", "before the floor").rows == 1


# ------------------------------------------------------------------------- non-finite


@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_quantity_is_set_aside(tmp_path, value):
    tables = world()
    tables["events"].loc[3, "quantity"] = value
    src, report = _validate(tables, tmp_path)
    p = _problem(report, "events", "quantity", "not a finite number")
    assert p.rows == 1 and p.action == "quarantined"
    assert "non-finite quantity" in _quarantine(report, "events")["reason"].iloc[0]
    finite = src.con.execute("SELECT bool_and(isfinite(quantity)) FROM events").fetchone()[0]
    assert finite


def test_infinite_mrr_is_set_aside(tmp_path):
    tables = world()
    tables["subscriptions"].loc[2, "mrr"] = np.inf
    _, report = _validate(tables, tmp_path)
    assert _problem(report, "subscriptions", "mrr", "not a finite number").rows == 1
    assert report.counts["subscriptions"].quarantined == 1


@pytest.mark.parametrize(("table", "column"), [("accounts", "tam_usd"), ("plans", "usage_limit")])
def test_infinite_enrichment_value_becomes_unknown_with_a_warning(tmp_path, table, column):
    tables = world()
    tables[table].loc[0, column] = np.inf
    src, report = _validate(tables, tmp_path)
    p = _problem(report, table, column, "not a finite number")
    assert p.rows == 1 and p.action == "warning" and "NULL" in p.problem
    assert report.counts[table].quarantined == 0
    values = _clean(src, table)[column]
    assert values.isna().sum() == tables[table][column].isna().sum() + 1


def test_infinity_written_as_text_in_a_csv_is_set_aside(tmp_path):
    tables = world()
    tables["events"]["quantity"] = tables["events"]["quantity"].astype(str)
    tables["events"].loc[[0, 1, 2], "quantity"] = ["inf", "-Infinity", "1e400"]
    tables["subscriptions"]["mrr"] = tables["subscriptions"]["mrr"].astype(str)
    tables["subscriptions"].loc[0, "mrr"] = "Infinity"
    _, report = _validate(tables, tmp_path, fmt="csv")
    assert report.counts["events"].quarantined == 3
    assert report.counts["subscriptions"].quarantined == 1


def test_nan_mrr_is_set_aside_and_nan_quantity_takes_the_default(tmp_path):
    tables = world()
    tables["subscriptions"].loc[0, "mrr"] = np.nan
    tables["events"].loc[0, "quantity"] = np.nan
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "subscriptions", "mrr", "null mrr").rows == 1
    assert report.counts["events"].quarantined == 0
    assert src.con.execute("SELECT count(*) FROM events WHERE isnan(quantity)").fetchone()[0] == 0


# ------------------------------------------------------------------------- time zones

_TZ_SCRIPT = """
import json, sys
from features.sources import open_source
from features.validate import validate
src = open_source(sys.argv[1])
report = validate(src, now=__import__("datetime").datetime(2026, 1, 1), quarantine_dir=None)
rows = src.con.execute(
    "SELECT CAST(ts AS VARCHAR) FROM events ORDER BY ts, account_id, user_id"
).fetchall()
accounts = src.con.execute(
    "SELECT CAST(created_at AS VARCHAR) FROM accounts ORDER BY account_id"
).fetchall()
print(json.dumps({"ts": [r[0] for r in rows], "accounts": [r[0] for r in accounts],
                  "q": report.counts["events"].quarantined}))
"""


def _run_under_tz(path: Path, tz: str) -> dict:
    env = {**os.environ, "TZ": tz, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _TZ_SCRIPT, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mixed_aware_and_naive_parts_give_the_same_utc_times_in_any_host_time_zone(tmp_path):
    tables = world()
    root = write_source(tables, tmp_path / "src")
    # rewrite the second events part with a time-zone-aware column (same instants, UTC)
    part = root / "events" / "part-001.parquet"
    t = pq.read_table(part)
    i = t.schema.get_field_index("ts")
    t = t.set_column(i, "ts", t.column("ts").cast(pa.timestamp("us", tz="UTC")))
    pq.write_table(t, part)
    # and the accounts as aware times in New York (converted to UTC on load)
    acc = tables["accounts"].copy()
    acc["created_at"] = acc["created_at"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    pq.write_table(_to_arrow(acc), root / "accounts.parquet")
    utc = _run_under_tz(root, "UTC")
    ny = _run_under_tz(root, "America/New_York")
    tokyo = _run_under_tz(root, "Asia/Tokyo")
    assert utc == ny == tokyo
    expected = sorted(str(pd.Timestamp(v)) for v in tables["events"]["ts"])
    assert sorted(pd.Timestamp(v).isoformat(sep=" ") for v in utc["ts"]) == [
        pd.Timestamp(v).isoformat(sep=" ") for v in expected
    ]
    assert utc["accounts"][0].startswith("2024-01-10 00:00:00")


def test_session_time_zone_of_a_passed_connection_does_not_shift_times(tmp_path):
    import duckdb

    tables = world()
    root = write_source(tables, tmp_path / "src")
    part = root / "events" / "part-000.parquet"
    t = pq.read_table(part)
    i = t.schema.get_field_index("ts")
    pq.write_table(t.set_column(i, "ts", t.column("ts").cast(pa.timestamp("us", tz="UTC"))), part)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/New_York'")
    src = open_source(root, con=con)
    validate(src, now=NOW, quarantine_dir=None)
    got = sorted(src.con.execute("SELECT ts FROM events").df()["ts"].astype(str))
    assert got == sorted(tables["events"]["ts"].astype(str))


# ------------------------------------------------------------------------- unreadable input


def test_non_utf8_bytes_in_a_csv_are_an_error_naming_table_file_and_line(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    path = root / "accounts.csv"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"Beta", b"B\xe9ta")  # latin-1 e-acute on line 3
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError) as err:  # found when the view is made, or when read
        validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    msg = str(err.value)
    assert type(err.value).__name__ == "InputError"
    assert "accounts" in msg and "accounts.csv" in msg and "line 3" in msg and "UTF-8" in msg
    assert "Traceback" not in msg and len(msg.splitlines()) <= 3


def test_table_stored_as_a_file_and_a_directory_is_an_error_naming_both(tmp_path):
    root = write_source(world(), tmp_path / "src")
    pq.write_table(pq.read_table(root / "events" / "part-000.parquet"), root / "events.parquet")
    with pytest.raises(ValueError) as err:
        open_source(root)
    msg = str(err.value)
    assert type(err.value).__name__ == "InputError"
    assert "'events'" in msg and "events.parquet" in msg and "events/part-000.parquet" in msg


def test_truncated_parquet_part_is_an_error_naming_table_and_file(tmp_path):
    root = write_source(world(), tmp_path / "src")
    part = root / "events" / "part-001.parquet"
    part.write_bytes(part.read_bytes()[:100])
    with pytest.raises(ValueError) as err:
        src = open_source(root)
        validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    msg = str(err.value)
    assert type(err.value).__name__ == "InputError"
    assert "events" in msg and "part-001.parquet" in msg and "not a readable Parquet" in msg
    assert "LINE 1" not in msg


@pytest.mark.parametrize("table", ["events", "accounts", "subscriptions"])
def test_empty_needed_table_is_an_input_error(tmp_path, table):
    tables = world()
    tables[table] = tables[table].iloc[:0]
    src = open_source(write_source(tables, tmp_path / "src"))
    with pytest.raises(ValueError, match=f"table {table} has no usable rows") as err:
        validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    assert type(err.value).__name__ == "InputError" and "0 read" in str(err.value)


def test_events_all_set_aside_is_an_error_pointing_at_the_quarantine(tmp_path):
    tables = world()
    tables["events"]["ts"] = pd.Series([pd.Timestamp("1900-01-01")] * len(tables["events"]))
    tables["events"]["ts"] = tables["events"]["ts"].astype("datetime64[us]")
    src = open_source(write_source(tables, tmp_path / "src"))
    with pytest.raises(ValueError, match="table events has no usable rows") as err:
        validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    assert "41 set aside; see" in str(err.value) and "events.parquet" in str(err.value)
    assert pq.read_metadata(tmp_path / "q" / "events.parquet").num_rows == 41


def test_empty_tickets_table_is_fine(tmp_path):
    tables = world()
    tables["tickets"] = tables["tickets"].iloc[:0]
    _, report = _validate(tables, tmp_path)
    assert report.ok


def test_decimal_commas_of_a_semicolon_csv_are_named(tmp_path):
    tables = world()
    root = _csv_source(tables, tmp_path / "src")
    for name, df in tables.items():
        df.to_csv(root / f"{name}.csv", sep=";", index=False, decimal=",")
    src = open_source(root)
    report = validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    p = _problem(report, "subscriptions", "mrr", "decimal comma")
    assert "';'" in p.problem


def test_header_split_on_another_delimiter_is_named(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    (root / "plans.csv").write_text(
        'plan;seat_limit;usage_limit\n"starter";10;"1;0"\ngrowth,a;50,b;1e6\nx;y;z;w\n'
    )
    src = open_source(root)
    report = validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    hits = [p for p in report.problems if p.table == "plans" and "delimit" in p.problem]
    assert hits and "';'" in hits[0].problem and hits[0].action == "error"


def test_now_and_floor_accept_datetime_objects(tmp_path):
    tables = world()
    tables["events"].loc[0, "ts"] = pd.Timestamp("2010-01-01")
    src = open_source(write_source(tables, tmp_path / "src"))
    report = validate(src, now=NOW, quarantine_dir=None, floor=datetime(2015, 1, 1))
    assert report.counts["events"].quarantined == 1


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
@pytest.mark.parametrize("name", ["_nrr_q", "_T_ACCOUNT_ID", "_f_0"])
def test_source_column_with_a_reserved_name_is_an_error_naming_it(tmp_path, fmt, name):
    tables = world()
    tables["subscriptions"][name] = "x"
    src = open_source(write_source(tables, tmp_path / "src", fmt))
    with pytest.raises(ValueError) as err:
        validate(src, now=NOW, quarantine_dir=tmp_path / "q")
    assert type(err.value).__name__ == "InputError"
    assert "'subscriptions'" in str(err.value) and repr(name) in str(err.value)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_two_columns_differing_only_in_case_are_a_warning_naming_both(tmp_path, fmt):
    tables = world()
    tables["accounts"]["ACCOUNT_ID"] = tables["accounts"]["account_id"].str.lower()
    src, report = _validate(tables, tmp_path, fmt=fmt)
    p = _problem(report, "accounts", "ACCOUNT_ID_1", "a second 'account_id' column")
    assert p.action == "warning" and "keep one of them" in p.problem
    assert sorted(_clean(src, "accounts")["account_id"]) == ["A1", "A2", "A3", "A4"]


def test_corrupt_gzip_csv_is_an_error_naming_the_file(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    (root / "tickets.csv").unlink()
    (root / "tickets.csv.gz").write_bytes(b"\x1f\x8b\x08not gzip at all")
    with pytest.raises(ValueError) as err:
        validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    assert type(err.value).__name__ == "InputError"
    assert "tickets.csv.gz" in str(err.value) and "gzip" in str(err.value)


def test_zero_byte_csv_is_named_as_an_empty_file(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    (root / "tickets.csv").write_bytes(b"")
    report = validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    assert _problem(report, "tickets", None, "empty file").action == "error"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"data_end": "soon"}', "is not a date"),
        (b'{"data_end": "caf\xe9"}', "not UTF-8"),
    ],
)
def test_bad_manifest_is_an_input_error_naming_the_file(tmp_path, content, match):
    root = write_source(world(), tmp_path / "src")
    (root / "manifest.json").write_bytes(content)
    with pytest.raises(ValueError, match=match) as err:
        open_source(root)
    assert type(err.value).__name__ == "InputError" and "manifest.json" in str(err.value)


def test_amounts_above_the_ceiling_are_set_aside_or_unknown(tmp_path):
    tables = world()
    tables["subscriptions"].loc[0, "mrr"] = 1e308  # 12 x mrr would be infinite ARR
    tables["subscriptions"].loc[1, "term_months"] = 2**40  # overflowed renewal dates
    tables["events"].loc[0, "quantity"] = 1e16
    tables["accounts"].loc[0, "tam_usd"] = 1e300
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "subscriptions", "mrr", "mrr above 1e+15").action == "quarantined"
    assert _problem(report, "events", "quantity", "above 1e+15").rows == 1
    assert _problem(report, "subscriptions", "term_months", "above 600").action == "warning"
    assert _problem(report, "accounts", "tam_usd", "above 1e+15").action == "warning"
    subs = _clean(src, "subscriptions").set_index("subscription_id")
    assert "S1" not in subs.index and pd.isna(subs.loc["S2", "term_months"])


def test_features_of_a_book_with_absurd_amounts_stay_finite(tmp_path):
    from features.build import build_feature_table

    tables = world()
    tables["subscriptions"]["mrr"] = [1e308, 1e308, 1.0, 2.0, 3.0]
    tables["subscriptions"]["term_months"] = pd.array([2**40] * 5, dtype="Int64")
    src, _ = _validate(tables, tmp_path)
    df = build_feature_table(src.con, [date(2025, 7, 1)], data_end=date(2026, 1, 1), progress=False)
    num = df.select_dtypes("number")
    assert not np.isinf(num.to_numpy(dtype=float, na_value=np.nan)).any()


def _edit_line(path: Path, number: int, old: bytes, new: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    assert old in lines[number - 1]
    lines[number - 1] = lines[number - 1].replace(old, new)
    path.write_bytes(b"\n".join(lines))


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (b'"Beta"', b'"Beta', "line 3: broken quoting"),
        (b'"retail"', b'"retail","x","y"', "line 3: 11 fields where the header has 9"),
    ],
)
def test_csv_line_that_breaks_the_dialect_is_named(tmp_path, old, new, says):
    root = _csv_source(world(), tmp_path / "src")
    _edit_line(root / "accounts.csv", 3, old, new)
    report = validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    assert _problem(report, "accounts", None, says).action == "error"
    assert report.errors[0].column is None  # the cause comes before the columns it hides


def test_utf16_csv_is_named_as_such(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    path = root / "plans.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    with pytest.raises(ValueError, match="plans.csv is UTF-16 encoded") as err:
        validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    assert type(err.value).__name__ == "InputError"


def test_overlong_csv_line_error_says_why(tmp_path):
    root = _csv_source(world(), tmp_path / "src")
    _edit_line(root / "accounts.csv", 3, b'"Beta"', b'"' + b"x" * 2_100_000 + b'"')
    with pytest.raises(ValueError, match=r"accounts\.csv.*Maximum line size") as err:
        validate(open_source(root), now=NOW, quarantine_dir=tmp_path / "q")
    assert type(err.value).__name__ == "InputError" and "LINE 1" not in str(err.value)


def test_text_timestamps_with_zone_names_or_offsets_are_converted_to_utc(tmp_path):
    tables = world()
    ev = tables["events"]
    ev["ts"] = ev["ts"].astype(str).astype(object)
    ev.loc[0, "ts"] = "2025-06-01 10:00 Europe/Paris"  # CEST: UTC+2
    ev.loc[1, "ts"] = "2025-06-01 10:00:00 America/New_York"  # EDT: UTC-4
    ev.loc[2, "ts"] = "2025-06-01T10:00:00+05:30"
    ev.loc[3, "ts"] = "2025-06-01 10:00 Mars/Olympus"  # no such zone: set aside
    src, report = _validate(tables, tmp_path, fmt="csv")
    assert _problem(report, "events", "ts", "not a TIMESTAMP").rows == 1
    got = src.con.execute(
        "SELECT ts FROM events WHERE ts::DATE = DATE '2025-06-01' AND minute(ts) IN (0, 30) "
        "ORDER BY ts"
    ).fetchall()
    assert [r[0] for r in got] == [
        datetime(2025, 6, 1, 4, 30),
        datetime(2025, 6, 1, 8, 0),
        datetime(2025, 6, 1, 14, 0),
    ]


def test_a_floor_after_the_data_end_is_an_input_error(tmp_path):
    src = open_source(write_source(world(), tmp_path / "src"))
    with pytest.raises(ValueError, match="floor 2026-06-01 is not before") as err:
        validate(src, now=NOW, quarantine_dir=None, floor=date(2026, 6, 1))
    assert type(err.value).__name__ == "InputError"


@pytest.mark.parametrize("floor", [None, "1890-01-01"])
def test_config_data_floor_reaches_validation_in_the_commands(tmp_path, floor, capsys):
    import yaml

    from flows.commands import run_validate
    from flows.tasks import open_validated

    tables = world()
    tables["events"].loc[0, "ts"] = pd.Timestamp("1900-01-01 10:00")
    root = write_source(tables, tmp_path / "src")
    cfg = {"paths": {"quarantine": str(tmp_path / "q")}}
    if floor:
        cfg["features"] = {"data_floor": floor}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert run_validate(path, source=root)
    out = capsys.readouterr().out
    assert ("before the floor (2000-01-01)" in out) is (floor is None)
    from flows.config import load_config

    loaded = open_validated(root, tmp_path / "q2", floor=load_config(path).features.data_floor)
    with loaded.source:
        kept = loaded.report.counts["events"].clean
    assert kept == (41 if floor else 40)
