"""AI-maturity rules: transparent thresholds from the config, unknown when data is missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.config import FeatureConfig, MaturityRules
from features.maturity import describe_rules, maturity_stage

RULES = MaturityRules(
    builder={"ai_feature_share_30d": 0.05},
    transformer={"ai_feature_share_30d": 0.11, "agent_runs_30d": 50},
)


def test_stages_follow_the_thresholds_inclusively():
    df = pd.DataFrame(
        {
            "ai_feature_share_30d": [0.0, 0.05, 0.2, 0.11, 0.2, np.nan, np.nan],
            "agent_runs_30d": [500, 0, 49, 50, np.nan, 100, np.nan],
        },
        index=list("abcdefg"),
    )
    out = maturity_stage(df, RULES)
    assert list(out.index) == list("abcdefg")
    assert out["maturity_stage"].tolist()[:6] == [
        "Experimenter",
        "Builder",
        "Builder",
        "Transformer",
        "Builder",  # missing agent runs: the Transformer condition does not hold
        "Experimenter",  # missing AI share: neither Builder nor Transformer
    ]
    assert out["maturity_level"].tolist()[:6] == [0.0, 1.0, 1.0, 2.0, 1.0, 0.0]
    # nothing the rules read is known: unknown, not an invented Experimenter
    assert pd.isna(out.loc["g", "maturity_stage"]) and np.isnan(out.loc["g", "maturity_level"])


def test_rules_come_from_the_config():
    cfg = FeatureConfig.model_validate(
        {
            "maturity": {
                "builder": {"feature_share_30d": 0.5},
                "transformer": {"feature_share_30d": 0.9},
            }
        }
    )
    df = pd.DataFrame({"feature_share_30d": [0.4, 0.6, 0.95]})
    assert maturity_stage(df, cfg.maturity)["maturity_level"].tolist() == [0.0, 1.0, 2.0]
    assert describe_rules(cfg.maturity)[0] == "Transformer: feature_share_30d >= 0.9"


def test_unknown_feature_in_rules_is_an_error():
    with pytest.raises(KeyError, match="does_not_exist"):
        maturity_stage(
            pd.DataFrame({"x": [1.0]}),
            MaturityRules(builder={"does_not_exist": 1}, transformer={"x": 2}),
        )


def test_empty_rules_are_rejected():
    with pytest.raises(ValueError):
        MaturityRules(builder={}, transformer={"x": 1})
