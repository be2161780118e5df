"""The JSON the report embeds for the browser: accounts, reasons, history and the vocabulary.

Columnar and dictionary-encoded so a book of a few thousand accounts stays a small file;
``report.js`` decodes it. The payload also carries :func:`features.names.vocabulary`
(targets, stages, segments and their labels, coverage levels and labels, bands), so the
browser code never re-types a name.

Escaping: :func:`embed_json` writes ``<``, ``>`` and ``&`` as ``\\u003c`` etc. so no
``</script>`` or ``<!--`` can end the data block.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from evaluation.report.prepare import ReportMeta, ReportOptions
from features.names import TARGETS, vocabulary
from features.sql_quote import quote_literal

PAYLOAD_VERSION = 1

_CODED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("csm", "csm_label"),
    ("gap", "data_gaps"),
    ("wc", "what_changed"),
    ("own", "owner"),
    ("due", "due_date"),
    ("stp", "steps"),
    ("suc", "success_measure"),
    ("seg", "segment"),
    ("mat", "maturity_stage"),
    ("pb", "playbook"),
    ("pbr", "playbook_reason"),
    ("chg", "coverage_change"),
)
"""Payload key -> scores column of the dictionary-encoded account fields."""

_NUMBER_COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("pc", "p_churn", 4),
    ("pe", "p_expand", 4),
    ("dpc", "d_churn", 4),
    ("dpe", "d_expand", 4),
    ("arr", "arr", 0),
    ("tam", "tam_usd", 0),
    ("ws", "whitespace", 0),
    ("pri", "priority", 0),
    ("risk", "arr_at_risk", 0),
    ("gain", "arr_to_gain", 0),
)
"""Payload key -> scores column and decimals of the numeric account fields."""

_REASON_SCHEMA = json.dumps(
    [
        {
            "target": "VARCHAR",
            "direction": "VARCHAR",
            "feature": "VARCHAR",
            "value": "JSON",
            "contribution": "DOUBLE",
            "sentence": "VARCHAR",
            "state": "VARCHAR",
        }
    ]
)


def _codes(values: pd.Series) -> tuple[list[int], list[str]]:
    """Dictionary-encode a string column: codes (-1 for null) and the distinct values."""
    codes, uniques = pd.factorize(values.astype("string"), sort=True)
    return codes.tolist(), [str(u) for u in uniques]


def _nums(values: Any, decimals: int) -> list[Any]:
    """Rounded numbers for JSON: ints when ``decimals == 0``, None for missing."""
    a = np.asarray(values, dtype="float64")
    ok = np.isfinite(a)
    r = np.round(np.where(ok, a, 0.0), decimals)
    out = (r.astype(np.int64) if decimals == 0 else r).astype(object)
    out[~ok] = None
    return out.tolist()


def _strings(values: pd.Series) -> list[Any]:
    s = values.astype("string")
    return s.astype(object).where(s.notna(), None).tolist()


def _reasons(scores: pd.DataFrame) -> pd.DataFrame:
    """Flatten ``reasons_json`` to one row per (account index, reason), set-wise in DuckDB.

    ``t`` is the reason's target as its index in :data:`features.names.TARGETS`.
    """
    frame = pd.DataFrame({"i": np.arange(len(scores)), "r": scores["reasons_json"].astype(object)})
    targets = "[" + ", ".join(quote_literal(t) for t in TARGETS) + "]"
    con = duckdb.connect()
    try:
        con.register("raw_reasons", frame)
        bad = con.execute(
            "SELECT count(*), min(i) FROM raw_reasons "
            "WHERE r IS NOT NULL AND (NOT json_valid(r) OR json_type(r) <> 'ARRAY')"
        ).fetchone()
        if bad[0]:
            raise ValueError(
                f"scores.reasons_json: {bad[0]} rows are not a JSON list "
                f"(first account_id {scores['account_id'].iloc[int(bad[1])]!r})"
            )
        return con.execute(
            f"""
            WITH parsed AS (
                SELECT i, unnest(from_json(r, '{_REASON_SCHEMA}')) AS x
                FROM raw_reasons WHERE r IS NOT NULL
            )
            SELECT i,
                   list_position({targets}, x.target) - 1 AS t,
                   x.feature AS feature,
                   TRY_CAST(x.value AS DOUBLE) AS value_num,
                   CASE WHEN json_type(x.value) IN ('VARCHAR', 'BOOLEAN')
                        THEN x.value ->> '$' END AS value_str,
                   coalesce(x.contribution, 0.0) AS contribution,
                   coalesce(x.sentence, '') AS sentence,
                   coalesce(x.state, '') AS state
            FROM parsed
            WHERE list_contains({targets}, x.target)
            ORDER BY i, t, abs(x.contribution) DESC, x.feature
            """
        ).df()
    finally:
        con.close()


def _offsets(index: np.ndarray, n: int) -> list[int]:
    """Start offsets (length n + 1) of rows grouped by a sorted integer index in [0, n)."""
    counts = np.bincount(index.astype(np.int64), minlength=n) if len(index) else np.zeros(n, int)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64).tolist()


def _accounts(scores: pd.DataFrame) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """One column per account field (codes, numbers, flags) and the codes' dictionaries."""
    n = len(scores)
    dicts: dict[str, list[str]] = {}
    acc: dict[str, Any] = {
        "id": _strings(scores["account_id"]),
        "name": _strings(scores["name"]),
    }
    for key, col in _CODED_COLUMNS:
        acc[key], dicts[key] = _codes(scores[col])
    cov_codes, cov_values = _codes(
        pd.concat([scores["coverage_current"], scores["coverage_recommended"]], ignore_index=True)
    )
    acc["cov"], acc["rec"], dicts["cov"] = cov_codes[:n], cov_codes[n:], cov_values
    band_codes, band_values = _codes(
        pd.concat([scores["churn_band"], scores["expand_band"]], ignore_index=True)
    )
    acc["cb"], acc["eb"], dicts["band"] = band_codes[:n], band_codes[n:], band_values
    acc["flag"] = (
        scores["at_risk"].to_numpy().astype(int)
        + 2 * scores["expansion_ready"].to_numpy().astype(int)
    ).tolist()
    for key, col, dec in _NUMBER_COLUMNS:
        acc[key] = _nums(scores[col], dec)
    return acc, dicts


def _reason_columns(scores: pd.DataFrame) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Every account's reasons, grouped by account (offsets), and their dictionaries."""
    reasons = _reasons(scores)
    f_codes, f_values = _codes(reasons["feature"])
    s_codes, s_values = _codes(reasons["sentence"])
    g_codes, g_values = _codes(reasons["state"].replace("", None))
    value = np.where(
        reasons["value_num"].notna().to_numpy(),
        np.asarray(_nums(reasons["value_num"], 4), dtype=object),
        np.asarray(_strings(reasons["value_str"]), dtype=object),
    )
    rs = {
        "off": _offsets(reasons["i"].to_numpy(), len(scores)),
        "t": reasons["t"].astype(int).tolist(),
        "f": f_codes,
        "v": value.tolist(),
        "c": _nums(reasons["contribution"], 3),
        "s": s_codes,
        "g": g_codes,
    }
    return rs, {"feature": f_values, "sentence": s_values, "state": g_values}


def _history_grid(scores: pd.DataFrame, history: pd.DataFrame) -> dict[str, Any]:
    """A dense (account x run date) grid, row-major, in per-mille; null where not scored.

    0.1 point steps are plenty for a chart and halve the size.
    """
    n = len(scores)
    current = scores.loc[:, ["account_id", "as_of", "p_churn", "p_expand"]]
    h = pd.concat([history, current], ignore_index=True)
    acc_idx = pd.Index(scores["account_id"]).get_indexer(h["account_id"])
    d_codes, d_values = pd.factorize(h["as_of"].dt.strftime("%Y-%m-%d"), sort=True)
    keep = acc_idx >= 0
    n_dates = len(d_values)
    cell = acc_idx[keep] * n_dates + d_codes[keep]
    grid_pc = np.full(n * n_dates, np.nan)
    grid_pe = np.full(n * n_dates, np.nan)
    grid_pc[cell] = h["p_churn"].to_numpy(dtype="float64", na_value=np.nan)[keep] * 1000
    grid_pe[cell] = h["p_expand"].to_numpy(dtype="float64", na_value=np.nan)[keep] * 1000
    return {
        "dates": [str(d) for d in d_values],
        "pc": _nums(grid_pc, 0),
        "pe": _nums(grid_pe, 0),
    }


def report_payload(
    scores: pd.DataFrame,
    history: pd.DataFrame,
    as_of: pd.Timestamp,
    prev_as_of: pd.Timestamp | None,
    meta: ReportMeta,
    feature_labels: Mapping[str, str] | None,
    opts: ReportOptions,
) -> dict[str, Any]:
    """Columnar, dictionary-encoded data the browser needs for the list and account pages.

    Parameters
    ----------
    scores : DataFrame
        Prepared scores with actions joined and movers added.
    history : DataFrame
        Prepared earlier scores.
    as_of, prev_as_of : Timestamp
        This run's date (may be NaT) and the previous run's (None when there is none).
    meta : ReportMeta
        Horizon and thresholds.
    feature_labels : mapping of str to str, optional
        Display names of features (default: the name with spaces for underscores).
    opts : ReportOptions
        Page size of the account list.

    Returns
    -------
    dict
        JSON-ready: ``acc`` (account columns), ``dict`` (their dictionaries), ``reasons``,
        ``hist``, ``thresholds``, ``vocab`` (:func:`features.names.vocabulary`) and
        ``labels`` (feature display names).
    """
    acc, dicts = _accounts(scores)
    rs, reason_dicts = _reason_columns(scores)
    labels = dict(feature_labels or {})
    return {
        "v": PAYLOAD_VERSION,
        "as_of": as_of.strftime("%Y-%m-%d") if not pd.isna(as_of) else None,
        "prev_as_of": prev_as_of.strftime("%Y-%m-%d") if prev_as_of is not None else None,
        "horizon_days": int(meta.horizon_days),
        "page_size": int(opts.page_size),
        "thresholds": {str(k): float(v) for k, v in meta.thresholds.items()},
        "vocab": vocabulary(),
        "labels": {
            "feature": {f: labels.get(f, f.replace("_", " ")) for f in reason_dicts["feature"]},
        },
        "dict": {**dicts, **reason_dicts},
        "acc": acc,
        "reasons": rs,
        "hist": _history_grid(scores, history),
    }


def embed_json(payload: dict[str, Any], compress_over: int) -> tuple[str, str]:
    """JSON text safe inside ``<script>``: '<', '>', '&' escaped; gzip+base64 when large.

    Parameters
    ----------
    payload : dict
        Output of :func:`report_payload` (plus what sections add).
    compress_over : int
        Compress when the UTF-8 JSON is larger than this many bytes; 0 always, a
        negative value never.

    Returns
    -------
    tuple of (str, str)
        The text for the data block and its encoding (``"json"`` or ``"gzip+base64"``).

    Examples
    --------
    >>> embed_json({"name": "</script>"}, -1)
    ('{"name":"\\\\u003c/script\\\\u003e"}', 'json')
    """
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    size = len(text.encode("utf-8"))
    if compress_over >= 0 and size > compress_over:
        packed = gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)
        return base64.b64encode(packed).decode("ascii"), "gzip+base64"
    safe = (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
    return safe, "json"
