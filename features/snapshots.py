"""Observation dates (the snapshot panel) and the day/segment calendar behind the windows.

Every feature window is a half-open interval of whole days before an ``as_of``:

=====  ==========================  ==========================================
key    days                        used for
=====  ==========================  ==========================================
w7     [as_of - 7,  as_of)         last week
w30    [as_of - 30, as_of)         last 30 days
w90    [as_of - 90, as_of)         last 90 days
p30    [as_of - 60, as_of - 30)    the 30 days before the last 30 (trends)
p60    [as_of - 90, as_of - 30)    the 60 days before the last 30 (login decay)
=====  ==========================  ==========================================

Activity is aggregated once to account-day and account-user-day rows, then to
*segments*: the stretches of days between consecutive cut points, where the cut points
are every window boundary of every ``as_of`` and every first day of a month. Each
segment lies wholly inside or wholly outside each window, so a window is a union of
segments: rows are aggregated to segments once (no per-``as_of`` copy of the daily
rows) and segments are joined to the windows they belong to. Calendar months are
unions of segments too (for the seat-utilization streak).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

import numpy as np
import pandas as pd

from features.errors import InputError

WINDOWS: dict[str, tuple[int, int]] = {
    "w7": (7, 0),
    "w30": (30, 0),
    "w90": (90, 0),
    "p30": (60, 30),
    "p60": (90, 30),
}
"""Window key -> (days back to the start, days back to the end), both relative to as_of."""

LOOKBACK_DAYS = max(start for start, _ in WINDOWS.values())


def to_date(value: object) -> date:
    """A `date` from a date, midnight datetime/Timestamp or ISO string; rejects times of day.

    Parameters
    ----------
    value : date, datetime, Timestamp, numpy datetime64 or ISO string.

    Returns
    -------
    date

    Examples
    --------
    >>> to_date("2025-03-01")
    datetime.date(2025, 3, 1)
    """
    if isinstance(value, str):
        value = pd.Timestamp(value)
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, datetime):  # includes pd.Timestamp
        if (value.hour, value.minute, value.second, value.microsecond) != (0, 0, 0, 0):
            raise ValueError(f"as_of must be a date (midnight), got {value!r}")
        return date(value.year, value.month, value.day)
    if isinstance(value, date):
        return value
    raise TypeError(f"cannot read a date from {value!r} ({type(value).__name__})")


def month_start(d: date) -> date:
    """First day of the month of `d`.

    Parameters
    ----------
    d : a date.

    Returns
    -------
    date
    """
    return d.replace(day=1)


def add_months(d: date, months: int) -> date:
    """`d` moved by whole months (day clamped to the month's length).

    Parameters
    ----------
    d : a date.
    months : months to add (negative moves back).

    Returns
    -------
    date

    Examples
    --------
    >>> add_months(date(2025, 1, 31), 1)
    datetime.date(2025, 2, 28)
    """
    index = d.year * 12 + d.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(d.day, last))


def observation_dates(
    start: date | str, end: date | str, freq: Literal["monthly", "weekly"] = "monthly"
) -> list[date]:
    """The as_of dates of a snapshot panel between `start` and `end` (both inclusive).

    Parameters
    ----------
    start, end : first and last possible observation date.
    freq : "monthly" gives the first day of every month; "weekly" gives every Monday
        (the scoring cadence), so the panel does not depend on the weekday of `start`.

    Returns
    -------
    list of date, ascending.

    Examples
    --------
    >>> observation_dates("2025-01-15", "2025-04-01")
    [datetime.date(2025, 2, 1), datetime.date(2025, 3, 1), datetime.date(2025, 4, 1)]
    >>> observation_dates("2025-01-01", "2025-01-14", "weekly")
    [datetime.date(2025, 1, 6), datetime.date(2025, 1, 13)]
    """
    first, last = to_date(start), to_date(end)
    if last < first:
        raise ValueError(f"observation_dates: end {last} is before start {first}")
    if freq == "monthly":
        d = month_start(first) if first.day == 1 else add_months(month_start(first), 1)
        out = []
        while d <= last:
            out.append(d)
            d = add_months(d, 1)
        return out
    if freq == "weekly":
        d = first + timedelta(days=(7 - first.weekday()) % 7)
        n = (last - d).days // 7 + 1 if d <= last else 0
        return [d + timedelta(days=7 * i) for i in range(n)]
    raise ValueError(f"freq must be 'monthly' or 'weekly', got {freq!r}")


def panel_dates(
    freq: Literal["monthly", "weekly"],
    *,
    data_start: date,
    data_end: date,
    start: date | str | None = None,
    end: date | str | None = None,
) -> list[date]:
    """The snapshot panel of a book: `observation_dates` over a configurable range.

    Parameters
    ----------
    freq : "monthly" or "weekly" (`FeatureConfig.snapshot_freq`).
    data_start, data_end : first day of data and first day not covered (exclusive).
    start, end : `FeatureConfig.snapshot_start` / `snapshot_end`; None starts once the
        longest window (90 days) is covered by data and ends at `data_end` (an as_of
        equal to data_end sees every row, but its labels are not known yet).

    Returns
    -------
    list of date, ascending.

    Examples
    --------
    >>> panel_dates("monthly", data_start=date(2025, 5, 1), data_end=date(2025, 11, 1))
    [datetime.date(2025, 8, 1), datetime.date(2025, 9, 1), datetime.date(2025, 10, 1), datetime.date(2025, 11, 1)]
    """
    first = to_date(start) if start is not None else data_start + timedelta(days=LOOKBACK_DAYS)
    last = to_date(end) if end is not None else data_end
    if last > data_end:
        raise InputError(
            f"snapshot end {last} is after data_end {data_end} (the data's end)",
            hint="set features.snapshot_end on or before the data's end",
        )
    if last < first:
        raise InputError(
            f"no snapshot date between {first} and {last}: the panel starts "
            f"{LOOKBACK_DAYS} days after the first event ({data_start}) and ends at the data's "
            f"end {data_end}",
            hint="use a longer history, or set features.snapshot_start / snapshot_end",
        )
    return observation_dates(first, last, freq)


def normalize_as_of(as_of_dates: object) -> list[date]:
    """Sorted list of as_of dates; rejects an empty list and duplicates.

    Parameters
    ----------
    as_of_dates : one date (or ISO string) or an iterable of them.

    Returns
    -------
    list of date, ascending.
    """
    if isinstance(as_of_dates, date | str | datetime):
        as_of_dates = [as_of_dates]
    dates = [to_date(v) for v in list(as_of_dates)]  # type: ignore[call-overload]
    if not dates:
        raise ValueError("as_of_dates is empty: pass at least one observation date")
    if len(set(dates)) != len(dates):
        dup = sorted({d for d in dates if dates.count(d) > 1})
        raise ValueError(f"duplicate as_of dates: {[d.isoformat() for d in dup]}")
    return sorted(dates)


@dataclass(frozen=True)
class WindowPlan:
    """Calendar metadata of one build (a few thousand rows at most).

    Attributes
    ----------
    as_of : observation dates, ascending.
    start : first day whose activity any feature reads (inclusive).
    end : last as_of; activity is read up to this day (exclusive).
    month_grid_start : first calendar month of the seat-utilization streak grid.
    calendar : DataFrame (d, seg, month): every day in [start, end), its segment start
        and its calendar month.
    segwin : DataFrame (seg, as_of, w7, w30, w90, p30, p60) with 0/1 flags: which
        windows of which as_of each segment belongs to (only rows with a flag set).
    """

    as_of: list[date]
    start: date
    end: date
    month_grid_start: date
    calendar: pd.DataFrame
    segwin: pd.DataFrame


def window_plan(as_of_dates: list[date], util_lookback_months: int) -> WindowPlan:
    """Cut the days before the observation dates into segments (see module docstring).

    Parameters
    ----------
    as_of_dates : observation dates.
    util_lookback_months : complete months the seat-utilization streak looks back.

    Returns
    -------
    WindowPlan
    """
    dates = normalize_as_of(as_of_dates)
    grid_start = add_months(month_start(dates[0]), -util_lookback_months)
    start = min(dates[0] - timedelta(days=LOOKBACK_DAYS), grid_start)
    end = dates[-1]
    days = pd.date_range(start, end - timedelta(days=1), freq="D") if end > start else []
    day_arr = np.asarray(days, dtype="datetime64[D]")

    cuts = {start}
    for a in dates:
        for back_start, back_end in WINDOWS.values():
            cuts.add(a - timedelta(days=back_start))
            cuts.add(a - timedelta(days=back_end))
    cuts |= {d.date() for d in pd.date_range(start, end, freq="MS")}
    cut_arr = np.array(sorted(c for c in cuts if start <= c <= end), dtype="datetime64[D]")

    seg_of_day = cut_arr[np.searchsorted(cut_arr, day_arr, side="right") - 1]
    calendar = pd.DataFrame(
        {
            "d": day_arr,
            "seg": seg_of_day,
            "month": day_arr.astype("datetime64[M]").astype("datetime64[D]"),
        }
    )

    seg_start = cut_arr[:-1]
    seg_end = cut_arr[1:]  # exclusive
    a_arr = np.array(dates, dtype="datetime64[D]")
    s = seg_start[:, None]
    e = seg_end[:, None]
    flags = {}
    for key, (back_start, back_end) in WINDOWS.items():
        lo = a_arr[None, :] - np.timedelta64(back_start, "D")
        hi = a_arr[None, :] - np.timedelta64(back_end, "D")
        flags[key] = ((s >= lo) & (e <= hi)).astype(np.int64)
    any_flag = np.zeros_like(flags["w90"], dtype=bool)
    for f in flags.values():
        any_flag |= f.astype(bool)
    si, ai = np.nonzero(any_flag)
    segwin = pd.DataFrame(
        {"seg": seg_start[si], "as_of": a_arr[ai], **{k: v[si, ai] for k, v in flags.items()}}
    )
    return WindowPlan(
        as_of=dates,
        start=start,
        end=end,
        month_grid_start=grid_start,
        calendar=calendar,
        segwin=segwin,
    )
