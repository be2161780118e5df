"""Scoring partitions on Spark gives the single-machine scores and reasons, bit for bit.

The book and the two models of tests/models/test_scoring.py are scored once here and once with
`models.spark_scoring.SparkPartitions` (mapInArrow on a local session): every score
column and every reason row must be identical, and each Python worker compiles the
numba TreeSHAP kernel once, not once per partition.
"""

from __future__ import annotations

import pandas as pd
import pytest
from test_scoring import THR, book, models  # noqa: F401  (module fixtures reused)

from models.portable import apply_calibration
from models.scoring import score_snapshot
from models.spark_scoring import SparkPartitions

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]


def test_spark_partitions_give_the_single_machine_scores(spark, book, models):  # noqa: F811
    params = {"method": "sigmoid", "a": 1.3, "b": -0.2}
    calibrators = {"churn": lambda p: apply_calibration(params, p)}  # a closure travels too
    args = {**THR, "versions": {"churn": "3", "expand": "5"}, "calibrators": calibrators}
    here = score_snapshot(book, models, progress=False, partition_rows=400, **args)
    runner = SparkPartitions(spark, partitions=6)
    there = score_snapshot(book, models, partitions=runner, **args)
    pd.testing.assert_frame_equal(there.scores, here.scores, check_exact=True, check_dtype=False)
    pd.testing.assert_frame_equal(there.reasons, here.reasons, check_exact=True, check_dtype=False)
    assert there.scores.attrs == here.scores.attrs
    diag = runner.diagnostics
    assert len(diag) == 6  # every partition reported
    # once a worker has compiled the kernel, its later partitions find it compiled
    for _, runs in diag.groupby("pid", sort=False):
        assert runs["warm"].iloc[1:].all()
    assert diag["pid"].nunique() <= 2  # local[2]: Python workers are reused
    assert not diag["warm"].all()  # the flag is real: a fresh worker starts cold
