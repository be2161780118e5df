"""No SQL from unvalidated strings: config values are typed and checked, names and values
go through `features.sql_quote`, and a scan of the code fails on new string-built SQL.

The scan lists every interpolation into SQL text (f-strings, ``.format``, ``+`` and ``%``
on strings that read as SQL) in features/, models/, evaluation/ and flows/ that is not a
call of a quoting helper, a number format or a module constant. Those found when the
rule was introduced are listed in ``tests/features/sql_interpolations.txt`` (SQL fragments the
code builds itself, e.g. ``{cond}`` in a WHERE clause). A new one fails the test: quote
it with `quote_ident` / `quote_literal` (or pass a DuckDB parameter), or, if it is a
fragment built from quoted parts, add its line to the file (``python
tests/features/test_sql_quote.py --update`` rewrites it) so that a reviewer sees it. Config values
(``cfg.x``, ``config.x``, ``settings.x``) never go in unquoted, listed or not.
"""

from __future__ import annotations

import ast
import re
import sys
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from pydantic import ValidationError

from features.build import _apply_settings, _restore_settings
from features.config import FeatureConfig
from features.sources import open_source
from features.sql_quote import quote_ident, quote_literal, set_statement
from features.sqlrun import in_list, lit

ROOT = Path(__file__).resolve().parents[2]
BASELINE = Path(__file__).with_name("sql_interpolations.txt")
SCANNED = ("features", "models", "evaluation", "flows")
SQL_WORDS = re.compile(
    r"\b(SELECT|INSERT|CREATE|DROP|COPY|ATTACH|DETACH|SET|PRAGMA|DELETE|UPDATE|ALTER|FROM|"
    r"WHERE|JOIN|VALUES|CAST|CASE|DESCRIBE|GROUP BY|ORDER BY|UNION|INTERVAL|COALESCE)\b"
)
SAFE_CALLS = frozenset(
    {
        "quote_ident",
        "quote_literal",
        "set_statement",
        "qi",  # features.contract_checks: quote_ident
        "sql_str",  # features.sources: quote_literal of the text
        "lit",  # features.sqlrun: quote_literal, portable date/time literals
        "ts_literal",
        "typed_col",
        "in_list",
        "values_table",
        "int",
        "float",
        "len",
    }
)
EXECUTORS = frozenset({"execute", "executemany", "sql", "query", "create", "insert", "df", "rows"})
"""Methods whose first argument is SQL (DuckDB connections, `features.sqlrun.SqlRunner`)."""
CONFIG_NAMES = re.compile(r"^(cfg|config|settings|conf|feature_cfg)\b|\.(cfg|config)\b")
EVIL = "1GB'; COPY (SELECT 42 AS x) TO '{out}' (FORMAT csv); SET memory_limit='1GB"


# ----------------------------------------------------------------------------- helpers


def test_quote_ident_and_literal_escape_quotes():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal(None) == "NULL" and quote_literal(True) == "TRUE"
    assert quote_literal(3) == "3" and quote_literal(2.5) == "2.5"
    assert quote_literal(date(2026, 1, 2)) == "DATE '2026-01-02'"
    assert quote_literal(datetime(2026, 1, 2, 3)) == "TIMESTAMP '2026-01-02 03:00:00.000000'"
    with pytest.raises(ValueError, match="non-finite"):
        quote_literal(float("inf"))
    with pytest.raises(ValueError, match="NUL"):
        quote_ident("a\x00b")


@pytest.mark.parametrize(
    "value",
    ["x'y", "'; DROP TABLE t; --", "a\\'b", "''", "é'\"`", "\n'\n", "O'Brien & 'Co'"],
)
def test_hostile_strings_round_trip_as_literals_and_identifiers(value):
    con = duckdb.connect()
    assert con.execute(f"SELECT {quote_literal(value)}").fetchone()[0] == value
    assert con.execute(f"SELECT {lit(value)}").fetchone()[0] == value
    assert con.execute(f"SELECT 'q' IN {in_list([value, 'z'])}").fetchone()[0] is False
    assert con.execute(f"SELECT {quote_literal(value)} IN {in_list([value])}").fetchone()[0]
    con.execute(f"CREATE TABLE t ({quote_ident(value)} INTEGER)")
    assert [r[0] for r in con.execute("DESCRIBE t").fetchall()] == [value]
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone()[0] == 1


def test_set_statement_refuses_a_setting_name_that_is_not_a_word():
    assert set_statement("threads", 2) == "SET threads = 2"
    with pytest.raises(ValueError, match="setting name"):
        set_statement("threads = 1; COPY", 2)


# ----------------------------------------------------------------------------- config


@pytest.mark.parametrize("good", ["4GB", "512MB", "1.5 GiB", "80%", "2gb"])
def test_memory_limit_accepts_sizes(good):
    assert FeatureConfig(duckdb_memory_limit=good).duckdb_memory_limit == good


@pytest.mark.parametrize(
    "bad", ["1GB'; COPY (SELECT 1) TO 'x.csv'; --", "lots", "4 GB; SET threads=1", "", "GB"]
)
def test_memory_limit_refuses_anything_but_a_size(bad):
    with pytest.raises(ValidationError, match="duckdb_memory_limit"):
        FeatureConfig(duckdb_memory_limit=bad)


@pytest.mark.parametrize("field", ["snapshot_start", "snapshot_end"])
def test_snapshot_bounds_must_be_iso_dates(field):
    assert getattr(FeatureConfig(**{field: "2025-01-01"}), field) == "2025-01-01"
    with pytest.raises(ValidationError, match=field):
        FeatureConfig(**{field: "2025-01-01'); DROP TABLE events; --"})


def test_config_file_with_a_quote_in_memory_limit_is_refused(tmp_path):
    from flows.config import ConfigError, load_config

    bad = tmp_path / "bad.yaml"
    bad.write_text(f'features:\n  duckdb_memory_limit: "{EVIL.format(out="x.csv")}"\n')
    with pytest.raises(ConfigError, match=r"features\.duckdb_memory_limit"):
        load_config(bad)


def test_a_value_that_slips_past_validation_is_still_only_a_value(tmp_path):
    out = tmp_path / "pwned.csv"
    cfg = FeatureConfig.model_construct(
        **{**FeatureConfig().model_dump(), "duckdb_memory_limit": EVIL.format(out=out)}
    )
    con = duckdb.connect()
    with pytest.raises(duckdb.Error):
        _apply_settings(con, cfg)
    assert not out.exists()


def test_settings_are_applied_and_restored():
    con = duckdb.connect()
    con.execute("SET memory_limit = '3GiB'")
    old = _apply_settings(con, FeatureConfig(duckdb_memory_limit="1GB", duckdb_threads=1))
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == 1
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "953.6 MiB"
    _restore_settings(con, old)
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == "3.0 GiB"


def test_a_source_path_with_quotes_is_read_as_a_path(tmp_path):
    from test_validate import world, write_source

    root = tmp_path / 'it\'s a "book"; DROP'
    src = open_source(write_source(world(), root))
    assert src.con.execute("SELECT count(*) FROM raw_accounts").fetchone()[0] == 4


# ----------------------------------------------------------------------------- code scan


def _is_sql(text: str) -> bool:
    return bool(SQL_WORDS.search(text))


def _safe(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Constant):
        return True
    if isinstance(expr, ast.Call):
        func = expr.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in SAFE_CALLS
    return isinstance(expr, ast.Name) and expr.id.lstrip("_").isupper()  # a module constant


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _where(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    names = []
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.append(node.name)
    return ".".join(reversed(names)) or "<module>"


def _const_text(node: ast.AST) -> str:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else ""


def interpolations(root: Path = ROOT) -> list[str]:
    """``path::function::expression`` of every non-helper interpolation into SQL text."""
    found: set[str] = set()
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            tree = ast.parse(path.read_text(), filename=rel)
            parents = _parents(tree)
            executed = {
                id(call.args[0])
                for call in ast.walk(tree)
                if isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr in EXECUTORS
                and call.args
            }
            for node in ast.walk(tree):
                exprs: list[ast.expr] = []
                if isinstance(node, ast.JoinedStr):
                    text = "".join(_const_text(v) for v in node.values)
                    if _is_sql(text) or id(node) in executed:
                        exprs = [
                            v.value
                            for v in node.values
                            if isinstance(v, ast.FormattedValue) and v.format_spec is None
                        ]
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "format"
                    and _is_sql(_const_text(node.func.value))
                ):
                    exprs = list(node.args) + [k.value for k in node.keywords]
                elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mod):
                    sides = (node.left, node.right)
                    if any(_is_sql(_const_text(s)) for s in sides):
                        exprs = [
                            s for s in sides if not isinstance(s, ast.Constant | ast.JoinedStr)
                        ]
                for expr in exprs:
                    if not _safe(expr):
                        found.add(f"{rel}::{_where(node, parents)}::{ast.unparse(expr)}")
    return sorted(found)


def _baseline() -> set[str]:
    lines = BASELINE.read_text().splitlines() if BASELINE.exists() else []
    return {ln for ln in lines if ln and not ln.startswith("#")}


def test_config_values_never_reach_sql_unquoted():
    found = [f for f in interpolations() if CONFIG_NAMES.search(f.rsplit("::", 1)[1])]
    assert found == [], "config values spliced into SQL; quote them or pass parameters:\n" + (
        "\n".join(found)
    )


def test_no_new_string_built_sql():
    new = sorted(set(interpolations()) - _baseline())
    assert new == [], (
        "SQL built from interpolations that are not quoting-helper calls; use "
        "features.sql_quote (quote_ident / quote_literal) or DuckDB parameters, or add the "
        f"reviewed line to {BASELINE.name} (`python tests/features/test_sql_quote.py --update`):\n"
        + "\n".join(new)
    )


def test_scan_finds_string_built_sql(tmp_path):
    """The scanner itself: it sees f-strings, .format and + building SQL, not helpers."""
    pkg = tmp_path / "features"
    pkg.mkdir()
    (pkg / "bad.py").write_text(
        "def f(con, cfg, name, v, stmt):\n"
        "    con.execute(f\"SET memory_limit = '{cfg.duckdb_memory_limit}'\")\n"
        "    con.execute('SELECT * FROM {}'.format(name))\n"
        "    con.execute('SELECT * FROM t WHERE x = ' + v)\n"
        "    con.execute(f'SELECT {quote_literal(v)} FROM {quote_ident(name)}')\n"
        "    con.execute(f'SELECT {n:d} FROM {TABLE}')\n"
        "    print(f'read {name} from disk')\n"
        "    con.execute(f'{stmt} ?', [1])\n"
    )
    for folder in SCANNED[1:]:
        (tmp_path / folder).mkdir()
    assert interpolations(tmp_path) == [
        "features/bad.py::f::cfg.duckdb_memory_limit",
        "features/bad.py::f::name",
        "features/bad.py::f::stmt",
        "features/bad.py::f::v",
    ]


if __name__ == "__main__" and "--update" in sys.argv:
    header = [
        "# Interpolations into SQL text reviewed as SQL fragments the code builds itself",
        "# (see tests/features/test_sql_quote.py). One per line: path::function::expression.",
    ]
    BASELINE.write_text("\n".join(header + interpolations()) + "\n")
    print(f"wrote {BASELINE}")
