"""A small simulated world: contract v1 columns and types, integrity, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from simulator import SimConfig, simulate, summarize

pytestmark = pytest.mark.xdist_group("simulator_small")

SMALL = SimConfig(accounts=200, months=5, seed=11, workers=2)

CONTRACT = {
    "accounts": {
        "account_id": pa.string(),
        "name": pa.string(),
        "created_at": pa.timestamp("us"),
        "tam_usd": pa.float64(),
        "industry": pa.string(),
        "region": pa.string(),
        "employees": pa.int64(),
        "csm_id": pa.string(),
        "coverage": pa.string(),
    },
    "subscriptions": {
        "subscription_id": pa.string(),
        "account_id": pa.string(),
        "product": pa.string(),
        "plan": pa.string(),
        "start_date": pa.date32(),
        "end_date": pa.date32(),
        "mrr": pa.float64(),
        "seats": pa.int64(),
        "term_months": pa.int64(),
    },
    "users": {
        "user_id": pa.string(),
        "account_id": pa.string(),
        "created_at": pa.timestamp("us"),
        "department": pa.string(),
        "role": pa.string(),
        "is_agent": pa.bool_(),
    },
    "events": {
        "account_id": pa.string(),
        "user_id": pa.string(),
        "ts": pa.timestamp("us"),
        "event": pa.string(),
        "actor": pa.string(),
        "status": pa.string(),
        "quantity": pa.float64(),
    },
    "tickets": {
        "ticket_id": pa.string(),
        "account_id": pa.string(),
        "created_at": pa.timestamp("us"),
        "priority": pa.string(),
        "closed_at": pa.timestamp("us"),
        "csat": pa.int64(),
    },
    "plans": {"plan": pa.string(), "seat_limit": pa.int64(), "usage_limit": pa.float64()},
}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim") / "world"
    summary = simulate(SMALL, out, progress=False)
    return out, summary.as_dict()


@pytest.fixture(scope="module")
def con(world) -> duckdb.DuckDBPyConnection:
    out, _ = world
    c = duckdb.connect()
    for t in ("accounts", "subscriptions", "users", "tickets", "plans", "truth"):
        c.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{out / t}.parquet')")
    c.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/events/part-*.parquet')")
    return c


def _one(con, sql: str):
    return con.execute(sql).fetchone()[0]


def _none(con, sql: str) -> None:
    """Assert that a `SELECT count(*) ...` finds no row."""
    assert _one(con, sql) == 0, sql


def _values(con, sql: str) -> set:
    return {r[0] for r in con.execute(sql).fetchall()}


def test_layout_and_manifest(world):
    out, summary = world
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["start"] == "2025-05-01" and manifest["data_end"] == "2025-10-01"
    assert {"seed", "accounts", "months"} <= manifest.keys()
    parts = sorted(p.name for p in (out / "events").glob("part-*.parquet"))
    assert parts == [f"part-2025-{m:02d}.parquet" for m in range(5, 10)]
    assert manifest["tables"]["events"] == summary["events"] > 0
    assert summary["accounts"] == 200 and summary["users"] > 200


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_contract_columns_and_types(world, table):
    out, _ = world
    path = out / f"{table}.parquet"
    if table == "events":
        path = out / "events" / "part-2025-05.parquet"
    schema = pq.read_schema(path)
    assert {f.name: f.type for f in schema} == CONTRACT[table]


KEYS = {"accounts": "account_id", "subscriptions": "subscription_id", "users": "user_id"}


def test_keys_unique_and_known(con):
    for table, key in {**KEYS, "tickets": "ticket_id"}.items():
        _none(con, f"SELECT count(*) - count(DISTINCT {key}) FROM {table}")
    for table in ("subscriptions", "users", "tickets", "events", "truth"):
        _none(
            con,
            f"SELECT count(*) FROM {table} "
            "WHERE account_id NOT IN (SELECT account_id FROM accounts)",
        )
    # every event's user exists and belongs to the event's account
    _none(
        con,
        "SELECT count(*) FROM events e LEFT JOIN users u USING (user_id) "
        "WHERE u.account_id IS DISTINCT FROM e.account_id",
    )
    _none(con, "SELECT count(*) FROM subscriptions WHERE plan NOT IN (SELECT plan FROM plans)")


def test_timestamps_inside_the_data(con):
    end = "DATE '2025-10-01'"
    _none(con, f"SELECT count(*) FROM events WHERE ts >= {end} OR ts < DATE '2025-05-01'")
    for table in ("tickets", "users", "accounts"):
        _none(con, f"SELECT count(*) FROM {table} WHERE created_at >= {end}")
    _none(con, f"SELECT count(*) FROM tickets WHERE closed_at <= created_at OR closed_at >= {end}")
    # identities exist before they act, accounts before their users
    _none(con, "SELECT count(*) FROM events JOIN users u USING (user_id) WHERE ts < u.created_at")
    _none(
        con,
        "SELECT count(*) FROM users u JOIN accounts a USING (account_id) "
        "WHERE u.created_at < a.created_at",
    )


def test_events_semantics(con):
    assert _one(con, "SELECT count(DISTINCT event) FROM events WHERE event <> 'login'") >= 18
    _none(
        con,
        "SELECT count(*) FROM events e JOIN users u USING (user_id) "
        "WHERE (e.actor = 'agent') <> u.is_agent",
    )
    _none(con, "SELECT count(*) FROM events WHERE status = 'error' AND actor <> 'agent'")
    _none(con, "SELECT count(*) FROM events WHERE event = 'login' AND actor = 'agent'")
    errors = _one(con, "SELECT avg((status = 'error')::INT) FROM events WHERE event = 'agent_run'")
    assert 0.02 < errors < 0.5
    assert _one(con, "SELECT min(quantity) FROM events") > 0
    assert _values(con, "SELECT DISTINCT role FROM users") == {"admin", "member"}
    assert _one(con, "SELECT count(DISTINCT department) FROM users WHERE NOT is_agent") >= 7
    assert _one(con, "SELECT count(*) FROM users WHERE is_agent") > 0


def test_account_attributes(con):
    unknown = _one(con, "SELECT avg((tam_usd IS NULL)::INT) FROM accounts")
    assert 0 < unknown < 0.2
    assert _one(con, "SELECT min(tam_usd) FROM accounts") > 0
    tiers = _values(con, "SELECT DISTINCT coverage FROM accounts")
    assert tiers == {"high_touch", "standard", "digital"}
    per_csm = _one(con, "SELECT count(*) / count(DISTINCT csm_id) FROM accounts")
    assert 10 < per_csm < 200
    _none(con, "SELECT count(*) FROM tickets WHERE csat NOT BETWEEN 1 AND 5")
    assert _one(con, "SELECT count(*) FROM tickets WHERE closed_at IS NULL") > 0


def test_subscriptions_never_overlap_for_one_product(con):
    _none(
        con,
        """
        SELECT count(*) FROM subscriptions a JOIN subscriptions b
          ON a.account_id = b.account_id AND a.product = b.product
         AND a.subscription_id < b.subscription_id
         AND a.start_date < coalesce(b.end_date, DATE '9999-01-01')
         AND b.start_date < coalesce(a.end_date, DATE '9999-01-01')
        """,
    )
    _none(
        con,
        "SELECT count(*) FROM subscriptions WHERE end_date <= start_date OR mrr < 0 OR seats < 1",
    )
    assert _values(con, "SELECT DISTINCT term_months FROM subscriptions") == {1, 12}
    # an add-on never outlives the core platform subscription
    _none(
        con,
        """
        SELECT count(*) FROM subscriptions a
        WHERE a.product <> 'platform' AND NOT EXISTS (
          SELECT 1 FROM subscriptions c
          WHERE c.account_id = a.account_id AND c.product = 'platform'
            AND c.start_date <= a.start_date
            AND coalesce(c.end_date, DATE '9999-01-01') >= coalesce(a.end_date, DATE '9999-01-01'))
        """,
    )


def test_truth_covers_exactly_the_paying_accounts(con, world):
    out, summary = world
    assert summary["extra"]["truth_arr_matches_subscriptions"]
    paying = _one(
        con,
        """
        SELECT count(*) FROM (
          SELECT s.account_id, m.d FROM (SELECT DISTINCT month_start AS d FROM truth) m
          JOIN subscriptions s ON s.start_date <= m.d AND (s.end_date IS NULL OR s.end_date > m.d)
          GROUP BY ALL HAVING sum(mrr) > 0)
        """,
    )
    assert paying == _one(con, "SELECT count(*) FROM truth")
    _none(
        con,
        "SELECT count(*) FROM truth WHERE least(p_churn, p_expand, p_contract) < 0 "
        "OR p_churn + p_expand + p_contract > 1 + 1e-9",
    )


def test_summarize_recomputes_the_same_figures(world):
    out, summary = world
    again = summarize(out)
    for key in ("events", "monthly_logo_churn", "annual_nrr", "oracle_auc_churn", "churn_60d_rate"):
        assert again[key] == pytest.approx(summary[key], nan_ok=True)


def _tables(out: Path) -> dict[str, pa.Table]:
    names = ["accounts", "subscriptions", "users", "tickets", "plans", "truth"]
    got = {n: pq.read_table(out / f"{n}.parquet") for n in names}
    got["events"] = pa.concat_tables(
        pq.read_table(p) for p in sorted((out / "events").glob("*.parquet"))
    )
    return got


def test_deterministic_for_a_seed_and_independent_of_threads(world, tmp_path):
    out, _ = world
    one_thread = tmp_path / "again"
    simulate(SMALL.model_copy(update={"workers": 1}), one_thread, progress=False)
    a, b = _tables(out), _tables(one_thread)
    for name in a:  # pandas equality: NaN labels in the same places count as equal
        assert a[name].to_pandas().equals(b[name].to_pandas()), name
    other = tmp_path / "other"
    simulate(SMALL.model_copy(update={"seed": 12}), other, progress=False)
    assert not pq.read_table(other / "subscriptions.parquet").equals(a["subscriptions"])


def test_refuses_to_overwrite_a_foreign_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("not a world")
    with pytest.raises(FileExistsError, match="manifest.json"):
        simulate(SimConfig(accounts=5, months=1), tmp_path, progress=False)
    assert (tmp_path / "keep.txt").exists()


def test_replaces_a_previous_world(tmp_path):
    out = tmp_path / "w"
    simulate(SimConfig(accounts=20, months=2, seed=1), out, progress=False)
    s = simulate(SimConfig(accounts=30, months=1, seed=2), out, progress=False)
    assert s.accounts == 30
    assert len(list((out / "events").glob("*.parquet"))) == 1
    assert not list(tmp_path.glob(".w.*"))
    assert np.isfinite(s.wall_seconds)
