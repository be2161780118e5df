"""Self-contained HTML report for customer-success leaders, one file per scoring run.

The portfolio page (KPIs, NRR decomposition, TAM x maturity grid, at-risk ARR, coverage
misalignment, top movers, territories) is rendered as HTML tables and inline SVG. The
account list and the per-account pages are drawn in the browser from compact, columnar JSON
embedded in the page, so a book of a few thousand accounts stays a small file. Nothing is
fetched: all CSS, JS and charts are inline and a Content-Security-Policy forbids any
network access.

The package, in the order data flows through it:

- :mod:`~evaluation.report.prepare`: the inputs (dataclasses), their checks, the frames;
- :mod:`~evaluation.report.portfolio`: the portfolio's sections as records;
- :mod:`~evaluation.report.charts`: geometry of the server-drawn SVG charts;
- :mod:`~evaluation.report.format`: money, percentages, labels, the Jinja environment;
- :mod:`~evaluation.report.payload`: the embedded JSON, vocabulary included;
- :mod:`~evaluation.report.territories`: the Territories section from a rebalancing;
- :mod:`~evaluation.report.render`: :func:`render_report` and :func:`write_report`.

Templates, CSS and the browser code are package data in ``assets/``. Names (segments,
stages, coverage levels, bands) come from :mod:`features.names`.
"""

from evaluation.report.prepare import (
    ACTION_COLUMNS,
    HISTORY_COLUMNS,
    NRR_OPTIONAL_COLUMNS,
    NRR_REQUIRED_COLUMNS,
    OPTIONAL_SCORE_COLUMNS,
    REQUIRED_SCORE_COLUMNS,
    NRRPeriod,
    ReportInputs,
    ReportMeta,
    ReportOptions,
)
from evaluation.report.render import render_report, write_report
from evaluation.report.territories import TerritoryReport

__all__ = [
    "ACTION_COLUMNS",
    "HISTORY_COLUMNS",
    "NRR_OPTIONAL_COLUMNS",
    "NRR_REQUIRED_COLUMNS",
    "OPTIONAL_SCORE_COLUMNS",
    "REQUIRED_SCORE_COLUMNS",
    "NRRPeriod",
    "ReportInputs",
    "ReportMeta",
    "ReportOptions",
    "TerritoryReport",
    "render_report",
    "write_report",
]
