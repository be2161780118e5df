"""Champion/challenger decision: a pure function, so the rule is tested without MLflow.

A candidate becomes champion only if it is not worse than the current champion on the
latest out-of-time slice. Both metric dicts must come from the same rows: score the
champion on the candidate's test slice before calling `decide_champion` (the ``n`` of the
two dicts is compared when present). Applying the decision (MLflow aliases) is the
caller's job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from features.errors import StateError

#: metrics where a smaller value is better; every other metric is "higher is better"
LOWER_IS_BETTER = frozenset({"brier", "log_loss", "ece"})


@dataclass(frozen=True)
class Decision:
    """Outcome of a champion/challenger comparison.

    Attributes
    ----------
    promote : whether the candidate becomes champion.
    reason : one sentence for the run log and the registry description.
    metric : metric compared.
    candidate, champion : its values (champion NaN when there is none).
    """

    promote: bool
    reason: str
    metric: str
    candidate: float
    champion: float


def decide_champion(
    candidate_metrics: Mapping[str, float],
    champion_metrics: Mapping[str, float] | None,
    *,
    metric: str = "roc_auc",
    tolerance: float = 0.0,
) -> Decision:
    """Promote the candidate unless it is worse than the champion by more than `tolerance`.

    Parameters
    ----------
    candidate_metrics : metrics of the candidate on the latest out-of-time slice
        (e.g. ``TrainResult.targets['churn'].metrics['lgbm']['test']``).
    champion_metrics : metrics of the current champion on the same rows, or None when
        there is no champion yet (the candidate is promoted).
    metric : key compared; ``brier``, ``log_loss`` and ``ece`` are lower-is-better,
        all others higher-is-better.
    tolerance : allowed shortfall (absolute, >= 0). 0 means "not worse": equal values
        promote.

    Returns
    -------
    Decision

    Raises
    ------
    KeyError
        If the candidate lacks `metric`.
    ValueError
        If the two dicts were computed on different row counts (``n``).

    Examples
    --------
    >>> decide_champion({"roc_auc": 0.80}, {"roc_auc": 0.81}).promote
    False
    >>> decide_champion({"roc_auc": 0.81}, {"roc_auc": 0.81}).promote
    True
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance}")
    if metric not in candidate_metrics:
        raise KeyError(f"candidate metrics lack {metric!r}; have {sorted(candidate_metrics)}")
    cand = float(candidate_metrics[metric])
    if champion_metrics is None:
        if math.isnan(cand):
            return Decision(
                False, f"no champion, but candidate {metric} is NaN", metric, cand, math.nan
            )
        return Decision(
            True, f"no champion yet; candidate {metric}={cand:.4f}", metric, cand, math.nan
        )
    n_cand, n_champ = candidate_metrics.get("n"), champion_metrics.get("n")
    if n_cand is not None and n_champ is not None and float(n_cand) != float(n_champ):
        raise ValueError(
            f"candidate and champion metrics come from different rows (n={n_cand:g} vs "
            f"n={n_champ:g}); score the champion on the candidate's latest out-of-time slice"
        )
    champ = float(champion_metrics.get(metric, math.nan))
    if math.isnan(cand):
        return Decision(
            False, f"candidate {metric} is NaN (single-class slice?)", metric, cand, champ
        )
    if math.isnan(champ):
        return Decision(
            True, f"champion {metric} is NaN; candidate {metric}={cand:.4f}", metric, cand, champ
        )
    lower = metric in LOWER_IS_BETTER
    shortfall = cand - champ if lower else champ - cand
    better = "lower" if lower else "higher"
    if shortfall > tolerance:
        reason = (
            f"not promoted: candidate {metric}={cand:.4f} is worse than champion {champ:.4f} "
            f"by {shortfall:.4f} (> tolerance {tolerance:g}; {better} is better)"
        )
        return Decision(False, reason, metric, cand, champ)
    verdict = (
        "better than" if shortfall < 0 else "equal to" if shortfall == 0 else "within tolerance of"
    )
    reason = (
        f"promoted: candidate {metric}={cand:.4f} is {verdict} champion {champ:.4f} "
        f"(tolerance {tolerance:g}; {better} is better)"
    )
    return Decision(True, reason, metric, cand, champ)


class ChampionUnavailableError(StateError):
    """The current champion cannot be loaded or scored, so no comparison is possible.

    Promoting anyway would replace a model nobody compared against; the caller refuses
    unless told to (``nrrcast train --force`` / ``nrrcast promote``).
    """
