"""Input contract, validation and point-in-time features and labels (DuckDB)."""
