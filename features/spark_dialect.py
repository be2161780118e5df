"""The one place where nrrcast's DuckDB SQL is rewritten for Apache Spark SQL.

Every statement nrrcast runs (validation and features) is written once, in DuckDB's
dialect. On Spark, each is parsed by SQLGlot (``read="duckdb"``), rewritten by the rules
below, and generated as Spark SQL. SQLGlot's own transpiler is not enough, and parsing
its output with SQLGlot proves nothing about Spark; each rule below was found by running
the statements on PySpark 4.3 and has a regression test (tests/features/test_spark_engine.py):

1. ``CREATE [OR REPLACE] [TEMP] TABLE t AS q`` -> a ``table`` command (q in Spark SQL)
   and ``INSERT INTO t q`` -> an ``insert`` command: the engine materializes q as a
   cached DataFrame (or, with ``materialize="parquet"``, a Parquet table) and appends
   an insert's rows as one more cached part. SQLGlot's own output is a temporary VIEW,
   on which the following ``INSERT INTO t`` fails (``EXPECT_TABLE_NOT_VIEW``); a
   Parquet table per statement costs a write, a commit and a read back each time.
2. ``CREATE [OR REPLACE] VIEW v`` -> ``CREATE OR REPLACE TEMPORARY VIEW v``: a permanent
   Spark view may not refer to the temporary views over the source files.
3. ``any_value(x ORDER BY y [DESC])`` -> ``min_by(x, y)`` (``max_by`` when descending).
   SQLGlot keeps the ordered argument (and adds ``IGNORE NULLS`` before ``FILTER``),
   which Spark's parser rejects.
4. ``DATE_DIFF('day', a, b)`` -> ``DATEDIFF(CAST(b AS DATE), CAST(a AS DATE))``. DuckDB
   counts calendar-day boundaries; SQLGlot's ``DATEDIFF(DAY, a, b)`` is Spark's
   ``timestampdiff``, which counts whole 24-hour units (0 instead of 1 from 23:00 to
   the next midnight). Casting both sides to DATE gives DuckDB's answer.
5. ``isfinite(x)`` (no such Spark function) -> ``NOT (isnan(x) OR abs(x) = Infinity)``
   on x as DOUBLE, NULL for NULL as in DuckDB.
6. ``DROP TABLE|VIEW IF EXISTS x`` drops x whatever it is (DuckDB code drops "the view
   or the table" in two tries and relies on DuckDB's CatalogException in between).

Statements that are not SQL on Spark are returned as `Command` objects for the engine to
carry out: ``DESCRIBE`` (answered with DuckDB type names, so that the contract's casts
apply unchanged), ``COPY (q) TO 'file' (FORMAT parquet)``, DuckDB settings (``SET``,
``current_setting``: no-ops), the catalog query on ``information_schema.tables``, and
views over ``read_parquet([...])`` / ``read_csv([...])`` (registered from Spark's
DataFrame reader; CSV columns are read as text, like DuckDB's ``all_varchar``).

This module imports SQLGlot only; `features.spark_engine` runs what it returns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp

__all__ = ["Command", "to_spark"]


@dataclass(frozen=True)
class Command:
    """A statement the Spark engine carries out itself rather than as SQL.

    Attributes
    ----------
    kind : "describe", "copy", "noop", "setting", "tables", "read_files", "drop",
        "table", "insert" or "sql".
    name : the relation concerned (describe, read_files, drop, table, insert), or the
        setting's name.
    sql : Spark SQL text (kind "sql"; for "copy", "table" and "insert", the query whose
        rows are written).
    path : target file of a copy.
    files, fmt, options : the files of a read_files view, their format and reader
        options.
    """

    kind: str
    name: str = ""
    sql: str = ""
    path: str = ""
    files: tuple[str, ...] = ()
    fmt: str = ""
    options: dict[str, object] = field(default_factory=dict)


_SETTING_RE = re.compile(r"^\s*SELECT\s+current_setting\('([^']+)'\)\s*$", re.IGNORECASE)
_SET_RE = re.compile(r"^\s*SET\s+\w+\s*=", re.IGNORECASE)
_DESCRIBE_RE = re.compile(r'^\s*DESCRIBE\s+("?)([\w.]+)\1\s*$', re.IGNORECASE)
_TABLES_RE = re.compile(
    r"^\s*SELECT\s+table_name\s+FROM\s+information_schema\.tables\s*$", re.IGNORECASE
)


def _any_value_to_min_by(node: exp.Expression) -> exp.Expression:
    """Rule 3: ``any_value(x ORDER BY y)`` (possibly under IGNORE NULLS) -> min_by/max_by."""
    inner = node.this if isinstance(node, exp.IgnoreNulls) else node
    if not isinstance(inner, exp.AnyValue) or not isinstance(inner.this, exp.Order):
        return node
    order = inner.this
    keys = order.expressions
    if len(keys) != 1:
        raise ValueError(
            f"any_value with {len(keys)} ORDER BY keys has no Spark form: {node.sql()}"
        )
    key = keys[0]
    func = "max_by" if key.args.get("desc") else "min_by"
    return exp.Anonymous(this=func, expressions=[order.this.copy(), key.this.copy()])


def _date_diff_days(node: exp.Expression) -> exp.Expression:
    """Rule 4: calendar-day DATE_DIFF on dates, as DuckDB counts it."""
    if not isinstance(node, exp.DateDiff):
        return node
    unit = node.args.get("unit")
    if unit is None or unit.name.upper() not in ("DAY", "DAYS", "D"):
        return node
    end = exp.Cast(this=node.this.copy(), to=exp.DataType.build("DATE"))
    start = exp.Cast(this=node.expression.copy(), to=exp.DataType.build("DATE"))
    return exp.Anonymous(this="DATEDIFF", expressions=[end, start])


def _isfinite(node: exp.Expression) -> exp.Expression:
    """Rule 5: DuckDB's isfinite, NULL in NULL out."""
    if not (isinstance(node, exp.Anonymous) and node.name.lower() == "isfinite"):
        return node
    x = exp.Cast(this=node.expressions[0].copy(), to=exp.DataType.build("DOUBLE"))
    inf = exp.Cast(this=exp.Literal.string("Infinity"), to=exp.DataType.build("DOUBLE"))
    nan = exp.Anonymous(this="isnan", expressions=[x.copy()])
    infinite = exp.EQ(this=exp.Abs(this=x.copy()), expression=inf)
    return exp.Not(this=exp.Paren(this=exp.Or(this=nan, expression=infinite)))


def _rewrite_expressions(tree: exp.Expression) -> exp.Expression:
    tree = tree.transform(_any_value_to_min_by)
    tree = tree.transform(_isfinite)
    return tree.transform(_date_diff_days)


def _spark(tree: exp.Expression) -> str:
    return tree.sql(dialect="spark", unsupported_level=sqlglot.ErrorLevel.RAISE)


def _file_list(arg: exp.Expression) -> tuple[str, ...]:
    items = arg.expressions if isinstance(arg, exp.Array) else [arg]
    return tuple(i.name for i in items)


def _read_files(create: exp.Create, name: str) -> Command | None:
    """A view ``SELECT * FROM read_parquet([...])`` / ``read_csv([...], ...)``, if it is one."""
    query = create.expression
    if not isinstance(query, exp.Select) or len(query.args.get("joins") or []) > 0:
        return None
    source = query.args.get("from_") or query.args.get("from")
    table = source.this if source is not None else None
    func = table.this if isinstance(table, exp.Table) else table
    if isinstance(func, exp.ReadParquet):
        args = func.expressions
        fmt = "parquet"
    elif isinstance(func, exp.ReadCSV):
        args = [func.this, *func.expressions]
        fmt = "csv"
    elif isinstance(func, exp.Anonymous) and func.name.lower() in ("read_parquet", "read_csv"):
        args = func.expressions
        fmt = func.name.lower()[5:]
    else:
        return None
    files = _file_list(args[0])
    options: dict[str, object] = {}
    for opt in args[1:]:
        if isinstance(opt, exp.EQ | exp.PropertyEQ):
            value = opt.expression
            options[opt.this.name.lower()] = (
                value.this if isinstance(value, exp.Boolean) else value.name
            )
    return Command("read_files", name=name, files=files, fmt=fmt, options=options)


def to_spark(sql: str) -> list[Command]:
    """The Spark actions that carry out one DuckDB statement of nrrcast.

    Parameters
    ----------
    sql : one statement in DuckDB's dialect, as nrrcast runs it on DuckDB.

    Returns
    -------
    list of Command, run in order: kind "sql" holds Spark SQL text; the other kinds
    are carried out by the engine (see the module docstring).
    """
    if _SET_RE.match(sql):
        return [Command("noop")]
    if m := _SETTING_RE.match(sql):
        return [Command("setting", name=m.group(1))]
    if m := _DESCRIBE_RE.match(sql):
        return [Command("describe", name=m.group(2))]
    if _TABLES_RE.match(sql):
        return [Command("tables")]
    tree = sqlglot.parse_one(sql, read="duckdb")
    if isinstance(tree, exp.Copy):
        query = tree.this.this if isinstance(tree.this, exp.Subquery) else tree.this
        target = tree.args["files"][0]
        params = {p.this.name.lower(): p.expression for p in tree.args.get("params") or []}
        value = params.get("format")
        if value is None or value.name.lower() != "parquet":
            raise ValueError(f"only COPY ... (FORMAT parquet) runs on Spark: {sql[:200]}")
        return [Command("copy", sql=_spark(_rewrite_expressions(query)), path=target.name)]
    if isinstance(tree, exp.Drop) and tree.args.get("kind") in ("TABLE", "VIEW"):
        return [Command("drop", name=t.name) for t in tree.args["tables"]]
    if isinstance(tree, exp.Create) and tree.args.get("kind") in ("TABLE", "VIEW"):
        name = tree.this.name
        if tree.args["kind"] == "VIEW":
            files = _read_files(tree, name)
            if files is not None:
                return [files]
            query = _rewrite_expressions(tree.expression)
            return [
                Command("sql", sql=f"CREATE OR REPLACE TEMPORARY VIEW {name} AS {_spark(query)}")
            ]
        query = tree.expression
        if query is None:
            raise ValueError(f"CREATE TABLE without AS SELECT does not run on Spark: {sql[:200]}")
        return [Command("table", name=name, sql=_spark(_rewrite_expressions(query)))]
    if isinstance(tree, exp.Insert) and isinstance(tree.this, exp.Table):
        query = _rewrite_expressions(tree.expression)
        return [Command("insert", name=tree.this.name, sql=_spark(query))]
    return [Command("sql", sql=_spark(_rewrite_expressions(tree)))]
