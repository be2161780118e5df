"""``nrrcast rebalance``: the stored scores of one date -> the territory plan beside them.

The step itself (rebalance, phase, write, log) is `flows.territory_step`, which the scoring
flow also runs when ``territories.run_with_scoring`` is on.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from evaluation import scores_store
from features.errors import InputError, StateError
from features.renewals import days_to_renewal
from flows import tracking
from flows.config import EXPERIMENT, load_config
from flows.tasks import open_validated, validation_args
from flows.territory_step import log_run, read_roster, rebalance_step


def run_rebalance(config_path: str | None, *, as_of: str | None, source: str | None) -> dict:
    """``nrrcast rebalance``: the stored scores of `as_of` -> plan beside them, in an MLflow run."""
    cfg = load_config(config_path)
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
    loaded = open_validated(**validation_args(cfg, source, engine=False))
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
