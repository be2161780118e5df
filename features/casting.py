"""How a column found in a source is cast to the contract's type, in DuckDB SQL.

A found type is either compatible (cast always succeeds), fallible (cast per value: text
from CSV, non-integral floats for an integer column; values that fail are set aside by
validation), or incompatible (an error naming the expected and found types).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INT_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER"}
)
WIDE_INT_TYPES = frozenset({"HUGEINT", "UBIGINT", "UHUGEINT"})
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})
TIMESTAMP_TYPES = frozenset({"TIMESTAMP", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"})
TIMESTAMPTZ = "TIMESTAMP WITH TIME ZONE"
NULL_TYPE = '"NULL"'

# An ISO timestamp text ending in a UTC offset, Z or a zone name (Europe/Paris, EST):
# DuckDB's TIMESTAMP cast would drop it silently, so such values are read as TIMESTAMPTZ
# and converted to UTC (a zone DuckDB does not know gives NULL: the row is set aside).
_OFFSET_RE = (
    r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*"
    r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?|[A-Za-z][A-Za-z0-9_/+-]*)$"
)


@dataclass(frozen=True)
class CastPlan:
    """SQL turning a raw column into the contract type.

    Attributes
    ----------
    expr : SQL expression of the contract type (NULL where the value does not convert).
    fallible : True when some non-null values may fail to convert (text, fractional
        floats for an integer column); validation then sets those rows aside.
    note : what the conversion does, for the report ("" when the type already matches).
    """

    expr: str
    fallible: bool = False
    note: str = ""


def base_type(found: str) -> str:
    """Family of a DuckDB type name: ``DECIMAL(18,2)`` -> ``DECIMAL``, enums -> ``ENUM``.

    Parameters
    ----------
    found : str
        A type name as DuckDB's DESCRIBE reports it.

    Returns
    -------
    str
        The upper-cased family, which `cast_plan` decides on.

    Examples
    --------
    >>> base_type("decimal(18,2)"), base_type("ENUM('a', 'b')"), base_type("BIGINT")
    ('DECIMAL', 'ENUM', 'BIGINT')
    """
    found = found.strip().upper()
    if found.startswith("DECIMAL"):
        return "DECIMAL"
    if found.startswith("ENUM("):
        return "ENUM"
    return found


def _text_timestamp(col: str) -> str:
    return (
        f"CASE WHEN regexp_matches({col}, '{_OFFSET_RE}') "
        f"THEN TRY_CAST({col} AS TIMESTAMPTZ) AT TIME ZONE 'UTC' "
        f"ELSE TRY_CAST({col} AS TIMESTAMP) END"
    )


def _nan_to_null(expr: str) -> str:
    return f"CASE WHEN isnan({expr}) THEN NULL ELSE {expr} END"


def _integral(expr: str) -> str:
    """A DOUBLE expression as BIGINT when it is a whole number in range, else NULL."""
    return (
        f"CASE WHEN {expr} = trunc({expr}) AND abs({expr}) < 9.2e18 THEN CAST({expr} AS BIGINT) END"
    )


def cast_plan(col: str, expected: str, found: str) -> CastPlan | None:
    """How to cast SQL column `col` of DuckDB type `found` to contract type `expected`.

    Parameters
    ----------
    col : str
        SQL reference to the raw column (already quoted).
    expected : str
        Contract type: VARCHAR, BIGINT, DOUBLE, BOOLEAN, DATE or TIMESTAMP.
    found : str
        DuckDB type name as DESCRIBE reports it.

    Returns
    -------
    CastPlan or None
        None when the types are incompatible (e.g. a DATE where DOUBLE is expected).

    Raises
    ------
    ValueError
        When `expected` is not one of the contract types (a contract bug, not bad input).

    Examples
    --------
    >>> cast_plan('"ts"', "TIMESTAMP", "TIMESTAMP_NS").expr
    'CAST("ts" AS TIMESTAMP)'
    >>> cast_plan('"mrr"', "DOUBLE", "DATE") is None
    True
    """
    kind = base_type(found)
    if kind == NULL_TYPE.upper() or kind == "NULL":
        return CastPlan(f"CAST(NULL AS {expected})", note="all values NULL")
    text = kind in {"VARCHAR", "ENUM"}
    txt = f"CAST({col} AS VARCHAR)" if kind == "ENUM" else col
    if expected == "VARCHAR":
        if text:
            return CastPlan(txt)
        if kind in INT_TYPES | WIDE_INT_TYPES or kind == "UUID":
            return CastPlan(f"CAST({col} AS VARCHAR)", note=f"cast from {found}")
        return None
    if expected == "BIGINT":
        if kind == "BIGINT":
            return CastPlan(col)
        if kind in INT_TYPES:
            return CastPlan(f"CAST({col} AS BIGINT)", note=f"cast from {found}")
        if kind in WIDE_INT_TYPES:
            return CastPlan(f"TRY_CAST({col} AS BIGINT)", True, f"cast from {found}")
        if kind in FLOAT_TYPES | {"DECIMAL"}:
            value = f"CAST({col} AS DOUBLE)"
            if kind in FLOAT_TYPES:
                value = _nan_to_null(value)
            return CastPlan(_integral(value), True, f"cast from {found}; fractions set aside")
        if text:
            return CastPlan(_integral(f"TRY_CAST(trim({txt}) AS DOUBLE)"), True)
        return None
    if expected == "DOUBLE":
        if kind in FLOAT_TYPES:
            note = "" if kind == "DOUBLE" else f"cast from {found}"
            return CastPlan(_nan_to_null(f"CAST({col} AS DOUBLE)"), note=note)
        if kind in INT_TYPES | WIDE_INT_TYPES | {"DECIMAL"}:
            return CastPlan(f"CAST({col} AS DOUBLE)", note=f"cast from {found}")
        if text:
            return CastPlan(_nan_to_null(f"TRY_CAST(trim({txt}) AS DOUBLE)"), True)
        return None
    if expected == "BOOLEAN":
        if kind == "BOOLEAN":
            return CastPlan(col)
        if kind in INT_TYPES:
            return CastPlan(
                f"CASE WHEN {col} IN (0, 1) THEN {col} = 1 END", True, f"cast from {found}"
            )
        if text:
            return CastPlan(f"TRY_CAST(trim({txt}) AS BOOLEAN)", True)
        return None
    if expected == "TIMESTAMP":
        if kind == "TIMESTAMP":
            return CastPlan(col)
        if kind in TIMESTAMP_TYPES or kind == "DATE":
            return CastPlan(f"CAST({col} AS TIMESTAMP)", note=f"cast from {found}")
        if kind == TIMESTAMPTZ:
            return CastPlan(f"({col} AT TIME ZONE 'UTC')", note="time zone converted to UTC")
        if text:
            return CastPlan(_text_timestamp(f"trim({txt})"), True)
        return None
    if expected == "DATE":
        if kind == "DATE":
            return CastPlan(col)
        if kind in TIMESTAMP_TYPES:
            return CastPlan(f"CAST({col} AS DATE)", note=f"cast from {found} (time of day dropped)")
        if kind == TIMESTAMPTZ:
            return CastPlan(
                f"CAST({col} AT TIME ZONE 'UTC' AS DATE)", note="converted to UTC, then to DATE"
            )
        if text:
            value = f"trim({txt})"
            return CastPlan(
                f"COALESCE(TRY_CAST({value} AS DATE), CAST({_text_timestamp(value)} AS DATE))", True
            )
        return None
    raise ValueError(f"unknown contract type {expected!r}")


def type_label(found: str) -> str:
    """Short printable type name (enums lose their value list) for messages and the report.

    Parameters
    ----------
    found : str
        A type name as DuckDB's DESCRIBE reports it.

    Returns
    -------
    str
        `found` stripped, ``ENUM(...)`` shortened to ``ENUM``; its case is kept.

    Examples
    --------
    >>> type_label("ENUM('a', 'b')"), type_label("DECIMAL(18,2)")
    ('ENUM', 'DECIMAL(18,2)')
    """
    return re.sub(r"^ENUM\(.*\)$", "ENUM", found.strip(), flags=re.S)
