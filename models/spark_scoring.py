"""Score partitions of accounts on Spark workers with the single-machine code.

`SparkPartitions` is a drop-in for the partition loop of `models.scoring.score_snapshot`:
the feature rows go to Spark, are repartitioned by account, and each partition runs
`models.scoring._predict_partition` (booster, calibrator, exact TreeSHAP and reason
codes) inside ``mapInArrow``. The models and calibrators travel once as a broadcast
(cloud)pickle (a LightGBM booster pickles as its model string); each Python worker unpickles
them once and keeps them, with the numba TreeSHAP kernel it compiled, in module-level
state for every later partition (Spark reuses Python workers). Rows come back in the
input order, so the scores and reasons are those of the single-machine path.

Workers must run an interpreter with nrrcast and its dependencies installed (the
project's own: ``PYSPARK_PYTHON``, set by `features.spark_engine.spark_session`).
"""

from __future__ import annotations

import io
import os
import pickle
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

ROW = "_nrr_row"
_REASONS = "_nrr_reasons"  # Arrow IPC bytes of a partition's reason frame (one row each)
_PID = "_nrr_worker_pid"
_WARM = "_nrr_kernel_warm"

# worker-side state: broadcast id -> (models, calibrators); survives between partitions
_WORKER_MODELS: dict[str, tuple[Mapping[str, Any], Mapping[str, Any]]] = {}


def _kernel_warm() -> bool:
    """Whether this process already holds compiled TreeSHAP kernels."""
    from models import treeshap

    return bool(treeshap._shap_kernel.signatures)


def _ipc(frame: pd.DataFrame) -> bytes:
    sink = io.BytesIO()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(blob: bytes) -> pd.DataFrame:
    return pa.ipc.open_stream(blob).read_all().to_pandas()


class SparkPartitions:
    """Run the scoring partitions on Spark (pass to ``score_snapshot(partitions=...)``).

    Parameters
    ----------
    spark : the session (the user's, or `features.spark_engine.spark_session`).
    partitions : number of Spark partitions; default the session's default parallelism.

    Attributes
    ----------
    diagnostics : after a run, one row per partition: worker pid and whether the numba
        kernel was already compiled in that worker when the partition started.
    """

    def __init__(self, spark: SparkSession, partitions: int | None = None) -> None:
        self.spark = spark
        self.partitions = partitions
        self.diagnostics = pd.DataFrame()

    def __call__(
        self,
        frame: pd.DataFrame,
        models: Mapping[str, Any],
        calibrators: Mapping[str, Any],
        top_k: int,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(predictions, reasons) of `frame`, as the single-machine loop returns them."""
        from models.scoring import _predict_partition

        spark = self.spark
        n = self.partitions or spark.sparkContext.defaultParallelism
        from pyspark import cloudpickle  # calibrators may be closures

        blob = cloudpickle.dumps((dict(models), dict(calibrators)))
        shipped = spark.sparkContext.broadcast(blob)
        key = uuid.uuid4().hex  # names this shipment in the workers' cache
        data = frame.reset_index(drop=True)
        data.insert(0, ROW, np.arange(len(data), dtype=np.int64))
        arrow = pa.Table.from_pandas(data, preserve_index=False)
        for i, fld in enumerate(arrow.schema):  # all-null columns: typed for Spark
            if pa.types.is_null(fld.type):
                arrow = arrow.set_column(i, fld.name, arrow.column(i).cast(pa.string()))
        sdf = spark.createDataFrame(arrow).repartition(n, "account_id")

        sample, _ = _predict_partition(frame.iloc[:1], models, calibrators, top_k)
        out_cols = [ROW, *sample.columns]
        base = pa.schema(
            [
                arrow.schema.field(c) if c in arrow.schema.names else pa.field(c, pa.float64())
                for c in out_cols
            ]
        )
        extra_fields = [
            pa.field(_REASONS, pa.binary()),
            pa.field(_PID, pa.int64()),
            pa.field(_WARM, pa.bool_()),
        ]
        schema = pa.schema([*base, *extra_fields])

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            warm = _kernel_warm()
            if key not in _WORKER_MODELS:
                _WORKER_MODELS[key] = pickle.loads(shipped.value)
            worker_models, worker_cal = _WORKER_MODELS[key]
            table = pa.Table.from_batches(list(batches))
            if table.num_rows == 0:
                return
            part = table.to_pandas()
            scored, reasons = _predict_partition(part, worker_models, worker_cal, top_k)
            scored.insert(0, ROW, part[ROW].to_numpy())
            body = pa.Table.from_pandas(scored[out_cols], schema=base, preserve_index=False)
            for fld in extra_fields:
                body = body.append_column(fld, pa.nulls(body.num_rows, fld.type))
            yield from body.to_batches()
            tail = {c: [None] for c in schema.names}
            tail.update({_REASONS: [_ipc(reasons)], _PID: [os.getpid()], _WARM: [warm]})
            yield from pa.Table.from_pydict(tail, schema=schema).to_batches()

        with _session_settings(spark):
            spark_schema = spark.createDataFrame(schema.empty_table()).schema
            result = sdf.mapInArrow(run, spark_schema).toArrow()
        shipped.unpersist()
        marker = pc.is_valid(result.column(_REASONS))
        rows = result.filter(pc.invert(marker)).drop_columns([_REASONS, _PID, _WARM])
        extra = result.filter(marker)
        self.diagnostics = pd.DataFrame(
            {"pid": extra.column(_PID).to_pylist(), "warm": extra.column(_WARM).to_pylist()}
        )
        predictions = rows.to_pandas().sort_values(ROW, kind="stable")
        predictions = predictions.drop(columns=[ROW]).reset_index(drop=True)
        reason_parts = [_from_ipc(b) for b in extra.column(_REASONS).to_pylist()]
        reasons = pd.concat(reason_parts, ignore_index=True) if reason_parts else pd.DataFrame()
        if not reasons.empty:  # back in the input order of the accounts
            order = pd.Series(np.arange(len(frame)), index=frame["account_id"].to_numpy())
            rank = order.reindex(reasons["account_id"].to_numpy()).to_numpy()
            reasons = reasons.iloc[np.argsort(rank, kind="stable")].reset_index(drop=True)
        return predictions, reasons


@contextmanager
def _session_settings(spark: SparkSession) -> Iterator[None]:
    """Naive timestamps stay naive (as in `features.spark_engine`), restored afterwards."""
    from features.spark_engine import REQUIRED_CONF

    old = {k: spark.conf.get(k, None) for k in REQUIRED_CONF}
    for k, v in REQUIRED_CONF.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
