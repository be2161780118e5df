"""Estimators saved before `NrrClassifier` became `OutcomeClassifier` still load and predict.

tests/models/data/nrr_classifier.{skops,pkl} were written by the code before the rename
(a tiny model fitted on the docstring example's data), with the probabilities it gave.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pandas as pd
import pytest
import skops.io

from models.train import OutcomeClassifier

DATA = Path(__file__).parent / "data"
EXPECTED = json.loads((DATA / "nrr_classifier_expected.json").read_text())


def _check(model) -> None:
    assert isinstance(model, OutcomeClassifier)
    got = model.predict_proba(pd.DataFrame(EXPECTED["X"]))[:, 1]
    assert got.tolist() == pytest.approx(EXPECTED["proba"], abs=0, rel=0)


def test_old_skops_file_loads_with_the_trusted_types():
    from flows.tracking import SKOPS_TRUSTED_TYPES

    path = DATA / "nrr_classifier.skops"
    assert "models.train.NrrClassifier" in skops.io.get_untrusted_types(file=path)
    _check(skops.io.load(path, trusted=list(SKOPS_TRUSTED_TYPES)))


def test_new_skops_file_names_the_new_class(tmp_path):
    from flows.tracking import SKOPS_TRUSTED_TYPES

    old = pickle.loads((DATA / "nrr_classifier.pkl").read_bytes())
    skops.io.dump(old, tmp_path / "m.skops")
    types = skops.io.get_untrusted_types(file=tmp_path / "m.skops")
    assert "models.train.OutcomeClassifier" in types and "models.train.NrrClassifier" not in types
    _check(skops.io.load(tmp_path / "m.skops", trusted=list(SKOPS_TRUSTED_TYPES)))


def test_old_pickle_loads():
    _check(pickle.loads((DATA / "nrr_classifier.pkl").read_bytes()))
