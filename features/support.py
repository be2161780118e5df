"""Support features from tickets: volume, trend, high priority, open tickets and CSAT.

Point in time: a ticket exists at as_of when ``created_at < as_of``; it is closed at as_of
only when ``closed_at < as_of`` (a later close is not known yet, so it counts as open);
its CSAT is known only once it is closed before as_of.
"""

from __future__ import annotations

from features.sqlrun import PREFIX, SqlRunner

HIGH_PRIORITIES = "('high', 'urgent')"


def ticket_features(run: SqlRunner) -> str:
    """Account x as_of ticket aggregates (accounts with no ticket before as_of are absent)."""
    return run.create(
        "tickets_asof",
        f"""
        SELECT t.account_id, a.as_of,
          SUM(CASE WHEN t.created_at >= a.d30 THEN 1 ELSE 0 END) AS tickets_30d,
          SUM(CASE WHEN t.created_at >= a.d90 THEN 1 ELSE 0 END) AS tickets_90d,
          SUM(CASE WHEN t.created_at >= a.d90 AND t.created_at < a.d30 THEN 1 ELSE 0 END)
            AS tickets_p60,
          SUM(CASE WHEN t.created_at >= a.d90 AND t.priority IN {HIGH_PRIORITIES} THEN 1 ELSE 0 END)
            AS high_priority_tickets_90d,
          SUM(CASE WHEN t.closed_at IS NULL OR t.closed_at >= a.as_of THEN 1 ELSE 0 END)
            AS open_tickets,
          MAX(CASE WHEN t.closed_at IS NULL OR t.closed_at >= a.as_of
                   THEN DATE_DIFF('day', CAST(t.created_at AS DATE), a.as_of) END)
            AS open_ticket_max_age_days,
          AVG(CASE WHEN t.closed_at < a.as_of AND t.closed_at >= a.d90 THEN t.csat END) AS csat_90d,
          MAX(CASE WHEN t.priority IS NOT NULL THEN 1 ELSE 0 END) AS any_priority,
          MAX(CASE WHEN t.csat IS NOT NULL AND t.closed_at < a.as_of THEN 1 ELSE 0 END) AS any_csat
        FROM tickets AS t JOIN {PREFIX}asof AS a ON t.created_at < a.as_of
        GROUP BY t.account_id, a.as_of
        """,
    )


def ticket_availability(run: SqlRunner) -> str:
    """Per as_of: whether any ticket, priority or CSAT was known before it (any account)."""
    return run.create(
        "tickets_avail",
        f"""
        SELECT a.as_of,
          MAX(CASE WHEN t.account_id IS NOT NULL THEN 1 ELSE 0 END) AS has_tickets,
          MAX(COALESCE(t.any_priority, 0)) AS has_priority,
          MAX(COALESCE(t.any_csat, 0)) AS has_csat
        FROM {PREFIX}asof AS a LEFT JOIN {PREFIX}tickets_asof AS t ON t.as_of = a.as_of
        GROUP BY a.as_of
        """,
    )
