"""Write a date's scores to a SQL database in one transaction (PostgreSQL via ADBC COPY).

PostgreSQL gets the rows with the binary COPY protocol of the ADBC driver, Arrow chunk by
Arrow chunk, inside one transaction that first deletes the date's previous rows: readers
see the old scores until the commit and the new ones after it, never a mix, and a failure
leaves the table as it was. Other databases go through SQLAlchemy (``to_sql``, row
inserts) in one transaction as well.

The table (``scores``, in the URL's ``?schema=`` or the connection's search_path) is
created on first write with the types of the scores; a later scores table with a column
the database table lacks is refused with the column names (nrrcast does not alter a
table it may share with other readers).
"""

from __future__ import annotations

import logging
from datetime import date

import pandas as pd
import pyarrow as pa

from features.errors import StateError
from features.sql_quote import quote_ident
from features.sql_source import DatabaseUnreachableError, connect, parse_url, redact

log = logging.getLogger("nrrcast.scores")

TABLE = "scores"


class SchemaMismatchError(StateError, ValueError):
    """The database's scores table lacks columns the scores have: nothing was written."""


CHUNK_ROWS = 100_000


def write_scores_sql(
    scores: pd.DataFrame, url: str, as_of: date, *, table: str = TABLE, chunk_rows: int = CHUNK_ROWS
) -> int:
    """Replace the rows of `as_of` in `table` of the database at `url`, atomically.

    Parameters
    ----------
    scores : pd.DataFrame
        One date's scores (checked by `evaluation.scores_store.write_scores`).
    url : str
        SQLAlchemy-style URL; ``postgresql://`` (any ``+driver``) uses ADBC COPY.
    as_of : date
        The date whose rows are replaced; written as a DATE column.
    table, chunk_rows :
        Target table name; rows converted to Arrow per COPY chunk.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    DatabaseUnreachableError
        When the database cannot be reached (nothing was written; a ConnectionError).
    SchemaMismatchError
        When the existing table lacks columns of the scores (nothing was written).
    """
    day = pd.Timestamp(as_of).date()
    rows = scores.assign(as_of=day)  # a DATE column compares the same way in every dialect
    dialect = url.split("://", 1)[0].split("+", 1)[0].lower()
    if dialect in ("postgresql", "postgres"):
        _write_postgres(rows, url, day, table, chunk_rows)
    else:
        _write_sqlalchemy(rows, url, day, table)
    log.info("wrote %d scores for %s to %s (table %s)", len(rows), day, redact(url), table)
    return len(rows)


def _write_postgres(rows: pd.DataFrame, url: str, day: date, table: str, chunk_rows: int) -> None:
    import adbc_driver_manager

    schema = parse_url(url).schema
    db = connect(url)
    try:
        cur = db.cursor()
        if schema is None:
            cur.execute("SELECT current_schema()")
            schema = str(cur.fetchall()[0][0])
        target = f"{quote_ident(schema)}.{quote_ident(table)}"
        cur.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = $1 AND table_name = $2",
            parameters=(schema, table),
        )
        existing = {str(r[0]) for r in cur.fetchall()}
        if existing:
            missing = [c for c in rows.columns if c not in existing]
            if missing:
                raise SchemaMismatchError(
                    f"{redact(url)}: table {schema}.{table} lacks the columns {missing} of the "
                    "scores",
                    hint="add them (ALTER TABLE ... ADD COLUMN) or write to a new table",
                )
            # writers of the same table queue here; readers keep seeing the committed rows
            cur.execute(f"LOCK TABLE {target} IN SHARE ROW EXCLUSIVE MODE")
            cur.execute(f"DELETE FROM {target} WHERE as_of = $1", parameters=(day,))
        for start in range(0, len(rows), chunk_rows):
            chunk = pa.Table.from_pandas(
                rows.iloc[start : start + chunk_rows], preserve_index=False
            ).replace_schema_metadata(None)
            cur.adbc_ingest(table, chunk, mode="create_append", db_schema_name=schema)
        db.commit()
    except adbc_driver_manager.OperationalError as exc:
        db.rollback()
        first = str(exc).strip().splitlines()[0]
        raise DatabaseUnreachableError(f"writing scores to {redact(url)} failed: {first}") from None
    except BaseException:
        db.rollback()
        raise
    finally:
        db.close()


def _write_sqlalchemy(rows: pd.DataFrame, url: str, day: date, table: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            if sa.inspect(conn).has_table(table):
                conn.execute(
                    sa.text(f"DELETE FROM {quote_ident(table)} WHERE as_of = :d"), {"d": day}
                )
            rows.to_sql(table, conn, if_exists="append", index=False)
    finally:
        engine.dispose()
