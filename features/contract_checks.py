"""Which checks apply to a table of a source, and the DuckDB SQL that runs them.

`plan_table` compares what a source holds with `features.contract.TABLES` (columns found,
their types, which parents are usable) and returns a `TablePlan`: structure problems
found up front, the cast of every column, and one `Check` per rule. The SQL builders
below turn a plan into the staged relation with one boolean flag per check;
`features.validate` runs them. Typed copies of the contract columns are named
``_t_<column>`` and flags ``_f_<i>`` so that the original columns travel untouched to
the quarantine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import duckdb

from features.casting import cast_plan, type_label
from features.contract import CONTRACT_VERSION, ColumnSpec, TableSpec
from features.csv_shape import header_hint
from features.sources import InputError, Source, sql_str
from features.sql_quote import quote_ident, quote_literal
from features.validation_report import Action, Problem

Q = "_nrr_q"
"""Name of the flag column: the row is set aside (any quarantine check)."""

RESERVED_PREFIXES = ("_nrr_", "_t_", "_f_", "_k_")
"""Prefixes of the columns validation adds next to the source's own (typed copies, flags,
parent keys): a source column with such a name would be confused with them."""

CheckAction = Literal["quarantine", "warning", "nullify", "info"]


def qi(name: str) -> str:
    """Quote an SQL identifier (short name of `features.sql_quote.quote_ident`).

    Parameters
    ----------
    name : str
        A column or relation name, as the source spells it.

    Returns
    -------
    str
        The double-quoted identifier.
    """
    return quote_ident(name)


def typed_col(col: str) -> str:
    """The typed (contract-type) copy of a contract column in the staged relation.

    Parameters
    ----------
    col : str
        The contract column's name.

    Returns
    -------
    str
        The quoted identifier ``"_t_<col>"``.
    """
    return qi("_t_" + col)


@dataclass
class Check:
    """One rule: rows where `cond` is true are flagged; `action` says what follows.

    Attributes
    ----------
    column, problem : where and what, as the report shows it.
    reason : text in the quarantine file's ``reason`` column.
    cond : SQL over the staged relation (NULL counts as false).
    action : "quarantine" sets the row aside, "nullify" sets the value to NULL,
        "warning" and "info" only report.
    joined : `cond` reads parent-key columns (a reference check); `ref_keys` are the
        row's key columns it depends on.
    examples : SQL whose most frequent values illustrate the problem in the report.
    cast_of, found_type : for a per-value cast, the raw column and its found type.
    dedupe : the duplicate-key check (computed by a window, not by `cond`).
    normalizes : counts values trimmed / lower-cased to a known enum value.
    rows, flag : filled when the check runs: rows flagged, and the flag column.
    """

    column: str | None
    problem: str
    reason: str
    cond: str
    action: CheckAction
    joined: bool = False
    ref_keys: tuple[str, ...] = ()
    examples: str | None = None
    cast_of: str | None = None
    found_type: str = ""
    dedupe: bool = False
    normalizes: bool = False
    rows: int = 0
    flag: str = ""


@dataclass(frozen=True)
class CoarseRef:
    """A reference test without detail: `cond` is true when `keys` are not a clean parent."""

    keys: tuple[str, ...]
    cond: str


@dataclass
class TablePlan:
    """What was found for one table and the SQL that checks it.

    `typed` maps every contract column to its SQL (a cast of the raw column, or a typed
    NULL when absent or unreadable); `usable` are the columns actually read; `joins`
    are (LEFT JOIN, select list) pairs adding the parents' keys.
    """

    spec: TableSpec
    present: bool
    materialize: bool
    raw: str = ""
    raw_cols: list[str] = field(default_factory=list)
    typed: dict[str, str] = field(default_factory=dict)
    usable: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    joins: list[tuple[str, str]] = field(default_factory=list)
    cast_expr: dict[str, str] = field(default_factory=dict)
    coarse_refs: list[CoarseRef] = field(default_factory=list)


@dataclass
class ParentKeys:
    """A parent table's keys: every key seen in the source and whether its row is clean."""

    table: str
    name: str
    has_account: bool


def ts_literal(ts: datetime) -> str:
    """A DuckDB TIMESTAMP literal (microseconds) of a naive datetime.

    Parameters
    ----------
    ts : datetime
        Naive UTC (an aware one raises ``ValueError``).

    Returns
    -------
    str
        E.g. ``TIMESTAMP '2026-01-01 00:00:00.000000'``.
    """
    return quote_literal(ts)


def _num(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------- planning


def _describe(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {view}").fetchall()]


def _plan_columns(con: duckdb.DuckDBPyConnection, plan: TablePlan, source: Source) -> None:
    """Match found columns to the contract, choose casts, and report structure problems."""
    spec = plan.spec
    found = _describe(con, plan.raw)
    reserved = [name for name, _ in found if name.lower().startswith(RESERVED_PREFIXES)]
    if reserved:
        raise InputError(
            f"table {spec.name!r}: column {reserved[0]!r} has a name nrrcast reserves for the "
            f"columns it adds during validation ({', '.join(RESERVED_PREFIXES)}...); rename it"
        )
    plan.raw_cols = [name for name, _ in found]
    raw_names = {n.lower() for n in plan.raw_cols}
    by_lower: dict[str, tuple[str, str]] = {}
    for name, typ in found:
        twin = by_lower.setdefault(name.lower(), (name, typ))[0]
        if twin != name and name.lower() in {c.lower() for c in spec.column_names}:
            # which of the two is meant cannot be told: refuse rather than pick one
            text = f"columns {twin!r} and {name!r} differ only in case; keep one of them"
            plan.problems.append(Problem(spec.name, name.lower(), text, 0, "error"))
    # (column or None for the table, problem, action): findings about whole columns
    notes: list[tuple[str | None, str, Action]] = []
    for col in spec.columns:
        hit = by_lower.get(col.name.lower())
        plan.typed[col.name] = f"CAST(NULL AS {col.dtype})"
        if hit is None:
            if col.required:
                notes.append((col.name, "required column missing", "error"))
            else:
                filled = f"filled with {col.default}" if col.default else "NULL"
                notes.append((col.name, f"optional column missing: {filled}", "info"))
            continue
        raw_name, raw_type = hit
        cast = cast_plan(qi(raw_name), col.dtype, raw_type)
        if cast is None:
            text = f"wrong type: expected {col.dtype}, found {type_label(raw_type)}"
            notes.append((col.name, text, "error"))
            continue
        expr = plan.cast_expr[col.name] = cast.expr
        if col.values:
            known = ", ".join(sql_str(v) for v in col.values)
            # trimming and lower-casing only rows that are not already canonical
            expr = f"CASE WHEN ({expr}) IN ({known}) THEN ({expr}) ELSE lower(trim({expr})) END"
        plan.typed[col.name] = expr
        plan.usable.add(col.name)
        if raw_name != col.name:
            notes.append((col.name, f"read from column {raw_name!r}", "info"))
        if cast.note:
            notes.append((col.name, cast.note, "info"))
        if cast.fallible:
            plan.checks.append(
                Check(
                    col.name,
                    f"not a {col.dtype} (found {type_label(raw_type)})",
                    f"{col.name} is not a {col.dtype}",
                    f"{qi(raw_name)} IS NOT NULL AND {typed_col(col.name)} IS NULL",
                    "quarantine",
                    examples=qi(raw_name),
                    cast_of=qi(raw_name),
                    found_type=type_label(raw_type),
                )
            )
    missing = any(a == "error" and p == "required column missing" for _, p, a in notes)
    files = source.files.get(spec.name, [])
    if missing and source.formats.get(spec.name) == "csv":
        blank = [p.name for p in files if not p.read_bytes()[:4096].strip()]
        hint = header_hint(files, {c.lower() for c in spec.column_names}, plan.raw_cols)
        if blank:  # the cause first, then the columns it hides
            notes.insert(0, (None, f"{', '.join(blank[:3])}: empty file (no header line)", "error"))
        elif hint is not None:
            notes.insert(0, (None, hint, "error"))
    contract = {c.lower() for c in spec.column_names}
    for name, typ in found:
        if name.lower() not in contract:
            text = f"column not in contract {CONTRACT_VERSION} ({type_label(typ)}): ignored"
            action: Action = "info"
            twin = re.fullmatch(r"(.+)_[0-9]+", name)
            if twin and twin.group(1).lower() in contract and twin.group(1).lower() in raw_names:
                # DuckDB names are case-insensitive: a second 'Account_ID' becomes
                # 'Account_ID_1'. Which one the export meant cannot be told.
                text = (
                    f"a second {twin.group(1).lower()!r} column (names differ only in case, "
                    f"read as {name!r}): ignored, the first one is used; keep one of them"
                )
                action = "warning"
            notes.append((name, text, action))
    if notes:  # whole-column findings concern every row: count them once (CSV is a scan)
        rows = con.execute(f"SELECT count(*) FROM {plan.raw}").fetchone()[0]
        plan.problems += [Problem(spec.name, c, text, rows, a) for c, text, a in notes]


def _value_checks(plan: TablePlan, now_sql: str, now: datetime, floor: datetime) -> None:
    """Null ids, ranges, non-finite numbers, enums, timestamps before the floor or in the
    future, and date order, from the column specs."""
    spec = plan.spec
    fallible = {c.column for c in plan.checks if c.cast_of}
    for col in spec.columns:
        if col.name not in plan.usable:
            continue
        t = typed_col(col.name)
        if not col.nullable:
            cond = f"{t} IS NULL"
            if col.dtype == "VARCHAR":
                cond = f"({t} IS NULL OR {t} = '')"
            elif col.name in fallible:  # a value that does not parse is reported as such
                cast = next(c for c in plan.checks if c.column == col.name and c.cast_of)
                cond = f"{t} IS NULL AND {cast.cast_of} IS NULL"
            plan.checks.append(
                Check(col.name, f"null {col.name}", f"null {col.name}", cond, "quarantine")
            )
        if col.dtype == "DOUBLE":
            plan.checks.append(_finite_check(col))
        if col.min_value is not None or col.max_value is not None:
            plan.checks.append(_range_check(col))
        if col.ceiling is not None:
            text = f"{col.name} above {_num(col.ceiling)}"
            why = f"{text}: implausible (a unit or export mistake)"
            cond = f"abs({t}) > {col.ceiling!r}"
            if col.on_range == "nullify":
                check = Check(col.name, f"{why}: set to NULL", text, cond, "nullify", examples=t)
            else:
                check = Check(col.name, why, text, cond, "quarantine", examples=t)
            plan.checks.append(check)
        if col.dtype in ("TIMESTAMP", "DATE"):
            value = t if col.dtype == "TIMESTAMP" else f"CAST({t} AS TIMESTAMP)"
            day = f"{floor:%Y-%m-%d}" if floor.time() == datetime.min.time() else f"{floor}"
            plan.checks.append(
                Check(
                    col.name,
                    f"before the floor ({day}): a placeholder or a parsing accident",
                    f"{col.name} before the floor ({day})",
                    f"{value} < {ts_literal(floor)}",
                    "quarantine",
                    examples=t,
                )
            )
        if col.values:
            expected = "/".join(col.values)
            plan.checks.append(
                Check(
                    col.name,
                    f"unknown value (expected {expected})",
                    f"unknown {col.name}",
                    f"{t} NOT IN ({', '.join(sql_str(v) for v in col.values)})",
                    "quarantine" if col.on_unknown == "quarantine" else "warning",
                    examples=t,
                )
            )
            raw = plan.cast_expr[col.name]
            plan.checks.append(
                Check(
                    col.name,
                    "values trimmed / lower-cased to a known value",
                    "",
                    f"{raw} IS NOT NULL AND {raw} <> {t}",
                    "info",
                    normalizes=True,
                )
            )
        if col.future:
            value = t if col.dtype == "TIMESTAMP" else f"CAST({t} AS TIMESTAMP)"
            kept = "" if col.future == "quarantine" else " (kept: not known at any earlier as_of)"
            plan.checks.append(
                Check(
                    col.name,
                    f"at or after now ({now:%Y-%m-%d %H:%M:%S}){kept}",
                    f"{col.name} in the future",
                    f"{value} >= {now_sql}",
                    col.future,
                )
            )
    for earlier, later in spec.order_rules:
        if {earlier, later} <= plan.usable:
            plan.checks.append(
                Check(
                    later,
                    f"{later} before {earlier}",
                    f"{later} before {earlier}",
                    f"{typed_col(later)} < {typed_col(earlier)}",
                    "quarantine",
                )
            )


def _finite_check(col: ColumnSpec) -> Check:
    """Infinities are no amount, count or limit (NaN is read as NULL by the cast).

    Enrichment columns whose impossible values become NULL (``on_range="nullify"``) treat
    an infinity the same way; elsewhere the row is set aside.
    """
    t = typed_col(col.name)
    cond = f"NOT isfinite({t})"
    if col.on_range == "nullify":
        text = "not a finite number: set to NULL (unknown)"
        return Check(col.name, text, f"non-finite {col.name}", cond, "nullify", examples=t)
    text = "not a finite number (inf or -inf)"
    return Check(col.name, text, f"non-finite {col.name}", cond, "quarantine", examples=t)


def _range_check(col: ColumnSpec) -> Check:
    t = typed_col(col.name)
    lo, hi = col.min_value, col.max_value
    if lo is not None and hi is not None:
        text, cond = f"{col.name} outside {_num(lo)}-{_num(hi)}", f"({t} < {lo} OR {t} > {hi})"
    elif lo == 0:
        text, cond = f"negative {col.name}", f"{t} < 0"
    elif lo is not None:
        text, cond = f"{col.name} below {_num(lo)}", f"{t} < {lo}"
    else:
        text, cond = f"{col.name} above {_num(hi)}", f"{t} > {hi}"  # type: ignore[arg-type]
    if col.on_range == "nullify":
        return Check(col.name, f"{text}: set to NULL (unknown)", text, cond, "nullify")
    return Check(col.name, text, text, cond, "quarantine")


def _reference_checks(plan: TablePlan, keys: dict[str, ParentKeys]) -> None:
    """Rows whose account / user / plan is not among the parent's clean rows."""
    for col in plan.spec.columns:
        parent = col.references
        if parent is None or col.name not in plan.usable:
            continue
        if parent not in keys:
            text = f"not checked against {parent}: its key is unavailable"
            plan.problems.append(Problem(plan.spec.name, col.name, text, 0, "info"))
            continue
        k = keys[parent]
        alias = f"k_{col.name}"
        t = typed_col(col.name)
        key, clean = qi(f"_k_{col.name}_key"), qi(f"_k_{col.name}_clean")
        selected = f"{alias}.key AS {key}, {alias}.clean AS {clean}"
        ref_keys: tuple[str, ...] = (col.name,)
        if k.has_account and "account_id" in plan.usable and col.name != "account_id":
            selected += f", {alias}.account_id AS {qi(f'_k_{col.name}_account')}"
            ref_keys = (col.name, "account_id")
        plan.joins.append((f"LEFT JOIN {k.name} {alias} ON {alias}.key = t.{t}", selected))
        if col.on_orphan == "quarantine":
            if len(ref_keys) == 2:
                # NOT EXISTS, not a two-column NOT IN: the same rows here (clean parent keys
                # have an account), but a hash anti join on every engine; Spark plans a
                # multi-column NOT IN as a nested loop (quadratic in users)
                acct = typed_col("account_id")
                coarse = (
                    f"{t} IS NOT NULL AND {acct} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                    f"{k.name} p WHERE p.clean AND p.key = {t} AND p.account_id = {acct})"
                )
            else:
                coarse = f"{t} NOT IN (SELECT key FROM {k.name} WHERE clean)"
            plan.coarse_refs.append(CoarseRef(ref_keys, coarse))
        action: CheckAction = "quarantine" if col.on_orphan == "quarantine" else "warning"
        kept = "" if action == "quarantine" else " (kept)"
        plan.checks.append(
            Check(
                col.name,
                f"{col.name} not in {parent}{kept}",
                f"{col.name} not in {parent}",
                f"{t} IS NOT NULL AND {key} IS NULL",
                action,
                joined=True,
                ref_keys=ref_keys,
                examples=t,
            )
        )
        plan.checks.append(
            Check(
                col.name,
                f"{col.name} set aside in {parent}{kept}",
                f"{col.name} set aside in {parent}",
                f"NOT {clean}",
                action,
                joined=True,
                ref_keys=ref_keys,
            )
        )
        if len(ref_keys) == 2:
            acct, acct_t = qi(f"_k_{col.name}_account"), typed_col("account_id")
            plan.checks.append(
                Check(
                    col.name,
                    f"{col.name} belongs to another account",
                    f"{col.name} belongs to another account",
                    f"{clean} AND {acct_t} IS NOT NULL AND {acct} <> {acct_t}",
                    action,
                    joined=True,
                    ref_keys=ref_keys,
                )
            )


def _dedupe_check(plan: TablePlan) -> None:
    key = plan.spec.key
    if key is None or key not in plan.usable or not plan.materialize:
        return
    ties = ", ".join(plan.spec.dedupe_by) or key
    plan.checks.append(
        Check(
            key,
            f"duplicate {key}: kept one row per {key} (the most complete row, then the "
            f"smallest {ties}); the others set aside",
            f"duplicate {key} (another row kept)",
            "",
            "quarantine",
            dedupe=True,
        )
    )


def plan_table(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    spec: TableSpec,
    keys: dict[str, ParentKeys],
    now: datetime,
    floor: datetime,
) -> TablePlan:
    """The checks of one contract table given what the source holds.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Where the raw view ``raw_<table>`` lives.
    source : Source
        What was found (tables, formats, files).
    spec : TableSpec
        The table's contract.
    keys : dict of str to ParentKeys
        Parents already validated, whose keys the reference checks use.
    now : datetime
        Naive UTC extraction time; values at or after it are in the future.
    floor : datetime
        Naive UTC time; timestamps and dates before it are set aside.

    Returns
    -------
    TablePlan
        With structure problems (missing table or columns, wrong types) already listed.
        Tables with a key (and CSV tables) are materialized; events are not.
    """
    materialize = spec.key is not None or source.formats.get(spec.name) == "csv"
    if spec.name not in source.tables:
        plan = TablePlan(spec, present=False, materialize=True)
        if spec.required:
            plan.problems.append(Problem(spec.name, None, "required table missing", 0, "error"))
        else:
            plan.problems.append(
                Problem(spec.name, None, "optional table missing: empty relation", 0, "info")
            )
        return plan
    plan = TablePlan(spec, present=True, materialize=materialize, raw=source.raw(spec.name))
    _plan_columns(con, plan, source)
    _value_checks(plan, ts_literal(now), now, floor)
    _reference_checks(plan, keys)
    _dedupe_check(plan)
    for i, check in enumerate(plan.checks):
        check.flag = qi(f"_f_{i}")
    return plan


# ------------------------------------------------------------------------------- SQL


def typed_sql(plan: TablePlan) -> str:
    """The raw relation with the typed copy (``_t_<column>``) of every contract column added.

    Parameters
    ----------
    plan : TablePlan
        From `plan_table`, for a table that is present.

    Returns
    -------
    str
        A SELECT over ``plan.raw``; the raw columns are kept unchanged for the quarantine.
    """
    typed = ",\n    ".join(f"{expr} AS {typed_col(c)}" for c, expr in plan.typed.items())
    return f"SELECT *,\n    {typed}\nFROM {plan.raw}"


def _join_sql(plan: TablePlan, sql: str) -> str:
    """Add the parent-key columns (LEFT JOINs) the reference checks read."""
    if not plan.joins:
        return sql
    selects = ", ".join(sel for _, sel in plan.joins)
    joins = "\n".join(join for join, _ in plan.joins)
    return f"SELECT t.*, {selects}\nFROM ({sql}) t\n{joins}"


def _flags_sql(checks: list[Check], sql: str) -> str:
    """Add one boolean column per check (NULL counts as false)."""
    if not checks:
        return sql
    flags = ",\n    ".join(f"COALESCE({c.cond}, false) AS {c.flag}" for c in checks)
    return f"SELECT *,\n    {flags}\nFROM ({sql})"


def stage_sql(plan: TablePlan) -> str:
    """The raw rows with typed columns, parent keys and one flag per check (+ `_nrr_q`).

    The duplicate-key check keeps one row per key: rows not set aside first, then the most
    complete, then by the contract's ``dedupe_by`` and every column, so the row kept does not
    depend on the source's row order.

    Parameters
    ----------
    plan : TablePlan
        From `plan_table`.

    Returns
    -------
    str
        A SELECT whose `Q` column is true for every row to set aside.
    """
    row_checks = [c for c in plan.checks if not c.dedupe]
    sql = _flags_sql(row_checks, _join_sql(plan, typed_sql(plan)))
    quarantine = [c.flag for c in row_checks if c.action == "quarantine"]
    sql = f"SELECT *, {' OR '.join(quarantine) or 'false'} AS {Q} FROM ({sql})"
    dedupe = next((c for c in plan.checks if c.dedupe), None)
    if dedupe is not None:
        key = typed_col(plan.spec.key)  # type: ignore[arg-type]
        complete = " + ".join(f"CAST({typed_col(c)} IS NOT NULL AS INTEGER)" for c in plan.typed)
        order = [f"{Q}", f"({complete}) DESC"]
        order += [f"{typed_col(c)} ASC NULLS LAST" for c in plan.spec.dedupe_by if c in plan.usable]
        order += [f"{typed_col(c)} ASC NULLS LAST" for c in plan.typed if c in plan.usable]
        order += [f"CAST({qi(c)} AS VARCHAR) ASC NULLS LAST" for c in plan.raw_cols]
        dup = f"({key} IS NOT NULL AND NOT {Q} AND _nrr_rank > 1)"
        sql = (
            f"SELECT * EXCLUDE ({Q}, _nrr_rank), {dup} AS {dedupe.flag}, ({Q} OR {dup}) AS {Q}\n"
            f"FROM (SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {', '.join(order)})"
            f" AS _nrr_rank FROM ({sql}))"
        )
    return sql


def probe_sql(plan: TablePlan, checks: list[Check]) -> str:
    """Count the rows each of `checks` flags, scanning only the rows any of them flags.

    Meant for checks on one column: DuckDB then pushes the filter into the Parquet scan,
    where statistics and dictionaries answer it without decoding most rows.

    Parameters
    ----------
    plan : TablePlan
        The table's plan (its raw relation and typed columns).
    checks : list of Check
        Row-level checks that read no parent keys.

    Returns
    -------
    str
        A query returning one row with one count per check, in order.
    """
    conds = [f"COALESCE({c.cond}, false)" for c in checks]
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in conds)
    return f"SELECT {counts} FROM ({typed_sql(plan)})\nWHERE " + "\n   OR ".join(conds)


def bad_keys_sql(plan: TablePlan, coarse: CoarseRef) -> str:
    """Distinct keys of a large table that fail a reference check.

    Only the key columns are read, and the distinct keys (a few hundred thousand at most)
    are tested: a hash aggregate over 100M rows is cheaper than probing the parent's keys
    once per row.

    Parameters
    ----------
    plan : TablePlan
        The table's plan.
    coarse : CoarseRef
        The reference test: its key columns and the condition on them.

    Returns
    -------
    str
        A query returning the failing keys, columns named as in the contract.
    """
    typed = ", ".join(typed_col(k) for k in coarse.keys)
    cols = ", ".join(f"{typed_col(k)} AS {qi(k)}" for k in coarse.keys)
    distinct = f"SELECT DISTINCT {typed} FROM ({typed_sql(plan)})"
    return f"SELECT {cols} FROM ({distinct}) WHERE COALESCE({coarse.cond}, false)"


@dataclass(frozen=True)
class BadKeys:
    """Keys of a large table failing a reference check, kept in a small table.

    `first_values` lists the distinct values of the first key column when they are few:
    a literal IN list is pushed into the Parquet scan (answered from its dictionaries),
    a sub-query is not.
    """

    keys: tuple[str, ...]
    table: str
    first_values: tuple[str, ...] | None = None


def suspects_sql(plan: TablePlan, fired: list[Check], bad_keys: list[BadKeys]) -> list[str]:
    """Rows of a large table with any finding: one filtered scan per finding kind.

    `fired` are the row-level checks known to flag some row (see `probe_sql`);
    `bad_keys` the keys failing a reference check (see `bad_keys_sql`). Each query keeps
    the rows of one finding that no earlier query kept, so that their union holds every
    row once; a single-column filter leads each, so DuckDB pushes it into the scan and
    decodes little besides the rows it keeps (an OR across columns would decode every
    row). Run them one by one: in one UNION ALL, DuckDB may share the scan and lose the
    pushdown. The flags are computed afterwards on these few rows by `detail_sql`. The
    first query is empty, without reading any row, when there is nothing to keep.

    Parameters
    ----------
    plan : TablePlan
        The table's plan; its reference checks must all quarantine.
    fired : list of Check
        Checks known to flag some row; those reading parent keys are covered by `bad_keys`.
    bad_keys : list of BadKeys
        The failing keys of each reference check, in small tables.

    Returns
    -------
    list of str
        One SELECT per finding kind (at least one), disjoint, over the typed relation.

    Raises
    ------
    AssertionError
        When a reference check only warns (it needs a materialized table): a planning bug.
    """
    if any(c.joined and c.action != "quarantine" for c in plan.checks):
        raise AssertionError(f"{plan.spec.name}: a reference warning needs a materialized table")
    conds = [f"COALESCE({c.cond}, false)" for c in fired if not c.joined]
    for bad in bad_keys:
        lhs = ", ".join(typed_col(k) for k in bad.keys)
        rhs = ", ".join(qi(k) for k in bad.keys)
        cond = f"COALESCE(({lhs}) IN (SELECT {rhs} FROM {bad.table}), false)"
        if bad.first_values is not None:
            listed = ", ".join(sql_str(v) for v in bad.first_values)
            cond = f"{typed_col(bad.keys[0])} IN ({listed}) AND {cond}"
        conds.append(cond)
    source = f"({typed_sql(plan)})"
    if not conds:
        return [f"SELECT * FROM {source} WHERE false"]
    return [
        f"SELECT * FROM {source}\nWHERE {cond}"
        + "".join(f"\n  AND NOT ({earlier})" for earlier in conds[:i])
        for i, cond in enumerate(conds)
    ]


def detail_sql(plan: TablePlan, suspects: str) -> str:
    """The flags (and `Q`) of the rows `suspects_sql` selected, parent keys joined.

    Parameters
    ----------
    plan : TablePlan
        The table's plan.
    suspects : str
        The relation (table or view name) holding the selected rows.

    Returns
    -------
    str
        A SELECT like `stage_sql`'s, without the duplicate-key check.
    """
    checks = [c for c in plan.checks if not c.dedupe]
    sql = _flags_sql(checks, _join_sql(plan, f"SELECT * FROM {suspects}"))
    quarantine = [c.flag for c in plan.checks if c.action == "quarantine"]
    return f"SELECT *, {' OR '.join(quarantine) or 'false'} AS {Q} FROM ({sql})"


def reason_sql(plan: TablePlan) -> str:
    """The quarantine file's ``reason`` of a row: the reasons of its quarantine flags.

    Parameters
    ----------
    plan : TablePlan
        The table's plan, its checks' flag columns assigned.

    Returns
    -------
    str
        An SQL expression: the reasons joined by ``"; "`` (a VARCHAR NULL with no check).
    """
    parts = [
        f"CASE WHEN {c.flag} THEN {sql_str(c.reason)} END"
        for c in plan.checks
        if c.action == "quarantine"
    ]
    return f"concat_ws('; ', {', '.join(parts)})" if parts else "CAST(NULL AS VARCHAR)"


def final_sql(plan: TablePlan) -> str:
    """Select list of the clean relation: contract columns, canonical types and order.

    Values a "nullify" check flagged become NULL (only when it flagged rows), then the
    contract's defaults fill NULLs.

    Parameters
    ----------
    plan : TablePlan
        The table's plan after its checks ran (``Check.rows`` filled).

    Returns
    -------
    str
        Comma-separated ``CAST(... AS <type>) AS "<column>"`` items.
    """
    out = []
    for col in plan.spec.columns:
        expr = typed_col(col.name)
        for check in plan.checks:
            if check.action == "nullify" and check.column == col.name and check.rows:
                expr = f"CASE WHEN COALESCE({check.cond}, false) THEN NULL ELSE {expr} END"
        if col.default is not None:
            expr = f"COALESCE({expr}, {col.default})"
        out.append(f"CAST({expr} AS {col.dtype}) AS {qi(col.name)}")
    return ",\n    ".join(out)


def empty_sql(spec: TableSpec) -> str:
    """An empty relation with the contract's columns and types (an optional table missing).

    Parameters
    ----------
    spec : TableSpec
        The table's contract.

    Returns
    -------
    str
        A SELECT of typed NULLs ``WHERE false``.
    """
    cols = ", ".join(f"CAST(NULL AS {c.dtype}) AS {qi(c.name)}" for c in spec.columns)
    return f"SELECT {cols} WHERE false"
