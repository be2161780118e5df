"""The feature registry (features.catalog) is the one place a feature is defined.

Every registered feature is built, with values its unit allows; every column of the
feature table is registered; the builders' aggregates and the entries' SQL, source columns
and optional data agree; adding a feature is one entry; and the libraries do not re-type
feature names outside the registry (a scan with a short reviewed allowlist).
"""

from __future__ import annotations

import ast
import math
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_fixtures import connect, random_world

from features import catalog
from features.build import ID_COLUMNS, NEEDED, build_feature_table
from features.catalog import (
    ALIASES,
    CATALOG,
    MEASURES,
    OPTIONAL_DATA,
    feature_names,
    select_list,
)
from features.contract import TABLES
from features.feature_spec import FeatureSpec, Measure
from features.labels import LABEL_COLUMNS
from features.snapshots import observation_dates
from tests.features.test_catalog import NOUN_UNITS

ROOT = Path(__file__).resolve().parents[2]
DATES = observation_dates("2025-04-01", "2025-07-01")
DATA_END = date(2025, 7, 20)


@pytest.fixture(scope="module")
def world() -> dict[str, pd.DataFrame]:
    return random_world(3, accounts=8)


@pytest.fixture(scope="module")
def table(world) -> pd.DataFrame:
    return build_feature_table(connect(world), DATES, data_end=DATA_END, progress=False)


# ----------------------------------------------------------------------------- the table


def test_every_column_of_the_table_is_registered_and_in_registry_order(table):
    names = feature_names()
    assert list(table.columns) == [*ID_COLUMNS, *names, "maturity_stage", *LABEL_COLUMNS]
    for name in names:
        assert table[name].dtype == np.float64, name


def test_values_agree_with_the_registered_units(table):
    checked = 0
    for name, spec in CATALOG.items():
        x = table[name].dropna().to_numpy()
        if spec.unit in NOUN_UNITS | {"share", "ratio", "usd"}:
            assert (x >= 0).all(), (name, x.min())
        elif spec.unit == "pct_change":
            assert (x >= -1).all(), (name, x.min())
        elif spec.unit == "csat":
            assert ((x >= 1) & (x <= 5)).all(), name
        elif spec.unit == "level":
            assert set(np.unique(x)) <= {0.0, 1.0, 2.0}, name
        elif spec.unit.startswith("delta_"):
            assert (x * 2 == np.round(x * 2)).all(), name  # counts or half-counts
        else:
            raise AssertionError(f"{name}: unit {spec.unit!r} has no check")
        checked += len(x) > 0
    assert checked >= len(CATALOG) - 3  # the random book fills nearly every feature


def test_every_sentence_renders_for_the_built_values(table):
    for name, spec in CATALOG.items():
        assert set(re.findall(r"{(\w+)}", spec.template)) <= {"value", "change", "pct"}, name
        for value in [*table[name].drop_duplicates().head(5), float("nan")]:
            text = spec.sentence(value)
            assert text and "{" not in text and "}" not in text, (name, text)
            assert text[0].isupper() or text[0].isdigit() or text[0] in "+-$", (name, text)
            if isinstance(value, float) and math.isnan(value):
                assert text == f"{spec.label}: not available"


# ----------------------------------------------------------------------------- the entries

_REF = re.compile(r"\b([a-z]+)\.([a-z_0-9]+)\b")


def test_feature_sql_reads_only_registered_aggregates():
    tables = {alias: table for table, alias in ALIASES.items()}
    read: set[str] = set()
    for name, spec in CATALOG.items():
        if not spec.sql:
            assert name == "maturity_level"  # computed after the SQL (features.maturity)
            continue
        for alias, column in _REF.findall(spec.sql):
            assert alias in tables, (name, alias)
            source = tables[alias]
            if source == "accounts":
                assert column in TABLES["accounts"].column_names, (name, column)
            elif column != "as_of":
                assert column in MEASURES, (name, f"{alias}.{column}")
                assert MEASURES[column].table == source, (name, f"{alias}.{column}")
                read.add(column)
    assert set(MEASURES) == read, f"aggregates no feature reads: {set(MEASURES) - read}"


def test_aggregates_are_unique_and_render():
    listed = [m for s in CATALOG.values() for m in s.measures] + list(catalog.SHARED_MEASURES)
    assert len(listed) == len(MEASURES), "two aggregates share a column name"
    for m in listed:
        assert m.table in ALIASES and m.table != "accounts", m
    assert "AS arr_expansions_12m" in select_list("arr_hist", {"steps": 3})
    with pytest.raises(KeyError, match="no registered measure"):
        select_list("nowhere")


def test_sources_and_optional_data_are_those_of_the_contract():
    for name, spec in CATALOG.items():
        assert spec.needs, f"{name}: no source column"
        for col in spec.needs:
            table, column = col.split(".")
            assert column in NEEDED[table], (name, col)
        assert set(spec.optional) <= set(OPTIONAL_DATA), name
        assert spec.healthier in (-1, 0, 1), name
        assert not spec.gap or not spec.gap.endswith("."), name
    used = {k for s in CATALOG.values() for k in s.optional}
    assert used == set(OPTIONAL_DATA)
    for key, data in OPTIONAL_DATA.items():
        assert bool(data.first) != bool(data.scan), key  # one way to find when it appears
        assert data.first.startswith("SELECT ") or data.scan in ("first_agent", "first_ai"), key


# ----------------------------------------------------------------------------- one entry


def test_adding_a_feature_is_one_entry(world, monkeypatch):
    """A new entry (its aggregate, expression and text) is built, sorted and left out
    like the others, with no other edit."""
    spec = FeatureSpec(
        name="tickets_7d",
        description="Support tickets opened in the last 7 days.",
        unit="tickets",
        template="{value} opened in the last 7 days",
        group="support",
        healthier=-1,
        sql="COALESCE(t.tickets_7d, 0)",
        measures=(
            Measure("tickets_asof", "tickets_7d", "SUM(CASE WHEN t.created_at >= a.d7 THEN 1 END)"),
        ),
        needs=("tickets.created_at",),
        optional=("tickets",),
    )
    monkeypatch.setitem(catalog.CATALOG, spec.name, spec)
    monkeypatch.setitem(catalog.MEASURES, "tickets_7d", spec.measures[0])
    built = build_feature_table(connect(world), DATES, data_end=DATA_END, progress=False)
    assert "tickets_7d" in built.columns

    t = world["tickets"]
    expected = []
    for a, as_of in zip(built["account_id"], built["as_of"], strict=True):
        created = t.loc[t["account_id"] == a, "created_at"]
        expected.append(
            float(((created >= as_of - pd.Timedelta(days=7)) & (created < as_of)).sum())
        )
    first_ticket = t["created_at"].min().floor("D")
    expected = np.where(built["as_of"] <= first_ticket, np.nan, expected)
    np.testing.assert_array_equal(built["tickets_7d"].to_numpy(), expected)
    assert built["tickets_7d"].sum() > 0
    assert spec.sentence(2.0) == "2 tickets opened in the last 7 days"


# ----------------------------------------------------------------------------- re-typing

LIBRARIES = ("features", "models", "evaluation")
SAME_AS_SOURCE = {"seats", "tam_usd", "users", "arr"}
"""Feature names that are also input columns or tables (or the labels' and scores' ARR):
in the libraries they mostly name those, so the scan does not look for them."""
ALLOWED: dict[str, set[str]] = {
    "features/build.py": {"maturity_level"},  # filled after the SQL by features.maturity
    "features/maturity.py": {"maturity_level"},  # its output column
    "features/renewals.py": {"days_to_renewal"},  # the registry's aggregate, read on its own
    "models/scoring.py": {"maturity_level", "whitespace"},  # columns of the scores table
    "models/segment.py": {"maturity_level", "whitespace"},  # read from the scored rows
    "models/territories.py": {"days_to_renewal"},  # the renewals frame's column
    "models/territory_plan.py": {"days_to_renewal"},
    "evaluation/report/payload.py": {"whitespace"},  # the scores table's column
    "evaluation/report/prepare.py": {"whitespace"},
}
"""Reviewed exceptions, exact: a name no longer spelled out must leave the list."""


def _strings(tree: ast.AST) -> list[str]:
    """String constants that are not docstrings (bare string statements)."""
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
    return [
        n.value
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def retyped_names(root: Path = ROOT) -> dict[str, set[str]]:
    """Library file -> feature names its code (not its docstrings) spells out."""
    names = [n for n in CATALOG if n not in SAME_AS_SOURCE]
    words = {n: re.compile(rf"(?<![A-Za-z0-9_]){re.escape(n)}(?![A-Za-z0-9_])") for n in names}
    found: dict[str, set[str]] = {}
    for folder in LIBRARIES:
        for path in sorted((root / folder).rglob("*.py")):
            rel = path.relative_to(root).as_posix()
            for text in _strings(ast.parse(path.read_text())):
                for n in names:
                    # a bare word ("penetration") only as the whole string
                    if text == n or ("_" in n and words[n].search(text)):
                        found.setdefault(rel, set()).add(n)
    return found


def test_feature_names_are_not_retyped_outside_the_registry():
    found = retyped_names()
    assert "csat_90d" in found.pop("features/catalog.py")  # the scan sees the registry itself
    extra = {
        p: sorted(n - ALLOWED.get(p, set())) for p, n in found.items() if n - ALLOWED.get(p, set())
    }
    assert extra == {}, (
        "feature names spelled out outside features/catalog.py; read them from the registry "
        f"(CATALOG, feature_names(group), MEASURES) or add a reviewed line to ALLOWED: {extra}"
    )
    stale = {
        p: sorted(n - found.get(p, set())) for p, n in ALLOWED.items() if n - found.get(p, set())
    }
    assert stale == {}, f"ALLOWED lists names these files no longer spell out; remove them: {stale}"
