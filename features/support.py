"""Support features from tickets: volume, trend, high priority, open tickets and CSAT.

Point in time: a ticket exists at as_of when ``created_at < as_of``; it is closed at as_of
only when ``closed_at < as_of`` (a later close is not known yet, so it counts as open);
its CSAT is known only once it is closed before as_of.
"""

from __future__ import annotations

from features.catalog import select_list
from features.sqlrun import PREFIX, SqlRunner


def ticket_features(run: SqlRunner) -> str:
    """Account x as_of ticket aggregates (accounts with no ticket before as_of are absent).

    The aggregates are the ``tickets_asof`` measures of `features.catalog`.

    Parameters
    ----------
    run : runner holding the as_of table (window bounds ``d30``, ``d90``).

    Returns
    -------
    str, name of the created table.
    """
    return run.create(
        "tickets_asof",
        f"""
        SELECT t.account_id, a.as_of,
          {select_list("tickets_asof")}
        FROM tickets AS t JOIN {PREFIX}asof AS a ON t.created_at < a.as_of
        GROUP BY t.account_id, a.as_of
        """,
    )
