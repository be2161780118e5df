"""Realistic, generated inputs for the report tests: a scores frame, earlier runs and NRR periods.

Everything is vectorized over accounts and deterministic for a seed. One account is named
``<script>alert(1)</script>`` (with an id full of URL and HTML specials) so every test sees
hostile text.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from evaluation.report import ReportInputs, ReportMeta, ReportOptions

XSS_NAME = "<script>alert(1)</script>"
XSS_ID = "X<1>&\"'/#?%"
THRESHOLDS = {"churn": 0.25, "expand": 0.35}

# feature, sentence prefix, sentence suffix, value generator (rng, n) -> values, decimals
_FEATURES: list[tuple[str, str, str, object, int]] = [
    (
        "active_users_30d_trend",
        "Active users changed by ",
        "% over the last 30 days",
        lambda r, n: r.normal(-10, 25, n),
        0,
    ),
    (
        "login_decay",
        "Logins in the last 30 days are ",
        "% of the 60 days before",
        lambda r, n: r.uniform(30, 140, n),
        0,
    ),
    ("breadth_share", "Uses ", "% of the product's features", lambda r, n: r.uniform(5, 80, n), 0),
    ("seat_utilization", "Seat utilization is ", "%", lambda r, n: r.uniform(20, 110, n), 0),
    (
        "tickets_high_30d",
        "",
        " high-priority support tickets in the last 30 days",
        lambda r, n: r.poisson(2, n).astype(float),
        0,
    ),
    (
        "days_to_renewal",
        "Renewal is in ",
        " days",
        lambda r, n: r.integers(5, 365, n).astype(float),
        0,
    ),
    (
        "agent_success_rate",
        "AI agent runs succeed ",
        "% of the time",
        lambda r, n: r.uniform(40, 99, n),
        0,
    ),
    (
        "power_users",
        "",
        " power users active at least 5 days a week",
        lambda r, n: r.poisson(6, n).astype(float),
        0,
    ),
    (
        "usage_vs_limit",
        "Usage is at ",
        "% of the plan limit",
        lambda r, n: r.uniform(10, 130, n),
        0,
    ),
    (
        "champion_depth",
        "Active in ",
        " departments",
        lambda r, n: r.integers(1, 9, n).astype(float),
        0,
    ),
    ("csat_90d", "Average CSAT over 90 days is ", " out of 5", lambda r, n: r.uniform(2, 5, n), 1),
]
_PREFIX = np.array(
    [
        "Northwind",
        "Acme",
        "Globex",
        "Initech",
        "Umbrella",
        "Stark",
        "Wayne",
        "Tyrell",
        "Cyberdyne",
        "Hooli",
        "Vandelay",
        "Soylent",
        "Oscorp",
        "Wonka",
        "Gringotts",
        "Pied Piper",
        "Massive Dynamic",
        "Aperture",
    ]
)
_SUFFIX = np.array(
    [
        "Analytics",
        "Logistics",
        "Health",
        "Bank",
        "Retail",
        "Labs",
        "Foods",
        "Energy",
        "Media",
        "Robotics",
        "Insurance",
        "Travel",
    ]
)
_PLAYBOOKS = {
    "at_risk": (
        "Support escalation",
        "Rising high-priority tickets & falling logins point to service pain",
    ),
    "ready": ("Seat expansion", "Seat utilization above 80% with whitespace to grow"),
    "accelerate": ("Adoption plan", "Large TAM but early AI maturity: broaden feature adoption"),
    "strategic_partnership": (
        "Executive business review",
        "Mature, high-TAM account: align on a joint roadmap",
    ),
    "efficient_expansion": (
        "Advocacy & referrals",
        "Mature account with limited TAM: ask for a case study",
    ),
    "prove_value": ("Prove value in 90 days", "Small TAM, early maturity: digital onboarding path"),
}


def _band(p: np.ndarray, threshold: float) -> np.ndarray:
    return np.select([p >= threshold, p >= threshold / 2], ["high", "medium"], default="low")


def _reasons_json(rng: np.random.Generator, n: int, per_target: int = 3) -> pd.Series:
    """reasons_json strings built column-wise: one loop over reason slots, none over accounts."""
    n_feat = len(_FEATURES)
    picks = np.argsort(rng.random((n, n_feat)), axis=1)[:, : 2 * per_target]
    values = np.column_stack([gen(rng, n) for _, _, _, gen, _ in _FEATURES])
    names = np.array([f[0] for f in _FEATURES])
    slots = []
    for k in range(2 * per_target):
        target = "churn" if k < per_target else "expand"
        feat = picks[:, k]
        val = values[np.arange(n), feat]
        dec = np.array([f[4] for f in _FEATURES])[feat]
        val = np.where(dec == 0, np.round(val), np.round(val, 1))
        contrib = np.round(rng.normal(0.15 if target == "churn" else 0.05, 0.35, n), 4)
        val_txt = pd.Series(
            np.where(dec == 0, val.astype(int).astype(str), np.char.mod("%.1f", val))
        )
        prefix = pd.Series(np.array([f[1] for f in _FEATURES])[feat])
        suffix = pd.Series(np.array([f[2] for f in _FEATURES])[feat])
        sentence = prefix + val_txt + suffix
        obj = (
            '{"target":"'
            + target
            + '","direction":"'
            + pd.Series(np.where(contrib > 0, "up", "down"))
            + '","feature":"'
            + pd.Series(names[feat])
            + '","value":'
            + val_txt
            + ',"contribution":'
            + pd.Series(contrib).astype(str)
            + ',"sentence":"'
            + sentence
            + '"}'
        )
        slots.append(obj)
    joined = slots[0]
    for s in slots[1:]:
        joined = joined + "," + s
    return "[" + joined + "]"


def make_scores(n: int = 300, seed: int = 0, as_of: str = "2025-06-30") -> pd.DataFrame:
    """A scores table of ``n`` accounts shaped like models/segment.py's output."""
    rng = np.random.default_rng(seed)
    ids = pd.Series(np.char.add("A", np.char.zfill(np.arange(n).astype(str), 5)))
    names = (
        pd.Series(_PREFIX[rng.integers(0, len(_PREFIX), n)])
        + " "
        + pd.Series(_SUFFIX[rng.integers(0, len(_SUFFIX), n)])
    )
    n_csm = max(2, n // 25)
    csm = pd.Series(
        np.char.add("csm_", np.char.zfill(rng.integers(1, n_csm + 1, n).astype(str), 2))
    )
    csm = csm.where(rng.random(n) > 0.02, None)
    arr = np.round(np.exp(rng.normal(10.3, 1.0, n)), 0)
    tam = np.round(arr * np.exp(rng.normal(1.6, 0.8, n)), -3)
    tam = np.where(rng.random(n) < 0.05, np.nan, tam)
    stage = rng.choice(["Experimenter", "Builder", "Transformer"], n, p=[0.5, 0.35, 0.15])
    high_tam = np.nan_to_num(tam, nan=0.0) >= 500_000
    low_mat = stage == "Experimenter"
    segment = np.select(
        [high_tam & low_mat, high_tam, low_mat],
        ["accelerate", "strategic_partnership", "prove_value"],
        default="efficient_expansion",
    )
    p_churn = np.round(rng.beta(1.2, 7.0, n), 4)
    p_expand = np.round(rng.beta(1.5, 5.0, n), 4)
    whitespace = np.clip(np.nan_to_num(tam, nan=0.0) - arr, 0, None)
    whitespace = np.where(np.isnan(tam), np.nan, whitespace)
    arr_at_risk = np.round(p_churn * arr, 0)
    arr_to_gain = np.round(p_expand * np.nan_to_num(whitespace) * 0.1, 0)
    priority = np.round(0.3 * arr_at_risk + arr_to_gain, 0)
    rank = pd.Series(priority).rank(pct=True, method="first").to_numpy()
    recommended = np.select(
        [rank > 0.85, rank > 0.5], ["high_touch", "standard"], default="digital"
    )
    noisy = rng.random(n) < 0.25
    current = np.where(noisy, rng.choice(["high_touch", "standard", "digital"], n), recommended)
    at_risk = p_churn >= THRESHOLDS["churn"]
    ready = (p_expand >= THRESHOLDS["expand"]) & ~at_risk
    pb_key = np.where(at_risk, "at_risk", np.where(ready, "ready", segment))
    playbook = pd.Series(pb_key).map({k: v[0] for k, v in _PLAYBOOKS.items()})
    playbook_reason = pd.Series(pb_key).map({k: v[1] for k, v in _PLAYBOOKS.items()})
    scores = pd.DataFrame(
        {
            "account_id": ids,
            "name": names,
            "as_of": pd.Timestamp(as_of),
            "csm_id": csm,
            "model_version_churn": "churn-v7",
            "model_version_expand": "expand-v5",
            "p_churn": p_churn,
            "p_expand": p_expand,
            "churn_band": _band(p_churn, THRESHOLDS["churn"]),
            "expand_band": _band(p_expand, THRESHOLDS["expand"]),
            "at_risk": at_risk,
            "expansion_ready": ready,
            "segment": segment,
            "maturity_stage": stage,
            "tam_usd": tam,
            "arr": arr,
            "whitespace": whitespace,
            "coverage_current": current,
            "coverage_recommended": recommended,
            "priority": priority,
            "arr_at_risk": arr_at_risk,
            "arr_to_gain": arr_to_gain,
            "playbook": playbook,
            "playbook_reason": playbook_reason,
            "reasons_json": _reasons_json(rng, n),
        }
    )
    # The hostile account: high risk, so it shows in the portfolio's top lists too.
    hostile = json.dumps(
        [
            {
                "target": "churn",
                "direction": "up",
                "feature": "tickets_high_30d",
                "value": 9,
                "contribution": 1.2,
                "sentence": "9 urgent tickets </script><!-- <img src=x onerror=alert(2)>",
            },
            {
                "target": "expand",
                "direction": "down",
                "feature": "maturity_stage",
                "value": "<b>Experimenter</b>",
                "contribution": -0.4,
                "sentence": 'Still an <i>Experimenter</i> & "early"',
            },
        ]
    )
    i = n // 2
    scores.loc[i, ["account_id", "name", "reasons_json", "playbook_reason"]] = [
        XSS_ID,
        XSS_NAME,
        hostile,
        "</script><script>alert(3)</script>",
    ]
    scores.loc[i, ["p_churn", "at_risk", "churn_band", "arr", "arr_at_risk"]] = [
        0.9,
        True,
        "high",
        2.0e6,
        1.8e6,
    ]
    scores.loc[i, ["csm_id"]] = ["<b>csm</b>"]
    return scores


def make_history(
    scores: pd.DataFrame, runs: int = 6, seed: int = 1, weeks: int = 1
) -> pd.DataFrame:
    """Earlier weekly runs: probabilities drifting towards today's, some accounts newer."""
    rng = np.random.default_rng(seed)
    n = len(scores)
    as_of = pd.Timestamp(scores["as_of"].iloc[0])
    k = np.repeat(np.arange(1, runs + 1), n)
    pc = np.tile(scores["p_churn"].to_numpy(float), runs)
    pe = np.tile(scores["p_expand"].to_numpy(float), runs)
    hist = pd.DataFrame(
        {
            "account_id": np.tile(scores["account_id"].to_numpy(object), runs),
            "as_of": as_of - pd.to_timedelta(7 * weeks * k, unit="D"),
            "p_churn": np.clip(
                pc + rng.normal(0, 0.03, n * runs) * np.sqrt(k) - 0.01 * k * (pc > 0.3), 0, 1
            ).round(4),
            "p_expand": np.clip(pe + rng.normal(0, 0.03, n * runs) * np.sqrt(k), 0, 1).round(4),
        }
    )
    newer = np.tile(rng.random(n) < 0.03, runs)
    return hist[~newer].reset_index(drop=True)


def make_nrr(periods: int = 8, start: str = "2023-07-01", seed: int = 2) -> pd.DataFrame:
    """Quarterly NRR decomposition with the columns of evaluation.report.NRRPeriod."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range(start, periods=periods, freq="QS")
    start_arr = 12e6 * np.cumprod(np.r_[1.0, 1 + rng.normal(0.04, 0.01, periods - 1)])
    expansion = start_arr * rng.uniform(0.05, 0.10, periods)
    contraction = start_arr * rng.uniform(0.01, 0.03, periods)
    churned = start_arr * rng.uniform(0.02, 0.05, periods)
    grr = (start_arr - contraction - churned) / start_arr
    return pd.DataFrame(
        {
            "period": starts.year.astype(str) + "-Q" + starts.quarter.astype(str),
            "period_start": starts,
            "start_arr": start_arr.round(0),
            "expansion_arr": expansion.round(0),
            "contraction_arr": contraction.round(0),
            "churned_arr": churned.round(0),
            "new_arr": (start_arr * rng.uniform(0.03, 0.06, periods)).round(0),
            "grr": grr,
            "nrr": grr + expansion / start_arr,
        }
    )


def make_inputs(n: int = 300, seed: int = 0, history_runs: int = 6, **options) -> ReportInputs:
    """Full report inputs for ``n`` accounts (history and NRR included)."""
    scores = make_scores(n, seed)
    meta = ReportMeta(
        run_id="run-20250630-a1b2",
        model_versions={"churn": "churn-v7", "expand": "expand-v5"},
        thresholds=THRESHOLDS,
        drift_flags=("seat_utilization: PSI 0.27 vs training (drifted)",),
        notes=(f"TAM unknown for {int(scores['tam_usd'].isna().sum())} accounts",),
    )
    return ReportInputs(
        scores=scores,
        history=make_history(scores, runs=history_runs) if history_runs else None,
        nrr=make_nrr(),
        meta=meta,
        options=ReportOptions(**options),
    )
