"""Validate a source against the input contract (v1) and expose clean relations.

`validate` checks every table of `features.contract.TABLES` in DuckDB SQL, reports each
problem by table, column and row count, writes the rows it sets aside to
``<quarantine_dir>/<table>.parquet`` (original columns plus ``reason``), and creates the
clean relations ``accounts, subscriptions, users, events, tickets, plans`` in the source's
connection. Nothing is dropped silently: for every table, read = clean + quarantined.

How the work is laid out (events may hold 100M rows; the other tables are small):

- tables with a key are staged once as temporary tables with one boolean flag per check
  (`features.contract_checks`), deduplicated on the key, and materialized clean;
- events are never copied. Per-column probes (answered mostly from Parquet statistics
  and dictionaries) find which row-level checks fire; the distinct account and
  (user, account) keys are tested against the parents' clean keys; one filtered scan per
  finding then collects the flagged rows, and only those are joined to the parent keys to
  say which check failed. The clean relation is a view over the raw files whose filter
  holds only the checks that found something (bad keys become small NOT IN lists), so it
  assumes the raw files do not change after validation. Events stored as CSV are
  materialized instead, so that the text is parsed once.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from features import storage
from features.contract import CONTRACT_VERSION, DEFAULT_FLOOR, TABLES
from features.contract_checks import (
    BadKeys,
    Check,
    CheckAction,
    ParentKeys,
    Q,
    TablePlan,
    bad_keys_sql,
    detail_sql,
    empty_sql,
    final_sql,
    plan_table,
    probe_sql,
    qi,
    reason_sql,
    stage_sql,
    suspects_sql,
    ts_literal,
    typed_col,
    typed_sql,
)
from features.data_end import DataEnd, declared_data_end, inferred_data_end, manifest_path
from features.sources import READ_ERRORS, InputError, Source, sql_str, unreadable
from features.validation_report import (
    Action,
    ContractError,
    Problem,
    TableCounts,
    ValidationReport,
)

__all__ = [
    "CLEAN_TABLES",
    "ContractError",
    "Problem",
    "TableCounts",
    "ValidationReport",
    "validate",
    "validate_until",
]

log = logging.getLogger(__name__)

CLEAN_TABLES: tuple[str, ...] = tuple(TABLES)
"""Names of the clean relations `validate` creates."""

_KEEP_EXAMPLES = 3
_NEEDED = ("accounts", "subscriptions", "events")  # without clean rows, nothing to compute
# a number written with a decimal comma ('1,5'): a ';'-delimited export from a locale
_DECIMAL_COMMA = r"^\s*[-+]?[0-9]+,[0-9]+\s*$"
_MAX_LISTED = 1000  # bad keys written into the SQL as a literal list (pushed into the scan)


def _as_naive_utc(now: date | datetime) -> datetime:
    if isinstance(now, datetime):
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        return now
    if isinstance(now, date):
        return datetime(now.year, now.month, now.day)
    raise TypeError(f"now must be a date or datetime, got {type(now).__name__}")


def _drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    for kind in ("VIEW", "TABLE"):
        try:
            con.execute(f"DROP {kind} IF EXISTS {qi(name)}")
        except duckdb.CatalogException:
            continue


# ------------------------------------------------------------------------------- running


@dataclass
class _Result:
    counts: TableCounts
    max_ts: list[datetime]
    quarantine_file: Path | None


def _count(con: duckdb.DuckDBPyConnection, exprs: list[str], relation: str) -> list:
    if not exprs:
        return []
    return list(con.execute(f"SELECT {', '.join(exprs)} FROM {relation}").fetchone())


def _probe(con: duckdb.DuckDBPyConnection, plan: TablePlan) -> list[Check]:
    """The row-level checks that flag any row of a large table, one column at a time.

    One OR over every column would decode every row; per column, DuckDB answers most
    checks from Parquet statistics and dictionaries.
    """
    by_column: dict[str | None, list[Check]] = {}
    for check in plan.checks:
        if not check.joined:
            by_column.setdefault(check.column, []).append(check)
    fired = []
    for checks in by_column.values():
        counts = con.execute(probe_sql(plan, checks)).fetchone()
        fired += [c for c, n in zip(checks, counts, strict=True) if n]
    return fired


def _skip_dedupe_without_duplicates(con: duckdb.DuckDBPyConnection, plan: TablePlan) -> None:
    """Turn the duplicate-key check into a constant when no key repeats (no window sort)."""
    check = next((c for c in plan.checks if c.dedupe), None)
    if check is None:
        return
    key = typed_col(plan.spec.key)  # type: ignore[arg-type]
    repeats = con.execute(
        f"SELECT count({key}) - count(DISTINCT {key}) FROM ({typed_sql(plan)})"
    ).fetchone()[0]
    if not repeats:
        check.dedupe, check.cond = False, "false"


def _stage_flagged_rows(con: duckdb.DuckDBPyConnection, plan: TablePlan, stage: str) -> None:
    """Stage only the rows of a large table with a finding, with their flags.

    Cheap per-column probes find which row-level checks fire; the key columns alone find
    the keys that are not clean parents; then one filtered scan per finding keeps the
    rows (none if nothing fired), and the parent keys are joined to these few rows only,
    to say which check failed.
    """
    name = plan.spec.name
    fired = _probe(con, plan)
    bad_keys, temp = [], []
    for i, coarse in enumerate(plan.coarse_refs):
        table = f"_nrr_badref_{name}_{i}"
        temp.append(table)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {bad_keys_sql(plan, coarse)}")
        first = qi(coarse.keys[0])
        values = con.execute(
            f"SELECT DISTINCT {first} FROM {table} ORDER BY 1 LIMIT {_MAX_LISTED + 1}"
        ).fetchall()
        if values:
            listed = tuple(v[0] for v in values) if len(values) <= _MAX_LISTED else None
            bad_keys.append(BadKeys(coarse.keys, table, listed))
    suspects = f"_nrr_suspects_{name}"
    temp.append(suspects)
    first_sql, *more = suspects_sql(plan, fired, bad_keys)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {suspects} AS {first_sql}")
    for sql in more:
        con.execute(f"INSERT INTO {suspects} {sql}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {detail_sql(plan, suspects)}")
    for table in temp:
        con.execute(f"DROP TABLE {table}")


def _run_table(
    con: duckdb.DuckDBPyConnection,
    plan: TablePlan,
    now_sql: str,
    quarantine_dir: Path | None,
    need_latest: bool,
) -> _Result:
    """Count, quarantine and expose one table; fills `check.rows` and `plan.problems`.

    Both paths leave a staged table ``_nrr_stage_<table>`` with one flag per check: all
    rows for a materialized table, only the flagged rows for a large one (events).
    """
    spec, name = plan.spec, plan.spec.name
    _drop_relation(con, name)
    if not plan.present:
        con.execute(f"CREATE TABLE {qi(name)} AS {empty_sql(spec)}")
        return _Result(TableCounts(0, 0, 0), [], None)

    ts_cols = [c.name for c in spec.columns if c.dtype == "TIMESTAMP" and c.name in plan.usable]
    max_exprs = [f"max({typed_col(c)}) FILTER (WHERE {typed_col(c)} < {now_sql})" for c in ts_cols]
    stage = f"_nrr_stage_{name}"
    if plan.materialize:
        _skip_dedupe_without_duplicates(con, plan)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS {stage_sql(plan)}")
    else:
        _stage_flagged_rows(con, plan, stage)
    stats = _count(
        con,
        ["count(*)", f"count(*) FILTER (WHERE {Q})"]
        + [f"count(*) FILTER (WHERE {c.flag})" for c in plan.checks]
        + (max_exprs if plan.materialize else []),
        stage,
    )
    read, quarantined = stats[0], stats[1]
    for check, n in zip(plan.checks, stats[2:], strict=False):
        check.rows = n
    max_ts = stats[2 + len(plan.checks) :]
    if not plan.materialize:
        # a Parquet or DuckDB row count is metadata; the latest time is read only if needed
        extra = ["count(*)"] + (max_exprs if need_latest else [])
        scanned = _count(con, extra, f"({typed_sql(plan)})")
        read, max_ts = scanned[0], scanned[1:]

    _report_checks(con, plan, stage)

    qfile = None
    if quarantine_dir is not None:
        qfile = _write_quarantine(con, plan, stage, quarantine_dir, quarantined)

    if plan.materialize:
        order = f" ORDER BY {qi(spec.key)}" if spec.key else ""
        con.execute(
            f"CREATE TABLE {qi(name)} AS SELECT {final_sql(plan)} FROM {stage} WHERE NOT {Q}{order}"
        )
    else:
        for check in plan.checks:  # no value needed trimming: keep the view lean
            if check.normalizes and not check.rows:
                plan.typed[check.column] = plan.cast_expr[check.column]  # type: ignore[index]
        con.execute(f"CREATE VIEW {qi(name)} AS {_view_sql(con, plan, stage)}")
    latest = [m for m in max_ts if m is not None]
    return _Result(TableCounts(read, quarantined, read - quarantined), latest, qfile)


def _report_checks(con: duckdb.DuckDBPyConnection, plan: TablePlan, stage: str) -> None:
    """Turn the flag counts into problems, with example values where they help."""
    table = plan.spec.name
    action_of: dict[CheckAction, Action] = {
        "quarantine": "quarantined",
        "warning": "warning",
        "nullify": "warning",
        "info": "info",
    }
    for check in plan.checks:
        if not check.rows:
            continue
        text, action = check.problem, action_of[check.action]
        examples = _examples(con, check, stage) if check.examples is not None else ""
        said = f", e.g. {examples}" if examples else ""
        if check.cast_of is not None:
            said += _decimal_comma_hint(con, plan, check, stage)
            # a column where no value converts is a wrong type, not a few bad rows
            nonnull = _count(con, [f"count({check.cast_of})"], plan.raw)[0]
            if nonnull == check.rows:
                col = plan.spec.column(check.column)  # type: ignore[arg-type]
                text = (
                    f"wrong type: expected {col.dtype}, found {check.found_type} and no value "
                    "converts (rows set aside)"
                )
                action = "error"
        text += said
        plan.problems.append(Problem(table, check.column, text, check.rows, action))


def _decimal_comma_hint(
    con: duckdb.DuckDBPyConnection, plan: TablePlan, check: Check, stage: str
) -> str:
    """Name decimal commas ('1,5') among numbers that did not parse: the usual cause is
    a ';'-delimited export from a locale that writes ',' as decimal separator."""
    col = plan.spec.column(check.column)  # type: ignore[arg-type]
    if check.found_type != "VARCHAR" or col.dtype not in ("DOUBLE", "BIGINT"):
        return ""
    pattern = sql_str(_DECIMAL_COMMA)
    comma = _count(
        con,
        [f"count(*) FILTER (WHERE regexp_matches({check.cast_of}, {pattern}))"],
        f"{stage} WHERE {check.flag}",
    )[0]
    if not comma:
        return ""
    return (
        f"; {comma:,} values use a decimal comma: the file looks exported with ';' as "
        "delimiter and ',' as decimal separator; re-export with '.' decimals"
    )


def _examples(con: duckdb.DuckDBPyConnection, check: Check, stage: str) -> str:
    rows = con.execute(
        f"SELECT CAST({check.examples} AS VARCHAR) AS v, count(*) AS n FROM {stage} "
        f"WHERE {check.flag} GROUP BY 1 ORDER BY n DESC, v LIMIT {_KEEP_EXAMPLES}"
    ).fetchall()
    return ", ".join(f"{v!r} ({n:,})" for v, n in rows)


def _write_quarantine(
    con: duckdb.DuckDBPyConnection, plan: TablePlan, q_rel: str, out_dir: Path, rows: int
) -> Path | None:
    """Write the set-aside rows (original columns + `reason`); remove a stale file. The
    directory is nrrcast's own (`claim_quarantine_dir`); the file is replaced atomically."""
    path = out_dir / f"{plan.spec.name}.parquet"
    storage.remove_stale_files(out_dir, path.name)
    if not rows:
        path.unlink(missing_ok=True)
        return None
    cols = [
        f"{qi(c)} AS {qi('reason_in_source')}" if c.lower() == "reason" else qi(c)
        for c in plan.raw_cols
    ]
    tmp = path.with_name(f".{path.name}.tmp-{storage.new_id()}")
    try:
        con.execute(
            f"COPY (SELECT {', '.join(cols)}, {reason_sql(plan)} AS reason FROM {q_rel} "
            f"WHERE {Q}) TO {sql_str(tmp)} (FORMAT parquet)"
        )
        storage.pause_point("quarantine.write")
        os.replace(tmp, path)
    except BaseException:
        storage.cleanup(lambda: tmp.unlink(missing_ok=True), f"remove {tmp.name}")
        raise
    return path


QUARANTINE_LAYOUT = tuple(rf"{name}\.parquet" for name in TABLES)


def _is_quarantine(directory: Path) -> bool:
    """An unmarked directory counts as a quarantine written by nrrcast (before markers
    existed) only if every file in it has the `reason` column nrrcast adds."""
    import pyarrow.parquet as pq

    try:
        return all("reason" in pq.read_schema(p).names for p in directory.iterdir() if p.is_file())
    except Exception:  # noqa: BLE001 - unreadable means: not ours
        return False


def claim_quarantine_dir(quarantine_dir: str | Path, source: object = None) -> Path:
    """The quarantine directory, created and marked as nrrcast's; refused when it overlaps
    the source or holds files nrrcast did not write, so that replacing or removing a
    stale ``<table>.parquet`` only ever touches nrrcast's own files.

    Parameters
    ----------
    quarantine_dir : str or Path
        Where quarantined rows are written.
    source : Path, optional
        The raw data's directory, which the quarantine must not overlap; anything other
        than a Path (e.g. a database URL) is not checked for overlap.

    Returns
    -------
    Path
        The resolved, marked directory.

    Raises
    ------
    UnsafePathError
        When the directory overlaps `source`, is a file, is marked as another kind or holds
        files nrrcast did not write.
    NotWritableError
        When the directory or its marker cannot be created.
    """
    return storage.claim_dir(
        quarantine_dir,
        "quarantine",
        layout=QUARANTINE_LAYOUT,
        keep_clear_of=[source if isinstance(source, Path) else None],
        adopt=_is_quarantine,
    )


def _view_sql(con: duckdb.DuckDBPyConnection, plan: TablePlan, q_rel: str) -> str:
    """The clean view over the raw rows: only checks that found something filter it."""
    name = plan.spec.name
    where: list[str] = []
    by_keys: dict[tuple[str, ...], list[Check]] = {}
    for check in plan.checks:
        if check.action != "quarantine" or not check.rows:
            continue
        if check.joined:
            by_keys.setdefault(check.ref_keys, []).append(check)
        else:
            where.append(f"NOT COALESCE({check.cond}, false)")
    for ref_keys, checks in by_keys.items():
        bad = f"_nrr_badkeys_{name}_{ref_keys[0]}"
        flags = " OR ".join(c.flag for c in checks)
        not_null = " AND ".join(f"{typed_col(k)} IS NOT NULL" for k in ref_keys)
        cols = ", ".join(f"{typed_col(k)} AS {qi(k)}" for k in ref_keys)
        con.execute(
            f"CREATE OR REPLACE TABLE {bad} AS SELECT DISTINCT {cols} FROM {q_rel} "
            f"WHERE ({flags}) AND {not_null}"
        )
        lhs = ", ".join(typed_col(k) for k in ref_keys)
        rhs = ", ".join(qi(k) for k in ref_keys)
        test = f"({lhs}) NOT IN (SELECT {rhs} FROM {bad})"
        where.append(f"({typed_col(ref_keys[0])} IS NULL OR {test})")
    sql = f"SELECT {final_sql(plan)}\nFROM ({typed_sql(plan)})"
    if where:
        sql += "\nWHERE " + "\n  AND ".join(where)
    return sql


def _make_keys(con: duckdb.DuckDBPyConnection, plan: TablePlan) -> ParentKeys | None:
    """Keys of a parent table for its children's reference checks (None if unusable)."""
    key = plan.spec.key
    parents = {c.references for t in TABLES.values() for c in t.columns}
    if not plan.present or key is None or key not in plan.usable or plan.spec.name not in parents:
        return None
    name = f"_nrr_keys_{plan.spec.name}"
    has_account = "account_id" in plan.usable and plan.spec.name != "accounts"
    acct = typed_col("account_id")
    # the account of the kept (clean) row; ordered so that the choice is deterministic
    extra = (
        f", any_value({acct} ORDER BY {acct}) FILTER (WHERE NOT {Q}) AS account_id"
        if has_account
        else ""
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {typed_col(key)} AS key, "
        f"bool_or(NOT {Q}) AS clean{extra} FROM _nrr_stage_{plan.spec.name} "
        f"WHERE {typed_col(key)} IS NOT NULL GROUP BY 1"
    )
    return ParentKeys(plan.spec.name, name, has_account)


def _check_tables(
    source: Source,
    now_dt: datetime,
    floor_dt: datetime,
    now_sql: str,
    quarantine_dir: Path | None,
) -> tuple[list[Problem], dict[str, TableCounts], dict[str, Path], list[datetime]]:
    """Check, quarantine and expose each contract table in turn (parents first).

    Returns the problems, the counts and quarantine file of each table, and the latest
    timestamps seen (for a data end when the source has no manifest). The staging tables
    are dropped even when a table fails.
    """
    con = source.con
    problems: list[Problem] = []
    counts: dict[str, TableCounts] = {}
    qfiles: dict[str, Path] = {}
    latest: list[datetime] = []
    keys: dict[str, ParentKeys] = {}
    temp: list[str] = []
    try:
        for spec in TABLES.values():
            try:
                plan = plan_table(con, source, spec, keys, now_dt, floor_dt)
                result = _run_table(
                    con, plan, now_sql, quarantine_dir, need_latest=source.data_end is None
                )
            except READ_ERRORS as exc:
                fmt = source.formats.get(spec.name, "")
                files = source.files.get(spec.name) or [source.path]
                raise unreadable(spec.name, fmt, files, exc) from exc
            if plan.present:
                temp.append(f"_nrr_stage_{spec.name}")
                made = _make_keys(con, plan)
                if made is not None:
                    keys[spec.name] = made
                    temp.append(made.name)
            problems.extend(plan.problems)
            counts[spec.name] = result.counts
            latest.extend(result.max_ts)
            if result.quarantine_file is not None:
                qfiles[spec.name] = result.quarantine_file
            c = result.counts
            log.info(
                "%s: %d read, %d quarantined, %d clean", spec.name, c.read, c.quarantined, c.clean
            )
    finally:  # a failing clean-up must not hide the error that stopped the loop
        for name in temp:
            storage.cleanup(lambda n=name: con.execute(f"DROP TABLE IF EXISTS {n}"), f"drop {name}")
    return problems, counts, qfiles, latest


def _require_rows(
    source: Source,
    counts: dict[str, TableCounts],
    problems: list[Problem],
    qfiles: dict[str, Path],
) -> None:
    """Stop when a needed table kept no row, unless errors already say why."""
    empty = [t for t in _NEEDED if t in source.tables and counts[t].clean == 0]
    failed = any(p.action == "error" for p in problems)  # those errors say why: report them
    if empty and not failed:  # the quarantine files are written: the message points at them
        c = counts[empty[0]]
        where = f"; see {qfiles[empty[0]]}" if empty[0] in qfiles else ""
        raise InputError(
            f"table {empty[0]} has no usable rows ({c.read:,} read, {c.quarantined:,} set "
            f"aside{where}): nothing to compute features from",
            hint="export the table's rows (accounts, subscriptions and events are needed)",
        )


def validate(
    source: Source,
    *,
    now: date | datetime,
    quarantine_dir: Path | None,
    floor: date | datetime = DEFAULT_FLOOR,
) -> ValidationReport:
    """Check a source against input contract v1 and expose the clean relations.

    Parameters
    ----------
    source : Source
        From `features.sources.open_source`; its connection receives the clean relations.
    now : date or datetime
        The extraction time: timestamps at or after it are "in the future". A date means
        midnight; an aware datetime is converted to naive UTC. The CLI passes the
        manifest's ``data_end`` (else today); library code never reads the clock.
    quarantine_dir : Path or None
        Where ``<table>.parquet`` files of set-aside rows (original columns plus
        ``reason``) are written; a stale file of a table with nothing set aside is
        removed. None writes nothing (the counts are still reported).
    floor : date or datetime, default `features.contract.DEFAULT_FLOOR` (2000-01-01)
        Timestamps and dates before it are set aside (a 1900-01-01 placeholder would
        otherwise start every panel in 1900). A date means midnight.

    Returns
    -------
    ValidationReport
        Problems by table and column with row counts and actions, per-table counts
        (read = clean + quarantined), `data_end`. Call ``raise_if_failed()`` to stop on
        errors. Afterwards ``source.con`` exposes ``accounts, subscriptions, users,
        events, tickets, plans`` with canonical types and every contract column (optional
        ones NULL when absent; events.actor 'human', status 'ok', quantity 1.0 by default);
        missing tables are empty. `events` is a view over the raw files, the others are
        tables.

    Raises
    ------
    InputError
        (a ValueError) When a table's files cannot be read: bytes that are not UTF-8 in
        a CSV (naming file and line), a truncated Parquet file (naming it); when
        accounts, subscriptions or events hold no usable row (after the quarantine files
        are written).

    Examples
    --------
    >>> from features.sources import open_source  # doctest: +SKIP
    >>> src = open_source("data/raw")  # doctest: +SKIP
    >>> report = validate(src, now=src.data_end, quarantine_dir=Path("data/quarantine"))  # doctest: +SKIP
    >>> report.raise_if_failed()  # doctest: +SKIP
    >>> src.con.execute("SELECT count(*) FROM events").fetchone()  # doctest: +SKIP
    """
    now_dt = _as_naive_utc(now)
    floor_dt = _as_naive_utc(floor)
    if floor_dt >= now_dt:
        raise InputError(
            f"the timestamp floor {floor_dt:%Y-%m-%d} is not before the data's end "
            f"{now_dt:%Y-%m-%d}: every row would be set aside (lower features.data_floor)"
        )
    now_sql = ts_literal(now_dt)
    if quarantine_dir is not None:
        quarantine_dir = claim_quarantine_dir(quarantine_dir, source.path)

    problems, counts, qfiles, latest = _check_tables(
        source, now_dt, floor_dt, now_sql, quarantine_dir
    )
    _require_rows(source, counts, problems, qfiles)
    if source.data_end is not None:
        data_end, data_end_from = source.data_end, "manifest"
    elif latest:
        data_end, data_end_from = max(latest).date() + timedelta(days=1), "data"
    else:
        data_end, data_end_from = None, None
    return ValidationReport(
        problems=problems,
        counts=counts,
        now=now_dt,
        data_end=data_end,
        data_end_from=data_end_from,  # type: ignore[arg-type]
        quarantine_files=qfiles,
        contract_version=CONTRACT_VERSION,
    )


def validate_until(
    source: Source,
    *,
    option: date | str | None = None,
    today: date,
    quarantine_dir: Path | None,
    floor: date | None = None,
) -> tuple[ValidationReport, DataEnd]:
    """Decide the data's end by the rule and validate the source against it.

    Rows dated on or after the data's end are quarantined as "in the future". When the end
    is inferred, validation runs against `today` (later rows are quarantined) and the end
    is the day after the latest timestamp kept, so no clean row lies on or after it either.

    Parameters
    ----------
    source : Source
        From `features.sources.open_source` (its manifest already read and checked).
    option : date, str or None
        The ``--data-end`` value, if the user gave one.
    today : date
        The caller's clock (libraries never read it): the bound for inferred ends.
    quarantine_dir : Path or None
        Passed to `features.validate.validate`.
    floor : date, optional
        Timestamps before it are set aside (``features.data_floor``); None keeps the
        contract's default (`features.contract.DEFAULT_FLOOR`).

    Returns
    -------
    (ValidationReport, DataEnd)
        The report carries the same ``data_end`` and ``data_end_from``.
    """
    declared = declared_data_end(source.data_end, manifest_path(source.path), option)
    floor_kw = {} if floor is None else {"floor": floor}
    report = validate(
        source,
        now=declared.day if declared else today,
        quarantine_dir=quarantine_dir,
        **floor_kw,
    )
    if declared is None:
        latest = report.data_end - timedelta(days=1) if report.data_end else None
        end = inferred_data_end(latest, today, str(source.path))
    else:
        end = declared
    report.data_end, report.data_end_from = end.day, end.origin
    return report, end
