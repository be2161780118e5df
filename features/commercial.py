"""Contract features from subscriptions, plans and accounts: ARR and its history, seats,
plan limits, days to renewal, contract age, seat-utilization streak.

Point in time: a subscription is *open at t* when ``start_date < t`` and its end is not
known before t (``end_date IS NULL OR end_date >= t``). An end date on or after as_of is
not yet known at as_of, so the subscription counts as open then; a start on or after
as_of is not known either. ``ARR(t)`` below is 12 x the MRR of the subscriptions open at
t, i.e. the contract's ARR of the last full day before t (``start_date <= t-1 < end_date``).
The same predicate evaluated with the full history gives the same answer for every
t <= as_of, which is why it is safe for past sample points too.

"Core" subscriptions (seats, plan limits, renewal, contract age) are the open
subscriptions of `FeatureConfig.core_product`, or all open ones when the account has none
of that product open at t.
"""

from __future__ import annotations

from datetime import timedelta

from features.catalog import ARR_STEP_DAYS, arr_sql, select_list
from features.config import FeatureConfig
from features.snapshots import WINDOWS, WindowPlan, add_months
from features.sqlrun import PREFIX, SqlRunner, lit, values_table


def open_at(t: str, s: str = "s") -> str:
    """SQL predicate: subscription alias `s` is open at date expression `t` (see module).

    Parameters
    ----------
    t : SQL date expression.
    s : alias of the subscriptions relation.

    Returns
    -------
    str, SQL boolean expression.

    Examples
    --------
    >>> open_at("a.as_of")
    's.start_date < a.as_of AND (s.end_date IS NULL OR s.end_date >= a.as_of)'
    """
    return f"{s}.start_date < {t} AND ({s}.end_date IS NULL OR {s}.end_date >= {t})"


def add_months_sql(d: str, months: str) -> str:
    """Portable SQL for date `d` plus integer expression `months` (day clamped to month end).

    Built from YEAR/MONTH/DAY, MAKE_DATE and LAST_DAY, which DuckDB and Spark share.

    Parameters
    ----------
    d : SQL date expression.
    months : SQL integer expression (may be negative).

    Returns
    -------
    str, SQL date expression.
    """
    idx = f"(YEAR({d}) * 12 + MONTH({d}) - 1 + ({months}))"
    y, m = f"({idx} // 12)", f"({idx} % 12 + 1)"
    return f"MAKE_DATE({y}, {m}, LEAST(DAY({d}), DAY(LAST_DAY(MAKE_DATE({y}, {m}, 1)))))"


def asof_table(run: SqlRunner, plan: WindowPlan) -> str:
    """The as_of dates with their window boundaries and last complete month (index).

    Parameters
    ----------
    run : runner to create the table with.
    plan : the build's window plan (its as_of dates).

    Returns
    -------
    str, name of the created table: as_of, ``d<n>`` = as_of - n days for every window
    bound of `features.snapshots.WINDOWS` (d7, d30, d60, d90), util_mi.
    """
    bounds = sorted({days for window in WINDOWS.values() for days in window if days})
    rows = []
    for a in plan.as_of:
        last_month = add_months(a.replace(day=1), -1)
        starts = (a - timedelta(days=days) for days in bounds)
        rows.append((a, *starts, last_month.year * 12 + last_month.month - 1))
    columns = ["as_of", *(f"d{days}" for days in bounds), "util_mi"]
    return run.create("asof", values_table(columns, rows))


def subscription_features(run: SqlRunner, cfg: FeatureConfig) -> str:
    """Account x as_of: arr, seats, plan limits, days to renewal, contract age.

    The aggregates are the ``subs_asof`` measures of `features.catalog`, over the open
    subscriptions with their next renewal and whether they count as core (``use_core``).

    Parameters
    ----------
    run : runner holding the as_of table and the ``subscriptions`` and ``plans`` relations.
    cfg : feature settings (``core_product``).

    Returns
    -------
    str, name of the created table.
    """
    r1 = add_months_sql("x.start_date", "x.renew_k")
    r2 = add_months_sql("x.start_date", "x.renew_k + x.term_months")
    return run.create(
        "subs_asof",
        f"""
        SELECT y.account_id, y.as_of,
          {select_list("subs_asof")}
        FROM (
          SELECT x.*,
            CASE WHEN x.is_core = 1 OR MAX(x.is_core) OVER (PARTITION BY x.account_id, x.as_of) = 0
                 THEN 1 ELSE 0 END AS use_core,
            CASE WHEN x.term_months IS NULL THEN NULL
                 WHEN {r1} >= x.as_of THEN {r1} ELSE {r2} END AS renewal
          FROM (
            SELECT s.account_id, a.as_of, s.start_date, s.mrr, s.seats, s.term_months,
              -- whole terms from start_date to as_of's month: the renewal at or after as_of
              -- is start + renew_k months, or one term later
              (((YEAR(a.as_of) * 12 + MONTH(a.as_of)) - (YEAR(s.start_date) * 12 + MONTH(s.start_date))
                + s.term_months - 1) // s.term_months) * s.term_months AS renew_k,
              CASE WHEN s.product = {lit(cfg.core_product)} THEN 1 ELSE 0 END AS is_core,
              p.seat_limit, p.usage_limit
            FROM subscriptions AS s
            JOIN {PREFIX}asof AS a ON {open_at("a.as_of")}
            LEFT JOIN plans AS p ON s.plan = p.plan
          ) AS x
        ) AS y
        GROUP BY y.account_id, y.as_of
        """,
    )


def arr_history(run: SqlRunner, plan: WindowPlan, cfg: FeatureConfig) -> str:
    """ARR sampled every 30 days back from as_of: change over 90 days and the number of
    30-day steps with an expansion / contraction over the last `arr_history_steps` steps.

    Parameters
    ----------
    run : runner holding the ``subscriptions`` relation.
    plan : the build's window plan (its as_of dates).
    cfg : feature settings (``arr_history_steps``).

    Returns
    -------
    str, name of the created table (the ``arr_hist`` measures of `features.catalog`).
    """
    steps = cfg.arr_history_steps
    rows = [
        (a, k, a - timedelta(days=ARR_STEP_DAYS * k)) for a in plan.as_of for k in range(steps + 1)
    ]
    pts = run.create("arr_pts", values_table(["as_of", "k", "t"], rows))
    pivot = ",\n".join(
        f"{arr_sql(f'CASE WHEN p.k = {k} THEN s.mrr ELSE 0 END')} AS arr_k{k}"
        for k in range(steps + 1)
    )
    return run.create(
        "arr_hist",
        f"""
        SELECT account_id, as_of,
          {select_list("arr_hist", {"steps": steps})}
        FROM (
          SELECT s.account_id, p.as_of, {pivot}
          FROM subscriptions AS s JOIN {pts} AS p ON {open_at("p.t")}
          GROUP BY s.account_id, p.as_of
        ) AS h
        """,
    )


def seat_utilization_streak(run: SqlRunner, plan: WindowPlan, cfg: FeatureConfig) -> str:
    """Consecutive complete calendar months, up to the one before as_of's month, in which
    distinct active users / seats (at the month's close) >= the configured threshold.

    Parameters
    ----------
    run : runner holding the as_of and monthly active user tables.
    plan : the build's window plan (``month_grid_start``, ``end``).
    cfg : feature settings (``core_product``, ``seat_util_threshold``,
        ``seat_util_lookback_months``).

    Returns
    -------
    str, name of the created table (the ``util_streak`` measure of `features.catalog`).
    """
    months = []
    m = plan.month_grid_start
    while m < plan.end.replace(day=1):
        nxt = add_months(m, 1)
        months.append((m, nxt, m.year * 12 + m.month - 1))
        m = nxt
    if not months:  # no complete month before the last as_of
        months = [(plan.month_grid_start, add_months(plan.month_grid_start, 1), -1)]
    mt = run.create("months", values_table(["month", "t_next", "mi"], months))
    run.create(
        "month_seats",
        f"""
        SELECT account_id, month, mi,
          SUM(CASE WHEN is_core = 1 OR has_core = 0 THEN seats END) AS seats
        FROM (
          SELECT s.account_id, m.month, m.mi, s.seats,
            CASE WHEN s.product = {lit(cfg.core_product)} THEN 1 ELSE 0 END AS is_core,
            MAX(CASE WHEN s.product = {lit(cfg.core_product)} THEN 1 ELSE 0 END)
              OVER (PARTITION BY s.account_id, m.month) AS has_core
          FROM subscriptions AS s JOIN {mt} AS m ON {open_at("m.t_next")}
        ) AS x
        GROUP BY account_id, month, mi
        """,
    )
    thr = float(cfg.seat_util_threshold)
    lookback = int(cfg.seat_util_lookback_months)
    run.create(
        "util_runs",
        f"""
        SELECT account_id, mi,
          ROW_NUMBER() OVER (PARTITION BY account_id, island ORDER BY mi) AS streak
        FROM (
          SELECT s.account_id, s.mi,
            s.mi - ROW_NUMBER() OVER (PARTITION BY s.account_id ORDER BY s.mi) AS island
          FROM {PREFIX}month_seats AS s
          JOIN {PREFIX}month_users AS u ON s.account_id = u.account_id AND s.month = u.month
          WHERE s.seats > 0 AND CAST(u.active_users AS DOUBLE) / s.seats >= {thr!r}
        ) AS r
        """,
    )
    return run.create(
        "util_streak",
        f"""
        SELECT r.account_id, a.as_of, {select_list("util_streak", {"lookback": lookback})}
        FROM {PREFIX}util_runs AS r JOIN {PREFIX}asof AS a ON r.mi = a.util_mi
        """,
    )
