"""Calibrators and alert thresholds fitted on matured outcomes: the quarterly calibration
and the refit that keeps them in step with a new champion (training or `nrrcast promote`).

The window is the scores whose 60-day outcome matured during the quarter before the one
the thresholds take effect in. Scores issued and stored by the weekly scoring flow are
used as issued; weeks that were never scored (a new deployment) are backfilled by scoring
the point-in-time features of those dates with the champion models. This module imports
no flow.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from evaluation import scores_store
from features.errors import StateError
from features.source_reads import csm_count
from flows.config import Config
from flows.tasks import LoadedSource, build_features

log = logging.getLogger("nrrcast.calibrate")


def default_quarter(data_end: date) -> str:
    """The quarter in which the last day of the data falls: thresholds for it."""
    return str(pd.Period(pd.Timestamp(data_end) - pd.Timedelta(days=1), freq="Q"))


def window_dates(quarter: str, horizon_days: int, data_end: date) -> list[date]:
    """Weekly scoring dates (Mondays) whose outcome matured in the quarter before `quarter`."""
    from evaluation.thresholds import quarter_bounds
    from features.snapshots import observation_dates

    start, _ = quarter_bounds(quarter)
    prev_start, _ = quarter_bounds(str(pd.Period(start, freq="Q") - 1))
    first = (prev_start - pd.Timedelta(days=horizon_days)).date()
    last = (start - pd.Timedelta(days=horizon_days + 1)).date()
    last = min(last, data_end - timedelta(days=horizon_days))
    if last < first:
        raise StateError(
            f"{quarter}: no outcome of the previous quarter has matured by {data_end} "
            f"(horizon {horizon_days} d)",
            hint="calibrate an earlier quarter (--quarter)",
        )
    return observation_dates(first, last, "weekly")


@task(name="window-scores", cache_policy=NO_CACHE)
def window_scores(
    loaded: LoadedSource, dates: list[date], models: dict, cfg: Config
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Scores of the window with outcomes: stored ones as issued, missing weeks backfilled."""
    table = build_features.fn(loaded, dates, cfg.features)
    out = table[["account_id", "as_of", "csm_id", "label_churn", "label_expand"]].copy()
    for target, model in models.items():
        raw = model.predict_raw(table)
        out[f"p_{target}_raw"] = raw
        out[f"p_{target}"] = model.calibrator_.predict(raw)
    issued = scores_store.read_scores(cfg.paths.scores)
    backfilled = len(out)
    if not issued.empty:
        keep = ["account_id", "as_of", "p_churn", "p_expand"]
        keep += [c for c in ("at_risk", "holdout") if c in issued.columns]
        issued = issued[keep].assign(
            as_of=lambda d: pd.to_datetime(d["as_of"]).astype("datetime64[us]")
        )
        merged = out.merge(issued, on=["account_id", "as_of"], how="left", suffixes=("", "_issued"))
        have = merged["p_churn_issued"].notna()
        for target in ("churn", "expand"):
            merged.loc[have, f"p_{target}"] = merged.loc[have, f"p_{target}_issued"]
        out = merged.drop(columns=["p_churn_issued", "p_expand_issued"])
        backfilled = int((~have).sum())
    return out, table, backfilled


def fit_thresholds(
    cfg: Config,
    loaded: LoadedSource,
    models: dict[str, Any],
    versions: dict[str, str],
    quarter: str,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, int]:
    """Calibrators and thresholds for `quarter` fitted on the matured outcomes of `models`.

    Returns
    -------
    data : the thresholds file's content (with ``model_versions``),
    scores : the window's account-weeks with outcomes, table : their features,
    backfilled : account-weeks that were never scored and were scored now.
    """
    from evaluation.thresholds import calibrate_thresholds
    from evaluation.thresholds_file import load_latest_thresholds

    dates = window_dates(quarter, cfg.features.horizon_days, loaded.data_end)
    scores, table, backfilled = window_scores.fn(loaded, dates, models, cfg)
    if backfilled:
        log.info(
            "%d of %d account-weeks were never scored: backfilled with the models",
            backfilled,
            len(scores),
        )
    previous = load_latest_thresholds(cfg.paths.thresholds_dir)
    if previous is not None and previous.get("quarter") == quarter:
        previous = previous.get("previous")
    n_csms = csm_count(loaded.source.con)
    result = calibrate_thresholds(
        scores,
        quarter=quarter,
        horizon_days=cfg.features.horizon_days,
        previous=previous,
        n_csms=int(n_csms) or None,
        config=cfg.evaluation.thresholds,
    )
    data = result.as_dict()
    data["model_versions"] = dict(versions)
    data["window"] = {**data.get("window", {}), "backfilled_account_weeks": backfilled}
    return data, scores, table, backfilled


def current_thresholds(cfg: Config) -> dict[str, Any] | None:
    """The latest thresholds file, or None before the first calibration."""
    from evaluation.thresholds_file import load_latest_thresholds

    return load_latest_thresholds(cfg.paths.thresholds_dir)


def refit_for_promotion(
    cfg: Config,
    loaded: LoadedSource,
    models: dict[str, Any],
    versions: dict[str, str],
    reason: str,
    *,
    write: bool = True,
) -> tuple[dict[str, Any], Path | None] | None:
    """Refit the calibrators and thresholds in force for new champions (and write them).

    Scoring applies the quarterly calibrator only to the model versions it was fitted
    for; without this a new champion would be scored with the old thresholds on its own
    calibration and the flag volumes would jump. Returns None when no thresholds file is
    in force yet (nothing to keep in step); raises ValueError or StateError when the
    matured outcomes do not allow a refit (the caller then keeps the old champion).
    With ``write=False`` the caller writes the data later (`write_refit`), e.g. once the
    new versions exist.
    """
    if current_thresholds(cfg) is None:
        return None
    quarter = default_quarter(loaded.data_end)
    data, _, _, _ = fit_thresholds(cfg, loaded, models, versions, quarter)
    data["refit_reason"] = reason
    return data, write_refit(data, cfg) if write else None


def write_refit(data: dict[str, Any], cfg: Config) -> Path:
    """Write refit thresholds (``configs/thresholds/<quarter>.yaml``) and say so."""
    from evaluation.thresholds_file import thresholds_to_yaml

    path = thresholds_to_yaml(data, cfg.paths.thresholds_dir)
    log.info(
        "%s: thresholds refit for model versions %s (%s): churn %.3f, expansion %.3f -> %s",
        data["quarter"], data["model_versions"], data.get("refit_reason"),
        data["churn_threshold"], data["expand_threshold"], path,
    )  # fmt: skip
    return path
