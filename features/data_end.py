"""The data's end: the first day the data does not cover (exclusive), by one rule everywhere.

Every command (validate, features, train, calibrate, score) decides it the same way:

1. ``manifest.json`` beside the tables (in a source directory, or beside a DuckDB file),
   key ``data_end``, when present;
2. else the ``--data-end`` option;
3. else inferred from the data: the day after the latest timestamp before today, with a
   printed notice saying so and how to set it.

Rows dated on or after it are quarantined ("in the future") by validation, so every
command sees the same clean rows. A manifest that cannot be read, a ``data_end`` that is
not a date, or a manifest and an option that disagree are errors naming the file and key:
nrrcast refuses rather than guesses.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd

from features.errors import InputError

if TYPE_CHECKING:
    import duckdb


log = logging.getLogger("nrrcast.data_end")

MANIFEST = "manifest.json"
OPTION = "--data-end"
Origin = Literal["manifest", "option", "data"]


@dataclass(frozen=True)
class DataEnd:
    """The data's end and where it came from.

    Attributes
    ----------
    day : first day not covered by the data (exclusive).
    origin : "manifest", "option" or "data" (inferred).
    where : the manifest file, the option name, or what it was inferred from.
    """

    day: date
    origin: Origin
    where: str

    def describe(self) -> str:
        """One line for logs and run tags, e.g. ``2026-07-01 (manifest data/raw/manifest.json)``.

        Returns
        -------
        str
            The day, then the origin and where it came from in parentheses.

        Examples
        --------
        >>> DataEnd(date(2026, 7, 1), "option", "--data-end").describe()
        '2026-07-01 (option --data-end)'
        """
        return f"{self.day} ({self.origin} {self.where})"


def manifest_path(source: str | Path) -> Path:
    """Where the manifest of a source lives: inside a directory, beside a database file.

    Parameters
    ----------
    source : str or Path
        The source directory or database file.

    Returns
    -------
    Path
        The ``manifest.json`` path (it may not exist).
    """
    path = Path(source)
    return path / MANIFEST if path.is_dir() else path.parent / MANIFEST


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest as a dict; empty when the file does not exist.

    Parameters
    ----------
    path : str or Path
        The manifest file (see `manifest_path`).

    Returns
    -------
    dict
        The manifest's JSON object.

    Raises
    ------
    InputError
        When the file exists but cannot be read, is not UTF-8 JSON, or is not an object.
    """
    path = Path(path)
    if not path.exists():
        return {}
    what_to_do = f"fix or remove {path}, or pass {OPTION} YYYY-MM-DD without a manifest"
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: the manifest is not UTF-8 text", hint=what_to_do) from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: the manifest is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg})",
            hint=what_to_do,
        ) from None
    if not isinstance(manifest, dict):
        raise InputError(
            f"{path}: expected a JSON object in the manifest, got {type(manifest).__name__}",
            hint=what_to_do,
        )
    return manifest


def parse_day(value: Any, where: str) -> date:
    """A ``YYYY-MM-DD`` date (a date-time at midnight is accepted), else an error naming `where`.

    Parameters
    ----------
    value : date, datetime or str
        The declared data's end (a datetime must be midnight).
    where : str
        Where the value came from (file and key, or option), for the message.

    Returns
    -------
    date
        The day.

    Raises
    ------
    InputError
        When `value` is not a date, or a date-time other than midnight.

    Examples
    --------
    >>> parse_day("2026-07-01T00:00:00", "--data-end")
    datetime.date(2026, 7, 1)
    """
    if isinstance(value, datetime):
        value = value.isoformat()
    if isinstance(value, date):
        return value
    text = value.strip() if isinstance(value, str) else None
    try:
        if text is None:
            raise ValueError
        if len(text) == 10:
            return date.fromisoformat(text)
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"{where}: {value!r} is not a date (expected YYYY-MM-DD, the first day the data "
            "does not cover)"
        ) from None
    if stamp.time() != datetime.min.time():
        raise InputError(
            f"{where}: {value!r} is not midnight; the data's end is a day (YYYY-MM-DD, exclusive)"
        )
    return stamp.date()


def manifest_data_end(manifest: dict[str, Any], where: str | Path) -> date | None:
    """The manifest's ``data_end`` key as a date; None when the key is absent or null.

    Parameters
    ----------
    manifest : dict
        From `read_manifest`.
    where : str or Path
        The manifest file, for messages.

    Returns
    -------
    date or None
        The declared end.

    Raises
    ------
    InputError
        When the key holds something other than a date (see `parse_day`).
    """
    value = manifest.get("data_end")
    if value is None:
        return None
    return parse_day(value, f"{where}: key 'data_end'")


def declared_data_end(
    manifest_end: date | None, manifest_file: str | Path, option: date | str | None
) -> DataEnd | None:
    """Rules 1 and 2: the manifest's ``data_end``, else the option; None means "infer".

    A manifest and an option that disagree are refused: one of them is wrong.

    Parameters
    ----------
    manifest_end : date or None
        The manifest's ``data_end`` (`manifest_data_end`).
    manifest_file : str or Path
        The manifest file, for messages.
    option : date, str or None
        The ``--data-end`` value, if the user gave one.

    Returns
    -------
    DataEnd or None
        The declared end and its origin; None when neither declares one.

    Raises
    ------
    InputError
        When the option is not a date, or disagrees with the manifest.
    """
    opt = parse_day(option, OPTION) if option is not None else None
    if manifest_end is not None:
        if opt is not None and opt != manifest_end:
            raise InputError(
                f"{OPTION} {opt} disagrees with data_end {manifest_end} in {manifest_file}",
                hint=f"drop {OPTION} or correct the manifest",
            )
        return DataEnd(manifest_end, "manifest", str(manifest_file))
    if opt is not None:
        return DataEnd(opt, "option", OPTION)
    return None


def inferred_data_end(latest: date | None, today: date, where: str) -> DataEnd:
    """Rule 3: the day after the latest timestamp (before `today`), with a notice.

    Parameters
    ----------
    latest : date or None
        The day of the latest timestamp kept, None when there is none.
    today : date
        The caller's clock, named in the message.
    where : str
        The source, for the notice and the message.

    Returns
    -------
    DataEnd
        ``latest + 1 day``, origin "data"; a warning is logged saying how to declare it.

    Raises
    ------
    InputError
        When the data holds no timestamp before `today` at all.
    """
    if latest is None:
        raise InputError(
            f"{where}: no manifest.json, no {OPTION}, and no timestamp before {today} to infer "
            "the data's end from",
            hint=f"pass {OPTION} YYYY-MM-DD (the extraction date)",
        )
    end = DataEnd(latest + timedelta(days=1), "data", f"latest timestamp in {where}")
    log.warning(
        "data_end not declared (no %s beside the tables, no %s): using %s, the day after the "
        "latest timestamp; pass %s YYYY-MM-DD to set the extraction date",
        MANIFEST,
        OPTION,
        end.day,
        OPTION,
    )
    return end


def latest_data_end(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day after the latest timestamp in the clean relations (None when there is none).

    For library callers that build features without a declared end (e.g. a notebook);
    commands always decide it with `features.validate.validate_until`.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Holding the clean relations (events, tickets, users, accounts).

    Returns
    -------
    date or None
        The day after the latest of their timestamps.
    """
    row = con.execute(
        "SELECT GREATEST("
        "(SELECT MAX(ts) FROM events), (SELECT MAX(created_at) FROM tickets), "
        "(SELECT MAX(closed_at) FROM tickets), (SELECT MAX(created_at) FROM users), "
        "(SELECT MAX(created_at) FROM accounts))"
    ).fetchall()[0][0]
    if row is None:
        return None
    return pd.Timestamp(row).date() + timedelta(days=1)


__all__ = [
    "MANIFEST",
    "OPTION",
    "DataEnd",
    "declared_data_end",
    "inferred_data_end",
    "latest_data_end",
    "manifest_data_end",
    "manifest_path",
    "parse_day",
    "read_manifest",
]
