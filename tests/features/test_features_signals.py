"""On a simulated book, the named signals relate to churn and expansion with the expected sign.

The simulator (simulator/) drives churn and expansion from latent engagement and value;
the features only see the observable behaviour. Each signal's AUC against the 60-day
label must sit on the expected side of 0.5.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.build import build_feature_table
from features.config import FeatureConfig
from features.snapshots import observation_dates

simulator = pytest.importorskip("simulator", reason="the simulator package is not available")

TABLES = ("accounts", "subscriptions", "users", "tickets", "plans")

# (feature, label, expected direction, minimum distance of the AUC from 0.5). Raw AUCs,
# so only signals whose sign does not hinge on account size (small accounts churn more
# and have high seat utilization) are listed.
SIGNALS = [
    ("active_days_30d", "label_churn", -1, 0.1),
    ("events_30d", "label_churn", -1, 0.1),
    ("active_users_30d", "label_churn", -1, 0.1),
    ("feature_share_30d", "label_churn", -1, 0.1),
    ("power_user_share_30d", "label_churn", -1, 0.05),
    ("login_decay", "label_churn", -1, 0.0),
    ("active_users_trend_30d", "label_churn", -1, 0.0),
    ("days_since_last_activity", "label_churn", +1, 0.1),
    ("high_priority_tickets_90d", "label_churn", +1, 0.03),
    ("csat_90d", "label_churn", -1, 0.05),
    ("days_to_renewal", "label_churn", -1, 0.1),
    ("feature_share_30d", "label_expand", +1, 0.03),
    ("seat_utilization_30d", "label_expand", +1, 0.03),
    ("months_high_seat_util", "label_expand", +1, 0.03),
    ("usage_vs_limit_30d", "label_expand", +1, 0.02),
]


@pytest.fixture(scope="module")
def panel(tmp_path_factory) -> pd.DataFrame:
    out = tmp_path_factory.mktemp("sim") / "world"
    simulator.simulate(simulator.SimConfig(accounts=600, months=12, seed=3), out, progress=False)
    manifest = json.loads((out / "manifest.json").read_text())
    start, data_end = (date.fromisoformat(manifest[k]) for k in ("start", "data_end"))
    con = duckdb.connect()
    con.execute("SET threads = 2")
    for t in TABLES:
        con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{out / t}.parquet')")
    con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{out}/events/*.parquet')")
    # snapshots once 90 days of behaviour exist, so that windows are full
    dates = observation_dates(start + timedelta(days=90), data_end)
    table = build_feature_table(con, dates, FeatureConfig(), data_end=data_end, progress=False)
    return table[table["label_known"]]


def test_panel_has_both_outcomes(panel):
    assert len(panel) > 2000
    assert 10 < panel["label_churn"].sum() < 0.2 * len(panel)
    assert 10 < panel["label_expand"].sum() < 0.3 * len(panel)


@pytest.mark.parametrize(
    "feature,label,sign,margin", SIGNALS, ids=[f"{f}-{lab}" for f, lab, _, _ in SIGNALS]
)
def test_signal_has_the_expected_sign(panel, feature, label, sign, margin):
    x = panel[feature]
    ok = x.notna()
    auc = roc_auc_score(panel.loc[ok, label], x[ok])
    assert sign * (auc - 0.5) > margin, f"{feature} vs {label}: AUC {auc:.3f}"
