"""Load `configs/*.yaml` into one typed configuration, once, at the edge.

Each library owns the typed settings it needs; this module only composes them
so that a misspelt key or a wrong type fails at load time with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evaluation.config import EvalConfig
from features.config import FeatureConfig
from models.config import ModelConfig
from models.segment import SegmentConfig
from simulator.config import SimConfig

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "configs"


class PathsConfig(BaseModel):
    """Where data, scores, reports and the MLflow store live (relative to the working dir)."""

    model_config = ConfigDict(extra="forbid")

    raw: str = "data/raw"
    features: str = "data/features"
    scores: str = "data/scores"
    quarantine: str = "data/quarantine"
    reports: str = "data/reports"
    mlflow_uri: str = "sqlite:///mlruns/mlflow.db"
    mlflow_artifacts: str = "mlruns/artifacts"
    thresholds_dir: str = "configs/thresholds"


class ScoringConfig(BaseModel):
    """How scoring runs: partitions, reason codes, fallback thresholds, extra stores."""

    model_config = ConfigDict(extra="forbid")

    partition_rows: int = Field(100_000, ge=1000, description="accounts per scoring partition")
    top_k_reasons: int = Field(3, ge=1, le=10, description="drivers per target and direction")
    churn_threshold: float = Field(
        0.15, ge=0, le=1, description="used only until a quarterly thresholds file exists"
    )
    expand_threshold: float = Field(
        0.25, ge=0, le=1, description="used only until a quarterly thresholds file exists"
    )
    sql_url: str | None = Field(None, description="also write scores to this SQL database")
    lock_timeout_s: float = Field(
        60.0, ge=0, description="seconds to wait for another run writing the same scores store"
    )
    report: bool = True


class Config(BaseModel):
    """The whole run configuration; sections map one-to-one to libraries."""

    model_config = ConfigDict(extra="forbid")

    paths: PathsConfig = PathsConfig()
    simulate: SimConfig = SimConfig()
    features: FeatureConfig = FeatureConfig()
    models: ModelConfig = ModelConfig()
    evaluation: EvalConfig = EvalConfig()
    segment: SegmentConfig = SegmentConfig()
    scoring: ScoringConfig = ScoringConfig()

    @model_validator(mode="after")
    def _labels_agree(self) -> Config:
        # the simulator's truth is exact only for the label definitions the features use
        for key in ("horizon_days", "expansion_pct"):
            sim, feat = getattr(self.simulate, key), getattr(self.features, key)
            if sim != feat:
                raise ValueError(f"simulate.{key}={sim} differs from features.{key}={feat}")
        return self


class ConfigError(ValueError):
    """A configuration file that does not match the typed schema."""


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read `configs/default.yaml`, then `path` on top of it, then `overrides`.

    Raises ConfigError naming every bad key (e.g. ``models.lgbm.num_leaves``).
    """
    data = _read_yaml(CONFIG_DIR / "default.yaml")
    if path is not None and Path(path).resolve() != (CONFIG_DIR / "default.yaml").resolve():
        data = _deep_merge(data, _read_yaml(Path(path)))
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            problems.append(f"  {key}: {err['msg']} (got {err.get('input')!r})")
        where = path or CONFIG_DIR / "default.yaml"
        raise ConfigError(f"invalid configuration in {where}:\n" + "\n".join(problems)) from None
