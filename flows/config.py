"""Load `configs/*.yaml` into one typed configuration, once, at the edge.

Each library owns the typed settings it needs; this module only composes them
so that a misspelt key or a wrong type fails at load time with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from evaluation.config import EvalConfig
from features.config import FeatureConfig
from features.errors import ConfigError
from models.config import ModelConfig
from models.segment import SegmentConfig
from models.territories import TerritoryConfig
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
    holdout_share: float = Field(
        0.0,
        ge=0.0,
        lt=1.0,
        description="share of flagged accounts held out at random each week (no outreach), "
        "so the quarterly calibration can measure whether the plays work; 0 = off",
    )
    holdout_seed: int = Field(0, description="seed of the holdout draw")
    change_min_points: float = Field(
        0.10,
        gt=0,
        le=1,
        description="'what changed since the last run' lists accounts whose probability "
        "moved at least this much (0.10 = 10 points)",
    )
    digest_max_flags: int = Field(
        20, ge=1, le=200, description="flags per CSM in the weekly digest and flags CSV"
    )
    exports: bool = Field(
        True, description="write account_list.csv / weekly_flags.csv and per-CSM digests"
    )
    freshness: Literal["refuse", "warn", "off"] = Field(
        "warn",
        description="when the data's end has not advanced since the last scoring run of "
        "the same source: refuse to score, warn, or do not check",
    )


class OrchestrationConfig(BaseModel):
    """How scheduled deployments run: one flow per store at a time, time limits."""

    model_config = ConfigDict(extra="forbid")

    store_name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="names the store's concurrency limit; null = derived from paths.mlflow_uri",
    )
    wait_for_store_minutes: float = Field(
        360, gt=0, description="how long a scheduled flow waits for another one on its store"
    )
    timeout_minutes: dict[Literal["score", "train", "calibrate"], float] = Field(
        default_factory=lambda: {"score": 120, "train": 480, "calibrate": 120},
        description="a scheduled flow run longer than this is stopped and marked failed",
    )


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
    territories: TerritoryConfig = TerritoryConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()

    @model_validator(mode="after")
    def _labels_agree(self) -> Config:
        # the simulator's truth is exact only for the label definitions the features use
        for key in ("horizon_days", "expansion_pct"):
            sim, feat = getattr(self.simulate, key), getattr(self.features, key)
            if sim != feat:
                raise ValueError(f"simulate.{key}={sim} differs from features.{key}={feat}")
        return self


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from `path`, read with the safe loader (no Python tags)."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}", hint="check --config")
    try:
        data = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            f"{path}: cannot load the YAML{at}: {problem}",
            hint="plain YAML only: mappings, lists, numbers and strings (no !!python tags)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def engine_overrides(engine: str | None) -> dict[str, Any] | None:
    """Config overrides choosing the features engine (``--engine``); None keeps the config's."""
    return {"features": {"engine": engine}} if engine else None


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
            got = repr(err.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            problems.append(f"  {key}: {err['msg']} (got {got})")
        where = path or CONFIG_DIR / "default.yaml"
        raise ConfigError(f"invalid configuration in {where}:\n" + "\n".join(problems)) from None
