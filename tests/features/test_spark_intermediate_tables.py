"""Intermediate tables on Spark are cached DataFrames: nothing is written to disk, an
INSERT appends by position in the table's types, errors surface at the statement (as on
DuckDB), and dropping a table releases its cache."""

from __future__ import annotations

import pytest

from features.spark_engine import SparkConnection

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


def _persisted(spark) -> int:
    return spark.sparkContext._jsc.getPersistentRDDs().size()


def test_insert_appends_by_position_in_the_tables_types(spark, tmp_path):
    with SparkConnection(spark, location=str(tmp_path)) as con:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _nrr_t AS SELECT 1 AS a, CAST(0.5 AS DOUBLE) AS b"
        )
        con.execute("INSERT INTO _nrr_t SELECT 2 AS b, 3 AS a")  # names ignored, as in SQL
        con.execute("INSERT INTO _nrr_t SELECT 4, 5")
        assert con.execute("DESCRIBE _nrr_t").fetchall()[1][:2] == ("b", "DOUBLE")
        rows = con.execute("SELECT a, b FROM _nrr_t ORDER BY a").fetchall()
        assert rows == [(1, 0.5), (2, 3.0), (4, 5.0)]
        assert ("_nrr_t",) in con.execute(
            "SELECT table_name FROM information_schema.tables"
        ).fetchall()
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert files == []  # no Parquet round trip


def test_a_failing_statement_fails_when_run(spark):
    with SparkConnection(spark) as con, pytest.raises(Exception, match="DIVIDE_BY_ZERO"):
        con.execute("CREATE TEMP TABLE _nrr_bad AS SELECT 1 / 0 AS x")  # ANSI, eagerly


def test_dropping_a_table_releases_its_cache(spark):
    before = _persisted(spark)
    with SparkConnection(spark) as con:
        con.execute("CREATE TEMP TABLE _nrr_a AS SELECT 1 AS a")
        con.execute("INSERT INTO _nrr_a SELECT 2")
        con.execute("CREATE TEMP TABLE _nrr_b AS SELECT 3 AS b")  # (equal plans share one)
        assert _persisted(spark) == before + 3
        con.execute("DROP TABLE IF EXISTS _nrr_a")
        assert _persisted(spark) == before + 1
        con.execute("CREATE OR REPLACE TEMP TABLE _nrr_b AS SELECT 4 AS b")  # replaced
        assert _persisted(spark) == before + 1
    assert _persisted(spark) == before  # close releases the rest
    assert not spark.catalog.tableExists("_nrr_b")
