"""Geometry of the report's server-drawn SVG charts: the ARR bridge, the NRR trend, CSM loads.

Each function returns numbers and labels only (coordinates rounded to 0.1 px, labels
formatted by :mod:`evaluation.report.format`); the templates turn them into ``<svg>``
elements, so no markup is built from data here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from evaluation.report.format import money, pct


def bridge_chart(row: pd.Series, width: int = 560, height: int = 260) -> dict[str, Any]:
    """Waterfall from start ARR to retained (and ending) ARR of one period, in USD.

    Parameters
    ----------
    row : Series
        One prepared NRR period (start, expansion, contraction, churned, optional new ARR).
    width, height : int
        Size of the SVG viewBox.

    Returns
    -------
    dict
        ``bars`` (position, class, label, value), ``ticks`` and the axis geometry, with
        the period's ``nrr`` and ``grr``.
    """
    start = float(row["start_arr"])
    steps = [
        ("Start", start, "total"),
        ("Expansion", float(row["expansion_arr"]), "up"),
        ("Contraction", -abs(float(row["contraction_arr"])), "down"),
        ("Churned", -abs(float(row["churned_arr"])), "down"),
    ]
    retained = start + sum(v for _, v, k in steps[1:])
    steps.append(("Retained", retained, "total"))
    new = row.get("new_arr")
    if new is not None and not pd.isna(new) and float(new) != 0:
        steps.append(("New logos", float(new), "new"))
        steps.append(("End", retained + float(new), "total"))
    left, right, top, bottom = 64, 12, 24, 36
    plot_h = height - top - bottom
    level, lo, hi = 0.0, 0.0, 0.0
    spans = []
    for label, value, kind in steps:
        a, b = (0.0, value) if kind == "total" else (level, level + value)
        level = value if kind == "total" else level + value
        spans.append((label, value, kind, a, b))
        lo, hi = min(lo, a, b), max(hi, a, b)
    hi = hi * 1.08 or 1.0
    scale = plot_h / (hi - lo or 1.0)

    def y(v: float) -> float:
        return top + (hi - v) * scale

    slot = (width - left - right) / len(spans)
    bars = []
    for i, (label, value, kind, a, b) in enumerate(spans):
        x = left + i * slot + slot * 0.15
        bars.append(
            {
                "x": round(x, 1),
                "y": round(min(y(a), y(b)), 1),
                "w": round(slot * 0.7, 1),
                "h": round(max(abs(y(a) - y(b)), 1.0), 1),
                "cls": kind,
                "label": label,
                "value": money(value, signed=kind in {"up", "down", "new"}),
                "label_x": round(x + slot * 0.35, 1),
                "value_y": round(min(y(a), y(b)) - 6, 1),
            }
        )
    ticks = [{"y": round(y(v), 1), "label": money(v)} for v in _nice_ticks(lo, hi, 4)]
    return {
        "width": width,
        "height": height,
        "bars": bars,
        "ticks": ticks,
        "left": left,
        "right": width - right,
        "axis_y": round(height - bottom + 16, 1),
        "period": str(row["period"]),
        "nrr": float(row["nrr"]),
        "grr": float(row["grr"]),
    }


def trend_chart(nrr: pd.DataFrame, width: int = 560, height: int = 260) -> dict[str, Any]:
    """NRR and GRR per period as two lines around a 100% reference.

    Parameters
    ----------
    nrr : DataFrame
        Prepared NRR periods, in order.
    width, height : int
        Size of the SVG viewBox.

    Returns
    -------
    dict
        Polyline ``points`` and ``dots`` for ``nrr`` and ``grr``, the 100% reference
        ``ref_y``, ``ticks`` and period ``xlabels``.
    """
    left, right, top, bottom = 48, 34, 20, 36
    vals = np.concatenate([nrr["nrr"].to_numpy(float), nrr["grr"].to_numpy(float), [1.0]])
    vals = vals[np.isfinite(vals)]
    lo, hi = float(vals.min()), float(vals.max())
    pad = max((hi - lo) * 0.15, 0.02)
    lo, hi = lo - pad, hi + pad
    n = len(nrr)
    xs = np.linspace(left, width - right, n) if n > 1 else np.array([(left + width - right) / 2])

    def y(v: np.ndarray) -> np.ndarray:
        return top + (hi - v) / (hi - lo) * (height - top - bottom)

    def line(col: str) -> dict[str, Any]:
        ys = y(nrr[col].to_numpy(float))
        ok = np.isfinite(ys)
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(xs[ok], ys[ok], strict=True))
        dots = [
            {"x": round(float(a), 1), "y": round(float(b), 1), "label": pct(v), "period": p}
            for a, b, v, p in zip(xs[ok], ys[ok], nrr[col][ok], nrr["period"][ok], strict=True)
        ]
        return {"points": pts, "dots": dots}

    step = max(1, math.ceil(n / 8))
    xlabels = [
        {"x": round(float(xs[i]), 1), "label": str(nrr["period"].iloc[i])}
        for i in range(0, n, step)
    ]
    return {
        "width": width,
        "height": height,
        "nrr": line("nrr"),
        "grr": line("grr"),
        "ref_y": round(float(y(np.array([1.0]))[0]), 1),
        "left": left,
        "right": width - right,
        "ticks": [
            {"y": round(float(y(np.array([v]))[0]), 1), "label": pct(v)}
            for v in _nice_ticks(lo, hi, 4)
        ],
        "xlabels": xlabels,
        "axis_y": height - bottom + 18,
    }


def load_chart(loads: pd.DataFrame, width: int = 560, height: int = 220) -> dict[str, Any]:
    """Load per CSM (ordered by load before), before and after, as SVG polylines.

    Parameters
    ----------
    loads : DataFrame
        One row per CSM with ``csm_id``, ``load_before`` and ``load_after``.
    width, height : int
        Size of the SVG viewBox.

    Returns
    -------
    dict
        Polyline points ``before`` and ``after``, ``ticks``, axis geometry and ``n`` CSMs.
    """
    ld = loads.sort_values(["load_before", "csm_id"], ascending=[False, True])
    before = ld["load_before"].to_numpy(np.float64)
    after = ld["load_after"].to_numpy(np.float64)
    n = len(ld)
    left, right, top, bottom = 44, width - 10, 12, height - 26
    hi = float(max(before.max(initial=0.0), after.max(initial=0.0), 1e-9)) * 1.05
    xs = np.linspace(left, right, n) if n > 1 else np.array([(left + right) / 2])

    def y(v: np.ndarray) -> np.ndarray:
        return bottom - (bottom - top) * v / hi

    def points(v: np.ndarray) -> str:
        return " ".join(f"{x:.1f},{yy:.1f}" for x, yy in zip(xs, y(v), strict=True))

    ticks = [{"y": round(float(y(np.array([t]))[0]), 1), "label": f"{t:g}"}
             for t in np.linspace(0, hi / 1.05, 5).round(1)]  # fmt: skip
    return {
        "width": width,
        "height": height,
        "left": left,
        "right": right,
        "axis_y": height - 8,
        "ticks": ticks,
        "before": points(before),
        "after": points(after),
        "n": n,
    }


def _nice_ticks(lo: float, hi: float, n: int) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]
