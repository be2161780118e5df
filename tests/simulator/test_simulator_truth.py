"""A medium simulated world: realism ranges, calibrated `truth`, signals with the right sign."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from simulator import SimConfig, simulate

pytestmark = pytest.mark.xdist_group("simulator_medium")

MEDIUM = SimConfig(accounts=1200, months=11, seed=5, workers=2)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("sim") / "medium"
    return out, simulate(MEDIUM, out, progress=False).as_dict()


@pytest.fixture(scope="module")
def truth(world) -> pd.DataFrame:
    out, _ = world
    return pd.read_parquet(out / "truth.parquet")


@pytest.fixture(scope="module")
def signals(world) -> pd.DataFrame:
    """Signals CS teams use, at each month start with a known label (point in time)."""
    out, _ = world
    con = duckdb.connect()
    for t in ("users", "tickets", "subscriptions", "truth"):
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{out / t}.parquet')")
    con.execute(
        f"""
        CREATE TABLE daily AS
        SELECT e.account_id, CAST(e.ts AS DATE) AS d,
               count(*) FILTER (WHERE e.event = 'login') AS logins,
               count(*) FILTER (WHERE e.event = 'agent_run') AS runs,
               count(*) FILTER (WHERE e.event = 'agent_run' AND e.status = 'error') AS errors,
               count(*) FILTER (WHERE e.event IN ('settings_change', 'user_invite', 'billing_view')) AS admin
        FROM read_parquet('{out}/events/part-*.parquet') e GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE TABLE active AS
        SELECT DISTINCT account_id, user_id, CAST(ts AS DATE) AS d
        FROM read_parquet('{out}/events/part-*.parquet') WHERE actor = 'human'
        """
    )
    return con.execute(
        """
        WITH spine AS (
          SELECT account_id, month_start AS t, label_churn, label_expand
          FROM truth WHERE label_known AND month_start >= DATE '2025-08-01'),
        act AS (
          SELECT s.account_id, s.t,
                 sum(logins) FILTER (WHERE d >= t - 30) AS l30,
                 sum(logins) FILTER (WHERE d < t - 30) AS l_prev60,
                 sum(runs) AS runs90, sum(errors) AS errors90, sum(admin) AS admin90
          FROM spine s JOIN daily y ON y.account_id = s.account_id AND y.d < s.t AND y.d >= s.t - 90
          GROUP BY ALL),
        users30 AS (
          SELECT s.account_id, s.t, count(DISTINCT a.user_id) AS au30, count(DISTINCT u.department) AS dep30
          FROM spine s JOIN active a ON a.account_id = s.account_id AND a.d < s.t AND a.d >= s.t - 30
          JOIN users u ON u.user_id = a.user_id GROUP BY ALL),
        tk AS (
          SELECT s.account_id, s.t, count(*) AS tickets90
          FROM spine s JOIN tickets k ON k.account_id = s.account_id
           AND k.created_at < s.t AND k.created_at >= s.t - INTERVAL 90 DAY GROUP BY ALL),
        seats AS (
          SELECT s.account_id, s.t, sum(b.seats) AS seats
          FROM spine s JOIN subscriptions b ON b.account_id = s.account_id AND b.product = 'platform'
           AND b.start_date <= s.t AND (b.end_date IS NULL OR b.end_date > s.t) GROUP BY ALL)
        SELECT spine.*, coalesce(l30, 0) AS l30, coalesce(l_prev60, 0) AS l_prev60,
               coalesce(runs90, 0) AS runs90, coalesce(errors90, 0) AS errors90,
               coalesce(admin90, 0) AS admin90, coalesce(au30, 0) AS au30,
               coalesce(dep30, 0) AS dep30, coalesce(tickets90, 0) AS tickets90, seats
        FROM spine LEFT JOIN act USING (account_id, t) LEFT JOIN users30 USING (account_id, t)
        LEFT JOIN tk USING (account_id, t) LEFT JOIN seats USING (account_id, t)
        """
    ).df()


def test_realism_ranges_loosely_hold(world):
    _, s = world
    assert 0.005 <= s["monthly_logo_churn"] <= 0.04
    assert 0.85 <= s["annual_nrr"] <= 1.25
    assert 0.75 <= s["annual_grr"] <= 0.98
    assert s["share_of_churn_near_renewal"] >= 0.6
    assert 0.01 <= s["expand_60d_rate"] <= 0.15
    assert 0.01 <= s["churn_60d_rate"] <= 0.10
    assert s["oracle_auc_churn"] > 0.75 and s["oracle_auc_expand"] > 0.6


def test_truth_probabilities_are_calibrated(truth):
    known = truth[truth["label_known"]]
    for label, prob in (
        ("label_churn", "p_churn"),
        ("label_expand", "p_expand"),
        ("label_contract", "p_contract"),
    ):
        p, y = known[prob].to_numpy(), known[label].to_numpy()
        assert np.all((p >= 0) & (p <= 1))
        se = np.sqrt((p * (1 - p)).sum()) / p.shape[0]
        # rows of one account overlap in time; allow for that with a wide band
        assert abs(y.mean() - p.mean()) < 5 * se, (label, y.mean(), p.mean())
        bins = pd.qcut(p, 5, labels=False, duplicates="drop")
        rates = pd.Series(y).groupby(bins).mean()
        means = pd.Series(p).groupby(bins).mean()
        assert rates.iloc[-1] > rates.iloc[0]
        assert np.all(np.abs(rates - means) < 0.015 + 0.2 * means), (label, rates, means)


def test_outcomes_happen_only_where_truth_allows_them(truth):
    known = truth[truth["label_known"]]
    for label, prob in (
        ("label_churn", "p_churn"),
        ("label_expand", "p_expand"),
        ("label_contract", "p_contract"),
    ):
        assert (known.loc[known[label] == 1.0, prob] > 0).all(), label
    # windows without a decision point are certain: nothing happens in them
    quiet = known[(known["p_churn"] + known["p_expand"] + known["p_contract"]) == 0]
    assert len(quiet) > 0
    assert (quiet["arr_h"] == quiet["arr"]).all()


def test_truth_state_columns(truth):
    assert set(truth["maturity_stage"]) == {"Experimenter", "Builder", "Transformer"}
    by_stage = truth.groupby("maturity_level")["engagement"].mean()
    assert by_stage.is_monotonic_increasing  # mature accounts are the engaged ones
    first, last = truth["month_start"].min(), truth["month_start"].max()
    share = truth.groupby("month_start")["maturity_level"].mean()
    assert share[last] > share[first]  # the book matures over time


def _bottom_vs_rest(frame: pd.DataFrame, signal: pd.Series, label: str) -> tuple[float, float]:
    low = signal <= signal.quantile(0.25)
    return frame.loc[low, label].mean(), frame.loc[~low, label].mean()


def test_signals_relate_to_outcomes_with_the_expected_sign(signals):
    f = signals
    seats = f["seats"].clip(lower=1)
    decay = (f["l30"] + 1) / (f["l_prev60"] / 2 + 1)
    low, rest = _bottom_vs_rest(f, decay, "label_churn")
    assert low > rest, "accounts with falling logins churn more"
    low, rest = _bottom_vs_rest(f, f["l30"] / seats, "label_churn")
    assert low > 1.5 * rest, "accounts with few logins per seat churn more"
    low, rest = _bottom_vs_rest(f, f["admin90"] / seats, "label_churn")
    assert low > rest, "accounts whose admins are disengaged churn more"
    low, rest = _bottom_vs_rest(f, -f["tickets90"] / seats**0.6, "label_churn")
    assert low > 1.5 * rest, "accounts with many tickets churn more"
    runs = f[f["runs90"] >= 30]
    low, rest = _bottom_vs_rest(runs, -runs["errors90"] / runs["runs90"], "label_churn")
    assert low > 1.5 * rest, "accounts whose agents fail churn more"
    big = f[f["seats"] >= 8]
    low, rest = _bottom_vs_rest(big, big["dep30"], "label_churn")
    assert low > rest, "accounts active in few departments churn more"
    high_util = (f["au30"] / seats) > 0.8
    assert f.loc[high_util, "label_expand"].mean() > 1.5 * f.loc[~high_util, "label_expand"].mean()
