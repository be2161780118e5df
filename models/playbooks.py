"""Choosing a playbook per account from its leading SHAP drivers.

A rule names a target ('churn' or 'expand'), a direction ('up' raises that target's
probability), the features it reacts to and optional value conditions, e.g. "features in
use fell (features_used_change_30d < 0) and pushes churn up -> adoption plan". An
account's candidate drivers are its top reason codes; a rule applies only when the
account's band for the rule's target reaches the configured minimum (by default: the
account is at risk / expansion-ready). Among matches, churn rules come first (saving ARR
before growing it), then the strongest driver (largest |contribution|), then rule order.
Accounts without a match get their quadrant's fallback play.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from features.names import BANDS, TARGET_WORDS, TARGETS

__all__ = [
    "BAND_ORDER",
    "FallbackPlay",
    "PlaybookDetail",
    "PlaybookRule",
    "choose_playbooks",
    "decode_labels",
]

BAND_ORDER: dict[str, int] = {band: i for i, band in enumerate(BANDS)}
_TARGET_NAMES = tuple(TARGETS)
_OVERLAY_WORDS = {"churn": "At risk", "expand": "Expansion-ready"}


class PlaybookRule(BaseModel):
    """Driver -> play: a feature (and direction, optional value range) that picks a play."""

    model_config = ConfigDict(extra="forbid")

    play: str = Field(description="playbook name shown to CSMs")
    target: str = Field(description="a target of features.names.TARGETS")
    direction: Literal["up", "down"] = "up"
    features: list[str] = Field(min_length=1)
    value_at_least: float | None = Field(None, description="driver value must be >= this")
    value_below: float | None = Field(None, description="driver value must be < this")
    why: str = Field(description="short phrase for playbook_reason, e.g. 'falling breadth'")

    @field_validator("target")
    @classmethod
    def _known_target(cls, value: str) -> str:
        if value not in TARGETS:
            raise ValueError(f"unknown target {value!r}; valid: {', '.join(TARGETS)}")
        return value

    @model_validator(mode="after")
    def _range(self) -> PlaybookRule:
        lo, hi = self.value_at_least, self.value_below
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"empty value range: value_at_least={lo} >= value_below={hi}")
        return self


class PlaybookDetail(BaseModel):
    """What a play asks of the team: steps, who owns it, when it is due, how success shows."""

    model_config = ConfigDict(extra="forbid")

    steps: list[str] = Field(min_length=1, description="actions in order")
    owner: str = Field(description="role that owns the play, e.g. 'CSM' or 'Support lead'")
    due_days: int = Field(ge=1, le=365, description="due this many days after the scoring date")
    success: str = Field(description="the measure that says the play worked")


class FallbackPlay(BaseModel):
    """The play of a quadrant when no driver rule applies."""

    model_config = ConfigDict(extra="forbid")

    play: str
    why: str


def choose_playbooks(
    accounts: pd.DataFrame,
    reasons: pd.DataFrame | None,
    rules: Sequence[PlaybookRule],
    fallback: Mapping[str, FallbackPlay],
    *,
    min_band: str = "high",
    max_rank: int = 3,
    positions: np.ndarray | None = None,
) -> pd.DataFrame:
    """Playbook, reason and driver for every account.

    Parameters
    ----------
    accounts : DataFrame with ``account_id`` (unique), ``segment``, ``churn_band``,
        ``expand_band``, ``p_churn``, ``p_expand``.
    reasons : long reason frame (`models.explain.REASON_COLUMNS`) or None.
    rules : driver rules, in order of preference for equal drivers.
    fallback : play per segment.
    min_band : band of the rule's target an account needs for the rule to apply (one of
        `features.names.BANDS`).
    max_rank : only drivers of rank <= max_rank are considered.
    positions : row of `accounts` of every reason row (-1: unknown), when already known
        (`models.explain.account_positions`).

    Returns
    -------
    DataFrame aligned with `accounts` (same index) with ``playbook``,
    ``playbook_reason``, ``playbook_feature`` (missing for fallbacks) and
    ``playbook_source`` ('driver' / 'segment'), all str.
    """
    segments = list(fallback)
    seg_code = _codes(accounts["segment"], tuple(segments))
    if (seg_code < 0).any():
        bad = sorted(set(accounts["segment"].astype(str)) - set(segments))
        raise ValueError(f"no fallback play for segments {bad}")
    matches = _matches(
        accounts, reasons, rules, min_band=min_band, max_rank=max_rank, positions=positions
    )
    n_seg = len(segments)
    plays = [fallback[k].play for k in segments] + [r.play for r in rules]
    reasons_text = [f"No driver rule applies; segment default: {fallback[k].why}" for k in segments]
    play_code = seg_code.copy()
    reason_code = seg_code.copy()
    feature_code = np.full(len(accounts), -1, dtype=np.int64)
    features: list[str] = []
    if len(matches):
        pos = matches["pos"].to_numpy()
        play_code[pos] = n_seg + matches["rule"].to_numpy()
        reason_code[pos] = len(reasons_text) + np.arange(len(matches))
        reasons_text += list(matches["reason"])
        f_codes, f_names = pd.factorize(matches["feature"])
        feature_code[pos] = f_codes
        features = [str(x) for x in f_names]
    return pd.DataFrame(
        {
            "playbook": decode_labels(play_code, plays),
            "playbook_reason": decode_labels(reason_code, reasons_text),
            "playbook_feature": decode_labels(feature_code, features),
            "playbook_source": decode_labels(
                (feature_code >= 0).astype(np.int64), ["segment", "driver"]
            ),
        },
        index=accounts.index,
    )


def decode_labels(codes: np.ndarray, texts: Sequence[str]) -> Any:
    """A pandas str array holding ``texts[codes]``; code -1 gives a missing value.

    Parameters
    ----------
    codes : ndarray of int
        Index into `texts` per row; -1 for a missing value.
    texts : sequence of str
        The labels.

    Returns
    -------
    pandas.arrays.ArrowStringArray
        ``texts[codes]`` as pandas' str dtype, built once per label (dictionary take).

    Examples
    --------
    >>> list(decode_labels(np.array([1, -1, 0]), ["low", "high"]))
    ['high', nan, 'low']
    """
    dictionary = pa.array(list(texts) or [""], pa.large_string())
    idx = pa.array(np.asarray(codes, dtype=np.int64), mask=np.asarray(codes) < 0)
    return pd.array(pc.take(dictionary, idx), dtype="str")


def _matches(
    accounts: pd.DataFrame,
    reasons: pd.DataFrame | None,
    rules: Sequence[PlaybookRule],
    *,
    min_band: str,
    max_rank: int,
    positions: np.ndarray | None = None,
) -> pd.DataFrame:
    """The best matching (rule, driver) per account: columns pos, rule, reason, feature."""
    empty = pd.DataFrame(columns=["pos", "rule", "reason", "feature"])
    if reasons is None or len(reasons) == 0 or not rules:
        return empty
    need = BAND_ORDER[min_band]
    if positions is None:
        from models.explain import account_positions

        positions = account_positions(reasons["account_id"], accounts["account_id"])
    pos = np.asarray(positions, dtype=np.int64)
    target = _codes(reasons["target"], _TARGET_NAMES)
    band_ok = np.stack(
        [accounts[f"{t}_band"].map(BAND_ORDER).fillna(-1).to_numpy() >= need for t in _TARGET_NAMES]
    )
    # drivers that can matter: known account, rank in range, account's band reached
    keep = (pos >= 0) & (reasons["rank"].to_numpy() <= max_rank) & (target >= 0)
    keep[keep] = band_ok[target[keep], pos[keep]]
    cand = reasons.loc[keep].assign(pos=pos[keep])
    if cand.empty:
        return empty
    target = target[keep]
    direction = _codes(cand["direction"], ("up", "down"))
    feature = cand["feature"].astype("category")
    feature_code = feature.cat.codes.to_numpy()
    value = cand["value"].to_numpy(dtype=np.float64)
    hits = []
    for i, rule in enumerate(rules):  # a loop over the few rules, vectorised over drivers
        wanted = feature.cat.categories.get_indexer(rule.features)
        ok = target == _TARGET_NAMES.index(rule.target)
        ok &= direction == ("up", "down").index(rule.direction)
        ok &= np.isin(feature_code, wanted[wanted >= 0])
        if rule.value_at_least is not None:
            ok &= value >= rule.value_at_least
        if rule.value_below is not None:
            ok &= value < rule.value_below
        if ok.any():
            hits.append(cand.loc[ok].assign(rule=i))
    if not hits:
        return empty
    m = pd.concat(hits, ignore_index=True)
    m["target_order"] = (m["target"].astype(str) != "churn").astype(int)
    m["strength"] = -m["contribution"].abs()
    m = m.sort_values(["pos", "target_order", "strength", "rule"], kind="stable")
    m = m.drop_duplicates("pos", keep="first")
    rule_why = np.array([r.why for r in rules], dtype=object)
    tgt = m["target"].astype(str)
    p = np.where(
        tgt == "churn",
        accounts["p_churn"].to_numpy(dtype=np.float64)[m["pos"].to_numpy()],
        accounts["p_expand"].to_numpy(dtype=np.float64)[m["pos"].to_numpy()],
    )
    pct = pd.Series(np.round(p * 100).astype(np.int64), index=m.index).astype(str)
    at = m["pos"].to_numpy()
    band = np.where(
        tgt == "churn",
        accounts["churn_band"].take(at).to_numpy(dtype=object),
        accounts["expand_band"].take(at).to_numpy(dtype=object),
    )
    overlay = pd.Series(np.where(band == "high", tgt.map(_OVERLAY_WORDS), "Watch"), index=m.index)
    reason = (
        overlay
        + " ("
        + tgt.map(TARGET_WORDS)
        + " "
        + pct
        + "%). Leading driver: "
        + m["sentence"].astype(str)
        + " ("
        + pd.Series(rule_why[m["rule"].to_numpy()], index=m.index)
        + ")."
    )
    return pd.DataFrame(
        {
            "pos": m["pos"].to_numpy(),
            "rule": m["rule"].to_numpy(),
            "reason": reason.to_numpy(dtype=object),
            "feature": m["feature"].astype(str).to_numpy(dtype=object),
        }
    )


def _codes(col: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    """Position of each value in `names` (-1 for others), via the column's categories."""
    cat = col.astype("category").cat
    lookup = np.array([names.index(c) if c in names else -1 for c in cat.categories.astype(str)])
    codes = cat.codes.to_numpy()
    return np.where(codes >= 0, lookup[codes] if len(lookup) else -1, -1)


def describe_rules(rules: Sequence[PlaybookRule]) -> pd.DataFrame:
    """The rule table as a DataFrame (for reports and logging).

    Parameters
    ----------
    rules : sequence of PlaybookRule
        Driver rules, e.g. ``SegmentConfig().playbooks``.

    Returns
    -------
    DataFrame
        One row per rule, one column per `PlaybookRule` field.
    """
    rows: list[dict[str, Any]] = [r.model_dump() for r in rules]
    return pd.DataFrame(rows)
