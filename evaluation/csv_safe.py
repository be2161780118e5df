"""CSV that spreadsheets open as data, never as formulas.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab / carriage return) is run as a
formula by Excel, LibreOffice and Google Sheets; an account named ``=HYPERLINK(...)``
would then act on the reader's machine (CSV injection, OWASP). Such text cells get a
leading apostrophe, which spreadsheets hide and treat as "this is text". Numbers are
written as numbers (a negative amount stays -1200, not '-1200).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """`value` with a leading apostrophe when it is text a spreadsheet would run.

    Parameters
    ----------
    value : object
        A cell; only strings are ever changed.

    Returns
    -------
    object
        `value`, or ``"'" + value`` for text starting like a formula.

    Examples
    --------
    >>> escape_cell("=1+1"), escape_cell("Acme"), escape_cell(-3.5)
    ("'=1+1", 'Acme', -3.5)
    """
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def escape_frame(frame: pd.DataFrame, *, text_only: bool = False) -> pd.DataFrame:
    """A copy whose text cells (and column names) are escaped; numbers untouched.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table to export; not modified.
    text_only : bool, default False
        Escape only object and string columns; categorical (and other non-numeric)
        columns are written as they are. By default every column that is not numeric or
        boolean is escaped cell by cell.

    Returns
    -------
    pandas.DataFrame
        Numeric and boolean columns as they were; the cells of every other column (every
        text column with `text_only`) passed through `escape_cell` (pandas infers their
        dtype again).

    Examples
    --------
    >>> escape_frame(pd.DataFrame({"account": ["=cmd", "Acme"], "mrr": [-1200, 5]}))
      account   mrr
    0   '=cmd -1200
    1    Acme     5
    >>> frame = pd.DataFrame({"name": ["=cmd"], "kind": pd.Categorical(["@x"])})
    >>> escape_frame(frame).to_csv(index=False).splitlines()[1]
    "'=cmd,'@x"
    >>> escape_frame(frame, text_only=True).to_csv(index=False).splitlines()[1]
    "'=cmd,@x"
    """
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if text_only and not (s.dtype == object or pd.api.types.is_string_dtype(s.dtype)):
            continue
        if not (pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype)):
            out[col] = s.astype(object).map(escape_cell)
    out.columns = [escape_cell(str(c)) for c in out.columns]
    return out


def write_csv(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write `frame` as UTF-8 CSV (with BOM, so Excel reads accents), formulas escaped.

    Written to a temporary file first and renamed, so a reader never sees half a file.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; its index is not written.
    path : str or Path
        The CSV file (replaced if it exists); missing parent directories are created.

    Returns
    -------
    Path
        `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    escape_frame(frame).to_csv(tmp, index=False, encoding="utf-8-sig")
    tmp.replace(path)
    return path
