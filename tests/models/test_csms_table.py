"""The optional csms table is validated like every other table of the contract."""

from __future__ import annotations

import pandas as pd

from tests.features.test_validate import _problem, _validate, world


def _csms() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "csm_id": ["csm-1", "csm-2", "csm-2", None],
            "name": ["Ada Lovelace", '=HYPERLINK("x")', "Grace Hopper", "Nobody"],
            "email": ["ada@example.com", None, "grace@example.com", None],
            "capacity": pd.array([25, -3, 30, 10], dtype="Int64"),
        }
    )


def test_csms_rows_are_checked_and_kept_as_text(tmp_path):
    tables = {**world(), "csms": _csms()}
    src, report = _validate(tables, tmp_path)
    assert _problem(report, "csms", "csm_id", "null").rows == 1
    assert _problem(report, "csms", "capacity", "").action == "warning"  # set to NULL, row kept
    dup = [p for p in report.problems if p.table == "csms" and "duplicate" in p.problem]
    assert dup and dup[0].rows == 1
    rows = src.con.execute("SELECT csm_id, name, capacity FROM csms ORDER BY csm_id").fetchall()
    assert [r[0] for r in rows] == ["csm-1", "csm-2"]
    assert rows[0] == ("csm-1", "Ada Lovelace", 25)


def test_a_source_without_csms_is_fine(tmp_path):
    src, report = _validate(world(), tmp_path)
    assert not [p for p in report.problems if p.table == "csms" and p.action != "info"]


def test_csm_capacity_sets_the_high_touch_seats():
    from models.segment import CoverageConfig, high_touch_capacity

    scored = pd.DataFrame(
        {
            "csm_id": ["a", "a", "b", "c", None],
            "csm_capacity": [10.0, 10.0, None, 50.0, None],
        }
    )
    assert high_touch_capacity(scored, CoverageConfig(accounts_per_csm=25)) == (3, 85)
    assert high_touch_capacity(scored.drop(columns="csm_capacity"), CoverageConfig()) == (3, 75)
