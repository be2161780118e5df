"""Quarterly threshold choice: flag band, best precision inside it, explicit failure modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluation.config import ThresholdConfig
from evaluation.thresholds import (
    ThresholdError,
    account_weeks,
    calibrate_thresholds,
    choose_churn_threshold,
    choose_expand_threshold,
    evaluate_threshold,
    flag_curve,
    join_outcomes,
    matured_window,
    quarter_bounds,
)
from evaluation.thresholds_file import load_latest_thresholds, thresholds_to_yaml
from models.portable import apply_calibration


def _ranked_labels() -> tuple[np.ndarray, np.ndarray]:
    """100 account-weeks ranked by score; positives placed so the answer is known.

    ranks 1-10 positive, 11-20 negative, 21-30 positive, 31-40 negative, 50-54 positive.
    Precision at 10/20/30/40 flags: 1.0, 0.5, 0.667, 0.5.
    """
    p = np.linspace(0.99, 0.01, 100)
    y = np.zeros(100)
    y[0:10] = 1
    y[20:30] = 1
    y[49:54] = 1
    return p, y


def test_best_precision_inside_the_band_not_outside():
    p, y = _ranked_labels()
    curve = flag_curve(p, y, n_weeks=1, n_csms=2)
    got = choose_churn_threshold(curve, band=(10, 20))
    # band 10-20 per CSM a week with 2 CSMs and 1 week = 20..40 flags; 10 flags (precision
    # 1.0) is outside it, so the best is 30 flags at precision 2/3.
    assert got["status"] == "ok"
    assert got["flags"] == 30
    assert got["threshold"] == pytest.approx(p[29])
    assert got["precision"] == pytest.approx(20 / 30)
    assert got["recall"] == pytest.approx(20 / 25)
    assert got["flags_per_csm_week"] == pytest.approx(15.0)


def test_volume_is_divided_by_weeks_and_csms():
    p, y = _ranked_labels()
    curve = flag_curve(p, y, n_weeks=2, n_csms=1)
    got = choose_churn_threshold(curve, band=(10, 20))
    # 20..40 flags again (2 weeks x 1 CSM): same answer
    assert got["flags"] == 30
    assert got["flags_per_csm_week"] == pytest.approx(15.0)


def test_band_unreachable_is_explicit():
    p, y = _ranked_labels()
    small = flag_curve(p[:15], y[:15], n_weeks=1, n_csms=2)  # at most 7.5 a week
    got = choose_churn_threshold(small, band=(10, 20))
    assert got["status"] == "below_band"
    assert got["flags"] == 15  # nearest: flag everything
    assert "no churn threshold" in got["message"]
    with pytest.raises(ThresholdError, match="10-20 flags per CSM"):
        choose_churn_threshold(small, band=(10, 20), on_unmet="raise")

    tied = flag_curve(np.full(100, 0.3), y, n_weeks=1, n_csms=2)  # one step: 50 a week
    got = choose_churn_threshold(tied, band=(10, 20))
    assert got["status"] == "above_band"
    assert got["flags"] == 100


def test_expansion_threshold_lowest_reaching_target():
    p, y = _ranked_labels()
    curve = flag_curve(p, y, n_weeks=1, n_csms=1)
    got = choose_expand_threshold(curve, target_precision=0.6, min_flags=20)
    # precision >= 0.6 with >= 20 flags: 21..(as long as it holds) -> 20/30=.667 at 30,
    # 20/33=.606 at 33, 20/34=.588 at 34: the lowest threshold is the 33rd score
    assert got["status"] == "ok"
    assert got["flags"] == 33
    got = choose_expand_threshold(curve, target_precision=0.9, min_flags=20)
    assert got["status"] == "target_not_met"
    assert got["precision"] == pytest.approx(20 / 30)
    with pytest.raises(ThresholdError):
        choose_expand_threshold(curve, target_precision=0.9, min_flags=20, on_unmet="raise")
    low = choose_expand_threshold(curve, target_precision=0.2, min_flags=20)
    assert low["status"] == "target_below_base_rate" and low["flags"] == 100  # base rate .25


def test_account_scored_twice_in_a_week_counts_once():
    scores = pd.DataFrame(
        {
            "account_id": ["a", "a", "b", "a"],
            "as_of": pd.to_datetime(["2026-04-06", "2026-04-09", "2026-04-06", "2026-04-13"]),
            "p_churn": [0.9, 0.1, 0.8, 0.7],
        }
    )
    weeks = account_weeks(scores)
    assert len(weeks) == 3  # (a, wk1) latest = 0.1; (b, wk1); (a, wk2)
    a_wk1 = weeks[(weeks.account_id == "a") & (weeks.as_of < "2026-04-13")]
    assert a_wk1["p_churn"].item() == pytest.approx(0.1)
    assert weeks["_week"].nunique() == 2


def _book(rng, n_accounts=400, weeks=8, start="2026-01-05", rate=-2.5, n_csm=4):
    """Weekly scores for a book whose true churn probability is sigmoid(rate + 1.5 x)."""
    acc = np.arange(n_accounts)
    as_of = pd.date_range(start, periods=weeks, freq="7D")
    grid = pd.MultiIndex.from_product([acc, as_of], names=["acc", "as_of"]).to_frame(index=False)
    x = rng.normal(size=len(grid))
    true = 1 / (1 + np.exp(-(rate + 1.5 * x)))
    raw = 1 / (1 + np.exp(-(-3.0 + 1.5 * x)))  # a model fitted on a calmer period
    xe = rng.normal(size=len(grid))
    return pd.DataFrame(
        {
            "account_id": "A" + grid["acc"].astype(str),
            "as_of": grid["as_of"],
            "csm_id": "C" + (grid["acc"] % n_csm).astype(str),
            "p_churn_raw": raw,
            "p_churn": raw,
            "label_churn": (rng.random(len(grid)) < true).astype(float),
            "p_expand": 1 / (1 + np.exp(-(-1.5 + 2 * xe))),
            "label_expand": (rng.random(len(grid)) < 1 / (1 + np.exp(-(-1.5 + 2 * xe)))).astype(
                float
            ),
        }
    )


def test_calibrate_thresholds_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    scores = _book(rng)
    cfg = ThresholdConfig(
        churn_flags_per_csm_week_min=5,
        churn_flags_per_csm_week_max=12,
        expand_target_precision=0.5,
    )
    res = calibrate_thresholds(
        scores,
        quarter="2026Q2",
        window="all",
        previous={"quarter": "2026Q1", "churn_threshold": 0.2, "expand_threshold": 0.5},
        config=cfg,
    )
    assert res.window["scoring_weeks"] == 8 and res.window["n_csms"] == 4
    assert 5 <= res.churn["flags_per_csm_week"] <= 12 and res.churn["status"] == "ok"
    # brute force on the recalibrated probabilities: no in-band threshold is more precise
    p = res.calibrators["churn"].predict(scores["p_churn_raw"].to_numpy())
    y = scores["label_churn"].to_numpy()
    for t in np.unique(p):
        ev = evaluate_threshold(p, y, t, n_weeks=8, n_csms=4)
        if 5 <= ev["flags_per_csm_week"] <= 12:
            assert ev["precision"] <= res.churn["precision"] + 1e-12
    # the stored table reproduces the fitted calibrator
    table = res.calibrator["churn"]
    assert table["input"] == "p_churn_raw"
    np.testing.assert_allclose(apply_calibration(table, scores["p_churn_raw"]), p, atol=1e-9)
    # last quarter's thresholds are judged on the probabilities as issued
    prev = res.previous["churn"]
    flagged = scores["p_churn"] >= 0.2
    assert prev["flags"] == int(flagged.sum())
    assert prev["precision"] == pytest.approx(scores.loc[flagged, "label_churn"].mean())
    assert res.expand["precision"] >= 0.5 and res.expand["status"] == "ok"

    path = thresholds_to_yaml(res, tmp_path)
    assert path.name == "2026Q2.yaml"
    thresholds_to_yaml({**res.as_dict(), "quarter": "2025Q4"}, tmp_path)
    (tmp_path / "notes.yaml").write_text("a: 1\n")
    (tmp_path / "2026.yaml").write_text("a: 1\n")
    latest = load_latest_thresholds(tmp_path)
    assert latest["quarter"] == "2026Q2"
    assert latest["churn_threshold"] == pytest.approx(res.churn["threshold"])
    assert latest["previous"]["churn"]["threshold"] == 0.2
    assert load_latest_thresholds(tmp_path / "empty") is None


def test_matured_window_uses_outcomes_matured_last_quarter():
    scores = pd.DataFrame(
        {"as_of": pd.to_datetime(["2026-01-30", "2026-01-31", "2026-05-01", "2026-05-02"])}
    )
    got = matured_window(scores, quarter="2026Q3", horizon_days=60)
    # matures in [2026-04-01, 2026-07-01): Jan 31 + 60 d = Apr 1 (in), May 2 + 60 = Jul 1 (out)
    assert got["as_of"].dt.strftime("%m-%d").tolist() == ["01-31", "05-01"]
    assert quarter_bounds("2026Q4")[1] == pd.Timestamp("2027-01-01")
    with pytest.raises(ValueError, match="2026Q3"):
        quarter_bounds("Q3-2026")


def test_errors_name_the_problem():
    rng = np.random.default_rng(1)
    scores = _book(rng, n_accounts=50, weeks=2)
    with pytest.raises(ValueError, match="no rows in the calibration window"):
        calibrate_thresholds(scores, quarter="2030Q1")
    with pytest.raises(ValueError, match="csm_id"):
        calibrate_thresholds(scores.drop(columns="csm_id"), quarter="2026Q1", window="all")
    with pytest.raises(ValueError, match="label_expand"):
        calibrate_thresholds(scores.drop(columns="label_expand"), quarter="2026Q1", window="all")


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_stored_calibrator_reproduces_the_fitted_one(method):
    rng = np.random.default_rng(2)
    scores = _book(rng, n_accounts=300, weeks=4)
    cfg = ThresholdConfig(
        churn_flags_per_csm_week_min=5,
        churn_flags_per_csm_week_max=12,
        calibration_method=method,
    )
    res = calibrate_thresholds(scores, quarter="2026Q2", window="all", config=cfg)
    params = res.calibrator["churn"]
    assert params["method"] == method
    probe = np.r_[0.0, 1e-9, np.linspace(0, 1, 101), 1.0, scores["p_churn_raw"].to_numpy()]
    np.testing.assert_allclose(
        apply_calibration(params, probe), res.calibrators["churn"].predict(probe), atol=1e-12
    )


def test_band_must_be_ordered():
    with pytest.raises(ValueError, match="must not exceed"):
        ThresholdConfig(churn_flags_per_csm_week_min=30, churn_flags_per_csm_week_max=20)


def test_join_outcomes_attaches_labels_by_account_and_date():
    scores = pd.DataFrame(
        {
            "account_id": ["a", "b", "c"],
            "as_of": pd.to_datetime(["2026-01-05"] * 3),
            "p_churn": [0.1, 0.2, 0.3],
            "label_churn": [9.0, 9.0, 9.0],  # stale columns are replaced
        }
    )
    labels = pd.DataFrame(
        {
            "account_id": ["a", "b"],
            "as_of": pd.to_datetime(["2026-01-05"] * 2).astype("datetime64[ns]"),
            "label_churn": [1.0, np.nan],
            "label_expand": [0.0, 1.0],
        }
    )
    got = join_outcomes(scores, labels)
    assert got["label_churn"].tolist()[0] == 1.0
    assert got["label_churn"].isna().tolist() == [False, True, True]
    assert got["label_expand"].tolist()[:2] == [0.0, 1.0]
    with pytest.raises(ValueError, match="duplicate"):
        join_outcomes(scores, pd.concat([labels, labels]))
