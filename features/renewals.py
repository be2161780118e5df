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
from features.sqlrun import SqlRunner, lit

__all__ = ["days_to_renewal"]


def days_to_renewal(
    con: duckdb.DuckDBPyConnection, as_of: date, cfg: FeatureConfig | None = None
) -> pd.DataFrame:
    """``account_id, days_to_renewal, term_months`` as of `as_of`.

    ``term_months`` is the longest term among the account's open subscriptions (1:
    monthly); both are NaN where no term is known.

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
        out = run.df(
            f"""
            SELECT r.account_id, r.days_to_renewal, t.term_months
            FROM {table} AS r
            LEFT JOIN (
              SELECT s.account_id, MAX(s.term_months) AS term_months
              FROM subscriptions AS s
              WHERE {commercial.open_at(lit(as_of))}
              GROUP BY s.account_id
            ) AS t ON t.account_id = r.account_id
            """,
            name="renewals",
        )
    finally:
        run.drop_all()
    for col in ("days_to_renewal", "term_months"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out
