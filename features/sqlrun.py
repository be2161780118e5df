"""Run the feature SQL on a DuckDB connection and keep every statement it ran.

The feature definitions are plain SQL strings (DuckDB dialect, restricted to constructs
SQLGlot transpiles to Spark SQL). `SqlRunner` executes them, logs the time of each step,
drops the intermediate tables it created, and records the statements so a test can
transpile each one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import date, datetime

import duckdb
import pandas as pd

from features.sql_quote import quote_literal

log = logging.getLogger("nrrcast.features")

PREFIX = "_nrr_f_"


def lit(value: object) -> str:
    """An SQL literal for a Python value (date, datetime, str, number, bool, None).

    Dates and times are written as ``CAST('...' AS DATE)`` (``AS TIMESTAMP``), which every
    engine SQLGlot targets reads; everything else is `features.sql_quote.quote_literal`.

    Parameters
    ----------
    value : object
        The value to embed in feature SQL.

    Returns
    -------
    str
        The literal.

    Examples
    --------
    >>> lit(date(2026, 1, 1))
    "CAST('2026-01-01' AS DATE)"
    >>> lit(None)
    'NULL'
    """
    if isinstance(value, datetime):
        return f"CAST({quote_literal(value.isoformat(sep=' '))} AS TIMESTAMP)"
    if isinstance(value, date):
        return f"CAST({quote_literal(value.isoformat())} AS DATE)"
    return quote_literal(value)


def values_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], types: Sequence[str] | None = None
) -> str:
    """A portable ``SELECT ... FROM (VALUES ...) AS t(cols)`` over Python rows (small tables).

    `types` (SQL type names, one per column) casts each column, so that a column of NULLs
    still gets a type.

    Parameters
    ----------
    columns : sequence of str
        Column names (plain identifiers, written unquoted).
    rows : iterable of sequences
        The rows, each with one value per column (see `lit`).
    types : sequence of str, optional
        SQL type of each column.

    Returns
    -------
    str
        A SELECT usable as a sub-query.

    Raises
    ------
    ValueError
        When `rows` is empty (VALUES needs a row).

    Examples
    --------
    >>> values_table(["a", "b"], [(1, None)], ["INTEGER", "VARCHAR"])
    'SELECT CAST(a AS INTEGER) AS a, CAST(b AS VARCHAR) AS b FROM (VALUES (1, NULL)) AS t(a, b)'
    """
    body = ", ".join("(" + ", ".join(lit(v) for v in row) + ")" for row in rows)
    if not body:
        raise ValueError("values_table needs at least one row")
    if types is None:
        select = "*"
    else:
        select = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in zip(columns, types, strict=True))
    return f"SELECT {select} FROM (VALUES {body}) AS t({', '.join(columns)})"


def in_list(values: Iterable[str]) -> str:
    """``('a', 'b')`` for an IN predicate; ``(NULL)`` (matches nothing) when empty.

    Parameters
    ----------
    values : iterable of str
        The values to match.

    Returns
    -------
    str
        The parenthesised list of literals.

    Examples
    --------
    >>> in_list(["a", "b"]), in_list([])
    ("('a', 'b')", '(NULL)')
    """
    items = [lit(v) for v in values]
    return "(" + (", ".join(items) if items else "NULL") + ")"


class SqlRunner:
    """Execute feature SQL on `con`, time each step and clean up intermediate tables.

    Parameters
    ----------
    con : DuckDB connection holding the clean relations.
    progress : log step timings at INFO (else DEBUG).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, *, progress: bool = False) -> None:
        self.con = con
        self.progress = progress
        self.statements: list[str] = []
        self.timings: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._created: list[str] = []

    def _log(self, msg: str, *args: object) -> None:
        log.log(logging.INFO if self.progress else logging.DEBUG, msg, *args)

    def _done(self, name: str, t0: float, c0: float, note: str = "") -> None:
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        self.timings[name] = self.timings.get(name, 0.0) + wall
        self.cpu[name] = self.cpu.get(name, 0.0) + cpu
        self._log("features: %-14s %6.2f s wall %6.2f s cpu%s", name, wall, cpu, note)

    def create(self, name: str, select_sql: str) -> str:
        """Materialize `select_sql` as temporary table ``_nrr_f_<name>`` (replaced if it
        exists); `drop_all` removes it.

        Parameters
        ----------
        name : str
            The step's name: names the table and its timing.
        select_sql : str
            The query whose rows the table holds.

        Returns
        -------
        str
            The table's name, ``_nrr_f_<name>``.
        """
        table = PREFIX + name
        sql = f"CREATE OR REPLACE TEMPORARY TABLE {table} AS {select_sql}"
        t0, c0 = time.perf_counter(), time.process_time()
        self.statements.append(sql)
        self.con.execute(sql)
        if table not in self._created:
            self._created.append(table)
        self._done(name, t0, c0)
        return table

    def insert(self, name: str, select_sql: str) -> str:
        """Append the rows of `select_sql` to intermediate table ``_nrr_f_<name>``.

        Parameters
        ----------
        name : str
            The step's name, as given to `create` (the table must exist).
        select_sql : str
            The query whose rows are appended (columns in the table's order).

        Returns
        -------
        str
            The table's name, ``_nrr_f_<name>``.
        """
        table = PREFIX + name
        sql = f"INSERT INTO {table} {select_sql}"
        t0, c0 = time.perf_counter(), time.process_time()
        self.statements.append(sql)
        self.con.execute(sql)
        self._done(name, t0, c0, " (append)")
        return table

    def df(self, select_sql: str, name: str = "fetch") -> pd.DataFrame:
        """Run a query, timed and recorded like a step, and return its result.

        Parameters
        ----------
        select_sql : str
            The query.
        name : str
            The step's name for the timings.

        Returns
        -------
        pandas.DataFrame
            The query's rows.
        """
        t0, c0 = time.perf_counter(), time.process_time()
        self.statements.append(select_sql)
        out = self.con.execute(select_sql).df()
        self._done(name, t0, c0)
        return out

    def rows(self, select_sql: str) -> list[tuple]:
        """Run a small query (recorded, not timed) and return its rows.

        Parameters
        ----------
        select_sql : str
            The query.

        Returns
        -------
        list of tuple
            The rows, as DuckDB returns them.
        """
        self.statements.append(select_sql)
        return self.con.execute(select_sql).fetchall()

    def drop_all(self) -> None:
        """Drop every intermediate table this runner created."""
        for table in reversed(self._created):
            self.con.execute(f"DROP TABLE IF EXISTS {table}")
        self._created.clear()


def table_columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    """Column names of a relation (table or view) in `con`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection holding the relation.
    relation : str
        Its name, as it may appear in SQL.

    Returns
    -------
    list of str
        The column names, in the relation's order.
    """
    return [r[0] for r in con.execute(f"DESCRIBE {relation}").fetchall()]


def require_relations(con: duckdb.DuckDBPyConnection, needed: dict[str, Iterable[str]]) -> None:
    """Fail with an actionable message if a clean relation or one of its columns is missing.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        The connection the feature SQL runs on.
    needed : dict of str to iterable of str
        Relation name -> the columns the features read from it.

    Raises
    ------
    ValueError
        Naming the missing relation, or the missing columns and those the relation has.
    """
    present = {
        r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()
    }
    for name, columns in needed.items():
        if name not in present:
            raise ValueError(
                f"relation {name!r} not found in the DuckDB connection: run "
                "features.validate.validate(...) first (or create it, e.g. in a test)"
            )
        have = set(table_columns(con, name))
        missing = [c for c in columns if c not in have]
        if missing:
            raise ValueError(f"relation {name!r} lacks column(s) {missing}; it has {sorted(have)}")
