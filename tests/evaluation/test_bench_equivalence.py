"""bench/equivalence.py's comparison helpers: they must see a real difference and only that."""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

_PATH = Path(__file__).resolve().parents[2] / "bench" / "equivalence.py"


@pytest.fixture(scope="module")
def eq():
    spec = importlib.util.spec_from_file_location("bench_equivalence", _PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(payload: dict, run_id: str, compress: bool) -> str:
    text = json.dumps(payload)
    if compress:
        body, enc = base64.b64encode(gzip.compress(text.encode())).decode(), "gzip+base64"
    else:
        body, enc = text, "json"
    csv = base64.b64encode(b"account_id,p\nA1,0.5\n").decode()
    return (
        f"<html><p>run {run_id} at 2026-11-30T12:00:01Z</p>"
        f'<a href="data:text/csv;charset=utf-8;base64,{csv}">csv</a>'
        f'<script type="application/json" id="nrr-data" data-encoding="{enc}">{body}</script>'
        "<script>render()</script></html>"
    )


def test_frames_differ_in_one_cell_and_dtype(eq):
    a = pd.DataFrame({"k": ["a", "b", "c"], "p": [0.1, float("nan"), 0.3], "n": [1, 2, 3]})
    assert eq.compare_frames(a, a.copy()) == []
    b = a.assign(p=[0.1, float("nan"), 0.3 + 1e-9], n=a["n"].astype("float64"))
    diffs = eq.compare_frames(a, b)
    assert any(d.startswith("column p: 1 of 3 rows differ, first at rows [2]") for d in diffs)
    assert "column n: dtype int64 -> float64" in diffs
    assert eq.compare_frames(a, a.iloc[:2]) == ["rows: 3 -> 2"]


def test_reports_equal_up_to_run_ids_timestamps_and_encoding(eq):
    payload = {"acc": [{"id": "A1", "p": 0.25}], "meta": {"run_id": "x" * 32}}
    a = _report(payload, "0" * 32, compress=True)
    b = _report({**payload, "meta": {"run_id": "y"}}, "f" * 32, compress=False)
    assert eq.compare_html(a, b, roots=[], atol=1e-12) == []
    changed = {"acc": [{"id": "A1", "p": 0.26}], "meta": payload["meta"]}
    diffs = eq.compare_html(a, _report(changed, "0" * 32, compress=True), [], 1e-12)
    assert diffs == ["json#nrr-data: acc[0].p: 0.25 -> 0.26"]


def test_absolute_paths_of_the_two_trees_are_not_differences(eq):
    a = {"path": "/s/A/tree/data/x.parquet"}
    b = {"path": "/s/B/tree/data/x.parquet"}
    assert eq.compare_values(a, b, roots=["/s/A/tree", "/s/B/tree"]) == []
    assert eq.compare_values(a, b) == [
        "path: '/s/A/tree/data/x.parquet' -> '/s/B/tree/data/x.parquet'"
    ]


def test_bench_figures_compared_timings_reported(eq):
    a = {"features": {"rows": 10, "wall_seconds": 1.0, "auc": 0.8}, "load": [3.0]}
    b = {"features": {"rows": 10, "wall_seconds": 9.0, "auc": 0.8}, "load": [5.0]}
    same = eq.compare_bench(a, b, 1e-12)
    assert same["equal"] and same["timings_not_compared"]["features.wall_seconds"] == [1.0, 9.0]
    worse = eq.compare_bench(a, {**b, "features": {**b["features"], "auc": 0.79}}, 1e-12)
    assert worse["differences"] == ["features.auc: 0.8 -> 0.79"]


def test_figures_that_move_between_two_runs_of_a_are_noise(eq):
    a = {"ece": 0.010, "auc": 0.8, "seconds": 3.0}
    noisy = eq.noisy_keys(a, {**a, "ece": 0.011, "seconds": 4.0}, 1e-12)
    assert noisy == {"ece"}
    out = eq.compare_bench(a, {**a, "ece": 0.012, "auc": 0.81}, 1e-12, noisy=noisy)
    assert out["differences"] == ["auc: 0.8 -> 0.81"] and out["noise"] == {"ece": [0.01, 0.012]}


def test_a_figure_under_a_new_name_is_a_difference_even_in_a_noisy_field(eq):
    a = {"thresholds": {"2025Q4": {"lightgbm": {"churn": 0.1}}}}
    b = {"thresholds": {"2025Q4": {"lgbm": {"churn": 0.1}}}}
    noisy = {"thresholds.2026Q1.lightgbm.churn"}
    out = eq.compare_bench(a, b, 1e-12, noisy=noisy)
    assert out["differences"] == [
        "thresholds.2025Q4.lgbm.churn: '<missing>' -> 0.1",
        "thresholds.2025Q4.lightgbm.churn: 0.1 -> '<missing>'",
    ]
