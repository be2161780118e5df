"""The `nrrcast` command line: thin commands that compose the libraries and flows."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    help="nrrcast: churn and expansion prediction for B2B SaaS customer success.",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML on top of configs/default.yaml")
]


def _setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "httpcore", "alembic", "mlflow.store.db.utils"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the temporary Prefect server can be slow to start on a busy 2-core machine
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")


@app.command()
def simulate(
    accounts: Annotated[int | None, typer.Option(help="number of accounts")] = None,
    months: Annotated[int | None, typer.Option(help="months of history")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed")] = None,
    out: Annotated[Path | None, typer.Option(help="output directory (contract tables)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Generate a synthetic SaaS book (contract tables + `truth`) and print its realism summary."""
    from flows.commands import run_simulate

    _setup_logging()
    run_simulate(config, accounts=accounts, months=months, seed=seed, out=out)


@app.command()
def validate(
    source: Annotated[
        Path | None, typer.Option(help="directory of Parquet/CSV or a .duckdb file")
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="where set-aside rows are written")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Check a source against the input contract; quarantine bad rows with reasons."""
    from flows.commands import run_validate

    _setup_logging()
    ok = run_validate(config, source=source, quarantine=quarantine)
    raise typer.Exit(code=0 if ok else 1)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
