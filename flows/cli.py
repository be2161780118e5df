"""The `nrrcast` command line: thin commands that compose the libraries and flows.

One error boundary (`ErrorBoundary.invoke`) turns the errors nrrcast expects (bad input,
config, contract, missing model, lock held, a path that does not exist) into one line on
stderr saying what, where and what to do, and an exit code: 2 for usage and input errors,
1 for failed checks and states that do not allow the run. ``nrrcast --debug <command>``
shows the traceback instead. Anything unexpected keeps its traceback.
"""

from __future__ import annotations

import enum
import errno
import logging
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from features.errors import InputError, NrrcastError, PathNotFoundError
from flows.cli_models import register as register_model_commands
from flows.prefect_logging import setup_console

_STATE = {"debug": False}

# OSErrors a user can fix (where the message names the path): one line, no traceback
_USER_OS_ERRORS = {
    errno.ENOENT: 2,
    errno.ENOTDIR: 2,
    errno.EISDIR: 2,
    errno.EACCES: 2,
    errno.EPERM: 2,
    errno.EROFS: 2,
    errno.ENOSPC: 1,
    errno.EDQUOT: 1,
}


def explain(exc: BaseException) -> tuple[str, int] | None:
    """The one line and exit code for an expected error; None for anything else (a bug)."""
    if isinstance(exc, NrrcastError):
        line = exc.message.strip()
        if exc.hint:
            line = f"{line}\n  -> {exc.hint}" if "\n" in line else f"{line} -> {exc.hint}"
        return line, exc.exit_code
    if isinstance(exc, OSError) and exc.errno in _USER_OS_ERRORS:
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", _USER_OS_ERRORS[exc.errno]
    return None


class ErrorBoundary(TyperGroup):
    """The CLI group: every command runs inside one boundary for expected errors."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            typer.echo("nrrcast: interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            found = explain(exc)
            if found is None or _STATE["debug"]:
                raise
            line, code = found
            typer.echo(f"nrrcast: error: {line}", err=True)
            raise typer.Exit(code) from None


app = typer.Typer(
    cls=ErrorBoundary,
    help="nrrcast: churn and expansion prediction for B2B SaaS customer success.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML on top of configs/default.yaml")
]
DataEndOpt = Annotated[
    str | None,
    typer.Option(
        "--data-end",
        metavar="YYYY-MM-DD",
        help="first day the data does not cover (the extraction date). Rule: manifest.json "
        "beside the tables, else this option, else the day after the latest timestamp",
    ),
]


@app.callback()
def _global(
    debug: Annotated[
        bool, typer.Option("--debug", help="show the full traceback of an expected error")
    ] = False,
) -> None:
    """nrrcast: churn and expansion prediction for B2B SaaS customer success."""
    _STATE["debug"] = debug


class _HideExpectedTracebacks(logging.Filter):
    """Without --debug, drop Prefect's error records (with tracebacks) about expected errors:
    the boundary prints the one line the user needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _STATE["debug"] or not record.name.startswith("prefect"):
            return True
        if record.levelno < logging.ERROR:
            # the run's final state repeats the error the boundary prints
            return not record.getMessage().startswith("Finished in state Failed(")
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            return explain(exc) is None
        # "Finished in state Failed(...)" and similar lines name the error only in text
        text = record.getMessage()
        return not ("Failed(" in text or "failed with exception" in text.lower())


class Engine(enum.StrEnum):
    """Relational engine of validation and features."""

    duckdb = "duckdb"
    spark = "spark"


EngineOpt = Annotated[
    Engine | None,
    typer.Option("--engine", help="duckdb (embedded) or spark (same SQL; config features.engine)"),
]


def _quiet_prefect() -> None:
    """Attach the traceback filter to the loggers Prefect reports run failures on.

    Logger filters (unlike handler filters) survive Prefect reconfiguring its handlers
    when the temporary server starts.
    """
    for name in ("prefect.flow_runs", "prefect.task_runs", "prefect.flow_engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _HideExpectedTracebacks) for f in logger.filters):
            logger.addFilter(_HideExpectedTracebacks())


def _preflight(config: Path | None, source: Path | str | None = None) -> Any:
    """Load the config and check the source exists before any flow (and Prefect) starts."""
    from features.sql_source import is_sql_url, parse_url
    from flows.config import load_config

    cfg = load_config(config)
    if is_sql_url(str(source or cfg.paths.raw)):  # a database: its scheme is checked here,
        parse_url(str(source or cfg.paths.raw))  # the connection when the source is opened
        return cfg
    path = Path(source or cfg.paths.raw)
    url = re.match(r"([A-Za-z][A-Za-z0-9+.-]*):/", str(path))  # Path() folds '://' to ':/'
    if url and not path.exists():
        raise InputError(
            f"{url.group(1)}:// sources are not supported (no database scanner offline)",
            hint="export the tables to Parquet, CSV or a DuckDB file",
        )
    if not path.exists():
        raise PathNotFoundError(
            f"source not found: {path}",
            hint="pass --source with a directory of Parquet/CSV tables or a DuckDB file",
        )
    return cfg


def _quarter(value: str) -> None:
    """A quarter like 2026Q3, checked before any work starts."""
    from evaluation.thresholds import quarter_bounds

    try:
        quarter_bounds(value)
    except ValueError:
        raise InputError(f"--quarter {value!r} is not a quarter (expected e.g. 2026Q3)") from None


def _day(value: str | None, option: str) -> str | None:
    """An option holding a date, checked at the edge: ISO text for the flows."""
    if value is None:
        return None
    from features.data_end import parse_day

    return parse_day(value, option).isoformat()


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

    setup_console()
    run_simulate(config, accounts=accounts, months=months, seed=seed, out=out)


@app.command()
def validate(
    source: Annotated[
        str | None,
        typer.Option(help="directory of Parquet/CSV, a .duckdb file or a postgresql:// URL"),
    ] = None,
    quarantine: Annotated[
        Path | None, typer.Option(help="where set-aside rows are written")
    ] = None,
    config: ConfigOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Check a source against the input contract; quarantine bad rows with reasons."""
    from flows.commands import run_validate

    setup_console()
    _preflight(config, source)
    ok = run_validate(
        config, source=source, quarantine=quarantine, data_end=_day(data_end, "--data-end")
    )
    raise typer.Exit(code=0 if ok else 1)


@app.command()
def features(
    source: Annotated[
        str | None,
        typer.Option(help="directory of Parquet/CSV, a .duckdb file or a postgresql:// URL"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="output directory (Parquet by as_of + features.duckdb)")
    ] = None,
    config: ConfigOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Build point-in-time features and 60-day labels for every snapshot date."""
    from flows.commands import run_features

    setup_console()
    _preflight(config, source)
    run_features(
        config,
        source=source,
        out=out,
        data_end=_day(data_end, "--data-end"),
        engine=engine and engine.value,
    )


@app.command()
def train(
    source: Annotated[str | None, typer.Option(help="source to train on (path or URL)")] = None,
    config: ConfigOpt = None,
    data_end: DataEndOpt = None,
    force: Annotated[
        bool, typer.Option(help="promote even if the champion cannot be evaluated")
    ] = False,
    engine: EngineOpt = None,
) -> None:
    """Train churn and expansion models + baselines; log to MLflow; update the champion."""
    setup_console()
    _preflight(config, source)
    end = _day(data_end, "--data-end")
    _quiet_prefect()
    from flows.train import train_flow

    train_flow(
        config_path=str(config) if config else None,
        source=str(source) if source else None,
        data_end=end,
        force=force,
        engine=engine and engine.value,
    )


@app.command()
def calibrate(
    quarter: Annotated[
        str | None, typer.Option(help="quarter the thresholds take effect in, e.g. 2026Q3")
    ] = None,
    source: Annotated[
        str | None, typer.Option(help="source holding the matured outcomes (path or URL)")
    ] = None,
    config: ConfigOpt = None,
    data_end: DataEndOpt = None,
) -> None:
    """Refit calibrators and alert thresholds on the outcomes matured last quarter."""
    setup_console()
    _preflight(config, source)
    end = _day(data_end, "--data-end")
    if quarter is not None:
        _quarter(quarter)
    _quiet_prefect()
    from flows.calibrate import calibrate_flow

    calibrate_flow(
        quarter=quarter,
        config_path=str(config) if config else None,
        source=str(source) if source else None,
        data_end=end,
    )


@app.command()
def score(
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="scoring date (default: end of the data)")
    ] = None,
    source: Annotated[str | None, typer.Option(help="source to score (path or URL)")] = None,
    freshness: Annotated[
        str | None,
        typer.Option(
            help="data end not after the last scoring run's: refuse, warn or off "
            "(default: scoring.freshness)"
        ),
    ] = None,
    config: ConfigOpt = None,
    data_end: DataEndOpt = None,
    engine: EngineOpt = None,
) -> None:
    """Score every active account: probabilities, reasons, segment, coverage, report."""
    setup_console()
    _preflight(config, source)
    day, end = _day(as_of, "--as-of"), _day(data_end, "--data-end")
    _quiet_prefect()
    from flows.score import score_flow

    score_flow(
        as_of=day,
        config_path=str(config) if config else None,
        source=str(source) if source else None,
        data_end=end,
        engine=engine and engine.value,
        freshness=freshness,
    )


@app.command()
def demo(
    config: Annotated[Path, typer.Option("--config", "-c", help="demo configuration")] = Path(
        "configs/demo.yaml"
    ),
) -> None:
    """Run the whole pipeline on a generated book: simulate, validate, features, train, calibrate, score."""
    setup_console()
    from flows.config import load_config

    load_config(config)
    _quiet_prefect()
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
    setup_console()
    _quiet_prefect()
    from flows.deployments import serve_all

    serve_all(config_path=str(config) if config else None)


from flows.cli_rebalance import rebalance as _rebalance  # noqa: E402

app.command(name="rebalance")(_rebalance)

register_model_commands(app)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
