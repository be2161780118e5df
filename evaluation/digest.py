"""The weekly digest per CSM: their flags, reasons, plays and due dates, ready to send.

One self-contained HTML file (inline CSS, no script, a Content-Security-Policy that
forbids any network access) and one Markdown file per CSM, from `evaluation.actions`
flags. Every text is escaped for its format: an account or CSM name is data, never
markup. Sending is out of scope: the files are written next to the report.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from evaluation.actions import LIST_SEP

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
max-width:860px;margin:24px auto;padding:0 16px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:22px 0 6px}
.sub{color:#616e7c}.card{border:1px solid #d9e2ec;border-radius:8px;padding:10px 14px;
margin:10px 0}.flag{font-weight:600}.risk{color:#b42318}.gain{color:#027a48}
ol,ul{margin:4px 0 4px 20px;padding:0}table{border-collapse:collapse}
td{padding:2px 10px 2px 0;vertical-align:top}.k{color:#616e7c;white-space:nowrap}
"""
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")  # inline markup; no text starts a line


def _md(text: object) -> str:
    """Markdown-escaped text (names and reasons are data, not markup)."""
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return _MD_SPECIAL.sub(r"\\\1", s.replace("\r", " ").replace("\n", " "))


def _h(text: object) -> str:
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    return html.escape(s, quote=True)


def _money(x: float) -> str:
    if x is None or pd.isna(x):
        return "unknown"
    if abs(x) >= 1e6:
        return f"${x / 1e6:,.1f}M"
    return f"${x / 1000:,.0f}k" if abs(x) >= 10_000 else f"${x:,.0f}"


def _split(text: object, sep: str = LIST_SEP) -> list[str]:
    if not isinstance(text, str) or not text:
        return []
    return [t.strip() for t in text.split(sep) if t.strip()]


def _sections(r: Any) -> list[tuple[str, list[str]]]:
    """The lists shown for one flag: risk reasons only when at risk, growth when ready."""
    return [
        ("Why at risk", _split(r.risk_reasons) if r.at_risk else []),
        ("Working well", _split(r.strengths)),
        ("Why it could expand", _split(r.expansion_reasons) if r.expansion_ready else []),
        ("Data gaps", _split(r.data_gaps, "; ")),
        ("What changed since last week", _split(r.what_changed)),
    ]


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _headline(flags: pd.DataFrame) -> str:
    """ "N accounts to act on: k at risk (expected loss ... on these k: $X), m ready."""
    n_risk = int(flags["at_risk"].sum())
    n_ready = int(flags["expansion_ready"].sum())
    loss = float(flags.loc[flags["at_risk"], "expected_arr_loss_usd"].sum())
    risk = f"{n_risk} at risk"
    if n_risk:
        risk += f" (expected ARR loss in the next 60 days on these {n_risk}: {_money(loss)})"
    return f"{_plural(len(flags), 'account')} to act on: {risk}, {n_ready} expansion-ready."


def digest_file_stem(csm_id: object, csm: str) -> str:
    """A safe, unique file name stem for a CSM: letters, digits and dashes plus a hash.

    Parameters
    ----------
    csm_id : str or None
        The CSM's id (preferred: stable across renames).
    csm : str
        The CSM's display name, used when there is no id.

    Returns
    -------
    str
        ``digest-<slug>-<8 hex digits of the id's SHA-256>``.

    Examples
    --------
    >>> digest_file_stem("csm/01", "Ann")
    'digest-csm-01-64efe86c'
    """
    raw = str(csm_id) if csm_id is not None and not pd.isna(csm_id) else csm
    slug = re.sub(r"[^A-Za-z0-9]+", "-", raw).strip("-")[:40] or "csm"
    return f"digest-{slug}-{hashlib.sha256(raw.encode()).hexdigest()[:8]}"


def _steps(text: object) -> list[str]:
    if not isinstance(text, str) or not text:
        return []
    return [re.sub(r"^\d+\.\s*", "", t) for t in text.split(" / ")]


def digest_markdown(csm: str, flags: pd.DataFrame, as_of: date, *, report: str = "") -> str:
    """The Markdown digest of one CSM.

    Parameters
    ----------
    csm : str
        The CSM's display name.
    flags : DataFrame
        Their rows of `evaluation.actions.weekly_flags`.
    as_of : date
        Scoring date (the week of the digest).
    report : str
        Name or link of the full report, shown when given.

    Returns
    -------
    str
        Markdown, every name and reason escaped.
    """
    lines = [
        f"# Weekly flags for {_md(csm)}, week of {as_of.isoformat()}",
        "",
        _md(_headline(flags)),
    ]
    if report:
        lines.append(f"Full report: {_md(report)}")
    for i, r in enumerate(flags.itertuples(index=False), 1):
        lines += [
            "",
            f"## {i}. {_md(r.name)} ({_md(r.flag)})",
            "",
            f"- Churn probability {r.churn_probability_pct:.1f}%, expansion probability "
            f"{r.expansion_probability_pct:.1f}%, ARR {_money(r.arr_usd)}",
            f"- Play: **{_md(r.play)}** ({_md(r.play_why)}); owner {_md(r.owner)}; "
            f"due {_md(r.due_date)}",
        ]
        steps = _steps(r.steps)
        if steps:
            lines.append("- Steps: " + "; ".join(f"{j}) {_md(s)}" for j, s in enumerate(steps, 1)))
        if isinstance(r.success_measure, str) and r.success_measure:
            lines.append(f"- Success: {_md(r.success_measure)}")
        for label, items in _sections(r):
            if items:
                lines.append(f"- {label}: " + " / ".join(_md(t) for t in items))
    return "\n".join(lines) + "\n"


def digest_html(csm: str, flags: pd.DataFrame, as_of: date, *, report: str = "") -> str:
    """The self-contained HTML digest of one CSM (no script, no network access).

    Parameters
    ----------
    csm : str
        The CSM's display name.
    flags : DataFrame
        Their rows of `evaluation.actions.weekly_flags`.
    as_of : date
        Scoring date (the week of the digest).
    report : str
        Name or link of the full report, shown when given.

    Returns
    -------
    str
        An HTML document, every text escaped.
    """
    cards = []
    for i, r in enumerate(flags.itertuples(index=False), 1):
        cls = "risk" if r.at_risk else "gain"
        rows = [
            ("Probability", f"churn {r.churn_probability_pct:.1f}% · expansion "
             f"{r.expansion_probability_pct:.1f}% · ARR {_money(r.arr_usd)}"),
            ("Play", f"{r.play} ({r.play_why})"),
            ("Owner", r.owner),
            ("Due", r.due_date),
            ("Success", r.success_measure),
        ]  # fmt: skip
        body = "".join(
            f'<tr><td class="k">{_h(k)}</td><td>{_h(v)}</td></tr>'
            for k, v in rows
            if isinstance(v, str) and v
        )
        steps = _steps(r.steps)
        lists = ""
        if steps:
            lists += "<b>Steps</b><ol>" + "".join(f"<li>{_h(s)}</li>" for s in steps) + "</ol>"
        for label, items in _sections(r):
            if items:
                lists += (
                    f"<b>{_h(label)}</b><ul>"
                    + "".join(f"<li>{_h(t)}</li>" for t in items)
                    + "</ul>"
                )
        cards.append(
            f'<section class="card"><h2>{i}. {_h(r.name)} '
            f'<span class="flag {cls}">{_h(r.flag)}</span></h2>'
            f'<div class="sub">{_h(r.account_id)} · {_h(r.segment)}</div>'
            f"<table>{body}</table>{lists}</section>"
        )
    link = f'<p class="sub">Full report: {_h(report)}</p>' if report else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Weekly flags for {_h(csm)} · {as_of.isoformat()}</title>"
        f"<style>{_CSS}</style></head><body>"
        f'<h1 id="digest-title">Weekly flags for {_h(csm)}</h1>'
        f'<p class="sub">Week of {as_of.isoformat()} · {_h(_headline(flags))}</p>{link}'
        + "".join(cards)
        + "</body></html>"
    )


def write_digests(
    flags: pd.DataFrame, directory: str | Path, as_of: date, *, report: str = ""
) -> list[Path]:
    """One ``.html`` and one ``.md`` digest per CSM of `flags` into `directory`.

    Parameters
    ----------
    flags : DataFrame
        `evaluation.actions.weekly_flags` of the run.
    directory : str or Path
        Where the files go (created if needed); each file is written to a temporary
        sibling and renamed.
    as_of : date
        Scoring date.
    report : str
        Name or link of the full report, shown in each digest when given.

    Returns
    -------
    list of Path
        The written files, per CSM (sorted by name) the ``.html`` then the ``.md``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for csm, rows in flags.groupby("csm", sort=True, dropna=False):
        stem = digest_file_stem(rows["csm_id"].iloc[0], str(csm))
        for suffix, text in (
            (".html", digest_html(str(csm), rows, as_of, report=report)),
            (".md", digest_markdown(str(csm), rows, as_of, report=report)),
        ):
            path = directory / f"{stem}{suffix}"
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(path)
            written.append(path)
    return written
