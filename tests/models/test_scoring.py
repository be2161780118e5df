"""Scoring a snapshot end to end: partitions, feature checks, calibrators, overlays, capacity.

Two small LightGBM models are trained once per module on a few thousand synthetic rows
that carry the real feature names (`features.catalog.feature_names`); a 1,200-account
snapshot is then scored through `models.scoring.score_snapshot`.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from features.catalog import feature_names
from models.explain import REASON_COLUMNS
from models.portable import apply_calibration
from models.scoring import FeatureMismatchError, check_features, score_snapshot
from models.segment import SCORE_COLUMNS, CoverageConfig, SegmentConfig
from models.train import OutcomeClassifier

AS_OF = pd.Timestamp("2026-03-02")
THR = {"churn_threshold": 0.15, "expand_threshold": 0.25}
STAGES = np.array(["Experimenter", "Builder", "Transformer"], dtype=object)
N_BOOK = 1_200
N_CSM = 20
FAST = {"partition_rows": 500, "progress": False}


def _features(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Catalogue-named numeric features driven by one latent health score per row."""
    health = rng.normal(size=n)
    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(feature_names()):
        x = rng.normal(0.0, 1.0, n) + (0.8 if j % 2 else -0.5) * health
        if j % 6 == 0:
            x = np.round(np.exp(0.5 * x) * 10.0)  # count-like, heavy tail
        if j % 9 == 0:
            x[rng.random(n) < 0.1] = np.nan  # sometimes unknown
        cols[name] = x
    arr = np.round(rng.lognormal(10.5, 1.0, n), 2)
    tam = np.where(rng.random(n) < 0.15, np.nan, arr * rng.uniform(1.0, 40.0, n))
    level = rng.integers(0, 3, n).astype(np.float64)
    cols.update(
        arr=arr,
        tam_usd=tam,
        whitespace=np.clip(tam - arr, 0.0, None),
        penetration=arr / tam,
        maturity_level=level,
    )
    return pd.DataFrame(cols), health


def _model(X: pd.DataFrame, y: np.ndarray, seed: int) -> OutcomeClassifier:
    half = len(X) * 2 // 3
    return OutcomeClassifier(
        n_estimators=40, num_leaves=15, min_child_samples=20, num_threads=1, random_state=seed
    ).fit(X.iloc[:half], y[:half], X_calib=X.iloc[half:], y_calib=y[half:])


@pytest.fixture(scope="module")
def models() -> dict[str, OutcomeClassifier]:
    rng = np.random.default_rng(7)
    X, health = _features(rng, 3_000)
    churn = (rng.random(len(X)) < 1 / (1 + np.exp(2.0 + 1.5 * health))).astype(float)
    expand = (rng.random(len(X)) < 1 / (1 + np.exp(2.5 - 1.2 * health))).astype(float)
    return {"churn": _model(X, churn, 1), "expand": _model(X, expand, 2)}


@pytest.fixture(scope="module")
def book() -> pd.DataFrame:
    """One as_of of 1,200 accounts with the context columns the scores table copies."""
    rng = np.random.default_rng(11)
    X, _ = _features(rng, N_BOOK)
    ids = pd.Series([f"acct-{i:05d}" for i in rng.permutation(N_BOOK)])
    context = pd.DataFrame(
        {
            "account_id": ids,
            "as_of": pd.Series([AS_OF] * N_BOOK, dtype="datetime64[us]"),
            "name": "Company " + ids.str[5:],
            "csm_id": [f"csm-{i % N_CSM:02d}" for i in range(N_BOOK)],
            "coverage": rng.choice(["digital", "standard", "high_touch"], N_BOOK),
            "maturity_stage": STAGES[X["maturity_level"].to_numpy(dtype=int)],
        }
    )
    frame = pd.concat([context, X], axis=1)
    frame.index = rng.permutation(N_BOOK) + 10_000  # not a range index: scoring must not care
    return frame


def _score(book: pd.DataFrame, models: dict, **kw):
    args = {**THR, **FAST, "versions": {"churn": "3", "expand": "5"}, **kw}
    return score_snapshot(book, models, **args)


@pytest.fixture(scope="module")
def scored(book, models):
    """The book scored in 3 partitions (500, 500, 200) with the default settings."""
    before = book.copy(deep=True)
    out = _score(book, models)
    pd.testing.assert_frame_equal(book, before)  # the caller's snapshot is left as it was
    return out


# ----------------------------------------------------------------------------- partitions


def test_partitions_do_not_change_scores_or_reasons(book, models, scored):
    parts = scored  # 3 partitions, the last one short
    whole = _score(book, models, partition_rows=1_000_000)
    pd.testing.assert_frame_equal(parts.scores, whole.scores, check_exact=True)
    assert parts.scores.attrs == whole.scores.attrs
    pd.testing.assert_frame_equal(parts.reasons, whole.reasons, check_exact=True)


def test_scores_follow_input_order_and_hold_the_contract_columns(book, models, scored):
    s = scored.scores
    assert list(s.columns[: len(SCORE_COLUMNS)]) == list(SCORE_COLUMNS)
    assert {"p_churn_raw", "p_expand_raw"} <= set(s.columns)
    assert s["account_id"].tolist() == book["account_id"].tolist()
    assert (s["model_version_churn"] == "3").all() and (s["model_version_expand"] == "5").all()
    assert (pd.to_datetime(s["as_of"]) == AS_OF).all()
    np.testing.assert_array_equal(s["p_churn_raw"], models["churn"].predict_raw(book))
    np.testing.assert_array_equal(s["p_expand"], models["expand"].predict_proba(book)[:, 1])
    # every account's reasons_json is its rows of the reason frame, in order
    assert list(scored.reasons.columns[: len(REASON_COLUMNS)]) == list(REASON_COLUMNS)
    lists = [json.loads(x) for x in s["reasons_json"]]
    counts = scored.reasons.groupby("account_id", sort=False).size()
    assert [len(x) for x in lists] == counts.reindex(s["account_id"], fill_value=0).tolist()
    parsed = lists[-1]
    mine = scored.reasons[scored.reasons["account_id"] == s["account_id"].iloc[-1]]
    assert [(r["target"], r["feature"]) for r in parsed] == list(
        zip(mine["target"].astype(str), mine["feature"].astype(str), strict=True)
    )
    np.testing.assert_allclose([r["contribution"] for r in parsed], mine["contribution"])


# ----------------------------------------------------------------------------- bad input


def test_missing_model_feature_is_named(book, models):
    gone = "features_used_change_30d"
    with pytest.raises(FeatureMismatchError, match=gone) as err:
        _score(book.drop(columns=[gone]), models)
    assert "churn" in str(err.value)
    assert check_features(models, book) == list(models["churn"].feature_names_in_)


def test_empty_snapshot_is_an_error(book, models):
    with pytest.raises(ValueError, match="empty"):
        _score(book.iloc[:0], models)


def test_multi_date_snapshot_is_an_error(book, models):
    two = book.copy()
    two.iloc[: N_BOOK // 2, two.columns.get_loc("as_of")] = AS_OF + pd.Timedelta(days=7)
    with pytest.raises(ValueError, match="one as_of at a time, got 2 dates"):
        _score(two, models)


def test_both_models_are_required(book, models):
    with pytest.raises(ValueError, match="need churn and expand"):
        _score(book, {"churn": models["churn"]})


# ----------------------------------------------------------------------------- calibration


def test_quarterly_calibrator_replaces_the_models_own(book, models, scored):
    own = scored.scores
    params = {"method": "sigmoid", "a": 0.7, "b": -0.4}
    quarterly = _score(
        book, models, calibrators={"churn": lambda p: apply_calibration(params, p)}
    ).scores
    np.testing.assert_array_equal(quarterly["p_churn_raw"], own["p_churn_raw"])
    np.testing.assert_allclose(
        quarterly["p_churn"], apply_calibration(params, own["p_churn_raw"].to_numpy())
    )
    assert not np.allclose(quarterly["p_churn"], own["p_churn"])
    # the other target keeps its model's calibration
    np.testing.assert_array_equal(quarterly["p_expand"], own["p_expand"])
    np.testing.assert_array_equal(
        quarterly["at_risk"], quarterly["p_churn"] >= THR["churn_threshold"]
    )


# ----------------------------------------------------------------------------- overlays, capacity


def test_at_risk_follows_the_churn_threshold(book, models, scored):
    counts = []
    for threshold in (0.05, 0.15, 0.4):
        same = threshold == THR["churn_threshold"]
        s = scored.scores if same else _score(book, models, churn_threshold=threshold).scores
        p = s["p_churn"].to_numpy()
        np.testing.assert_array_equal(s["at_risk"].to_numpy(dtype=bool), p >= threshold)
        assert ((s["churn_band"] == "high") == (p >= threshold)).all()
        counts.append(int(s["at_risk"].sum()))
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] >= 0
    assert 0 < counts[1] < N_BOOK  # the default threshold splits this book


@pytest.mark.parametrize("per_csm", [0, 2, 40])
def test_high_touch_never_exceeds_capacity(book, models, per_csm):
    cfg = SegmentConfig(coverage=CoverageConfig(accounts_per_csm=per_csm))
    s = _score(book, models, segment_config=cfg).scores
    capacity = N_CSM * per_csm
    assert s.attrs["high_touch_capacity"] == capacity
    high = (s["coverage_recommended"] == "high_touch").to_numpy()
    assert high.sum() <= capacity
    if 0 < capacity < len(s):
        assert high.sum() == capacity  # every priority here is > 0: the seats are all used
        # seats go to the highest priorities
        assert s.loc[high, "priority"].min() >= s.loc[~high, "priority"].max()


def test_capacity_uses_configured_csms(book, models):
    cfg = SegmentConfig(coverage=CoverageConfig(accounts_per_csm=3, csms=4))
    s = _score(book, models, segment_config=cfg).scores
    assert (s["coverage_recommended"] == "high_touch").sum() == 12
