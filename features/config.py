"""Typed settings of the feature and label computation.

Default values live only in ``configs/default.yaml`` (section ``features:``); see
`features.config_source`.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from features.catalog import CATALOG
from features.config_source import ConfigSection, require_known

# A DuckDB memory size: a number and a unit (or a share of the machine's memory). The
# value ends in SQL, so anything else (a quote, a semicolon) is refused here.
MEMORY_LIMIT_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|[kmgt]i?b|B|b|%)\s*$"


class MaturityRules(ConfigSection):
    """Transparent AI-maturity rules: minimum feature values per stage.

    An account is a Transformer when every `transformer` condition holds, else a Builder
    when every `builder` condition holds, else an Experimenter. Keys are feature names
    of `features.catalog`; a condition on a missing (NaN) value does not hold.
    """

    yaml_section: ClassVar[str] = "features.maturity"

    builder: dict[str, float] = Field(
        description="feature -> minimum value for the Builder stage (all must hold)"
    )
    transformer: dict[str, float] = Field(
        description="feature -> minimum value for the Transformer stage (all must hold)"
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MaturityRules:
        if not self.builder or not self.transformer:
            raise ValueError("maturity rules need at least one condition per stage")
        return self


class FeatureConfig(ConfigSection):
    """Windows, horizon, label thresholds and feature definitions of the snapshot panel."""

    yaml_section: ClassVar[str] = "features"

    # labels
    horizon_days: int = Field(ge=1, le=730)
    expansion_pct: float = Field(gt=0.0, lt=1.0)

    # observation dates (None = derived from the data by the caller)
    snapshot_freq: Literal["monthly", "weekly"]
    snapshot_start: str | None = Field(description="first as_of (ISO date), inclusive")
    snapshot_end: str | None = Field(description="last as_of (ISO date), inclusive")

    # validation: timestamps and dates before it are set aside (features.validate)
    data_floor: date = Field(
        description="timestamps and dates before it are placeholders or parsing accidents "
        "and are set aside; lower it for a book with older records"
    )

    # feature definitions
    core_product: str = Field(description="product whose seats and plan limits define utilization")
    feature_catalog: list[str] | None = Field(
        description="feature names that count for adoption breadth; None = every non-login "
        "event name seen from a human before as_of"
    )
    ai_features: list[str] = Field(description="event names that count as human use of AI features")
    power_user_days_per_week: float = Field(gt=0.0, le=7.0)
    power_user_min_features: int = Field(ge=1)
    seat_util_threshold: float = Field(gt=0.0)
    seat_util_lookback_months: int = Field(
        ge=1,
        le=60,
        description="cap of the high seat utilization streak: keep it at most the complete "
        "months observable at the first snapshot (3 with the 90-day warm-up), else the "
        "streak grows with the history that happens to be observable and drifts",
    )
    arr_history_steps: int = Field(
        ge=3, le=36, description="30-day steps of ARR history for past expansions/contractions"
    )
    maturity: MaturityRules

    # engine (None leaves the connection's setting alone)
    scan_chunk_months: int | None = Field(
        ge=1,
        description="scan events this many calendar months at a time (smaller hash tables); "
        "None = one pass",
    )
    duckdb_threads: int | None = Field(ge=1)
    duckdb_memory_limit: str | None = Field(
        pattern=MEMORY_LIMIT_PATTERN, description="e.g. '4GB', '512MiB', '80%'"
    )

    engine: Literal["duckdb", "spark"] = Field(
        description="relational engine of validation and features: DuckDB (embedded) or "
        "Apache Spark (the same statements, see features.spark_dialect)"
    )
    spark_master: str | None = Field(
        description="Spark master URL (local[*], spark://host:7077, yarn, k8s://...); None "
        "takes it from spark-submit or the running cluster (Databricks)"
    )
    spark_conf: dict[str, str] = Field(
        description="extra Spark settings, e.g. spark.driver.memory: 8g"
    )
    spark_tmp_dir: str | None = Field(
        description="where Spark keeps intermediate tables; None = a local temporary "
        "directory for local masters, the warehouse otherwise (use a shared path on a cluster)"
    )

    @model_validator(mode="after")
    def _maturity_features_known(self) -> FeatureConfig:
        # checked at load; MaturityRules alone may name any column of a frame
        for stage in ("builder", "transformer"):
            rules = getattr(self.maturity, stage)
            require_known(f"{self.yaml_section}.maturity.{stage}", rules, CATALOG, "feature")
        return self

    @field_validator("snapshot_start", "snapshot_end")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
        return value
