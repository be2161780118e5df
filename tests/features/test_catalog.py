"""The feature catalogue: one complete entry per model feature, readable sentences."""

from __future__ import annotations

import re

import pytest

from features.catalog import CATALOG, GROUPS, FeatureSpec, catalog_frame, feature_names

NOUN_UNITS = {
    "days",
    "events",
    "users",
    "features",
    "tickets",
    "runs",
    "months",
    "departments",
    "admins",
    "seats",
    "units",
}
UNITS = NOUN_UNITS | {
    "share",
    "pct_change",
    "usd",
    "ratio",
    "csat",
    "level",
    "delta_features",
    "delta_tickets",
}


def test_every_feature_has_a_complete_entry():
    names = feature_names()
    assert len(names) == len(set(names)) == len(CATALOG)
    for name in names:
        spec = CATALOG[name]
        assert spec.name == name
        assert spec.group in GROUPS, name
        assert spec.unit in UNITS, (name, spec.unit)
        assert len(spec.description) > 20 and spec.description.endswith("."), name
        assert set(re.findall(r"{(\w+)}", spec.template)) <= {"value", "change", "pct"}, name
        assert re.findall(r"{(\w+)}", spec.template), f"{name}: template has no placeholder"


def test_groups_cover_the_signals():
    for group in GROUPS:
        assert feature_names(group), group
    with pytest.raises(ValueError, match="unknown group"):
        feature_names("nope")


@pytest.mark.parametrize(
    "name,value,expected",
    [
        (
            "active_users_trend_30d",
            -0.35,
            "Active users fell 35% in the last 30 days compared with the 30 days before",
        ),
        (
            "login_decay",
            0.5,
            "Logins rose 50% in the last 30 days compared with the two months before",
        ),
        (
            "events_trend_30d",
            0.0,
            "Usage did not change in the last 30 days compared with the 30 days before",
        ),
        ("active_users_30d", 1.0, "1 user active in the last 30 days"),
        ("active_users_30d", 12.0, "12 users active in the last 30 days"),
        ("seat_utilization_30d", 0.84, "84% of purchased seats were in use over the last 30 days"),
        (
            "features_used_change_30d",
            -3.0,
            "Features in use fell by 3 features in the last 30 days",
        ),
        ("tickets_trend_30d", 1.0, "Support tickets rose by 1 ticket a month in the last 30 days"),
        ("arr", 48_200.0, "ARR is $48k"),
        ("whitespace", 1_250_000.0, "Whitespace still to capture is $1.2M"),
        ("csat_90d", 3.44, "Support satisfaction averaged 3.4 out of 5 over the last 90 days"),
        ("maturity_level", 2.0, "AI maturity stage is Transformer"),
        ("days_to_renewal", 12.0, "Renewal is due in 12 days"),
        (
            "depth_breadth_ratio_30d",
            1.2345,
            "Depth per feature used was 1.23 events per user in the last 30 days",
        ),
    ],
)
def test_sentences(name, value, expected):
    assert CATALOG[name].sentence(value) == expected


def test_sentence_with_contribution_and_missing_value():
    spec = CATALOG["open_tickets"]
    assert spec.sentence(3, contribution=0.4).endswith("(pushes the prediction up)")
    assert spec.sentence(3, contribution=-0.4).endswith("(pushes the prediction down)")
    assert spec.sentence(3, contribution=0.0) == "3 tickets open"
    assert spec.sentence(float("nan")) == "Open tickets: not available"
    assert spec.sentence(None) == "Open tickets: not available"


def test_every_template_renders_for_typical_values():
    for spec in CATALOG.values():
        for value in (-1.5, -0.2, 0.0, 0.5, 1.0, 7.0, 12345.678):
            text = spec.sentence(value)
            assert "{" not in text and "}" not in text and not text[0].islower(), (spec.name, text)


def test_catalog_frame():
    df = catalog_frame()
    assert list(df["name"]) == feature_names()
    assert list(df.columns) == ["name", "group", "unit", "description", "template"]


def test_spec_is_immutable():
    spec = CATALOG["arr"]
    assert isinstance(spec, FeatureSpec)
    with pytest.raises(AttributeError):
        spec.unit = "x"  # type: ignore[misc]
