"""Orchestration: Prefect flows, MLflow tracking, configuration and the CLI."""
