"""The rewrite layer's rules, checked on the SQL text alone (no Java needed).

Whether Spark accepts and answers them like DuckDB is tests/features/test_spark_engine.py's job.
"""

from __future__ import annotations

import pytest

from features.spark_dialect import to_spark


def _kinds(sql: str) -> list[str]:
    return [c.kind for c in to_spark(sql)]


def test_temporary_table_and_insert_become_engine_commands():
    (create,) = to_spark("CREATE OR REPLACE TEMPORARY TABLE _nrr_f_x AS SELECT 1 AS a")
    assert (create.kind, create.name, create.sql) == ("table", "_nrr_f_x", "SELECT 1 AS a")
    (plain,) = to_spark("CREATE TABLE accounts AS SELECT any_value(a ORDER BY b) FROM t")
    assert (plain.kind, plain.name) == ("table", "accounts")
    assert plain.sql == "SELECT MIN_BY(a, b) FROM t"  # the expression rules apply
    (insert,) = to_spark("INSERT INTO _nrr_f_x SELECT DATE_DIFF('day', ts, d) FROM t")
    assert (insert.kind, insert.name) == ("insert", "_nrr_f_x")
    assert insert.sql == "SELECT DATEDIFF(CAST(d AS DATE), CAST(ts AS DATE)) FROM t"


def test_views_are_temporary_views():
    (cmd,) = to_spark('CREATE VIEW "events" AS SELECT * FROM raw_events WHERE x > 1')
    assert cmd.sql.startswith("CREATE OR REPLACE TEMPORARY VIEW events AS SELECT")


def test_any_value_with_order_becomes_min_by_or_max_by():
    (cmd,) = to_spark(
        "SELECT any_value(a ORDER BY b) FILTER (WHERE NOT q), any_value(a ORDER BY b DESC) "
        "FROM t GROUP BY k"
    )
    assert "min_by(a, b) filter(where not q)" in cmd.sql.lower()
    assert "max_by(a, b)" in cmd.sql.lower()
    assert "any_value" not in cmd.sql.lower()


def test_day_difference_is_taken_between_dates():
    (cmd,) = to_spark("SELECT DATE_DIFF('day', ts, d) FROM t")
    assert cmd.sql == "SELECT DATEDIFF(CAST(d AS DATE), CAST(ts AS DATE)) FROM t"


def test_engine_commands_for_duckdb_only_statements(tmp_path):
    assert _kinds("SET threads = '2'") == ["noop"]
    assert _kinds("SELECT current_setting('threads')") == ["setting"]
    assert _kinds('DESCRIBE "raw_events"') == ["describe"]
    assert _kinds("SELECT table_name FROM information_schema.tables") == ["tables"]
    assert _kinds("DROP VIEW IF EXISTS accounts") == ["drop"]
    (read,) = to_spark(
        "CREATE OR REPLACE VIEW raw_events AS SELECT * FROM "
        "read_parquet(['/a/p1.parquet', '/a/p2.parquet'], union_by_name = true)"
    )
    assert (read.kind, read.name, read.fmt) == ("read_files", "raw_events", "parquet")
    assert read.files == ("/a/p1.parquet", "/a/p2.parquet")
    assert read.options["union_by_name"] is True
    (csv,) = to_spark(
        "CREATE OR REPLACE VIEW raw_users AS SELECT * FROM "
        "read_csv(['/a/users.csv'], header = true, all_varchar = true)"
    )
    assert (csv.kind, csv.fmt, csv.files) == ("read_files", "csv", ("/a/users.csv",))
    (copy,) = to_spark(f"COPY (SELECT 1 AS a) TO '{tmp_path / 'q.parquet'}' (FORMAT parquet)")
    assert copy.kind == "copy" and copy.path.endswith("q.parquet")
    assert copy.sql == "SELECT 1 AS a"


def test_copy_to_other_formats_is_refused():
    with pytest.raises(ValueError, match="FORMAT parquet"):
        to_spark("COPY (SELECT 1) TO '/tmp/x.csv' (FORMAT csv)")
