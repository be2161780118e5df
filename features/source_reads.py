"""Reads of a validated source beyond the feature table: names, roster, subscriptions, counts.

The flows need a few plain reads of the clean relations (account names for the report, the
optional csms roster, subscriptions for NRR, how many CSMs share the alerts). They live here,
next to the sources they read, so that the flows run no SQL of their own. Every function
takes the source's connection (DuckDB, or the Spark wrapper with the same ``execute``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from features.sources import _table_files


def event_count(con: Any) -> int:
    """Clean rows in the events table.

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    int
        Number of rows of ``events``.

    Examples
    --------
    >>> import duckdb
    >>> con = duckdb.connect()
    >>> _ = con.execute("CREATE TABLE events AS SELECT 1 AS x")
    >>> event_count(con)
    1
    """
    return con.execute("SELECT count(*) FROM events").fetchone()[0]


def first_event_ts(con: Any) -> Any:
    """The earliest event timestamp (None when the events table is empty).

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    timestamp or None
        ``min(ts)`` of ``events`` as the engine returns it.
    """
    return con.execute("SELECT min(ts) FROM events").fetchall()[0][0]


def account_names(con: Any) -> pd.DataFrame:
    """Each account's display name.

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    pd.DataFrame
        Columns ``account_id`` and ``name``.
    """
    return con.execute("SELECT account_id, name FROM accounts").df()


def optional_csms(con: Any) -> pd.DataFrame | None:
    """The optional csms table, or None when the source has none (or it is empty).

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    pd.DataFrame or None
        Every column of ``csms``.
    """
    try:
        frame = con.execute("SELECT * FROM csms").df()
    except Exception:  # noqa: BLE001  (an optional table may be absent from the source)
        return None
    return frame if len(frame) else None


def subscriptions(con: Any) -> pd.DataFrame:
    """Subscription rows with the columns NRR needs.

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    pd.DataFrame
        Columns ``account_id``, ``start_date``, ``end_date`` and ``mrr``.
    """
    return con.execute("SELECT account_id, start_date, end_date, mrr FROM subscriptions").df()


def csm_count(con: Any) -> int:
    """How many distinct CSMs the accounts are assigned to.

    Parameters
    ----------
    con : connection
        The validated source's connection.

    Returns
    -------
    int
        Distinct non-null ``accounts.csm_id`` values.
    """
    return con.execute(
        "SELECT count(DISTINCT csm_id) FROM accounts WHERE csm_id IS NOT NULL"
    ).fetchone()[0]


def roster_frame(src: Any) -> pd.DataFrame | None:
    """The source's csms roster as read, before any check; None when it has none.

    Reads the validated relation when the input contract knows the table, else (an older
    contract) a ``csms.parquet`` / ``csms.csv`` beside the other tables.

    Parameters
    ----------
    src : Source
        An open source (``.tables``, ``.con``, ``.raw()``, ``.path``).

    Returns
    -------
    pd.DataFrame or None
        The roster's rows, unchecked.
    """
    if "csms" in getattr(src, "tables", ()):
        rel = "csms" if _has_relation(src.con, "csms") else src.raw("csms")
        return src.con.execute(f"SELECT * FROM {rel}").df()
    if Path(src.path).is_dir():
        found = _table_files(Path(src.path), "csms")
        if found is not None:
            fmt, files = found
            return pd.concat(
                [pd.read_parquet(f) if fmt == "parquet" else pd.read_csv(f) for f in files],
                ignore_index=True,
            )
    return None


def _has_relation(con: Any, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])
