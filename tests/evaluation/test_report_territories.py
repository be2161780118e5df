"""The report's Territories section and the move on each moved account's page."""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from types import SimpleNamespace

import pytest
from report_fixtures import XSS_NAME, make_inputs

from evaluation.report import render_report
from evaluation.report.territories import TerritoryReport, account_moves
from models.territories import TerritoryConfig, rebalance
from models.territory_plan import migration_plan

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="module")
def run():
    inputs = make_inputs(300, history_runs=0)
    scores = inputs.scores.copy()
    scores["days_to_renewal"] = (scores.index.to_numpy() * 7) % 365
    scores.loc[scores.index[:40], "name"] = XSS_NAME
    res = rebalance(
        scores, None, TerritoryConfig(capacity=8, move_cost=0.05, time_limit_seconds=5), as_of=AS_OF
    )
    plan = migration_plan(res, AS_OF)
    return inputs, scores, res, plan


def _data_block(html: str) -> dict:
    start = html.index('id="nrr-data"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def test_section_shows_loads_moves_and_exceptions(run):
    inputs, scores, res, plan = run
    assert res.balance["moves"] > 0 and res.balance["exceptions"] > 0
    html = render_report(
        dataclasses.replace(
            inputs, scores=scores, territories=SimpleNamespace(result=res, plan=plan)
        )
    )
    assert 'id="territories"' in html and 'id="territory-chart"' in html
    for table in ("territory-loads", "territory-moves", "territory-exceptions", "territory-waves"):
        assert f'id="{table}"' in html
    assert f">{res.balance['moves']}</div>" in html
    assert "<script>alert(1)</script>" not in html  # names are escaped everywhere
    data = _data_block(html)
    moved = res.moves["account_id"].iloc[0]
    assert data["territory"][moved]["to"] == res.moves["to_csm"].iloc[0]
    assert data["territory"][moved]["reason"] == res.moves["reason"].iloc[0]
    kept = res.exceptions["account_id"].iloc[0]
    assert data["territory"][kept]["kind"] == "Stays"


def test_no_rebalancing_no_section(run):
    inputs, scores, _, _ = run
    html = render_report(dataclasses.replace(inputs, scores=scores))
    assert 'id="territories"' not in html and '"territory"' not in html


def test_account_moves_carry_wave_and_reason(run):
    _, _, res, plan = run
    moves = account_moves(TerritoryReport.from_run(res, plan))
    first = plan.actions[plan.actions["action"].str.startswith("move")].iloc[0]
    m = moves[first["account_id"]]
    assert m["wave"] == first["wave"] and m["date"] == str(first["wave_date"].date())


@pytest.mark.parametrize("solver", [{"requested": "milp"}, {"requested": "greedy"}])
def test_section_renders_when_the_solver_reported_no_status(run, solver):
    """MILP asked for but never run (nothing free to move, or it failed): no status key."""
    inputs, scores, res, plan = run
    res = dataclasses.replace(res, balance={**res.balance, "method": "greedy", "solver": solver})
    html = render_report(
        dataclasses.replace(
            inputs, scores=scores, territories=SimpleNamespace(result=res, plan=plan)
        )
    )
    assert 'id="territories"' in html
    expected = "greedy fallback" if solver["requested"] == "milp" else "greedy, as configured"
    assert expected in html
