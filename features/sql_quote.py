"""The one place where a Python value becomes SQL text: identifiers and literals.

SQL that nrrcast builds from strings takes every name and every value through these
helpers (or passes values as DuckDB parameters), so a quote in a column name, a config
value or a data value can never end a string and start a statement. The test
``tests/features/test_sql_quote.py`` scans the code for SQL built from other interpolations.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime

_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_]*")


def quote_ident(name: str) -> str:
    """A double-quoted SQL identifier (embedded double quotes doubled).

    Parameters
    ----------
    name : str
        A table, view or column name, any spelling (other objects are written as ``str``).

    Returns
    -------
    str
        The quoted identifier; its case is kept.

    Raises
    ------
    ValueError
        When `name` holds a NUL character (no SQL engine takes it).

    Examples
    --------
    >>> print(quote_ident('a "b" c'))
    "a ""b"" c"
    """
    text = str(name)
    if "\x00" in text:
        raise ValueError(f"identifier {text!r} holds a NUL character")
    return '"' + text.replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """An SQL literal for a Python value: str, Path, int, float, bool, date, datetime or None.

    Strings are single-quoted with embedded quotes doubled; numbers must be finite;
    dates and datetimes become typed literals (naive datetimes, microseconds).

    Parameters
    ----------
    value : object
        The value; types not listed above are written as the string of ``str(value)``.

    Returns
    -------
    str
        ``NULL``, ``TRUE``/``FALSE``, a number, ``DATE '...'``, ``TIMESTAMP '...'`` or a
        quoted string.

    Raises
    ------
    ValueError
        For a non-finite float, an aware datetime, or a string holding a NUL character.

    Examples
    --------
    >>> quote_literal("it's")
    "'it''s'"
    >>> quote_literal(date(2026, 1, 1))
    "DATE '2026-01-01'"
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write the non-finite number {value!r} as an SQL literal")
        return repr(float(value))
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"{value!r}: convert aware datetimes to naive UTC first")
        return f"TIMESTAMP '{value.isoformat(sep=' ', timespec='microseconds')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    text = str(value)
    if "\x00" in text:
        raise ValueError("a string literal holds a NUL character")
    return "'" + text.replace("'", "''") + "'"


def set_statement(name: str, value: object) -> str:
    """``SET name = <literal>`` for a DuckDB setting; the name must be a plain word.

    Parameters
    ----------
    name : str
        The setting, lower-case letters, digits and underscores.
    value : object
        Its value (see `quote_literal`).

    Returns
    -------
    str
        The statement.

    Raises
    ------
    ValueError
        When `name` is not a plain setting name.

    Examples
    --------
    >>> set_statement("memory_limit", "4GB")
    "SET memory_limit = '4GB'"
    """
    if not _SETTING_NAME.fullmatch(name):
        raise ValueError(f"not a setting name: {name!r}")
    return f"SET {name} = {quote_literal(value)}"
