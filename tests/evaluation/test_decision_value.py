"""Decision value: touch effects and policy roll-outs in the simulator, uplift judged against
true effects, the randomised holdout of the scoring flow and its save rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.uplift import observed_save_rate, uplift_curve, uplift_summary
from models.uplift import TwoModelUplift, relative_arr_change
from simulator import interventions as I
from simulator.config import SimConfig
from simulator.contracts import arr_of
from simulator.rollout import Rollout, book_at, nrr_grr
from simulator.world import build_world

CFG = SimConfig(accounts=400, months=9, seed=11)


@pytest.fixture(scope="module")
def world():
    return build_world(CFG)


def test_book_at_reproduces_the_truth_arr_of_every_month(world):
    tr = world.hist.truth
    for m in (1, 4, 8):
        book, _, paying = book_at(world, int(world.tl.month_start(m)))
        sel = tr["month"] == m
        expect = np.zeros(world.acc.n)
        expect[tr["acct"][sel]] = tr["arr"][sel]
        assert paying.sum() == sel.sum()
        np.testing.assert_allclose(arr_of(book), expect)


def test_truth_with_a_matched_touch_has_less_churn_and_more_expansion(world):
    tr = world.hist.truth
    assert np.all(tr["p_churn_touched"] <= tr["p_churn"] + 1e-12)
    assert np.all(tr["p_expand_touched"] >= tr["p_expand"] - 1e-12)
    assert (tr["p_churn"] - tr["p_churn_touched"]).sum() > 0
    assert set(np.unique(tr["churn_driver"])) <= set(I.CHURN_FAMILIES)
    assert set(np.unique(tr["expand_driver"])) <= {*I.EXPAND_FAMILIES, I.NO_DRIVER}


def test_persuadable_is_near_zero_for_sure_stayers_and_lost_causes():
    fx = I.TouchEffects()
    p = I.persuadable(np.array([fx.persuadable_center, -4.0, 3.0]), fx)
    assert p[0] == pytest.approx(1.0)
    assert p[1] < 0.01 and p[2] < 0.01


def test_a_play_for_the_real_driver_beats_a_play_for_another():
    fx = I.TouchEffects()
    cause = np.array(["support", "support"])
    route = np.array(["none", "none"])
    health = np.full(2, fx.persuadable_center)
    d_match, _ = I.logit_shifts(np.array(["support", "adoption"]), cause, route, health, fx)
    assert d_match[0] == pytest.approx(-fx.churn_effect)
    assert d_match[1] == pytest.approx(-fx.churn_effect * fx.mismatch)
    _, d_exp = I.logit_shifts(np.array(["seats", ""]), cause, np.array(["seats"] * 2), health, fx)
    assert d_exp[0] == pytest.approx(fx.expand_effect) and d_exp[1] == 0.0


def test_rollout_is_deterministic_and_untouched_accounts_are_unaffected(world):
    n = world.acc.n
    a = Rollout(world, CFG, 3, seed=5, months=6)
    b = Rollout(world, CFG, 3, seed=5, months=6)
    touched = np.zeros(n, dtype=bool)
    touched[np.flatnonzero(a.alive)[::3]] = True
    fam = np.where(touched, "adoption", "")
    ra1, ra2 = a.advance(3, fam), a.advance(3, fam)
    rb1, rb2 = b.advance(3), b.advance(3)
    # common random numbers: an untouched account's path does not depend on others' touches
    np.testing.assert_array_equal(ra2.arr_end[~touched], rb2.arr_end[~touched])
    np.testing.assert_array_equal(ra1.arr_start, rb1.arr_start)
    c = Rollout(world, CFG, 3, seed=5, months=6)
    c.advance(3, fam)
    np.testing.assert_array_equal(c.advance(3, fam).arr_end, ra2.arr_end)
    nrr, grr = nrr_grr(ra1.arr_start, ra2.arr_end)
    assert 0.5 < grr <= 1.0 and nrr >= grr


def test_touching_everyone_with_the_matched_play_lowers_churn(world):
    base = Rollout(world, CFG, 2, seed=9, months=6)
    helped = Rollout(world, CFG, 2, seed=9, months=6)
    fam, value = helped.best_family(3)
    churn_base = base.advance(6).churned.sum()
    churn_helped = helped.advance(6, fam).churned.sum()
    assert churn_helped < churn_base
    assert value[helped.cohort].sum() > 0


def test_rollout_refuses_months_the_world_does_not_have(world):
    with pytest.raises(ValueError, match="needs months"):
        Rollout(world, CFG, 6, seed=1, months=6)


def test_uplift_summary_orders_oracle_random_and_reverse():
    rng = np.random.default_rng(0)
    effect = rng.gamma(1.0, 1.0, 500) - 0.2
    assert uplift_summary(effect, effect)["auuc_normalised"] == pytest.approx(1.0)
    assert uplift_summary(effect, -effect)["auuc_normalised"] < 0
    rand = np.mean([uplift_summary(effect, rng.random(500))["auuc_normalised"] for _ in range(20)])
    assert abs(rand) < 0.15
    curve = uplift_curve(np.array([1.0, 3.0, 2.0]), np.array([0.0, 2.0, 1.0]))
    np.testing.assert_array_equal(curve, [0.0, 3.0, 5.0, 6.0])


def test_observed_save_rate_and_interval():
    churned = np.array([1] * 10 + [0] * 90 + [1] * 20 + [0] * 80, dtype=bool)
    touched = np.array([True] * 100 + [False] * 100)
    out = observed_save_rate(churned, touched)
    assert out["churn_rate_touched"] == 0.1 and out["churn_rate_held_out"] == 0.2
    assert out["save_rate"] == pytest.approx(0.1)
    assert out["save_rate_low"] < 0.1 < out["save_rate_high"]
    with pytest.raises(ValueError, match="held out 0"):
        observed_save_rate(churned, np.ones(200, dtype=bool))


def test_two_model_uplift_finds_who_responds():
    rng = np.random.default_rng(1)
    n = 4000
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    t = rng.random(n) < 0.5
    true = np.where(X["a"] > 0.5, 0.3, 0.0)
    y = 0.2 * X["b"] + t * true + 0.05 * rng.normal(size=n)
    model = TwoModelUplift(feature_names=["a", "b"], n_estimators=100).fit(X, t, y)
    assert uplift_summary(true, model.predict(X))["auuc_normalised"] > 0.8
    with pytest.raises(ValueError, match="untouched rows"):
        TwoModelUplift(feature_names=["a"]).fit(X.iloc[:200], np.ones(200, bool), y[:200])


def test_relative_arr_change_clips_and_handles_zero():
    out = relative_arr_change(np.array([100.0, 100.0, 0.0, 100.0]), np.array([0.0, 150, 5, 400]))
    np.testing.assert_allclose(out, [-1.0, 0.5, 0.0, 1.0])


def test_actions_mode_logs_touches_and_holdouts_and_leaves_the_opening_book(tmp_path):
    from simulator.world import simulate

    base = SimConfig(accounts=500, months=4, seed=3)
    logged = base.model_copy(update={"actions": I.ActionsConfig(enabled=True, holdout_share=0.3)})
    simulate(base, tmp_path / "a", progress=False)
    simulate(logged, tmp_path / "b", progress=False)
    assert not (tmp_path / "a" / "actions.parquet").exists()
    acts = pd.read_parquet(tmp_path / "b" / "actions.parquet")
    accounts = pd.read_parquet(tmp_path / "b" / "accounts.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "accounts.parquet"), accounts)
    high = set(accounts.loc[accounts["coverage"] == "high_touch", "account_id"])
    assert len(acts) > 0 and set(acts["account_id"]) <= high
    assert acts["action_id"].is_unique and acts["play"].isin(I.PLAY_FAMILY).all()
    assert 0.15 < acts["holdout"].mean() < 0.45
    assert (acts["ts"].dt.day == 1).all()


def test_actions_table_is_validated_like_the_others(tmp_path):
    import datetime as dt

    from features.sources import open_source
    from features.validate import validate

    cfg = SimConfig(accounts=300, months=4, seed=5, actions=I.ActionsConfig(enabled=True))
    simulate_dir = tmp_path / "w"
    from simulator.world import simulate

    simulate(cfg, simulate_dir, progress=False)
    acts = pd.read_parquet(simulate_dir / "actions.parquet")
    bad = pd.DataFrame(
        {
            "action_id": ["bad1", "bad2", "bad3", acts["action_id"].iloc[0]],
            "account_id": [
                "NOPE",
                acts["account_id"].iloc[0],
                acts["account_id"].iloc[0],
                acts["account_id"].iloc[0],
            ],  # fmt: skip
            "ts": pd.to_datetime(["2025-06-01", "2030-01-01", "2025-06-02", "2025-06-03"]),
            "csm_id": [None] * 4,
            "play": ["Adoption plan", "Adoption plan", None, "Renewal plan"],
            "holdout": [False, False, True, False],
        }
    ).astype({"ts": "datetime64[us]"})
    pd.concat([acts, bad], ignore_index=True).to_parquet(simulate_dir / "actions.parquet")
    src = open_source(simulate_dir)
    end = dt.date.fromisoformat(
        __import__("json").loads((simulate_dir / "manifest.json").read_text())["data_end"]
    )
    report = validate(src, now=end, quarantine_dir=tmp_path / "q")
    clean = src.con.execute("SELECT count(*) FROM actions").fetchall()[0][0]
    quarantined = len(pd.read_parquet(tmp_path / "q" / "actions.parquet"))
    assert clean + quarantined == len(acts) + len(bad)
    assert quarantined == 4  # unknown account, future ts, null play, duplicate id
    assert "actions" in str(report)
    src.close()


def test_holdout_is_a_stable_random_subset_of_the_flagged():
    from models.holdout import assign_holdout

    ids = [f"A{i:05d}" for i in range(5000)]
    flagged = np.arange(5000) % 2 == 0
    held = assign_holdout(ids, flagged, "2026-11-02", share=0.25, seed=3)
    assert not held[~flagged].any()
    assert 0.22 < held[flagged].mean() < 0.28
    np.testing.assert_array_equal(
        held, assign_holdout(ids, flagged, "2026-11-02", share=0.25, seed=3)
    )
    other_week = assign_holdout(ids, flagged, "2026-11-09", share=0.25, seed=3)
    assert (held != other_week).any()
    assert not assign_holdout(ids, flagged, "2026-11-02", share=0.0).any()
    with pytest.raises(ValueError, match="holdout share"):
        assign_holdout(ids, flagged, "2026-11-02", share=1.0)


def test_save_rate_of_holdout_reads_issued_flags_and_matured_outcomes():
    from evaluation.uplift import save_rate_of_holdout

    scores = pd.DataFrame(
        {
            "at_risk": [True] * 8 + [False] * 2,
            "holdout": [False] * 4 + [True] * 4 + [True, False],
            "label_churn": [0, 0, 1, np.nan, 1, 1, 0, 0, 1, 1],
        }
    )
    out = save_rate_of_holdout(scores)
    assert out["touched"] == 3 and out["held_out"] == 4
    assert out["churn_rate_touched"] == pytest.approx(1 / 3, abs=1e-4)
    assert out["churn_rate_held_out"] == 0.5
    assert save_rate_of_holdout(scores.drop(columns="holdout")) is None
    assert save_rate_of_holdout(scores.assign(holdout=False)) is None


def test_scoring_marks_held_out_accounts_and_keeps_their_flags():
    from flows.config import Config
    from flows.score import HELD_OUT_PLAY, _hold_out

    n = 4000
    scores = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(n)],
            "at_risk": np.arange(n) % 4 == 0,
            "expansion_ready": np.arange(n) % 4 == 1,
            "playbook": "Adoption plan",
        }
    )
    cfg = Config.model_validate({"scoring": {"holdout_share": 0.3}})
    out = _hold_out(scores, cfg, pd.Timestamp("2026-11-02").date())
    flagged = scores["at_risk"] | scores["expansion_ready"]
    assert not out.loc[~flagged, "holdout"].any()
    assert 0.25 < out.loc[flagged, "holdout"].mean() < 0.35
    assert (out.loc[out["holdout"], "playbook"] == HELD_OUT_PLAY).all()
    assert out["at_risk"].equals(scores["at_risk"])
    off = _hold_out(scores, Config(), pd.Timestamp("2026-11-02").date())
    assert not off["holdout"].any() and (off["playbook"] == "Adoption plan").all()


def test_scores_store_takes_a_column_that_earlier_dates_lack(tmp_path):
    import datetime as dt

    from evaluation import scores_store

    old = pd.DataFrame({"account_id": ["A1", "A2"], "as_of": [dt.date(2026, 11, 2)] * 2,
                        "p_churn": [0.1, 0.2]})  # fmt: skip
    new = old.assign(as_of=dt.date(2026, 11, 9), holdout=[True, False])
    scores_store.write_scores(old, tmp_path / "scores", dt.date(2026, 11, 2))
    scores_store.write_scores(new, tmp_path / "scores", dt.date(2026, 11, 9))
    back = scores_store.read_scores(tmp_path / "scores")
    assert len(back) == 4 and "holdout" in back.columns
