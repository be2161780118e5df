"""In headless Chromium: the account table fits 1,366 px, the CSV downloads, the technical
section, account pages with plays and data gaps, and the per-CSM digest, each with a
hostile CSM name that must show as text and never run."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from browser import BROWSER_MARKS, Browser
from cs_fixtures import HOSTILE_CSM, make_cs_inputs

from evaluation.digest import digest_file_stem, write_digests
from evaluation.report import write_report

pytestmark = BROWSER_MARKS


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    inputs, csms = make_cs_inputs(300)
    out = tmp_path_factory.mktemp("cs_report")
    report = write_report(inputs, out / "report.html")
    as_of = pd.Timestamp(inputs.scores["as_of"].iloc[0]).date()
    digests = write_digests(inputs.flags, out / "digests", as_of, report=report.name)
    return inputs, csms, report, digests


@pytest.fixture(scope="module")
def browser():
    with Browser() as b:
        yield b


def _open(browser, url: str, width: int = 1366):
    p = browser.new_page(width=width, height=900)
    p.goto(url)
    return p


@pytest.fixture()
def page(browser, built):
    p = _open(browser, built[2].as_uri())
    assert p.evaluate("window.nrrReport.ready.then(r => r.accounts)", await_promise=True) == 300
    yield p
    assert p.exceptions == [], p.exceptions
    assert p.dialogs == [], p.dialogs
    p.close()


def test_account_table_fits_1366_px(page):
    page.set_hash("#accounts")
    fits = page.evaluate(
        "(() => { const t = document.getElementById('account-table');"
        " return [t.scrollWidth, t.parentElement.clientWidth,"
        " document.documentElement.scrollWidth]; })()"
    )
    assert fits[0] <= fits[1] and fits[2] <= 1366, fits


def test_csv_downloads_hold_every_account_with_formulas_escaped(page, built):
    inputs = built[0]
    files = page.evaluate(
        "[...document.querySelectorAll('#exports a[download]')].map(a => [a.download,"
        " new TextDecoder().decode(Uint8Array.from(atob(a.href.split(',')[1]),"
        " c => c.charCodeAt(0)))])"
    )
    got = dict(files)
    assert set(got) == {"account_list.csv", "weekly_flags.csv"}
    lines = got["account_list.csv"].lstrip("\ufeff").splitlines()
    assert lines[0].startswith("account_id,name,csm,") and len(lines) >= len(inputs.scores) + 1
    assert "'=HYPERLINK" in got["weekly_flags.csv"]
    assert not any(line.startswith(("=", "+", "@")) for line in lines)


def test_technical_section_holds_run_versions_thresholds_and_psi(page):
    assert "run-20250630-a1b2" not in page.evaluate("document.querySelector('header').textContent")
    assert "second look" in page.evaluate("document.getElementById('run-notes').textContent")
    page.set_hash("#technical")
    assert page.evaluate("document.getElementById('view-technical').hidden") is False
    assert page.evaluate("document.getElementById('view-portfolio').hidden") is True
    text = page.evaluate("document.getElementById('view-technical').textContent")
    assert "run-20250630-a1b2" in text and "churn-v7" in text and "0.41" in text


def test_hostile_csm_name_is_text_everywhere(page, built):
    inputs, csms = built[0], built[1]
    assert HOSTILE_CSM in page.evaluate("document.getElementById('csm-table').textContent")
    hostile_id = csms.loc[csms["name"] == HOSTILE_CSM, "csm_id"].iloc[0]
    acc = inputs.scores[inputs.scores["csm_id"] == hostile_id].iloc[0]
    page.set_hash("#account/" + quote(acc["account_id"], safe=""))
    assert HOSTILE_CSM in page.evaluate("document.getElementById('account-csm').textContent")
    assert page.evaluate("document.querySelectorAll('script').length") == 2  # data + code


def test_account_page_shows_play_steps_points_and_data_gaps(page, built):
    inputs = built[0]
    a = inputs.actions
    acc = a[(a["flag"] != "") & (a["steps"] != "") & (a["data_gaps"] != "")].iloc[0]
    page.set_hash("#account/" + quote(acc["account_id"], safe=""))
    steps = page.evaluate("[...document.querySelectorAll('#playbook ol li')].length")
    assert steps == acc["steps"].count(" / ") + 1
    assert acc["due_date"] in page.evaluate("document.getElementById('playbook').textContent")
    gaps = page.evaluate("document.getElementById('data-gaps').textContent")
    assert "No CSAT recorded" in gaps
    labels = page.evaluate(
        "[...document.querySelectorAll('#reasons-churn svg text.wf-label')].map(t => t.textContent)"
    )
    assert labels and not any("…" in t for t in labels)
    assert " pts" in page.evaluate("document.getElementById('reasons-churn').textContent")
    assert "null" not in page.evaluate("document.getElementById('account-root').textContent")
    page.screenshot(Path("/tmp") / "cs_account.png")


def test_digest_opens_cleanly_and_shows_the_hostile_name_as_text(browser, built):
    inputs, csms, _, digests = built
    hostile_id = csms.loc[csms["name"] == HOSTILE_CSM, "csm_id"].iloc[0]
    path = next(p for p in digests if p.name == digest_file_stem(hostile_id, HOSTILE_CSM) + ".html")
    p = _open(browser, path.as_uri(), width=900)
    try:
        title = p.evaluate("document.getElementById('digest-title').textContent")
        assert title == "Weekly flags for " + HOSTILE_CSM
        n = int((inputs.flags["csm"] == HOSTILE_CSM).sum())
        assert p.evaluate("document.querySelectorAll('section.card').length") == n
        assert p.evaluate("document.scripts.length") == 0
        assert p.exceptions == [] and p.dialogs == []
        p.screenshot(Path("/tmp") / "cs_digest.png")
    finally:
        p.close()
    md = path.with_suffix(".md").read_text()
    assert json.dumps(HOSTILE_CSM) not in md and "\\<script\\>" in md


def test_list_totals_agree_with_the_portfolio_money(page):
    flagged = page.evaluate("document.getElementById('kpi-flagged-loss').textContent")
    page.set_hash("#accounts?flag=risk")
    totals = page.evaluate("document.getElementById('list-totals').textContent")
    assert totals.endswith("expected loss on them " + flagged), (totals, flagged)
