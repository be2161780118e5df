"""Territory and simulator settings have one source: configs/default.yaml and features.names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import features.config_source as source
import models.territories
from features.config_source import default_section
from features.errors import ConfigError
from features.names import COVERAGE_LEVELS, STAGES
from flows.config import load_config
from models.territory_config import MigrationConfig, TerritoryConfig
from simulator import catalog
from simulator.config import SimConfig

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def edited_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Make the loader read a copy of configs/default.yaml with some lines replaced."""

    def edit(*replacements: tuple[str, str]) -> None:
        text = (ROOT / "configs" / "default.yaml").read_text()
        for old, new in replacements:
            assert text.count(old) == 1, old
            text = text.replace(old, new)
        copy = tmp_path / "default.yaml"
        copy.write_text(text)
        monkeypatch.setattr(source, "_CHECKOUT", copy)  # the checkout's file is read first
        source._default_tree.cache_clear()

    yield edit
    monkeypatch.undo()
    source._default_tree.cache_clear()


@pytest.mark.parametrize("section", [TerritoryConfig, MigrationConfig], ids=lambda s: s.__name__)
def test_territory_settings_keep_no_default_in_python(section):
    with_default = [name for name, f in section.model_fields.items() if not f.is_required()]
    assert not with_default, f"{section.__name__} keeps Python defaults for {with_default}"
    assert set(default_section(section.yaml_section)) == set(section.model_fields)


def test_the_simulate_section_keys_have_no_second_default_in_python():
    in_yaml = default_section("simulate")
    assert set(in_yaml) <= set(SimConfig.model_fields)
    doubled = [k for k in in_yaml if not SimConfig.model_fields[k].is_required()]
    assert not doubled, f"SimConfig keeps Python defaults next to the YAML's for {doubled}"
    assert SimConfig().model_dump(include=set(in_yaml)) == SimConfig(**in_yaml).model_dump(
        include=set(in_yaml)
    )


def test_defaults_follow_the_file(edited_default):
    edited_default(
        ("  max_moves_per_csm: 6 ", "  max_moves_per_csm: 4 "),
        ("    waves: 3 ", "    waves: 5 "),
        ("  accounts: 20000", "  accounts: 1234"),
    )
    assert TerritoryConfig().max_moves_per_csm == 4
    assert MigrationConfig().waves == 5
    assert TerritoryConfig().plan.waves == 5
    assert SimConfig().accounts == 1234
    assert SimConfig(accounts=9).accounts == 9


def test_a_plan_given_in_part_takes_the_rest_from_the_file():
    cfg = TerritoryConfig(plan={"waves": 2})
    plan = default_section("territories.plan")
    assert cfg.plan.waves == 2
    assert cfg.plan.wave_gap_days == plan["wave_gap_days"]
    assert cfg.plan.templates_dir == plan["templates_dir"]


def test_models_territories_re_exports_the_settings():
    assert models.territories.TerritoryConfig is TerritoryConfig
    assert models.territories.MigrationConfig is MigrationConfig


def test_an_unknown_tier_in_yaml_is_an_error_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"territories": {"tiers": ["high_touch", "premium"]}}))
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "territories.tiers: unknown coverage level 'premium'" in text
    assert ", ".join(COVERAGE_LEVELS) in text


def test_a_coverage_level_added_to_the_names_is_a_valid_tier(monkeypatch):
    with pytest.raises(ValueError, match="unknown coverage level 'premium'"):
        TerritoryConfig(tiers=["premium"])
    monkeypatch.setattr("models.territory_config.COVERAGE_LEVELS", (*COVERAGE_LEVELS, "premium"))
    assert TerritoryConfig(tiers=["premium"]).tiers == ["premium"]


def test_simulator_tier_and_stage_codes_come_from_the_names_in_world_order():
    # generated worlds store codes into these tuples: their order is part of every world
    assert catalog.COVERAGE == ("high_touch", "standard", "digital")
    assert set(catalog.COVERAGE) == set(COVERAGE_LEVELS)
    assert catalog.STAGES is STAGES
    with pytest.raises(ValueError, match="needs positive counts for exactly"):
        SimConfig(accounts_per_csm=dict.fromkeys(("high_touch", "standard"), 5))
