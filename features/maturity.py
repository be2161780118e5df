"""AI-maturity stage from transparent, configurable rules.

An account is a **Transformer** when every Transformer condition holds, else a
**Builder** when every Builder condition holds, else an **Experimenter**. A condition is
``feature >= minimum`` (`features.config.MaturityRules`); a missing value (NaN) never
satisfies it. When the data cannot show AI use at all at an as_of (every feature the
rules read is NaN for that row), the stage is unknown: ``maturity_stage`` None and
``maturity_level`` NaN, rather than an invented Experimenter.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.config import MaturityRules
from features.names import STAGES


def describe_rules(rules: MaturityRules) -> list[str]:
    """The rules as sentences, for reports and run logs.

    Parameters
    ----------
    rules : thresholds per stage.

    Returns
    -------
    list of str, one sentence per stage, most mature first.

    Examples
    --------
    >>> describe_rules(MaturityRules())[0]
    'Transformer: ai_feature_share_30d >= 0.11 and agent_runs_30d >= 50'
    """
    builder, transformer, experimenter = STAGES[1], STAGES[2], STAGES[0]

    def cond(d: dict[str, float]) -> str:
        return " and ".join(f"{k} >= {v:g}" for k, v in d.items())

    return [
        f"{transformer}: {cond(rules.transformer)}",
        f"{builder}: {cond(rules.builder)} (and not {transformer})",
        f"{experimenter}: otherwise",
    ]


def _all_hold(features: pd.DataFrame, conditions: dict[str, float]) -> np.ndarray:
    ok = np.ones(len(features), dtype=bool)
    for name, minimum in conditions.items():
        values = features[name].to_numpy(dtype=np.float64, na_value=np.nan)
        ok &= np.nan_to_num(values, nan=-np.inf) >= minimum
    return ok


def maturity_stage(features: pd.DataFrame, rules: MaturityRules | None = None) -> pd.DataFrame:
    """Stage and level of every row of a feature table.

    Parameters
    ----------
    features : DataFrame holding every column named in the rules.
    rules : thresholds per stage; `MaturityRules()` defaults when None.

    Returns
    -------
    DataFrame aligned on `features.index` with ``maturity_stage`` (str: Experimenter,
    Builder, Transformer; None when unknown) and ``maturity_level`` (float 0/1/2, NaN when
    unknown).

    Examples
    --------
    >>> df = pd.DataFrame({"ai_feature_share_30d": [0.0, 0.07, 0.2], "agent_runs_30d": [0, 0, 80]})
    >>> maturity_stage(df)["maturity_stage"].tolist()
    ['Experimenter', 'Builder', 'Transformer']
    """
    rules = rules or MaturityRules()
    used = sorted(set(rules.builder) | set(rules.transformer))
    missing = [c for c in used if c not in features.columns]
    if missing:
        raise KeyError(f"maturity rules read feature(s) {missing} that the table does not have")
    level = np.where(
        _all_hold(features, rules.transformer),
        2.0,
        np.where(_all_hold(features, rules.builder), 1.0, 0.0),
    )
    unknown = features[used].isna().all(axis=1).to_numpy()
    level = np.where(unknown, np.nan, level)
    stage = pd.Series(
        np.where(unknown, None, np.asarray(STAGES, dtype=object)[np.nan_to_num(level).astype(int)]),
        index=features.index,
        dtype="str",
    )
    return pd.DataFrame({"maturity_stage": stage, "maturity_level": level}, index=features.index)
