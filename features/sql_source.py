"""Read contract tables from a SQL database (PostgreSQL) into DuckDB as Arrow batches.

DuckDB's postgres scanner is an extension downloaded on first use, which is not possible
offline, so the tables are read with the ADBC PostgreSQL driver instead: it runs the query
with PostgreSQL's binary COPY protocol and hands back Arrow record batches, which DuckDB
appends to a local ``raw_<table>`` table one batch at a time (memory stays bounded by a
batch, not a table). From there validation is exactly the one that files get: the same
casts, checks and quarantine.

Why ADBC: it moves data between PostgreSQL's binary COPY format and Arrow in C, in both
directions (reads here, scores written by `evaluation.scores_sql`), inside ordinary DB-API
transactions. psycopg 3 also speaks COPY but hands rows or raw bytes to Python, which would
then have to build Arrow itself; connectorx reads into Arrow quickly but cannot write and
has no transaction to read several tables as one snapshot.

All tables are read in one REPEATABLE READ, READ ONLY transaction, so they are one
consistent snapshot of the database even while it is being loaded.

URLs are SQLAlchemy-style: ``postgresql://user@host:5432/db`` (``postgres://`` and a
``+driver`` suffix such as ``postgresql+psycopg://`` are accepted). Two query parameters
are nrrcast's own and are removed before connecting: ``schema`` (where the tables are;
default: the connection's search_path) and ``batch_bytes`` (Arrow batch size hint). The
password is best kept out of the URL: libpq reads ``PGPASSWORD`` and ``~/.pgpass``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb

from features.contract import TABLES
from features.errors import InputError, TransientError
from features.sql_quote import quote_ident

RAW_PREFIX = "raw_"
MANIFEST_TABLE = "nrrcast_manifest"
POSTGRES_SCHEMES = ("postgresql", "postgres")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

# PostgreSQL types whose Arrow form DuckDB reads as the same type; everything else is
# read as text and cast (per value, like CSV) by validation.
_NATIVE = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "real",
        "double precision",
        "boolean",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "text",
        "character varying",
        "character",
    }
)


def is_sql_url(source: object) -> bool:
    """True when `source` is a database URL (``scheme://...``) rather than a path.

    Parameters
    ----------
    source : object
        A source as given (str, Path, ...); only a str can be a URL.

    Returns
    -------
    bool
        Whether it starts with a URL scheme and ``://``.

    Examples
    --------
    >>> is_sql_url("postgresql://cs@db/crm"), is_sql_url("data/raw")
    (True, False)
    """
    return isinstance(source, str) and bool(_URL_RE.match(source))


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe for logs and MLflow tags).

    Parameters
    ----------
    url : str
        A database URL.

    Returns
    -------
    str
        `url` unchanged when it holds no password.

    Examples
    --------
    >>> redact("postgresql://cs:secret@db:5432/crm?schema=cs")
    'postgresql://cs:***@db:5432/crm?schema=cs'
    """
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class DatabaseUnreachableError(TransientError, ConnectionError):
    """The database did not answer or dropped the connection: may pass on a retry."""


@dataclass(frozen=True)
class SqlUrl:
    """A parsed database URL: what libpq connects to and nrrcast's own options."""

    dialect: str
    uri: str
    schema: str | None = None
    batch_bytes: int | None = None


def parse_url(url: str) -> SqlUrl:
    """Split a SQLAlchemy-style URL into the libpq URI and nrrcast's options.

    Parameters
    ----------
    url : str
        ``postgresql[+driver]://...`` or ``postgres://...``, optionally with ``schema`` and
        ``batch_bytes`` query parameters; other parameters go to libpq.

    Returns
    -------
    SqlUrl
        The ``postgresql://`` URI without nrrcast's parameters, and those parameters.

    Raises
    ------
    InputError
        For a database other than PostgreSQL, or a bad ``batch_bytes`` (a ValueError).
    """
    parts = urlsplit(url)
    dialect = parts.scheme.split("+", 1)[0].lower()
    if dialect not in POSTGRES_SCHEMES:
        raise InputError(
            f"{redact(url)}: {dialect}:// sources are not supported (PostgreSQL is); use a "
            "postgresql:// URL, or export the tables to Parquet, CSV or a DuckDB file"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    schema = query.pop("schema", None) or None
    batch = query.pop("batch_bytes", None)
    try:
        batch_bytes = int(batch) if batch else None
    except ValueError:
        raise InputError(f"{redact(url)}: batch_bytes={batch!r} is not a number") from None
    uri = urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))
    return SqlUrl("postgresql", uri, schema, batch_bytes)


def connect(url: str) -> Any:
    """An ADBC DB-API connection (transactions on, autocommit off) to a PostgreSQL URL.

    A failure to connect is raised as DatabaseUnreachableError (a TransientError and a
    ConnectionError: the kind of failure a retry may get past), naming the redacted URL.

    Parameters
    ----------
    url : str
        A PostgreSQL URL (see `parse_url`).

    Returns
    -------
    adbc_driver_manager.dbapi.Connection
        Open; the caller closes it.

    Raises
    ------
    DatabaseUnreachableError
        When the database cannot be reached or refuses the credentials.
    InputError
        For an unsupported URL (see `parse_url`).
    """
    import adbc_driver_manager
    import adbc_driver_postgresql.dbapi as pg

    parsed = parse_url(url)
    try:
        return pg.connect(parsed.uri)
    except adbc_driver_manager.OperationalError as exc:
        first = str(exc).strip().splitlines()[0]
        raise DatabaseUnreachableError(
            f"cannot connect to {redact(url)}: {first}",
            hint="check the host, port and credentials (PGPASSWORD, ~/.pgpass)",
        ) from None


@dataclass
class SqlTables:
    """What `register_sql` found and loaded.

    Attributes
    ----------
    tables : contract tables found in the database, in contract order.
    rows : rows read per table.
    schema : the database schema the tables were read from.
    data_end : ``data_end`` of the ``nrrcast_manifest`` table, if there is one.
    manifest : that table's single row as a dict (empty when absent).
    """

    tables: tuple[str, ...]
    rows: dict[str, int]
    schema: str
    data_end: date | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def _columns(cur: Any, schema: str, table: str) -> list[tuple[str, str]]:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        parameters=(schema, table),
    )
    return [(str(n), str(t)) for n, t in cur.fetchall()]


def _select(schema: str, table: str, columns: list[tuple[str, str]]) -> str:
    """SELECT list that keeps types DuckDB reads natively and turns the rest into numbers
    (numeric) or text (uuid, json, enums, ...), lower-casing column names."""
    items = []
    for name, dtype in columns:
        col = quote_ident(name)
        if dtype in _NATIVE:
            expr = col
        elif dtype == "numeric":
            expr = f"{col}::double precision"
        else:
            expr = f"{col}::text"
        items.append(f"{expr} AS {quote_ident(name.lower())}")
    return f"SELECT {', '.join(items)} FROM {quote_ident(schema)}.{quote_ident(table)}"


def _manifest(cur: Any, schema: str, name: str | None) -> dict[str, Any]:
    if name is None:
        return {}
    cur.execute(f"SELECT * FROM {quote_ident(schema)}.{quote_ident(name)}")
    rows = cur.fetchall()
    if len(rows) != 1:
        raise InputError(f"{schema}.{name}: expected one row (data_end, ...), found {len(rows)}")
    names = [d[0].lower() for d in cur.description]
    return dict(zip(names, rows[0], strict=True))


def _manifest_date(manifest: dict[str, Any], where: str) -> date | None:
    value = manifest.get("data_end")
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value if type(value) is date else value.date()  # type: ignore[attr-defined]
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise InputError(f"{where}: data_end {value!r} is not a date (YYYY-MM-DD)") from None


def register_sql(
    con: duckdb.DuckDBPyConnection, url: str, *, tables: tuple[str, ...] = TABLES
) -> SqlTables:
    """Stream the contract tables of a PostgreSQL database into ``raw_<table>`` tables.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Where the ``raw_<table>`` tables are created (replaced if they exist).
    url : str
        ``postgresql://user@host:port/db[?schema=...]`` (see the module docstring).
    tables : tuple of str
        Table names to look for; tables that are absent are simply not listed
        (validation reports the required ones).

    Returns
    -------
    SqlTables
        The tables found, rows read and the manifest table's ``data_end``.

    Raises
    ------
    DatabaseUnreachableError
        When the database cannot be reached (a ConnectionError).
    InputError
        For an unsupported database, a schema that does not exist or a bad manifest
        (a ValueError).
    """
    parsed = parse_url(url)
    db = connect(url)
    try:
        cur = db.cursor()
        if parsed.batch_bytes:
            cur.adbc_statement.set_options(
                **{"adbc.postgresql.batch_size_hint_bytes": str(parsed.batch_bytes)}
            )
        # one consistent snapshot of every table, and a promise not to write
        cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cur.execute("SELECT current_schema()")
        schema = parsed.schema or cur.fetchall()[0][0]
        cur.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
            parameters=(schema,),
        )
        present: dict[str, str] = {}
        for (name,) in sorted(cur.fetchall()):
            present.setdefault(str(name).lower(), str(name))
        if not present and parsed.schema:
            raise InputError(
                f"{redact(url)}: schema {schema!r} holds no tables (or does not exist)",
                hint="check ?schema= in the URL",
            )
        found = tuple(t for t in tables if t in present)
        rows: dict[str, int] = {}
        for table in found:
            select = _select(schema, present[table], _columns(cur, schema, present[table]))
            cur.execute(select)
            reader = cur.fetch_record_batch()
            con.register("nrr_sql_batches", reader)
            try:
                con.execute(
                    f"CREATE OR REPLACE TABLE {quote_ident(RAW_PREFIX + table)} "
                    "AS SELECT * FROM nrr_sql_batches"
                )
            finally:
                con.unregister("nrr_sql_batches")
            rows[table] = int(
                con.execute(f"SELECT count(*) FROM {quote_ident(RAW_PREFIX + table)}").fetchall()[
                    0
                ][0]
            )
        manifest = _manifest(cur, schema, present.get(MANIFEST_TABLE))
        db.rollback()
    finally:
        db.close()
    where = f"{redact(url)} {schema}.{MANIFEST_TABLE}"
    return SqlTables(
        tables=found,
        rows=rows,
        schema=schema,
        data_end=_manifest_date(manifest, where),
        manifest={k: str(v) for k, v in manifest.items()},
    )


def source_arg(source: str | Path) -> str | Path:
    """A source as given on a command line or in a config: URLs stay text (a Path would
    collapse their ``//``), anything else becomes a Path.

    Parameters
    ----------
    source : str or Path
        The source as given.

    Returns
    -------
    str or Path
        The URL text, or the path.
    """
    text = str(source)
    return text if is_sql_url(text) else Path(source)
