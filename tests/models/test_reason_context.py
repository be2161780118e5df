"""Reasons a CSM can repeat: no missing-data drivers, healthy states only as strengths,
comparisons, probability points, and what moved an account since the last run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.catalog import gap_text
from models.reason_context import (
    add_context,
    changes_since,
    data_gaps,
    probability_points,
    reason_state,
)
from tests.models.test_scoring import _score, book, models  # noqa: F401  (shared synthetic book)


def test_missing_values_are_data_gaps_never_drivers(book, models):  # noqa: F811
    scored = _score(book, models)
    r = scored.reasons
    assert not r["value"].isna().any()
    assert not r["sentence"].str.contains("not available").any()
    s = scored.scores.set_index("account_id")
    used = list(models["churn"].feature_names_in_)
    gappy = [c for c in used if book[c].isna().any()]
    assert gappy
    for col in gappy:
        without = book.loc[book[col].isna(), "account_id"]
        assert s.loc[without, "data_gaps"].str.contains(gap_text(col), regex=False).all()
    has_all = book.loc[book[used].notna().all(axis=1)]
    assert (s.loc[has_all["account_id"], "data_gaps"] == "").all()


def test_reasons_carry_points_state_and_comparisons(book, models):  # noqa: F811
    prev = book.copy()
    prev["events_90d"] = prev["events_90d"] * 2
    scored = _score(book, models, previous=prev)
    r = scored.reasons
    # points: same sign as the SHAP value, a fraction of the issued probability
    assert (np.sign(r["contribution"]) == np.sign(r["contribution_log_odds"])).all()
    assert r["contribution"].abs().max() < 1
    assert set(r["state"]) <= {"good", "bad", "neutral"}
    assert r["sentence"].str.contains("segment median: ").all()
    ev = r[r["feature"].astype(str) == "events_90d"]
    assert len(ev) and ev["sentence"].str.contains("4 weeks earlier: ").all()
    np.testing.assert_allclose(ev["value_previous"], ev["value"] * 2)
    parsed = json.loads(scored.scores["reasons_json"].iloc[0])
    assert {"state", "contribution", "sentence"} <= set(parsed[0])


def test_points_are_the_issued_probability_without_the_driver():
    identity = lambda p: np.asarray(p)  # noqa: E731
    pts = probability_points(np.array([np.log(3.0), -np.log(3.0)]), np.array([0.5, 0.5]), identity)
    np.testing.assert_allclose(pts, [0.25, -0.25])


@pytest.mark.parametrize(
    ("feature", "value", "median", "state"),
    [
        ("login_decay", -0.33, 0.1, "bad"),  # "logins fell 33%" is never working well
        ("months_high_seat_util", 0.0, 2.0, "bad"),
        ("csat_90d", 4.6, 4.0, "good"),
        ("open_tickets", 0.0, 1.0, "good"),
        ("days_to_renewal", 30.0, 180.0, "neutral"),
        ("events_90d", 53.0, np.nan, "neutral"),
    ],
)
def test_state_is_judged_against_the_healthy_direction(feature, value, median, state):
    assert reason_state([feature], np.array([value]), np.array([median]))[0] == state


def test_a_value_above_the_median_but_falling_is_no_strength():
    got = reason_state(
        ["events_90d"] * 3,
        np.array([2112.0, 2112.0, 1500.0]),
        np.array([2014.5, 2014.5, 2014.5]),
        previous=np.array([2906.0, 2000.0, 2906.0]),
    )
    assert got.tolist() == ["neutral", "good", "bad"]


def test_comparison_uses_the_accounts_segment():
    reasons = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "target": ["churn", "churn"],
            "direction": ["up", "up"],
            "rank": [1, 1],
            "feature": ["events_90d", "events_90d"],
            "value": [53.0, 400.0],
            "contribution": [0.01, 0.02],
            "sentence": ["53 events by people in the last 90 days"] * 2,
        }
    )
    table = pd.DataFrame({"account_id": ["a", "b", "c"], "events_90d": [53.0, 400.0, 600.0]})
    out = add_context(reasons, table, pd.Series(["s1", "s2", "s2"]))
    assert out["sentence"].iloc[0].endswith("(segment median: 53 events)")
    assert out["sentence"].iloc[1].endswith("(segment median: 500 events)")
    assert list(out["state"]) == ["neutral", "bad"]


def test_data_gaps_group_related_features():
    table = pd.DataFrame(
        {"tickets_30d": [np.nan, 1.0], "tickets_90d": [np.nan, 2.0], "csat_90d": [np.nan, 4.0]}
    )
    gaps = data_gaps(table, ["tickets_30d", "tickets_90d", "csat_90d"])
    assert gaps.tolist() == [
        "No support tickets recorded; No CSAT recorded in the last 90 days",
        "",
    ]


def test_changes_since_names_the_drivers_that_moved():
    def rj(points: float) -> str:
        return json.dumps(
            [
                {"target": "churn", "direction": "up", "feature": "open_tickets", "value": 3,
                 "contribution": points, "sentence": "x", "state": "bad"},
                {"target": "churn", "direction": "down", "feature": "events_90d", "value": 50,
                 "contribution": -0.01, "sentence": "y", "state": "good"},
            ]
        )  # fmt: skip

    prev = pd.DataFrame(
        {"account_id": ["a", "b"], "p_churn": [0.10, 0.10], "p_expand": [0.2, 0.2],
         "reasons_json": [rj(0.01), rj(0.01)]}
    )  # fmt: skip
    now = prev.assign(p_churn=[0.35, 0.12], reasons_json=[rj(0.26), rj(0.03)])
    out = changes_since(now, prev, min_points=0.10)
    assert out["account_id"].tolist() == ["a"]
    assert out["drivers"].iloc[0].startswith("Open tickets")
    assert "+25.0 pts" in out["drivers"].iloc[0]


def test_changes_ignore_reasons_from_runs_before_probability_points():
    old = json.dumps([{"target": "churn", "feature": "open_tickets", "contribution": 1.4}])
    new = json.dumps(
        [{"target": "churn", "feature": "open_tickets", "contribution": 0.2, "state": "bad"}]
    )
    prev = pd.DataFrame(
        {"account_id": ["a"], "p_churn": [0.1], "p_expand": [0.2], "reasons_json": [old]}
    )
    now = prev.assign(p_churn=[0.4], reasons_json=[new])
    out = changes_since(now, prev)
    assert "+20.0 pts" in out["drivers"].iloc[0]  # 0.2 now vs unknown (0) before, not 1.4
