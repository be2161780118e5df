"""The report in headless Chromium: loads cleanly, filters, opens accounts, never runs data.

Driven over the DevTools protocol (tests/browser.py). Skipped only when no Chromium is
installed (`make browser` installs Debian's package).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from browser import BROWSER_MARKS, Browser
from report_fixtures import XSS_ID, XSS_NAME, make_inputs

from evaluation.report import ReportInputs, ReportOptions, write_report

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def inputs() -> ReportInputs:
    return make_inputs(300)


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory) -> Path:
    return write_report(inputs, tmp_path_factory.mktemp("report") / "report.html")


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


@pytest.fixture()
def page(browser, report):
    p = browser.new_page()
    p.goto(report.as_uri())
    assert p.evaluate("window.nrrReport.ready.then(r => r.accounts)", await_promise=True) == 300
    yield p
    assert p.exceptions == [], p.exceptions
    assert p.dialogs == [], p.dialogs
    p.close()


def rows(page) -> int:
    return page.evaluate("document.querySelectorAll('#account-rows tr').length")


def choose(page, select_id: str, value: str) -> None:
    """Pick an option the way a user does: set the value and fire 'change'."""
    page.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(select_id)});"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )


def test_portfolio_loads_without_script_errors(page, inputs):
    assert page.console_errors == []
    assert page.evaluate("document.getElementById('view-portfolio').hidden") is False
    assert page.evaluate("document.getElementById('kpi-accounts').textContent") == "300"
    page.screenshot("/tmp/report_portfolio.png")


def test_filters_and_sort_show_the_matching_accounts(page, inputs):
    s = inputs.scores
    page.set_hash("#accounts")
    assert rows(page) == 100  # first page of the 300
    csm = s["csm_id"].value_counts().index[0]
    choose(page, "f-csm", csm)
    expected = int((s["csm_id"] == csm).sum())
    assert rows(page) == expected
    assert page.evaluate("document.getElementById('list-count').textContent").startswith(
        f"{expected} of 300"
    )
    choose(page, "f-band", "high")
    expected = int(((s["csm_id"] == csm) & (s["churn_band"] == "high")).sum())
    assert rows(page) == expected
    assert "csm=" in page.evaluate("location.hash")  # the filtered view is linkable
    # Segment filter + sort by ARR: the first row is the largest account of that segment.
    page.set_hash("#accounts?seg=prove_value&sort=arr")
    seg = s[s["segment"] == "prove_value"]
    assert rows(page) == min(100, len(seg))
    first = page.evaluate("document.querySelector('#account-rows tr td.name').textContent")
    assert first == seg.sort_values("arr", ascending=False)["name"].iloc[0]
    # Search narrows by name or id.
    page.evaluate(
        "(() => { const q = document.getElementById('f-q'); q.value = 'A00007';"
        " q.dispatchEvent(new Event('input')); })()"
    )
    choose(page, "f-seg", "")
    assert rows(page) == 1


def test_account_page_shows_reasons_history_and_summary(page, inputs):
    s = inputs.scores
    acc = s.iloc[3]
    page.set_hash("#account/" + acc["account_id"])
    assert page.evaluate("document.getElementById('account-name').textContent") == acc["name"]
    reasons = json.loads(acc["reasons_json"])
    churn = [r for r in reasons if r["target"] == "churn"]
    shown = page.evaluate(
        "[...document.querySelectorAll('#reasons-churn li > span:first-child')]"
        ".map(li => li.textContent)"
    )
    assert sorted(shown) == sorted(r["sentence"] for r in churn)
    assert shown[0] == max(churn, key=lambda r: abs(r["contribution"]))["sentence"]
    bars = page.evaluate("document.querySelectorAll('#reasons-churn svg rect').length")
    assert bars == len(churn) + 1  # one bar per driver and the total
    runs = int((inputs.history["account_id"] == acc["account_id"]).sum()) + 1
    assert page.evaluate("document.querySelectorAll('#chart-history circle').length") == 2 * runs
    qbr = page.evaluate("document.getElementById('qbr').textContent")
    assert acc["name"] in qbr and f"{acc['p_churn'] * 100:.0f}%" in qbr
    page.screenshot("/tmp/report_account.png")


def test_hostile_account_is_text_and_no_dialog_opens(page):
    page.set_hash("#accounts?q=" + "%3Cscript")
    assert rows(page) == 1
    cell = page.evaluate("document.querySelector('#account-rows td.name').textContent")
    assert cell == XSS_NAME
    page.evaluate(
        "new Promise(r => { addEventListener('hashchange', () => setTimeout(r, 0), {once: true});"
        " document.querySelector('#account-rows td.name a').click(); })",
        await_promise=True,
    )
    assert page.evaluate("document.getElementById('account-name').textContent") == XSS_NAME
    assert XSS_ID in page.evaluate("document.querySelector('#account-root .ids').textContent")
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert page.evaluate("document.querySelectorAll('img, [onerror]').length") == 0
    injected = page.evaluate(
        "[...document.querySelectorAll('b, i')].filter(e => ['csm', 'Experimenter'].includes(e.textContent)).length"
    )
    assert injected == 0
    assert page.dialogs == []


def test_large_report_is_compressed_and_still_loads(browser, tmp_path):
    inputs = make_inputs(2000, history_runs=4)
    path = write_report(
        ReportInputs(**{**inputs.__dict__, "options": ReportOptions(compress_over_bytes=0)}),
        tmp_path / "big.html",
    )
    p = browser.new_page()
    p.goto(path.as_uri())
    assert p.evaluate("window.nrrReport.ready.then(r => r.accounts)", await_promise=True) == 2000
    p.set_hash("#accounts?flag=risk")
    assert p.evaluate("document.getElementById('list-count').textContent").startswith(
        f"{int(inputs.scores['at_risk'].sum()):,} of 2,000"
    )
    assert p.exceptions == [] and p.dialogs == []
    p.close()
