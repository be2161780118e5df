"""Migration plan: waves (riskiest last), deferred tier changes, generated texts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from models.territories import MigrationConfig, TerritoryConfig, check_roster, rebalance
from models.territory_plan import migration_plan, render_texts

AS_OF = date(2026, 9, 1)
TEMPLATES = Path(__file__).resolve().parents[2] / "configs" / "territories"


def _book() -> pd.DataFrame:
    rows = [
        # account, csm, current, recommended, at_risk, days_to_renewal, p_churn
        ("calm", "a", "standard", "high_touch", False, 300.0, 0.01),
        ("mild", "a", "standard", "digital", False, 300.0, 0.05),
        ("edgy", "a", "standard", "standard", False, 150.0, 0.20),
        ("hot", "a", "high_touch", "standard", True, 300.0, 0.60),
        ("m1", "a", "standard", "standard", False, 300.0, 0.02),
        ("m2", "a", "standard", "standard", False, 300.0, 0.03),
    ]
    frame = pd.DataFrame(
        rows,
        columns=["account_id", "csm_id", "coverage_current", "coverage_recommended",
                 "at_risk", "days_to_renewal", "p_churn"],
    )  # fmt: skip
    frame["name"] = frame["account_id"].str.title() + " Inc"
    frame["segment"] = "efficient_expansion"
    return frame


def _roster() -> pd.DataFrame:
    return check_roster(
        pd.DataFrame(
            {
                "csm_id": ["a", "b"],
                "name": ["Ana Ames", "Bo Berg"],
                "email": ["ana@example.com", None],
            }
        )  # fmt: skip
    )


def _plan(waves=3):
    res = rebalance(_book(), _roster(), TerritoryConfig(move_cost=0.0), as_of=AS_OF)
    plan = migration_plan(res, AS_OF, MigrationConfig(waves=waves), renewal_window_days=90)
    return res, plan


def test_waves_are_a_month_apart_and_riskiest_last():
    _, plan = _plan()
    acts = plan.actions.set_index("account_id")
    assert list(plan.waves["date"].dt.date) == [date(2026, 9, 15), date(2026, 10, 15),
                                                date(2026, 11, 14)]  # fmt: skip
    # the at-risk downgrade is frozen: deferred to the last wave, flagged for review
    assert acts.loc["hot", "action"] == "deferred tier change"
    assert acts.loc["hot", "wave"] == 3 and "review before acting" in acts.loc["hot", "notes"]
    normal = plan.actions[plan.actions["action"] != "deferred tier change"]
    by_wave = normal.groupby("wave")["risk_score"]
    assert (by_wave.max().shift(1).dropna().to_numpy() <= by_wave.min().iloc[1:].to_numpy()).all()
    assert acts.loc["mild", "coverage_to"] == "digital"


def test_texts_state_only_the_plan_facts():
    res, plan = _plan()
    render_texts(plan, res, TEMPLATES, as_of=AS_OF, csms=_roster())
    assert f"{res.balance['moves']}." in plan.announcement
    assert "Wave 3: 2026-11-14" in plan.announcement and "Hot Inc (hot)" in plan.announcement
    notices = plan.notices.set_index("account_id")
    # a notice per applied tier change; none for the deferred one or plain moves
    assert "hot" not in notices.index and "m1" not in notices.index
    calm = notices.loc["calm"]
    assert (
        calm["subject"]
        == f"Calm Inc: your customer success coverage from {calm['wave_date'].date()}"
    )
    assert "from Standard to High-touch" in calm["body"]
    to = res.assignment.set_index("account_id").loc["calm", "csm_after"]
    if to == "a":
        assert "Ana Ames (ana@example.com) remains your customer success contact" in calm["body"]
    else:
        assert "Your customer success contact will be Bo Berg." in calm["body"]
    mild = notices.loc["mild", "body"]
    assert "from Standard to Digital" in mild and "contact" not in mild.split("\n\n")[1]
    for body in plan.notices["body"]:  # no promises: no figures or service claims
        assert "$" not in body and "%" not in body and "guarantee" not in body.lower()
