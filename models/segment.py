"""The TAM x AI-maturity segmenter: quadrant, risk overlays, playbook, priority, coverage.

For every scored account (one as_of) it combines

* opportunity: TAM split high/low at a configurable cut (USD, or a quantile of the book's
  known TAM), and whitespace = TAM - ARR; the expected expansion is a share of current
  ARR by default (``expansion_base: whitespace`` takes the whitespace instead;
  `estimate_capture_rate` measures the share on matured history);
* the AI-maturity stage (low: Experimenter; high: Builder and Transformer by default);
* calibrated churn and expansion probabilities against the quarter's thresholds;
* the SHAP drivers (`models.explain`), which choose the playbook (`models.playbooks`);

into the scores-table columns: ``segment`` (accelerate / strategic_partnership /
efficient_expansion / prove_value), ``at_risk``, ``expansion_ready``, bands, ``priority``
(expected ARR at stake), ``coverage_recommended`` under the high-touch capacity,
``playbook`` and ``playbook_reason``. Accounts whose TAM is unknown are placed with the
configured side (low by default) and say so (``tam_known = False``, ``segment_reason``);
their expected ARR to gain is left unknown (NaN), never invented.

`coverage_changes` lists upgrade / downgrade candidates; `csm_load` shows each CSM's
complexity-weighted load before and after the recommendation.

Every setting's default (cuts, rates, playbooks, fallback plays, playbook details, load
weights) lives only in ``configs/default.yaml``, section ``segment:`` (see
`features.config_source`); names in it are checked against `features.catalog` and
`features.names` when it loads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from features.catalog import CATALOG
from features.config_source import ConfigSection, require_known
from features.names import BANDS, COVERAGE_LEVELS, SEGMENTS, STAGES
from models.playbooks import (
    FallbackPlay,
    PlaybookDetail,
    PlaybookRule,
    choose_playbooks,
    decode_labels,
)

log = logging.getLogger("nrrcast.segment")

__all__ = [
    "SCORE_COLUMNS",
    "CoverageChanges",
    "SegmentConfig",
    "coverage_changes",
    "csm_load",
    "estimate_capture_rate",
    "priority_columns",
    "recommend_coverage",
    "segment",
]

SCORE_COLUMNS = (
    "account_id",
    "name",
    "as_of",
    "csm_id",
    "model_version_churn",
    "model_version_expand",
    "p_churn",
    "p_expand",
    "churn_band",
    "expand_band",
    "at_risk",
    "expansion_ready",
    "segment",
    "maturity_stage",
    "tam_usd",
    "arr",
    "whitespace",
    "coverage_current",
    "coverage_recommended",
    "priority",
    "arr_at_risk",
    "arr_to_gain",
    "playbook",
    "playbook_reason",
    "reasons_json",
)
"""Scores-table columns `segment` fills (CONTEXT: scores table), in order."""
EXTRA_COLUMNS = ("tam_known", "segment_reason", "playbook_feature")
"""Further columns `segment` adds after `SCORE_COLUMNS`."""


class TamSplitConfig(ConfigSection):
    """Where TAM counts as high."""

    yaml_section: ClassVar[str] = "segment.tam"

    method: Literal["usd", "quantile"]
    usd: float = Field(ge=0, description="cut for method 'usd': TAM >= usd is high")
    quantile: float = Field(
        gt=0, lt=1, description="for method 'quantile': cut at this quantile of known TAM"
    )
    unknown_as: Literal["low", "high"] = Field(
        description="side for accounts without TAM (flagged tam_known = False)"
    )


class CoverageConfig(ConfigSection):
    """High-touch capacity, then the standard/digital rule for everyone else."""

    yaml_section: ClassVar[str] = "segment.coverage"

    accounts_per_csm: int = Field(ge=0, description="high-touch accounts one CSM can hold")
    csms: int | None = Field(ge=0, description="CSMs with high-touch seats; None: distinct csm_id")
    standard_min_arr: float = Field(ge=0, description="ARR that earns standard")
    standard_min_priority: float = Field(ge=0, description="priority (USD) that earns standard")
    digital_segments: list[str] = Field(
        description="segments served digitally unless they win a high-touch seat"
    )

    @model_validator(mode="after")
    def _segments_known(self) -> CoverageConfig:
        key = f"{self.yaml_section}.digital_segments"
        require_known(key, self.digital_segments, SEGMENTS, "segment")
        return self


class LoadConfig(ConfigSection):
    """Complexity weights of one account in a CSM's load (every level and segment weighed)."""

    yaml_section: ClassVar[str] = "segment.load"

    coverage: dict[str, float] = Field(description="weight per coverage level")
    segment: dict[str, float] = Field(description="weight per segment")
    at_risk: float = Field(ge=0, description="multiplier for accounts at risk")

    @model_validator(mode="after")
    def _complete(self) -> LoadConfig:
        for name, table, keys, kind in (
            ("coverage", self.coverage, COVERAGE_LEVELS, "coverage level"),
            ("segment", self.segment, SEGMENTS, "segment"),
        ):
            require_known(f"{self.yaml_section}.{name}", table, keys, kind)
            missing = sorted(set(keys) - set(table))
            if missing:
                raise ValueError(f"load.{name} lacks weights for {missing}")
        return self


class SegmentConfig(ConfigSection):
    """Settings of the segmenter (section ``segment:`` of configs/default.yaml).

    Thresholds are not here: they are versioned per quarter in configs/thresholds/ and
    passed to `segment` as arguments.
    """

    yaml_section: ClassVar[str] = "segment"

    tam: TamSplitConfig
    high_maturity_min_level: int = Field(
        ge=0,
        le=len(STAGES) - 1,
        description="maturity_level counted as high (index into features.names.STAGES)",
    )
    save_rate: float = Field(ge=0, le=1, description="share of at-risk ARR a CSM saves")
    capture_rate: float = Field(
        ge=0,
        le=1,
        description="share of the expansion base one expansion adds within the horizon "
        "(measure it with estimate_capture_rate; 0.018 of whitespace, 0.38 of ARR on the "
        "simulated world)",
    )
    expansion_base: Literal["whitespace", "arr"] = Field(
        description="what an expansion is a share of: whitespace (TAM - ARR) or current ARR",
    )
    medium_band_ratio: float = Field(
        gt=0, lt=1, description="band 'medium' from this fraction of the threshold"
    )
    playbook_min_band: str = Field(
        description="band of a rule's target needed for driver rules to apply"
    )
    playbook_max_rank: int = Field(ge=1, description="drivers considered per direction")
    playbooks: list[PlaybookRule] = Field(description="driver rules, in order of preference")
    fallback: dict[str, FallbackPlay] = Field(description="play per segment without a rule")
    playbook_details: dict[str, PlaybookDetail] = Field(
        description="per play name: steps, owner, due in N days, success measure",
    )
    coverage: CoverageConfig
    load: LoadConfig

    @model_validator(mode="after")
    def _names_known(self) -> SegmentConfig:
        where = self.yaml_section
        require_known(f"{where}.playbook_min_band", [self.playbook_min_band], BANDS, "band")
        for i, rule in enumerate(self.playbooks):
            require_known(f"{where}.playbooks.{i}.features", rule.features, CATALOG, "feature")
        require_known(f"{where}.fallback", self.fallback, SEGMENTS, "segment")
        return self

    @model_validator(mode="after")
    def _all_fallbacks(self) -> SegmentConfig:
        missing = sorted(set(SEGMENTS) - set(self.fallback))
        if missing:
            raise ValueError(f"fallback lacks plays for segments {missing}")
        plays = {r.play for r in self.playbooks} | {f.play for f in self.fallback.values()}
        unknown = sorted(set(self.playbook_details) - plays)
        if unknown:
            raise ValueError(
                f"playbook_details names plays no rule or fallback uses: {unknown}; "
                f"plays are {sorted(plays)}"
            )
        return self


# ----------------------------------------------------------------------------- pieces


def priority_columns(
    p_churn: Any,
    p_expand: Any,
    arr: Any,
    whitespace: Any,
    *,
    save_rate: float,
    capture_rate: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected ARR at stake per account.

    ``arr_at_risk = p_churn * arr`` (expected ARR lost), ``arr_to_gain = p_expand *
    max(whitespace, 0) * capture_rate`` (NaN where whitespace is unknown) and
    ``priority = save_rate * arr_at_risk + arr_to_gain`` (unknown gain counts as 0).

    Parameters
    ----------
    p_churn, p_expand : array-like of float
        Calibrated probabilities.
    arr : array-like of float
        Current ARR (negative counts as 0).
    whitespace : array-like of float
        The expansion base (whitespace or ARR, see `SegmentConfig.expansion_base`);
        NaN where unknown.
    save_rate, capture_rate : float
        Share of at-risk ARR a CSM saves; share of the base one expansion adds.

    Returns
    -------
    priority, arr_at_risk, arr_to_gain : float ndarrays

    Examples
    --------
    >>> [float(x[0]) for x in priority_columns([0.5], [0.2], [1000.0], [500.0],
    ...                                         save_rate=0.3, capture_rate=0.5)]
    [200.0, 500.0, 50.0]
    """
    p_churn = np.asarray(p_churn, dtype=np.float64)
    p_expand = np.asarray(p_expand, dtype=np.float64)
    arr = np.clip(np.asarray(arr, dtype=np.float64), 0.0, None)
    ws = np.clip(np.asarray(whitespace, dtype=np.float64), 0.0, None)
    at_risk = p_churn * arr
    to_gain = p_expand * ws * capture_rate
    priority = save_rate * at_risk + np.nan_to_num(to_gain, nan=0.0)
    return priority, at_risk, to_gain


def estimate_capture_rate(
    history: pd.DataFrame,
    *,
    base: Literal["whitespace", "arr"] = "whitespace",
    label: str = "label_expand",
) -> float:
    """Share of the expansion base that expansions actually added over the horizon.

    ``sum(max(arr_h - arr, 0)) / sum(max(base, 0))`` over rows of matured history whose
    `label` is 1, so that ``p_expand * base * rate`` is the expected ARR gained. Use rows
    older than the ones being scored (e.g. the training slice).

    Parameters
    ----------
    history : feature table rows with ``arr``, ``arr_h``, `label` and ``whitespace``
        (for base 'whitespace').
    base : 'whitespace' or 'arr' (see `SegmentConfig.expansion_base`).

    Returns
    -------
    float in [0, inf); NaN when the history holds no expansion with a known base.
    """
    need = ["arr", "arr_h", label] + (["whitespace"] if base == "whitespace" else [])
    missing = [c for c in need if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks columns {missing}")
    rows = history.loc[history[label].to_numpy(dtype=np.float64, na_value=np.nan) == 1.0]
    b = rows["whitespace" if base == "whitespace" else "arr"].to_numpy(np.float64, na_value=np.nan)
    gain = np.clip(rows["arr_h"].to_numpy(np.float64) - rows["arr"].to_numpy(np.float64), 0, None)
    known = ~np.isnan(b) & ~np.isnan(gain)
    denom = float(np.clip(b[known], 0.0, None).sum())
    return float(gain[known].sum() / denom) if denom > 0 else float("nan")


def recommend_coverage(
    priority: Any,
    arr: Any,
    segment: Any,
    account_id: Any,
    *,
    capacity: int,
    cfg: CoverageConfig,
) -> np.ndarray:
    """High-touch seats to the highest priorities (never more than `capacity`), then rules.

    Ties on priority go to the larger ARR, then the smaller account_id. Accounts with a
    priority of zero never take a high-touch seat. Others are 'standard' when their ARR
    or priority reaches the configured minimum and their segment is not served
    digitally, else 'digital'.

    Parameters
    ----------
    priority, arr : array-like of float
        Per account (NaN counts as 0).
    segment : array-like of str
        Quadrant per account (`features.names.SEGMENTS`).
    account_id : array-like
        Breaks ties last.
    capacity : int
        High-touch seats (see `high_touch_capacity`).
    cfg : CoverageConfig
        Minimum ARR / priority for standard and the segments served digitally.

    Returns
    -------
    ndarray of str: 'high_touch' / 'standard' / 'digital'.
    """
    seg_code = np.asarray(
        pd.Series(np.asarray(segment, dtype=object)).map({s: i for i, s in enumerate(SEGMENTS)}),
        dtype=np.float64,
    )
    seg_code = np.nan_to_num(seg_code, nan=-1).astype(np.int64)
    codes = _coverage_codes(priority, arr, seg_code, account_id, capacity, cfg)
    return np.asarray(COVERAGE_LEVELS, dtype=object)[codes]


def _coverage_codes(
    priority: Any,
    arr: Any,
    seg_code: np.ndarray,
    account_id: Any,
    capacity: int,
    cfg: CoverageConfig,
) -> np.ndarray:
    """Index into `COVERAGE_LEVELS` per account (see `recommend_coverage`)."""
    if capacity < 0:
        raise ValueError(f"capacity must be >= 0, got {capacity}")
    priority = np.nan_to_num(np.asarray(priority, dtype=np.float64), nan=0.0)
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0)
    ids = pd.Series(account_id).reset_index(drop=True).astype("str")
    id_rank = pd.factorize(ids, sort=True)[0]
    n = len(priority)
    order = np.lexsort((id_rank, -arr, -priority))
    seats = order[: min(int(capacity), n)]
    seats = seats[priority[seats] > 0]
    high = np.zeros(n, dtype=bool)
    high[seats] = True
    earns_standard = (arr >= cfg.standard_min_arr) | (priority >= cfg.standard_min_priority)
    digital = np.isin(seg_code, [SEGMENTS.index(x) for x in cfg.digital_segments])
    return np.where(high, 2, np.where(earns_standard & ~digital, 1, 0))


def _bands(p: np.ndarray, threshold: float, ratio: float) -> Any:
    code = np.select([p >= threshold, p >= ratio * threshold], [2, 1], 0)
    return decode_labels(code, BANDS)


def _maturity_level(scored: pd.DataFrame) -> np.ndarray:
    """maturity_level as float (NaN unknown), from the level or the stage name."""
    if "maturity_level" in scored.columns:
        return scored["maturity_level"].to_numpy(dtype=np.float64, na_value=np.nan)
    stage = scored["maturity_stage"].astype(object)
    return stage.map({s: float(i) for i, s in enumerate(STAGES)}).to_numpy(dtype=np.float64)


def _require(scored: pd.DataFrame) -> None:
    need = ["account_id", "p_churn", "p_expand", "arr", "tam_usd"]
    missing = [c for c in need if c not in scored.columns]
    if not {"maturity_level", "maturity_stage"} & set(scored.columns):
        missing.append("maturity_level or maturity_stage")
    if missing:
        raise ValueError(f"scored frame lacks columns {missing} ({len(scored)} rows)")
    dup = scored["account_id"].duplicated()
    if dup.any():
        raise ValueError(
            f"scored frame: {int(dup.sum())} duplicate account_id rows (segment one as_of at "
            f"a time), e.g. {scored.loc[dup, 'account_id'].iloc[0]!r}"
        )
    for col in ("p_churn", "p_expand"):
        p = scored[col].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~((p >= 0) & (p <= 1))
        if bad.any():
            raise ValueError(f"scored.{col}: {int(bad.sum())} rows outside [0, 1] or missing")


def high_touch_capacity(scored: pd.DataFrame, cfg: CoverageConfig) -> tuple[int, int]:
    """(CSMs, high-touch seats): CSMs from the config, else distinct csm_id.

    With a ``csm_capacity`` column (each account's CSM capacity, from the optional
    ``csms`` table), a CSM's seats are their own capacity, ``accounts_per_csm`` where
    unknown.

    Parameters
    ----------
    scored : DataFrame
        The scored accounts; optional ``csm_id`` and ``csm_capacity``.
    cfg : CoverageConfig
        ``csms`` (None: count distinct csm_id) and ``accounts_per_csm``.

    Returns
    -------
    (int, int)
        Number of CSMs and high-touch seats.
    """
    if cfg.csms is not None:
        csms = int(cfg.csms)
    elif "csm_id" in scored.columns:
        csms = int(scored["csm_id"].dropna().nunique())
        if "csm_capacity" in scored.columns:
            per = scored.loc[scored["csm_id"].notna(), ["csm_id", "csm_capacity"]]
            cap = pd.to_numeric(per.drop_duplicates("csm_id")["csm_capacity"], errors="coerce")
            return csms, int(cap.fillna(cfg.accounts_per_csm).clip(lower=0).sum())
    else:
        csms = 0
        log.warning("no csm_id column and segment.coverage.csms unset: no high-touch seats")
    return csms, csms * int(cfg.accounts_per_csm)


# ----------------------------------------------------------------------------- segment


def segment(
    scored: pd.DataFrame,
    reasons: Any,
    cfg: SegmentConfig | None = None,
    *,
    churn_threshold: float,
    expand_threshold: float,
    reasons_json: bool = True,
) -> pd.DataFrame:
    """Segment, overlays, playbook, priority and coverage for every scored account.

    Parameters
    ----------
    scored : DataFrame, one row per account (one as_of), with ``account_id``,
        ``p_churn``, ``p_expand`` (calibrated), ``arr``, ``tam_usd`` (NaN = unknown) and
        ``maturity_level`` (0/1/2) or ``maturity_stage``; optional ``name``, ``as_of``,
        ``csm_id``, ``coverage`` (or ``coverage_current``), ``whitespace`` (default
        TAM - ARR), ``model_version_churn``, ``model_version_expand``.
    reasons : `models.explain.ReasonCodes`, a long reason frame, or None (no driver
        rules, empty ``reasons_json``).
    cfg : SegmentConfig (the default configuration's when None).
    churn_threshold, expand_threshold : float
        This quarter's alert thresholds: ``at_risk = p_churn >= churn_threshold``,
        ``expansion_ready = p_expand >= expand_threshold``.
    reasons_json : bool, default True
        Build the ``reasons_json`` column; False leaves "[]" for a caller that adds
        context to the reasons first and builds it once (`models.scoring`).

    Returns
    -------
    DataFrame with `SCORE_COLUMNS` then `EXTRA_COLUMNS`, rows in the input order.
    ``attrs`` holds ``tam_cut_usd``, ``csms`` and ``high_touch_capacity``.
    """
    cfg = cfg or SegmentConfig()
    for name, thr in (("churn_threshold", churn_threshold), ("expand_threshold", expand_threshold)):
        if not 0.0 <= float(thr) <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {thr}")
    _require(scored)
    s = scored.reset_index(drop=True)
    p_churn = s["p_churn"].to_numpy(dtype=np.float64)
    p_expand = s["p_expand"].to_numpy(dtype=np.float64)
    arr = s["arr"].to_numpy(dtype=np.float64, na_value=np.nan)
    opp = _opportunity(s, arr, cfg.tam)
    level = _maturity_level(s)
    maturity_known = ~np.isnan(level)
    high_mat = maturity_known & (level >= cfg.high_maturity_min_level)
    seg_code = _quadrant_codes(opp.high_tam, high_mat)
    seg = decode_labels(seg_code, SEGMENTS)

    churn_band = _bands(p_churn, churn_threshold, cfg.medium_band_ratio)
    expand_band = _bands(p_expand, expand_threshold, cfg.medium_band_ratio)
    base = opp.whitespace if cfg.expansion_base == "whitespace" else arr
    priority, arr_at_risk, arr_to_gain = priority_columns(
        p_churn, p_expand, arr, base, save_rate=cfg.save_rate, capture_rate=cfg.capture_rate
    )
    frame_reasons = getattr(reasons, "frame", reasons)
    positions = _reason_positions(frame_reasons, s["account_id"])
    accounts = {
        "account_id": s["account_id"],
        "segment": seg,
        "churn_band": churn_band,
        "expand_band": expand_band,
        "p_churn": p_churn,
        "p_expand": p_expand,
    }
    plays = _playbooks(pd.DataFrame(accounts), frame_reasons, positions, cfg)
    csms, capacity = high_touch_capacity(s, cfg.coverage)
    codes = _coverage_codes(priority, arr, seg_code, s["account_id"], capacity, cfg.coverage)
    computed = {
        "p_churn": p_churn,
        "p_expand": p_expand,
        "churn_band": churn_band,
        "expand_band": expand_band,
        "at_risk": p_churn >= churn_threshold,
        "expansion_ready": p_expand >= expand_threshold,
        "segment": seg,
        "tam_usd": opp.tam,
        "arr": arr,
        "whitespace": opp.whitespace,
        "coverage_recommended": decode_labels(codes, COVERAGE_LEVELS),
        "priority": priority,
        "arr_at_risk": arr_at_risk,
        "arr_to_gain": arr_to_gain,
        "playbook": plays["playbook"].array,
        "playbook_reason": plays["playbook_reason"].array,
        "reasons_json": _reasons_json_column(frame_reasons, positions, len(s), reasons_json),
        "tam_known": opp.tam_known,
        "segment_reason": _segment_reasons(
            opp.high_tam, opp.tam_known, high_mat, maturity_known, cfg
        ),
        "playbook_feature": plays["playbook_feature"].array,
    }
    out = _score_frame(s, level, computed)
    out.attrs.update(tam_cut_usd=opp.cut, csms=csms, high_touch_capacity=capacity)
    return out


@dataclass(frozen=True)
class _Opportunity:
    """TAM side of every account: TAM, whether known, the cut, high or not, whitespace."""

    tam: np.ndarray
    tam_known: np.ndarray
    cut: float
    high_tam: np.ndarray
    whitespace: np.ndarray


def _opportunity(s: pd.DataFrame, arr: np.ndarray, cfg: TamSplitConfig) -> _Opportunity:
    """High or low TAM at the configured cut (unknown TAM on the configured side)."""
    tam = s["tam_usd"].to_numpy(dtype=np.float64, na_value=np.nan)
    tam_known = ~np.isnan(tam)
    if cfg.method == "usd":
        cut = float(cfg.usd)
    elif tam_known.any():
        cut = float(np.quantile(tam[tam_known], cfg.quantile))
    else:
        cut = float("nan")
        log.warning("no account has a known TAM: every account is placed as %s TAM", cfg.unknown_as)
    high_tam = np.where(tam_known, tam >= cut, cfg.unknown_as == "high")
    if "whitespace" in s.columns:
        whitespace = s["whitespace"].to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        whitespace = np.clip(tam - arr, 0.0, None)
    return _Opportunity(tam, tam_known, cut, high_tam, whitespace)


def _quadrant_codes(high_tam: np.ndarray, high_mat: np.ndarray) -> np.ndarray:
    """Index into `SEGMENTS`: TAM high/low x AI maturity high/low."""
    return np.select(
        [high_tam & ~high_mat, high_tam & high_mat, ~high_tam & high_mat], [0, 1, 2], 3
    )


def _reason_positions(frame_reasons: Any, account_id: pd.Series) -> np.ndarray | None:
    """Row of the scored frame of every reason row; None without reasons."""
    if frame_reasons is None or len(frame_reasons) == 0:
        return None
    from models.explain import account_positions

    positions = account_positions(frame_reasons["account_id"], account_id)
    if (positions < 0).any():
        raise ValueError(
            f"reasons: {int((positions < 0).sum())} rows name an account_id that is not "
            "in the scored frame"
        )
    return positions


def _playbooks(
    accounts: pd.DataFrame, frame_reasons: Any, positions: np.ndarray | None, cfg: SegmentConfig
) -> pd.DataFrame:
    """Driver rules where an account's band allows, else its quadrant's play."""
    return choose_playbooks(
        accounts,
        frame_reasons,
        cfg.playbooks,
        cfg.fallback,
        min_band=cfg.playbook_min_band,
        max_rank=cfg.playbook_max_rank,
        positions=positions,
    )


def _reasons_json_column(
    frame_reasons: Any, positions: np.ndarray | None, n: int, build: bool
) -> Any:
    """The ``reasons_json`` column, or "[]" everywhere (no reasons, or not asked for)."""
    if positions is not None and build:
        from models.explain import _reasons_json

        return _reasons_json(frame_reasons, positions, n).array
    return decode_labels(np.zeros(n, dtype=np.int64), ["[]"])


def _score_frame(s: pd.DataFrame, level: np.ndarray, computed: dict[str, Any]) -> pd.DataFrame:
    """`SCORE_COLUMNS` then `EXTRA_COLUMNS`: `computed` plus what passes through from `s`."""
    n = len(s)

    def col(name: str) -> Any:
        return s[name].array if name in s.columns else decode_labels(np.full(n, -1), [])

    current_col = "coverage_current" if "coverage_current" in s.columns else "coverage"
    stage = (
        s["maturity_stage"].array
        if "maturity_stage" in s.columns
        else decode_labels(np.where(~np.isnan(level), level, -1).astype(np.int64), STAGES)
    )
    passed = {
        "account_id": s["account_id"].array,
        "name": col("name"),
        "as_of": s["as_of"].array if "as_of" in s.columns else pd.NaT,
        "csm_id": col("csm_id"),
        "model_version_churn": col("model_version_churn"),
        "model_version_expand": col("model_version_expand"),
        "maturity_stage": stage,
        "coverage_current": col(current_col),
    }
    values = {**passed, **computed}
    return pd.DataFrame({c: values[c] for c in SCORE_COLUMNS + EXTRA_COLUMNS})


def _segment_reasons(
    high_tam: np.ndarray,
    tam_known: np.ndarray,
    high_mat: np.ndarray,
    maturity_known: np.ndarray,
    cfg: SegmentConfig,
) -> Any:
    """Why an account sits in its quadrant; unknown TAM or maturity is said explicitly."""
    tam_txt = ("high TAM", "low TAM", f"TAM unknown (placed as {cfg.tam.unknown_as} TAM)")
    mat_txt = ("high AI maturity", "low AI maturity", "AI maturity unknown (placed as low)")
    tam_state = np.where(tam_known, np.where(high_tam, 0, 1), 2)
    mat_state = np.where(maturity_known, np.where(high_mat, 0, 1), 2)
    texts = [f"{t}, {m}" for t in tam_txt for m in mat_txt]
    return decode_labels(tam_state * 3 + mat_state, texts)


# ----------------------------------------------------------------------------- changes, load


@dataclass(frozen=True)
class CoverageChanges:
    """Accounts whose recommended coverage differs from the current one.

    Attributes
    ----------
    upgrades : recommended above current, highest priority first.
    downgrades : recommended below current, lowest priority first.
    unknown_current : accounts without a (valid) current coverage, highest priority first.
    """

    upgrades: pd.DataFrame
    downgrades: pd.DataFrame
    unknown_current: pd.DataFrame


_CHANGE_COLUMNS = [
    "account_id",
    "name",
    "csm_id",
    "segment",
    "coverage_current",
    "coverage_recommended",
    "priority",
    "arr",
    "p_churn",
    "p_expand",
    "at_risk",
    "expansion_ready",
    "playbook",
]


def coverage_changes(scores: pd.DataFrame) -> CoverageChanges:
    """Upgrade and downgrade candidates where current and recommended coverage disagree.

    Parameters
    ----------
    scores : output of `segment`.

    Returns
    -------
    CoverageChanges
        Upgrades, downgrades and accounts without a valid current coverage.
    """
    cur = _index_of(scores["coverage_current"], COVERAGE_LEVELS).astype(np.float64)
    rec = _index_of(scores["coverage_recommended"], COVERAGE_LEVELS).astype(np.float64)
    cur[cur < 0] = np.nan
    rec[rec < 0] = np.nan
    cols = [c for c in _CHANGE_COLUMNS if c in scores.columns]
    view = scores[cols]
    by_priority = ["priority", "account_id"]
    return CoverageChanges(
        upgrades=view.loc[rec > cur]
        .sort_values(by_priority, ascending=[False, True])
        .reset_index(drop=True),
        downgrades=view.loc[rec < cur].sort_values(by_priority).reset_index(drop=True),
        unknown_current=view.loc[np.isnan(cur)]
        .sort_values(by_priority, ascending=[False, True])
        .reset_index(drop=True),
    )


def _index_of(col: pd.Series, names: tuple[str, ...]) -> np.ndarray:
    """Position of each value in `names`; -1 for anything else or missing."""
    return pd.Categorical(col.astype("str"), categories=list(names)).codes.astype(np.int64)


def _weights(col: pd.Series, table: dict[str, float], *, default: float) -> np.ndarray:
    names = tuple(table)
    lookup = np.array([table[k] for k in names] + [default], dtype=np.float64)
    return lookup[_index_of(col, names)]  # -1 picks the default at the end


def csm_load(scores: pd.DataFrame, cfg: SegmentConfig | None = None) -> pd.DataFrame:
    """Each CSM's complexity-weighted load before (current) and after (recommended).

    An account weighs ``load.coverage[coverage] * load.segment[segment]``, times
    ``load.at_risk`` when at risk; an unknown current coverage weighs 0 (counted in
    ``unknown_current``). Accounts without a CSM are grouped as ``'(unassigned)'``.

    Parameters
    ----------
    scores : DataFrame
        Output of `segment`.
    cfg : SegmentConfig, optional
        Its ``load`` weights and ``coverage.accounts_per_csm`` (the default
        configuration's when None).

    Returns
    -------
    DataFrame, one row per CSM: accounts, high_touch_current, high_touch_recommended,
    high_touch_capacity, load_current, load_recommended, load_change, unknown_current,
    over_capacity (recommended high-touch accounts above the per-CSM seats); sorted by
    load_recommended, largest first.
    """
    cfg = cfg or SegmentConfig()
    w = cfg.load
    seg_w = _weights(scores["segment"], w.segment, default=1.0)
    risk_w = np.where(scores["at_risk"].to_numpy(dtype=bool), w.at_risk, 1.0)
    cur_w = _weights(scores["coverage_current"], w.coverage, default=np.nan)
    rec_w = _weights(scores["coverage_recommended"], w.coverage, default=np.nan)
    high = COVERAGE_LEVELS.index("high_touch")
    frame = pd.DataFrame(
        {
            "csm_id": scores["csm_id"].astype("str").fillna("(unassigned)"),
            "accounts": 1,
            "high_touch_current": _index_of(scores["coverage_current"], COVERAGE_LEVELS) == high,
            "high_touch_recommended": _index_of(scores["coverage_recommended"], COVERAGE_LEVELS)
            == high,
            "load_current": np.nan_to_num(cur_w, nan=0.0) * seg_w * risk_w,
            "load_recommended": np.nan_to_num(rec_w, nan=0.0) * seg_w * risk_w,
            "unknown_current": np.isnan(cur_w),
        }
    )
    out = frame.groupby("csm_id", sort=True).sum().reset_index()
    out["high_touch_capacity"] = int(cfg.coverage.accounts_per_csm)
    out["load_change"] = out["load_recommended"] - out["load_current"]
    out["over_capacity"] = out["high_touch_recommended"] > out["high_touch_capacity"]
    cols = [
        "csm_id", "accounts", "high_touch_current", "high_touch_recommended",
        "high_touch_capacity", "load_current", "load_recommended", "load_change",
        "unknown_current", "over_capacity",
    ]  # fmt: skip
    return (
        out[cols]
        .sort_values(["load_recommended", "csm_id"], ascending=[False, True])
        .reset_index(drop=True)
    )
