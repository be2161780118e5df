"""Configuration has one source: configs/default.yaml, checked against the registry at load."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import evaluation.config
import features.config
import features.config_source as source
import flows.config
import models.config
import models.segment
from features.catalog import CATALOG
from features.config_source import ConfigSection, default_config_path, default_section
from features.errors import ConfigError
from features.names import COVERAGE_LEVELS, SEGMENTS
from flows.cli import app
from flows.config import Config, load_config
from models.segment import LoadConfig, SegmentConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIG_MODULES = (features.config, models.config, models.segment, evaluation.config, flows.config)


def _sections() -> list[type[ConfigSection]]:
    """Every settings section defined in the modules that own configuration."""
    found = []
    for module in CONFIG_MODULES:
        for obj in vars(module).values():
            if (
                isinstance(obj, type)
                and issubclass(obj, ConfigSection)
                and obj is not ConfigSection
                and obj.__module__ == module.__name__
            ):
                found.append(obj)
    return found


def _bad_config(tmp_path: Path, over: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(over))
    return path


# ----------------------------------------------------------------------------- one source


def test_the_packaged_default_yaml_loads_and_is_what_python_defaults_to():
    assert default_config_path() == ROOT / "configs" / "default.yaml"
    loaded = load_config()
    assert Config() == loaded  # no Python default differs from (or adds to) the file
    assert SegmentConfig() == loaded.segment
    assert loaded.segment.playbooks[0].play == "Support escalation"


def test_the_wheel_carries_the_default_yaml_where_the_loader_looks():
    """features/default.yaml is a link to configs/default.yaml: a wheel packs the file's
    content there, an editable install reads the checkout's file through it (one source, and
    nothing copied into site-packages)."""
    packaged = Path(source.__file__).resolve().parent / "default.yaml"
    assert packaged == source._PACKAGED
    assert packaged.is_symlink() and packaged.resolve() == ROOT / "configs" / "default.yaml"
    assert default_config_path().resolve() == ROOT / "configs" / "default.yaml"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "force-include" not in pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]


def test_the_packaged_copy_is_read_outside_a_checkout(tmp_path, monkeypatch):
    copy = tmp_path / "default.yaml"
    text = (ROOT / "configs" / "default.yaml").read_text()
    copy.write_text(text.replace("at_risk: 1.5", "at_risk: 2.5"))
    monkeypatch.setattr(source, "_PACKAGED", copy)
    monkeypatch.setattr(source, "_CHECKOUT", tmp_path / "no-checkout" / "default.yaml")
    source._default_tree.cache_clear()
    try:
        assert default_config_path() == copy
        assert LoadConfig().at_risk == 2.5
    finally:
        monkeypatch.undo()
        source._default_tree.cache_clear()
    assert LoadConfig().at_risk == 1.5


@pytest.mark.parametrize("section", _sections(), ids=lambda s: s.__name__)
def test_no_default_value_is_left_in_python(section):
    with_default = [name for name, f in section.model_fields.items() if not f.is_required()]
    assert not with_default, f"{section.__name__} keeps Python defaults for {with_default}"
    in_yaml = default_section(section.yaml_section)
    assert set(in_yaml) == set(section.model_fields), section.yaml_section


def test_no_play_or_weight_is_typed_in_python_sources():
    seg = default_section("segment")
    words = {r["play"] for r in seg["playbooks"]} | {f["play"] for f in seg["fallback"].values()}
    words |= {step for d in seg["playbook_details"].values() for step in d["steps"]}
    words |= {d["success"] for d in seg["playbook_details"].values()}
    for module in (models.segment, models.config, features.config):
        tree = ast.parse(Path(module.__file__).read_text())
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
        assert not words & strings, f"{module.__name__}: {sorted(words & strings)[:3]}"
    numbers = {
        n.value
        for n in ast.walk(ast.parse(Path(models.segment.__file__).read_text()))
        if isinstance(n, ast.Constant) and isinstance(n.value, float)
    }
    assert not {1.25, 0.75, 0.05} & numbers  # load weights of configs/default.yaml


def test_a_section_left_out_is_filled_from_the_file_and_a_given_one_replaces_it():
    cfg = SegmentConfig(load={"coverage": dict.fromkeys(COVERAGE_LEVELS, 1.0)})
    assert cfg.load.segment == default_section("segment.load")["segment"]
    assert cfg.load.coverage == dict.fromkeys(COVERAGE_LEVELS, 1.0)
    with pytest.raises(ValueError, match=r"load\.coverage lacks weights for \['standard'\]"):
        LoadConfig(coverage={"high_touch": 1.0, "digital": 0.1})


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    ("over", "key", "bad", "valid"),
    [
        (
            {"playbooks": [{"play": "Adoption plan", "target": "churn",
                            "features": ["features_used_30d", "feature_used_30d"], "why": "w"}]},
            "segment.playbooks.0.features", "'feature_used_30d'", "features_used_30d",
        ),
        (
            {"fallback": {**default_section("segment")["fallback"],
                          "moonshot": {"play": "Adoption plan", "why": "w"}}},
            "segment.fallback", "'moonshot'", ", ".join(SEGMENTS),
        ),
        (
            {"load": {"segment": {**dict.fromkeys(SEGMENTS, 1.0), "acelerate": 1.0}}},
            "segment.load.segment", "'acelerate'", ", ".join(SEGMENTS),
        ),
        (
            {"load": {"coverage": {**dict.fromkeys(COVERAGE_LEVELS, 1.0), "premium": 2.0}}},
            "segment.load.coverage", "'premium'", ", ".join(COVERAGE_LEVELS),
        ),
        (
            {"coverage": {"digital_segments": ["prove_valeu"]}},
            "segment.coverage.digital_segments", "'prove_valeu'", ", ".join(SEGMENTS),
        ),
        ({"playbook_min_band": "urgent"}, "segment.playbook_min_band", "'urgent'", "low, medium"),
    ],
    ids=["feature", "fallback-segment", "load-segment", "load-coverage", "digital", "band"],
)  # fmt: skip
def test_an_unknown_name_in_the_segment_yaml_is_an_error_naming_it(tmp_path, over, key, bad, valid):
    with pytest.raises(ConfigError) as err:
        load_config(_bad_config(tmp_path, {"segment": over}))
    text = str(err.value)
    assert f"{key}: unknown" in text and bad in text and valid in text
    assert "(got " not in text  # the registry's line, not a dump of the section


def test_unknown_names_elsewhere_are_errors_naming_them(tmp_path):
    bad_target = {"segment": {"playbooks": [
        {"play": "Plan upgrade", "target": "upsell", "features": ["usage_vs_limit_30d"], "why": "w"}
    ]}}  # fmt: skip
    with pytest.raises(ConfigError, match=r"segment\.playbooks\.0\.target: .*'upsell'.*churn"):
        load_config(_bad_config(tmp_path, bad_target))
    maturity = {"features": {"maturity": {"builder": {"ai_share_30d": 0.05}}}}
    with pytest.raises(ConfigError, match=r"features\.maturity\.builder: unknown feature"):
        load_config(_bad_config(tmp_path, maturity))
    health = {"models": {"baselines": {"health": {"weights": {"churn": {"logins": 1.0}}}}}}
    with pytest.raises(ConfigError, match=r"health\.weights\.churn: unknown feature 'logins'"):
        load_config(_bad_config(tmp_path, health))
    with pytest.raises(ConfigError, match=r"models\.targets: unknown target 'upsell'"):
        load_config(_bad_config(tmp_path, {"models": {"targets": {"upsell": "label_upsell"}}}))


def test_every_default_name_is_in_the_registry():
    cfg = load_config()
    assert {f for r in cfg.segment.playbooks for f in r.features} <= set(CATALOG)
    assert set(cfg.segment.fallback) == set(SEGMENTS)


def test_the_cli_says_the_bad_name_in_one_line(tmp_path):
    bad = _bad_config(tmp_path, {"segment": {"load": {"segment": {"acelerate": 1.0}}}})
    result = CliRunner().invoke(app, ["demo", "--config", str(bad)])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("nrrcast: error: invalid configuration in")
    assert lines[1].strip().startswith("segment.load.segment: unknown segment 'acelerate'")
    assert "Traceback" not in result.output
