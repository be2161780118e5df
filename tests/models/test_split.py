"""The out-of-time split: slices ordered in time, label windows purged, unmatured rows out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from models_synth import synthetic_panel

from models.config import SplitConfig
from models.split import split_from_config, time_split

H = 60


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return synthetic_panel(n_accounts=50, months=18, unmatured=2)


def test_no_training_label_reaches_past_validation_start(panel):
    split = time_split(panel, horizon_days=H)
    masks = split.masks(panel)
    as_of = pd.to_datetime(panel["as_of"])
    train_as_of = as_of[masks["train"]]
    assert len(train_as_of) > 0
    assert (train_as_of < split.valid_start).all()
    # the label of every training row is observed on or before the validation start
    assert (train_as_of + pd.Timedelta(days=H) <= split.valid_start).all()
    # ... and the same purge at the later boundaries
    assert (as_of[masks["valid"]] + pd.Timedelta(days=H) <= split.calib_start).all()
    assert (as_of[masks["calib"]] + pd.Timedelta(days=H) <= split.test_start).all()


def test_purge_drops_the_dates_whose_window_crosses_a_boundary(panel):
    split = time_split(panel, horizon_days=H)
    # monthly dates, H=60: the month before each boundary is purged, and two before
    # 2026-03 because 2026-01-01 + 60 d = 2026-03-02 (February is short)
    purged = [d.strftime("%Y-%m") for d in split.purged]
    assert purged == ["2025-07", "2025-10", "2026-01", "2026-02"]
    assert split.rows["purged"] == 4 * 50
    unpurged = time_split(panel, horizon_days=H, purge=False)
    assert unpurged.purged == ()
    assert unpurged.valid_start > split.valid_start
    leaked = pd.to_datetime(panel["as_of"])[unpurged.mask(panel, "train")]
    assert (leaked + pd.Timedelta(days=H) > unpurged.valid_start).any()


def test_slices_are_disjoint_ordered_and_matured(panel):
    split = time_split(panel, horizon_days=H, valid_dates=2, calib_dates=2, test_dates=2)
    masks = split.masks(panel)
    stacked = np.vstack(list(masks.values())).astype(int)
    assert stacked.sum(axis=0).max() == 1
    assert max(split.train) < min(split.valid) <= max(split.valid) < min(split.calib)
    assert max(split.calib) < min(split.test)
    assert len(split.test) == 2 and len(split.calib) == 2 and len(split.valid) == 2
    known = panel["label_known"].to_numpy()
    assert not stacked[:, ~known].any()
    assert split.test[-1] == pd.to_datetime(panel.loc[known, "as_of"]).max()
    assert len(split.unmatured) == 2
    assert split.rows["test"] == 2 * 50
    d = split.to_dict()
    assert d["test_start"] == split.test_start.date().isoformat()


def test_explicit_boundaries_override_counts(panel):
    cfg = SplitConfig(valid_start="2025-08-01", calib_start="2025-11-01", test_start="2026-02-01")
    split = split_from_config(panel, cfg, horizon_days=H)
    assert split.valid_start == pd.Timestamp("2025-08-01")
    assert split.test_start == pd.Timestamp("2026-02-01")
    assert max(split.train) + pd.Timedelta(days=H) <= pd.Timestamp("2025-08-01")
    with pytest.raises(ValueError, match="all of"):
        SplitConfig(valid_start="2025-08-01")


def test_too_little_history_is_a_clear_error():
    short = synthetic_panel(n_accounts=10, months=7, unmatured=2)
    with pytest.raises(ValueError, match="not enough matured snapshot dates"):
        time_split(short, horizon_days=H)
