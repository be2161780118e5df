"""The registered MLflow model (models-from-code): calibrated probabilities, not 0/1 labels.

MLflow stores this file with the model and runs it at load time; it needs only
``portable.py`` (shipped beside it as a code path), numpy, pandas, scipy and lightgbm. Loaded
outside this repository, ``predict(X)`` returns a DataFrame with ``p_<target>``
(calibrated) and ``p_<target>_raw``; ``params={"reasons": k}`` adds the top k reason
codes, ``params={"calibration": "<json>"}`` applies other calibration parameters (e.g.
the quarterly calibrator of a thresholds file) instead of the model's own.
"""

from __future__ import annotations

import json

import mlflow
from mlflow.pyfunc import PythonModel

try:  # inside the repository
    from models.portable import PortableModel
except ModuleNotFoundError:  # loaded from the model's own code path
    from portable import PortableModel  # type: ignore[no-redef]

ARTIFACT = "model"


class NrrcastModel(PythonModel):
    """pyfunc wrapper of a `PortableModel` (the artifact directory ``model``)."""

    # no type hints on these two methods: MLflow would try to derive a schema from them
    def load_context(self, context):
        self.model = PortableModel.load(context.artifacts[ARTIFACT])

    def predict(self, context, model_input, params=None):
        params = params or {}
        calibration = params.get("calibration") or None
        return self.model.predict_frame(
            model_input,
            reasons=int(params.get("reasons") or 0),
            calibration=json.loads(calibration) if calibration else None,
        )


mlflow.models.set_model(NrrcastModel())
