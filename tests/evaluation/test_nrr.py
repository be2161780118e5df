"""NRR/GRR decomposition exact on a hand-made subscription table; alerts; forecast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.nrr import (
    NRRForecaster,
    arr_on,
    forecast_error,
    nrr_alerts,
    nrr_table,
    period_starts,
    signup_cohort,
)


def _subs() -> pd.DataFrame:
    rows = [
        # account, start, end, mrr
        ("a", "2024-06-01", None, 100.0),  # 1200 -> 1800: expansion 600 (add-on Feb 1)
        ("a", "2025-02-01", None, 50.0),
        ("b", "2024-01-01", "2025-03-01", 200.0),  # churns in March: 2400
        ("c", "2024-01-01", "2025-02-01", 300.0),  # downgrade Feb 1: 3600 -> 1200
        ("c", "2025-02-01", None, 100.0),
        ("d", "2024-05-01", None, 50.0),  # flat 600
        ("e", "2025-02-15", None, 80.0),  # new logo: 960 of new ARR
        ("f", "2025-01-01", None, 10.0),  # starts on the period start: in the cohort, 120
        ("g", "2024-01-01", "2025-01-01", 999.0),  # ended on the start: not in the cohort
        ("h", "2024-01-01", "2025-04-01", 25.0),  # ends on the period end: churn 300
    ]
    frame = pd.DataFrame(rows, columns=["account_id", "start_date", "end_date", "mrr"])
    frame["start_date"] = pd.to_datetime(frame["start_date"]).dt.date
    frame["end_date"] = pd.to_datetime(frame["end_date"]).dt.date
    return frame


def test_quarter_decomposition_by_hand():
    t = nrr_table(_subs(), start="2025-01-01", end="2025-04-01", freq="Q")
    assert len(t) == 1
    r = t.iloc[0]
    assert r["period"] == "2025Q1" and r["n_accounts"] == 6
    assert r["start_arr"] == 1200 + 2400 + 3600 + 600 + 120 + 300
    assert r["expansion_arr"] == 600
    assert r["contraction_arr"] == 2400
    assert r["churned_arr"] == 2400 + 300
    assert r["end_arr"] == 1800 + 1200 + 600 + 120
    assert r["new_arr"] == 960
    assert r["nrr"] == pytest.approx(3720 / 8220)
    assert r["grr"] == pytest.approx(3120 / 8220)
    assert r["nrr"] == pytest.approx(
        1 + (r["expansion_arr"] - r["contraction_arr"] - r["churned_arr"]) / r["start_arr"]
    )


def test_monthly_decomposition_by_hand():
    t = nrr_table(_subs(), start="2025-01-01", end="2025-04-01", freq="M")
    assert t["period"].tolist() == ["2025-01", "2025-02", "2025-03"]
    assert t["start_arr"].tolist() == [8220, 6420, 4980]
    assert t["expansion_arr"].tolist() == [600, 0, 0]
    assert t["contraction_arr"].tolist() == [2400, 0, 0]
    assert t["churned_arr"].tolist() == [0, 2400, 300]
    assert t["new_arr"].tolist() == [0, 960, 0]
    np.testing.assert_allclose(t["nrr"], [6420 / 8220, 4020 / 6420, 4680 / 4980])
    np.testing.assert_allclose(t["grr"], [5820 / 8220, 4020 / 6420, 4680 / 4980])


def test_segments_and_signup_cohort():
    accounts = pd.DataFrame(
        {
            "account_id": ["a", "b", "c", "d"],
            "coverage": ["high_touch", "high_touch", "standard", "standard"],
            "created_at": pd.to_datetime(["2024-05-20", "2023-12-01", "2023-12-31", "2024-04-02"]),
        }
    )
    t = nrr_table(_subs(), start="2025-01-01", end="2025-04-01", accounts=accounts, by="coverage")
    by = t.set_index(t["coverage"].astype(object).where(t["coverage"].notna(), "none"))
    assert by.loc["high_touch", "start_arr"] == 3600
    assert by.loc["high_touch", "nrr"] == pytest.approx(1800 / 3600)
    assert by.loc["standard", "grr"] == pytest.approx(1800 / 4200)
    assert by.loc["none", "start_arr"] == 420  # f and h are not in the accounts table
    assert t["start_arr"].sum() == 8220  # segments add up to the whole
    c = nrr_table(
        _subs(), start="2025-01-01", end="2025-04-01", accounts=accounts, by="signup_cohort"
    )
    got = dict(zip(c["signup_cohort"].fillna("none"), c["start_arr"], strict=True))
    assert got == {"2023Q4": 2400 + 3600, "2024Q2": 1200 + 600, "none": 420}
    assert signup_cohort(accounts, "Y").tolist() == ["2024", "2023", "2023", "2024"]
    with pytest.raises(ValueError, match="industry"):
        nrr_table(_subs(), start="2025-01-01", end="2025-04-01", accounts=accounts, by="industry")


def test_arr_on_and_periods():
    arr = arr_on(_subs(), ["2025-02-01"])
    assert dict(zip(arr["account_id"], arr["arr"], strict=True)) == {
        "a": 1800,
        "b": 2400,
        "c": 1200,
        "d": 600,
        "f": 120,
        "h": 300,
    }
    assert list(period_starts("2025-01-15", "2025-10-01", "Q").strftime("%Y-%m")) == [
        "2025-04",
        "2025-07",
    ]
    with pytest.raises(ValueError, match="mrr"):
        arr_on(_subs().drop(columns="mrr"), ["2025-02-01"])


def test_alert_when_nrr_moves_more_than_20_points():
    t = pd.DataFrame(
        {
            "period": ["2025Q1", "2025Q2", "2025Q3", "2025Q4"],
            "period_start": pd.to_datetime(
                ["2025-01-01", "2025-04-01", "2025-07-01", "2025-10-01"]
            ),
            "nrr": [1.00, 1.25, 1.20, 0.99],
        }
    )
    alerts = nrr_alerts(t, points=20)
    assert alerts["period"].tolist() == ["2025Q2", "2025Q4"]
    np.testing.assert_allclose(alerts["change_points"], [25.0, -21.0])
    assert alerts["message"].iloc[1] == "NRR 99.0% in 2025Q4, -21.0 points from 120.0%"
    assert len(nrr_alerts(t, points=30)) == 0  # nothing moved that much: an empty frame
    seg = pd.concat([t.assign(coverage="digital"), t.assign(coverage="standard", nrr=1.0)])
    by_seg = nrr_alerts(seg, points=20, by="coverage")
    assert by_seg["message"].str.startswith("digital: ").all() and len(by_seg) == 2


def test_forecaster_learns_ratios_and_predicts():
    panel = pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2025-01-01"] * 4 + ["2025-04-01"] * 2),
            "arr": [100.0, 200.0, 300.0, 400.0, 500.0, 500.0],
            "label_churn": [1.0, 0.0, 0.0, 0.0, 0.0, 0.0],
            "label_expand": [0.0, 1.0, 1.0, 0.0, np.nan, 0.0],
        }
    )
    actuals = pd.DataFrame(
        {
            "period": ["2025Q1", "2025Q2"],
            "period_start": pd.to_datetime(["2025-01-01", "2025-04-01"]),
            "start_arr": [1000.0, 1000.0],
            "expansion_arr": [250.0, 0.0],
            "contraction_arr": [50.0, 0.0],
            "churned_arr": [150.0, 0.0],
            "nrr": [1.05, 1.0],
            "grr": [0.8, 1.0],
        }
    )
    fc = NRRForecaster().fit(panel, actuals)
    assert fc.fitted_quarters_ == ["2025Q1"]  # 2025Q2 has an unknown label
    assert fc.factors_ == pytest.approx({"k_churn": 1.5, "k_expand": 0.5, "r_contract": 0.05})
    scores = pd.DataFrame({"arr": [1000.0, 1000.0], "p_churn": [0.1, 0.3], "p_expand": [0.2, 0.2]})
    got = fc.predict(scores)
    # churn 1.5 * 400 = 600; expansion 0.5 * 400 = 200; contraction 0.05 * 2000 = 100
    assert got["nrr_forecast"] == pytest.approx(1 + (200 - 100 - 600) / 2000)
    assert got["grr_forecast"] == pytest.approx(1 - 700 / 2000)
    err = forecast_error([{**got, "period": "2025Q2"}], actuals)
    assert err["nrr_abs_error_points"].iloc[0] == pytest.approx(abs(0.75 - 1.0) * 100)
    with pytest.raises(RuntimeError, match="not fitted"):
        NRRForecaster().predict(scores)
