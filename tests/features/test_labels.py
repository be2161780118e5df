"""Label edge cases: boundary renewals, overlaps, lapses, late accounts, zero ARR, horizon."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from features_fixtures import connect

from features.labels import build_labels

AS_OF = date(2025, 3, 1)
H = 60
T = AS_OF + timedelta(days=H)  # 2025-04-30
DATA_END = date(2025, 12, 1)


def _world(subs: list[tuple], accounts: dict[str, str] | None = None) -> dict[str, pd.DataFrame]:
    s = pd.DataFrame(
        subs, columns=["subscription_id", "account_id", "start_date", "end_date", "mrr"]
    )
    s["start_date"] = pd.to_datetime(s["start_date"]).dt.date
    s["end_date"] = pd.to_datetime(s["end_date"]).dt.date
    s = s.assign(product="platform", plan="starter")
    ids = sorted(set(s["account_id"]))
    created = {a: "2024-01-01" for a in ids} | (accounts or {})
    acc = pd.DataFrame(
        {
            "account_id": ids,
            "name": ids,
            "created_at": pd.to_datetime([created[a] for a in ids]),
            "tam_usd": np.nan,
        }
    )
    return {"accounts": acc, "subscriptions": s}


def _labels(subs, accounts=None, as_of=AS_OF, data_end=DATA_END, **kw) -> pd.DataFrame:
    con = connect(_world(subs, accounts))
    out = build_labels(con, [as_of], horizon_days=H, expansion_pct=0.10, data_end=data_end, **kw)
    return out.set_index("account_id")


def _row(df, account):
    r = df.loc[account]
    return (r["arr"], r["arr_h"], r["label_churn"], r["label_expand"], r["label_contract"])


def test_renewal_on_the_boundary_days():
    out = _labels(
        [
            # renewal exactly at as_of: the old term counts at as_of, the new one does not yet
            ("a1", "A", "2024-03-01", "2025-03-01", 100.0),
            ("a2", "A", "2025-03-01", None, 100.0),
            # renewal exactly at as_of + H: ARR(T) covers the days before T, old term still open
            ("b1", "B", "2024-05-01", T.isoformat(), 100.0),
            ("b2", "B", T.isoformat(), None, 150.0),
            # ends the day before as_of + H, renewal starts at as_of + H: a gap on day T-1
            ("c1", "C", "2024-05-01", (T - timedelta(days=1)).isoformat(), 100.0),
            ("c2", "C", T.isoformat(), None, 100.0),
        ]
    )
    assert _row(out, "A") == (1200.0, 1200.0, 0.0, 0.0, 0.0)
    assert _row(out, "B") == (1200.0, 1200.0, 0.0, 0.0, 0.0)
    assert _row(out, "C") == (1200.0, 0.0, 1.0, 0.0, 0.0)


def test_overlapping_subscriptions_add_up():
    out = _labels(
        [
            ("a1", "A", "2024-06-01", None, 100.0),
            ("a2", "A", "2025-01-01", "2025-04-01", 50.0),  # overlap, ends inside horizon
            ("b1", "B", "2024-06-01", None, 100.0),
            ("b2", "B", "2025-02-01", None, 100.0),  # both still open at T
        ]
    )
    assert _row(out, "A") == (1800.0, 1200.0, 0.0, 0.0, 1.0)
    assert _row(out, "B") == (2400.0, 2400.0, 0.0, 0.0, 0.0)


def test_lapse_and_reactivation_inside_the_horizon():
    out = _labels(
        [
            ("a1", "A", "2024-06-01", "2025-03-10", 100.0),
            ("a2", "A", "2025-04-01", None, 120.0),  # back before T, 20% bigger
            ("b1", "B", "2024-06-01", "2025-03-10", 100.0),
            ("b2", "B", "2025-05-15", None, 100.0),  # back only after T
        ]
    )
    assert _row(out, "A") == (1200.0, 1440.0, 0.0, 1.0, 0.0)
    assert _row(out, "B") == (1200.0, 0.0, 1.0, 0.0, 0.0)


def test_account_created_after_as_of_is_not_in_the_population():
    out = _labels(
        [
            ("a1", "A", "2024-06-01", None, 100.0),
            ("b1", "B", "2025-01-01", None, 100.0),  # backdated subscription
            ("c1", "C", "2025-03-05", None, 100.0),
        ],
        accounts={"B": "2025-03-02", "C": "2025-03-05"},
    )
    assert list(out.index) == ["A"]


def test_zero_arr_at_as_of_is_not_in_the_population():
    out = _labels(
        [
            ("a1", "A", "2024-06-01", None, 100.0),
            ("b1", "B", "2024-06-01", None, 0.0),  # free plan
            ("c1", "C", "2025-03-02", None, 100.0),  # starts after as_of
            ("d1", "D", "2024-06-01", "2025-02-28", 100.0),  # ended before as_of
        ]
    )
    assert list(out.index) == ["A"]


def test_expansion_and_contraction_thresholds_are_inclusive():
    out = _labels(
        [
            ("a1", "A", "2024-06-01", "2025-04-01", 1000.0),
            ("a2", "A", "2025-04-01", None, 1100.0),  # exactly +10%
            ("b1", "B", "2024-06-01", "2025-04-01", 1000.0),
            ("b2", "B", "2025-04-01", None, 900.0),  # exactly -10%
            ("c1", "C", "2024-06-01", "2025-04-01", 1000.0),
            ("c2", "C", "2025-04-01", None, 1099.0),  # +9.9%: neither
        ]
    )
    assert _row(out, "A")[2:] == (0.0, 1.0, 0.0)
    assert _row(out, "B")[2:] == (0.0, 0.0, 1.0)
    assert _row(out, "C")[2:] == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "data_end,known", [(T, True), (T - timedelta(days=1), False), (T + timedelta(days=1), True)]
)
def test_horizon_past_data_end_is_unknown(data_end, known):
    out = _labels([("a1", "A", "2024-06-01", None, 100.0)], data_end=data_end)
    row = out.loc["A"]
    assert bool(row["label_known"]) is known
    if known:
        assert row["arr_h"] == 1200.0 and row["label_churn"] == 0.0
    else:
        assert np.isnan(row["arr_h"]) and np.isnan(row["label_churn"])
        assert np.isnan(row["label_expand"]) and np.isnan(row["label_contract"])
    assert row["arr"] == 1200.0


def test_labels_columns_and_types():
    con = connect(_world([("a1", "A", "2024-06-01", None, 100.0)]))
    out = build_labels(
        con, [AS_OF, date(2025, 11, 1)], horizon_days=H, expansion_pct=0.1, data_end=DATA_END
    )
    assert list(out.columns) == [
        "account_id",
        "as_of",
        "arr",
        "arr_h",
        "label_churn",
        "label_expand",
        "label_contract",
        "label_known",
    ]
    assert str(out["as_of"].dtype) == "datetime64[us]"
    assert out["label_known"].tolist() == [True, False]
