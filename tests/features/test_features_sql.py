"""Every SQL statement the feature and label build runs transpiles to Spark SQL.

The definitions must stay engine-portable: each statement is transpiled with SQLGlot
(read='duckdb', write='spark') and the result must parse as Spark SQL. Parsing proves
little about Spark itself: tests/features/test_spark_engine.py runs the statements on Spark
(through features.spark_dialect) and compares the results with DuckDB's.
"""

from __future__ import annotations

from datetime import date

import pytest
import sqlglot
from features_fixtures import connect, random_world

from features.build import build_feature_table
from features.config import FeatureConfig
from features.labels import build_labels
from features.sqlrun import SqlRunner


@pytest.fixture(scope="module")
def statements() -> list[str]:
    con = connect(random_world(5))
    run = SqlRunner(con)
    cfg = FeatureConfig(scan_chunk_months=2, feature_catalog=None)
    build_feature_table(
        con, [date(2025, 3, 1), date(2025, 5, 1)], cfg, data_end=date(2025, 9, 1), runner=run
    )
    build_labels(
        con,
        [date(2025, 3, 1)],
        horizon_days=60,
        expansion_pct=0.1,
        data_end=date(2025, 9, 1),
        runner=run,
    )
    return run.statements


def test_statements_were_recorded(statements):
    text = "\n".join(statements)
    for table in ("useg", "aseg", "acc_win", "user_win", "subs_asof", "tickets_asof", "lab_asof"):
        assert f"_nrr_f_{table}" in text
    assert any(s.startswith("INSERT INTO") for s in statements)  # chunked scan
    assert len(statements) > 20


def test_every_statement_transpiles_to_spark(statements):
    failures = []
    for sql in statements:
        try:
            (spark_sql,) = sqlglot.transpile(
                sql, read="duckdb", write="spark", unsupported_level=sqlglot.ErrorLevel.RAISE
            )
            sqlglot.parse_one(spark_sql, read="spark")
        except sqlglot.errors.SqlglotError as exc:
            failures.append(f"{exc}\n---\n{sql[:400]}")
    assert not failures, "\n\n".join(failures)
