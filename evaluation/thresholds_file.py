"""The quarterly thresholds file, ``configs/thresholds/<quarter>.yaml``: write and read.

The quarterly calibration (:func:`evaluation.thresholds.calibrate_thresholds`) writes one
file per quarter; scoring reads the newest. A file holds the two thresholds, how they were
chosen, and each target's calibrator as its numbers (what
:func:`models.portable.apply_calibration` evaluates), so reading it parses data and runs
nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from features.storage import atomic_write

REQUIRED_KEYS = ("quarter", "churn_threshold", "expand_threshold")
_QUARTER_FILE = re.compile(r"^\d{4}Q[1-4]$")


class AsDict(Protocol):
    """A result that knows its file content (``evaluation.thresholds.ThresholdCalibration``)."""

    def as_dict(self) -> dict[str, Any]:
        """The file's content.

        Returns
        -------
        dict
            YAML-safe, with at least ``quarter``, ``churn_threshold``, ``expand_threshold``.
        """
        ...


def yaml_safe(obj: Any) -> Any:
    """Numpy scalars and tuples as plain Python, NaN as None, recursively.

    Parameters
    ----------
    obj : Any
        Mappings, lists and tuples are walked; keys become strings.

    Returns
    -------
    Any
        What ``yaml.safe_dump`` writes without Python tags.

    Examples
    --------
    >>> yaml_safe({"a": (np.float64(0.5), float("nan"))})
    {'a': [0.5, None]}
    """
    if isinstance(obj, Mapping):
        return {str(k): yaml_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [yaml_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and np.isnan(obj):
        return None
    return obj


def thresholds_to_yaml(result: AsDict | Mapping[str, Any], path: str | Path) -> Path:
    """Write a thresholds file (atomically: a temp file renamed into place).

    Parameters
    ----------
    result : ThresholdCalibration or mapping
        A quarterly calibration (its ``as_dict()`` is written) or the file's content.
    path : str or Path
        The file, or a directory in which case the file is ``<dir>/<quarter>.yaml``.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ValueError
        When ``quarter``, ``churn_threshold`` or ``expand_threshold`` is missing.
    """
    data = result.as_dict() if not isinstance(result, Mapping) else yaml_safe(result)
    for key in REQUIRED_KEYS:
        if data.get(key) is None:
            raise ValueError(f"thresholds: key {key!r} is required")
    path = Path(path)
    if path.is_dir() or path.suffix == "":
        path = path / f"{data['quarter']}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, yaml.safe_dump(data, sort_keys=False), point="thresholds.write")


def load_thresholds(path: str | Path) -> dict[str, Any]:
    """Read one thresholds file and check its required keys.

    Parameters
    ----------
    path : str or Path
        A ``<quarter>.yaml`` file.

    Returns
    -------
    dict
        The file's content.

    Raises
    ------
    ValueError
        Naming the file and the missing key.
    """
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    for key in REQUIRED_KEYS:
        if key not in data:
            raise ValueError(f"{path}: key {key!r} missing")
    return data


def load_latest_thresholds(directory: str | Path) -> dict[str, Any] | None:
    """The thresholds file of the latest quarter in ``directory`` (``<quarter>.yaml``).

    Files not named like a quarter are ignored.

    Parameters
    ----------
    directory : str or Path
        Where the quarterly files are (``paths.thresholds_dir``).

    Returns
    -------
    dict or None
        The latest file's content; None when the directory holds no thresholds file, so
        the caller decides what an uncalibrated deployment does.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    found = [
        (pd.Period(path.stem, freq="Q"), path)
        for path in directory.glob("*.yaml")
        if _QUARTER_FILE.match(path.stem)
    ]
    if not found:
        return None
    return load_thresholds(max(found)[1])
