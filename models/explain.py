"""Plain-language reason codes from SHAP contributions, and the plots that show them.

For every scored account and each target (churn, expansion) the model's TreeSHAP
contributions (raw log-odds space) are ranked: the ``top_k`` features pushing the
probability up and the ``top_k`` pushing it down, each with the feature's value, its
contribution and a sentence rendered from the feature catalogue.

Contributions come from `models.treeshap` (exact, the same numbers as LightGBM's
``pred_contrib`` which the shap package also calls, only faster); ``method="native"``
uses ``pred_contrib`` itself. The shap package draws the plots (waterfall for one
account, beeswarm for a run).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numba as nb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from models.predict import feature_matrix
from models.treeshap import UnsupportedModelError, compile_lightgbm, tree_shap

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "REASON_COLUMNS",
    "ReasonCodes",
    "account_positions",
    "TargetShap",
    "beeswarm_figure",
    "explain",
    "reasons_json",
    "render_sentences",
    "shap_values",
    "top_drivers",
    "waterfall_figure",
]

Method = Literal["auto", "fast", "native"]
REASON_COLUMNS = (
    "account_id",
    "target",
    "direction",
    "rank",
    "feature",
    "value",
    "contribution",
    "sentence",
)
"""Columns of the long reason-code frame, in order."""

DIRECTIONS = ("up", "down")


# ----------------------------------------------------------------------------- SHAP values


def _booster(model: Any) -> Any:
    """The LightGBM booster of a Booster, an LGBMClassifier or an `OutcomeClassifier`."""
    for attr in ("booster_", "_Booster"):
        inner = getattr(model, attr, None)
        if inner is not None:
            return inner
    if hasattr(model, "model_to_string") and hasattr(model, "predict"):
        return model
    raise TypeError(
        f"{type(model).__name__} is not a LightGBM model: expected a lightgbm.Booster or an "
        "estimator exposing one as `booster_`"
    )


def shap_values(
    model: Any,
    X: Any,
    *,
    method: Method = "auto",
    n_threads: int | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Exact TreeSHAP contributions of a LightGBM model in raw (log-odds) space.

    Parameters
    ----------
    model : lightgbm.Booster, or an estimator with ``booster_`` (e.g. `OutcomeClassifier`).
    X : DataFrame holding the model's feature columns (others ignored), or an array of
        shape (n_samples, n_features) in the model's column order.
    method : {'auto', 'fast', 'native'}, default='auto'
        'fast': `models.treeshap` (raises for models it does not support); 'native':
        LightGBM's ``pred_contrib``; 'auto': fast, falling back to native.
    n_threads : int, optional
        Threads (default: all cores).

    Returns
    -------
    values : ndarray of shape (n_samples, n_features + 1)
        Contributions per feature; the last column is the expected value. Each row sums
        to the model's raw score.
    feature_names : list of str
    """
    if method not in ("auto", "fast", "native"):
        raise ValueError(f"method must be 'auto', 'fast' or 'native', got {method!r}")
    booster = _booster(model)
    names = list(booster.feature_name())
    return _contributions(booster, feature_matrix(X, names), method, n_threads), names


def _contributions(
    booster: Any, matrix: np.ndarray, method: Method, n_threads: int | None
) -> np.ndarray:
    if method != "native":
        try:
            compiled = compile_lightgbm(booster)
            return tree_shap(compiled, matrix, n_threads=n_threads)
        except UnsupportedModelError:
            if method == "fast":
                raise
    kwargs = {} if n_threads is None else {"num_threads": int(n_threads)}
    return np.asarray(booster.predict(matrix, pred_contrib=True, **kwargs), dtype=np.float64)


# ----------------------------------------------------------------------------- reason codes


@dataclass(frozen=True)
class TargetShap:
    """Contributions of one target's model for every explained row.

    Attributes
    ----------
    feature_names : model features, in column order.
    values : ndarray (n_samples, n_features), contributions in log-odds.
    base_value : expected raw score (the same for every row).
    data : ndarray (n_samples, n_features), the feature values explained.
    """

    feature_names: tuple[str, ...]
    values: np.ndarray
    base_value: float
    data: np.ndarray


@dataclass(frozen=True)
class ReasonCodes:
    """Top drivers per account and target, plus the full contributions behind them.

    Attributes
    ----------
    frame : DataFrame with `REASON_COLUMNS`, one row per (account, target, direction,
        rank), ordered by account (input order), target, direction ('up' first), rank.
        ``direction='up'`` raises the target's probability, 'down' lowers it; only
        non-zero contributions appear, so an account may have fewer than ``top_k``.
        ``target``, ``direction`` and ``feature`` are categoricals (their categories are
        the same for every call with the same models, so frames concatenate cleanly).
    account_ids : ndarray of the explained rows' ids, in input order.
    shap : per target, the `TargetShap` contributions (for plots and summaries).
    top_k : drivers kept per direction.
    """

    frame: pd.DataFrame
    account_ids: np.ndarray
    shap: dict[str, TargetShap] = field(repr=False)
    top_k: int = 3
    rows: np.ndarray | None = field(default=None, repr=False)
    """Position in `account_ids` of every frame row (saves a lookup by id)."""

    @property
    def targets(self) -> list[str]:
        return list(self.shap)

    def reasons_json(self) -> pd.Series:
        """The scores table's ``reasons_json`` column, one JSON list per explained row.

        Returns
        -------
        Series of str aligned with `account_ids` (input order), named ``reasons_json``.
        """
        if self.rows is None:
            return reasons_json(self.frame, self.account_ids)
        dup = pd.Index(self.account_ids).duplicated()
        if dup.any():
            raise ValueError(
                f"one row per account is needed; {int(dup.sum())} account_id values repeat "
                "(explain and segment one as_of at a time)"
            )
        return _reasons_json(self.frame, self.rows, len(self.account_ids))

    def explanation(self, target: str) -> Any:
        """A ``shap.Explanation`` of one target (for the shap package's plots).

        Parameters
        ----------
        target : a target explained (see `targets`).

        Returns
        -------
        shap.Explanation with the contributions, base value and feature values.
        """
        import shap

        t = self._target(target)
        return shap.Explanation(
            values=t.values,
            base_values=np.full(len(t.values), t.base_value),
            data=t.data,
            feature_names=list(t.feature_names),
        )

    def summary(self, target: str) -> pd.DataFrame:
        """Mean absolute contribution per feature (a run's global importance), largest first.

        Parameters
        ----------
        target : a target explained (see `targets`).

        Returns
        -------
        DataFrame feature, mean_abs_contribution, mean_contribution.
        """
        t = self._target(target)
        return (
            pd.DataFrame(
                {
                    "feature": list(t.feature_names),
                    "mean_abs_contribution": np.abs(t.values).mean(axis=0),
                    "mean_contribution": t.values.mean(axis=0),
                }
            )
            .sort_values(["mean_abs_contribution", "feature"], ascending=[False, True])
            .reset_index(drop=True)
        )

    def _target(self, target: str) -> TargetShap:
        if target not in self.shap:
            raise KeyError(f"no contributions for target {target!r}; have {self.targets}")
        return self.shap[target]


def top_drivers(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of the ``k`` largest and ``k`` smallest values of every row.

    One pass over each row keeps two small sorted buffers (compiled, rows in parallel):
    about 20x faster than two ``np.argpartition`` calls plus the sorts of the selection.

    Parameters
    ----------
    values : ndarray of shape (n_samples, n_features), no NaN.
    k : int, number kept per side (capped at n_features).

    Returns
    -------
    up, down : int ndarrays of shape (n_samples, min(k, n_features))
        ``up[i]`` lists row i's largest values in decreasing order, ``down[i]`` its
        smallest in increasing order; equal values are listed by column index (the
        lower index wins a tie at the cut).
    """
    values = np.ascontiguousarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-d, got shape {values.shape}")
    k = min(int(k), values.shape[1])
    if k < 1:
        raise ValueError(f"k must be >= 1 and values need a column, got k={k}")
    return _top_k(values, k)


@nb.njit(parallel=True, cache=True)
def _top_k(values, k):  # pragma: no cover  (compiled)
    n, p = values.shape
    up = np.empty((n, k), dtype=np.int64)
    down = np.empty((n, k), dtype=np.int64)
    for r in nb.prange(n):
        hi = np.full(k, -np.inf)
        lo = np.full(k, np.inf)
        hi_i = np.zeros(k, dtype=np.int64)
        lo_i = np.zeros(k, dtype=np.int64)
        n_hi = 0
        n_lo = 0
        for j in range(p):
            v = values[r, j]
            if n_hi < k or v > hi[k - 1]:
                pos = min(n_hi, k - 1)
                while pos > 0 and v > hi[pos - 1]:
                    hi[pos] = hi[pos - 1]
                    hi_i[pos] = hi_i[pos - 1]
                    pos -= 1
                hi[pos] = v
                hi_i[pos] = j
                n_hi = min(n_hi + 1, k)
            if n_lo < k or v < lo[k - 1]:
                pos = min(n_lo, k - 1)
                while pos > 0 and v < lo[pos - 1]:
                    lo[pos] = lo[pos - 1]
                    lo_i[pos] = lo_i[pos - 1]
                    pos -= 1
                lo[pos] = v
                lo_i[pos] = j
                n_lo = min(n_lo + 1, k)
        for i in range(k):
            up[r, i] = hi_i[i]
            down[r, i] = lo_i[i]
    return up, down


def render_sentences(
    features: np.ndarray,
    values: np.ndarray,
    feature_names: Sequence[str],
    catalog: Mapping[str, Any] | None,
) -> pd.Categorical:
    """One plain-language sentence per (feature, value) row, rendered once per unique pair.

    Parameters
    ----------
    features : int ndarray, index into `feature_names` for every row.
    values : float ndarray, the feature value of every row (NaN = not available).
    feature_names : names the indices refer to.
    catalog : mapping name -> spec with ``sentence(value)`` (`features.catalog.CATALOG`
        when None); a spec that also has ``sentences(values) -> sequence of str`` renders
        all unique values of its feature in one call. Features missing from the catalogue
        get a generic "<name> is <value>".

    Returns
    -------
    pandas str array of sentences, aligned with the rows.
    """
    if catalog is None:
        from features.catalog import CATALOG as catalog  # noqa: N811
    features = np.asarray(features)
    values = np.asarray(values, dtype=np.float64)
    codes = np.empty(len(features), dtype=np.int64)
    texts: list[str] = []
    order = np.argsort(features, kind="stable")
    bounds = np.searchsorted(features[order], np.arange(len(feature_names) + 1))
    for j, name in enumerate(feature_names):  # a loop over features, not rows
        rows = order[bounds[j] : bounds[j + 1]]
        if len(rows) == 0:
            continue
        local, uniques = pd.factorize(values[rows], use_na_sentinel=False)
        spec = catalog.get(name)
        many = getattr(spec, "sentences", None)  # a vectorised renderer, when the spec has one
        if callable(many):
            texts_j = [str(t) for t in many(np.asarray(uniques, dtype=np.float64))]
        else:
            texts_j = [_sentence(spec, name, float(v)) for v in uniques]
        codes[rows] = len(texts) + local
        texts.extend(texts_j)
    return _decode(codes, texts)


def _decode(codes: np.ndarray, texts: Sequence[str]) -> Any:
    """A pandas str array holding ``texts[codes]`` (Arrow take, no Python objects)."""
    dictionary = pa.array(list(texts), pa.large_string())
    taken = pc.take(dictionary, pa.array(np.asarray(codes, dtype=np.int64)))
    return pd.array(taken, dtype="str")


def _sentence(spec: Any, name: str, value: float) -> str:
    if spec is not None:
        return spec.sentence(value)
    shown = "not available" if math.isnan(value) else f"{value:g}"
    return f"{name} is {shown}"


def explain(
    models: Any,
    X: Any,
    catalog: Mapping[str, Any] | None = None,
    *,
    top_k: int = 3,
    ids: Sequence[Any] | None = None,
    target: str = "churn",
    method: Method = "auto",
    n_threads: int | None = None,
) -> ReasonCodes:
    """Reason codes: top drivers up and down per account and target.

    Parameters
    ----------
    models : mapping of target name (``'churn'``, ``'expand'``) to a LightGBM model
        (Booster, or an estimator with ``booster_`` such as `OutcomeClassifier`), or a
        single model, explained as `target`.
    X : DataFrame holding the models' feature columns (and usually ``account_id``), or
        an array in the model's column order.
    catalog : feature catalogue (name -> spec with ``sentence(value)``); default
        `features.catalog.CATALOG`.
    top_k : int, default=3
        Drivers kept per target and direction.
    ids : sequence, optional
        Account ids of the rows; default ``X['account_id']`` when present, else the
        DataFrame index (or 0..n-1 for an array).
    target : name used when `models` is a single model.
    method : see `shap_values`.
    n_threads : int, optional

    Returns
    -------
    ReasonCodes

    Examples
    --------
    >>> codes = explain({"churn": churn_model, "expand": expand_model}, features)  # doctest: +SKIP
    >>> codes.frame.head()  # doctest: +SKIP
    >>> scores["reasons_json"] = codes.reasons_json()  # doctest: +SKIP
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    model_map = dict(models) if isinstance(models, Mapping) else {target: models}
    if not model_map:
        raise ValueError("no models to explain")
    n = len(X)
    account_ids = _account_ids(X, ids, n)
    shap_by_target: dict[str, TargetShap] = {}
    parts: list[dict[str, Any]] = []
    matrices: dict[tuple[str, ...], np.ndarray] = {}  # one copy per distinct feature list
    for name, model in model_map.items():
        if method not in ("auto", "fast", "native"):
            raise ValueError(f"method must be 'auto', 'fast' or 'native', got {method!r}")
        booster = _booster(model)
        names = list(booster.feature_name())
        key = tuple(names)
        if key not in matrices:
            matrices[key] = feature_matrix(X, names)
        data = matrices[key]
        values = _contributions(booster, data, method, n_threads)
        shap_by_target[name] = TargetShap(
            feature_names=tuple(names),
            values=values[:, :-1],
            base_value=float(values[0, -1]) if n else float("nan"),
            data=data,
        )
        parts.append(_long_part(name, values[:, :-1], data, names, top_k))
    frame, rows = _assemble(parts, account_ids, catalog, top_k)
    return ReasonCodes(
        frame=frame, account_ids=account_ids, shap=shap_by_target, top_k=top_k, rows=rows
    )


def _account_ids(X: Any, ids: Sequence[Any] | None, n: int) -> np.ndarray:
    if ids is not None:
        out = np.asarray(ids, dtype=object)
        if len(out) != n:
            raise ValueError(f"ids has {len(out)} entries for {n} rows of X")
        return out
    if isinstance(X, pd.DataFrame):
        if "account_id" in X.columns:
            return X["account_id"].to_numpy(dtype=object)
        return X.index.to_numpy(dtype=object)
    return np.arange(n, dtype=object)


def _long_part(
    target: str, values: np.ndarray, data: np.ndarray, names: list[str], top_k: int
) -> dict[str, Any]:
    """Top-k indices, contributions and values of one target, shape (n, 2, k).

    A feature without a value (NaN) is never a driver: "CSAT: not available" tells a CSM
    nothing to act on; missing data is listed as a data gap instead (`models.reason_context`).
    """
    values = np.where(np.isnan(data), 0.0, values)
    up, down = top_drivers(values, top_k)
    idx = np.stack([up, down], axis=1)  # (n, 2, k)
    rows = np.arange(len(values))[:, None, None]
    contrib = values[rows, idx]
    keep = np.concatenate([contrib[:, :1] > 0, contrib[:, 1:] < 0], axis=1)
    return {
        "target": target,
        "names": names,
        "idx": idx,
        "contribution": contrib,
        "value": data[rows, idx],
        "keep": keep,
    }


def _assemble(
    parts: list[dict[str, Any]],
    account_ids: np.ndarray,
    catalog: Mapping[str, Any] | None,
    top_k: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The long frame (ordered account, target, direction, rank) and each row's account."""
    n = len(account_ids)
    n_t = len(parts)
    k = parts[0]["idx"].shape[2] if parts else top_k
    # one feature index across targets (the models may use different features)
    all_names = list(dict.fromkeys(nm for part in parts for nm in part["names"]))
    pos = {nm: i for i, nm in enumerate(all_names)}
    feat = np.stack([np.asarray([pos[nm] for nm in p["names"]])[p["idx"]] for p in parts], 1)
    contrib = np.stack([p["contribution"] for p in parts], axis=1)  # (n, T, 2, k)
    value = np.stack([p["value"] for p in parts], axis=1)
    keep = np.stack([p["keep"] for p in parts], axis=1).ravel()
    shape = (n, n_t, 2, k)
    row = np.broadcast_to(np.arange(n)[:, None, None, None], shape).ravel()[keep]
    t_code = np.broadcast_to(np.arange(n_t)[None, :, None, None], shape).ravel()[keep]
    d_code = np.broadcast_to(np.arange(2)[None, None, :, None], shape).ravel()[keep]
    rank = np.broadcast_to(np.arange(1, k + 1)[None, None, None, :], shape).ravel()[keep]
    feat = feat.ravel()[keep]
    value = value.ravel()[keep]
    sentence = render_sentences(feat, value, all_names, catalog)
    frame = pd.DataFrame(
        {
            "account_id": pd.array(account_ids).take(row),
            "target": pd.Categorical.from_codes(t_code, categories=[p["target"] for p in parts]),
            "direction": pd.Categorical.from_codes(d_code, categories=list(DIRECTIONS)),
            "rank": rank.astype(np.int64),
            "feature": pd.Categorical.from_codes(feat, categories=all_names),
            "value": value,
            "contribution": contrib.ravel()[keep],
            "sentence": sentence,
        }
    )
    return frame, row


def reasons_json(frame: pd.DataFrame, account_ids: Sequence[Any] | None = None) -> pd.Series:
    """One JSON list of reasons per account, for the scores table's ``reasons_json``.

    Each element is ``{target, direction, feature, value, contribution, sentence}``
    (value null when not available), in the frame's order (target, direction, rank).
    Built column-wise with Arrow compute kernels (no loop over rows).

    Parameters
    ----------
    frame : long reason frame with `REASON_COLUMNS` (from `explain`).
    account_ids : sequence, optional
        Output order; accounts without reasons get ``"[]"``. Default: the frame's
        accounts in order of first appearance.

    Returns
    -------
    Series of str named ``reasons_json``, aligned with `account_ids`.
    """
    missing = [c for c in REASON_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"reason frame lacks columns {missing}")
    if account_ids is None:
        account_ids = pd.unique(frame["account_id"])
    position = account_positions(frame["account_id"], account_ids)
    if (position < 0).any():
        raise ValueError(f"{int((position < 0).sum())} reason rows name an unknown account_id")
    return _reasons_json(frame, position, len(account_ids))


def account_positions(reason_ids: Any, account_ids: Any) -> np.ndarray:
    """Position in `account_ids` of every reason row's account (-1 when unknown).

    Reason frames list each account's rows together, so ids are looked up once per run
    of equal ids rather than once per row.

    Parameters
    ----------
    reason_ids : account id of every reason row.
    account_ids : the accounts of the output, one row each.

    Returns
    -------
    int64 ndarray aligned with `reason_ids`.

    Raises
    ------
    ValueError
        When `account_ids` repeats an id (one as_of at a time).
    """
    ids = pd.Index(pd.array(np.asarray(account_ids, dtype=object)))
    if ids.has_duplicates:
        raise ValueError(
            f"one row per account is needed; {int(ids.duplicated().sum())} account_id values "
            "repeat (explain and segment one as_of at a time)"
        )
    r = pd.Series(reason_ids).reset_index(drop=True)
    if r.empty:
        return np.zeros(0, dtype=np.int64)
    new_run = r.ne(r.shift()).to_numpy(dtype=bool, na_value=True).copy()
    new_run[0] = True
    starts = np.flatnonzero(new_run)
    run_pos = ids.get_indexer(r.iloc[starts])
    return np.repeat(run_pos, np.diff(np.append(starts, len(r)))).astype(np.int64)


def _reasons_json(frame: pd.DataFrame, position: np.ndarray, n: int) -> pd.Series:
    """reasons_json from reason rows and the output row each belongs to.

    The target/direction/feature head of an element is encoded once per combination;
    sentences are escaped and numbers formatted (shortest round-trip) by Arrow kernels;
    a compiled pass copies the pieces of each account into one UTF-8 buffer that
    becomes the Arrow string column without another copy.
    """
    if len(position) and (np.diff(position) < 0).any():
        order = np.argsort(position, kind="stable")
        frame, position = frame.iloc[order], position[order]
    (t_code, t_names), (d_code, d_names), (f_code, f_names) = (
        _factorize(frame[c]) for c in ("target", "direction", "feature")
    )
    # optional "state" (good / bad / neutral, from models.reason_context) joins the head
    if "state" in frame.columns:
        s_code, s_names = _factorize(frame["state"])
        states = [f',"state":{json.dumps(x)}' for x in s_names]
    else:
        s_code, states = np.zeros(len(frame), dtype=np.int64), [""]
    nd, nf, ns = len(d_names), len(f_names), len(states)
    heads = [
        f'{{"target":{json.dumps(t)},"direction":{json.dumps(d)},"feature":{json.dumps(f)}'
        f'{st},"value":'
        for t in t_names
        for d in d_names
        for f in f_names
        for st in states
    ]
    head_code = ((t_code * nd + d_code) * nf + f_code) * ns + s_code
    head_off, head_buf = _utf8_table(heads)
    sentences = frame["sentence"]
    if isinstance(sentences.dtype, pd.CategoricalDtype):  # escape each distinct text once
        sent_off, sent_buf = _json_strings(pd.Series(sentences.cat.categories))
        sent_code = sentences.cat.codes.to_numpy().astype(np.int64)
        if (sent_code < 0).any():
            raise ValueError(
                f"reason column 'sentence' has {int((sent_code < 0).sum())} missing values"
            )
    else:
        sent_off, sent_buf = _json_strings(sentences)
        sent_code = np.arange(len(frame), dtype=np.int64)
    val_off, val_buf = _json_numbers(frame["value"].to_numpy(dtype=np.float64))
    con_off, con_buf = _json_numbers(frame["contribution"].to_numpy(dtype=np.float64))
    rows_off = np.searchsorted(position, np.arange(n + 1)).astype(np.int64)
    out_off, out_buf = _assemble_json(
        rows_off, head_code, head_off, head_buf, sent_code, sent_off, sent_buf,
        val_off, val_buf, con_off, con_buf,
        np.frombuffer(b',"contribution":', np.uint8), np.frombuffer(b',"sentence":', np.uint8),
    )  # fmt: skip
    arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(out_off), pa.py_buffer(out_buf))
    return pd.Series(pd.array(arr, dtype="str"), name="reasons_json")


def _utf8_table(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and bytes of a list of strings."""
    encoded = [t.encode("utf-8") for t in texts]
    off = np.zeros(len(encoded) + 1, dtype=np.int64)
    off[1:] = np.cumsum([len(e) for e in encoded])
    return off, np.frombuffer(b"".join(encoded), dtype=np.uint8)


def _json_numbers(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and bytes of each float as JSON: shortest round-trip text, null if not finite."""
    if len(x) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    arr = pa.array(x, pa.float64())
    text = pc.cast(arr, pa.large_string())
    text = pc.if_else(pc.is_finite(arr), text, pa.scalar("null", pa.large_string()))
    return _buffers(text)


@nb.njit(parallel=True, cache=True)
def _assemble_json(
    rows_off, head_code, head_off, head_buf, sent_code, sent_off, sent_buf,
    val_off, val_buf, con_off, con_buf, mid1, mid2,
):  # pragma: no cover  (compiled)  # fmt: skip
    n = len(rows_off) - 1
    size = np.empty(n, dtype=np.int64)
    for a in nb.prange(n):
        total = 2  # brackets
        for r in range(rows_off[a], rows_off[a + 1]):
            h = head_code[r]
            c = sent_code[r]
            total += head_off[h + 1] - head_off[h] + val_off[r + 1] - val_off[r]
            total += len(mid1) + con_off[r + 1] - con_off[r] + len(mid2)
            total += sent_off[c + 1] - sent_off[c] + 1
        if rows_off[a + 1] > rows_off[a]:
            total += rows_off[a + 1] - rows_off[a] - 1  # commas
        size[a] = total
    out_off = np.zeros(n + 1, dtype=np.int64)
    out_off[1:] = np.cumsum(size)
    out = np.empty(out_off[n], dtype=np.uint8)
    for a in nb.prange(n):
        w = out_off[a]
        out[w] = 91  # [
        w += 1
        for r in range(rows_off[a], rows_off[a + 1]):
            if r > rows_off[a]:
                out[w] = 44  # ,
                w += 1
            h = head_code[r]
            for i in range(head_off[h], head_off[h + 1]):
                out[w] = head_buf[i]
                w += 1
            for i in range(val_off[r], val_off[r + 1]):
                out[w] = val_buf[i]
                w += 1
            for i in range(len(mid1)):
                out[w] = mid1[i]
                w += 1
            for i in range(con_off[r], con_off[r + 1]):
                out[w] = con_buf[i]
                w += 1
            for i in range(len(mid2)):
                out[w] = mid2[i]
                w += 1
            c = sent_code[r]
            for i in range(sent_off[c], sent_off[c + 1]):
                out[w] = sent_buf[i]
                w += 1
            out[w] = 125  # }
            w += 1
        out[w] = 93  # ]
    return out_off, out


def _factorize(col: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes and the distinct values (as str) of a column; categoricals are free."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy().astype(np.int64)
        names = [str(c) for c in col.cat.categories]
    else:
        codes, uniques = pd.factorize(col)
        codes = codes.astype(np.int64)
        names = [str(u) for u in uniques]
    if (codes < 0).any():
        raise ValueError(f"reason column {col.name!r} has {int((codes < 0).sum())} missing values")
    return codes, names


def _json_strings(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and bytes of each value as a JSON string literal (null when missing)."""
    if len(col) == 0:
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.uint8)
    arr = pa.array(col.astype("str"), type=pa.large_string(), from_pandas=True)
    text = pc.replace_substring(arr, "\\", "\\\\")
    text = pc.replace_substring(text, '"', '\\"')
    quote = pa.scalar('"', pa.large_string())
    text = pc.binary_join_element_wise(quote, text, quote, pa.scalar("", pa.large_string()))
    control = pc.fill_null(pc.match_substring_regex(arr, "[\\x00-\\x1f]"), False)
    if pc.any(control).as_py():  # rare: let the json module escape these few rows
        rows = np.flatnonzero(control.to_numpy(zero_copy_only=False))
        fixed = text.to_pylist()
        for i in rows:  # only rows holding control characters
            fixed[i] = json.encoder.encode_basestring(arr[int(i)].as_py())
        text = pa.array(fixed, pa.large_string())
    text = pc.fill_null(text, pa.scalar("null", pa.large_string()))
    return _buffers(text)


def _buffers(text: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and data of a large_string array as numpy views."""
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    _, offsets, data = text.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[text.offset : text.offset + len(text) + 1]
    buf = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, np.uint8)
    return off, buf


# ----------------------------------------------------------------------------- plots


def waterfall_figure(
    reasons: ReasonCodes, account_id: Any, *, target: str = "churn", max_display: int = 10
) -> Figure:
    """The shap package's waterfall plot of one account's prediction (log-odds).

    Parameters
    ----------
    reasons : reason codes of `explain`.
    account_id : the account to plot (KeyError when it was not explained).
    target : the target whose model is plotted.
    max_display : features shown (the rest are summed).

    Returns
    -------
    matplotlib Figure (the caller closes it, e.g. ``plt.close(fig)``).
    """
    import matplotlib.pyplot as plt
    import shap

    where = np.flatnonzero(reasons.account_ids == account_id)
    if len(where) == 0:
        raise KeyError(f"account_id {account_id!r} was not explained")
    fig = plt.figure()
    shap.plots.waterfall(
        reasons.explanation(target)[int(where[0])], max_display=max_display, show=False
    )
    return fig


def beeswarm_figure(
    reasons: ReasonCodes,
    *,
    target: str = "churn",
    max_display: int = 15,
    max_points: int = 5000,
    random_state: int = 0,
) -> Figure:
    """The shap package's beeswarm plot of a run (a seeded sample of `max_points` rows).

    Parameters
    ----------
    reasons : reason codes of `explain`.
    target : the target whose model is plotted.
    max_display : features shown.
    max_points : rows plotted at most (a sample above it).
    random_state : seed of the sample.

    Returns
    -------
    matplotlib Figure (the caller closes it).
    """
    import matplotlib.pyplot as plt
    import shap

    exp = reasons.explanation(target)
    n = len(exp.values)
    if n > max_points:
        rows = np.sort(np.random.default_rng(random_state).choice(n, max_points, replace=False))
        exp = exp[rows]
    fig, ax = plt.subplots()
    # shap jitters the points with numpy's global generator: seed it for this plot only, so
    # the same run draws the same figure, and give the caller's state back.
    state = np.random.get_state()  # noqa: NPY002 (shap's global generator)
    np.random.seed(random_state)  # noqa: NPY002 (shap's global generator)
    try:
        shap.plots.beeswarm(exp, max_display=max_display, ax=ax, show=False, plot_size=None)
    finally:
        np.random.set_state(state)  # noqa: NPY002 (shap's global generator)
    return fig
