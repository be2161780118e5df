"""The scores store is atomic and idempotent per as_of."""

from datetime import date

import duckdb
import pandas as pd
import pytest

from evaluation import scores_store


def _scores(as_of: str, n: int = 5, p: float = 0.1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "as_of": pd.Timestamp(as_of),
            "p_churn": [p] * n,
        }
    )


def _db_count(out, as_of=None):
    con = duckdb.connect(str(out / scores_store.DB_FILE), read_only=True)
    try:
        if as_of is None:
            return con.execute("SELECT count(*) FROM scores").fetchone()[0]
        return con.execute(
            "SELECT count(*) FROM scores WHERE CAST(as_of AS DATE) = ?", [as_of]
        ).fetchone()[0]
    finally:
        con.close()


def test_rescoring_replaces_instead_of_duplicating(tmp_path):
    scores_store.write_scores(_scores("2026-01-05"), tmp_path, date(2026, 1, 5))
    scores_store.write_scores(_scores("2026-01-12"), tmp_path, date(2026, 1, 12))
    scores_store.write_scores(_scores("2026-01-05", n=3, p=0.5), tmp_path, date(2026, 1, 5))
    assert _db_count(tmp_path) == 8
    again = scores_store.read_scores(tmp_path, date(2026, 1, 5))
    assert len(again) == 3 and (again["p_churn"] == 0.5).all()
    assert len(scores_store.read_scores(tmp_path)) == 8


def test_failed_write_leaves_previous_scores(tmp_path, monkeypatch):
    scores_store.write_scores(_scores("2026-01-05"), tmp_path, date(2026, 1, 5))

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(scores_store.pq.ParquetWriter, "write_table", boom)
    with pytest.raises(OSError):
        scores_store.write_scores(_scores("2026-01-05", p=0.9), tmp_path, date(2026, 1, 5))
    monkeypatch.undo()
    kept = scores_store.read_scores(tmp_path, date(2026, 1, 5))
    assert len(kept) == 5 and (kept["p_churn"] == 0.1).all()
    assert _db_count(tmp_path, date(2026, 1, 5)) == 5


def test_rejects_mixed_dates_and_duplicates(tmp_path):
    mixed = pd.concat([_scores("2026-01-05"), _scores("2026-01-12")])
    with pytest.raises(ValueError, match="expected only"):
        scores_store.write_scores(mixed, tmp_path, date(2026, 1, 5))
    dup = pd.concat([_scores("2026-01-05"), _scores("2026-01-05")])
    with pytest.raises(ValueError, match="duplicate account_id"):
        scores_store.write_scores(dup, tmp_path, date(2026, 1, 5))


def test_chunked_write_keeps_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr(scores_store, "CHUNK_ROWS", 2)
    scores_store.write_scores(_scores("2026-01-05", n=7), tmp_path, date(2026, 1, 5))
    assert _db_count(tmp_path) == 7
    assert len(scores_store.read_scores(tmp_path)) == 7


def test_sql_database_option(tmp_path):
    url = f"sqlite:///{tmp_path / 'scores.sqlite'}"
    scores_store.write_scores(_scores("2026-01-05"), tmp_path / "s", date(2026, 1, 5), sql_url=url)
    scores_store.write_scores(
        _scores("2026-01-05", n=2), tmp_path / "s", date(2026, 1, 5), sql_url=url
    )
    import sqlalchemy as sa

    with sa.create_engine(url).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM scores")).scalar() == 2
