"""Scoring flow: champion models + latest thresholds -> scores, reasons, segments, report.

Writes are atomic and idempotent per as_of (see `flows.scores_store`); every run is an
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

from features.data_end import parse_day
from features.errors import InputError
from features.sql_source import source_arg
from flows import scores_store, tracking
from flows.config import Config, engine_overrides, load_config
from flows.freshness import FRESHNESS_MODES, check_freshness, last_scored, source_key
from flows.tasks import TRANSIENT_RETRIES, LoadedSource, build_features, load_and_validate
from flows.train import EXPERIMENT, MODEL_NAMES

log = logging.getLogger("nrrcast.score")


@task(name="load-champions", cache_policy=NO_CACHE, **TRANSIENT_RETRIES)
def load_champions(cfg: Config) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The champion model per target, its version and the run it came from."""
    tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    models, versions, runs = {}, {}, {}
    for target, name in MODEL_NAMES.items():
        model, version = tracking.load_champion(name)
        models[target], versions[target], runs[target] = model, str(version.version), version.run_id
    return models, versions, runs


def thresholds_in_force(
    cfg: Config, versions: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Thresholds and calibrators to apply: the latest quarterly file, else the config fallback.

    A quarterly calibrator is applied only to the model versions it was fitted for.
    """
    from evaluation.thresholds import apply_calibration, load_latest_thresholds

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
            calibrators[target] = lambda p, params=params: apply_calibration(params, p)
        else:
            log.warning(
                "thresholds %s: the %s calibrator was fitted for model version %s, champion is %s; "
                "using the model's own calibration",
                found["quarter"], target, fitted_for.get(target), versions.get(target),
            )  # fmt: skip
    return found, calibrators


def _account_names(loaded: LoadedSource) -> pd.DataFrame:
    return loaded.source.con.execute("SELECT account_id, name FROM accounts").df()


def _csms(loaded: LoadedSource) -> pd.DataFrame | None:
    """The optional csms table (None when the source has none)."""
    try:
        frame = loaded.source.con.execute("SELECT * FROM csms").df()
    except Exception:  # noqa: BLE001  (an optional table may be absent from the source)
        return None
    return frame if len(frame) else None


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


def drift_against_training(
    cfg: Config, runs: dict[str, str], table: pd.DataFrame, scores: pd.DataFrame
) -> pd.DataFrame:
    """PSI of each feature and of the scores: training window of the churn champion vs now."""
    from evaluation.drift import drift_report

    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=runs["churn"], artifact_path="reference/training_window.parquet"
        )
    except Exception as exc:
        log.warning("no training reference for drift (%s)", exc)
        return pd.DataFrame()
    reference = pd.read_parquet(path)
    current = table.copy()
    for col in ("p_churn_raw", "p_expand_raw"):
        current[col] = scores[col].to_numpy()
    columns = [c for c in reference.columns if c != "as_of" and c in current.columns]
    return drift_report(reference, current, columns, config=cfg.evaluation.drift)


def _nrr(loaded: LoadedSource, as_of: date) -> pd.DataFrame:
    from evaluation.nrr import nrr_table

    subs = loaded.source.con.execute(
        "SELECT account_id, start_date, end_date, mrr FROM subscriptions"
    ).df()
    first = loaded.source.con.execute("SELECT min(ts) FROM events").fetchone()[0]
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
    from flows.rebalance import log_run, read_roster, rebalance_step

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
    from evaluation.drift import drift_flags
    from evaluation.report import ReportInputs, ReportMeta, write_report
    from features.catalog import CATALOG

    cfg = load_config(config_path, engine_overrides(engine))
    mode = freshness or cfg.scoring.freshness
    if mode not in FRESHNESS_MODES:  # before anything slow runs
        raise InputError(f"freshness must be one of {FRESHNESS_MODES}, got {mode!r}")
    _check_outputs(cfg, source_arg(source or cfg.paths.raw))  # fails now, not after the work
    models, versions, runs = load_champions(cfg)
    thresholds, calibrators = thresholds_in_force(cfg, versions)
    day = parse_day(as_of, "--as-of") if as_of else None
    src = source_arg(source or cfg.paths.raw)
    loaded = load_and_validate(
        src,
        Path(cfg.paths.quarantine),
        data_end,
        floor=cfg.features.data_floor,
        feature_cfg=cfg.features,
    )
    key = source_key(src)
    if mode != "off":
        check_freshness(loaded.data_end, last_scored(cfg.paths.mlflow_uri, EXPERIMENT, key), mode)
    day = day or loaded.data_end
    if day > loaded.data_end:
        raise InputError(
            f"--as-of {day} is after the end of the data ({loaded.data_end}, from "
            f"{loaded.data_end_from}): nothing is known then",
            hint="score as of the data's end or earlier",
        )
    table, previous = _features_now_and_before(loaded, day, cfg)
    if table.empty:
        raise InputError(f"no account has ARR > 0 as of {day} in {loaded.path}: nothing to score")
    table = table.merge(_account_names(loaded), on="account_id", how="left")
    csms = _csms(loaded)
    if csms is not None and "capacity" in csms.columns:
        capacity = csms.drop_duplicates("csm_id").set_index("csm_id")["capacity"]
        table["csm_capacity"] = table["csm_id"].map(capacity).astype("Float64")
    book = score_task(table, models, versions, thresholds, calibrators, cfg, previous)
    scores = _hold_out(book.scores, cfg, day)
    if csms is not None:
        names = csms.drop_duplicates("csm_id").set_index("csm_id")["name"]
        scores["csm_name"] = scores["csm_id"].map(names).astype("string")

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
        flags = drift_flags(drift) if not drift.empty else []
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
        report_path = None
        if cfg.scoring.report:
            nrr = _nrr(loaded, day)
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
                run_id=active.info.run_id,
                as_of=day,
                model_versions=versions,
                thresholds={
                    "churn": float(thresholds["churn_threshold"]),
                    "expand": float(thresholds["expand_threshold"]),
                },
                drift_flags=flags,
                notes=notes,
                horizon_days=cfg.features.horizon_days,
            )
            inputs = ReportInputs(
                scores=scores,
                history=past[["account_id", "as_of", "p_churn", "p_expand"]]
                if not past.empty
                else None,
                nrr=nrr,
                meta=meta,
                feature_labels={k: v.description for k, v in CATALOG.items()},
                territories=territories,
                actions=actions,
                flags=weekly,
                drift=drift if not drift.empty else None,
            )
            report_path = write_report(inputs, Path(cfg.paths.reports) / f"report-{day}.html")
            mlflow.log_artifact(str(report_path), "report")
        if cfg.scoring.exports:
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
