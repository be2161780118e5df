"""Context that turns a SHAP driver into a reason a CSM can repeat to a customer.

`models.explain` ranks drivers in log-odds; a CSM needs more: how much the driver moves
the issued probability (points), what the number compares with (the account's own value
four weeks earlier and the median of its segment), whether the state is healthy (only
healthy states are "working well"), which data is missing (a gap, never a driver) and,
for accounts whose probability moved, which drivers moved it since the last run.
Everything here is vectorised over the long reason frame (no loop over accounts).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from features.feature_spec import round_as_shown
from features.names import TARGETS

Calibrate = Callable[[np.ndarray], np.ndarray]
STATES = ("good", "bad", "neutral")
PREVIOUS_DAYS = 28
"""The "previous period" of a comparison: the same feature four weeks (same weekday) earlier."""
_EPS = 1e-12


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(q) - np.log1p(-q)


def probability_points(
    contribution: np.ndarray, raw: np.ndarray, calibrate: Calibrate
) -> np.ndarray:
    """What each driver adds to the issued probability, as a fraction (0.042 = 4.2 points).

    Parameters
    ----------
    contribution : ndarray of shape (n_reasons,)
        SHAP contribution in log-odds of each reason.
    raw : ndarray of shape (n_reasons,)
        The model's raw probability for the reason's account (same target).
    calibrate : raw -> issued probability (monotone).

    Returns
    -------
    ndarray of shape (n_reasons,): issued(raw) - issued(raw without this driver). The sign
    is the contribution's, and within an account larger contributions give more points.
    """
    contribution = np.asarray(contribution, dtype=np.float64)
    raw = np.asarray(raw, dtype=np.float64)
    without = 1.0 / (1.0 + np.exp(-(_logit(raw) - contribution)))
    return np.asarray(calibrate(raw), dtype=np.float64) - np.asarray(
        calibrate(without), dtype=np.float64
    )


def reason_state(
    features: Sequence[str],
    values: np.ndarray,
    reference: np.ndarray,
    catalog: Any = None,
    previous: np.ndarray | None = None,
) -> np.ndarray:
    """'good', 'bad' or 'neutral' per reason: its value against its comparisons.

    Changes (units ``pct_change`` / ``delta_*``) compare with 0; other values with
    `reference` (the segment median) and, when known, the account's own `previous`
    value. A state is good only when every available comparison is on the healthy
    side, bad when every one is on the unhealthy side, else neutral (2,112 events is
    above the segment median but no strength when it was 2,906 four weeks earlier).
    Features with no healthy direction are neutral.

    Parameters
    ----------
    features : feature name of every reason.
    values : ndarray of shape (n_reasons,), the feature values.
    reference : ndarray of shape (n_reasons,), the segment medians.
    catalog : feature registry (name -> spec with ``unit`` and ``healthier``); default
        `features.catalog.CATALOG`.
    previous : ndarray of shape (n_reasons,), the account's values `PREVIOUS_DAYS`
        earlier (NaN = unknown), optional.

    Returns
    -------
    object ndarray of 'good', 'bad' or 'neutral'.
    """
    from features.catalog import CATALOG

    catalog = CATALOG if catalog is None else catalog
    feats = pd.Series(np.asarray(features, dtype=object))
    unique = feats.unique()
    sign = feats.map(_healthier(unique, catalog)).to_numpy(dtype=np.float64)
    is_change = feats.map(_is_change(unique, catalog)).to_numpy(dtype=bool)
    x = np.asarray(values, dtype=np.float64)
    ref = np.where(is_change, 0.0, np.asarray(reference, dtype=np.float64))
    prev = np.full(len(x), np.nan) if previous is None else np.asarray(previous, np.float64)
    prev = np.where(is_change, np.nan, prev)  # a change already compares with the past
    diffs = np.stack([sign * (x - ref), sign * (x - prev)])
    known = np.isfinite(diffs)
    up = (diffs > _EPS) & known
    down = (diffs < -_EPS) & known
    n_known = known.sum(axis=0)
    out = np.full(len(feats), "neutral", dtype=object)
    out[(n_known > 0) & (up.sum(axis=0) == n_known)] = "good"
    out[(n_known > 0) & (down.sum(axis=0) == n_known)] = "bad"
    return out


def _healthier(features: Sequence[str], catalog: Mapping[str, Any]) -> dict[str, float]:
    """Healthy direction (+1, -1, 0) of each feature from its catalogue entry (0 if none)."""
    return {f: float(getattr(catalog.get(f), "healthier", 0)) for f in features}


def _is_change(features: Sequence[str], catalog: Mapping[str, Any]) -> dict[str, bool]:
    """Whether each feature's unit is a change (compared with 0), from its catalogue entry."""
    from features.feature_spec import is_change_unit

    return {f: is_change_unit(str(getattr(catalog.get(f), "unit", ""))) for f in features}


def segment_medians(table: pd.DataFrame, segments: pd.Series, features: Sequence[str]) -> Any:
    """Median of each feature per segment (rows: segment, columns: feature).

    Parameters
    ----------
    table : feature rows.
    segments : segment of each row of `table`.
    features : features wanted (those missing from `table` are skipped).

    Returns
    -------
    DataFrame indexed by segment.
    """
    cols = [f for f in dict.fromkeys(features) if f in table.columns]
    frame = table[cols].apply(pd.to_numeric, errors="coerce").astype("float64")
    return frame.groupby(np.asarray(segments, dtype=object)).median()


def add_context(
    reasons: pd.DataFrame,
    table: pd.DataFrame,
    segments: pd.Series,
    *,
    previous: pd.DataFrame | None = None,
    catalog: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Reasons with comparisons in the sentence and a ``state`` column.

    Parameters
    ----------
    reasons : long reason frame (``account_id, target, direction, rank, feature, value,
        contribution, sentence``).
    table : the scored feature rows (``account_id`` plus features).
    segments : segment of each row of `table` (aligned with it).
    previous : feature rows of the same accounts `PREVIOUS_DAYS` earlier (optional).
    catalog : feature catalogue (default `features.catalog.CATALOG`).

    Returns
    -------
    A copy of `reasons` with ``sentence`` ending in "(4 weeks earlier: ...; segment
    median: ...)", and ``state``, ``value_previous``, ``segment_median`` columns.
    Work is done on integer codes (feature, account, segment); only distinct
    (feature, value) pairs are formatted in Python.
    """
    from features.catalog import CATALOG
    from models.explain import account_positions

    catalog = CATALOG if catalog is None else catalog
    out = reasons.copy()
    if out.empty:
        for col in ("value_previous", "segment_median"):
            out[col] = pd.Series(dtype="float64")
        out["state"] = pd.Series(dtype="str")
        return out
    fcode, fnames = pd.factorize(out["feature"].astype("category"), sort=False)
    fnames = [str(f) for f in fnames]
    cols = [f for f in fnames if f in table.columns]
    col_of = np.array([cols.index(f) if f in cols else -1 for f in fnames], dtype=np.int64)
    pos = account_positions(out["account_id"], table["account_id"])
    seg_code, seg_names = pd.factorize(pd.Series(np.asarray(segments, dtype=object)))
    num = table[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    med = pd.DataFrame(num).groupby(seg_code).median().reindex(range(len(seg_names)))
    med_m = np.column_stack([med.to_numpy(dtype=np.float64), np.full(len(seg_names), np.nan)])
    c = np.where(col_of[fcode] >= 0, col_of[fcode], len(cols))  # missing column -> NaN
    median = med_m[seg_code[pos], c]
    prev = np.full(len(out), np.nan)
    if previous is not None and len(previous):
        p_tab = previous.drop_duplicates("account_id").set_index("account_id")
        p_tab = p_tab.reindex(pd.Index(table["account_id"]))
        p_num = np.column_stack(
            [
                *(
                    pd.to_numeric(p_tab[f], errors="coerce").to_numpy(dtype=np.float64)
                    if f in p_tab.columns
                    else np.full(len(p_tab), np.nan)
                    for f in cols
                ),
                np.full(len(p_tab), np.nan),
            ]
        )
        prev = p_num[pos, c]
    values = out["value"].to_numpy(dtype=np.float64)
    feats = np.asarray(fnames, dtype=object)[fcode]
    out["value_previous"] = prev
    out["segment_median"] = median
    state_codes = _state_codes(fnames, fcode, values, median, prev, catalog)
    out["state"] = pd.Categorical.from_codes(state_codes, categories=list(STATES))
    out["sentence"] = _with_comparison(out["sentence"], fnames, fcode, prev, median, catalog)
    del feats
    return out


def _state_codes(
    fnames: list[str],
    fcode: np.ndarray,
    values: np.ndarray,
    median: np.ndarray,
    prev: np.ndarray,
    catalog: Mapping[str, Any],
) -> np.ndarray:
    """`reason_state` on feature codes: 0 good, 1 bad, 2 neutral (order of `STATES`)."""
    healthier, change = _healthier(fnames, catalog), _is_change(fnames, catalog)
    sign = np.array([healthier[f] for f in fnames], dtype=np.float64)[fcode]
    is_change = np.array([change[f] for f in fnames], dtype=bool)[fcode]
    ref = np.where(is_change, 0.0, median)
    prv = np.where(is_change, np.nan, prev)
    diffs = np.stack([sign * (values - ref), sign * (values - prv)])
    known = np.isfinite(diffs)
    n_known = known.sum(axis=0)
    up = ((diffs > _EPS) & known).sum(axis=0)
    down = ((diffs < -_EPS) & known).sum(axis=0)
    out = np.full(len(values), 2, dtype=np.int8)
    out[(n_known > 0) & (up == n_known)] = 0
    out[(n_known > 0) & (down == n_known)] = 1
    return out


def _with_comparison(
    sentences: pd.Series,
    fnames: list[str],
    fcode: np.ndarray,
    prev: np.ndarray,
    median: np.ndarray,
    catalog: Mapping[str, Any],
) -> Any:
    """Append "(4 weeks earlier: X; segment median: Y)", joined by Arrow kernels."""
    import pyarrow as pa
    import pyarrow.compute as pc

    p_txt = _formatted(fnames, fcode, prev, catalog)
    m_txt = _formatted(fnames, fcode, median, catalog)
    has_p, has_m = np.isfinite(prev), np.isfinite(median)
    any_part = has_p | has_m

    def lit(mask: np.ndarray, text: str) -> pa.Array:
        return pc.if_else(
            pa.array(mask), pa.scalar(text, pa.large_string()), pa.scalar("", pa.large_string())
        )

    joined = pc.binary_join_element_wise(
        pa.array(sentences.astype("str")).cast(pa.large_string()),
        lit(any_part, " ("),
        lit(has_p, "4 weeks earlier: "),
        pa.array(p_txt, pa.large_string()),
        lit(has_p & has_m, "; "),
        lit(has_m, "segment median: "),
        pa.array(m_txt, pa.large_string()),
        lit(any_part, ")"),
        pa.scalar("", pa.large_string()),
    )
    return pd.array(joined, dtype="str")


def _formatted(
    fnames: list[str], fcode: np.ndarray, values: np.ndarray, catalog: Mapping[str, Any]
) -> np.ndarray:
    """Each value in words for its feature's unit ("" where missing), per distinct pair."""
    out = np.full(len(fcode), "", dtype=object)
    ok = np.isfinite(values)
    order = np.argsort(fcode, kind="stable")
    bounds = np.searchsorted(fcode[order], np.arange(len(fnames) + 1))
    for j, name in enumerate(fnames):  # a loop over features, not rows
        rows = order[bounds[j] : bounds[j + 1]]
        rows = rows[ok[rows]]
        if len(rows) == 0:
            continue
        spec = catalog.get(name)
        codes, uniques = pd.factorize(round_as_shown(values[rows], getattr(spec, "unit", "")))
        fmt = spec.format_value if spec is not None else (lambda v: f"{v:g}")
        out[rows] = np.asarray([fmt(float(v)) for v in uniques], dtype=object)[codes]
    return out


def data_gaps(
    table: pd.DataFrame, features: Sequence[str], catalog: Mapping[str, Any] | None = None
) -> pd.Series:
    """Per account, the missing data the models would use, in words ("No CSAT recorded ...").

    Parameters
    ----------
    table : the scored feature rows.
    features : the models' features (those missing from `table` are skipped).
    catalog : unused; the gap texts come from `features.catalog.gap_text`.

    Returns
    -------
    str Series aligned with `table`: distinct gap texts joined by "; " (empty when
    nothing is missing).
    """
    from features.catalog import gap_text

    cols = [f for f in dict.fromkeys(features) if f in table.columns]
    if not cols:
        return pd.Series([""] * len(table), index=table.index, dtype="str")
    missing = table[cols].isna().to_numpy()
    texts = [gap_text(c) for c in cols]
    uniq = list(dict.fromkeys(texts))
    code = np.array([uniq.index(t) for t in texts])
    flags = np.zeros((len(table), len(uniq)), dtype=bool)
    for j, c in enumerate(code):
        flags[:, c] |= missing[:, j]
    # one string per distinct combination of gaps (bits packed into an integer)
    packed = np.zeros(len(table), dtype=object if len(uniq) > 62 else np.int64)
    for j in range(len(uniq)):
        packed = packed + flags[:, j].astype(np.int64) * (1 << j)
    combo, inverse = np.unique(packed, return_inverse=True)
    labels = ["; ".join(u for j, u in enumerate(uniq) if (int(key) >> j) & 1) for key in combo]
    return pd.Series(np.asarray(labels, dtype=object)[inverse.ravel()], index=table.index).astype(
        "str"
    )


def changes_since(
    scores: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    min_points: float = 0.10,
    max_drivers: int = 3,
) -> pd.DataFrame:
    """ "What changed since last run" for accounts whose probability moved at least `min_points`.

    Parameters
    ----------
    scores, previous : scores tables of this run and the previous one (``account_id``,
        ``p_churn``, ``p_expand``, ``reasons_json``).
    min_points : move (fraction, 0.10 = 10 points) from which an account is listed.
    max_drivers : drivers named per account and target.

    Returns
    -------
    DataFrame ``account_id, target, p_before, p_now, move, drivers`` where ``drivers`` is
    a sentence naming the drivers whose contribution changed most (points, from the
    reasons of both runs; a driver listed in only one run counts as 0 in the other).
    """
    cols = ["account_id", "target", "p_before", "p_now", "move", "drivers"]
    if previous is None or previous.empty or scores.empty:
        return pd.DataFrame(columns=cols)
    prev = previous.drop_duplicates("account_id", keep="last").set_index("account_id")
    rows = []
    for target, (col, _) in TARGETS.items():
        before = prev[col].reindex(scores["account_id"]).to_numpy(dtype=np.float64)
        now = scores[col].to_numpy(dtype=np.float64)
        move = now - before
        hit = np.flatnonzero(np.isfinite(move) & (np.abs(move) >= min_points))
        for i in hit:  # only the movers, a handful per week
            aid = scores["account_id"].iloc[i]
            cur = _contribs(scores["reasons_json"].iloc[i], target)
            old = _contribs(prev.at[aid, "reasons_json"], target)
            delta = {f: cur.get(f, (0.0, ""))[0] - old.get(f, (0.0, ""))[0] for f in {*cur, *old}}
            top = sorted(delta, key=lambda f: -abs(delta[f]))[:max_drivers]
            named = [
                f"{(cur.get(f) or old.get(f))[1]} ({'+' if delta[f] >= 0 else '-'}"
                f"{abs(delta[f]) * 100:.1f} pts)"
                for f in top
                if abs(delta[f]) > 0
            ]
            rows.append(
                (aid, target, before[i], now[i], move[i], "; ".join(named) or "no listed driver")
            )
    return pd.DataFrame(rows, columns=cols)


def _contribs(text: Any, target: str) -> dict[str, tuple[float, str]]:
    """feature -> (points, label) of one target from a reasons_json text."""
    from features.catalog import CATALOG

    if not isinstance(text, str) or not text:
        return {}
    out = {}
    for r in json.loads(text):
        # reasons without a "state" come from runs before contributions were in
        # probability points (log-odds): not comparable, so left out
        if r.get("target") == target and r.get("contribution") is not None and "state" in r:
            f = r["feature"]
            spec = CATALOG.get(f)
            label = spec.label if spec else f.replace("_", " ")
            out[f] = (float(r["contribution"]), label)
    return out
