"""Writing and reading the feature table: Parquet by as_of plus a DuckDB file."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pandas as pd
from features_fixtures import connect, random_world

from features.build import build_feature_table, read_feature_table, write_feature_table
from features.config import FeatureConfig


def test_round_trip_and_atomic_replace(tmp_path):
    con = connect(random_world(2))
    df = build_feature_table(
        con,
        [date(2025, 3, 1), date(2025, 4, 1)],
        FeatureConfig(),
        data_end=date(2025, 7, 1),
        progress=False,
    )
    out = tmp_path / "features"
    write_feature_table(df, out)
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [
        "as_of=2025-03-01",
        "as_of=2025-04-01",
    ]
    back = read_feature_table(out)
    pd.testing.assert_frame_equal(back[df.columns.tolist()], df, check_dtype=False)
    assert str(back["as_of"].dtype) == "datetime64[us]"
    with duckdb.connect(str(out / "features.duckdb"), read_only=True) as db:
        assert db.execute("SELECT COUNT(*) FROM features").fetchall()[0][0] == len(df)
    assert json.loads((out / "catalog.json").read_text())[0]["name"] == "active_days_7d"

    write_feature_table(df[df["as_of"] == pd.Timestamp("2025-04-01")], out)  # replaces the old one
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["as_of=2025-04-01"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
