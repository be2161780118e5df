"""Reason codes: exact TreeSHAP, agreement with LightGBM and the shap package, sentences."""

from __future__ import annotations

import json
import math

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from features.catalog import CATALOG, feature_names
from models.explain import (
    REASON_COLUMNS,
    beeswarm_figure,
    explain,
    reasons_json,
    render_sentences,
    shap_values,
    top_drivers,
    waterfall_figure,
)
from models.treeshap import UnsupportedModelError, compile_lightgbm, tree_shap

N_ROWS = 600


def _data(n: int = N_ROWS, p: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Counts with exact zeros, continuous columns with NaN, a label depending on both."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    X[:, 0] = rng.poisson(1.0, n)  # many exact zeros
    X[:, 1] = np.where(rng.random(n) < 0.15, np.nan, X[:, 1])
    X[:, 2] = np.where(rng.random(n) < 0.10, 0.0, X[:, 2])
    logit = X[:, 0] - np.nan_to_num(X[:, 1]) + X[:, 2] * X[:, 3] + 0.5 * np.sin(3 * X[:, 4])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def _booster(X, y, rounds: int = 40, categorical: list[int] | None = None, **params) -> lgb.Booster:
    base = {
        "objective": "binary",
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "learning_rate": 0.2,
        "verbosity": -1,
        "num_threads": 1,
        "seed": 0,
        "deterministic": True,
    }
    data = lgb.Dataset(X, y, categorical_feature=categorical or "auto")
    return lgb.train({**base, **params}, data, num_boost_round=rounds)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def booster(data):
    X, y = data
    return _booster(X, y)


# ----------------------------------------------------------------------------- exactness


def test_native_contributions_sum_exactly_to_raw_score(booster, data):
    X, _ = data
    for method in ("native", "fast"):
        values, _ = shap_values(booster, X, method=method)
        raw = booster.predict(X, raw_score=True)
        assert values.shape == (len(X), X.shape[1] + 1)
        np.testing.assert_allclose(values.sum(axis=1), raw, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    "params",
    [
        {},  # missing type NaN
        {"zero_as_missing": True},  # missing type Zero
        {"use_missing": False},  # missing type None: NaN goes as 0.0
        {"num_leaves": 63, "max_depth": -1, "min_data_in_leaf": 2},  # deep, repeated features
        {"min_gain_to_split": 1e6},  # only single-leaf trees
    ],
    ids=["nan", "zero", "none", "deep", "stumps"],
)
def test_fast_treeshap_equals_lightgbm_pred_contrib(data, params):
    X, y = data
    b = _booster(X[:, :5], y, rounds=25, **params)
    native = b.predict(X[:, :5], pred_contrib=True)
    fast = tree_shap(compile_lightgbm(b), X[:, :5], block_rows=64)
    np.testing.assert_allclose(fast, native, rtol=0, atol=1e-12)


def test_fast_treeshap_respects_best_iteration(data):
    X, y = data
    cut = 400
    b = lgb.train(
        {"objective": "binary", "verbosity": -1, "num_threads": 1, "learning_rate": 0.3},
        lgb.Dataset(X[:cut], y[:cut]),
        num_boost_round=200,
        valid_sets=[lgb.Dataset(X[cut:], y[cut:])],
        callbacks=[lgb.early_stopping(5, verbose=False)],
    )
    assert 0 < b.best_iteration < 200
    fast, _ = shap_values(b, X, method="fast")
    np.testing.assert_allclose(fast, b.predict(X, pred_contrib=True), rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.sum(axis=1), b.predict(X, raw_score=True), atol=1e-10)


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_shap_package_agrees_with_native_values(booster, data):
    shap = pytest.importorskip("shap")
    X, _ = data
    ours, _ = shap_values(booster, X, method="fast")
    explainer = shap.TreeExplainer(booster)
    theirs = np.asarray(explainer.shap_values(X))
    theirs = theirs[1] if theirs.ndim == 3 else theirs
    np.testing.assert_allclose(ours[:, :-1], theirs, rtol=0, atol=1e-9)
    base = np.ravel(explainer.expected_value)[-1]
    assert abs(ours[0, -1] - base) < 1e-9


def test_categorical_model_falls_back_to_native(data):
    X, y = data
    Xc = X[:, :4].copy()
    Xc[:, 3] = np.random.default_rng(1).integers(0, 6, len(Xc))
    b = _booster(Xc, y, rounds=10, categorical=[3], min_data_per_group=5, cat_smooth=1)
    with pytest.raises(UnsupportedModelError, match="categorical"):
        compile_lightgbm(b)
    values, _ = shap_values(b, Xc, method="auto")
    np.testing.assert_allclose(values, b.predict(Xc, pred_contrib=True), atol=0)
    with pytest.raises(UnsupportedModelError):
        shap_values(b, Xc, method="fast")


def test_estimators_with_booster_attribute_are_accepted(data):
    X, y = data
    clf = lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1, n_jobs=1).fit(X, y)
    values, names = shap_values(clf, pd.DataFrame(X, columns=clf.booster_.feature_name()))
    assert names == clf.booster_.feature_name()
    np.testing.assert_allclose(values, clf.booster_.predict(X, pred_contrib=True), atol=1e-12)
    with pytest.raises(TypeError, match="not a LightGBM model"):
        shap_values(object(), X)


def test_wrong_width_is_named(booster, data):
    X, _ = data
    with pytest.raises(ValueError, match="expects"):
        tree_shap(compile_lightgbm(booster), X[:, :3])


# ----------------------------------------------------------------------------- ranking


def test_top_drivers_match_a_full_sort():
    rng = np.random.default_rng(3)
    values = np.round(rng.normal(size=(500, 12)), 1)  # many exact ties
    cols = np.broadcast_to(np.arange(12), values.shape)
    for k in (1, 3, 12, 20):
        up, down = top_drivers(values, k)
        kk = min(k, 12)
        # decreasing (increasing) values, ties by column index, lower index wins at the cut
        np.testing.assert_array_equal(up, np.lexsort((cols, -values), axis=1)[:, :kk])
        np.testing.assert_array_equal(down, np.lexsort((cols, values), axis=1)[:, :kk])


# ----------------------------------------------------------------------------- reason codes


@pytest.fixture(scope="module")
def catalogue_table():
    """A feature table with the catalogue's columns and two models trained on it."""
    names = feature_names()
    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame(rng.normal(size=(n, len(names))), columns=names)
    frame.iloc[::17, 3] = np.nan
    frame.insert(0, "account_id", [f"acct-{i:04d}" for i in range(n)])
    y = (frame[names[0]] - frame[names[10]] + rng.normal(size=n) > 0).astype(int)
    churn = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, n_jobs=1).fit(
        frame[names], y
    )
    expand = lgb.LGBMClassifier(n_estimators=15, num_leaves=5, verbose=-1, n_jobs=1).fit(
        frame[names], 1 - y
    )
    return frame, {"churn": churn, "expand": expand}


def test_explain_frame_shape_order_and_content(catalogue_table):
    frame, models = catalogue_table
    codes = explain(models, frame, top_k=3)
    f = codes.frame
    assert tuple(f.columns) == REASON_COLUMNS
    assert set(f["target"].astype(str)) == {"churn", "expand"}
    assert f.groupby(["account_id", "target", "direction"], observed=True).size().max() <= 3
    up = f["direction"] == "up"
    assert (f.loc[up, "contribution"] > 0).all() and (f.loc[~up, "contribution"] < 0).all()
    # order: account (input order), target, direction, rank
    pos = pd.Index(frame["account_id"]).get_indexer(f["account_id"])
    key = pd.DataFrame(
        {
            "pos": pos,
            "t": f["target"].cat.codes,
            "d": f["direction"].cat.codes,
            "r": f["rank"],
        }
    )
    assert key.equals(key.sort_values(["pos", "t", "d", "r"]))
    # values, contributions and sentences are those of the model, the data and the catalogue
    churn = codes.shap["churn"]
    names = list(churn.feature_names)
    sample = f[f["target"] == "churn"].iloc[:50]
    rows = pd.Index(frame["account_id"]).get_indexer(sample["account_id"])
    cols = [names.index(x) for x in sample["feature"].astype(str)]
    np.testing.assert_allclose(sample["contribution"], churn.values[rows, cols])
    np.testing.assert_array_equal(sample["value"], frame[names].to_numpy()[rows, cols])
    expected = [
        CATALOG[ft].sentence(v)
        for ft, v in zip(sample["feature"].astype(str), sample["value"], strict=True)
    ]
    assert list(sample["sentence"].astype(str)) == expected
    # rank 1 up is the row's largest contribution
    first = f[(f["target"] == "churn") & up & (f["rank"] == 1)]
    r = pd.Index(frame["account_id"]).get_indexer(first["account_id"])
    np.testing.assert_allclose(first["contribution"], churn.values[r].max(axis=1))


def test_every_catalogue_feature_renders_a_sentence():
    names = list(CATALOG)
    probes = np.array([0.0, 1.0, -0.35, 0.8, 2.0, 12.5, 48_000.0, np.nan])
    feats = np.repeat(np.arange(len(names)), len(probes))
    vals = np.tile(probes, len(names))
    sentences = render_sentences(feats, vals, names, CATALOG)
    assert len(sentences) == len(feats)
    for text in sentences.astype(str):
        assert isinstance(text, str) and len(text) > 5 and "{" not in text
    nan_rows = np.isnan(vals)
    assert all("not available" in s for s in np.asarray(sentences.astype(str))[nan_rows])


def test_features_outside_the_catalogue_get_a_generic_sentence():
    s = render_sentences(np.array([0, 0, 1]), np.array([2.5, np.nan, 1.0]), ["x_new", "y"], {})
    assert list(s.astype(str)) == ["x_new is 2.5", "x_new is not available", "y is 1"]


def test_reasons_json_is_valid_and_complete(catalogue_table):
    frame, models = catalogue_table
    codes = explain(models, frame, top_k=2)
    col = codes.reasons_json()
    assert len(col) == len(frame)
    parsed = [json.loads(s) for s in col]
    assert sum(len(p) for p in parsed) == len(codes.frame)
    first = codes.frame[codes.frame["account_id"] == frame["account_id"].iloc[0]]
    assert [r["feature"] for r in parsed[0]] == list(first["feature"].astype(str))
    assert set(parsed[0][0]) == {
        "target",
        "direction",
        "feature",
        "value",
        "contribution",
        "sentence",
    }
    nan_rows = [r for p in parsed for r in p if r["value"] is None]
    assert all(math.isnan(v) for v in codes.frame["value"][codes.frame["value"].isna()])
    assert len(nan_rows) == int(codes.frame["value"].isna().sum())


def test_reasons_json_escapes_text_and_fills_empty_accounts():
    frame = pd.DataFrame(
        {
            "account_id": ["a"],
            "target": ["churn"],
            "direction": ["up"],
            "rank": [1],
            "feature": ["tickets_30d"],
            "value": [3.0],
            "contribution": [0.5],
            "sentence": ['9 "urgent" tickets </script>\n'],
        }
    )
    out = reasons_json(frame, ["a", "b"])
    assert json.loads(out.iloc[0])[0]["sentence"] == '9 "urgent" tickets </script>\n'
    assert out.iloc[1] == "[]"
    as_categories = frame.astype({c: "category" for c in ("target", "feature", "sentence")})
    assert reasons_json(as_categories, ["a", "b"]).equals(out)
    with pytest.raises(ValueError, match="duplicate|repeat"):
        reasons_json(frame, ["a", "a"])
    with pytest.raises(ValueError, match="unknown account_id"):
        reasons_json(frame, ["b"])


def test_plots_are_matplotlib_figures(catalogue_table):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    frame, models = catalogue_table
    codes = explain(models, frame.iloc[:120], top_k=2)
    fig = waterfall_figure(codes, "acct-0003", target="expand")
    bee = beeswarm_figure(codes, target="churn", max_points=50)
    try:
        assert isinstance(fig, Figure) and isinstance(bee, Figure)
        assert fig.axes and bee.axes
    finally:
        plt.close(fig)
        plt.close(bee)
    with pytest.raises(KeyError):
        waterfall_figure(codes, "nobody")


def test_beeswarm_is_the_same_figure_every_time_and_leaves_numpy_alone(catalogue_table):
    """shap jitters with numpy's global generator: seeded per plot, the caller's state kept."""
    import io

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    frame, models = catalogue_table
    codes = explain(models, frame.iloc[:120], top_k=2)

    def png(global_seed: int) -> bytes:
        np.random.seed(global_seed)  # noqa: NPY002 (shap's global generator)
        fig = beeswarm_figure(codes, target="churn", max_points=50)
        after = np.random.random()  # noqa: NPY002 (shap's global generator)
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        plt.close(fig)
        np.random.seed(global_seed)  # noqa: NPY002 (shap's global generator)
        assert after == np.random.random()  # noqa: NPY002 - the global stream continues as if untouched
        return buf.getvalue()

    assert png(1) == png(2)
