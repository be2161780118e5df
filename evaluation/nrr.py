"""Net and gross revenue retention from the subscriptions table, and an NRR forecast.

Definitions (period = a calendar month or quarter, ``[start, end)``):

* ``ARR(a, t) = 12 * sum(mrr)`` of account ``a``'s subscriptions with
  ``start_date <= t < end_date`` (null ``end_date`` = open), as in the input contract.
* cohort = accounts with ``ARR(start) > 0``; ``a0 = ARR(start)``, ``a1 = ARR(end)``.
* churned ARR = ``sum a0`` over cohort accounts with ``a1 = 0``;
  expansion ARR = ``sum (a1 - a0)`` where ``a1 > a0``;
  contraction ARR = ``sum (a0 - a1)`` where ``0 < a1 < a0`` (all positive amounts).
* ``NRR = sum a1 / sum a0 = 1 + (expansion - contraction - churned) / start``;
  ``GRR = sum min(a0, a1) / sum a0 = 1 - (contraction + churned) / start``.
* new ARR = ``ARR(end)`` of accounts with ``ARR(start) = 0`` (new logos and
  reactivations; outside NRR, shown beside it).

Segments are account attributes as they are now (the accounts table is a current
snapshot), so a segment's history is that of today's members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

COMPONENTS = ("start_arr", "expansion_arr", "contraction_arr", "churned_arr", "end_arr", "new_arr")
FREQS = {"M": "M", "month": "M", "monthly": "M", "Q": "Q", "quarter": "Q", "quarterly": "Q"}


def arr_on(subscriptions: pd.DataFrame, dates: Sequence[object]) -> pd.DataFrame:
    """ARR of every account with ARR > 0 on each date.

    Parameters
    ----------
    subscriptions : DataFrame
        Contract columns ``account_id, start_date, end_date, mrr``.
    dates : sequence of date-like
        Observation dates (midnight).

    Returns
    -------
    DataFrame
        ``date`` (datetime64), ``account_id``, ``arr`` for pairs with ARR > 0.
    """
    missing = [c for c in ("account_id", "start_date", "end_date", "mrr") if c not in subscriptions]
    if missing:
        raise ValueError(f"subscriptions: missing column(s) {missing} ({len(subscriptions)} rows)")
    subs = pd.DataFrame(
        {
            "account_id": subscriptions["account_id"].astype("string"),
            "start_date": pd.to_datetime(subscriptions["start_date"]),
            "end_date": pd.to_datetime(subscriptions["end_date"]),
            "mrr": pd.to_numeric(subscriptions["mrr"]).astype("float64"),
        }
    )
    days = pd.DataFrame({"d": pd.to_datetime(pd.Series(list(dates))).drop_duplicates()})
    con = duckdb.connect()
    try:
        con.register("subs", subs)
        con.register("days", days)
        out = con.execute(
            """
            SELECT d.d AS date, s.account_id, 12 * SUM(s.mrr) AS arr
            FROM subs s JOIN days d
              ON s.start_date <= d.d AND (s.end_date IS NULL OR d.d < s.end_date)
            GROUP BY d.d, s.account_id
            HAVING SUM(s.mrr) > 0
            ORDER BY date, account_id
            """
        ).df()
    finally:
        con.close()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[us]")
    return out


def period_starts(start: object, end: object, freq: str = "Q") -> pd.DatetimeIndex:
    """Starts of the whole periods inside ``[start, end)``: months or quarters.

    Parameters
    ----------
    start, end : date-like
        Bounds; a period counts only when it lies wholly inside ``[start, end)``.
    freq : {'Q', 'quarter', 'quarterly', 'M', 'month', 'monthly'}, default 'Q'
        Period length.

    Returns
    -------
    DatetimeIndex
        Period starts in order; empty when no whole period fits.

    Raises
    ------
    ValueError
        When `freq` is not one of the above.
    """
    f = _freq(freq)
    first = pd.Period(pd.Timestamp(start), freq=f)
    if first.start_time < pd.Timestamp(start):
        first += 1
    last = pd.Period(pd.Timestamp(end), freq=f) - 1  # the last period ending <= end
    if last < first:
        return pd.DatetimeIndex([])
    return pd.period_range(first, last, freq=f).to_timestamp().normalize()


def _freq(freq: str) -> str:
    if freq not in FREQS:
        raise ValueError(f"freq={freq!r}: expected one of {sorted(FREQS)}")
    return FREQS[freq]


def signup_cohort(accounts: pd.DataFrame, freq: str = "Q") -> pd.Series:
    """Signup cohort label from ``accounts.created_at``.

    ``freq``: ``"Q"`` (``"2025Q1"``), ``"M"`` (``"2025-01"``) or ``"Y"`` (``"2025"``).
    ``nrr_table(..., by="signup_cohort")`` uses quarters; pass a column made with another
    ``freq`` in ``accounts`` for coarser cohorts.

    Parameters
    ----------
    accounts : DataFrame
        Accounts with a ``created_at`` column.
    freq : str, default 'Q'
        ``"Q"``, ``"M"`` or ``"Y"`` (or their long names, as in :func:`period_starts`,
        plus ``"year"``, ``"yearly"``).

    Returns
    -------
    Series of string
        Named ``signup_cohort``, aligned with `accounts`.

    Raises
    ------
    ValueError
        When ``created_at`` is missing or `freq` is unknown.
    """
    if "created_at" not in accounts:
        raise ValueError("accounts: missing column 'created_at' for the signup cohort")
    created = pd.to_datetime(accounts["created_at"])
    f = "Y" if freq in {"Y", "year", "yearly"} else _freq(freq)
    out = created.dt.to_period(f).astype("string")
    return out.rename("signup_cohort")


def nrr_table(
    subscriptions: pd.DataFrame,
    *,
    start: object,
    end: object,
    freq: str = "Q",
    accounts: pd.DataFrame | None = None,
    by: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """GRR, NRR and the ARR movements behind them, per period and optional segment.

    Parameters
    ----------
    subscriptions : DataFrame
        Contract columns ``account_id, start_date, end_date, mrr``.
    start, end : date-like
        Whole periods inside ``[start, end)`` are reported; ``end`` should not pass the
        data's end (``manifest.json`` ``data_end``): later end dates are not known yet.
    freq : {"M", "Q"}, default "Q"
    accounts : DataFrame, optional
        ``account_id`` plus the attribute columns named in ``by``. ``by="signup_cohort"``
        is derived from ``created_at`` (quarter) when no such column exists.
    by : str or sequence of str, optional
        Segment column(s), e.g. ``"coverage"``, ``"industry"``, ``"signup_cohort"``.
        Accounts missing from ``accounts`` or with a null attribute form a group with a
        null key.

    Returns
    -------
    DataFrame
        ``[by...], period, period_start, period_end, n_accounts, start_arr, expansion_arr,
        contraction_arr, churned_arr, end_arr, new_arr, grr, nrr`` (ratios: 1.05 = 105%),
        ordered by segment then period. The frame fits ``evaluation.report.NRRPeriod``.

    Examples
    --------
    >>> subs = pd.DataFrame({"account_id": ["a", "b"], "start_date": ["2025-01-01"] * 2,
    ...     "end_date": [None, "2025-02-15"], "mrr": [10.0, 5.0]})
    >>> t = nrr_table(subs, start="2025-01-01", end="2025-04-01", freq="Q")
    >>> float(t["nrr"].iloc[0]), float(t["churned_arr"].iloc[0])
    (0.6666666666666666, 60.0)
    """
    f = _freq(freq)
    starts = period_starts(start, end, f)
    if len(starts) == 0:
        raise ValueError(f"no whole {f} period between {start} and {end}")
    ends = starts + (pd.DateOffset(months=3) if f == "Q" else pd.DateOffset(months=1))
    arr = arr_on(subscriptions, list(starts.union(ends)))
    begin = arr[arr["date"].isin(starts)].rename(columns={"date": "period_start", "arr": "a0"})
    to_start = pd.Series(starts, index=ends)
    finish = arr[arr["date"].isin(ends)].rename(columns={"arr": "a1"})
    finish = finish.assign(period_start=to_start.reindex(finish["date"]).to_numpy())
    finish = finish.drop(columns="date")
    moves = begin.merge(finish, on=["period_start", "account_id"], how="outer")
    moves[["a0", "a1"]] = moves[["a0", "a1"]].fillna(0.0)
    keys = _attach_segments(moves, accounts, by)
    moves = keys[0]
    group = keys[1]
    a0, a1 = moves["a0"].to_numpy(), moves["a1"].to_numpy()
    cohort = a0 > 0
    moves = moves.assign(
        n_accounts=cohort.astype(np.int64),
        start_arr=a0,
        expansion_arr=np.where(cohort & (a1 > a0), a1 - a0, 0.0),
        contraction_arr=np.where(cohort & (a1 > 0) & (a1 < a0), a0 - a1, 0.0),
        churned_arr=np.where(cohort & (a1 == 0), a0, 0.0),
        end_arr=np.where(cohort, a1, 0.0),
        new_arr=np.where(~cohort, a1, 0.0),
        retained=np.where(cohort, np.minimum(a0, a1), 0.0),
    )
    cols = ["n_accounts", *COMPONENTS, "retained"]
    out = moves.groupby([*group, "period_start"], dropna=False, sort=True)[cols].sum()
    out = out.reset_index()
    # periods with no account of a segment still appear (start_arr 0, ratios NaN)
    out = _complete(out, group, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["nrr"] = np.where(out["start_arr"] > 0, out["end_arr"] / out["start_arr"], np.nan)
        out["grr"] = np.where(out["start_arr"] > 0, out["retained"] / out["start_arr"], np.nan)
    out["period_start"] = pd.to_datetime(out["period_start"]).astype("datetime64[us]")
    offset = pd.DateOffset(months=3) if f == "Q" else pd.DateOffset(months=1)
    out["period_end"] = (out["period_start"] + offset).astype("datetime64[us]")
    out["period"] = out["period_start"].dt.to_period(f).astype("string")
    ordered = [
        *group,
        "period",
        "period_start",
        "period_end",
        "n_accounts",
        *COMPONENTS,
        "grr",
        "nrr",
    ]
    return out[ordered].sort_values([*group, "period_start"]).reset_index(drop=True)


def _attach_segments(
    moves: pd.DataFrame, accounts: pd.DataFrame | None, by: str | Sequence[str] | None
) -> tuple[pd.DataFrame, list[str]]:
    if by is None:
        return moves, []
    group = [by] if isinstance(by, str) else list(by)
    if accounts is None:
        raise ValueError(f"by={group}: pass the accounts table holding these columns")
    attrs = accounts.copy()
    if "signup_cohort" in group and "signup_cohort" not in attrs:
        attrs["signup_cohort"] = signup_cohort(attrs)
    missing = [c for c in ["account_id", *group] if c not in attrs]
    if missing:
        raise ValueError(f"accounts: missing column(s) {missing} ({len(attrs)} rows)")
    attrs = attrs[["account_id", *group]].drop_duplicates("account_id")
    attrs["account_id"] = attrs["account_id"].astype("string")
    return moves.merge(attrs, on="account_id", how="left"), group


def _complete(out: pd.DataFrame, group: list[str], starts: pd.DatetimeIndex) -> pd.DataFrame:
    """Add zero rows for (segment, period) pairs without any account."""
    if group:
        segs = out[group].drop_duplicates()
        grid = segs.merge(pd.DataFrame({"period_start": starts}), how="cross")
    else:
        grid = pd.DataFrame({"period_start": starts})
    grid["period_start"] = pd.to_datetime(grid["period_start"]).astype("datetime64[us]")
    out = out.assign(period_start=pd.to_datetime(out["period_start"]).astype("datetime64[us]"))
    full = grid.merge(out, on=[*group, "period_start"], how="left")
    num = ["n_accounts", *COMPONENTS, "retained"]
    full[num] = full[num].fillna(0)
    full["n_accounts"] = full["n_accounts"].astype(np.int64)
    return full


def nrr_alerts(
    table: pd.DataFrame, *, points: float = 20.0, by: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Periods whose NRR moved more than ``points`` percentage points from the period before.

    Pass the quarterly table for quarter-on-quarter alerts.

    Parameters
    ----------
    table : DataFrame
        A :func:`nrr_table` output (``period, period_start, nrr`` and the `by` columns).
    points : float, default 20.0
        Alert when ``|NRR - previous NRR|`` exceeds this many percentage points.
    by : str or list of str, optional
        Segment columns; each segment is compared with its own previous period.

    Returns
    -------
    DataFrame
        One row per alert: ``[by...], period, previous_nrr, nrr, change_points, message``
        (the message is prefixed with the segment when `by` is given).
    """
    group = [] if by is None else [by] if isinstance(by, str) else list(by)
    t = table.sort_values([*group, "period_start"])
    prev = t.groupby(group, dropna=False)["nrr"].shift(1) if group else t["nrr"].shift(1)
    change = (t["nrr"] - prev) * 100.0
    hit = change.abs() > points
    out = t.loc[hit, [*group, "period"]].assign(
        previous_nrr=prev[hit], nrr=t.loc[hit, "nrr"], change_points=change[hit]
    )
    prefix = (
        out[group].astype("string").fillna("(missing)").agg(" / ".join, axis=1) + ": "
        if group and len(out)
        else ""
    )
    out["message"] = pd.Series(
        [
            f"NRR {n:.1%} in {p}, {c:+.1f} points from {q:.1%}"
            for n, p, c, q in zip(
                out["nrr"], out["period"], out["change_points"], out["previous_nrr"], strict=True
            )
        ],
        index=out.index,
        dtype="string",
    )
    out["message"] = prefix + out["message"]
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------- forecast


class NRRForecaster:
    """Next quarter's NRR from predicted probabilities and sizes learnt from history.

    For the cohort scored at a quarter's start (accounts with ARR > 0)::

        churned   = k_churn  * sum(p_churn  * arr)
        expansion = k_expand * sum(p_expand * arr)
        contraction = r_contract * start_arr
        NRR = 1 + (expansion - contraction - churned) / start_arr

    ``k_churn`` turns the horizon's expected churned ARR into a quarter's (about
    quarter / horizon when the hazard is flat); ``k_expand`` is the quarter's expansion
    ARR per dollar of ARR of accounts that expanded within the horizon (the typical
    expansion size). Both are ratios over past quarters of realised ARR movements to
    the same sums with the realised labels in place of probabilities (``E[label] = p``
    for calibrated scores). ``r_contract`` is the past contraction ARR over start ARR.

    Parameters
    ----------
    history_quarters : int, default 4
        Most recent past quarters used by ``fit``.
    """

    def __init__(self, history_quarters: int = 4) -> None:
        self.history_quarters = history_quarters

    def fit(self, panel: pd.DataFrame, actuals: pd.DataFrame) -> NRRForecaster:
        """Learn the factors from past quarters.

        Parameters
        ----------
        panel : DataFrame
            Snapshots with ``as_of, arr, label_churn, label_expand``; the rows at each
            quarter start of ``actuals`` are used (NaN labels: that quarter is skipped).
        actuals : DataFrame
            Quarterly :func:`nrr_table` without segments (only past quarters).

        Returns
        -------
        NRRForecaster
            self, with ``factors_`` and ``fitted_quarters_``.

        Raises
        ------
        ValueError
            When `history_quarters` < 1, `panel` lacks a column, or no past quarter has
            both an NRR row and known labels at its start.
        """
        if self.history_quarters < 1:
            raise ValueError(f"history_quarters={self.history_quarters}: must be >= 1")
        need = ["as_of", "arr", "label_churn", "label_expand"]
        missing = [c for c in need if c not in panel]
        if missing:
            raise ValueError(f"panel: missing column(s) {missing} ({len(panel)} rows)")
        snap = panel[need].assign(as_of=pd.to_datetime(panel["as_of"]).astype("datetime64[us]"))
        snap = snap[snap["arr"] > 0]
        sums = (
            snap.assign(
                churn_arr=snap["arr"] * snap["label_churn"],
                expand_arr=snap["arr"] * snap["label_expand"],
                unknown=snap["label_churn"].isna() | snap["label_expand"].isna(),
            )
            .groupby("as_of")[["churn_arr", "expand_arr", "unknown"]]
            .sum()
        )
        act = actuals.assign(
            period_start=pd.to_datetime(actuals["period_start"]).astype("datetime64[us]")
        )
        joined = act.merge(sums, left_on="period_start", right_index=True, how="inner")
        joined = joined[(joined["unknown"] == 0) & (joined["start_arr"] > 0)]
        joined = joined.sort_values("period_start").tail(self.history_quarters)
        if len(joined) == 0:
            raise ValueError(
                "NRRForecaster.fit: no past quarter has both an NRR row and a snapshot with "
                f"known labels at its start (actual quarters {act['period'].tolist()})"
            )
        total = joined[
            ["churned_arr", "churn_arr", "expansion_arr", "expand_arr", "contraction_arr"]
        ].sum()
        self.factors_ = {
            "k_churn": _ratio(total["churned_arr"], total["churn_arr"]),
            "k_expand": _ratio(total["expansion_arr"], total["expand_arr"]),
            "r_contract": float(total["contraction_arr"] / joined["start_arr"].sum()),
        }
        self.fitted_quarters_ = [str(p) for p in joined["period"]]
        return self

    def predict(self, scores: pd.DataFrame) -> dict[str, Any]:
        """Expected movements and NRR/GRR for the cohort in ``scores`` (one snapshot).

        Parameters
        ----------
        scores : DataFrame
            ``arr``, ``p_churn`` and ``p_expand`` per account; rows with ARR <= 0 are ignored.

        Returns
        -------
        dict
            ``start_arr``, ``expected_churned_arr``, ``expected_expansion_arr``,
            ``expected_contraction_arr``, ``nrr_forecast``, ``grr_forecast`` (ratios:
            1.05 = 105%) and the fitted factors ``k_churn``, ``k_expand``, ``r_contract``.

        Raises
        ------
        RuntimeError
            When called before `fit`.
        ValueError
            When `scores` lacks a column or has no account with ARR > 0.
        """
        if not hasattr(self, "factors_"):
            raise RuntimeError("NRRForecaster is not fitted: call fit() first")
        missing = [c for c in ("arr", "p_churn", "p_expand") if c not in scores]
        if missing:
            raise ValueError(f"scores: missing column(s) {missing} ({len(scores)} rows)")
        s = scores[scores["arr"] > 0]
        start = float(s["arr"].sum())
        if start <= 0:
            raise ValueError("scores: no account with ARR > 0 to forecast")
        f = self.factors_
        churned = f["k_churn"] * float((s["p_churn"] * s["arr"]).sum())
        expansion = f["k_expand"] * float((s["p_expand"] * s["arr"]).sum())
        contraction = f["r_contract"] * start
        return {
            "start_arr": start,
            "expected_churned_arr": churned,
            "expected_expansion_arr": expansion,
            "expected_contraction_arr": contraction,
            "nrr_forecast": 1.0 + (expansion - contraction - churned) / start,
            "grr_forecast": 1.0 - (contraction + churned) / start,
            **{k: float(v) for k, v in f.items()},
        }


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def forecast_error(forecasts: Sequence[Mapping[str, Any]], actuals: pd.DataFrame) -> pd.DataFrame:
    """Forecast vs realised NRR per quarter; errors in percentage points.

    Parameters
    ----------
    forecasts : sequence of mapping
        :meth:`NRRForecaster.predict` outputs, each with a ``"period"`` key (``"2026Q1"``).
    actuals : DataFrame
        Quarterly :func:`nrr_table` with ``period, nrr, grr``.

    Returns
    -------
    DataFrame
        The forecasts joined with ``nrr_actual, grr_actual`` (NaN when the quarter is not
        realised yet) and ``nrr_abs_error_points, grr_abs_error_points``.

    Raises
    ------
    ValueError
        When a forecast has no ``"period"`` key.
    """
    fc = pd.DataFrame(list(forecasts))
    if "period" not in fc:
        raise ValueError("forecasts: each needs a 'period' key (e.g. '2026Q1')")
    act = actuals[["period", "nrr", "grr"]].rename(
        columns={"nrr": "nrr_actual", "grr": "grr_actual"}
    )
    out = fc.merge(act.assign(period=act["period"].astype(str)), on="period", how="left")
    out["nrr_abs_error_points"] = (out["nrr_forecast"] - out["nrr_actual"]).abs() * 100
    out["grr_abs_error_points"] = (out["grr_forecast"] - out["grr_actual"]).abs() * 100
    return out
