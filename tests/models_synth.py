"""Synthetic snapshot panels shared by the model tests (no test functions here).

`synthetic_panel` mimics the feature table: one row per account and monthly ``as_of``,
numeric features (some named like the health-score inputs), labels drawn from known
probabilities with a non-linear term, and the last dates not yet matured.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = [
    "login_decay",
    "active_users_30d",
    "features_used_30d",
    "seat_utilization_30d",
    "tickets_30d",
    "usage_vs_limit_30d",
    "whitespace",
    "noise_a",
    "noise_b",
]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def synthetic_panel(
    n_accounts: int = 600, months: int = 14, seed: int = 0, unmatured: int = 2
) -> pd.DataFrame:
    """A feature-table-like panel with true probabilities ``p_true_churn``/``p_true_expand``."""
    rng = np.random.default_rng(seed)
    as_of = pd.date_range("2025-01-01", periods=months, freq="MS")
    n = n_accounts * months
    health = np.repeat(rng.normal(size=n_accounts), months) + rng.normal(0, 0.5, n)
    x = {
        "login_decay": health + rng.normal(0, 0.7, n),
        "active_users_30d": np.exp(health * 0.3 + rng.normal(2, 0.5, n)),
        "features_used_30d": np.clip(np.round(8 + 3 * health + rng.normal(0, 2, n)), 0, 20),
        "seat_utilization_30d": np.clip(0.6 + 0.15 * health + rng.normal(0, 0.15, n), 0, 1.5),
        "tickets_30d": rng.poisson(np.exp(0.5 - 0.4 * health)),
        "usage_vs_limit_30d": np.clip(rng.normal(0.6, 0.25, n), 0, 2),
        "whitespace": np.where(rng.random(n) < 0.1, np.nan, rng.lognormal(11, 1, n)),
        "noise_a": rng.normal(size=n),
        "noise_b": rng.uniform(size=n),
    }
    z_churn = (
        -3.2
        - 1.1 * x["login_decay"]
        + 0.8 * (x["tickets_30d"] >= 3)
        + 0.9 * (x["seat_utilization_30d"] < 0.4)
    )
    z_expand = (
        -3.0
        + 2.5 * np.maximum(x["seat_utilization_30d"] - 0.8, 0) * 4
        + 1.2 * (x["usage_vs_limit_30d"] > 0.9)
    )
    p_churn, p_expand = _sigmoid(z_churn), _sigmoid(z_expand)
    known = np.repeat(np.arange(months) < months - unmatured, n_accounts).reshape(months, -1)
    known = known.T.ravel()
    y_churn = (rng.random(n) < p_churn).astype(float)
    y_expand = ((rng.random(n) < p_expand) & (y_churn == 0)).astype(float)
    frame = pd.DataFrame(
        {
            "account_id": np.repeat([f"A{i:05d}" for i in range(n_accounts)], months),
            "as_of": np.tile(as_of.values.astype("datetime64[us]"), n_accounts),
            "coverage": np.repeat(
                rng.choice(["high_touch", "standard", "digital"], n_accounts), months
            ),
            "maturity_stage": rng.choice(["Experimenter", "Builder", "Transformer"], n),
            **x,
            "p_true_churn": p_churn,
            "p_true_expand": p_expand,
            "label_churn": np.where(known, y_churn, np.nan),
            "label_expand": np.where(known, y_expand, np.nan),
            "label_known": known,
        }
    )
    return frame
