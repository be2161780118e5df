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
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


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


@app.command()
def features(
    source: Annotated[
        Path | None, typer.Option(help="directory of Parquet/CSV or a .duckdb file")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="output directory (Parquet by as_of + features.duckdb)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Build point-in-time features and 60-day labels for every snapshot date."""
    from flows.commands import run_features

    _setup_logging()
    run_features(config, source=source, out=out)


@app.command()
def train(
    source: Annotated[Path | None, typer.Option(help="source to train on")] = None,
    config: ConfigOpt = None,
) -> None:
    """Train churn and expansion models + baselines; log to MLflow; update the champion."""
    _setup_logging()
    from flows.train import train_flow

    train_flow(config_path=str(config) if config else None, source=str(source) if source else None)


@app.command()
def calibrate(
    quarter: Annotated[
        str | None, typer.Option(help="quarter the thresholds take effect in, e.g. 2026Q3")
    ] = None,
    source: Annotated[Path | None, typer.Option(help="source holding the matured outcomes")] = None,
    config: ConfigOpt = None,
) -> None:
    """Refit calibrators and alert thresholds on the outcomes matured last quarter."""
    _setup_logging()
    from flows.calibrate import calibrate_flow

    calibrate_flow(
        quarter=quarter,
        config_path=str(config) if config else None,
        source=str(source) if source else None,
    )


@app.command()
def score(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="scoring date (default: end of the data)")
    ] = None,
    source: Annotated[Path | None, typer.Option(help="source to score")] = None,
    config: ConfigOpt = None,
) -> None:
    """Score every active account: probabilities, reasons, segment, coverage, report."""
    _setup_logging()
    from flows.score import score_flow

    score_flow(
        as_of=as_of,
        config_path=str(config) if config else None,
        source=str(source) if source else None,
    )


@app.command()
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="demo configuration")] = Path(
        "configs/demo.yaml"
    ),
) -> None:
    """Run the whole pipeline on a generated book: simulate, validate, features, train, calibrate, score."""
    _setup_logging()
    from flows.demo import demo_flow

    demo_flow(config_path=str(config))


@app.command()
def serve(
    config: ConfigOpt = None,
) -> None:
    """Serve the scheduled deployments (weekly scoring, monthly training, quarterly calibration).

    Needs a Prefect API: start one with `prefect server start` in another terminal and
    set PREFECT_API_URL, or use `prefect deploy` with prefect.yaml and a work pool.
    """
    _setup_logging()
    from flows.deployments import serve_all

    serve_all(config_path=str(config) if config else None)


from flows.cli_rebalance import rebalance as _rebalance  # noqa: E402

app.command(name="rebalance")(_rebalance)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
