"""Open a source of contract tables as raw DuckDB views, without loading any data.

A source is a directory of Parquet or CSV files (events may be a directory of parts) or a
DuckDB database file. `open_source` registers one view per table present, named
``raw_<table>``; `features.validate.validate` reads those and exposes the clean relations.

A PostgreSQL URL (``postgresql://user@host/db``) is read by `features.sql_source`: its
tables are streamed into local ``raw_<table>`` tables as Arrow batches (DuckDB's own
postgres scanner is an extension that cannot be downloaded offline).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Literal

import duckdb

from features import storage
from features.contract import TABLES
from features.data_end import manifest_data_end, manifest_path, read_manifest
from features.errors import InputError, LockHeldError, PathNotFoundError
from features.sql_quote import quote_ident, quote_literal

RAW_PREFIX = "raw_"
ATTACH_ALIAS = "nrr_src"
DUCKDB_SUFFIXES = (".duckdb", ".ddb", ".db")
_FILE_FORMATS = {".parquet": "parquet", ".csv": "csv", ".csv.gz": "csv"}

Format = Literal["parquet", "csv", "duckdb", "postgresql"]


@dataclass
class Source:
    """Raw views of a source registered in a DuckDB connection.

    Attributes
    ----------
    con : the DuckDB connection holding the ``raw_<table>`` views (and, after validation,
        the clean relations).
    path : the directory or database file (for a SQL database: the redacted URL).
    tables : contract tables present in the source, in contract order.
    formats : storage format per present table ("parquet", "csv" or "duckdb").
    files : data files per present table (empty for a DuckDB source).
    data_end : ``data_end`` from ``manifest.json`` (exclusive), else None.
    manifest : the whole manifest (empty when there is none).
    url : the database URL, password redacted (None for files).
    """

    con: duckdb.DuckDBPyConnection
    path: Path
    tables: tuple[str, ...]
    formats: dict[str, Format]
    files: dict[str, list[Path]] = field(default_factory=dict)
    data_end: date | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    url: str | None = None

    def raw(self, table: str) -> str:
        """Name of the raw view of `table`.

        Parameters
        ----------
        table : str
            A contract table.

        Returns
        -------
        str
            ``raw_<table>``.

        Raises
        ------
        KeyError
            When the source does not hold `table`.
        """
        if table not in self.tables:
            raise KeyError(f"table {table!r} is not in source {self.path}")
        return RAW_PREFIX + table

    def close(self) -> None:
        """Close the DuckDB connection."""
        self.con.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sql_str(value: str | Path) -> str:
    """A single-quoted SQL string literal (`features.sql_quote.quote_literal` of the text).

    Parameters
    ----------
    value : str or Path
        The text (a path is written as its string).

    Returns
    -------
    str
        The literal, embedded quotes doubled.

    Examples
    --------
    >>> sql_str("it's")
    "'it''s'"
    """
    return quote_literal(str(value))


# DuckDB reads only the errors of these kinds as "the input is unreadable"; anything else
# (a binder or internal error) is a bug of ours and keeps its traceback.
READ_ERRORS = (duckdb.InvalidInputException, duckdb.IOException, duckdb.ConversionException)


def _first_line(exc: BaseException) -> str:
    """The gist of a DuckDB error: its first line, plus the reason of a CSV error (DuckDB
    puts the offending line, options and suggestions in between)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    first = lines[0]
    if "CSV Error on Line" in first:
        skip = ("Original Line", "Possible Solution", "LINE ", "^")
        reason = next((ln for ln in lines[1:] if not ln.startswith(skip) and " = " not in ln), None)
        if reason is not None:
            first = f"{first}: {reason[:200]}"
    return first[:400]


def open_bytes(path: Path) -> IO[bytes]:
    """A data file opened for bytes (gzip-decompressed for ``.gz``).

    Parameters
    ----------
    path : Path
        The data file.

    Returns
    -------
    binary file object
        Open; the caller closes it (use it in ``with``).
    """
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else path.open("rb")


def first_non_utf8_line(path: Path) -> tuple[int, int, int] | None:
    """(line number, byte offset in the line, count of such lines) of a non-UTF-8 file.

    Lines are counted from 1 as an editor shows them (the header is line 1). None when
    every line decodes. Only called once a read has failed, so a full pass is affordable.

    Parameters
    ----------
    path : Path
        A text data file, possibly ``.gz``.

    Returns
    -------
    tuple of (int, int, int) or None
        The first bad line's number, the 1-based byte offset of its first undecodable byte,
        and how many lines do not decode.
    """
    first, bad = None, 0
    with open_bytes(path) as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad += 1
                if first is None:
                    first = (number, exc.start + 1)
    return None if first is None else (first[0], first[1], bad)


def _compressed_problem(path: Path) -> str | None:
    """Why a ``.gz`` file cannot be decompressed (None when it can)."""
    if not path.name.lower().endswith(".gz"):
        return None
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except (OSError, EOFError) as exc:
        return f"not a readable gzip file ({exc})"
    return None


def _parquet_problem(path: Path) -> str | None:
    """Why a Parquet file cannot be read (None when its footer reads fine)."""
    import pyarrow.parquet as pq

    try:
        pq.read_metadata(path)
    except Exception as exc:  # any reason pyarrow gives is the answer we want
        size = path.stat().st_size
        return f"not a readable Parquet file ({size:,} bytes; truncated or corrupt: {exc})"
    return None


def unreadable(table: str, fmt: str, files: list[Path], exc: BaseException) -> InputError:
    """The error for a table whose files DuckDB could not read, naming the file and line.

    Parameters
    ----------
    table : contract table name.
    fmt : "parquet", "csv" or "duckdb".
    files : the table's files (empty for a DuckDB source).
    exc : what DuckDB raised.

    Returns
    -------
    InputError
        Names the table, the first bad file (and line, for text that is not UTF-8) and
        what to do; falls back to DuckDB's first message line when no file is to blame.
    """
    if fmt == "csv":
        for path in files:
            broken = _compressed_problem(path)
            if broken is not None:
                return InputError(f"table {table!r}: {path} is {broken}; restore or remove it")
            with open_bytes(path) as fh:
                start = fh.read(2)
            if start in (b"\xff\xfe", b"\xfe\xff"):
                return InputError(
                    f"table {table!r}: {path} is UTF-16 encoded (byte-order mark); re-export "
                    "it as UTF-8 (e.g. iconv -f utf-16 -t utf-8)"
                )
            found = first_non_utf8_line(path)
            if found is not None:
                line, col, count = found
                more = f" ({count:,} lines in all)" if count > 1 else ""
                return InputError(
                    f"table {table!r}: {path} line {line} (byte {col}) is not valid UTF-8"
                    f"{more}; re-export the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)"
                )
    if fmt == "parquet":
        for path in files:
            why = _parquet_problem(path)
            if why is not None:
                return InputError(f"table {table!r}: {path} is {why}; restore or remove it")
    where = ", ".join(str(p) for p in files[:3]) or fmt
    return InputError(f"table {table!r}: cannot read {where}: {_first_line(exc)}")


def _file_format(path: Path) -> str | None:
    name = path.name.lower()
    return next((fmt for suf, fmt in _FILE_FORMATS.items() if name.endswith(suf)), None)


def _table_files(root: Path, table: str) -> tuple[str, list[Path]] | None:
    """The format and files holding `table` under `root`, or None when it is absent.

    Accepts ``<table>.parquet``, ``<table>.csv[.gz]`` or a directory ``<table>/`` of parts
    (searched recursively, e.g. ``events/part-*.parquet``). Two layouts or two formats for
    one table are ambiguous and raise ValueError.
    """
    found: dict[str, list[Path]] = {}
    for suffix, fmt in _FILE_FORMATS.items():
        single = root / f"{table}{suffix}"
        if single.is_file():
            found.setdefault(fmt, []).append(single)
    part_dir = root / table
    if part_dir.is_dir():
        for p in sorted(part_dir.rglob("*")):
            fmt = _file_format(p)
            if fmt is not None and p.is_file() and not p.name.startswith((".", "_")):
                found.setdefault(fmt, []).append(p)
    if not found:
        return None
    layouts = {("dir" if p.parent != root else "file") for ps in found.values() for p in ps}
    if len(found) > 1 or len(layouts) > 1:
        listing = ", ".join(str(p.relative_to(root)) for ps in found.values() for p in ps[:3])
        raise InputError(
            f"{root}: table {table!r} is stored more than once ({listing}); keep one of them"
        )
    fmt, files = next(iter(found.items()))
    return fmt, files


def _register_directory(
    con: duckdb.DuckDBPyConnection, root: Path
) -> tuple[dict[str, Format], dict[str, list[Path]]]:
    formats: dict[str, Format] = {}
    files: dict[str, list[Path]] = {}
    for table in TABLES:
        located = _table_files(root, table)
        if located is None:
            continue
        fmt, paths = located
        listing = "[" + ", ".join(sql_str(p) for p in paths) + "]"
        union = ", union_by_name = true" if len(paths) > 1 else ""
        if fmt == "parquet":
            reader = f"read_parquet({listing}{union})"
        else:
            # Text is read as text and cast column by column during validation, so a
            # value that does not parse is reported per row instead of failing the read.
            reader = f"read_csv({listing}, header = true, all_varchar = true{union})"
        view = quote_ident(RAW_PREFIX + table)
        try:
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {reader}")
        except READ_ERRORS as exc:
            raise unreadable(table, fmt, paths, exc) from exc
        formats[table] = fmt  # type: ignore[assignment]
        files[table] = paths
    return formats, files


def _register_duckdb(con: duckdb.DuckDBPyConnection, db_file: Path) -> dict[str, Format]:
    attached = {
        row[0] for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()
    }
    if ATTACH_ALIAS in attached:
        con.execute(f"DETACH {ATTACH_ALIAS}")
    try:
        con.execute(f"ATTACH {sql_str(db_file)} AS {ATTACH_ALIAS} (READ_ONLY)")
    except duckdb.Error as exc:
        text = str(exc).splitlines()[0]
        if "lock" in text.lower():
            raise LockHeldError(
                f"{db_file}: the database is locked by another process ({text})",
                hint="wait for the other writer to finish, or export a copy",
            ) from None
        raise InputError(f"{db_file}: cannot open as a DuckDB database ({text})") from None
    rows = con.execute(
        """
        SELECT lower(table_name), schema_name FROM duckdb_tables() WHERE database_name = ?
        UNION ALL
        SELECT lower(view_name), schema_name FROM duckdb_views() WHERE database_name = ?
        """,
        [ATTACH_ALIAS, ATTACH_ALIAS],
    ).fetchall()
    schemas: dict[str, str] = {}
    for name, schema in sorted(rows, key=lambda r: (r[0], r[1] != "main", r[1])):
        schemas.setdefault(name, schema)
    formats: dict[str, Format] = {}
    for table in TABLES:
        if table in schemas:
            relation = ".".join(quote_ident(p) for p in (ATTACH_ALIAS, schemas[table], table))
            con.execute(
                f"CREATE OR REPLACE VIEW {quote_ident(RAW_PREFIX + table)} AS "
                f"SELECT * FROM {relation}"
            )
            formats[table] = "duckdb"
    return formats


def _open_sql(con: duckdb.DuckDBPyConnection, url: str) -> Source:
    """A database source: its tables streamed into ``raw_<table>`` tables (see sql_source)."""
    from features.sql_source import redact, register_sql

    found = register_sql(con, url)
    return Source(
        con=con,
        path=Path(redact(url)),
        tables=found.tables,
        formats=dict.fromkeys(found.tables, "postgresql"),
        data_end=found.data_end,
        manifest=found.manifest,
        url=redact(url),
    )


def open_source(source: str | Path, *, con: duckdb.DuckDBPyConnection | None = None) -> Source:
    """Register the raw views of a source in a DuckDB connection.

    Nothing is loaded: Parquet and CSV files are read lazily by DuckDB when a query needs
    them, and a DuckDB file is attached read-only.

    Parameters
    ----------
    source : str or Path
        A directory with ``<table>.parquet`` / ``<table>.csv`` files (events may be a
        directory ``events/part-*.parquet``) and optionally ``manifest.json``, a DuckDB
        database file holding tables with the contract's names, or a PostgreSQL URL
        (tables are then copied in as Arrow batches; `features.sql_source`).
    con : duckdb.DuckDBPyConnection, optional
        Connection to register the views in; a new in-memory one by default. Its
        ``TimeZone`` is set to UTC (naive timestamps are UTC, independent of the host).

    Returns
    -------
    Source
        With ``raw_<table>`` views for the tables present; tables that are absent are
        simply not listed (validation reports them).

    Raises
    ------
    PathNotFoundError
        If `source` does not exist (a FileNotFoundError).
    InputError
        (a ValueError) For a database other than PostgreSQL, a table stored twice (e.g.
        both CSV and Parquet, or a file and a directory), a file that cannot be read
        (naming it), or a manifest.json that cannot be read or whose ``data_end`` is not a
        date.
    TransientError
        When a database cannot be reached (also a ConnectionError; may pass on a retry).

    Examples
    --------
    >>> src = open_source("data/raw")  # doctest: +SKIP
    >>> src.con.execute("SELECT count(*) FROM raw_events").fetchone()  # doctest: +SKIP
    """
    text = str(source)
    if "://" in text:
        if con is None:
            con = duckdb.connect()
            con.execute("SET enable_progress_bar = false")
        return _open_sql(con, text)
    path = Path(source).expanduser().resolve()
    if not path.exists():  # a simulated world whose swap a kill interrupted is repaired
        path = storage.readable_dir(path) or path
    if not path.exists():
        raise PathNotFoundError(
            f"source not found: {path}",
            hint="pass --source with a directory of Parquet/CSV tables or a DuckDB file",
        )
    if path.is_file() and path.suffix.lower() not in DUCKDB_SUFFIXES:
        raise InputError(
            f"{path}: expected a directory of Parquet/CSV files or a DuckDB file "
            f"({', '.join(DUCKDB_SUFFIXES)})"
        )
    where = manifest_path(path)
    manifest = read_manifest(where)
    data_end = manifest_data_end(manifest, where)
    if con is None:  # a connection of our own: no progress bar in logs and CI output
        con = duckdb.connect()
        con.execute("SET enable_progress_bar = false")
    # Naive timestamps are UTC. DuckDB otherwise reads a naive value as local time of the
    # host wherever it meets an aware one (e.g. parts of one table that differ), so that
    # results would depend on the machine's time zone.
    con.execute("SET TimeZone = 'UTC'")
    if path.is_dir():
        formats, files = _register_directory(con, path)
    else:
        formats, files = _register_duckdb(con, path), {}
    return Source(
        con=con,
        path=path,
        tables=tuple(t for t in TABLES if t in formats),
        formats=formats,
        files=files,
        data_end=data_end,
        manifest=manifest,
    )
