"""Score a feature snapshot: predict, calibrate, explain and segment, partition by partition.

Prediction and explanation work on independent partitions of accounts (they could run
on separate workers); only the coverage allocation, which shares high-touch capacity
across the whole book, runs once on the combined result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from models.explain import explain, reasons_json
from models.reason_context import add_context, data_gaps, probability_points
from models.segment import SegmentConfig, segment

log = logging.getLogger("nrrcast.scoring")

Calibrate = Callable[[np.ndarray], np.ndarray]
PartitionRunner = Callable[
    [pd.DataFrame, Mapping[str, Any], Mapping[str, Calibrate], int],
    tuple[pd.DataFrame, pd.DataFrame],
]
CONTEXT = (
    "account_id",
    "as_of",
    "csm_id",
    "coverage",
    "name",
    "tam_usd",
    "arr",
    "whitespace",
    "maturity_stage",
    "maturity_level",
    "csm_capacity",
)


class FeatureMismatchError(ValueError):
    """The model expects features the snapshot does not have."""


@dataclass(frozen=True)
class ScoredBook:
    """The scores table and the long reason-code frame behind its ``reasons_json``."""

    scores: pd.DataFrame
    reasons: pd.DataFrame


def check_features(models: Mapping[str, Any], table: pd.DataFrame) -> list[str]:
    """The union of the models' features; raise naming every one the table lacks.

    Parameters
    ----------
    models : mapping of target -> model with ``feature_names_in_``
    table : DataFrame
        The snapshot to score.

    Returns
    -------
    list of str
        Feature names in first-seen order.

    Raises
    ------
    FeatureMismatchError
        Naming the target and the missing features.
    """
    needed: list[str] = []
    for target, model in models.items():
        names = list(getattr(model, "feature_names_in_", []))
        missing = [c for c in names if c not in table.columns]
        if missing:
            raise FeatureMismatchError(
                f"the {target} model needs {len(missing)} feature(s) the snapshot lacks: "
                f"{missing[:20]}{' ...' if len(missing) > 20 else ''}; retrain the model on "
                "the current feature set or rebuild features with the model's version"
            )
        needed.extend(n for n in names if n not in needed)
    return needed


def _predict_partition(
    part: pd.DataFrame,
    models: Mapping[str, Any],
    calibrators: Mapping[str, Calibrate],
    top_k: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    out = part[[c for c in CONTEXT if c in part.columns]].copy()
    # the quarterly calibrator where one is in force, else the model's own
    calibrate = {t: calibrators.get(t) or m.calibrator_.predict for t, m in models.items()}
    for target, model in models.items():
        raw = model.predict_raw(part)
        out[f"p_{target}_raw"] = raw
        out[f"p_{target}"] = calibrate[target](raw)
    codes = explain(dict(models), part, top_k=top_k, ids=part["account_id"].to_numpy())
    frame = codes.frame
    # contributions in probability points of the issued probability (log-odds kept aside)
    frame["contribution_log_odds"] = frame["contribution"].to_numpy(dtype=np.float64)
    points = np.zeros(len(frame))
    target_of = frame["target"].astype(str).to_numpy()
    for target in models:
        rows = np.flatnonzero(target_of == target)
        if len(rows) == 0:
            continue
        raw = out[f"p_{target}_raw"].to_numpy(dtype=np.float64)[codes.rows[rows]]
        points[rows] = probability_points(
            frame["contribution_log_odds"].to_numpy()[rows], raw, calibrate[target]
        )
    frame["contribution"] = points
    return out, frame


def _checked_calibrators(
    models: Mapping[str, Any], calibrators: Mapping[str, Calibrate] | None
) -> dict[str, Calibrate]:
    """The calibrators that replace the models' own, for known targets; every model needs one."""
    out = dict(calibrators or {})
    unknown = sorted(set(out) - set(models))
    if unknown:
        raise ValueError(f"calibrators for unknown targets {unknown}; models are {sorted(models)}")
    for target, model in models.items():
        if target not in out and getattr(model, "calibrator_", None) is None:
            raise ValueError(f"the {target} model has no calibrator: pass one in `calibrators`")
    return out


def score_snapshot(
    table: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    churn_threshold: float,
    expand_threshold: float,
    versions: Mapping[str, str] | None = None,
    calibrators: Mapping[str, Calibrate] | None = None,
    segment_config: SegmentConfig | None = None,
    top_k: int = 3,
    partition_rows: int = 100_000,
    progress: bool = True,
    previous: pd.DataFrame | None = None,
    partitions: PartitionRunner | None = None,
) -> ScoredBook:
    """The scores table for one as_of.

    Parameters
    ----------
    table : feature rows of one as_of (``features.build.build_feature_table``), plus an
        optional ``name`` column.
    models : {'churn': model, 'expand': model}, fitted `OutcomeClassifier` (or any model with
        ``predict_raw``, ``calibrator_``, ``booster_`` and ``feature_names_in_``).
    churn_threshold, expand_threshold : alert thresholds in force.
    versions : model version per target, copied into the scores.
    calibrators : per target, a function raw -> calibrated probability that replaces the
        model's own calibrator (the quarterly recalibration); missing targets use the model's.
    segment_config : segmenter settings.
    top_k : reason codes kept per target and direction.
    partition_rows : accounts per partition for prediction and explanation.
    previous : feature rows of the same accounts four weeks earlier (optional): reasons
        then compare each value with the account's own previous period.

    Reasons carry ``contribution`` in probability points of the issued probability
    (fraction; ``contribution_log_odds`` keeps the SHAP value), a ``state`` (good / bad /
    neutral) and a comparison with the previous period and the segment median in the
    sentence; missing values are never drivers but listed in the ``data_gaps`` column.
    partitions : runs the partitions elsewhere, e.g. ``models.spark_scoring.SparkPartitions``
        (called with the frame, models, calibrators and top_k; returns the predictions and
        reasons in the frame's order). None runs them here, `partition_rows` at a time.

    Returns
    -------
    ScoredBook
        The scores table (one row per account, in the snapshot's order) and the long
        reason-code frame.
    """
    if table.empty:
        raise ValueError("no accounts to score: the snapshot is empty")
    missing_dates = int(table["as_of"].isna().sum())
    if missing_dates:
        raise ValueError(f"snapshot: {missing_dates} rows have no as_of")
    if table["as_of"].nunique(dropna=False) != 1:
        raise ValueError(f"score one as_of at a time, got {table['as_of'].nunique()} dates")
    duplicated = int(table["account_id"].duplicated().sum())
    if duplicated:
        raise ValueError(f"snapshot: {duplicated} duplicate account_id rows")
    if {"churn", "expand"} - set(models):
        raise ValueError(f"need churn and expand models, got {sorted(models)}")
    calibrators = _checked_calibrators(models, calibrators)
    check_features(models, table)
    frame = table.reset_index(drop=True)
    if partitions is not None:
        predictions, reason_frame = partitions(frame, models, calibrators, top_k)
    else:
        parts = range(0, len(frame), partition_rows)
        scored, reasons = [], []
        for start in tqdm(parts, desc="scoring partitions", disable=not progress or len(parts) < 2):
            s, r = _predict_partition(
                frame.iloc[start : start + partition_rows], models, calibrators, top_k
            )
            scored.append(s)
            reasons.append(r)
        predictions = pd.concat(scored, ignore_index=True)
        reason_frame = pd.concat(reasons, ignore_index=True)
        del scored, reasons  # the partitions and their concatenation need not coexist
    for target in ("churn", "expand"):
        predictions[f"model_version_{target}"] = str((versions or {}).get(target, ""))
    scores = segment(
        predictions,
        reason_frame,
        segment_config,
        churn_threshold=churn_threshold,
        expand_threshold=expand_threshold,
        reasons_json=False,  # built once below, after the reasons get their context
    )
    for target in ("churn", "expand"):
        scores[f"p_{target}_raw"] = predictions[f"p_{target}_raw"].to_numpy()
    seg_of_row = scores.set_index("account_id")["segment"].reindex(frame["account_id"])
    reason_frame = add_context(reason_frame, frame, seg_of_row.to_numpy(), previous=previous)
    scores["reasons_json"] = reasons_json(reason_frame, scores["account_id"]).array
    gaps = data_gaps(frame, check_features(models, frame))
    scores["data_gaps"] = (
        pd.Series(gaps.to_numpy(), index=frame["account_id"]).reindex(scores["account_id"]).array
    )
    return ScoredBook(scores=scores, reasons=reason_frame)
