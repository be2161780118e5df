"""Typed settings of the feature and label computation."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A DuckDB memory size: a number and a unit (or a share of the machine's memory). The
# value ends in SQL, so anything else (a quote, a semicolon) is refused here.
MEMORY_LIMIT_PATTERN = r"^\s*[0-9]+(\.[0-9]+)?\s*([KMGT]i?B|[kmgt]i?b|B|b|%)\s*$"


class MaturityRules(BaseModel):
    """Transparent AI-maturity rules: minimum feature values per stage.

    An account is a Transformer when every `transformer` condition holds, else a Builder
    when every `builder` condition holds, else an Experimenter. Keys are feature names
    of `features.catalog`; a condition on a missing (NaN) value does not hold.
    """

    model_config = ConfigDict(extra="forbid")

    builder: dict[str, float] = Field(
        default_factory=lambda: {"ai_feature_share_30d": 0.05},
        description="feature -> minimum value for the Builder stage (all must hold)",
    )
    transformer: dict[str, float] = Field(
        default_factory=lambda: {"ai_feature_share_30d": 0.11, "agent_runs_30d": 50.0},
        description="feature -> minimum value for the Transformer stage (all must hold)",
    )

    @model_validator(mode="after")
    def _not_empty(self) -> MaturityRules:
        if not self.builder or not self.transformer:
            raise ValueError("maturity rules need at least one condition per stage")
        return self


class FeatureConfig(BaseModel):
    """Windows, horizon, label thresholds and feature definitions of the snapshot panel."""

    model_config = ConfigDict(extra="forbid")

    # labels
    horizon_days: int = Field(60, ge=1, le=730)
    expansion_pct: float = Field(0.10, gt=0.0, lt=1.0)

    # observation dates (None = derived from the data by the caller)
    snapshot_freq: Literal["monthly", "weekly"] = "monthly"
    snapshot_start: str | None = Field(None, description="first as_of (ISO date), inclusive")
    snapshot_end: str | None = Field(None, description="last as_of (ISO date), inclusive")

    # validation: timestamps and dates before it are set aside (features.validate)
    data_floor: date = Field(
        date(2000, 1, 1),
        description="timestamps and dates before it are placeholders or parsing accidents "
        "and are set aside; lower it for a book with older records",
    )

    # feature definitions
    core_product: str = Field(
        "platform", description="product whose seats and plan limits define utilization"
    )
    feature_catalog: list[str] | None = Field(
        None,
        description="feature names that count for adoption breadth; None = every non-login "
        "event name seen from a human before as_of",
    )
    ai_features: list[str] = Field(
        default_factory=lambda: ["ai_assist", "agent_build", "notebook_run"],
        description="event names that count as human use of AI features",
    )
    power_user_days_per_week: float = Field(5.0, gt=0.0, le=7.0)
    power_user_min_features: int = Field(4, ge=1)
    seat_util_threshold: float = Field(0.8, gt=0.0)
    seat_util_lookback_months: int = Field(
        3,
        ge=1,
        le=60,
        description="cap of the high seat utilization streak: keep it at most the complete "
        "months observable at the first snapshot (3 with the 90-day warm-up), else the "
        "streak grows with the history that happens to be observable and drifts",
    )
    arr_history_steps: int = Field(
        12, ge=3, le=36, description="30-day steps of ARR history for past expansions/contractions"
    )
    maturity: MaturityRules = MaturityRules()

    # engine (None leaves the connection's setting alone)
    scan_chunk_months: int | None = Field(
        None,
        ge=1,
        description="scan events this many calendar months at a time (smaller hash tables); "
        "None = one pass",
    )
    duckdb_threads: int | None = Field(None, ge=1)
    duckdb_memory_limit: str | None = Field(
        None, pattern=MEMORY_LIMIT_PATTERN, description="e.g. '4GB', '512MiB', '80%'"
    )

    engine: Literal["duckdb", "spark"] = Field(
        "duckdb",
        description="relational engine of validation and features: DuckDB (embedded) or "
        "Apache Spark (the same statements, see features.spark_dialect)",
    )
    spark_master: str | None = Field(
        "local[*]",
        description="Spark master URL (local[*], spark://host:7077, yarn, k8s://...); None "
        "takes it from spark-submit or the running cluster (Databricks)",
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="extra Spark settings, e.g. spark.driver.memory: 8g"
    )
    spark_tmp_dir: str | None = Field(
        None,
        description="where Spark keeps intermediate tables; None = a local temporary "
        "directory for local masters, the warehouse otherwise (use a shared path on a cluster)",
    )

    @field_validator("snapshot_start", "snapshot_end")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
        return value
