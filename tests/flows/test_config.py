"""Configuration files load into typed settings; mistakes name the key."""

import pytest
import yaml

from flows.config import Config, ConfigError, load_config


def test_default_and_demo_configs_load():
    default = load_config()
    demo = load_config("configs/demo.yaml")
    assert isinstance(default, Config)
    assert demo.simulate.accounts < default.simulate.accounts
    assert default.features.horizon_days == 60


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"features": {"horizon_dayz": 30}}))
    with pytest.raises(ConfigError, match=r"features\.horizon_dayz"):
        load_config(bad)


def test_wrong_type_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"simulate": {"accounts": "many"}}))
    with pytest.raises(ConfigError, match=r"simulate\.accounts"):
        load_config(bad)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_overrides_apply_last():
    cfg = load_config("configs/demo.yaml", overrides={"simulate": {"seed": 123}})
    assert cfg.simulate.seed == 123


def test_simulator_and_feature_labels_must_agree(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"features": {"horizon_days": 30}}))
    with pytest.raises(ConfigError, match="horizon_days"):
        load_config(bad)
