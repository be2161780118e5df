"""Orchestration: Prefect flows, MLflow tracking, configuration and the CLI."""

from flows.prefect_logging import install as _install_run_log_handler

# `nrrcast.*` records logged inside a flow or task run also go to the Prefect API.
_install_run_log_handler()
