"""Orchestration: Prefect flows, MLflow tracking, configuration and the CLI."""

import warnings

from flows.prefect_logging import install as _install_run_log_handler

# `nrrcast.*` records logged inside a flow or task run also go to the Prefect API.
_install_run_log_handler()

# MLflow's guess about a dataset's source is noise in every training log: the datasets
# logged with a run are in-memory frames whose source is recorded in the run's tags.
warnings.filterwarnings("ignore", message=r"The specified dataset source can be interpreted")
