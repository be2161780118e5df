"""The names nrrcast speaks in: targets, maturity stages, segments, coverage levels, bands.

Each name is defined here once. Models, evaluation, the simulator and the report's JavaScript
(through the report payload, see :func:`vocabulary`) read them from here, so adding a stage or
a coverage level, or renaming a segment's label, is one edit. Feature definitions live next door
in :mod:`features.catalog`.
"""

from __future__ import annotations

TARGETS: dict[str, tuple[str, str]] = {
    "churn": ("p_churn", "label_churn"),
    "expand": ("p_expand", "label_expand"),
}
"""Each target -> (probability column in the scores, label column in the panel)."""

TARGET_WORDS: dict[str, str] = {"churn": "churn risk", "expand": "expansion likelihood"}
"""How a sentence names what a target's model predicts."""

STAGES: tuple[str, ...] = ("Experimenter", "Builder", "Transformer")
"""AI-maturity stages, least to most mature (index = ``maturity_level``)."""

SEGMENTS: tuple[str, ...] = (
    "accelerate",
    "strategic_partnership",
    "efficient_expansion",
    "prove_value",
)
"""The segmenter's quadrants (TAM x predicted NRR)."""

SEGMENT_LABELS: dict[str, str] = {
    "accelerate": "Accelerate",
    "strategic_partnership": "Strategic partnership",
    "efficient_expansion": "Efficient expansion & advocacy",
    "prove_value": "Prove value in 90 days",
}
SEGMENT_SHORT: dict[str, str] = {
    "accelerate": "Accelerate",
    "strategic_partnership": "Strategic partnership",
    "efficient_expansion": "Efficient expansion",
    "prove_value": "Prove value",
}
HIGH_TAM_SEGMENTS: frozenset[str] = frozenset({"accelerate", "strategic_partnership"})

COVERAGE_LEVELS: tuple[str, ...] = ("digital", "standard", "high_touch")
"""Coverage levels, lightest to heaviest touch (index = rank)."""

COVERAGE_LABELS: dict[str, str] = {
    "digital": "Digital",
    "standard": "Standard",
    "high_touch": "High touch",
}
COVERAGE_RANK: dict[str, int] = {level: i for i, level in enumerate(COVERAGE_LEVELS)}

BANDS: tuple[str, ...] = ("low", "medium", "high")
"""Probability bands, low to high."""


def vocabulary() -> dict[str, object]:
    """All names as plain JSON-ready data, for the report's payload.

    Returns
    -------
    dict
        ``targets``, ``stages``, ``segments``, ``segment_labels``, ``segment_short``,
        ``high_tam_segments``, ``coverage_levels``, ``coverage_labels`` and ``bands``.

    Examples
    --------
    >>> vocabulary()["coverage_levels"]
    ['digital', 'standard', 'high_touch']
    """
    return {
        "targets": {t: {"probability": p, "label": y} for t, (p, y) in TARGETS.items()},
        "stages": list(STAGES),
        "segments": list(SEGMENTS),
        "segment_labels": dict(SEGMENT_LABELS),
        "segment_short": dict(SEGMENT_SHORT),
        "high_tam_segments": sorted(HIGH_TAM_SEGMENTS),
        "coverage_levels": list(COVERAGE_LEVELS),
        "coverage_labels": dict(COVERAGE_LABELS),
        "bands": list(BANDS),
    }


MODELS: tuple[str, ...] = ("lgbm", "logistic", "health")
"""Model ids: calibrated LightGBM, the logistic baseline and the health-score baseline.

They key the training metrics (MLflow metric ``<target>.<model>.<slice>.<metric>``), the
backtest's ``model`` column and thresholds, and ``evaluation.backtest.models`` in the
configuration. ``lgbm_raw`` names LightGBM's scores before calibration."""

MODEL_SUFFIX: dict[str, str] = {
    "lgbm": "",
    "lgbm_raw": "_raw",
    "logistic": "_logistic",
    "health": "_health",
}
"""Model id -> suffix of its probability column (``p_churn`` + suffix)."""
