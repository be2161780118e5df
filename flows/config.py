"""Load `configs/*.yaml` into one typed configuration, once, at the edge.

Each library owns the typed settings it needs; this module only composes them
so that a misspelt key or a wrong type fails at load time with the key's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, ValidationError, model_validator

from evaluation.config import EvalConfig
from features.config import FeatureConfig
from features.config_source import ConfigSection, default_config_path, default_section, read_yaml
from features.errors import ConfigError
from models.config import ModelConfig
from models.segment import SegmentConfig
from models.territories import TerritoryConfig
from simulator.config import SimConfig

ROOT = Path(__file__).resolve().parent.parent

EXPERIMENT = "nrrcast"
"""The MLflow experiment every flow run logs to."""

MODEL_NAMES = {"churn": "nrrcast-churn", "expand": "nrrcast-expansion"}
"""The registered model of each target (its aliases name the champion and challenger)."""


class PathsConfig(ConfigSection):
    """Where data, scores, reports and the MLflow store live (relative to the working dir)."""

    yaml_section: ClassVar[str] = "paths"

    raw: str
    features: str
    scores: str
    quarantine: str
    reports: str
    mlflow_uri: str
    mlflow_artifacts: str
    thresholds_dir: str


class ScoringConfig(ConfigSection):
    """How scoring runs: partitions, reason codes, fallback thresholds, extra stores."""

    yaml_section: ClassVar[str] = "scoring"

    partition_rows: int = Field(ge=1000, description="accounts per scoring partition")
    top_k_reasons: int = Field(ge=1, le=10, description="drivers per target and direction")
    churn_threshold: float = Field(
        ge=0, le=1, description="used only until a quarterly thresholds file exists"
    )
    expand_threshold: float = Field(
        ge=0, le=1, description="used only until a quarterly thresholds file exists"
    )
    sql_url: str | None = Field(description="also write scores to this SQL database")
    lock_timeout_s: float = Field(
        ge=0, description="seconds to wait for another run writing the same scores store"
    )
    report: bool
    holdout_share: float = Field(
        ge=0.0,
        lt=1.0,
        description="share of flagged accounts held out at random each week (no outreach), "
        "so the quarterly calibration can measure whether the plays work; 0 = off",
    )
    holdout_seed: int = Field(description="seed of the holdout draw")
    change_min_points: float = Field(
        gt=0,
        le=1,
        description="'what changed since the last run' lists accounts whose probability "
        "moved at least this much (0.10 = 10 points)",
    )
    digest_max_flags: int = Field(
        ge=1, le=200, description="flags per CSM in the weekly digest and flags CSV"
    )
    exports: bool = Field(
        description="write account_list.csv / weekly_flags.csv and per-CSM digests"
    )
    freshness: Literal["refuse", "warn", "off"] = Field(
        description="when the data's end has not advanced since the last scoring run of "
        "the same source: refuse to score, warn, or do not check"
    )


class OrchestrationConfig(ConfigSection):
    """How scheduled deployments run: one flow per store at a time, time limits."""

    yaml_section: ClassVar[str] = "orchestration"

    store_name: str | None = Field(
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="names the store's concurrency limit; null = derived from paths.mlflow_uri",
    )
    wait_for_store_minutes: float = Field(
        gt=0, description="how long a scheduled flow waits for another one on its store"
    )
    timeout_minutes: dict[Literal["score", "train", "calibrate"], float] = Field(
        description="a scheduled flow run longer than this is stopped and marked failed"
    )


class Config(ConfigSection):
    """The whole run configuration; sections map one-to-one to libraries."""

    yaml_section: ClassVar[str] = ""

    paths: PathsConfig
    simulate: SimConfig
    features: FeatureConfig
    models: ModelConfig
    evaluation: EvalConfig
    segment: SegmentConfig
    scoring: ScoringConfig
    territories: TerritoryConfig
    orchestration: OrchestrationConfig

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


def engine_overrides(engine: str | None) -> dict[str, Any] | None:
    """Config overrides choosing the features engine (``--engine``).

    Parameters
    ----------
    engine : str or None
        ``"duckdb"`` or ``"spark"``; None keeps the config's engine.

    Returns
    -------
    dict or None
        Overrides for `load_config`, None when there is nothing to override.
    """
    return {"features": {"engine": engine}} if engine else None


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the default configuration, then `path` on top of it, then `overrides`.

    The default is the packaged ``configs/default.yaml`` (`features.config_source`): the
    one place every default value lives. Names of features, segments, coverage levels
    and targets are checked against the registry (`features.catalog`, `features.names`).

    Parameters
    ----------
    path : str or Path, optional
        A YAML file whose keys replace the default ones (mappings merge key by key).
    overrides : dict, optional
        Applied last, merged the same way (e.g. `engine_overrides`).

    Returns
    -------
    Config
        The typed configuration.

    Raises
    ------
    ConfigError
        Naming every bad key (e.g. ``models.lgbm.num_leaves``) or unknown name.
    """
    default = default_config_path()
    data = default_section("")
    if path is not None and Path(path).resolve() != default.resolve():
        data = _deep_merge(data, read_yaml(Path(path)))
    if overrides:
        data = _deep_merge(data, overrides)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            named = err.get("ctx", {}).get("error")
            if isinstance(named, ConfigError):  # a registry check: it names key and value
                problems.append(f"  {named}")
                continue
            key = ".".join(str(p) for p in err["loc"])
            got = repr(err.get("input"))
            got = got if len(got) <= 60 else got[:57] + "..."
            problems.append(f"  {key}: {err['msg']} (got {got})")
        where = path or default
        raise ConfigError(f"invalid configuration in {where}:\n" + "\n".join(problems)) from None
