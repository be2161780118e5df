"""The Territories section and an account's move in headless Chromium (tests/browser.py)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
from datetime import date
from pathlib import Path
from types import SimpleNamespace

from browser import BROWSER_MARKS, Browser
from report_fixtures import make_inputs

from evaluation.report import write_report
from models.territories import TerritoryConfig, rebalance
from models.territory_plan import migration_plan

pytestmark = BROWSER_MARKS
AS_OF = date(2025, 6, 30)


def territory_report(path: Path, n: int = 300) -> tuple[Path, object]:
    """A report of `n` generated accounts with a rebalancing of their book."""
    inputs = make_inputs(n, history_runs=2)
    scores = inputs.scores.copy()
    scores["days_to_renewal"] = (scores.index.to_numpy() * 7) % 365
    res = rebalance(
        scores, None, TerritoryConfig(capacity=8, move_cost=0.05, time_limit_seconds=5), as_of=AS_OF
    )
    plan = migration_plan(res, AS_OF)
    run = SimpleNamespace(result=res, plan=plan)
    return write_report(dataclasses.replace(inputs, scores=scores, territories=run), path), res


def section_screenshot(page, path: Path) -> Path:
    """PNG of the Territories section only (heading to the waves table)."""
    box = page.evaluate(
        "(() => { const t = document.getElementById('territories').getBoundingClientRect();"
        " const w = document.getElementById('territory-waves').closest('.card')"
        ".getBoundingClientRect(); return {x: 0, y: t.top + scrollY - 8,"
        " width: document.documentElement.clientWidth, height: w.bottom - t.top + 16}; })()"
    )
    data = page.call(
        "Page.captureScreenshot",
        {"format": "png", "captureBeyondViewport": True, "clip": {**box, "scale": 1}},
    )["data"]
    path.write_bytes(base64.b64decode(data))
    return path


def test_section_and_account_move_render(tmp_path):
    report, res = territory_report(tmp_path / "report.html")
    with Browser() as browser:
        page = browser.new_page(height=1000)
        page.goto(report.as_uri())
        page.evaluate("window.nrrReport.ready", await_promise=True)
        assert page.evaluate("!!document.getElementById('territory-chart')")
        n_rows = page.evaluate("document.querySelectorAll('#territory-moves tbody tr').length")
        assert n_rows == min(15, len(res.moves))
        shot = section_screenshot(page, tmp_path / "territories.png")
        assert shot.stat().st_size > 10_000
        keep = os.environ.get("NRRCAST_TERRITORIES_PNG")
        if keep:
            Path(keep).write_bytes(shot.read_bytes())
        moved = res.moves.iloc[0]
        page.set_hash("#account/" + moved["account_id"])
        text = page.evaluate(
            "(() => { const c = document.getElementById('territory-move');"
            " return c ? c.textContent : null; })()"
        )
        assert text is not None and moved["reason"] in text and moved["to_csm"] in text
        kept = res.exceptions.iloc[0]
        page.set_hash("#account/" + kept["account_id"])
        assert "stays with its CSM" in page.evaluate(
            "document.getElementById('territory-move').textContent"
        )
        assert page.exceptions == [] and page.console_errors == [], json.dumps(page.exceptions)
