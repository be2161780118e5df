"""Build the point-in-time feature and label table, and write / read it.

`build_feature_table` runs the SQL of `features.activity`, `features.commercial`,
`features.support` and `features.labels` on a DuckDB connection that holds the clean
relations ``accounts, subscriptions, users, events, tickets, plans``. Everything at an
``as_of`` is computed from data strictly before it; labels alone look forward. What each
feature computes (its expression, aggregates, source columns and optional data) is its
entry in `features.catalog`; this module joins the builders' tables and selects them.

Optional data that is missing before an as_of (no tickets, no priorities or CSAT, no
agent events, no AI features, no departments, no roles, no seats, no plan limits, no
contract terms) leaves the features that need it NaN for that as_of; the build logs
which features were left out and why (also in ``df.attrs["left_out"]``).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from features import activity, commercial, storage, support
from features.catalog import (
    ALIASES,
    CATALOG,
    OPTIONAL_DATA,
    feature_names,
    feature_sql,
    optional_features,
)
from features.config import FeatureConfig
from features.labels import LABEL_COLUMNS, finish_labels, infer_data_end, label_sql
from features.maturity import maturity_stage
from features.snapshots import normalize_as_of, to_date, window_plan
from features.sql_quote import set_statement
from features.sqlrun import PREFIX, SqlRunner, require_relations

log = logging.getLogger("nrrcast.features")

ID_COLUMNS = ("account_id", "as_of", "csm_id", "coverage", "industry", "region")
CONTEXT_COLUMNS = ID_COLUMNS[2:]

NEEDED: dict[str, tuple[str, ...]] = {
    "accounts": ("account_id", "created_at", "tam_usd", "industry", "region", "csm_id", "coverage"),
    "subscriptions": (
        "subscription_id",
        "account_id",
        "product",
        "plan",
        "start_date",
        "end_date",
        "mrr",
        "seats",
        "term_months",
    ),
    "users": ("user_id", "account_id", "created_at", "department", "role", "is_agent"),
    "events": ("account_id", "user_id", "ts", "event", "actor", "status", "quantity"),
    "tickets": ("ticket_id", "account_id", "created_at", "priority", "closed_at", "csat"),
    "plans": ("plan", "seat_limit", "usage_limit"),
}

STATIC = datetime(1, 1, 1)
"""Marks undated data (plans, account enrichment) that is available at every as_of."""


def final_sql() -> str:
    """The spine (accounts existing at as_of with ARR > 0) joined to every feature table.

    Returns
    -------
    str, a SELECT of the id columns and every `features.catalog.feature_sql` expression
    (as DOUBLE), with the builders' tables under the aliases of `features.catalog.ALIASES`
    (the spine: ``s`` subs_asof, ``acc`` accounts, ``c`` catalogue).
    """
    cols = ",\n  ".join(f"CAST({sql} AS DOUBLE) AS {n}" for n, sql in feature_sql().items())
    on = "ON {a}.account_id = s.account_id AND {a}.as_of = s.as_of"
    joins = "\n".join(
        f"LEFT JOIN {PREFIX}{table} AS {ALIASES[table]} {on.format(a=ALIASES[table])}"
        for table in (
            "acc_win",
            "user_win",
            "users_known",
            "arr_hist",
            "util_streak",
            "tickets_asof",
        )
    )
    return f"""
    SELECT s.account_id, s.as_of, acc.csm_id, acc.coverage, acc.industry, acc.region,
      {cols}
    FROM {PREFIX}subs_asof AS s
    JOIN accounts AS acc ON acc.account_id = s.account_id AND acc.created_at < s.as_of
    LEFT JOIN {PREFIX}catalogue AS c ON c.as_of = s.as_of
    {joins}
    WHERE s.arr > 0
    """


def _first_known(run: SqlRunner, fx: activity.FeatureIndex) -> dict[str, datetime | None]:
    """When each kind of optional data first appears (None = never; static data: `STATIC`).

    One query of the `features.catalog.OPTIONAL_DATA` subqueries; agents and AI features
    come from the event scan (`fx`).
    """
    queried = {k: d for k, d in OPTIONAL_DATA.items() if not d.scan}
    row = run.rows("SELECT " + ", ".join(f"({d.first})" for d in queried.values()))[0]
    first: dict[str, datetime | None] = {}
    for (key, data), value in zip(queried.items(), row, strict=True):
        if data.static:
            first[key] = STATIC if value else None
        else:
            first[key] = None if value is None else pd.Timestamp(value).to_pydatetime()
    for key, data in OPTIONAL_DATA.items():
        if data.scan:
            first[key] = getattr(fx, data.scan)
    return first


def _leave_out(df: pd.DataFrame, first: dict[str, datetime | None]) -> dict[str, str]:
    """NaN the features whose data was not there before each as_of; returns what was left out."""
    left_out: dict[str, str] = {}
    as_of = df["as_of"].to_numpy()
    n_dates = df["as_of"].nunique()
    for key, (cols, why) in optional_features().items():
        t = first.get(key)
        if t is STATIC:
            continue
        if t is None:
            missing = np.ones(len(df), dtype=bool)
        else:
            # data dated on day t is known from as_of = day after t (as_of is midnight)
            missing = as_of <= np.datetime64(pd.Timestamp(t).floor("D"), "us")
        if not missing.any():
            continue
        df.loc[missing, list(cols)] = np.nan
        k = df.loc[missing, "as_of"].nunique()
        scope = "every as_of" if k == n_dates else f"{k} of {n_dates} as_of dates"
        for c in cols:
            left_out[c] = f"{why} ({scope})"
    return left_out


def _apply_settings(con: duckdb.DuckDBPyConnection, cfg: FeatureConfig) -> dict[str, str]:
    wanted = {"preserve_insertion_order": "false"}
    if cfg.duckdb_threads is not None:
        wanted["threads"] = str(cfg.duckdb_threads)
    if cfg.duckdb_memory_limit is not None:
        wanted["memory_limit"] = cfg.duckdb_memory_limit
    old = {}
    for key, value in wanted.items():
        old[key] = str(con.execute("SELECT current_setting(?)", [key]).fetchall()[0][0])
        con.execute(set_statement(key, value))
    return old


def _restore_settings(con: duckdb.DuckDBPyConnection, old: dict[str, str]) -> None:
    for key, value in old.items():
        con.execute(set_statement(key, value))


def build_feature_table(
    con: duckdb.DuckDBPyConnection,
    as_of_dates: Iterable[date] | date,
    cfg: FeatureConfig | None = None,
    *,
    data_end: date | None = None,
    progress: bool = True,
    runner: SqlRunner | None = None,
) -> pd.DataFrame:
    """The point-in-time feature and label table, one row per (account_id, as_of).

    Parameters
    ----------
    con : DuckDB connection holding the clean relations ``accounts, subscriptions, users,
        events, tickets, plans`` (from `features.validate.validate`, or made in a test).
    as_of_dates : observation dates (midnight). Duplicates are an error; none may be
        after `data_end`.
    cfg : feature settings; `FeatureConfig()` defaults when None.
    data_end : first day not covered by the data (exclusive), which decides whether a
        label is known. None infers it from the latest timestamp (logged).
    progress : log the time of each step at INFO level (else DEBUG).
    runner : an `SqlRunner` to use (its ``statements`` then hold every SQL statement run).

    Returns
    -------
    DataFrame with, in order: account_id (str), as_of (datetime64[us]), csm_id,
    coverage, industry, region (str, may be null); every feature of
    `features.catalog.feature_names()` (float64); maturity_stage (str); arr_h,
    label_churn, label_expand, label_contract (float64, NaN when unknown) and
    label_known (bool). Rows: accounts created before as_of with ARR(as_of) > 0, sorted
    by as_of then account_id. ``df.attrs["left_out"]`` maps feature -> reason for
    features left NaN for lack of data.

    Examples
    --------
    >>> from features.snapshots import observation_dates
    >>> dates = observation_dates("2025-06-01", "2026-11-01")  # doctest: +SKIP
    >>> table = build_feature_table(src.con, dates, FeatureConfig(), data_end=date(2026, 11, 1))  # doctest: +SKIP
    """
    cfg = cfg or FeatureConfig()
    dates = normalize_as_of(as_of_dates)
    require_relations(con, NEEDED)
    if data_end is None:
        data_end = infer_data_end(con)
        log.warning("features: data_end not given; inferred %s from the latest timestamp", data_end)
    if data_end is None:
        raise ValueError("features: data_end not given and the data holds no timestamp")
    data_end = to_date(data_end)
    late = [d.isoformat() for d in dates if d > data_end]
    if late:
        raise ValueError(
            f"as_of dates after data_end {data_end}: {late}; their windows would read data "
            "that does not exist yet"
        )

    t0 = time.perf_counter()
    run = runner or SqlRunner(con, progress=progress)
    run.progress = progress
    old_settings = _apply_settings(con, cfg)
    try:
        plan = window_plan(dates, cfg.seat_util_lookback_months)
        asof = commercial.asof_table(run, plan)
        fx = activity.feature_index(run, plan, cfg)
        activity.build_activity_base(run, plan, cfg, fx)
        activity.first_seen(run, cfg, fx)
        activity.account_windows(run, fx)
        activity.user_windows(run, fx, cfg)
        activity.monthly_active_users(run, plan)
        activity.known_users(run)
        activity.catalogue_size(run)
        commercial.subscription_features(run, cfg)
        commercial.arr_history(run, plan, cfg)
        commercial.seat_utilization_streak(run, plan, cfg)
        support.ticket_features(run)
        first = _first_known(run, fx)
        raw = run.df(final_sql(), name="assemble")
        labels = finish_labels(
            run.df(label_sql(asof, cfg.horizon_days, data_end), name="labels"), cfg.expansion_pct
        )
    finally:
        run.drop_all()
        _restore_settings(con, old_settings)

    df = _finish(raw, labels)
    left_out = _leave_out(df, first)
    stages = maturity_stage(df, cfg.maturity)
    df["maturity_level"] = stages["maturity_level"].to_numpy()
    df.insert(df.columns.get_loc("maturity_level") + 1, "maturity_stage", stages["maturity_stage"])
    df.attrs["left_out"] = left_out
    _log_left_out(left_out)
    log.log(
        logging.INFO if progress else logging.DEBUG,
        "features: %d rows x %d columns for %d as_of dates in %.1f s",
        len(df),
        df.shape[1],
        len(dates),
        time.perf_counter() - t0,
    )
    return df


def _log_left_out(left_out: dict[str, str]) -> None:
    """One warning per reason, naming the features it left NaN."""
    by_reason: dict[str, list[str]] = {}
    for col, why in left_out.items():
        by_reason.setdefault(why, []).append(col)
    for why, cols in by_reason.items():
        log.warning("features left out (NaN): %s: %s", ", ".join(cols), why)


def _finish(raw: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Types, column order, labels joined on (account_id, as_of)."""
    out = pd.DataFrame(
        {
            "account_id": raw["account_id"].astype("str"),
            "as_of": pd.to_datetime(raw["as_of"]).astype("datetime64[us]"),
        }
    )
    for c in CONTEXT_COLUMNS:
        out[c] = raw[c].astype("str")
    names = feature_names()
    feats = {n: raw[n].to_numpy(dtype=np.float64, na_value=np.nan) for n in names if n in raw}
    feats["maturity_level"] = np.full(len(raw), np.nan)
    out = pd.concat([out, pd.DataFrame(feats, index=out.index)[names]], axis=1)
    out = out.merge(
        labels[["account_id", "as_of", *LABEL_COLUMNS]],
        on=["account_id", "as_of"],
        how="left",
        validate="one_to_one",
    )
    out["label_known"] = out["label_known"].fillna(False).astype(bool)
    return out.sort_values(["as_of", "account_id"], ignore_index=True)


# --------------------------------------------------------------------------- storage


FEATURE_LAYOUT = (r"as_of=[0-9-]+", r"features\.duckdb(\.wal)?", r"catalog\.json")


def check_feature_out(out_dir: str | Path, *, source: str | Path | None = None) -> Path:
    """Refuse, before any work, an output directory `write_feature_table` must not replace:
    one that overlaps `source`, is another kind of nrrcast output, or holds files nrrcast
    did not write.

    Parameters
    ----------
    out_dir : the feature table directory.
    source : the source the table is built from (the output must not overlap it).

    Returns
    -------
    Path, the resolved directory (not created).
    """
    out = storage.claim_dir(
        out_dir,
        "features",
        layout=FEATURE_LAYOUT,
        keep_clear_of=[source],
        adopt=lambda d: (d / "features.duckdb").is_file(),
        create=False,
    )
    storage.check_replaceable(out, "feature table", FEATURE_LAYOUT)
    storage.check_writable(out.parent, "feature table directory")
    return out


def write_feature_table(
    df: pd.DataFrame,
    out_dir: str | Path,
    *,
    lock_timeout: float = storage.DEFAULT_LOCK_TIMEOUT_S,
) -> Path:
    """Write the table as Parquet partitioned by as_of plus ``features.duckdb`` (table
    ``features``) and ``catalog.json``; replaces `out_dir` as a whole, crash-safely.

    Layout: ``<out_dir>/as_of=YYYY-MM-DD/part-0.parquet`` (the as_of column lives in the
    directory name), ``<out_dir>/features.duckdb``, ``<out_dir>/catalog.json`` and the
    ``.nrrcast`` marker. A directory holding anything else is refused (see
    `check_feature_out`); one writer at a time (the others wait up to `lock_timeout` s),
    and a swap a kill interrupted is finished or undone first (`features.storage`).

    Parameters
    ----------
    df : the feature table (`build_feature_table`).
    out_dir : directory to write (replaced as a whole).
    lock_timeout : seconds to wait for another writer of the same directory.

    Returns
    -------
    Path of `out_dir` (resolved).
    """
    out = Path(out_dir).expanduser().resolve()
    storage.check_writable(out.parent, "feature table directory")
    lock = storage.lock_path(out)
    with storage.StoreLock(lock, what=f"feature table {out}", timeout=lock_timeout):
        storage.recover(out)
        check_feature_out(out)
        tmp = storage.staging_dir(out, kind="features")
        try:
            table = pa.Table.from_pandas(df, preserve_index=False)
            day = pc.strftime(table["as_of"], format="%Y-%m-%d")
            body = table.drop_columns(["as_of"])
            for value in sorted(set(day.to_pylist())):
                part = tmp / f"as_of={value}"
                part.mkdir()
                mask = pc.equal(day, value)
                pq.write_table(body.filter(mask), part / "part-0.parquet")
            with duckdb.connect(str(tmp / "features.duckdb")) as db:
                db.register("_feature_frame", table)
                db.execute("CREATE TABLE features AS SELECT * FROM _feature_frame")
                db.unregister("_feature_frame")
            catalog = [
                {"name": s.name, "group": s.group, "unit": s.unit, "description": s.description}
                for s in CATALOG.values()
            ]
            (tmp / "catalog.json").write_text(json.dumps(catalog, indent=1))
            storage.swap_dir(tmp, out, point="features")
        except BaseException:
            if tmp.exists():
                storage.cleanup(lambda: shutil.rmtree(tmp), f"remove {tmp.name}")
            raise
    return out


def read_feature_table(out_dir: str | Path) -> pd.DataFrame:
    """Read a table written by `write_feature_table` (as_of back as datetime64[us]); a
    swap by a concurrent writer during the read makes it read again.

    Parameters
    ----------
    out_dir : directory written by `write_feature_table`.

    Returns
    -------
    DataFrame sorted by as_of then account_id, account_id and as_of first.
    """
    return storage.read_retrying(lambda: _read_feature_table(out_dir))


def _read_feature_table(out_dir: str | Path) -> pd.DataFrame:
    root = storage.readable_dir(Path(out_dir).expanduser().resolve())
    if root is None:
        raise FileNotFoundError(f"feature table directory not found: {out_dir}")
    files = sorted(str(p) for p in root.glob("as_of=*/*.parquet"))
    if not files:
        raise FileNotFoundError(f"no as_of=*/ Parquet partitions under {root}")
    part = pads.partitioning(pa.schema([("as_of", pa.string())]), flavor="hive")
    dataset = pads.dataset(files, format="parquet", partitioning=part, partition_base_dir=str(root))
    df = dataset.to_table().to_pandas()
    df["as_of"] = pd.to_datetime(df["as_of"]).astype("datetime64[us]")
    cols = ["account_id", "as_of"] + [c for c in df.columns if c not in ("account_id", "as_of")]
    return df[cols].sort_values(["as_of", "account_id"], ignore_index=True)
