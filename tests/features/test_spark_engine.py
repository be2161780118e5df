"""The same recorded statements give the same results on DuckDB and on Apache Spark.

A small simulated world is validated and turned into the feature table on both engines
from the same Parquet files; every row and column must agree. The three dialect traps
found by running SQLGlot's output on Spark are pinned as regression tests: each shows
the plain transpilation failing (or answering differently) and the rewrite layer
(`features.spark_dialect`) giving DuckDB's answer.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot

import simulator
from features.build import build_feature_table
from features.config import FeatureConfig
from features.sources import open_source
from features.spark_dialect import to_spark
from features.spark_engine import SparkConnection, open_spark_source
from features.sqlrun import SqlRunner
from features.validate import validate

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

DATES = [date(2025, 9, 1), date(2025, 11, 1)]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spark_world") / "world"
    simulator.simulate(simulator.SimConfig(accounts=40, months=7, seed=3), out, progress=False)
    return out


def _build(src, quarantine: Path) -> tuple[pd.DataFrame, object, SqlRunner]:
    report = validate(src, now=src.data_end, quarantine_dir=quarantine)
    report.raise_if_failed()
    run = SqlRunner(src.con)
    cfg = FeatureConfig(scan_chunk_months=2)  # chunked scan: CREATE TABLE + INSERT INTO
    table = build_feature_table(
        src.con, DATES, cfg, data_end=report.data_end, progress=False, runner=run
    )
    return table, report, run


@pytest.fixture(scope="module")
def both(world, spark, tmp_path_factory):
    q = tmp_path_factory.mktemp("quarantine")
    with open_source(world) as src:
        duck = _build(src, q / "duckdb")
    src = open_spark_source(world, spark)
    try:
        on_spark = _build(src, q / "spark")
        spark_sql = list(src.con.statements)
    finally:
        src.close()
    return duck, on_spark, spark_sql


def test_feature_table_is_equal_on_both_engines(both):
    (duck, _, _), (spk, _, _), _ = both
    assert len(duck) > 50 and len(duck) == len(spk)
    assert list(duck.columns) == list(spk.columns)
    assert duck["as_of"].nunique() == len(DATES)
    for col in duck.columns:
        a, b = duck[col], spk[col]
        if pd.api.types.is_float_dtype(a):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), col
            ok = ~np.isnan(x)
            np.testing.assert_allclose(y[ok], x[ok], rtol=1e-9, atol=0, err_msg=col)
        else:
            assert (
                a.astype(object).where(a.notna(), None).tolist()
                == b.astype(object).where(b.notna(), None).tolist()
            ), col
    assert duck.attrs["left_out"] == spk.attrs["left_out"]


def test_validation_report_is_equal_on_both_engines(both):
    (_, duck, _), (_, spk, _), _ = both
    assert spk.counts == duck.counts
    assert spk.data_end == duck.data_end
    assert [(p.table, p.column, p.rows, p.action) for p in spk.problems] == [
        (p.table, p.column, p.rows, p.action) for p in duck.problems
    ]


def test_the_same_recorded_statements_ran_on_spark(both):
    (_, _, duck_run), (_, _, spark_run), spark_sql = both
    assert spark_run.statements == duck_run.statements
    assert any(s.startswith("INSERT INTO") for s in spark_run.statements)
    ran = [duckdb_sql for duckdb_sql, _ in spark_sql]
    assert all(s in ran for s in spark_run.statements)
    assert any("any_value(" in s for s in ran)  # validation's parent keys


# ------------------------------------------------------------------ dialect traps


def test_trap_temporary_table_then_insert(spark):
    create = "CREATE OR REPLACE TEMPORARY TABLE _nrr_trap AS SELECT 1 AS a"
    insert = "INSERT INTO _nrr_trap SELECT 2"
    plain = sqlglot.transpile(create, read="duckdb", write="spark")[0]
    assert "VIEW" in plain  # SQLGlot turns it into a temporary view ...
    spark.sql(plain)
    try:
        with pytest.raises(Exception, match="EXPECT_TABLE_NOT_VIEW"):  # ... INSERT then fails
            spark.sql(insert)
    finally:
        spark.catalog.dropTempView("_nrr_trap")
    with SparkConnection(spark) as con:
        con.execute(create)
        con.execute(insert)
        con.execute(insert)
        assert sorted(con.execute("SELECT a FROM _nrr_trap").fetchall()) == [(1,), (2,), (2,)]
        con.execute(create)  # OR REPLACE starts again
        assert con.execute("SELECT count(*) FROM _nrr_trap").fetchone() == (1,)


ANY_VALUE = """
SELECT k, any_value(v ORDER BY v) FILTER (WHERE NOT q) AS first_clean,
  any_value(v ORDER BY v DESC) AS last
FROM (VALUES (1, 'b', false), (1, 'a', true), (1, 'c', false), (2, 'z', true))
  AS t(k, v, q)
GROUP BY k ORDER BY k
"""


def test_trap_any_value_order_by_filter(spark):
    expected = duckdb.sql(ANY_VALUE).fetchall()
    assert expected == [(1, "b", "c"), (2, None, "z")]
    plain = sqlglot.transpile(ANY_VALUE, read="duckdb", write="spark")[0]
    with pytest.raises(Exception, match="PARSE_SYNTAX_ERROR|ParseException"):
        spark.sql(plain).collect()  # SQLGlot's plain output: Spark's parser rejects it
    with SparkConnection(spark) as con:
        assert con.execute(ANY_VALUE).fetchall() == expected
    assert "min_by" in to_spark(ANY_VALUE)[0].sql.lower()


DATE_DIFF = """
SELECT DATE_DIFF('day', ts, d) AS days FROM (VALUES
  (CAST('2025-01-01 23:00:00' AS TIMESTAMP), CAST('2025-01-02' AS DATE)),
  (CAST('2025-01-01 12:30:00' AS TIMESTAMP), CAST('2025-01-22' AS DATE)),
  (CAST('2025-03-30 06:00:00' AS TIMESTAMP), CAST('2025-04-01' AS DATE))
) AS t(ts, d) ORDER BY d
"""


def test_trap_date_diff_counts_calendar_days(spark):
    expected = [r[0] for r in duckdb.sql(DATE_DIFF).fetchall()]
    assert expected == [1, 21, 2]
    with SparkConnection(spark) as con:  # sets the session settings the engine needs
        plain = sqlglot.transpile(DATE_DIFF, read="duckdb", write="spark")[0]
        assert [r[0] for r in spark.sql(plain).collect()] == [0, 20, 1]  # whole 24 h units
        assert [r[0] for r in con.execute(DATE_DIFF).fetchall()] == expected


def test_isfinite_answers_like_duckdb(spark):
    sql = (
        "SELECT isfinite(x) FROM (VALUES (1.5), (CAST('inf' AS DOUBLE)), "
        "(CAST('-inf' AS DOUBLE)), (CAST('nan' AS DOUBLE)), (NULL)) AS t(x)"
    )
    expected = [r[0] for r in duckdb.sql(sql).fetchall()]
    assert expected == [True, False, False, False, None]
    with SparkConnection(spark) as con:
        assert [r[0] for r in con.execute(sql).fetchall()] == expected


def test_describe_reports_duckdb_types(spark, tmp_path):
    frame = pd.DataFrame(
        {
            "s": ["a"],
            "i": np.array([1], dtype="int64"),
            "f": [1.5],
            "ts": pd.to_datetime(["2025-01-01 10:00"]),
            "b": [True],
        }
    )
    frame.to_parquet(tmp_path / "t.parquet")
    with SparkConnection(spark) as con:
        con.execute(
            f"CREATE OR REPLACE VIEW raw_t AS SELECT * FROM read_parquet(['{tmp_path / 't.parquet'}'])"
        )
        types = dict((r[0], r[1]) for r in con.execute("DESCRIBE raw_t").fetchall())
    found = duckdb.sql(f"DESCRIBE SELECT * FROM '{tmp_path / 't.parquet'}'").fetchall()
    assert types == {r[0]: r[1] for r in found}
    assert types["ts"] == "TIMESTAMP"  # naive timestamps stay naive (TIMESTAMP_NTZ)


def test_spark_source_refuses_a_duckdb_file(spark, tmp_path):
    db = tmp_path / "book.duckdb"
    duckdb.connect(str(db)).close()
    with pytest.raises(ValueError, match="directory of Parquet or CSV"):
        open_spark_source(db, spark)


def test_manifest_is_read_on_spark(world, spark):
    src = open_spark_source(world, spark)
    try:
        manifest = json.loads((world / "manifest.json").read_text())
        assert src.data_end == date.fromisoformat(manifest["data_end"])
        assert src.formats["events"] == "parquet"
    finally:
        src.close()


@pytest.mark.slow
def test_cli_features_engine_spark_writes_the_duckdb_layout(world, spark, tmp_path):
    """`nrrcast features --engine spark` writes what the DuckDB engine writes."""
    from typer.testing import CliRunner

    from features.build import read_feature_table
    from flows.cli import app

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(f"paths:\n  quarantine: {tmp_path / 'q'}\nfeatures:\n  spark_master: local[2]\n")
    outs = {}
    for engine in ("duckdb", "spark"):
        out = tmp_path / f"features_{engine}"
        args = ["features", "--source", str(world), "--out", str(out), "--config", str(cfg)]
        result = CliRunner().invoke(app, [*args, "--engine", engine])
        assert result.exit_code == 0, result.output
        outs[engine] = out
    duck, spk = (read_feature_table(outs[e]) for e in ("duckdb", "spark"))
    pd.testing.assert_frame_equal(spk, duck, check_exact=False, rtol=1e-9)
    assert sorted(p.name for p in outs["spark"].iterdir()) == sorted(
        p.name for p in outs["duckdb"].iterdir()
    )
    assert spark.catalog.currentDatabase() == "default"  # the private database is gone


# ------------------------------------------------------------------ quarantine on Spark


def _dirty_world() -> dict[str, pd.DataFrame]:
    """test_validate's book with one problem of each kind that sets rows aside."""
    from test_validate import world as clean_world

    t = clean_world()
    t["subscriptions"].loc[1, "mrr"] = -5.0  # negative mrr
    t["accounts"] = pd.concat([t["accounts"], t["accounts"].iloc[[0]]], ignore_index=True)
    t["accounts"].loc[4, "name"] = None  # a less complete duplicate of A1
    ev = t["events"]
    ev.loc[3, "account_id"] = "A9"  # unknown account
    ev.loc[7, "user_id"] = "U5"  # a user of another account
    ev.loc[9, "status"] = "broken"  # unknown status
    t["users"].loc[2, "department"] = "  Sales "  # normalised, kept
    t["tickets"].loc[0, "closed_at"] = pd.Timestamp("2025-03-01")  # closed before created
    return t


@pytest.mark.parametrize("fmt", ["parquet", pytest.param("csv", marks=pytest.mark.slow)])
def test_quarantine_is_equal_on_both_engines(spark, tmp_path, fmt):
    from test_validate import NOW, write_source

    root = write_source(_dirty_world(), tmp_path / f"src_{fmt}", fmt)
    results = {}
    for engine in ("duckdb", "spark"):
        q = tmp_path / f"q_{engine}"
        src = open_source(root) if engine == "duckdb" else open_spark_source(root, spark)
        try:
            report = validate(src, now=NOW, quarantine_dir=q)
            clean = {
                t: src.con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("accounts", "subscriptions", "users", "events", "tickets")
            }
        finally:
            src.close()
        files = {p.name: pd.read_parquet(p) for p in sorted(q.glob("*.parquet"))}
        results[engine] = (report, clean, files)
    (duck, duck_clean, duck_q), (spk, spk_clean, spk_q) = results["duckdb"], results["spark"]
    assert sum(c.quarantined for c in duck.counts.values()) >= 6
    assert spk.counts == duck.counts and spk_clean == duck_clean
    assert [(p.table, p.column, p.problem, p.rows, p.action) for p in spk.problems] == [
        (p.table, p.column, p.problem, p.rows, p.action) for p in duck.problems
    ]
    assert sorted(spk_q) == sorted(duck_q) and duck_q
    for name, frame in duck_q.items():
        key = [c for c in frame.columns if c != "reason"]
        a = frame.astype(str).sort_values(key, ignore_index=True)
        b = spk_q[name][frame.columns].astype(str).sort_values(key, ignore_index=True)
        pd.testing.assert_frame_equal(b, a, check_dtype=False)
