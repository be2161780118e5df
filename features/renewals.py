"""Days to the next renewal of every account as of one date, without the whole feature build.

The same SQL as the ``days_to_renewal`` feature (`features.commercial.subscription_features`:
the open core subscription's next renewal, from ``start_date`` and ``term_months``), so a
rebalancing run on stored scores sees the renewal dates the scoring run saw.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from features import commercial
from features.config import FeatureConfig
from features.snapshots import window_plan
from features.sqlrun import SqlRunner

__all__ = ["days_to_renewal"]


def days_to_renewal(
    con: duckdb.DuckDBPyConnection, as_of: date, cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """``account_id, days_to_renewal`` as of `as_of` (NaN where no term is known).

    Parameters
    ----------
    con : connection holding the validated relations ``subscriptions`` and ``plans``.
    as_of : observation date (subscriptions starting on or after it are not seen).
    cfg : feature settings (``core_product``); defaults when None.

    Returns
    -------
    DataFrame, one row per account with a subscription open at `as_of`.
    """
    cfg = cfg or FeatureConfig()
    run = SqlRunner(con)
    try:
        plan = window_plan([as_of], cfg.seat_util_lookback_months)
        commercial.asof_table(run, plan)
        table = commercial.subscription_features(run, cfg)
        out = run.df(f"SELECT account_id, days_to_renewal FROM {table}", name="renewals")
    finally:
        run.drop_all()
    out["days_to_renewal"] = pd.to_numeric(out["days_to_renewal"], errors="coerce").astype(
        "float64"
    )
    return out
