"""The report's names come from features.names: the page code reads them from the payload.

A stage, segment, coverage level or band re-typed in the browser code or a template would
silently disagree with the Python side the day a name changes; these tests find them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from report_fixtures import make_inputs

from evaluation.report import render_report
from evaluation.report.format import ASSETS_DIR
from features.names import (
    BANDS,
    COVERAGE_LABELS,
    COVERAGE_LEVELS,
    SEGMENT_LABELS,
    SEGMENT_SHORT,
    SEGMENTS,
    STAGES,
    vocabulary,
)

ROOT = Path(__file__).resolve().parents[2]

# string literals of JavaScript: '...', "..." and `...` (no nesting needed for this code)
JS_STRING = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|`(?:\\.|[^`\\])*`")
JS_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)


def _names(with_bands: bool) -> set[str]:
    """Every name and display label of stages, segments and coverage levels (and bands)."""
    names = {*STAGES, *SEGMENTS, *SEGMENT_LABELS.values(), *SEGMENT_SHORT.values()}
    names |= {*COVERAGE_LEVELS, *COVERAGE_LABELS.values()}
    return names | set(BANDS) if with_bands else names


def retyped_in_js(code: str) -> list[str]:
    """Names found in the string literals of ``code`` (whole words, case-sensitive)."""
    found = []
    for literal in JS_STRING.findall(JS_COMMENT.sub("", code)):
        body = literal[1:-1]
        for name in _names(with_bands=True):
            if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", body):
                found.append(f"{name!r} in {literal}")
    return sorted(found)


def retyped_in_template(text: str) -> list[str]:
    """Names written in a Jinja template (outside comments), as whole words.

    Bands are left out: "high" and "low" are ordinary words in a page's text.
    """
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)
    return sorted(
        name
        for name in _names(with_bands=False)
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text)
    )


# two lines of report.js as it was before it read the vocabulary from the payload
OLD_REPORT_JS = """
    fillSelect('f-band', ['high', 'medium', 'low'].filter((b) => bands.has(b)).map((b) => [b, b]));
    fillSelect('f-cov', ['high_touch', 'standard', 'digital'].concat([...covs.keys()]));
"""


def test_the_scan_finds_names_typed_into_browser_code():
    code = (
        "const a = ['high_touch', 'standard', 'digital']; // 'prove_value' in a comment\n"
        "const b = \"Builder\"; const c = `seg ${x} Prove value`; const d = 'lowest';\n"
        "const e = ['high', 'medium', 'low'];"
    )
    found = retyped_in_js(code)
    assert any("'high_touch'" in f for f in found)
    assert any("'Builder'" in f for f in found)
    assert any("'Prove value'" in f for f in found)
    assert any("'medium'" in f for f in found)
    assert not any("prove_value" in f for f in found)  # comments are not code
    assert not any("lowest" in f for f in found)  # whole words only


def test_the_scan_finds_the_lists_the_old_browser_code_typed():
    found = retyped_in_js(OLD_REPORT_JS)
    for name in (*BANDS, *COVERAGE_LEVELS):
        assert any(f"{name!r} in" in f for f in found), name
    assert retyped_in_template("<th>High touch / seats</th>") == ["High touch"]


@pytest.mark.parametrize("path", sorted(ASSETS_DIR.glob("*.js")), ids=lambda p: p.name)
def test_browser_code_types_no_stage_segment_coverage_or_band_name(path):
    assert retyped_in_js(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", sorted(ASSETS_DIR.glob("*.j2")), ids=lambda p: p.name)
def test_templates_type_no_stage_segment_or_coverage_name(path):
    assert retyped_in_template(path.read_text(encoding="utf-8")) == []


def test_every_segment_has_its_colours_in_the_stylesheet():
    """CSS cannot read the payload; it keys colours by segment name, so none may be missing."""
    css = (ASSETS_DIR / "report.css").read_text(encoding="utf-8")
    for segment in SEGMENTS:
        assert f".seg-{segment} " in css and f".seg-dot.seg-{segment} " in css, segment


def test_the_payload_carries_the_vocabulary():
    html = render_report(make_inputs(30, history_runs=0))
    start = html.index('id="nrr-data"')
    data = json.loads(html[html.index(">", start) + 1 : html.index("</script>", start)])
    assert data["vocab"] == vocabulary()
    assert data["vocab"]["coverage_levels"] == list(COVERAGE_LEVELS)
    assert data["vocab"]["segment_labels"] == SEGMENT_LABELS
    assert list(data["vocab"]["targets"]) == ["churn", "expand"]  # reasons' t indexes these
    assert set(data["labels"]) == {"feature"}  # names' labels are not carried twice


def test_report_modules_define_no_names_of_their_own():
    """The package imports the vocabulary; no module keeps a copy of a name table."""
    for path in sorted((ROOT / "evaluation" / "report").glob("*.py")):
        code = path.read_text(encoding="utf-8")
        for level in COVERAGE_LEVELS:
            assert not re.search(rf"[\"']{level}[\"']\s*:", code), (path.name, level)
        for segment in SEGMENTS:
            assert not re.search(rf"[\"']{segment}[\"']", code), (path.name, segment)
        for stage in STAGES:
            assert not re.search(rf"[\"']{stage}[\"']", code), (path.name, stage)
