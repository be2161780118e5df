"""Is the data newer than what was last scored? Refuse (or warn) to re-score a stale export.

A weekly scoring run that finds the same data's end as the previous run of the same source
is re-scoring an export that was not refreshed: the scores would look new and be old.
Every scoring run records the data's end and a key of its source; the next run compares
against the latest finished one (the flows look it up in MLflow). ``scoring.freshness`` (or
the scoring flow's `freshness` parameter, which the scheduled deployment sets to ``refuse``)
decides what happens: ``refuse`` stops before anything is written, ``warn`` logs and goes
on, ``off`` skips the look-up.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date
from pathlib import Path

from features.errors import InputError, StateError

log = logging.getLogger("nrrcast.score")

FRESHNESS_MODES = ("refuse", "warn", "off")


class StaleDataError(StateError):
    """The data's end has not advanced since the last scoring run of the same source."""


def source_key(source: str | Path) -> str:
    """A short stable key of a source (its resolved path, or its URL without password).

    Parameters
    ----------
    source : str or Path
        A source directory or a database URL.

    Returns
    -------
    str
        16 hex digits.

    Examples
    --------
    >>> source_key("postgresql://u:secret@db/x") == source_key("postgresql://u:other@db/x")
    True
    """
    from features.sql_source import is_sql_url, redact

    text = str(source)
    ident = redact(text) if is_sql_url(text) else str(Path(text).expanduser().resolve())
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


def check_mode(mode: str) -> str:
    """`mode` when it is a freshness mode.

    Parameters
    ----------
    mode : str
        ``refuse``, ``warn`` or ``off``.

    Returns
    -------
    str
        `mode` unchanged.

    Raises
    ------
    InputError
        For an unknown mode (a ValueError).
    """
    if mode not in FRESHNESS_MODES:
        raise InputError(f"freshness must be one of {FRESHNESS_MODES}, got {mode!r}")
    return mode


def check_freshness(data_end: date, previous: tuple[date, str] | None, mode: str) -> str | None:
    """Apply `mode` to a data end and the previous run's.

    Parameters
    ----------
    data_end : date
        The end of the data about to be scored.
    previous : (date, str) or None
        The previous scoring run's data end and run id (None before the first run).
    mode : str
        ``refuse``, ``warn`` or ``off``.

    Returns
    -------
    str or None
        The warning logged with ``mode="warn"``, if any.

    Raises
    ------
    StaleDataError
        With ``mode="refuse"`` when `data_end` is not after the previous run's.
    InputError
        For an unknown mode (a ValueError).
    """
    check_mode(mode)
    if mode == "off" or previous is None or data_end > previous[0]:
        return None
    message = (
        f"the data ends on {data_end}, which is not after the end of the data scored by "
        f"run {previous[1]} ({previous[0]}): the export was not refreshed"
    )
    if mode == "refuse":
        raise StaleDataError(
            message,
            hint="refresh the source, or score anyway with --freshness warn "
            "(scoring.freshness, or the flow's freshness parameter)",
        )
    log.warning("%s; scoring anyway (scoring.freshness: warn)", message)
    return message
