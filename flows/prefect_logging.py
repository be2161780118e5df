"""Send the project's `nrrcast.*` log records to the Prefect API while a flow runs.

Prefect ships only its own loggers (and `print` with ``log_prints``) to the API; the
validation summary, drift, threshold fallbacks and promotion decisions are logged through
`nrrcast.*` loggers and would stay on the console. Prefect's own remedy,
``PREFECT_LOGGING_EXTRA_LOGGERS=nrrcast``, must be set before Prefect configures logging
and its handler warns on every record logged outside a run (plain commands, notebooks).
`RunLogHandler` is attached to the `nrrcast` logger when `flows` is imported: inside a
flow or task run it hands the record to Prefect's APILogHandler (batched, asynchronous);
outside a run, or when Prefect is not even imported, it does nothing. Console output is
left to whatever handlers the application configured.

Under a Prefect worker the root logger is at WARNING, which would drop INFO records such
as the validation summary before any handler sees them: the scheduled flows run inside
`project_log_level`, which gives the `nrrcast` logger a level for the run's duration
only (so an application's own logging setup is left as it was).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROJECT_LOGGER = "nrrcast"


class RunLogHandler(logging.Handler):
    """Forward records to Prefect's API log handler, only from inside a flow or task run."""

    def __init__(self, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._api: Any = None

    def _in_run(self) -> bool:
        context = sys.modules.get("prefect.context")  # no Prefect imported: no run
        if context is None:
            return False
        return bool(context.FlowRunContext.get() or context.TaskRunContext.get())

    def _prefect_sends_it_already(self, record: logging.LogRecord) -> bool:
        """True when PREFECT_LOGGING_EXTRA_LOGGERS put Prefect's own handler on the way."""
        from prefect.logging.handlers import APILogHandler

        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            if any(type(h) is APILogHandler for h in logger.handlers):
                return True
            logger = logger.parent if logger.propagate else None
        return False

    def emit(self, record: logging.LogRecord) -> None:
        if not self._in_run():
            return
        try:
            if self._api is None:
                from prefect.logging.handlers import APILogHandler

                self._api = APILogHandler()
                self._api.setFormatter(logging.Formatter("%(message)s"))
            if not self._prefect_sends_it_already(record):
                self._api.emit(record)
        except Exception:
            self.handleError(record)


def install(logger_name: str = PROJECT_LOGGER) -> RunLogHandler:
    """Attach one `RunLogHandler` to `logger_name` (idempotent) and return it."""
    logger = logging.getLogger(logger_name)
    for handler in logger.handlers:
        if isinstance(handler, RunLogHandler):
            return handler
    handler = RunLogHandler()
    logger.addHandler(handler)
    return handler


@contextmanager
def project_log_level(logger_name: str = PROJECT_LOGGER) -> Iterator[None]:
    """Give `logger_name` a level while the body runs, when it has none (NOTSET).

    The level is ``NRRCAST_LOG_LEVEL``, default INFO; a level the application set wins.
    """
    logger = logging.getLogger(logger_name)
    if logger.level != logging.NOTSET:
        yield
        return
    logger.setLevel((os.environ.get("NRRCAST_LOG_LEVEL") or "INFO").upper())
    try:
        yield
    finally:
        logger.setLevel(logging.NOTSET)


def setup_console(verbose: bool = False) -> None:
    """Console logging of a command-line run (INFO, or DEBUG when `verbose`), the noisy
    libraries at WARNING, and the temporary Prefect server's settings."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the temporary Prefect server can be slow to start on a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
