"""Scoring flow: champion models + latest thresholds -> scores, reasons, segments, report.

Writes are atomic and idempotent per as_of (see `evaluation.scores_store`); every run is an
MLflow run with a summary (counts per segment, ARR at risk, drift).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from evaluation import scores_store
from features.data_end import parse_day
from features.errors import InputError
from features.freshness import check_freshness, check_mode, source_key
from features.source_reads import account_names, first_event_ts, optional_csms, subscriptions
from flows import tracking
from flows.config import EXPERIMENT, Config, engine_overrides, load_config
from flows.tasks import (
    LoadedSource,
    build_features,
    drift_against_training,
    load_and_validate,
    load_champions,
    validation_args,
)
from flows.territory_step import log_run, read_roster, rebalance_step

log = logging.getLogger("nrrcast.score")


def thresholds_in_force(
    cfg: Config, versions: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Thresholds and calibrators to apply: the latest quarterly file, else the config fallback.

    A quarterly calibrator is applied only to the model versions it was fitted for.
    """
    from evaluation.thresholds_file import load_latest_thresholds
    from models.portable import ParamCalibrator

    found = load_latest_thresholds(cfg.paths.thresholds_dir)
    if found is None:
        log.warning(
            "no thresholds file in %s: using the configured fallback thresholds "
            "(run `nrrcast calibrate` once outcomes have matured)",
            cfg.paths.thresholds_dir,
        )
        return {
            "quarter": None,
            "churn_threshold": cfg.scoring.churn_threshold,
            "expand_threshold": cfg.scoring.expand_threshold,
        }, {}
    calibrators: dict[str, Any] = {}
    fitted_for = found.get("model_versions") or {}
    for target, params in (found.get("calibrator") or {}).items():
        if str(fitted_for.get(target)) == versions.get(target):
            calibrators[target] = ParamCalibrator(params).predict
        else:
            log.warning(
                "thresholds %s: the %s calibrator was fitted for model version %s, champion is %s; "
                "using the model's own calibration",
                found["quarter"], target, fitted_for.get(target), versions.get(target),
            )  # fmt: skip
    return found, calibrators


def _features_now_and_before(
    loaded: LoadedSource, day: date, cfg: Config
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Features as of `day` and four weeks earlier (reasons compare with the latter)."""
    from models.reason_context import PREVIOUS_DAYS

    before = day - timedelta(days=PREVIOUS_DAYS)
    try:
        both = build_features(loaded, [before, day], cfg.features)
    except ValueError as exc:  # e.g. `before` precedes the data: compare with the segment only
        log.warning("no features %d days before %s (%s)", PREVIOUS_DAYS, day, exc)
        return build_features(loaded, [day], cfg.features), None
    as_of = pd.to_datetime(both["as_of"])
    now = both[as_of == pd.Timestamp(day)].reset_index(drop=True)
    prev = both[as_of == pd.Timestamp(before)].reset_index(drop=True)
    return now, (prev if len(prev) else None)


def _previous_run(history: pd.DataFrame, day: date) -> pd.DataFrame:
    """Scores of the latest run before `day` (empty when none)."""
    if history.empty:
        return history
    as_of = pd.to_datetime(history["as_of"])
    earlier = as_of < pd.Timestamp(day)
    if not earlier.any():
        return history.iloc[0:0]
    return history[as_of == as_of[earlier].max()]


@task(name="score-snapshot", cache_policy=NO_CACHE)
def score_task(
    table: pd.DataFrame,
    models: dict,
    versions: dict,
    thresholds: dict,
    calibrators: dict,
    cfg: Config,
    previous: pd.DataFrame | None = None,
) -> Any:
    from models.scoring import score_snapshot

    partitions = None
    if cfg.features.engine == "spark":  # the partitions run on the Spark workers
        from features.spark_engine import spark_session
        from models.spark_scoring import SparkPartitions

        spark = spark_session(cfg.features.spark_master, conf=cfg.features.spark_conf)
        partitions = SparkPartitions(spark)
    return score_snapshot(
        table,
        models,
        churn_threshold=float(thresholds["churn_threshold"]),
        expand_threshold=float(thresholds["expand_threshold"]),
        versions=versions,
        calibrators=calibrators,
        segment_config=cfg.segment,
        top_k=cfg.scoring.top_k_reasons,
        partition_rows=cfg.scoring.partition_rows,
        previous=previous,
        partitions=partitions,
    )


def _nrr(loaded: LoadedSource, as_of: date) -> pd.DataFrame:
    from evaluation.nrr import nrr_table

    subs = subscriptions(loaded.source.con)
    first = first_event_ts(loaded.source.con)
    start = pd.Timestamp(first or subs["start_date"].min()).to_period("Q").start_time
    return nrr_table(subs, start=start, end=pd.Timestamp(as_of), freq="Q")


def _summary(scores: pd.DataFrame, drift: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {
        "accounts": len(scores),
        "arr": float(scores["arr"].sum()),
        "at_risk_accounts": int(scores["at_risk"].sum()),
        "at_risk_arr": float(scores.loc[scores["at_risk"], "arr"].sum()),
        "expected_arr_at_risk": float(scores["arr_at_risk"].sum()),
        "expected_arr_to_gain": float(scores["arr_to_gain"].sum()),
        "expansion_ready_accounts": int(scores["expansion_ready"].sum()),
        "coverage_changes": int(
            (scores["coverage_current"] != scores["coverage_recommended"]).sum()
        ),
        "mean_p_churn": float(scores["p_churn"].mean()),
        "mean_p_expand": float(scores["p_expand"].mean()),
    }
    for seg, n in scores["segment"].value_counts().items():
        out[f"segment.{seg}"] = int(n)
    if not drift.empty:
        out["drift.watch"] = int((drift["status"] == "watch").sum())
        out["drift.alert"] = int((drift["status"] == "alert").sum())
    return out


def _rebalance(cfg: Config, loaded: LoadedSource, scores: pd.DataFrame, day: date) -> Any:
    """The optional territory rebalancing step (``territories.run_with_scoring``)."""
    if not cfg.territories.run_with_scoring:
        return None
    from features.renewals import days_to_renewal

    renewals = days_to_renewal(loaded.source.con, day, cfg.features)
    done = rebalance_step(scores, renewals, read_roster(loaded), cfg, day)
    log_run(done)
    return done


HELD_OUT_PLAY = "Held out this week (randomised holdout: no outreach)"


def _hold_out(scores: pd.DataFrame, cfg: Config, day: date) -> pd.DataFrame:
    """Mark a random share of flagged accounts as held out (``scoring.holdout_share``).

    Held-out accounts keep their flags and probabilities (the calibration flow compares
    their outcomes with the worked ones) but their play says not to reach out.
    """
    from models.holdout import assign_holdout

    flagged = scores["at_risk"].to_numpy(bool) | scores["expansion_ready"].to_numpy(bool)
    held = assign_holdout(
        scores["account_id"], flagged, day, share=cfg.scoring.holdout_share,
        seed=cfg.scoring.holdout_seed,
    )  # fmt: skip
    out = scores.assign(holdout=held)
    if held.any():
        out.loc[held, "playbook"] = HELD_OUT_PLAY
        log.info("%d of %d flagged accounts held out (no outreach)", held.sum(), flagged.sum())
    return out


def _check_outputs(cfg: Config, source: Path) -> None:
    """Every place scoring writes to is outside the source, nrrcast's and writable, before
    the work."""
    from features.storage import check_writable, ensure_outside

    scores_store.check_store(cfg.paths.scores, source=source)
    if cfg.scoring.report:
        ensure_outside(cfg.paths.reports, [source])
        check_writable(cfg.paths.reports, "report directory")


def _actions(
    cfg: Config, scores: pd.DataFrame, history: pd.DataFrame, csms: Any, day: date
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Account list and weekly flags (people, plays, what changed); CSV files beside the scores."""
    from evaluation.actions import action_table, weekly_flags, write_exports
    from models.reason_context import changes_since

    changes = changes_since(
        scores, _previous_run(history, day), min_points=cfg.scoring.change_min_points
    )
    actions = action_table(
        scores,
        csms=csms,
        playbook_details=cfg.segment.playbook_details,
        changes=changes,
        as_of=day,
    )
    flags = weekly_flags(actions, max_per_csm=cfg.scoring.digest_max_flags)
    exports = {}
    if cfg.scoring.exports:
        exports = write_exports(actions, flags, Path(cfg.paths.scores) / "exports" / str(day))
    return actions, flags, exports


def last_scored(mlflow_uri: str, experiment: str, key: str) -> tuple[date, str] | None:
    """The latest data end among finished scoring runs of source `key`, with its run id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=(
            f"tags.flow = 'score' AND tags.source_key = '{key}' AND attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    ends = [
        (date.fromisoformat(r.data.tags["data_end"]), r.info.run_id)
        for r in runs
        if r.data.tags.get("data_end")
    ]
    return max(ends) if ends else None


def _scoring_day(as_of: date | None, loaded: LoadedSource) -> date:
    """The date to score: `as_of`, else the end of the data; never after the data's end."""
    day = as_of or loaded.data_end
    if day > loaded.data_end:
        raise InputError(
            f"--as-of {day} is after the end of the data ({loaded.data_end}, from "
            f"{loaded.data_end_from}): nothing is known then",
            hint="score as of the data's end or earlier",
        )
    return day


def _scoring_table(
    loaded: LoadedSource, day: date, cfg: Config
) -> tuple[pd.DataFrame, pd.DataFrame | None, pd.DataFrame | None]:
    """The accounts to score as of `day` (with names and CSM capacity), the same four weeks
    earlier, and the optional csms table."""
    table, previous = _features_now_and_before(loaded, day, cfg)
    if table.empty:
        raise InputError(f"no account has ARR > 0 as of {day} in {loaded.path}: nothing to score")
    table = table.merge(account_names(loaded.source.con), on="account_id", how="left")
    csms = optional_csms(loaded.source.con)
    if csms is not None and "capacity" in csms.columns:
        capacity = csms.drop_duplicates("csm_id").set_index("csm_id")["capacity"]
        table["csm_capacity"] = table["csm_id"].map(capacity).astype("Float64")
    return table, previous, csms


def _with_csm_names(scores: pd.DataFrame, csms: pd.DataFrame | None) -> pd.DataFrame:
    """The scores with each CSM's name, when the source has a csms table."""
    if csms is not None:
        names = csms.drop_duplicates("csm_id").set_index("csm_id")["name"]
        scores["csm_name"] = scores["csm_id"].map(names).astype("string")
    return scores


def _log_scoring(
    day: date, thresholds: dict, versions: dict, drift: pd.DataFrame, scores: pd.DataFrame
) -> None:
    """The run's parameters (date, thresholds, model versions) and its small tables."""
    tracking.log_params(
        {
            "as_of": day,
            "thresholds_quarter": thresholds.get("quarter"),
            **{f"model_version.{k}": v for k, v in versions.items()},
        }
    )
    tracking.log_params(
        {
            "churn_threshold": thresholds["churn_threshold"],
            "expand_threshold": thresholds["expand_threshold"],
        }
    )
    if not drift.empty:
        tracking.log_frame(drift, "drift.csv")
    tracking.log_frame(
        scores["segment"].value_counts().rename_axis("segment").reset_index(), "segments.csv"
    )


def _report(
    cfg: Config,
    loaded: LoadedSource,
    day: date,
    run_id: str,
    book: dict[str, Any],
    versions: dict,
    thresholds: dict,
) -> Path:
    """The HTML report of the run (logged as an artifact). `book` holds the run's frames:
    scores, history, drift, territories, actions and flags."""
    from evaluation.drift import drift_flags
    from evaluation.report import ReportInputs, ReportMeta, write_report
    from features.catalog import CATALOG

    scores, history, drift = book["scores"], book["history"], book["drift"]
    past = (
        history[pd.to_datetime(history["as_of"]) < pd.Timestamp(day)]
        if not history.empty
        else history
    )
    notes = (
        [f"{int((~scores['tam_known']).sum())} accounts have no TAM estimate"]
        if "tam_known" in scores and (~scores["tam_known"]).any()
        else []
    )
    meta = ReportMeta(
        run_id=run_id,
        as_of=day,
        model_versions=versions,
        thresholds={
            "churn": float(thresholds["churn_threshold"]),
            "expand": float(thresholds["expand_threshold"]),
        },
        drift_flags=drift_flags(drift) if not drift.empty else [],
        notes=notes,
        horizon_days=cfg.features.horizon_days,
    )
    inputs = ReportInputs(
        scores=scores,
        history=past[["account_id", "as_of", "p_churn", "p_expand"]] if not past.empty else None,
        nrr=_nrr(loaded, day),
        meta=meta,
        feature_labels={k: v.description for k, v in CATALOG.items()},
        territories=book["territories"],
        actions=book["actions"],
        flags=book["flags"],
        drift=drift if not drift.empty else None,
    )
    report_path = write_report(inputs, Path(cfg.paths.reports) / f"report-{day}.html")
    mlflow.log_artifact(str(report_path), "report")
    return report_path


def _digests(
    cfg: Config, weekly: pd.DataFrame, exports: dict, day: date, report_path: Path | None
) -> None:
    """Each CSM's weekly digest beside the report; digests and exports logged to the run."""
    from evaluation.digest import write_digests

    digests = write_digests(
        weekly,
        Path(cfg.paths.reports) / f"digests-{day}",
        day,
        report=report_path.name if report_path else "",
    )
    mlflow.log_artifacts(str(exports["account_list"].parent), "exports")
    if digests:
        mlflow.log_artifacts(str(digests[0].parent), "digests")


@flow(name="nrrcast-score", log_prints=True)
def score_flow(
    as_of: str | None = None,
    config_path: str | None = None,
    source: str | None = None,
    data_end: str | None = None,
    engine: str | None = None,
    freshness: str | None = None,
) -> dict[str, Any]:
    """Score every active account as of a date (default: the end of the data).

    `freshness` (refuse / warn / off) overrides ``scoring.freshness``: what to do when the
    data's end has not advanced since the last scoring run of the same source.
    """
    cfg = load_config(config_path, engine_overrides(engine))
    mode = check_mode(freshness or cfg.scoring.freshness)  # before anything slow runs
    args = validation_args(cfg, source, data_end)
    _check_outputs(cfg, args["source"])  # fails now, not after the work
    models, versions, runs = load_champions(cfg)
    thresholds, calibrators = thresholds_in_force(cfg, versions)
    day = parse_day(as_of, "--as-of") if as_of else None
    loaded = load_and_validate(**args)
    key = source_key(args["source"])
    if mode != "off":
        check_freshness(loaded.data_end, last_scored(cfg.paths.mlflow_uri, EXPERIMENT, key), mode)
    day = _scoring_day(day, loaded)
    table, previous, csms = _scoring_table(loaded, day, cfg)
    book = score_task(table, models, versions, thresholds, calibrators, cfg, previous)
    scores = _with_csm_names(_hold_out(book.scores, cfg, day), csms)

    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    tags = {
        "flow": "score",
        "as_of": day.isoformat(),
        "data_end": loaded.data_end.isoformat(),  # read by the next run's freshness check
        "data_end_from": loaded.data_end_from,
        "source_key": key,
    }
    with tracking.run(exp, f"score {day}", tags=tags) as active:
        drift = drift_against_training(cfg, runs, table, scores)
        history = scores_store.read_scores(cfg.paths.scores)
        actions, weekly, exports = _actions(cfg, scores, history, csms, day)
        partition = scores_store.write_scores(
            scores,
            cfg.paths.scores,
            day,
            sql_url=cfg.scoring.sql_url,
            lock_timeout=cfg.scoring.lock_timeout_s,
        )
        summary = _summary(scores, drift)
        tracking.log_metrics(summary)
        territories = _rebalance(cfg, loaded, scores, day)
        _log_scoring(day, thresholds, versions, drift, scores)
        report_path = None
        if cfg.scoring.report:
            frames = {"scores": scores, "history": history, "drift": drift,
                      "territories": territories, "actions": actions, "flags": weekly}  # fmt: skip
            report_path = _report(
                cfg, loaded, day, active.info.run_id, frames, versions, thresholds
            )
        if cfg.scoring.exports:
            _digests(cfg, weekly, exports, day, report_path)
    loaded.source.con.close()
    print(
        f"scored {len(scores)} accounts as of {day}: {summary['at_risk_accounts']} at risk "
        f"(${summary['at_risk_arr']:,.0f} ARR), {summary['expansion_ready_accounts']} expansion-ready; "
        f"scores in {partition}" + (f", report {report_path}" if report_path else "")
    )
    return {
        "as_of": day.isoformat(),
        "run_id": active.info.run_id,
        "scores": str(partition),
        "report": str(report_path) if report_path else None,
        **summary,
    }
