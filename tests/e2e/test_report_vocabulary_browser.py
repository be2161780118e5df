"""The account list's filters and the account pages follow the vocabulary the payload carries.

The browser code types no segment, coverage level or band: these check, in headless
Chromium, that the options it builds from the payload come in the order and with the
labels of features.names, names it does not know included, and that each reason lands
under its target.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from browser import BROWSER_MARKS, Browser
from report_fixtures import make_inputs

from evaluation.report import ReportInputs, write_report
from features.names import BANDS, COVERAGE_LABELS, COVERAGE_LEVELS, SEGMENT_LABELS, SEGMENTS

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def inputs() -> ReportInputs:
    base = make_inputs(120, history_runs=0)
    scores = base.scores.copy()
    scores.loc[scores.index[:3], "coverage_current"] = "white_glove"  # not in the vocabulary
    scores.loc[scores.index[:2], "segment"] = "pilot_programme"
    return dataclasses.replace(base, scores=scores)


@pytest.fixture(scope="module")
def page(inputs, tmp_path_factory):
    path: Path = write_report(inputs, tmp_path_factory.mktemp("vocab") / "report.html")
    with Browser() as browser:
        p = browser.new_page()
        p.goto(path.as_uri())
        assert p.evaluate("window.nrrReport.ready.then(r => r.accounts)", await_promise=True)
        yield p
        assert p.exceptions == [], p.exceptions
        p.close()


def options(page, select_id: str) -> list[tuple[str, str]]:
    """(value, text) of a filter's options, the leading "All" left out."""
    return [
        tuple(o)
        for o in page.evaluate(
            f"[...document.getElementById({json.dumps(select_id)}).options]"
            ".slice(1).map(o => [o.value, o.textContent])"
        )
    ]


def test_segment_filter_lists_segments_in_vocabulary_order_then_unknown_ones(page, inputs):
    counts = inputs.scores["segment"].value_counts()
    expected = [s for s in SEGMENTS if s in counts] + ["pilot_programme"]
    labels = {**SEGMENT_LABELS, "pilot_programme": "pilot programme"}
    assert options(page, "f-seg") == [(s, f"{labels[s]} ({counts[s]})") for s in expected]


def test_coverage_filter_lists_heaviest_touch_first_then_unknown_levels(page, inputs):
    counts = inputs.scores["coverage_current"].value_counts()
    expected = [c for c in reversed(COVERAGE_LEVELS) if c in counts] + ["white_glove"]
    labels = {**COVERAGE_LABELS, "white_glove": "white glove"}
    assert options(page, "f-cov") == [(c, f"{labels[c]} ({counts[c]})") for c in expected]


def test_band_filter_lists_highest_band_first(page, inputs):
    counts = inputs.scores["churn_band"].value_counts()
    expected = [b for b in reversed(BANDS) if b in counts]
    assert len(expected) == len(BANDS)
    assert options(page, "f-band") == [(b, f"{b} ({counts[b]})") for b in expected]


def test_each_reason_is_shown_under_its_target(page, inputs):
    row = inputs.scores.iloc[5]
    reasons = json.loads(row["reasons_json"])
    page.set_hash("#account/" + str(row["account_id"]))
    for target in ("churn", "expand"):
        shown = page.evaluate(
            f"[...document.querySelectorAll('#reasons-{target} li > span:first-child')]"
            ".map(s => s.textContent)"
        )
        assert sorted(shown) == sorted(r["sentence"] for r in reasons if r["target"] == target)
