"""Property: whatever is broken, every raw row ends up exactly once, clean or quarantined."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_validate import NOW, world, write_source

from features.contract import TABLES
from features.sources import open_source
from features.validate import validate

# (table, column, bad value) corruptions; several may hit the same row
CORRUPTIONS = [
    ("events", "account_id", "A9"),
    ("events", "account_id", None),
    ("events", "user_id", "U99"),
    ("events", "user_id", "U5"),  # a user of another account for most rows
    ("events", "ts", pd.Timestamp("2026-03-01")),
    ("events", "actor", "robot"),
    ("events", "actor", " AGENT"),
    ("events", "status", "lost"),
    ("events", "quantity", -1.0),
    ("accounts", "created_at", pd.Timestamp("2027-01-01")),
    ("accounts", "tam_usd", -5.0),
    ("users", "account_id", "A9"),
    ("users", "user_id", "U1"),  # duplicate key
    ("subscriptions", "mrr", -1.0),
    ("tickets", "csat", 0),
]
KEYS = {
    "events": ["account_id", "user_id", "ts", "event"],
    "users": ["user_id", "account_id", "created_at"],
    "accounts": ["account_id", "name"],
}


def _rows(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    rows = [
        tuple(None if pd.isna(v) else v for v in row)
        for row in df[cols].itertuples(index=False, name=None)
    ]
    return sorted(rows, key=repr)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(range(len(CORRUPTIONS))), st.integers(0, 40)),
        min_size=1,
        max_size=8,
    )
)
def test_every_row_is_clean_or_quarantined_exactly_once(tmp_path_factory, hits):
    tables = world()
    for which, row in hits:
        table, col, value = CORRUPTIONS[which]
        df = tables[table]
        df.loc[row % len(df), col] = value
    root = tmp_path_factory.mktemp("prop")
    src = open_source(write_source(tables, root / "src"))
    report = validate(src, now=NOW, quarantine_dir=root / "q")
    assert report.ok
    for name in TABLES:
        if name not in tables:  # an optional table the source does not have
            assert name not in report.counts or report.counts[name].read == 0
            continue
        c = report.counts[name]
        assert c.read == len(tables[name]) == c.clean + c.quarantined
    for name, cols in KEYS.items():
        clean = src.con.execute(f"SELECT * FROM {name}").df()
        parts = [clean[cols]]
        if name in report.quarantine_files:
            q = pq.read_table(report.quarantine_files[name]).to_pandas()
            assert q["reason"].str.len().gt(0).all()
            parts.append(q[cols])
        both = pd.concat(parts, ignore_index=True)
        assert _rows(both, cols) == _rows(tables[name], cols), name
    # the clean relations are referentially whole
    con = src.con
    assert con.execute(
        "SELECT count(*) FROM events e WHERE e.account_id NOT IN (SELECT account_id FROM accounts)"
        " OR (e.user_id IS NOT NULL AND (e.user_id, e.account_id) NOT IN"
        " (SELECT user_id, account_id FROM users))"
    ).fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM users WHERE account_id NOT IN (SELECT account_id FROM accounts)"
    ).fetchone() == (0,)
    assert con.execute(
        "SELECT count(*) FROM events WHERE actor NOT IN ('human', 'agent') OR ts >= ?", [NOW]
    ).fetchone() == (0,)
