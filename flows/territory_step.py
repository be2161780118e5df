"""The territory rebalancing step: scores, renewals and the roster in, the plan written out.

Shared by ``nrrcast rebalance --as-of`` (`flows.rebalance`) and, when
``territories.run_with_scoring`` is on, the end of the scoring flow; it imports no flow.
Outputs go beside the scores, in ``<scores>/rebalance/as_of=<date>/`` (replaced as a
whole, atomically, and only ever by this module): Parquet and CSV of the assignment,
moves, loads, exceptions and plan, ``balance.json``, ``announcement.md`` and the customer
notices.
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

import mlflow
import pandas as pd

from evaluation.csv_safe import escape_frame
from features.source_reads import roster_frame
from flows import tracking
from flows.config import ROOT, Config

log = logging.getLogger("nrrcast.rebalance")

OUT_DIR = "rebalance"


@dataclass
class RebalanceRun:
    """What one rebalancing produced: the library results and where they were written."""

    result: Any  # models.territories.RebalanceResult
    plan: Any  # models.territory_plan.MigrationPlan
    roster: pd.DataFrame | None
    path: Path


def read_roster(loaded: Any) -> pd.DataFrame | None:
    """The optional ``csms`` table of a validated source, or None when it has none,
    checked by `models.territories.check_roster`."""
    from models.territories import check_roster

    return check_roster(roster_frame(loaded.source))


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
            escape_frame(frame, text_only=True).to_csv(staging / f"{name}.csv", index=False)
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
