"""One report page from its inputs: prepare the frames, compute the sections, fill the template.

Escaping: Jinja autoescapes everything rendered here; the embedded JSON is made safe by
:func:`evaluation.report.payload.embed_json`; the browser code sets data with
``textContent`` only. The script's SHA-256 goes into the Content-Security-Policy, which
forbids any other script and any network access.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pandas as pd

from evaluation.report.format import ASSETS_DIR, environment
from evaluation.report.payload import embed_json, report_payload
from evaluation.report.portfolio import portfolio_sections
from evaluation.report.prepare import (
    ReportInputs,
    ReportMeta,
    add_movers,
    join_actions,
    meta_as_of,
    prepare_history,
    prepare_nrr,
    prepare_scores,
)
from evaluation.report.territories import add_territories
from features.storage import atomic_write


def render_report(inputs: ReportInputs) -> str:
    """Render the report of one scoring run as a single self-contained HTML page.

    Parameters
    ----------
    inputs : ReportInputs
        Scores of the run, earlier scores, NRR periods and run metadata.

    Returns
    -------
    str
        The HTML document (UTF-8 text, no external resources).

    Raises
    ------
    ValueError
        If a required column is missing, the scores hold several ``as_of`` dates or
        duplicate accounts, or ``reasons_json`` is not valid JSON (the message names the
        table, column and row count).

    Examples
    --------
    >>> html = render_report(ReportInputs(scores=scores_df))  # doctest: +SKIP
    >>> write_report(ReportInputs(scores=scores_df), "reports/2025-06-30.html")  # doctest: +SKIP
    """
    meta = inputs.meta if isinstance(inputs.meta, ReportMeta) else ReportMeta(**inputs.meta)
    opts = inputs.options
    scores = join_actions(prepare_scores(inputs.scores), inputs.actions)
    as_of = pd.Timestamp(scores["as_of"].iloc[0]) if len(scores) else meta_as_of(meta)
    history = prepare_history(inputs.history, scores, as_of, opts.history_runs)
    nrr = prepare_nrr(inputs.nrr)
    scores, prev_as_of = add_movers(scores, history)

    payload = report_payload(scores, history, as_of, prev_as_of, meta, inputs.feature_labels, opts)
    territories_html = add_territories(inputs.territories, payload)
    data_text, encoding = embed_json(payload, opts.compress_over_bytes)
    script = (ASSETS_DIR / "report.js").read_text(encoding="utf-8")
    script_hash = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()

    context = {
        **portfolio_sections(scores, nrr, prev_as_of, meta, inputs),
        "meta": meta,
        "as_of": as_of.strftime("%Y-%m-%d") if not pd.isna(as_of) else "unknown",
        "prev_as_of": prev_as_of.strftime("%Y-%m-%d") if prev_as_of is not None else None,
        "territories_html": territories_html,
        "n_accounts": len(scores),
        "css": (ASSETS_DIR / "report.css").read_text(encoding="utf-8"),
        "script": script,
        "script_hash": script_hash,
        "data_text": data_text,
        "data_encoding": encoding,
    }
    return environment().get_template("report.html.j2").render(**context)


def write_report(inputs: ReportInputs, path: str | Path) -> Path:
    """Render the report and write it to ``path`` (UTF-8), creating parent folders.

    Parameters
    ----------
    inputs : ReportInputs
        As for :func:`render_report`.
    path : str or Path
        Target file, conventionally ``<scores dir>/report_<as_of>.html``.

    Returns
    -------
    Path
        The written file. It is written to a temporary sibling first and renamed, so a
        failed render never leaves a half-written report.
    """
    path = Path(path)
    html = render_report(inputs)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, html, point="report.write")
