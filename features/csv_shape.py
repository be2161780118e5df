"""Say what is wrong with a CSV file whose header DuckDB could not match to the contract.

DuckDB sniffs a CSV file's dialect (delimiter, quotes) from a sample. When a line breaks
the dialect (an unbalanced quote, a different number of fields) or the file uses another
delimiter in a way the sniffer cannot settle, the columns come out wrong and validation
would only say "required column missing" for columns plainly in the header. This module
reads the header itself and, if it names the contract's columns, finds the first line
that does not parse the same way. It runs only on that error path.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from features.sources import open_bytes

DELIMITERS = (",", ";", "\t", "|")
_MAX_LINES = 5_000_000  # a diagnosis, not a validation: stop somewhere


def _shown(delim: str) -> str:
    return "tab" if delim == "\t" else repr(delim)


def _header_delimiter(header: str, wanted: set[str]) -> tuple[str, int]:
    """The delimiter splitting `header` into the most contract column names, and how many."""
    best, hits = ",", -1
    for delim in DELIMITERS:
        names = {n.strip().strip('"').strip().lower() for n in header.split(delim)}
        if len(wanted & names) > hits:
            best, hits = delim, len(wanted & names)
    return best, hits


def first_bad_line(path: Path, delim: str) -> tuple[int, str] | None:
    """(line number, what is wrong) of the first line that does not parse like the header.

    Lines are numbered as an editor shows them (the header is line 1). Only the first five
    million lines are read: this diagnoses an error, it does not validate the file.

    Parameters
    ----------
    path : Path
        A CSV file, possibly ``.gz``; bytes that are not UTF-8 are replaced, not fatal.
    delim : str
        The delimiter the header uses.

    Returns
    -------
    tuple of (int, str) or None
        The line number and a short reason (field count, broken quoting); None when every
        line read parses like the header.
    """
    with open_bytes(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        reader = csv.reader(text, delimiter=delim, quotechar='"', strict=True)
        try:
            width = len(next(reader))
            for row in reader:
                if reader.line_num > _MAX_LINES:
                    return None
                if row and len(row) != width:
                    return reader.line_num, f"{len(row)} fields where the header has {width}"
        except StopIteration:
            return None
        except csv.Error as exc:
            return reader.line_num, f"broken quoting ({exc})"
    return None


def header_hint(files: list[Path], wanted: set[str], found: list[str]) -> str | None:
    """A one-line diagnosis when the header names contract columns DuckDB did not find.

    Parameters
    ----------
    files : list of Path
        The table's CSV files (the first one is read; none gives None).
    wanted : set of str
        The contract's column names, lower case.
    found : list of str
        The column names DuckDB read.

    Returns
    -------
    str or None
        The first line that breaks the header's dialect, or a delimiter the rows were
        not read with; None when the header does not name more contract columns than
        were found.
    """
    if not files:
        return None
    with open_bytes(files[0]) as fh:
        header = fh.readline().decode("utf-8", errors="replace").strip().lstrip("\ufeff")
    delim, hits = _header_delimiter(header, wanted)
    if hits <= len(wanted & {f.strip('"').lower() for f in found}) and all(
        not f.startswith('"') for f in found
    ):
        return None
    bad = first_bad_line(files[0], delim)
    name = files[0].name
    if bad is not None:
        line, why = bad
        return (
            f"{name} line {line}: {why}, so the file does not parse as {_shown(delim)}-"
            "delimited CSV (its header does); fix that line or re-export the file"
        )
    return (
        f"{name}: the header splits into {hits} contract columns on {_shown(delim)}, but the "
        f"rows were read as {len(found)} column(s) {found[:4]}; re-export the file with ',' "
        "as delimiter and quotes around values that hold one"
    )
