"""Behavioral features from events: activity, adoption breadth and depth, power users,
champions, admins, AI features, agents and metered usage.

Plan (see `features.snapshots` for the segments):

1. the feature index: every non-login event name a human used gets one bit of a BIGINT
   mask (63 names per mask word, as many words as needed);
2. ``events`` -> account-user-segment rows of people (counts, usage, the OR of feature
   bits, a day mask: bit i = active on day i of the segment) and account-segment rows
   of agents (runs, errors, usage);
3. account-segment rows -> account x as_of windows (activity, breadth, agents, usage);
4. account-user-segment rows -> account-user x as_of windows -> account x as_of
   (active users, power users, departments, admins);
5. account-user-segment rows -> distinct active users per account and calendar month.

Only events with ``ts < as_of`` reach a window of that ``as_of`` (windows end at as_of).
People are events whose actor is not 'agent'; agent runs are events whose actor is 'agent'.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd

from features.catalog import AGENT, HUMAN, select_list
from features.config import FeatureConfig
from features.snapshots import WINDOWS, WindowPlan
from features.sqlrun import PREFIX, SqlRunner, in_list, lit, values_table

BITS_PER_WORD = 63


@dataclass
class FeatureIndex:
    """Bit positions of the feature names and when optional signals were first seen.

    Attributes
    ----------
    names : feature (event) names in bit order (every non-login name, or the configured
        catalogue).
    words : number of BIGINT mask words (ceil(len(names) / 63), at least 1).
    early : first human use per name before the scanned range (from a small scan).
    early_agent, early_ai : first agent event / human AI-feature use before that range.
    first_agent, first_ai : first agent event / human AI-feature use overall (set by
        `first_seen`, at day precision), or None.
    """

    names: list[str]
    words: int
    early: dict[str, datetime] = field(default_factory=dict)
    early_agent: datetime | None = None
    early_ai: datetime | None = None
    first_agent: datetime | None = None
    first_ai: datetime | None = None


#: metered quantities are summed as exact decimals: a float sum depends on the order in
#: which parallel threads add, so the same data would give features that differ in the
#: last digits from run to run (and models that differ with them)
QTY = "DECIMAL(38, 10)"


def _ts(d: date) -> datetime:
    return datetime(d.year, d.month, d.day)


def _min(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def feature_index(run: SqlRunner, plan: WindowPlan, cfg: FeatureConfig) -> FeatureIndex:
    """Assign mask bits to feature names; read first uses before the scanned range.

    Bits are only an encoding (a name seen after as_of gets a bit but no use before it).
    When the catalogue comes from the data, a name counts at an as_of once a person used
    it before; `first_seen` completes the first uses from the aggregated rows.

    Parameters
    ----------
    run : runner on the connection holding ``events``.
    plan : the build's window plan (start of the scanned range).
    cfg : feature settings (``feature_catalog``, ``ai_features``).

    Returns
    -------
    FeatureIndex
    """
    if cfg.feature_catalog is not None:
        names = sorted(dict.fromkeys(n for n in cfg.feature_catalog if n != "login"))
    else:
        found = run.rows("SELECT DISTINCT event FROM events")
        names = sorted(str(r[0]) for r in found if r[0] is not None and r[0] != "login")
    early = run.df(
        f"SELECT event, MIN(CASE WHEN {HUMAN} THEN ts END) AS first_ts, "
        f"MIN(CASE WHEN {AGENT} THEN ts END) AS first_agent_ts FROM events "
        f"WHERE ts < {lit(_ts(plan.start))} GROUP BY event",
        name="early_history",
    )

    def first(ts: pd.Series) -> datetime | None:
        ts = ts.dropna()
        return ts.min().to_pydatetime() if len(ts) else None

    human = early.dropna(subset=["first_ts"])
    words = max(1, -(-len(names) // BITS_PER_WORD))
    return FeatureIndex(
        names=names,
        words=words,
        early={
            str(e): t.to_pydatetime()
            for e, t in zip(human["event"], human["first_ts"], strict=True)
            if e != "login"
        },
        early_agent=first(early["first_agent_ts"]),
        early_ai=first(early.loc[early["event"].isin(cfg.ai_features), "first_ts"]),
    )


def first_seen(run: SqlRunner, cfg: FeatureConfig, fx: FeatureIndex) -> str:
    """First human use of each feature name, first agent event and first AI-feature use.

    Within the scanned range they come from the segment rows: an as_of is a segment
    boundary, so "first segment starts before as_of" is exactly "first use before as_of".
    Creates the catalogue table (event, first_ts) (first_ts NULL = configured, always in).

    Parameters
    ----------
    run : runner holding the segment tables of `build_activity_base`.
    cfg : feature settings (``feature_catalog``).
    fx : the feature index; its ``first_agent`` and ``first_ai`` are set here.

    Returns
    -------
    str, name of the created catalogue table.
    """
    masks = ", ".join(f"BIT_OR(m{w})" for w in range(fx.words))
    segs = run.rows(
        f"SELECT seg, MAX(n_agent), MAX(n_ai), {masks} FROM {PREFIX}aseg GROUP BY seg ORDER BY seg"
    )
    bit_first: dict[str, datetime] = {}
    seen = [0] * fx.words
    for seg, n_agent, n_ai, *word_masks in segs:  # one row per segment (a few hundred)
        start = _ts(seg)
        if n_agent and fx.first_agent is None:
            fx.first_agent = start
        if n_ai and fx.first_ai is None:
            fx.first_ai = start
        for w, m in enumerate(word_masks):
            new = int(m or 0) & ~seen[w]
            seen[w] |= int(m or 0)
            for i in range(w * BITS_PER_WORD, min((w + 1) * BITS_PER_WORD, len(fx.names))):
                if new >> (i % BITS_PER_WORD) & 1:
                    bit_first[fx.names[i]] = start
    fx.first_agent = _min(fx.early_agent, fx.first_agent)
    fx.first_ai = _min(fx.early_ai, fx.first_ai)
    if cfg.feature_catalog is not None:
        rows = [(n, None) for n in fx.names]
    else:
        firsts = {n: _min(fx.early.get(n), bit_first.get(n)) for n in fx.names}
        rows = [(n, t) for n, t in firsts.items() if t is not None]
    if not rows:
        return run.create(
            "catalogue_names",
            "SELECT CAST(NULL AS VARCHAR) AS event, CAST(NULL AS TIMESTAMP) AS first_ts WHERE 1 = 0",
        )
    return run.create(
        "catalogue_names", values_table(["event", "first_ts"], rows, ["VARCHAR", "TIMESTAMP"])
    )


def _bit_case(fx: FeatureIndex, word: int) -> str:
    """CASE mapping an event name to its bit in mask word `word` (0 for other names)."""
    names = fx.names[word * BITS_PER_WORD : (word + 1) * BITS_PER_WORD]
    if not names:
        return "CAST(0 AS BIGINT)"
    whens = " ".join(f"WHEN {lit(n)} THEN CAST({1 << i} AS BIGINT)" for i, n in enumerate(names))
    return f"CASE e.event {whens} ELSE CAST(0 AS BIGINT) END"


def _mask_cols(words: int, expr: str, alias: str = "m") -> str:
    return ", ".join(expr.format(w=w) + f" AS {alias}{w}" for w in range(words))


def _bitcount(words: int, fmt: str) -> str:
    return " + ".join(f"BIT_COUNT({fmt.format(w=w)})" for w in range(words))


def scan_chunks(plan: WindowPlan, months: int | None) -> list[tuple[date, date]]:
    """[lo, hi) ranges of the event scan: whole calendar months, `months` at a time.

    Month starts are segment cut points, so no segment straddles two chunks.

    Parameters
    ----------
    plan : the build's window plan.
    months : calendar months per chunk; None scans the whole range at once.

    Returns
    -------
    list of (lo, hi) date pairs covering [plan.start, plan.end).
    """
    if months is None:
        return [(plan.start, plan.end)]
    starts = [d.date() for d in pd.date_range(plan.start, plan.end, freq="MS")]
    inner = [d for d in starts if plan.start < d < plan.end][months - 1 :: months]
    bounds = [plan.start, *inner, plan.end]
    return list(itertools.pairwise(bounds))


def build_activity_base(
    run: SqlRunner, plan: WindowPlan, cfg: FeatureConfig, fx: FeatureIndex
) -> None:
    """Steps 2-3 of the module plan: events to person-segment and agent-segment rows.

    A segment lies within one calendar month, so a day is one bit (its offset in the
    segment) of ``dmask``: the number of distinct active days of a user or an account
    over any union of segments is the bit count of the OR of their masks. Agent events
    are only needed per account, so they skip the large per-user aggregation.

    Parameters
    ----------
    run : runner on the connection holding ``events``.
    plan : the build's window plan (calendar and segment windows).
    cfg : feature settings (``scan_chunk_months``, ``ai_features``).
    fx : the feature index (mask bits of the feature names).
    """
    run.create("cal", values_table(["d", "seg", "month", "bit"], _calendar_rows(plan)))
    run.create(
        "segwin",
        values_table(["seg", "as_of", "w7", "w30", "w90", "p30", "p60"], _segwin_rows(plan)),
    )
    for i, (lo, hi) in enumerate(scan_chunks(plan, cfg.scan_chunk_months)):
        where = f"e.ts >= {lit(_ts(lo))} AND e.ts < {lit(_ts(hi))}"
        # people: per user and segment (counts as DOUBLE: exact, and cheaper than int128)
        human = f"""
        SELECT account_id, user_id, seg,
          COUNT(*) AS n_human, SUM(lg) AS n_login, SUM(ai) AS n_ai,
          SUM(CAST(quantity AS {QTY})) AS qty,
          BIT_OR(bit) AS dmask,
          {", ".join(f"BIT_OR(fm{w}) AS m{w}" for w in range(fx.words))}
        FROM (
          SELECT e.account_id, e.user_id, c.seg, e.quantity, c.bit,
            CASE WHEN e.event = 'login' THEN 1.0 ELSE 0.0 END AS lg,
            CASE WHEN e.event IN {in_list(cfg.ai_features)} THEN 1.0 ELSE 0.0 END AS ai,
            {", ".join(f"{_bit_case(fx, w)} AS fm{w}" for w in range(fx.words))}
          FROM events AS e
          JOIN {PREFIX}cal AS c ON CAST(e.ts AS DATE) = c.d
          WHERE {where} AND ({HUMAN})
        ) AS x
        GROUP BY account_id, user_id, seg
        """
        # agents: per account and segment only
        agent = f"""
        SELECT e.account_id, c.seg, COUNT(*) AS n_agent,
          SUM(CASE WHEN e.status = 'error' THEN 1.0 ELSE 0.0 END) AS n_agent_err,
          SUM(CAST(e.quantity AS {QTY})) AS qty
        FROM events AS e
        JOIN {PREFIX}cal AS c ON CAST(e.ts AS DATE) = c.d
        WHERE {where} AND {AGENT}
        GROUP BY e.account_id, c.seg
        """
        if i == 0:
            run.create("useg", human)
            run.create("agseg", agent)
        else:
            run.insert("useg", human)
            run.insert("agseg", agent)
    masks = ", ".join(f"m{w}" for w in range(fx.words))
    zeros = ", ".join("CAST(0 AS BIGINT)" for _ in range(fx.words))
    run.create(
        "aseg",
        f"""
        SELECT account_id, seg,
          SUM(n_human) AS n_human, SUM(n_login) AS n_login, SUM(n_ai) AS n_ai,
          SUM(n_agent) AS n_agent, SUM(n_agent_err) AS n_agent_err, SUM(qty) AS qty,
          BIT_COUNT(BIT_OR(dmask)) AS active_days,
          CASE WHEN BIT_OR(dmask) <> 0
               THEN seg + CAST(FLOOR(LOG2(BIT_OR(dmask))) AS INTEGER) END AS last_active,
          {_mask_cols(fx.words, "BIT_OR(m{w})")}
        FROM (
          SELECT account_id, seg, n_human, n_login, n_ai, 0.0 AS n_agent, 0.0 AS n_agent_err,
            qty, dmask, {masks}
          FROM {PREFIX}useg
          UNION ALL
          SELECT account_id, seg, 0.0, 0.0, 0.0, n_agent, n_agent_err, qty, CAST(0 AS BIGINT),
            {zeros}
          FROM {PREFIX}agseg
        ) AS u
        GROUP BY account_id, seg
        """,
    )


def _calendar_rows(plan: WindowPlan) -> list[tuple]:
    cal = plan.calendar
    d = pd.to_datetime(cal["d"])
    seg = pd.to_datetime(cal["seg"])
    bit = np.left_shift(np.int64(1), (d - seg).dt.days.to_numpy(dtype=np.int64))
    return list(
        zip(d.dt.date, seg.dt.date, pd.to_datetime(cal["month"]).dt.date, bit.tolist(), strict=True)
    ) or [(plan.start, plan.start, plan.start.replace(day=1), 1)]


def _segwin_rows(plan: WindowPlan) -> list[tuple]:
    sw = plan.segwin
    if sw.empty:  # as_of dates with no day in the read range: one inert row
        return [(plan.start, plan.as_of[0], 0, 0, 0, 0, 0)]
    cols = [pd.to_datetime(sw["seg"]).dt.date, pd.to_datetime(sw["as_of"]).dt.date]
    cols += [sw[k].astype(int).tolist() for k in ("w7", "w30", "w90", "p30", "p60")]
    return list(zip(*cols, strict=True))


def account_windows(run: SqlRunner, fx: FeatureIndex) -> str:
    """Account x as_of activity, adoption, agent and usage aggregates over the windows.

    The aggregates are the ``acc_win`` measures of `features.catalog`; ``{used[key]}``
    there is the number of distinct features used in window ``key`` (mask bits).

    Parameters
    ----------
    run : runner holding the segment tables of `build_activity_base`.
    fx : the feature index (number of mask words).

    Returns
    -------
    str, name of the created table (one row per account and as_of).
    """

    def used(w: str) -> str:
        return _bitcount(
            fx.words, f"BIT_OR(CASE WHEN w.{w} = 1 THEN a.m{{w}} ELSE CAST(0 AS BIGINT) END)"
        )

    aggregates = select_list("acc_win", {"used": {w: used(w) for w in WINDOWS}})
    return run.create(
        "acc_win",
        f"""
        SELECT a.account_id, w.as_of,
          {aggregates}
        FROM {PREFIX}aseg AS a JOIN {PREFIX}segwin AS w ON a.seg = w.seg
        GROUP BY a.account_id, w.as_of
        """,
    )


def user_windows(run: SqlRunner, fx: FeatureIndex, cfg: FeatureConfig) -> str:
    """Account x as_of user-level aggregates: active, power users, departments, admins.

    Per user and as_of: active days ``ad7, ad30, ad90, adp30`` (windows w7, w30, w90,
    p30) and the 30-day feature masks; then the ``user_win`` measures of
    `features.catalog`. A user's department and role count only once the user exists
    (created before as_of).

    Parameters
    ----------
    run : runner holding the person-segment table of `build_activity_base`.
    fx : the feature index (number of mask words).
    cfg : feature settings (power-user thresholds).

    Returns
    -------
    str, name of the created table (one row per account and as_of).
    """
    power_days = cfg.power_user_days_per_week * 30 / 7

    def s(w: str) -> str:
        return f"SUM(CASE WHEN w.{w} = 1 THEN CAST(BIT_COUNT(u.dmask) AS DOUBLE) ELSE 0.0 END)"

    m30 = _mask_cols(
        fx.words, "BIT_OR(CASE WHEN w.w30 = 1 THEN u.m{w} ELSE CAST(0 AS BIGINT) END)", "m30_"
    )
    days = ", ".join(f"{s(w)} AS ad{w.removeprefix('w')}" for w in ("w7", "w30", "w90", "p30"))
    aggregates = select_list(
        "user_win",
        {
            "power_days": repr(power_days),
            "power_min_features": int(cfg.power_user_min_features),
            "m30_used": _bitcount(fx.words, "x.m30_{w}"),
        },
    )
    return run.create(
        "user_win",
        f"""
        SELECT x.account_id, x.as_of,
          {aggregates}
        FROM (
          SELECT u.account_id, u.user_id, w.as_of,
            {days},
            {m30}
          FROM {PREFIX}useg AS u JOIN {PREFIX}segwin AS w ON u.seg = w.seg
          WHERE u.user_id IS NOT NULL
          GROUP BY u.account_id, u.user_id, w.as_of
        ) AS x
        LEFT JOIN users AS usr ON x.user_id = usr.user_id AND usr.created_at < x.as_of
        GROUP BY x.account_id, x.as_of
        """,
    )


def monthly_active_users(run: SqlRunner, plan: WindowPlan) -> str:
    """Distinct active human users per account and calendar month (from month_grid_start).

    Parameters
    ----------
    run : runner holding the person-segment table of `build_activity_base`.
    plan : the build's window plan (``month_grid_start``).

    Returns
    -------
    str, name of the created table.
    """
    return run.create(
        "month_users",
        f"""
        SELECT u.account_id, c.month, COUNT(DISTINCT u.user_id) AS active_users
        FROM {PREFIX}useg AS u
        JOIN (SELECT DISTINCT seg, month FROM {PREFIX}cal) AS c ON u.seg = c.seg
        WHERE c.month >= {lit(plan.month_grid_start)} AND u.user_id IS NOT NULL
        GROUP BY u.account_id, c.month
        """,
    )


def known_users(run: SqlRunner) -> str:
    """Human users and admins provisioned before each as_of (created_at < as_of).

    Parameters
    ----------
    run : runner holding the as_of table.

    Returns
    -------
    str, name of the created table (the ``users_known`` measures of `features.catalog`).
    """
    return run.create(
        "users_known",
        f"""
        SELECT u.account_id, a.as_of,
          {select_list("users_known")}
        FROM users AS u JOIN {PREFIX}asof AS a ON u.created_at < a.as_of
        GROUP BY u.account_id, a.as_of
        """,
    )


def catalogue_size(run: SqlRunner) -> str:
    """Catalogue size per as_of: names first used before it (or the configured list).

    Parameters
    ----------
    run : runner holding the as_of and catalogue_names tables.

    Returns
    -------
    str, name of the created table (one row per as_of).
    """
    return run.create(
        "catalogue",
        f"""
        SELECT a.as_of, {select_list("catalogue")}
        FROM {PREFIX}asof AS a
        LEFT JOIN {PREFIX}catalogue_names AS f ON f.first_ts IS NULL OR f.first_ts < a.as_of
        GROUP BY a.as_of
        """,
    )
