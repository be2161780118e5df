"""Territory rebalancing at the edge: read scores, renewals and the roster, write the plan.

Used by ``nrrcast rebalance --as-of`` (`flows.cli_rebalance`) and, when
``territories.run_with_scoring`` is on, at the end of the scoring flow. Outputs go beside
the scores, in ``<scores>/rebalance/as_of=<date>/`` (replaced as a whole, atomically, and
only ever by this module): Parquet and CSV of the assignment, moves, loads, exceptions
and plan, ``balance.json``, ``announcement.md`` and the customer notices.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from flows.config import ROOT, Config

log = logging.getLogger("nrrcast.rebalance")

OUT_DIR = "rebalance"
CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@dataclass
class RebalanceRun:
    """What one rebalancing produced: the library results and where they were written."""

    result: Any  # models.territories.RebalanceResult
    plan: Any  # models.territory_plan.MigrationPlan
    roster: pd.DataFrame | None
    path: Path


def escape_csv_cells(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells starting with ``= + - @`` (or tab / CR) get a leading ``'``.

    Spreadsheets run such cells as formulas (CSV injection); numbers are left alone.
    """
    out = frame.copy()
    for col in out.columns:
        s = out[col]
        if s.dtype == object or pd.api.types.is_string_dtype(s):
            text = s.astype(object)
            bad = text.map(lambda v: isinstance(v, str) and v.startswith(CSV_DANGEROUS))
            if bad.any():
                out[col] = text.where(~bad, "'" + text.astype(str))
    return out


def read_roster(loaded: Any) -> pd.DataFrame | None:
    """The optional ``csms`` table of a validated source, or None when it has none.

    Reads the validated relation when the input contract knows the table, else (an older
    contract) a ``csms.parquet`` / ``csms.csv`` beside the other tables, checked by
    `models.territories.check_roster` either way.
    """
    from features.sources import _table_files
    from models.territories import check_roster

    src = loaded.source
    frame = None
    if "csms" in getattr(src, "tables", ()):
        rel = "csms" if _has_relation(src.con, "csms") else src.raw("csms")
        frame = src.con.execute(f"SELECT * FROM {rel}").df()
    elif Path(src.path).is_dir():
        found = _table_files(Path(src.path), "csms")
        if found is not None:
            fmt, files = found
            frame = pd.concat(
                [pd.read_parquet(f) if fmt == "parquet" else pd.read_csv(f) for f in files],
                ignore_index=True,
            )
    return check_roster(frame)


def _has_relation(con: Any, name: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()
    return bool(rows[0][0])


def templates_dir(cfg: Config) -> Path:
    """The configured templates folder (relative paths: working dir, else the project)."""
    path = Path(cfg.territories.plan.templates_dir)
    if path.is_absolute() or path.exists():
        return path
    return ROOT / path


def rebalance_book(
    scores: pd.DataFrame,
    renewals: pd.DataFrame | None,
    roster: pd.DataFrame | None,
    cfg: Config,
    as_of: date,
) -> tuple[Any, Any]:
    """Run the library: rebalance the scored book, then phase it and draft the texts."""
    from models.territories import rebalance
    from models.territory_plan import migration_plan, render_texts

    extra = ["days_to_renewal", "term_months"]
    book = scores.drop(columns=extra, errors="ignore")
    if renewals is not None:
        keep = ["account_id"] + [c for c in extra if c in renewals.columns]
        book = book.merge(renewals[keep], on="account_id", how="left")
    result = rebalance(
        book,
        roster,
        cfg.territories,
        load=cfg.segment.load,
        default_capacity=cfg.segment.coverage.accounts_per_csm,
        as_of=as_of,
    )
    plan = migration_plan(
        result,
        as_of,
        cfg.territories.plan,
        renewal_window_days=cfg.territories.renewal_window_days,
    )
    render_texts(plan, result, templates_dir(cfg), as_of=as_of, csms=roster)
    return result, plan


def output_dir(cfg: Config, as_of: date) -> Path:
    return Path(cfg.paths.scores) / OUT_DIR / f"as_of={as_of.isoformat()}"


def write_outputs(result: Any, plan: Any, out: Path) -> Path:
    """Write every table as Parquet and CSV, plus balance.json and the texts; atomic swap."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out.parent))
    try:
        tables = {
            "assignment": result.assignment,
            "moves": result.moves,
            "loads": result.loads,
            "exceptions": result.exceptions,
            "plan": plan.actions,
            "waves": plan.waves,
            "notices": plan.notices,
        }
        for name, frame in tables.items():
            frame.to_parquet(staging / f"{name}.parquet", index=False)
            escape_csv_cells(frame).to_csv(staging / f"{name}.csv", index=False)
        (staging / "balance.json").write_text(
            json.dumps(result.balance, indent=2, default=str) + "\n"
        )
        (staging / "announcement.md").write_text(plan.announcement)
        notices = "\n\n---\n\n".join(
            f"## {r.account_id}\nSubject: {r.subject}\n\n{r.body}"
            for r in plan.notices.itertuples(index=False)
        )
        (staging / "customer_notices.md").write_text(notices + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    backup = out.parent / f".old-{out.name}"
    if out.exists():
        shutil.rmtree(backup, ignore_errors=True)
        os.replace(out, backup)
    os.replace(staging, out)
    shutil.rmtree(backup, ignore_errors=True)
    return out


def summary_metrics(result: Any) -> dict[str, float]:
    """Flat figures for MLflow (``rebalance.*``)."""
    b = result.balance
    out: dict[str, float] = {
        "rebalance.moves": b["moves"],
        "rebalance.handovers": b["handovers"],
        "rebalance.first_assignments": b["first_assignments"],
        "rebalance.exceptions": b["exceptions"],
        "rebalance.share_moved": b["share_moved"],
        "rebalance.objective": b["objective"],
        "rebalance.seconds": b["solver"].get("seconds", 0.0),
    }
    for when in ("before", "after"):
        for k in ("max", "min", "cv"):
            out[f"rebalance.load_{when}.{k}"] = b[when][k]
    for k, v in b["violations"].items():
        out[f"rebalance.violations.{k}"] = v
    return out


def log_run(run: RebalanceRun) -> None:
    """Log the figures and the written files to the active MLflow run."""
    import mlflow

    from flows import tracking

    tracking.log_metrics(summary_metrics(run.result))
    tracking.log_params({"rebalance.method": run.result.method})
    mlflow.log_artifacts(str(run.path), artifact_path="rebalance")


def rebalance_step(
    scores: pd.DataFrame,
    renewals: pd.DataFrame | None,
    roster: pd.DataFrame | None,
    cfg: Config,
    as_of: date,
) -> RebalanceRun:
    """Rebalance, phase, write beside the scores; the caller logs it (`log_run`)."""
    result, plan = rebalance_book(scores, renewals, roster, cfg, as_of)
    path = write_outputs(result, plan, output_dir(cfg, as_of))
    b = result.balance
    log.info(
        "rebalanced %d accounts over %d CSMs with %s: %d moves, %d exceptions, load CV "
        "%.3f -> %.3f; written to %s",
        b["accounts_named_after"], b["csms_in_roster"], result.method, b["moves"],
        b["exceptions"], b["before"]["cv"], b["after"]["cv"], path,
    )  # fmt: skip
    for note in result.notes:
        log.warning(note)
    return RebalanceRun(result=result, plan=plan, roster=roster, path=path)


def run_rebalance(config_path: str | None, *, as_of: str | None, source: str | None) -> dict:
    """``nrrcast rebalance``: the stored scores of `as_of` -> plan beside them, in an MLflow run."""
    from features.errors import InputError, StateError
    from features.renewals import days_to_renewal
    from flows import scores_store, tracking
    from flows.config import load_config
    from flows.tasks import open_validated
    from flows.train import EXPERIMENT

    cfg = load_config(config_path)
    src_path = Path(source or cfg.paths.raw)
    stored = scores_store.read_scores(cfg.paths.scores)
    if stored.empty:
        raise StateError(f"no scores in {cfg.paths.scores}", hint="run `nrrcast score` first")
    dates = sorted(pd.to_datetime(stored["as_of"]).dt.date.unique())
    try:
        day = date.fromisoformat(as_of) if as_of else dates[-1]
    except ValueError:
        raise InputError(f"--as-of {as_of!r} is not a date", hint="use YYYY-MM-DD") from None
    if day not in dates:
        raise StateError(
            f"no scores for {day} in {cfg.paths.scores} (scored dates: "
            f"{', '.join(map(str, dates[-5:]))})",
            hint=f"run `nrrcast score --as-of {day}` first",
        )
    scores = stored[pd.to_datetime(stored["as_of"]).dt.date == day].reset_index(drop=True)
    loaded = open_validated(src_path, Path(cfg.paths.quarantine), floor=cfg.features.data_floor)
    try:
        renewals = days_to_renewal(loaded.source.con, day, cfg.features)
        roster = read_roster(loaded)
    finally:
        loaded.source.con.close()
    exp = tracking.configure(cfg.paths.mlflow_uri, cfg.paths.mlflow_artifacts, EXPERIMENT)
    with tracking.run(
        exp, f"rebalance {day}", tags={"flow": "rebalance", "as_of": day.isoformat()}
    ) as active:
        done = rebalance_step(scores, renewals, roster, cfg, day)
        log_run(done)
    b = done.result.balance
    print(
        f"rebalanced {b['accounts_named_after']} accounts over {b['csms_in_roster']} CSMs "
        f"({done.result.method}): {b['moves']} moves, {b['exceptions']} exceptions, load CV "
        f"{b['before']['cv']:.3f} -> {b['after']['cv']:.3f}, max {b['before']['max']:.1f} -> "
        f"{b['after']['max']:.1f}; written to {done.path}"
    )
    return {"as_of": day.isoformat(), "run_id": active.info.run_id, "path": str(done.path), **b}
