"""Out-of-time split of the snapshot panel into train, validation, calibration and test.

Slices follow each other in time: the model is fitted on the earliest snapshot dates,
early-stopped on a later validation slice, calibrated on a later slice still, and judged
on the latest matured dates (out of time). Only rows whose label is known take part.

Purge: a row's label looks at ARR on ``as_of + horizon``. A row whose label date falls
after the start of the next slice has "seen" that slice's period, so it is left out
(``as_of + horizon <= next_start`` is kept). With monthly snapshots and a 60-day horizon
this drops the one or two dates just before each boundary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

SLICES = ("train", "valid", "calib", "test")


@dataclass(frozen=True)
class TimeSplit:
    """Snapshot dates of each slice and the boundaries between them.

    Attributes
    ----------
    horizon_days : label horizon used for the purge.
    train, valid, calib, test : sorted snapshot dates (``pd.Timestamp``) of each slice.
    purged : matured dates left out because their label window crosses a boundary.
    unmatured : dates whose labels are not known yet (scored, never trained on).
    rows : row counts per slice, plus ``purged`` (label-known rows of purged dates) and
        ``unmatured`` (rows whose label is not known).
    """

    horizon_days: int
    train: tuple[pd.Timestamp, ...]
    valid: tuple[pd.Timestamp, ...]
    calib: tuple[pd.Timestamp, ...]
    test: tuple[pd.Timestamp, ...]
    purged: tuple[pd.Timestamp, ...] = ()
    unmatured: tuple[pd.Timestamp, ...] = ()
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def valid_start(self) -> pd.Timestamp:
        return self.valid[0]

    @property
    def calib_start(self) -> pd.Timestamp:
        return self.calib[0]

    @property
    def test_start(self) -> pd.Timestamp:
        return self.test[0]

    def dates(self, name: str) -> tuple[pd.Timestamp, ...]:
        """Dates of slice `name`.

        Parameters
        ----------
        name : {"train", "valid", "calib", "test"}
            The slice.

        Returns
        -------
        tuple of pandas.Timestamp
            Its snapshot dates, sorted.

        Raises
        ------
        ValueError
            For another name.
        """
        if name not in SLICES:
            raise ValueError(f"unknown slice {name!r}; expected one of {SLICES}")
        return getattr(self, name)

    def mask(self, frame: pd.DataFrame, name: str) -> np.ndarray:
        """Boolean row mask of slice `name` over `frame` (label-known rows only).

        Parameters
        ----------
        frame : pandas.DataFrame
            A feature table with ``as_of`` and ``label_known`` columns (not necessarily
            the one the split was made on: the dates decide).
        name : {"train", "valid", "calib", "test"}
            The slice.

        Returns
        -------
        numpy.ndarray of bool, shape (n_rows,)
            True for rows dated in the slice whose label is known.

        Raises
        ------
        KeyError
            When `frame` has no ``label_known`` column.
        """
        as_of = pd.to_datetime(frame["as_of"]).to_numpy(dtype="datetime64[us]")
        days = np.asarray(self.dates(name), dtype="datetime64[us]")
        return np.isin(as_of, days) & _label_known(frame)

    def masks(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Masks of all four slices; they are disjoint.

        Parameters
        ----------
        frame : pandas.DataFrame
            A feature table with ``as_of`` and ``label_known`` columns.

        Returns
        -------
        dict of str to numpy.ndarray
            Slice name (train, valid, calib, test) -> its `mask`.
        """
        return {name: self.mask(frame, name) for name in SLICES}

    def matured_before(self, frame: pd.DataFrame, boundary: pd.Timestamp) -> np.ndarray:
        """Label-known rows whose label date ``as_of + horizon`` is on or before `boundary`.

        With ``boundary = calib_start`` these are the rows a model may be refitted on
        after early stopping (train, validation and the dates purged between them).

        Parameters
        ----------
        frame : pandas.DataFrame
            A feature table with ``as_of`` and ``label_known`` columns.
        boundary : pandas.Timestamp
            The latest label date allowed (inclusive).

        Returns
        -------
        numpy.ndarray of bool, shape (n_rows,)
            True for label-known rows whose label date is on or before `boundary`.
        """
        as_of = pd.to_datetime(frame["as_of"]).to_numpy(dtype="datetime64[us]")
        label_date = as_of + np.timedelta64(self.horizon_days, "D")
        return (label_date <= np.datetime64(boundary, "us")) & _label_known(frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (ISO dates, row counts) for logging with the run.

        Returns
        -------
        dict
            ``horizon_days``, ``<slice>_dates`` lists (also purged and unmatured), the three
            slice starts and ``rows``.
        """

        def iso(ds: Sequence[pd.Timestamp]) -> list[str]:
            return [d.date().isoformat() for d in ds]

        out: dict[str, Any] = {"horizon_days": self.horizon_days}
        for name in (*SLICES, "purged", "unmatured"):
            out[f"{name}_dates"] = iso(getattr(self, name))
        out["valid_start"] = self.valid_start.date().isoformat()
        out["calib_start"] = self.calib_start.date().isoformat()
        out["test_start"] = self.test_start.date().isoformat()
        out["rows"] = dict(self.rows)
        return out


def _label_known(frame: pd.DataFrame) -> np.ndarray:
    if "label_known" not in frame.columns:
        raise KeyError("feature table has no column 'label_known' (needed to split by time)")
    return frame["label_known"].fillna(False).to_numpy(dtype=bool)


def _ts(d: date | pd.Timestamp | None) -> pd.Timestamp | None:
    return None if d is None else pd.Timestamp(d).normalize()


def time_split(
    frame: pd.DataFrame,
    *,
    horizon_days: int,
    valid_dates: int = 2,
    calib_dates: int = 2,
    test_dates: int = 2,
    min_train_dates: int = 2,
    purge: bool = True,
    valid_start: date | None = None,
    calib_start: date | None = None,
    test_start: date | None = None,
) -> TimeSplit:
    """Split the snapshot dates of a feature table by time.

    Parameters
    ----------
    frame : pandas.DataFrame
        With ``as_of`` and ``label_known`` columns (one row per account and snapshot
        date).
    horizon_days : int
        Label horizon H; used to purge rows whose label date ``as_of + H`` lies after the
        start of the next slice.
    valid_dates, calib_dates, test_dates : int
        Number of snapshot dates per slice, counted backwards from the latest matured date
        (test first, then calibration, then validation), skipping purged dates.
    min_train_dates : int
        Fewer training dates than this is an error.
    purge : bool
        Set False only to study the effect of leakage.
    valid_start, calib_start, test_start : date, optional
        Explicit boundaries (all three or none); they override the counts.

    Returns
    -------
    TimeSplit
        The dates of each slice, the purged and unmatured dates, and row counts.

    Raises
    ------
    ValueError
        For a negative horizon, an incomplete or unordered set of boundaries, no
        label-known row, or too few matured dates for the four slices (the message gives
        the dates found and the counts per slice).
    KeyError
        When `frame` has no ``label_known`` column.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"as_of": pd.date_range("2025-01-01", periods=12, freq="MS"),
    ...                   "label_known": [True] * 10 + [False] * 2})
    >>> s = time_split(f, horizon_days=60, valid_dates=1, calib_dates=1, test_dates=1)
    >>> [d.strftime("%Y-%m") for d in (s.valid_start, s.calib_start, s.test_start)]
    ['2025-06', '2025-08', '2025-10']
    """
    if horizon_days < 0:
        raise ValueError(f"horizon_days must be >= 0, got {horizon_days}")
    as_of = pd.to_datetime(frame["as_of"]).dt.normalize()
    known_mask = _label_known(frame)
    known = list(pd.DatetimeIndex(as_of[known_mask]).unique().sort_values())
    unmatured = [
        d for d in pd.DatetimeIndex(as_of[~known_mask]).unique().sort_values() if d not in known
    ]
    if not known:
        raise ValueError(f"no rows with label_known among {len(frame)} rows: nothing to train on")
    starts = [_ts(valid_start), _ts(calib_start), _ts(test_start)]
    train, valid, calib, test = _slice_dates(
        known,
        pd.Timedelta(days=horizon_days),
        purge,
        starts,
        (valid_dates, calib_dates, test_dates),
    )
    counts = {"train": len(train), "valid": len(valid), "calib": len(calib), "test": len(test)}
    if (
        min(counts["valid"], counts["calib"], counts["test"]) == 0
        or counts["train"] < min_train_dates
    ):
        raise ValueError(
            f"not enough matured snapshot dates for an out-of-time split: {len(known)} matured "
            f"dates ({known[0].date()}..{known[-1].date()}), horizon {horizon_days} d, got "
            f"{counts} dates per slice (need >= {min_train_dates} train dates and >= 1 each "
            "for valid/calib/test); add history or lower split.*_dates"
        )
    used = set(train) | set(valid) | set(calib) | set(test)
    split = TimeSplit(
        horizon_days=horizon_days,
        train=tuple(train),
        valid=tuple(valid),
        calib=tuple(calib),
        test=tuple(test),
        purged=tuple(d for d in known if d not in used),
        unmatured=tuple(unmatured),
    )
    return TimeSplit(**{**split.__dict__, "rows": _slice_rows(split, frame, as_of, known_mask)})


def _slice_dates(
    known: list[pd.Timestamp],
    horizon: pd.Timedelta,
    purge: bool,
    starts: list[pd.Timestamp | None],
    counts: tuple[int, int, int],
) -> tuple[list, list, list, list]:
    """Train, valid, calib and test dates among the matured ones.

    From explicit slice `starts` (all three or none), else the last ``counts`` (valid,
    calib, test) dates counted backwards; with `purge`, a date whose label window
    crosses the next slice's start is left out.
    """

    def fits(d: pd.Timestamp, boundary: pd.Timestamp) -> bool:
        return d < boundary and (not purge or d + horizon <= boundary)

    if any(s is not None for s in starts):
        if any(s is None for s in starts):
            raise ValueError("give all of valid_start, calib_start, test_start or none")
        v0, c0, t0 = starts
        assert v0 is not None and c0 is not None and t0 is not None
        if not v0 < c0 < t0:
            raise ValueError(f"need valid_start < calib_start < test_start, got {v0}, {c0}, {t0}")
        test = [d for d in known if d >= t0]
        calib = [d for d in known if d >= c0 and fits(d, t0)]
        valid = [d for d in known if d >= v0 and fits(d, c0)]
        train = [d for d in known if fits(d, v0)]
        return train, valid, calib, test
    valid_dates, calib_dates, test_dates = counts
    test = known[-test_dates:]
    calib = [d for d in known if fits(d, test[0])][-calib_dates:] if test else []
    valid = [d for d in known if fits(d, calib[0])][-valid_dates:] if calib else []
    train = [d for d in known if fits(d, valid[0])] if valid else []
    return train, valid, calib, test


def _slice_rows(
    split: TimeSplit, frame: pd.DataFrame, as_of: pd.Series, known_mask: np.ndarray
) -> dict[str, int]:
    """Rows per slice, plus the matured rows purged and the rows not matured yet."""
    rows = {name: int(m.sum()) for name, m in split.masks(frame).items()}
    purged_days = np.asarray(split.purged, dtype="datetime64[us]")
    rows["purged"] = int(
        (np.isin(as_of.to_numpy(dtype="datetime64[us]"), purged_days) & known_mask).sum()
    )
    rows["unmatured"] = int((~known_mask).sum())
    return rows


def split_from_config(frame: pd.DataFrame, cfg: Any, *, horizon_days: int) -> TimeSplit:
    """`time_split` with the counts and boundaries of a `models.config.SplitConfig`.

    Parameters
    ----------
    frame : pandas.DataFrame
        The feature table (see `time_split`).
    cfg : models.config.SplitConfig
        Its ``*_dates``, ``min_train_dates``, ``purge`` and ``*_start`` fields are used.
    horizon_days : int
        The label horizon in days, used for the purge.

    Returns
    -------
    TimeSplit
        As `time_split` returns it; raises as it does.
    """
    return time_split(
        frame,
        horizon_days=horizon_days,
        valid_dates=cfg.valid_dates,
        calib_dates=cfg.calib_dates,
        test_dates=cfg.test_dates,
        min_train_dates=cfg.min_train_dates,
        purge=cfg.purge,
        valid_start=cfg.valid_start,
        calib_start=cfg.calib_start,
        test_start=cfg.test_start,
    )
