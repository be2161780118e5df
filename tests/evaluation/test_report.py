"""The HTML report: self-contained, escaped, and its figures match the scores it was made from."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
from report_fixtures import XSS_ID, XSS_NAME, make_history, make_inputs, make_nrr, make_scores

from evaluation.report import (
    NRR_REQUIRED_COLUMNS,
    REQUIRED_SCORE_COLUMNS,
    ReportInputs,
    ReportMeta,
    ReportOptions,
    render_report,
    write_report,
)

DATA_RE = re.compile(
    r'<script type="application/json" id="nrr-data" data-encoding="([a-z0-9+]+)">(.*?)</script>',
    re.S,
)


@pytest.fixture(scope="module")
def inputs() -> ReportInputs:
    return make_inputs(300)


@pytest.fixture(scope="module")
def html(inputs) -> str:
    return render_report(inputs)


def payload_of(html: str) -> dict:
    encoding, text = DATA_RE.search(html).groups()
    if encoding == "gzip+base64":
        text = gzip.decompress(base64.b64decode(text)).decode("utf-8")
    return json.loads(text)


def text_of(html: str, element_id: str) -> str:
    return re.search(rf'id="{element_id}"[^>]*>([^<]*)<', html).group(1)


def table_rows(html: str, table_id: str) -> int:
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return body.count("<tr>")


# --------------------------------------------------------------------------- self-contained


def test_no_external_resources(html):
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "<link" not in html and "@import" not in html and "url(" not in html
    # The only URL in the file is the SVG namespace the script passes to createElementNS.
    assert set(re.findall(r"https?://[^\s'\"]+", html)) == {"http://www.w3.org/2000/svg"}


def test_csp_forbids_network_and_pins_the_script(html):
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    assert "default-src 'none'" in csp
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp


# --------------------------------------------------------------------------- escaping


def test_hostile_text_is_escaped_everywhere(html):
    assert XSS_NAME not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # shown in the at-risk list, as text
    assert html.count("<script") == 2  # the JSON block and the report's own script
    assert "<img" not in html and "<b>csm" not in html
    data = DATA_RE.search(html).group(2)
    assert "</" not in data and "<!--" not in data and "<" not in data


def test_hostile_text_round_trips_through_the_payload(html):
    p = payload_of(html)
    i = p["acc"]["id"].index(XSS_ID)
    assert p["acc"]["name"][i] == XSS_NAME
    r = p["reasons"]
    sentences = [p["dict"]["sentence"][r["s"][k]] for k in range(r["off"][i], r["off"][i + 1])]
    assert "9 urgent tickets </script><!-- <img src=x onerror=alert(2)>" in sentences
    values = [r["v"][k] for k in range(r["off"][i], r["off"][i + 1])]
    assert "<b>Experimenter</b>" in values and 9 in values


def test_compressed_payload_decodes_to_the_same_data(inputs):
    plain = payload_of(render_report(inputs))
    small = ReportInputs(**{**inputs.__dict__, "options": ReportOptions(compress_over_bytes=0)})
    packed_html = render_report(small)
    assert DATA_RE.search(packed_html).group(1) == "gzip+base64"
    assert payload_of(packed_html) == plain


# --------------------------------------------------------------------------- figures


def test_kpis_match_the_scores(html, inputs):
    s = inputs.scores
    assert text_of(html, "kpi-accounts") == f"{len(s):,}"
    assert text_of(html, "kpi-at-risk") == f"{int(s['at_risk'].sum()):,}"
    assert text_of(html, "kpi-ready") == f"{int(s['expansion_ready'].sum()):,}"


def test_tam_maturity_grid_counts_every_account_once(html, inputs):
    cells = [int(n) for n in re.findall(r'data-n="(\d+)"', html)]
    assert sum(cells) == len(inputs.scores)
    # High-TAM Experimenters are the 'accelerate' quadrant.
    expected = int(
        (
            (inputs.scores["segment"] == "accelerate")
            & (inputs.scores["maturity_stage"] == "Experimenter")
        ).sum()
    )
    grid = re.search(r'id="tam-grid".*?</table>', html, re.S).group(0)
    first_cell = re.search(r'data-n="(\d+)"', grid).group(1)
    assert int(first_cell) == expected


def test_coverage_misalignment_counts(html, inputs):
    rank = {"digital": 0, "standard": 1, "high_touch": 2}
    s = inputs.scores
    diff = s["coverage_recommended"].map(rank) - s["coverage_current"].map(rank)
    assert text_of(html, "cov-upgrade-n") == str(int((diff > 0).sum()))
    assert text_of(html, "cov-downgrade-n") == str(int((diff < 0).sum()))
    matrix = re.search(r'id="coverage-matrix".*?</table>', html, re.S).group(0)
    cells = [int(v) for v in re.findall(r'<td class="n[^"]*">(\d+)</td>', matrix)]
    assert sum(cells) == len(s)
    assert table_rows(html, "upgrade-table") == min(10, int((diff > 0).sum()))


def test_segment_table_sums_to_the_book(html, inputs):
    body = re.search(r'id="segment-table".*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    counts = [
        int(v.replace(",", "")) for v in re.findall(r'</a></td><td class="n">([\d,]+)</td>', body)
    ]
    assert sum(counts) == len(inputs.scores)
    assert len(counts) == inputs.scores["segment"].nunique()


def test_payload_matches_the_scores(html, inputs):
    s = inputs.scores
    p = payload_of(html)
    acc = p["acc"]
    assert acc["id"] == s["account_id"].tolist()
    np.testing.assert_allclose(acc["pc"], s["p_churn"], atol=5e-5)
    np.testing.assert_allclose(acc["arr"], s["arr"], atol=0.5)
    assert [p["dict"]["seg"][c] for c in acc["seg"]] == s["segment"].tolist()
    assert sum(f & 1 for f in acc["flag"]) == int(s["at_risk"].sum())
    # Reasons: same count per account as reasons_json, sentences intact, sorted by |contribution|.
    lengths = s["reasons_json"].map(lambda r: len(json.loads(r)))
    assert np.diff(p["reasons"]["off"]).tolist() == lengths.tolist()
    first = json.loads(s["reasons_json"].iloc[0])
    off = p["reasons"]["off"]
    got = {p["dict"]["sentence"][p["reasons"]["s"][k]] for k in range(off[0], off[1])}
    assert got == {r["sentence"] for r in first}
    churn = [p["reasons"]["c"][k] for k in range(off[0], off[1]) if p["reasons"]["t"][k] == 0]
    assert churn == sorted(churn, key=abs, reverse=True)


def test_history_covers_earlier_runs_and_this_one(html, inputs):
    p = payload_of(html)
    h = p["hist"]
    n_runs = inputs.history["as_of"].nunique() + 1
    assert len(h["dates"]) == n_runs and h["dates"][-1] == "2025-06-30"
    n_dates, n = len(h["dates"]), len(inputs.scores)
    assert h["dates"] == sorted(h["dates"]) and len(h["pc"]) == len(h["pe"]) == n * n_dates
    # Today's column is complete and holds today's scores (per-mille).
    today = np.array(h["pc"][n_dates - 1 :: n_dates], dtype=float) / 1000
    np.testing.assert_allclose(today, inputs.scores["p_churn"], atol=5e-4)
    # Earlier cells are filled exactly where the history has the account.
    filled = sum(v is not None for v in h["pc"]) - n
    assert filled == len(inputs.history)
    prev = inputs.history[inputs.history["as_of"] == inputs.history["as_of"].max()].iloc[0]
    i = inputs.scores["account_id"].tolist().index(prev["account_id"])
    assert h["pc"][i * n_dates + n_dates - 2] == round(prev["p_churn"] * 1000)


def test_movers_rank_the_largest_increase_first(html, inputs):
    s, hist = inputs.scores, inputs.history
    prev = hist[hist["as_of"] == hist["as_of"].max()].set_index("account_id")["p_churn"]
    delta = s.set_index("account_id")["p_churn"] - prev
    top = delta.idxmax()
    table = re.search(r'id="movers-churn_up".*?</table>', html, re.S).group(0)
    first_link = re.search(r'href="#account/([^"]+)"', table).group(1)
    assert first_link == top
    assert table_rows(html, "movers-churn_up") == 10


def test_no_history_and_no_nrr_are_explained(inputs):
    html = render_report(ReportInputs(scores=inputs.scores))
    assert "No earlier run in the history" in html
    assert "No NRR periods were supplied" in html
    assert payload_of(html)["prev_as_of"] is None


def test_history_on_or_after_as_of_is_ignored(inputs):
    s = inputs.scores
    later = make_history(s, runs=2).assign(as_of=pd.Timestamp("2025-07-07"))
    same = s.loc[:, ["account_id", "as_of", "p_churn", "p_expand"]].assign(p_churn=0.0)
    html = render_report(ReportInputs(scores=s, history=pd.concat([later, same])))
    assert "No earlier run in the history" in html
    assert payload_of(html)["hist"]["dates"] == ["2025-06-30"]
    assert None not in payload_of(html)["hist"]["pc"]


def test_nrr_chart_and_table(html):
    nrr = make_nrr()
    assert 'id="chart-bridge"' in html and 'id="chart-trend"' in html
    assert table_rows(html, "nrr-table") == len(nrr)
    last = nrr.iloc[-1]
    assert f"NRR {last['nrr'] * 100:.1f}%" in html


def test_minimal_scores_render():
    s = make_scores(40).loc[:, list(REQUIRED_SCORE_COLUMNS)]
    html = render_report(ReportInputs(scores=s, meta={"run_id": "r1"}))
    p = payload_of(html)
    assert len(p["acc"]["id"]) == 40 and p["reasons"]["off"][-1] == 0
    assert text_of(html, "kpi-at-risk") == "0"


def test_empty_scores_render():
    s = make_scores(5).iloc[0:0]
    html = render_report(
        ReportInputs(scores=s, meta=ReportMeta(as_of=pd.Timestamp("2025-06-30").date()))
    )
    assert text_of(html, "kpi-accounts") == "0"
    assert payload_of(html)["acc"]["id"] == []


# --------------------------------------------------------------------------- errors


def test_missing_column_is_named():
    s = make_scores(10).drop(columns=["p_churn"])
    with pytest.raises(ValueError, match=r"scores: missing column\(s\) \['p_churn'\]"):
        render_report(ReportInputs(scores=s))


def test_several_runs_in_scores_are_refused():
    a, b = make_scores(10, as_of="2025-06-23"), make_scores(10, as_of="2025-06-30")
    with pytest.raises(ValueError, match="scores.as_of: 2 dates"):
        render_report(ReportInputs(scores=pd.concat([a, b])))


def test_duplicate_accounts_are_refused():
    s = make_scores(10)
    with pytest.raises(ValueError, match="scores.account_id: 2 rows share"):
        render_report(ReportInputs(scores=pd.concat([s, s.iloc[:1]])))


def test_bad_reasons_json_names_the_account():
    s = make_scores(10)
    s.loc[3, "reasons_json"] = '{"not": "a list"'
    with pytest.raises(
        ValueError, match=r"reasons_json: 1 rows are not a JSON list \(first account_id 'A00003'\)"
    ):
        render_report(ReportInputs(scores=s))


def test_nrr_checks_columns_and_ratio_units():
    s = make_scores(10)
    with pytest.raises(ValueError, match="nrr: missing column"):
        render_report(ReportInputs(scores=s, nrr=make_nrr().drop(columns=["grr"])))
    pct = make_nrr().assign(nrr=lambda d: d["nrr"] * 100)
    with pytest.raises(ValueError, match="ratios"):
        render_report(ReportInputs(scores=s, nrr=pct))
    assert "churned_arr" in NRR_REQUIRED_COLUMNS


def test_write_report_is_atomic(tmp_path, inputs):
    out = write_report(inputs, tmp_path / "reports" / "report.html")
    assert out.exists() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]
