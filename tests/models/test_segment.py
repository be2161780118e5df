"""The segmenter: quadrants, overlays, driver -> playbook, priority, capacity, changes, load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.catalog import CATALOG
from features.names import SEGMENTS
from models.explain import REASON_COLUMNS
from models.playbooks import PlaybookRule
from models.segment import (
    SCORE_COLUMNS,
    CoverageConfig,
    SegmentConfig,
    coverage_changes,
    csm_load,
    estimate_capture_rate,
    priority_columns,
    recommend_coverage,
    segment,
)

THR = {"churn_threshold": 0.3, "expand_threshold": 0.4}


def _scored(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    base = {
        "account_id": [f"a{i}" for i in range(n)],
        "p_churn": [0.05] * n,
        "p_expand": [0.05] * n,
        "arr": [50_000.0] * n,
        "tam_usd": [1_000_000.0] * n,
        "maturity_level": [0.0] * n,
        "csm_id": ["c1"] * n,
        "coverage": ["standard"] * n,
    }
    base.update(cols)
    return pd.DataFrame(base)


def _reasons(rows: list[tuple]) -> pd.DataFrame:
    """Long reason frame from (account_id, target, direction, rank, feature, value, contribution)."""
    frame = pd.DataFrame(rows, columns=list(REASON_COLUMNS[:-1]))
    frame["sentence"] = [
        CATALOG[f].sentence(v) for f, v in zip(frame["feature"], frame["value"], strict=True)
    ]
    return frame


# ----------------------------------------------------------------------------- quadrants


def test_quadrant_boundaries_usd_cut():
    cfg = SegmentConfig(expansion_base="whitespace", capture_rate=0.02)
    cut = cfg.tam.usd
    s = _scored(
        tam_usd=[cut, cut, cut - 1, cut - 1, np.nan, cut * 10],
        maturity_level=[0.0, 1.0, 1.0, 0.0, 2.0, 2.0],
    )
    out = segment(s, None, cfg, **THR)
    assert list(out["segment"]) == [
        "accelerate",  # TAM exactly at the cut is high; Experimenter is low maturity
        "strategic_partnership",  # Builder counts as high maturity
        "efficient_expansion",
        "prove_value",
        "efficient_expansion",  # unknown TAM: placed as low, and said so
        "strategic_partnership",
    ]
    assert list(out["tam_known"]) == [True, True, True, True, False, True]
    assert "TAM unknown" in out["segment_reason"].iloc[4]
    assert np.isnan(out["arr_to_gain"].iloc[4])  # unknown whitespace: no invented gain
    assert out["priority"].iloc[4] == pytest.approx(0.3 * 0.05 * 50_000)
    assert set(out["segment"]) <= set(SEGMENTS)
    assert list(out.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)


def test_quantile_cut_unknown_high_and_stage_names():
    cfg = SegmentConfig.model_validate(
        {"tam": {"method": "quantile", "quantile": 0.5, "unknown_as": "high"},
         "high_maturity_min_level": 2}
    )  # fmt: skip
    s = _scored(
        tam_usd=[1e5, 2e5, 3e5, 4e5, np.nan],
        maturity_level=[0.0] * 5,
    ).drop(columns="maturity_level")
    s["maturity_stage"] = ["Transformer", "Builder", "Transformer", "Experimenter", None]
    out = segment(s, None, cfg, **THR)
    assert out.attrs["tam_cut_usd"] == pytest.approx(2.5e5)
    assert list(out["segment"]) == [
        "efficient_expansion",
        "prove_value",  # Builder is below the configured level 2
        "strategic_partnership",
        "accelerate",
        "accelerate",  # unknown TAM placed high; unknown maturity placed low
    ]
    assert "AI maturity unknown" in out["segment_reason"].iloc[4]


def test_overlays_and_bands_at_the_threshold():
    s = _scored(p_churn=[0.3, 0.2999, 0.15, 0.1], p_expand=[0.4, 0.39, 0.2, 0.0])
    out = segment(s, None, SegmentConfig(), **THR)
    assert list(out["at_risk"]) == [True, False, False, False]
    assert list(out["expansion_ready"]) == [True, False, False, False]
    assert list(out["churn_band"]) == ["high", "medium", "medium", "low"]
    assert list(out["expand_band"]) == ["high", "medium", "medium", "low"]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="tam_usd"):
        segment(_scored(arr=[1.0]).drop(columns="tam_usd"), None, **THR)
    with pytest.raises(ValueError, match="duplicate account_id"):
        segment(_scored(account_id=["x", "x"]), None, **THR)
    with pytest.raises(ValueError, match="p_churn"):
        segment(_scored(p_churn=[1.5]), None, **THR)
    with pytest.raises(ValueError, match="churn_threshold"):
        segment(_scored(arr=[1.0]), None, churn_threshold=2.0, expand_threshold=0.1)


# ----------------------------------------------------------------------------- playbooks


def test_driver_picks_playbook_and_fallback_per_quadrant():
    s = _scored(
        p_churn=[0.6, 0.6, 0.05, 0.6, 0.6, 0.05, 0.6, 0.05],
        p_expand=[0.05, 0.05, 0.7, 0.05, 0.7, 0.05, 0.05, 0.7],
        tam_usd=[1e6, 1e6, 1e6, 1e6, 1e6, 1e5, 1e5, 1e6],
        maturity_level=[0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0, 2.0],
    )
    reasons = _reasons(
        [
            ("a0", "churn", "up", 1, "features_used_change_30d", -3.0, 0.8),  # falling breadth
            ("a1", "churn", "up", 1, "tickets_trend_30d", 4.0, 0.5),  # rising tickets
            ("a1", "churn", "up", 2, "features_used_change_30d", -1.0, 0.2),
            ("a2", "expand", "up", 1, "seat_utilization_30d", 0.85, 0.9),  # seats above 80%
            ("a3", "churn", "up", 1, "agent_success_rate_30d", 0.6, 0.4),  # failing agents
            ("a4", "expand", "up", 1, "seat_utilization_30d", 0.95, 2.0),  # churn comes first
            ("a4", "churn", "up", 2, "csat_90d", 2.1, 0.3),
            ("a5", "churn", "up", 1, "tickets_trend_30d", 4.0, 0.5),  # not at risk
            ("a6", "churn", "up", 1, "tickets_trend_30d", 0.0, 0.5),  # tickets not rising
            ("a7", "expand", "up", 1, "seat_utilization_30d", 0.5, 0.9),  # seats not above 80%
        ]
    )
    out = segment(s, reasons, SegmentConfig(), **THR)
    assert list(out["playbook"]) == [
        "Adoption plan",
        "Support escalation",
        "Seat expansion",
        "Workflow review",
        "Support escalation",
        "Prove value in 90 days",
        "Efficient expansion and advocacy",
        "Strategic partnership",
    ]
    assert "falling adoption breadth" in out["playbook_reason"].iloc[0]
    assert out["playbook_reason"].iloc[0].startswith("At risk (churn risk 60%)")
    assert "Features in use fell by 3 features" in out["playbook_reason"].iloc[0]
    assert out["playbook_reason"].iloc[2].startswith("Expansion-ready")
    assert out["playbook_reason"].iloc[5].startswith("No driver rule applies")
    assert list(out["playbook_feature"].iloc[:3]) == [
        "features_used_change_30d",
        "tickets_trend_30d",
        "seat_utilization_30d",
    ]
    # reasons_json carries the drivers of each account, "[]" when it has none
    assert out["reasons_json"].iloc[0].startswith('[{"target":"churn"')
    assert (out["reasons_json"] != "[]").all()


def test_strongest_driver_wins_and_min_band_opens_rules():
    s = _scored(p_churn=[0.2], p_expand=[0.05])  # medium band: below the threshold
    reasons = _reasons(
        [
            ("a0", "churn", "up", 1, "tickets_trend_30d", 2.0, 0.3),
            ("a0", "churn", "up", 2, "login_decay", -0.5, 0.6),  # larger |contribution|
        ]
    )
    default = segment(s, reasons, SegmentConfig(), **THR)
    assert default["playbook"].iloc[0] == "Accelerate adoption"
    medium = segment(s, reasons, SegmentConfig(playbook_min_band="medium"), **THR)
    assert medium["playbook"].iloc[0] == "Re-engagement"
    assert medium["playbook_reason"].iloc[0].startswith("Watch")
    top1 = SegmentConfig(playbook_min_band="medium", playbook_max_rank=1)
    assert segment(s, reasons, top1, **THR)["playbook"].iloc[0] == "Support escalation"


def test_rule_and_config_validation():
    with pytest.raises(ValueError, match="empty value range"):
        PlaybookRule(play="x", target="churn", features=["a"], value_at_least=1, value_below=0,
                     why="w")  # fmt: skip
    with pytest.raises(ValueError):
        SegmentConfig.model_validate({"fallback": {"accelerate": {"play": "x", "why": "y"}}})
    with pytest.raises(ValueError):
        SegmentConfig.model_validate({"tam": {"cut": 5}})


def test_default_rules_name_catalogue_features():
    unknown = {f for r in SegmentConfig().playbooks for f in r.features} - set(CATALOG)
    assert not unknown


# ----------------------------------------------------------------------------- priority


money = st.floats(0, 1e7, allow_nan=False)
prob = st.floats(0, 1, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(pc=prob, pe=prob, arr=money, ws=money, bump=st.floats(0, 1e6), which=st.integers(0, 3))
def test_priority_is_monotone_in_its_inputs(pc, pe, arr, ws, bump, which):
    args = [pc, pe, arr, ws]
    more = list(args)
    more[which] = min(more[which] + bump, 1.0) if which < 2 else more[which] + bump
    p0, r0, g0 = priority_columns(*args, save_rate=0.3, capture_rate=0.1)
    p1, r1, g1 = priority_columns(*more, save_rate=0.3, capture_rate=0.1)
    assert p1 >= p0 and r1 >= r0 and g1 >= g0


@settings(max_examples=50, deadline=None)
@given(save=st.floats(0, 1), capture=st.floats(0, 1), lo=st.floats(0, 0.5), hi=st.floats(0.5, 1))
def test_priority_is_monotone_in_the_rates(save, capture, lo, hi):
    base = priority_columns(0.4, 0.3, 1e5, 5e5, save_rate=save * lo, capture_rate=capture * lo)[0]
    more = priority_columns(0.4, 0.3, 1e5, 5e5, save_rate=save * hi, capture_rate=capture * hi)[0]
    assert more >= base


# ----------------------------------------------------------------------------- coverage


@settings(max_examples=100, deadline=None)
@given(
    priority=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=0, max_size=60),
    capacity=st.integers(0, 80),
)
def test_capacity_is_never_exceeded_and_goes_to_the_top(priority, capacity):
    n = len(priority)
    pr = np.asarray(priority, dtype=np.float64)
    rec = recommend_coverage(
        pr, np.full(n, 1e4), np.full(n, "accelerate"), [f"a{i:03d}" for i in range(n)],
        capacity=capacity, cfg=CoverageConfig(),
    )  # fmt: skip
    high = rec == "high_touch"
    assert high.sum() <= capacity
    assert (pr[high] > 0).all()
    if high.any() and (~high).any():
        assert pr[high].min() >= pr[~high].max()  # seats go to the highest priorities
    if high.sum() < capacity:
        assert (pr[~high] == 0).all()  # a seat is left empty only when nobody has priority


def test_capacity_from_csms_and_standard_digital_rule():
    n = 12
    s = _scored(
        p_churn=np.linspace(0.05, 0.6, n),
        arr=[30_000.0] * 6 + [1_000.0] * 6,
        tam_usd=[1e6] * 6 + [1e4] * 6,
        csm_id=["c1", "c2"] * 6,
        coverage=["digital"] * 6 + ["high_touch"] * 6,
    )
    cfg = SegmentConfig.model_validate({"coverage": {"accounts_per_csm": 2}})
    out = segment(s, None, cfg, **THR)
    assert out.attrs["csms"] == 2 and out.attrs["high_touch_capacity"] == 4
    high = out["coverage_recommended"] == "high_touch"
    assert high.sum() == 4
    assert set(out.loc[high, "priority"]) == set(out["priority"].nlargest(4))
    rest = out.loc[~high]
    assert (rest.loc[rest["arr"] >= 25_000, "coverage_recommended"] == "standard").all()
    assert (rest.loc[rest["segment"] == "prove_value", "coverage_recommended"] == "digital").all()
    fixed = SegmentConfig.model_validate({"coverage": {"accounts_per_csm": 2, "csms": 0}})
    assert (segment(s, None, fixed, **THR)["coverage_recommended"] != "high_touch").all()


def test_coverage_changes_and_csm_load():
    s = _scored(
        p_churn=[0.6, 0.01, 0.4, 0.01],
        arr=[200_000.0, 100.0, 80_000.0, 100.0],
        tam_usd=[1e6, 1e4, 1e6, 1e4],
        csm_id=["c1", "c1", "c2", None],
        coverage=["digital", "high_touch", "standard", None],
    )
    cfg = SegmentConfig.model_validate({"coverage": {"accounts_per_csm": 1}})
    out = segment(s, None, cfg, **THR)
    assert list(out["coverage_recommended"]) == ["high_touch", "digital", "high_touch", "digital"]
    changes = coverage_changes(out)
    assert list(changes.upgrades["account_id"]) == ["a0", "a2"]  # highest priority first
    assert list(changes.downgrades["account_id"]) == ["a1"]
    assert list(changes.unknown_current["account_id"]) == ["a3"]
    load = csm_load(out, cfg).set_index("csm_id")
    w = cfg.load
    c1_before = (
        w.coverage["digital"] * w.segment["accelerate"] * w.at_risk
        + w.coverage["high_touch"] * w.segment["prove_value"]
    )
    assert load.loc["c1", "load_current"] == pytest.approx(c1_before)
    c1_after = (
        w.coverage["high_touch"] * w.segment["accelerate"] * w.at_risk
        + w.coverage["digital"] * w.segment["prove_value"]
    )
    assert load.loc["c1", "load_recommended"] == pytest.approx(c1_after)
    assert load.loc["(unassigned)", "unknown_current"] == 1
    assert load["high_touch_recommended"].sum() == 2
    assert not load["over_capacity"].any()


def test_capture_rate_estimate_and_arr_base():
    history = pd.DataFrame(
        {
            "arr": [100.0, 200.0, 50.0, 80.0],
            "arr_h": [150.0, 260.0, 0.0, 80.0],
            "whitespace": [900.0, np.nan, 450.0, 20.0],
            "label_expand": [1.0, 1.0, 0.0, np.nan],
        }
    )
    assert estimate_capture_rate(history, base="arr") == pytest.approx(110 / 300)
    assert estimate_capture_rate(history, base="whitespace") == pytest.approx(50 / 900)
    assert np.isnan(estimate_capture_rate(history.assign(label_expand=0.0)))
    s = _scored(p_churn=[0.0, 0.0], p_expand=[0.5, 0.5], arr=[1e5, 1e4], tam_usd=[2e5, 1e7])
    ws = segment(s, None, SegmentConfig(expansion_base="whitespace", capture_rate=0.02), **THR)
    by_arr = segment(s, None, SegmentConfig(expansion_base="arr", capture_rate=0.4), **THR)
    rate = 0.02
    assert ws["arr_to_gain"].tolist() == pytest.approx([0.5 * 1e5 * rate, 0.5 * (1e7 - 1e4) * rate])
    assert by_arr["arr_to_gain"].tolist() == pytest.approx([0.5 * 1e5 * 0.4, 0.5 * 1e4 * 0.4])
