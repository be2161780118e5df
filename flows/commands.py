"""Command implementations behind the CLI: read the config once, call the libraries."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path

from flows.config import Config, engine_overrides, load_config

log = logging.getLogger("nrrcast")


def _config(path: Path | None) -> Config:
    return load_config(path)


def run_simulate(
    config: Path | None,
    *,
    accounts: int | None = None,
    months: int | None = None,
    seed: int | None = None,
    out: Path | None = None,
) -> dict:
    """Generate a world and print its realism summary as JSON."""
    from simulator import simulate

    cfg = _config(config)
    sim = cfg.simulate.model_copy(
        update={
            k: v
            for k, v in {"accounts": accounts, "months": months, "seed": seed}.items()
            if v is not None
        }
    )
    out_dir = Path(out or cfg.paths.raw)
    log.info(
        "simulating %d accounts x %d months (seed %d) into %s",
        sim.accounts,
        sim.months,
        sim.seed,
        out_dir,
    )
    summary = simulate(sim, out_dir).as_dict()
    print(json.dumps(summary, indent=2, default=str))
    return summary


def run_validate(
    config: Path | None,
    *,
    source: Path | str | None = None,
    quarantine: Path | None = None,
    data_end: date | str | None = None,
) -> bool:
    """Validate a source, write the quarantine and print the summary; True when usable.

    The data's end follows the one rule (manifest.json, else `data_end`, else inferred);
    rows on or after it are quarantined exactly as the other commands do.
    """
    from features.sources import open_source
    from features.sql_source import source_arg
    from features.validate import validate_until
    from flows.tasks import require_events

    cfg = _config(config)
    src_path = source_arg(source or cfg.paths.raw)
    with open_source(src_path) as src:
        report, _ = validate_until(
            src,
            option=data_end,
            today=date.today(),
            quarantine_dir=Path(quarantine or cfg.paths.quarantine),
            floor=cfg.features.data_floor,
        )
        print(report.summary())
        if report.ok:
            require_events(src.con, src_path)
    return report.ok


def run_features(
    config: Path | None,
    *,
    source: Path | str | None = None,
    out: Path | None = None,
    data_end: date | str | None = None,
    engine: str | None = None,
) -> Path:
    """Validate a source and write its whole snapshot panel (labelled and not) to `out`.

    `engine` ("duckdb" or "spark") overrides the config's ``features.engine``."""
    from features.build import build_feature_table, check_feature_out, write_feature_table
    from flows.tasks import open_validated, panel_dates, validation_args

    cfg = load_config(config, engine_overrides(engine))
    args = validation_args(cfg, source, data_end)
    out_path = check_feature_out(out or cfg.paths.features, source=args["source"])  # first
    loaded = open_validated(**args)
    with loaded.source:
        dates = panel_dates(cfg, loaded, include_unlabelled=True)
        table = build_feature_table(
            loaded.source.con, dates, cfg.features, data_end=loaded.data_end
        )
        path = write_feature_table(table, out_path)
    labelled = int(table["label_known"].sum())
    print(
        f"{len(table):,} rows ({labelled:,} labelled) x {table.shape[1]} columns over "
        f"{len(dates)} as_of dates ({dates[0]} .. {dates[-1]}), data_end {loaded.data_end} "
        f"({loaded.data_end_from}) -> {path}"
    )
    return path
