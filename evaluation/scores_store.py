"""The scores store: Parquet partitions + a DuckDB table (+ an optional SQL database).

Writes are atomic and idempotent per `as_of`: a run that fails or is killed half-way leaves
the previous scores intact (or, once DuckDB committed, the new ones after recovery), and
re-scoring a date replaces its rows instead of adding to them. One writer at a time.
"""

from __future__ import annotations

import logging
import re
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import storage
from features.sql_quote import quote_ident

log = logging.getLogger("nrrcast.scores")

DB_FILE = "scores.duckdb"
CHUNK_ROWS = 100_000
TABLE = "scores"
WRITES = "_nrrcast_writes"  # as_of -> id of the write that committed it (swap recovery)
LOCK_FILE = ".nrrcast.lock"
SCORES_LAYOUT = (
    r"as_of=[0-9-]+",
    r"scores\.duckdb(\.wal)?",
    r"\.staging-\w+",  # leftovers of versions before crash-safe swaps: hidden, never read
    r"\.old-as_of=[0-9-]+",
    r"exports",  # account_list.csv / weekly_flags.csv per scoring date (flows/score.py)
)


def _partition(out_dir: Path, as_of: date) -> Path:
    return out_dir / f"as_of={pd.Timestamp(as_of).date().isoformat()}"


def check_store(out_dir: str | Path, *, source: str | Path | None = None) -> Path:
    """Create (or accept) the scores directory and check it can be written, before any
    scoring work: refused when it overlaps `source` or holds files nrrcast did not write.

    Parameters
    ----------
    out_dir : str or Path
        The scores directory.
    source : str or Path, optional
        The source being scored; the store must not overlap it.

    Returns
    -------
    Path
        The scores directory.
    """
    out = storage.claim_dir(
        out_dir,
        "scores",
        layout=SCORES_LAYOUT,
        keep_clear_of=[source],
        adopt=lambda d: (d / DB_FILE).is_file(),
    )
    storage.check_writable(out, "scores directory")
    return out


def write_scores(
    scores: pd.DataFrame,
    out_dir: str | Path,
    as_of: date,
    *,
    sql_url: str | None = None,
    lock_timeout: float = storage.DEFAULT_LOCK_TIMEOUT_S,
) -> Path:
    """Replace the scores of `as_of` in every store; returns the Parquet partition written.

    One writer at a time (`lock_timeout` seconds of waiting for another, then a clear
    error naming the holder). The DuckDB transaction is the commit point: it records the
    write's id, so that a Parquet swap a kill interrupted is finished (committed) or undone
    (not committed) by the next writer or reader.

    Parameters
    ----------
    scores : pd.DataFrame
        One date's scores: one row per ``account_id``, every ``as_of`` equal to `as_of`.
    out_dir : str or Path
        The scores directory.
    as_of : date
        The scoring date whose rows are replaced.
    sql_url : str, optional
        Also replace them in this SQL database (`evaluation.scores_sql`).
    lock_timeout : float
        Seconds to wait for another writer.

    Returns
    -------
    Path
        The Parquet partition written.
    """
    if scores.empty:
        raise ValueError("refusing to write an empty scores table (nothing was scored)")
    stamps = pd.to_datetime(scores["as_of"]).dt.date.unique()
    if len(stamps) != 1 or stamps[0] != pd.Timestamp(as_of).date():
        raise ValueError(
            f"scores hold as_of values {sorted(map(str, stamps))}, expected only {as_of}"
        )
    if scores["account_id"].duplicated().any():
        raise ValueError(
            f"scores: {int(scores['account_id'].duplicated().sum())} duplicate account_id rows"
        )
    out_dir = check_store(out_dir)
    day = pd.Timestamp(as_of).date()
    deadline = time.monotonic() + lock_timeout
    with storage.StoreLock(
        out_dir / LOCK_FILE,
        what=f"scores store {out_dir}",
        timeout=lock_timeout,
        hint="wait for it to finish, or raise scoring.lock_timeout_s",
    ):
        con = _connect(out_dir / DB_FILE, max(deadline - time.monotonic(), 0))
        try:
            _recover(out_dir, con)
            final = _partition(out_dir, as_of)
            write_id = storage.new_id()
            staging = storage.staging_dir(final, write_id)
            try:
                _stage_and_commit(con, scores, staging, day, write_id)
            except BaseException:
                storage.cleanup(lambda: con.execute("ROLLBACK"), "roll back")
                storage.cleanup(lambda: shutil.rmtree(staging), f"remove {staging.name}")
                raise
        finally:
            storage.cleanup(con.close, "close the scores database")
        # committed: from here the new Parquet partition must win, also after a kill
        storage.swap_dir(staging, final, point="scores")
        if sql_url:  # under the same lock: two runs never interleave their SQL writes
            _write_sql(scores, sql_url, as_of)
    log.info("wrote %d scores for %s to %s", len(scores), as_of, final)
    return final


def _stage_and_commit(
    con: duckdb.DuckDBPyConnection,
    scores: pd.DataFrame,
    staging: Path,
    day: date,
    write_id: str,
) -> None:
    """Stream the rows in chunks to a staging Parquet file and into one DuckDB
    transaction (only one chunk is ever converted at a time), then commit with the write's
    id. Any failure before the commit leaves both stores as they were."""
    con.execute("BEGIN TRANSACTION")
    exists = _has_table(con, TABLE)
    if exists:
        con.execute(f"DELETE FROM {TABLE} WHERE CAST(as_of AS DATE) = ?", [day])
    writer = None
    try:
        for start in range(0, len(scores), CHUNK_ROWS):
            chunk = pa.Table.from_pandas(
                scores.iloc[start : start + CHUNK_ROWS], preserve_index=False
            )
            if writer is None:
                writer = pq.ParquetWriter(staging / "part-0.parquet", chunk.schema)
            writer.write_table(chunk)
            con.register("new_scores", chunk)
            if exists:
                if start == 0:
                    _add_new_columns(con)
                con.execute(f"INSERT INTO {TABLE} BY NAME SELECT * FROM new_scores")
            else:
                con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM new_scores")
                exists = True
            con.unregister("new_scores")
    finally:
        if writer is not None:
            writer.close()
    storage.fsync_tree(staging)
    storage.pause_point("scores.uncommitted")
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {WRITES} (as_of DATE, write_id VARCHAR, written_at TIMESTAMP)"
    )
    con.execute(f"DELETE FROM {WRITES} WHERE as_of = ?", [day])
    con.execute(f"INSERT INTO {WRITES} VALUES (?, ?, now()::TIMESTAMP)", [day, write_id])
    con.execute("COMMIT")


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Columns a newer version adds to the scores (NULL in the dates written before)."""
    have = {r[0] for r in con.execute(f"DESCRIBE {TABLE}").fetchall()}
    for name, dtype, *_ in con.execute("DESCRIBE new_scores").fetchall():
        if name not in have:
            con.execute(f"ALTER TABLE {TABLE} ADD COLUMN {quote_ident(name)} {dtype}")


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(
        con.execute(  # fetchall: DuckDB 2 keeps a fetchone() result open
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0]
    )


def _connect(path: Path, timeout: float, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the scores database; wait up to `timeout` s for another process that holds it
    (a notebook, a run of an older version), then say which process it is."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                m = re.search(r"PID (\d+)", str(exc))
                holder = f"pid {m.group(1)}" if m else "another process"
                raise storage.LockHeldError(
                    f"{path} is open in another process ({holder}); waited {timeout:g} s",
                    hint="close that connection (or wait for that run) and rerun",
                ) from None
            time.sleep(0.2)


def _leftover_partitions(out_dir: Path) -> dict[Path, list[Path]]:
    found: dict[Path, list[Path]] = {}
    for p in out_dir.glob(".as_of=*"):
        m = re.fullmatch(r"\.(as_of=[0-9-]+)\.(tmp|old)-[0-9a-f-]+", p.name)
        if m:
            found.setdefault(out_dir / m.group(1), []).append(p)
    return found


def _recover(out_dir: Path, con: duckdb.DuckDBPyConnection) -> None:
    """Finish or undo partition swaps a kill interrupted: the DuckDB write log decides."""
    leftovers = _leftover_partitions(out_dir)
    if not leftovers:
        return
    written: dict[str, str] = {}
    if _has_table(con, WRITES):
        written = {
            str(d): w for d, w in con.execute(f"SELECT as_of, write_id FROM {WRITES}").fetchall()
        }
    for final in sorted(leftovers):
        committed_id = written.get(final.name.removeprefix("as_of="))
        storage.recover(final, committed=lambda wid, c=committed_id: wid == c)


def _write_sql(scores: pd.DataFrame, url: str, as_of: date) -> None:
    """Replace the rows of `as_of` in an SQL database (e.g. PostgreSQL) in one transaction."""
    from evaluation.scores_sql import write_scores_sql

    write_scores_sql(scores, url, as_of)


def read_scores(out_dir: str | Path, as_of: date | None = None) -> pd.DataFrame:
    """All scores (or one date's) from the Parquet partitions; empty frame when none exist.
    A partition swapped by a concurrent writer during the read makes it read again.

    Parameters
    ----------
    out_dir : str or Path
        The scores directory.
    as_of : date, optional
        Only this date's scores.

    Returns
    -------
    pd.DataFrame
        The scores, every date's partition concatenated.
    """
    return storage.read_retrying(lambda: _read_scores(Path(out_dir), as_of))


def _read_scores(out_dir: Path, as_of: date | None) -> pd.DataFrame:
    if _leftover_partitions(out_dir):
        _recover_if_idle(out_dir)
    parts = sorted(out_dir.glob("as_of=*/part-*.parquet"))
    # a swap still interrupted (a writer is busy): the previous version is the current one
    for final, left in _leftover_partitions(out_dir).items():
        olds = sorted(p for p in left if ".old-" in p.name)
        if not final.exists() and olds:
            parts.extend(sorted(olds[-1].glob("part-*.parquet")))
    if as_of is not None:
        name = _partition(out_dir, as_of).name
        parts = [p for p in parts if p.parent.name == name or p.parent.name.startswith(f".{name}.")]
    if not parts:
        return pd.DataFrame()
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _recover_if_idle(out_dir: Path) -> None:
    """Repair interrupted swaps when no writer is at work (a reader never waits)."""
    try:
        with storage.StoreLock(out_dir / LOCK_FILE, what=f"scores store {out_dir}", timeout=0):
            con = _connect(out_dir / DB_FILE, 0, read_only=True)
            try:
                _recover(out_dir, con)
            finally:
                con.close()
    except (storage.LockHeldError, duckdb.Error, OSError) as exc:
        log.info("scores store %s: interrupted write left as is for now (%s)", out_dir, exc)
