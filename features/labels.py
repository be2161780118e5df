"""Forward-looking labels: churn, expansion and contraction over the horizon H.

Among accounts that exist at as_of (``created_at < as_of``) with ``arr > 0``:

- ``arr``   = ARR(as_of), the ARR known at as_of (subscriptions open at as_of, see
  `features.commercial`): the contract's ARR of the last full day before as_of;
- ``arr_h`` = ARR(as_of + H) from the full subscription history (labels look forward);
- churn: ``arr_h == 0``; expansion: ``arr_h >= (1 + x) * arr``; contraction:
  ``0 < arr_h <= (1 - x) * arr`` (money compared in cents).

ARR(t) covers the days before t, so ARR(as_of + H) needs data through day as_of + H - 1:
a label is known only when ``as_of + H <= data_end`` (``data_end`` exclusive). Otherwise
``arr_h`` and the labels are NaN and ``label_known`` is False: such rows are scored, never
trained on. Churn is measured at the horizon: a lapse that is reactivated before
as_of + H is not churn.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from features.catalog import arr_sql
from features.commercial import open_at
from features.data_end import latest_data_end
from features.names import TARGETS
from features.snapshots import normalize_as_of, to_date
from features.sqlrun import SqlRunner, lit, values_table

log = logging.getLogger("nrrcast.features")

LABEL_COLUMNS = (
    "arr_h",
    *(label for _, label in TARGETS.values()),
    "label_contract",
    "label_known",
)
"""Label columns of the panel, in order (the targets' labels from `features.names.TARGETS`)."""


def infer_data_end(con: duckdb.DuckDBPyConnection) -> date | None:
    """The day after the latest timestamp in the clean relations (or None).

    Kept for library callers; see `features.data_end.latest_data_end`.

    Parameters
    ----------
    con : connection holding the clean relations.

    Returns
    -------
    date, or None when the data holds no timestamp.
    """
    return latest_data_end(con)


def label_sql(asof_table: str, horizon_days: int, data_end: date) -> str:
    """SELECT of (account_id, as_of, arr, arr_h, known) for the as_of dates in `asof_table`.

    The expansion threshold is applied afterwards by `finish_labels`.

    Parameters
    ----------
    asof_table : name of a table with an ``as_of`` column.
    horizon_days : H, days after as_of at which ARR is compared.
    data_end : first day not covered by the data (a label is known when as_of + H <= it).

    Returns
    -------
    str, a SELECT statement.
    """
    return f"""
    SELECT p.account_id, p.as_of, p.arr,
      CASE WHEN p.known = 1 THEN COALESCE(h.arr_h, 0) END AS arr_h,
      p.known AS known
    FROM (
      SELECT s.account_id, a.as_of,
        {arr_sql("s.mrr")} AS arr,
        CASE WHEN a.as_of + {int(horizon_days)} <= {lit(data_end)} THEN 1 ELSE 0 END AS known
      FROM subscriptions AS s
      JOIN {asof_table} AS a ON {open_at("a.as_of")}
      JOIN accounts AS acc ON acc.account_id = s.account_id AND acc.created_at < a.as_of
      GROUP BY s.account_id, a.as_of
    ) AS p
    LEFT JOIN (
      SELECT s.account_id, a.as_of, {arr_sql("s.mrr")} AS arr_h
      FROM subscriptions AS s
      JOIN {asof_table} AS a ON {open_at(f"a.as_of + {int(horizon_days)}")}
      GROUP BY s.account_id, a.as_of
    ) AS h ON p.account_id = h.account_id AND p.as_of = h.as_of
    WHERE p.arr > 0
    """


def finish_labels(raw: pd.DataFrame, expansion_pct: float) -> pd.DataFrame:
    """Turn (account_id, as_of, arr, arr_h, known) rows into the label columns.

    Parameters
    ----------
    raw : rows of `label_sql`.
    expansion_pct : x; expansion needs ARR(as_of+H) >= (1+x) ARR(as_of), contraction
        0 < ARR(as_of+H) <= (1-x) ARR(as_of) (compared in cents).

    Returns
    -------
    DataFrame account_id, as_of, arr, arr_h and `LABEL_COLUMNS` after arr_h, sorted by
    as_of then account_id.
    """
    x = float(expansion_pct)
    arr = raw["arr"].to_numpy(dtype=np.float64)
    arr_h = raw["arr_h"].to_numpy(dtype=np.float64, na_value=np.nan)
    known = raw["known"].to_numpy(dtype=np.int64) == 1
    cents = np.round
    churn = arr_h == 0
    expand = cents(arr_h * 100) >= cents((1 + x) * arr * 100)
    contract = (arr_h > 0) & (cents(arr_h * 100) <= cents((1 - x) * arr * 100))
    out = pd.DataFrame(
        {
            "account_id": raw["account_id"].astype("str"),
            "as_of": pd.to_datetime(raw["as_of"]).astype("datetime64[us]"),
            "arr": arr,
            "arr_h": np.where(known, arr_h, np.nan),
        }
    )
    for name, flag in (
        (TARGETS["churn"][1], churn),
        (TARGETS["expand"][1], expand),
        ("label_contract", contract),
    ):
        out[name] = np.where(known, flag.astype(np.float64), np.nan)
    out["label_known"] = known
    return out.sort_values(["as_of", "account_id"], ignore_index=True)


def build_labels(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Iterable[date] | date,
    *,
    horizon_days: int = 60,
    expansion_pct: float = 0.10,
    data_end: date | None = None,
    runner: SqlRunner | None = None,
) -> pd.DataFrame:
    """Churn / expansion / contraction labels at horizon H for every (account, as_of).

    Parameters
    ----------
    con : DuckDB connection with the clean ``accounts`` and ``subscriptions`` relations.
    as_of_dates : observation dates (midnight); duplicates are an error.
    horizon_days : H, days after as_of at which ARR is compared.
    expansion_pct : x; expansion needs ARR(as_of+H) >= (1+x) ARR(as_of), contraction
        0 < ARR(as_of+H) <= (1-x) ARR(as_of).
    data_end : first day not covered by the data (exclusive); None infers it as the day
        after the latest timestamp in the data (logged).
    runner : reuse an `SqlRunner` (and its statement log); a private one by default.

    Returns
    -------
    DataFrame with columns account_id, as_of (datetime64[us]), arr, arr_h, label_churn,
    label_expand, label_contract (float64 1/0, NaN when not known), label_known (bool);
    one row per account with arr > 0 at as_of, sorted by as_of, account_id.

    Examples
    --------
    >>> labels = build_labels(con, [date(2026, 1, 1)], data_end=date(2026, 6, 1))  # doctest: +SKIP
    """
    dates = normalize_as_of(as_of_dates)
    if data_end is None:
        data_end = infer_data_end(con)
        log.warning("labels: data_end not given; inferred %s from the latest timestamp", data_end)
    if data_end is None:
        raise ValueError("labels: data_end not given and the data holds no timestamp")
    data_end = to_date(data_end)
    run = runner or SqlRunner(con)
    own = runner is None
    try:
        table = run.create("lab_asof", values_table(["as_of"], [(d,) for d in dates]))
        raw = run.df(label_sql(table, horizon_days, data_end), name="labels")
    finally:
        if own:
            run.drop_all()
    return finish_labels(raw, expansion_pct)


__all__ = ["LABEL_COLUMNS", "build_labels", "finish_labels", "infer_data_end", "label_sql"]
