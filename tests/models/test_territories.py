"""Territory rebalancing on small hand-made books: every rule, both methods."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from models.territories import TerritoryConfig, check_roster, constraint_violations, rebalance

AS_OF = date(2026, 9, 1)
METHODS = ["milp", "greedy"]


def book(rows: list[tuple]) -> pd.DataFrame:
    """(account_id, csm_id, current, recommended, at_risk, days_to_renewal) per row."""
    frame = pd.DataFrame(
        rows,
        columns=["account_id", "csm_id", "coverage_current", "coverage_recommended",
                 "at_risk", "days_to_renewal"],
    )  # fmt: skip
    frame["segment"] = "efficient_expansion"  # weight 1.0: loads are plain sums of tiers
    frame["as_of"] = pd.Timestamp(AS_OF)
    return frame


def std(n: int, csm: str, *, start: int = 0, at_risk=False, days=300.0) -> list[tuple]:
    return [(f"{csm}-{start + k}", csm, "standard", "standard", at_risk, days) for k in range(n)]


def roster(*ids: str, capacity=None) -> pd.DataFrame:
    caps = capacity if capacity is not None else [None] * len(ids)
    return pd.DataFrame({"csm_id": list(ids), "name": [f"CSM {c}" for c in ids],
                         "capacity": caps})  # fmt: skip


def cfg(method: str, **kw) -> TerritoryConfig:
    return TerritoryConfig(method=method, **kw)


def after_of(res) -> dict[str, str]:
    a = res.assignment
    return dict(zip(a["account_id"], a["csm_after"], strict=True))


@pytest.mark.parametrize("method", METHODS)
def test_balances_an_uneven_book(method):
    res = rebalance(book(std(6, "a")), roster("a", "b"), cfg(method, move_cost=0.01))
    loads = res.loads.set_index("csm_id")["load_after"]
    assert loads["a"] == pytest.approx(0.9) and loads["b"] == pytest.approx(0.9)
    assert res.balance["moves"] == 3 and res.method == method
    assert res.balance["after"]["cv"] < res.balance["before"]["cv"]
    assert set(res.moves["from_csm"]) == {"a"} and set(res.moves["to_csm"]) == {"b"}
    assert res.moves["reason"].str.startswith("balance:").all()


@pytest.mark.parametrize("method", METHODS)
def test_renewal_window_keeps_accounts(method):
    rows = std(4, "a", days=30.0) + std(2, "a", start=4, days=200.0)
    res = rebalance(book(rows), roster("a", "b"), cfg(method, renewal_window_days=60))
    moved = set(res.moves["account_id"])
    assert moved <= {"a-4", "a-5"}  # only the two renewing later may move
    assert set(res.exceptions["account_id"]) == {"a-0", "a-1", "a-2", "a-3"}
    assert res.exceptions["reason"].str.contains("renews in 30 days").all()
    assert res.balance["violations"]["renewal_window"] == 0


@pytest.mark.parametrize("method", METHODS)
def test_at_risk_accounts_stay(method):
    rows = std(5, "a", at_risk=True) + std(1, "a", start=5)
    res = rebalance(book(rows), roster("a", "b"), cfg(method, move_cost=0.0))
    assert list(res.moves["account_id"]) == ["a-5"]
    assert res.exceptions["reason"].eq("at risk").all() and len(res.exceptions) == 5
    # switched off, at-risk accounts may move
    free = rebalance(book(rows), roster("a", "b"), cfg(method, keep_at_risk=False))
    assert free.balance["moves"] >= 2


@pytest.mark.parametrize("method", METHODS)
def test_move_cap_per_csm(method):
    res = rebalance(book(std(12, "a")), roster("a", "b", "c"), cfg(method, max_moves_per_csm=2))
    assert res.balance["moves"] == 2
    ld = res.loads.set_index("csm_id")
    assert ld.loc["a", "moves_out"] == 2 and ld[["moves_in"]].max().item() <= 2
    # the cap also binds what one CSM takes on
    rows = std(4, "a") + std(4, "b", start=0)
    res = rebalance(book(rows), roster("a", "b", "c"), cfg(method, max_moves_per_csm=1))
    assert res.loads.set_index("csm_id").loc["c", "moves_in"] <= 1
    assert res.balance["violations"]["move_cap"] == 0


@pytest.mark.parametrize("method", METHODS)
def test_capacity_of_the_csms_table(method):
    rows = [(f"h{k}", "a", "high_touch", "high_touch", False, 300.0) for k in range(4)]
    res = rebalance(book(rows), roster("a", "b", capacity=[1, 3]), cfg(method))
    ld = res.loads.set_index("csm_id")
    assert ld.loc["a", "high_touch_after"] <= 1 and ld.loc["b", "high_touch_after"] <= 3
    assert not ld["over_capacity"].any()
    # with every seat taken, the high-touch accounts cannot all be placed within capacity
    tight = rebalance(book(rows), roster("a", "b", capacity=[1, 1]), cfg(method))
    assert tight.balance["violations"]["capacity"] == 2


@pytest.mark.parametrize("method", METHODS)
def test_frozen_accounts_may_force_capacity(method):
    rows = [(f"h{k}", "a", "high_touch", "high_touch", True, 300.0) for k in range(3)]
    res = rebalance(book(rows), roster("a", "b", capacity=[1, 5]), cfg(method))
    ld = res.loads.set_index("csm_id")
    assert ld.loc["a", "high_touch_after"] == 3 and bool(ld.loc["a", "capacity_forced"])
    assert res.balance["violations"]["capacity"] == 0 and res.moves.empty


@pytest.mark.parametrize("method", METHODS)
def test_tier_changes_handover_and_first_assignment(method):
    rows = [
        ("down_free", "a", "standard", "digital", False, 300.0),
        ("down_frozen", "a", "standard", "digital", True, 300.0),
        ("up_new", None, "digital", "standard", False, 300.0),
        ("gone_owner", "x", "standard", "standard", False, 300.0),
        ("gone_frozen", "x", "standard", "standard", False, 20.0),
    ]
    res = rebalance(book(rows), roster("a", "b"), cfg(method))
    a = res.assignment.set_index("account_id")
    assert a.loc["down_free", "change"] == "leaves_named_book"
    assert pd.isna(a.loc["down_free", "csm_after"])
    assert a.loc["down_frozen", "csm_after"] == "a"
    assert a.loc["down_frozen", "coverage_after"] == "standard"  # downgrade deferred
    assert a.loc["up_new", "change"] == "first_assignment"
    assert a.loc["up_new", "csm_after"] in {"a", "b"}
    assert a.loc["gone_owner", "change"] == "handover"
    assert a.loc["gone_owner", "csm_after"] in {"a", "b"}
    assert a.loc["gone_frozen", "csm_after"] == "x"  # renews soon: stays, outside the roster
    exc = res.exceptions.set_index("account_id")
    assert bool(exc.loc["down_frozen", "deferred_tier_change"])
    assert not res.loads.set_index("csm_id").loc["x", "in_roster"]
    assert all(v == 0 for v in res.balance["violations"].values())


def random_book(seed: int, n: int = 120, csms: int = 8) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    owners = [f"c{j}" for j in range(csms)]
    p = rng.dirichlet(np.full(csms, 0.7))
    tiers = ["high_touch", "standard", "digital"]
    frame = book(
        [
            (f"A{i:03d}", str(rng.choice(owners, p=p)), str(rng.choice(tiers, p=[.2, .7, .1])),
             str(rng.choice(tiers, p=[.2, .6, .2])), bool(rng.random() < .15),
             float(rng.integers(0, 365)))
            for i in range(n)
        ]
    )  # fmt: skip
    frame["segment"] = rng.choice(
        ["accelerate", "strategic_partnership", "efficient_expansion", "prove_value"], n
    )
    return frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_solver_and_greedy_agree_on_feasibility(seed):
    b = random_book(seed)
    common = dict(max_moves_per_csm=3, capacity=8, candidates_per_account=8)
    res = {m: rebalance(b, None, cfg(m, mip_rel_gap=0.0, **common)) for m in METHODS}
    for m, r in res.items():
        assert r.method == m
        hard = {k: v for k, v in r.balance["violations"].items() if k != "capacity"}
        assert not any(hard.values()), (m, hard)
        assert r.balance["after"]["spread"] <= r.balance["before"]["spread"]
    # both see the same (in)feasibility: capacity can conflict with the move cap (seed 1:
    # one CSM holds 12 high-touch accounts for 8 seats and may give up only 3)
    assert res["milp"].balance["violations"] == res["greedy"].balance["violations"]
    if res["milp"].balance["violations"]["capacity"]:
        assert any("move cap" in n for n in res["milp"].notes)
    # same accounts placed, same frozen ones untouched
    a_m, a_g = (res[m].assignment.set_index("account_id") for m in METHODS)
    assert a_m["csm_after"].isna().equals(a_g["csm_after"].isna())
    frozen = a_m["frozen"]
    assert (a_m.loc[frozen, "csm_after"] == a_g.loc[frozen, "csm_after"]).all()
    # the MILP, proven optimal over a superset of the greedy's moves, is never worse
    assert res["milp"].balance["solver"]["status"] == 0
    assert res["milp"].balance["objective"] <= res["greedy"].balance["objective"] + 1e-6


def test_violation_counter_sees_a_broken_plan():
    res = rebalance(book(std(4, "a", at_risk=True)), roster("a", "b"), cfg("greedy"))
    bad = res.assignment.copy()
    bad["csm_after"] = "b"  # move every frozen, at-risk account
    res.assignment = bad
    v = constraint_violations(res, TerritoryConfig(max_moves_per_csm=1))
    assert v["at_risk"] == 4


def test_solver_fallback_is_reported(monkeypatch):
    import scipy.optimize

    def broken(*a, **k):
        raise RuntimeError("solver crashed")

    monkeypatch.setattr(scipy.optimize, "milp", broken)
    res = rebalance(book(std(6, "a")), roster("a", "b"), cfg("milp"))
    assert res.method == "greedy" and res.balance["method"] == "greedy"
    assert any("greedy method used" in n for n in res.notes)


def test_bad_roster_and_book_are_named():
    with pytest.raises(ValueError, match=r"csms.csm_id: 1 duplicate"):
        check_roster(pd.DataFrame({"csm_id": ["a", "a"]}))
    with pytest.raises(ValueError, match=r"csms.capacity: 1 rows"):
        check_roster(pd.DataFrame({"csm_id": ["a", "b"], "capacity": [1, -2]}))
    with pytest.raises(ValueError, match=r"lacks columns \['segment'\]"):
        rebalance(book(std(2, "a")).drop(columns="segment"))
    with pytest.raises(ValueError, match="no CSM to assign"):
        rebalance(book([("n1", None, "digital", "standard", False, 100.0)]))


@pytest.mark.parametrize("method", METHODS)
def test_capacity_first_may_exceed_the_move_cap(method):
    rows = [(f"h{k}", "a", "high_touch", "high_touch", False, 300.0) for k in range(5)]
    strict = dict(max_moves_per_csm=2, capacity_first=False)
    res = rebalance(book(rows), roster("a", "b", capacity=[1, 9]), cfg(method, **strict))
    assert res.loads.set_index("csm_id").loc["a", "high_touch_after"] == 3
    assert res.balance["violations"]["capacity"] == 2 and res.balance["moves"] == 2
    assert any("move cap" in n for n in res.notes)
    # the extra moves are the giver's; each receiver still takes on at most the cap
    team = roster("a", "b", "c", capacity=[1, 9, 9])
    first = rebalance(book(rows), team, cfg(method, max_moves_per_csm=2))
    assert first.loads.set_index("csm_id").loc["a", "high_touch_after"] == 1
    assert first.balance["moves_beyond_cap_to_restore_capacity"] == 2
    assert all(v == 0 for v in first.balance["violations"].values())


@pytest.mark.parametrize("method", METHODS)
def test_renewal_window_can_skip_monthly_contracts(method):
    rows = std(4, "a", days=10.0)
    frame = book(rows).assign(term_months=[1.0, 1.0, 12.0, np.nan])
    held = rebalance(frame, roster("a", "b"), cfg(method, move_cost=0.0))
    assert held.balance["moves"] == 0 and len(held.exceptions) == 4
    annual = cfg(method, move_cost=0.0, renewal_min_term_months=12)
    res = rebalance(frame, roster("a", "b"), annual)
    # monthly contracts may move; the annual one and the unknown term stay
    assert set(res.exceptions["account_id"]) == {"a-2", "a-3"}
    assert set(res.moves["account_id"]) <= {"a-0", "a-1"} and res.balance["moves"] >= 1
    assert res.balance["violations"]["renewal_window"] == 0
