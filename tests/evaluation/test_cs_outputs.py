"""What a CS team acts on: CSM names, plays with due dates, formula-safe CSV, digests, and
a report whose money figures agree and whose technical details sit in their own section."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import date

import pandas as pd
import pytest
from cs_fixtures import HOSTILE_CSM, make_cs_inputs

from evaluation.actions import ACCOUNT_LIST_COLUMNS, FLAG_COLUMNS, weekly_flags, write_exports
from evaluation.csv_safe import escape_cell, escape_frame
from evaluation.digest import digest_html, digest_markdown, write_digests
from evaluation.report import render_report


@pytest.fixture(scope="module")
def cs():
    return make_cs_inputs(300)


@pytest.fixture(scope="module")
def html(cs) -> str:
    return render_report(cs[0])


@pytest.mark.parametrize("text", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x"])
def test_formula_cells_are_escaped(text):
    assert escape_cell(text) == "'" + text
    frame = escape_frame(pd.DataFrame({"name": [text], "arr": [-1200.0]}))
    assert frame.at[0, "name"] == "'" + text and frame.at[0, "arr"] == -1200.0


def test_plain_text_and_numbers_are_untouched():
    assert escape_cell("Acme - North") == "Acme - North"
    assert escape_cell(-5) == -5


def test_action_table_names_csms_and_dates_plays(cs):
    inputs, csms = cs
    a = inputs.actions
    assert len(a) == len(inputs.scores)
    by_id = dict(zip(csms["csm_id"], csms["name"], strict=True))
    known = a["csm_id"].notna()
    assert (a.loc[known, "csm"] == a.loc[known, "csm_id"].map(by_id)).all()
    assert (a.loc[~known, "csm"] == "(unassigned)").all()
    flagged = a[(a["flag"] != "") & (a["play"] == "Support escalation")]
    assert len(flagged)
    # Support escalation is due 7 days after the scoring date, with its steps and owner
    as_of = pd.Timestamp(inputs.scores["as_of"].iloc[0]).date()
    assert (flagged["due_date"] == date.fromordinal(as_of.toordinal() + 7).isoformat()).all()
    assert flagged["steps"].str.startswith("1. ").all()
    assert (flagged["owner"] == "CSM with the support lead").all()
    assert (a.loc[a["flag"] == "", "due_date"] == "").all()


def test_weekly_flags_keep_the_highest_priorities_per_csm(cs):
    a = cs[0].actions
    flags = weekly_flags(a, max_per_csm=3)
    assert flags.groupby("csm").size().max() <= 3
    for csm, rows in flags.groupby("csm"):
        mine = a[(a["csm"] == csm) & (a["flag"] != "")]
        assert rows["priority"].tolist() == sorted(mine["priority"], reverse=True)[: len(rows)]


def test_exports_are_formula_safe_files(cs, tmp_path):
    inputs, _ = cs
    paths = write_exports(inputs.actions, inputs.flags, tmp_path / "exports")
    with paths["account_list"].open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(ACCOUNT_LIST_COLUMNS)
    assert len(rows) == len(inputs.actions)
    hostile = [r for r in rows if "HYPERLINK" in r["csm"]]
    assert hostile and all(r["csm"].startswith("'=") for r in hostile)
    assert all(not re.match(r"^[=+\-@]", v) for r in rows for v in r.values() if v)
    with paths["weekly_flags"].open(encoding="utf-8-sig", newline="") as f:
        flag_rows = list(csv.DictReader(f))
    assert list(flag_rows[0]) == list(FLAG_COLUMNS) and len(flag_rows) == len(inputs.flags)


def test_digests_one_per_csm_escape_hostile_names(cs, tmp_path):
    inputs, _ = cs
    as_of = pd.Timestamp(inputs.scores["as_of"].iloc[0]).date()
    written = write_digests(inputs.flags, tmp_path / "digests", as_of, report="report.html")
    n_csm = inputs.flags["csm"].nunique()
    assert len(written) == 2 * n_csm
    assert all(
        re.fullmatch(r"digest-[A-Za-z0-9-]+-[0-9a-f]{8}\.(html|md)", p.name) for p in written
    )
    rows = inputs.flags[inputs.flags["csm"] == HOSTILE_CSM]
    page = digest_html(HOSTILE_CSM, rows, as_of)
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert "default-src 'none'" in page and "<script" not in page
    assert page.count('<section class="card">') == len(rows) <= 20
    md = digest_markdown(HOSTILE_CSM, rows, as_of)
    assert "\\<script\\>" in md and "<script>" not in md
    first = rows.iloc[0]
    assert f"due {first['due_date']}" in md.replace("\\-", "-")


def test_report_money_figures_say_what_they_sum(cs, html):
    s = cs[0].scores
    flagged = s.loc[s["at_risk"], "arr_at_risk"].sum()
    assert re.search(
        r"</span> accounts flagged; expected loss on these \d+ in the next 60 days", html
    )
    shown = re.search(r'id="kpi-flagged-loss">([^<]+)<', html).group(1)
    assert shown == _money(flagged)
    assert "× ARR × save rate" not in html
    sub = re.search(r'id="at-risk-sub">([^<]+)<', html).group(1)
    top = s[s["at_risk"]].nlargest(10, "arr_at_risk")["arr_at_risk"].sum()
    assert f"these 10: {_money(top)} of {_money(flagged)}" in sub


def test_technical_details_leave_the_header(cs, html):
    head = html[html.index("<header") : html.index("</header>")]
    assert "run-20250630-a1b2" not in head and "threshold" not in head.lower()
    tech = html[html.index('id="view-technical"') :]
    assert "run-20250630-a1b2" in tech and "churn-v7" in tech and "0.41" in tech
    banner = html[html.index('id="run-notes"') : html.index("</div>", html.index('id="run-notes"'))]
    assert "PSI" not in banner and "second look" in banner


def test_report_offers_both_csv_downloads(cs, html):
    links = dict(
        re.findall(r'id="export-(\w+)" href="data:text/csv;charset=utf-8;base64,([^"]+)"', html)
    )
    assert set(links) == {"accounts", "flags"}
    text = base64.b64decode(links["accounts"]).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == len(cs[0].scores)
    assert all(not re.match(r"^[=+\-@]", v) for r in rows for v in r.values() if v)


def _money(v: float) -> str:
    from evaluation.report.format import money

    return money(v)


def test_digest_lists_keep_sentences_whole_and_show_risk_only_when_at_risk(cs):
    rows = cs[0].flags.head(2).copy()
    rows["risk_reasons"] = "Logins fell (4 weeks earlier: 9; segment median: 7) | Renewal is near"
    rows["at_risk"] = [True, False]
    rows["expansion_ready"] = [False, True]
    page = digest_html("Jo", rows, date(2026, 1, 5))
    first, second = page.split('<section class="card">')[1:3]
    assert first.count("<li>Logins fell (4 weeks earlier: 9; segment median: 7)</li>") == 1
    assert "Renewal is near" in first and "Why at risk" not in second
