"""One scheduled flow per store at a time: a Prefect global concurrency limit of 1.

Training (04:00 on the 1st), calibration (05:00 on the 1st of a quarter) and scoring
(Mondays 06:00) all write the same MLflow registry, thresholds and scores. A long training
run must not overlap the calibration that follows it, so each scheduled flow occupies the
slot of its store for the whole run; the next one waits (up to
``orchestration.wait_for_store_minutes``) instead of running beside it.

The limit is named ``nrrcast-store-<name>``, with `name` from ``orchestration.store_name``
or derived from the MLflow tracking URI, and created on first use, so nothing needs to be
set up by hand. It lives on the Prefect API the deployments talk to; plain CLI runs each
start their own temporary API and are not serialised by it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from features.errors import LockHeldError
from flows.config import Config

log = logging.getLogger("nrrcast.flows")

PREFIX = "nrrcast-store-"


class StoreBusyError(LockHeldError):
    """Another flow held the store's slot for longer than the configured wait."""


def store_key(cfg: Config) -> str:
    """The store's concurrency-limit name: configured, or a digest of the MLflow store."""
    if cfg.orchestration.store_name:
        return PREFIX + cfg.orchestration.store_name
    uri = cfg.paths.mlflow_uri
    if uri.startswith("sqlite:///"):  # a relative path names a different store per directory
        uri = "sqlite:///" + str(Path(uri.removeprefix("sqlite:///")).resolve())
    return PREFIX + hashlib.sha1(uri.encode()).hexdigest()[:12]


def ensure_limit(name: str) -> None:
    """Create the global concurrency limit `name` with one slot unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectAlreadyExists

    # ObjectAlreadyExists: created by a run that started at the same moment
    with get_client(sync_client=True) as client, suppress(ObjectAlreadyExists):
        client.upsert_global_concurrency_limit_by_name(name, 1)


@contextmanager
def store_slot(cfg: Config, what: str) -> Iterator[str]:
    """Hold the store's slot while the body runs; yields the limit's name.

    Raises
    ------
    StoreBusyError
        When the slot did not free up within ``orchestration.wait_for_store_minutes``.
    """
    from prefect.concurrency.sync import concurrency

    name = store_key(cfg)
    ensure_limit(name)
    wait = cfg.orchestration.wait_for_store_minutes * 60
    log.info("%s: waiting for store slot %s (up to %.0f s)", what, name, wait)
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=wait, strict=True):
            acquired = True
            log.info("%s: holding store slot %s", what, name)
            yield name
    except TimeoutError:
        if acquired:  # a time-out of the body itself, not of the wait
            raise
        raise StoreBusyError(
            f"{what}: store {name} stayed busy for {wait:.0f} s (another training, "
            "calibration or scoring run holds it)",
            hint="it runs again at its next schedule; or raise "
            "orchestration.wait_for_store_minutes",
        ) from None
