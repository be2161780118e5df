"""Unit checks of the simulator's building blocks: outcome menu, intervals, config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from simulator import SimConfig
from simulator import catalog as C
from simulator.contracts import (
    ADDS,
    CHURN,
    CUTS,
    N_KINDS,
    Book,
    Drivers,
    apply,
    arr_of,
    cooldown_months,
    outcome_arr,
    probabilities,
)
from simulator.intervals import sum_active
from simulator.summary import auc


def _book(n: int, seed: int = 0) -> Book:
    rng = np.random.default_rng(seed)
    return Book(
        tier=rng.integers(0, 3, n),
        seats=rng.integers(1, 400, n),
        monthly=rng.random(n) < 0.3,
        ai=rng.random(n) < 0.3,
        an=rng.random(n) < 0.3,
    )


def _drivers(n: int, seed: int = 1, point_type: int = 0) -> Drivers:
    rng = np.random.default_rng(seed)
    return Drivers(
        engagement=rng.normal(0, 1, n),
        value=rng.normal(0, 1, n),
        stage=rng.integers(0, 3, n),
        demand_ratio=rng.uniform(0.4, 1.3, n),
        utilization=rng.uniform(0.1, 1.0, n),
        usage_ratio=rng.uniform(0, 1.5, n),
        high_touch=rng.random(n) < 0.1,
        point_type=np.full(n, point_type),
    )


@pytest.mark.parametrize("point_type", [0, 1, 2])
def test_outcome_probabilities_are_a_distribution(point_type):
    book = _book(500)
    p = probabilities(book, _drivers(500, point_type=point_type), SimConfig())
    assert p.shape == (500, N_KINDS)
    assert np.all(p >= 0) and np.allclose(p.sum(axis=1), 1.0)
    if point_type == 1:  # mid-term of an annual contract: no contraction on the menu
        assert np.all(p[:, list(CUTS)] == 0)


def test_unavailable_outcomes_have_zero_probability():
    book = Book(
        tier=np.array([2, 0]),
        seats=np.array([1, C.TIER_SEAT_LIMIT[0]]),
        monthly=np.array([False, False]),
        ai=np.array([True, False]),
        an=np.array([True, False]),
    )
    p = probabilities(book, _drivers(2), SimConfig())
    assert np.all(p[0, list(CUTS)] == 0)  # one seat cannot be cut
    assert p[0, 11] == 0 and p[0, 12] == 0 and p[0, 13] == 0  # top tier, both add-ons
    assert np.all(p[1, list(ADDS)] == 0)  # at the seat limit of its plan
    assert p[1, 5] == 0 and p[1, 6] == 0  # lowest tier, no add-on to drop


def test_churn_is_more_likely_for_unhealthy_accounts_and_shift_moves_it():
    book = _book(1, seed=3)
    book = Book(*(np.repeat(a, 2) for a in (book.tier, book.seats, book.monthly, book.ai, book.an)))
    x = _drivers(2)
    x.engagement[:] = [1.0, -1.0]
    x.value[:] = [1.0, -1.0]
    p = probabilities(book, x, SimConfig())
    assert p[1, CHURN] > 2 * p[0, CHURN]
    shifted = probabilities(book, x, SimConfig(churn_shift=1.0))
    assert np.all(shifted[:, CHURN] > p[:, CHURN])


def test_outcome_arr_signs_and_label_ties_avoided():
    book = _book(2000, seed=5)
    arr0 = arr_of(book)
    after = outcome_arr(book, 0.10)
    assert np.all(after[:, 0] == arr0)
    assert np.all(after[:, CHURN] == 0)
    ok_cut = book.seats >= 2
    assert np.all(after[ok_cut][:, list(CUTS)] < arr0[ok_cut, None])
    ok_add = book.seats < C.TIER_SEAT_LIMIT[book.tier]
    assert np.all(after[ok_add][:, list(ADDS)] > arr0[ok_add, None])
    # no outcome lands exactly on a label threshold (labels would depend on float rounding)
    ratio = after / arr0[:, None]
    assert not np.any(np.isclose(ratio, 1.10, rtol=0, atol=1e-9))
    assert not np.any(np.isclose(ratio, 0.90, rtol=0, atol=1e-9))


def test_seat_add_of_ten_percent_on_ten_seats_is_bumped_off_the_threshold():
    book = Book(
        np.array([1]), np.array([10]), np.array([False]), np.array([False]), np.array([False])
    )
    new = apply(book, np.array([ADDS[0]]), 0.10)
    assert new.seats[0] == 12


def test_cooldown_keeps_two_changes_more_than_a_horizon_apart():
    for horizon in (30, 60, 90, 120):
        assert 28 * cooldown_months(horizon) > horizon


def test_sum_active_matches_a_loop():
    rng = np.random.default_rng(0)
    key = rng.integers(0, 5, 40)
    start = rng.integers(0, 50, 40)
    end = start + rng.integers(1, 30, 40)
    w = rng.random(40)
    q_key, q_day = rng.integers(0, 5, 100), rng.integers(0, 80, 100)
    got = sum_active(key, start, end, w, q_key, q_day, 5)
    want = [
        w[(key == k) & (start <= d) & (d < end)].sum() for k, d in zip(q_key, q_day, strict=True)
    ]
    assert np.allclose(got, want)


def test_auc_matches_definition_with_ties():
    y = np.array([0, 0, 1, 1, 0, 1])
    s = np.array([0.1, 0.4, 0.4, 0.8, 0.2, 0.9])
    pairs = [(a, b) for a in s[y == 1] for b in s[y == 0]]
    want = np.mean([1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs])
    assert auc(y, s) == pytest.approx(want)


def test_config_rejects_bad_values():
    with pytest.raises(ValidationError):
        SimConfig(start="2025-13-01")
    with pytest.raises(ValidationError):
        SimConfig(accounts_per_csm={"high_touch": 10})
    with pytest.raises(ValidationError):
        SimConfig(coverage_arr=(1000.0, 5000.0))
    with pytest.raises(ValidationError):
        SimConfig(surprise=1)
