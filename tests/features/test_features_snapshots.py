"""Observation dates and the segment calendar behind the windows."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from features.snapshots import WINDOWS, add_months, normalize_as_of, observation_dates, window_plan


def test_monthly_dates_are_month_starts_inclusive():
    assert observation_dates("2025-01-01", "2025-03-01") == [
        date(2025, 1, 1),
        date(2025, 2, 1),
        date(2025, 3, 1),
    ]
    assert observation_dates(date(2025, 1, 2), date(2025, 2, 28)) == [date(2025, 2, 1)]
    assert len(observation_dates("2025-06-01", "2026-11-01")) == 18


def test_weekly_dates_are_mondays():
    out = observation_dates("2025-01-01", "2025-02-03", "weekly")
    assert out[0] == date(2025, 1, 6) and out[-1] == date(2025, 2, 3)
    assert all(d.weekday() == 0 for d in out) and len(out) == 5


def test_bad_arguments():
    with pytest.raises(ValueError, match="before start"):
        observation_dates("2025-02-01", "2025-01-01")
    with pytest.raises(ValueError, match="freq"):
        observation_dates("2025-01-01", "2025-02-01", "daily")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="midnight"):
        normalize_as_of([datetime(2025, 1, 1, 12)])
    with pytest.raises(ValueError, match="empty"):
        normalize_as_of([])


def test_add_months_clamps_the_day():
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2025, 11, 15), 3) == date(2026, 2, 15)
    assert add_months(date(2025, 3, 15), -3) == date(2024, 12, 15)


@pytest.mark.parametrize("freq", ["monthly", "weekly"])
def test_segments_tile_every_window_exactly(freq):
    dates = observation_dates("2025-03-01", "2025-09-30", freq)
    plan = window_plan(dates, util_lookback_months=12)
    cal = plan.calendar
    d = pd.to_datetime(cal["d"])
    seg = pd.to_datetime(cal["seg"])
    assert d.is_monotonic_increasing and d.is_unique
    assert d.iloc[0] == pd.Timestamp(plan.start) and d.iloc[-1] == pd.Timestamp(
        plan.end
    ) - pd.Timedelta(days=1)
    assert ((d - seg).dt.days.between(0, 30)).all()  # a day is one bit of a 31-bit mask
    assert (seg.dt.to_period("M") == d.dt.to_period("M")).all()  # segments stay in a month
    seg_days = d.groupby(seg).apply(lambda x: set(x.dt.date))
    sw = plan.segwin
    for a in dates:
        for key, (back_start, back_end) in WINDOWS.items():
            want = {a - timedelta(days=k) for k in range(back_end + 1, back_start + 1)}
            got = set()
            for s in pd.to_datetime(
                sw.loc[(sw["as_of"] == np.datetime64(a)) & (sw[key] == 1), "seg"]
            ):
                got |= seg_days[s]
            assert got == want, (a, key)


def test_grid_starts_a_lookback_before_the_first_month():
    plan = window_plan([date(2025, 6, 15), date(2025, 7, 1)], util_lookback_months=12)
    assert plan.month_grid_start == date(2024, 6, 1)
    assert plan.start == date(2024, 6, 1) and plan.end == date(2025, 7, 1)


def test_panel_dates_default_and_configured_range():
    from features.snapshots import panel_dates

    d = panel_dates("monthly", data_start=date(2025, 5, 1), data_end=date(2026, 11, 1))
    assert d[0] == date(2025, 8, 1) and d[-1] == date(2026, 11, 1)
    d = panel_dates(
        "weekly",
        data_start=date(2025, 5, 1),
        data_end=date(2026, 11, 1),
        start="2026-01-01",
        end="2026-01-31",
    )
    assert d == [date(2026, 1, 5), date(2026, 1, 12), date(2026, 1, 19), date(2026, 1, 26)]
    with pytest.raises(ValueError, match="after data_end"):
        panel_dates(
            "monthly", data_start=date(2025, 5, 1), data_end=date(2025, 11, 1), end="2025-12-01"
        )
