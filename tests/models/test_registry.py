"""Champion/challenger: a worse candidate is never promoted; equal or better is."""

from __future__ import annotations

import math

import pytest

from models.registry import decide_champion

CHAMP = {"n": 1000.0, "roc_auc": 0.80, "brier": 0.050}


def test_worse_challenger_is_not_promoted():
    d = decide_champion({"n": 1000.0, "roc_auc": 0.79, "brier": 0.05}, CHAMP)
    assert not d.promote
    assert "worse" in d.reason and "0.7900" in d.reason


@pytest.mark.parametrize("auc", [0.80, 0.81])
def test_equal_or_better_challenger_is_promoted(auc):
    d = decide_champion({"n": 1000.0, "roc_auc": auc}, CHAMP)
    assert d.promote
    assert d.candidate == auc and d.champion == 0.80


def test_lower_is_better_metrics_and_tolerance():
    worse_brier = {"n": 1000.0, "roc_auc": 0.9, "brier": 0.052}
    assert not decide_champion(worse_brier, CHAMP, metric="brier").promote
    assert decide_champion(worse_brier, CHAMP, metric="brier", tolerance=0.005).promote
    assert decide_champion({"roc_auc": 0.795}, {"roc_auc": 0.80}, tolerance=0.01).promote
    assert not decide_champion({"roc_auc": 0.785}, {"roc_auc": 0.80}, tolerance=0.01).promote


def test_first_model_nan_and_mismatched_rows():
    assert decide_champion({"roc_auc": 0.6}, None).promote
    assert not decide_champion({"roc_auc": math.nan}, CHAMP).promote
    assert decide_champion({"roc_auc": 0.6}, {"roc_auc": math.nan}).promote
    with pytest.raises(ValueError, match="different rows"):
        decide_champion({"n": 999.0, "roc_auc": 0.9}, CHAMP)
    with pytest.raises(KeyError, match="pr_auc"):
        decide_champion({"roc_auc": 0.9}, CHAMP, metric="pr_auc")
