"""How the report writes money, shares, changes and names, in Python and in its templates.

One set of rules for the whole page: the portfolio tables, the charts' labels and the
Territories section all format through here (the browser code mirrors ``money``/``pct``/
``pts`` for what it draws). Labels of segments and coverage levels come from
:mod:`features.names`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from features.names import COVERAGE_LABELS, SEGMENT_LABELS

ASSETS_DIR = Path(__file__).with_name("assets")
"""Templates, CSS and the browser code of the report (package data)."""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def money(value: Any, signed: bool = False) -> str:
    """Compact US dollars for people: $1.2M, $350k, $900.

    Parameters
    ----------
    value : number or None
        Amount in USD.
    signed : bool
        Prefix positive amounts with ``+`` (for changes).

    Returns
    -------
    str
        The amount, or ``'—'`` when missing or not finite.

    Examples
    --------
    >>> money(1_234_567), money(35_000), money(-900), money(1500, signed=True), money(None)
    ('$1.2M', '$35k', '-$900', '+$1.5k', '—')
    """
    if _missing(value):
        return "—"
    v = float(value)
    sign = "-" if v < 0 else ("+" if signed and v > 0 else "")
    a = abs(v)
    if a >= 1e9:
        body = f"{a / 1e9:.1f}B"
    elif a >= 1e6:
        body = f"{a / 1e6:.1f}M"
    elif a >= 1e4:
        body = f"{a / 1e3:.0f}k"
    elif a >= 1e3:
        body = f"{a / 1e3:.1f}k"
    else:
        body = f"{a:.0f}"
    return f"{sign}${body}"


def pct(value: Any, digits: int = 1) -> str:
    """A ratio as a percentage.

    Parameters
    ----------
    value : number or None
        Ratio (0.25 means 25%).
    digits : int
        Decimals shown.

    Returns
    -------
    str
        E.g. ``'25.0%'``; ``'—'`` when missing.

    Examples
    --------
    >>> pct(0.25), pct(1.053, 0), pct(float("nan"))
    ('25.0%', '105%', '—')
    """
    if _missing(value):
        return "—"
    return f"{float(value) * 100:.{digits}f}%"


def pts(value: Any) -> str:
    """Change of a probability in percentage points, signed.

    Parameters
    ----------
    value : number or None
        Change of a probability (0.031 means 3.1 points).

    Returns
    -------
    str
        E.g. ``'+3.1 pts'``; ``'—'`` when missing.

    Examples
    --------
    >>> pts(0.031), pts(-0.2)
    ('+3.1 pts', '-20.0 pts')
    """
    if _missing(value):
        return "—"
    return f"{float(value) * 100:+.1f} pts"


def label(value: Any, labels: Mapping[str, str]) -> str:
    """The display label of a name, or the name with spaces for underscores when unlisted.

    Parameters
    ----------
    value : str or None
        A name (segment, coverage level...).
    labels : mapping of str to str
        Name -> label, e.g. :data:`features.names.SEGMENT_LABELS`.

    Returns
    -------
    str
        The label; ``'—'`` for None.

    Examples
    --------
    >>> label("high_touch", COVERAGE_LABELS), label("white_glove", COVERAGE_LABELS)
    ('High touch', 'white glove')
    """
    if value is None:
        return "—"
    return labels.get(str(value), str(value).replace("_", " "))


def short_label(text: str) -> str:
    """A feature's name without its definition (the part before ``':'``).

    Parameters
    ----------
    text : str
        A feature label such as ``"Seat use: share of seats active in 30 days."``.

    Returns
    -------
    str
        ``"Seat use"``.
    """
    return str(text).split(":")[0].rstrip(".")


def account_href(account_id: Any) -> str:
    """The in-page link to an account's page (the id percent-encoded).

    Parameters
    ----------
    account_id : object
        The account id.

    Returns
    -------
    str
        ``#account/<id>``, which the browser code routes to the account page.

    Examples
    --------
    >>> account_href("acme/eu 1")
    '#account/acme%2Feu%201'
    """
    return "#account/" + quote(str(account_id), safe="")


def _num1(value: Any) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.1f}"


def environment() -> Environment:
    """The Jinja environment of the report's templates: autoescaped, strict, with filters.

    Returns
    -------
    Environment
        Loads from :data:`ASSETS_DIR`; filters ``money``, ``pct``, ``pts``, ``segment``,
        ``coverage`` (``'—'`` for None), ``tier`` (a coverage level, the raw value when
        unlisted), ``num``, ``num1`` and ``num2``.
    """
    env = Environment(
        loader=FileSystemLoader(str(ASSETS_DIR)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=money,
        pct=pct,
        pts=pts,
        segment=lambda v: label(v, SEGMENT_LABELS),
        coverage=lambda v: label(v, COVERAGE_LABELS),
        tier=lambda v: COVERAGE_LABELS.get(v, v or "—"),
        num=lambda v: f"{int(v):,}" if v is not None else "—",
        num1=_num1,
        num2=lambda v: f"{float(v):,.2f}" if v is not None and math.isfinite(float(v)) else "—",
    )
    return env
