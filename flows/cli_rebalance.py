"""``nrrcast rebalance``: territory rebalancing and a migration plan for one scoring date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def rebalance(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="scoring date to rebalance (default: latest)")
    ] = None,
    source: Annotated[
        Path | None, typer.Option(help="source with subscriptions (renewals) and csms")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML on top of configs/default.yaml")
    ] = None,
) -> None:
    """Balance CSM loads over the scored book; write moves, loads, exceptions and the plan."""
    from flows.prefect_logging import setup_console

    setup_console()  # before Prefect is imported: it gives the root logger a handler
    from flows.rebalance import run_rebalance

    run_rebalance(
        str(config) if config else None,
        as_of=as_of,
        source=str(source) if source else None,
    )
