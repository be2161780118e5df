"""`nrrcast rebalance` on a small simulated source with stored scores: files, escaping, MLflow."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from evaluation.csv_safe import escape_frame
from flows.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("rebalance_cli")]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    from simulator import simulate
    from simulator.config import SimConfig

    out = tmp_path_factory.mktemp("world")
    simulate(SimConfig(accounts=300, months=3, seed=5), out, progress=False)
    return out


def _scores(world: Path, day: date) -> pd.DataFrame:
    """A scores table shaped like the segmenter's (probabilities drawn, seeded)."""
    acc = pd.read_parquet(world / "accounts.parquet")
    rng = np.random.default_rng(0)
    n = len(acc)
    tiers = np.array(["digital", "standard", "high_touch"], dtype=object)
    cur = acc["coverage"].astype(object).to_numpy()
    step = rng.choice([-1, 0, 0, 0, 1], n)
    rec = tiers[np.clip(pd.Categorical(cur, categories=tiers).codes + step, 0, 2)]
    p = rng.beta(1, 12, n)
    return pd.DataFrame(
        {
            "account_id": acc["account_id"].astype(object),
            "name": acc["name"].astype(object),
            "as_of": pd.Timestamp(day),
            "csm_id": acc["csm_id"].astype(object),
            "p_churn": p,
            "at_risk": p >= 0.2,
            "segment": rng.choice(["accelerate", "efficient_expansion", "prove_value"], n),
            "coverage_current": cur,
            "coverage_recommended": rec,
            "playbook": "Adoption plan",
        }
    )


def test_rebalance_command_writes_the_plan(world, tmp_path, mlflow_store):
    from evaluation import scores_store

    day = date.fromisoformat(json.loads((world / "manifest.json").read_text())["data_end"])
    scores = _scores(world, day)
    scores.loc[0, "name"] = '=HYPERLINK("http://x")'
    scores_dir = tmp_path / "scores"
    scores_store.write_scores(scores, scores_dir, day)
    named = scores.loc[scores["coverage_current"] != "digital", "csm_id"].dropna().unique()
    pd.DataFrame(
        {"csm_id": named, "name": [f"CSM {c}" for c in named],
         "email": [f"{c}@example.com" for c in named], "capacity": 30}
    ).to_parquet(world / "csms.parquet", index=False)  # replaces the simulated roster  # fmt: skip
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({
        "paths": {"scores": str(scores_dir), "quarantine": str(tmp_path / "q"),
                  "mlflow_uri": mlflow_store["uri"], "mlflow_artifacts": mlflow_store["artifacts"]},
        "territories": {"time_limit_seconds": 20},
    }))  # fmt: skip
    res = CliRunner().invoke(
        app, ["rebalance", "--as-of", day.isoformat(), "--source", str(world), "-c", str(cfg)]
    )
    assert res.exit_code == 0, res.output
    out = scores_dir / "rebalance" / f"as_of={day}"
    for name in ("assignment", "moves", "loads", "exceptions", "plan", "waves", "notices"):
        assert (out / f"{name}.parquet").exists() and (out / f"{name}.csv").exists()
    balance = json.loads((out / "balance.json").read_text())
    assert all(v == 0 for v in balance["violations"].values())
    assert balance["method"] in {"milp", "greedy"} and balance["csms_in_roster"] == len(named)
    # renewal dates came from the source's subscriptions
    a = pd.read_parquet(out / "assignment.parquet")
    assert a["days_to_renewal"].notna().mean() > 0.9
    # CSV cells that a spreadsheet would run are escaped
    text = (out / "assignment.csv").read_text()
    assert "'=HYPERLINK" in text and '\n"=HYPERLINK' not in text and ",=HYPERLINK" not in text
    assert (out / "announcement.md").read_text().startswith("# Customer Success territories")
    # a date that is not one, or not scored: one line each, no traceback
    base = ["rebalance", "--source", str(world), "-c", str(cfg), "--as-of"]
    bad = CliRunner().invoke(app, [*base, "June"])
    assert bad.exit_code == 2 and "'June' is not a date" in bad.output
    unscored = CliRunner().invoke(app, [*base, "2020-01-01"])
    assert unscored.exit_code == 1 and "nrrcast score --as-of 2020-01-01" in unscored.output
    assert "Traceback" not in bad.output + unscored.output
    # logged with the run
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"])
    exps = client.search_experiments()
    runs = [r for e in exps for r in client.search_runs([e.experiment_id])]
    assert any(r.data.tags.get("flow") == "rebalance" for r in runs)
    logged = next(r for r in runs if r.data.tags.get("flow") == "rebalance")
    assert logged.data.metrics["rebalance.moves"] == balance["moves"]
    assert logged.data.metrics["rebalance.violations.renewal_window"] == 0


def test_unknown_date_is_one_clear_line(world, tmp_path, mlflow_store):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({"paths": {"scores": str(tmp_path / "none")}}))
    res = CliRunner().invoke(app, ["rebalance", "--source", str(world), "-c", str(cfg)])
    assert res.exit_code == 1
    assert "run `nrrcast score` first" in res.output and "Traceback" not in res.output


def test_csv_escaping_leaves_numbers_alone():
    frame = pd.DataFrame({"t": ["=1+2", "+x", "-y", "@z", "ok", None], "n": [-1.0] * 6})
    out = escape_frame(frame, text_only=True)
    assert list(out["t"][:5]) == ["'=1+2", "'+x", "'-y", "'@z", "ok"] and pd.isna(out["t"][5])
    assert (out["n"] == -1.0).all()


def test_scoring_step_is_off_by_default_and_logs_when_on(world, tmp_path, mlflow_store):
    import mlflow

    from flows import tracking
    from flows.config import load_config
    from flows.score import _rebalance
    from flows.tasks import open_validated

    day = date.fromisoformat(json.loads((world / "manifest.json").read_text())["data_end"])
    scores = _scores(world, day)
    paths = {"scores": str(tmp_path / "scores"), "quarantine": str(tmp_path / "q")}
    loaded = open_validated(world, tmp_path / "q")
    try:
        off = load_config(overrides={"paths": paths})
        assert not off.territories.run_with_scoring
        assert _rebalance(off, loaded, scores, day) is None
        on = load_config(
            overrides={
                "paths": paths,
                "territories": {"run_with_scoring": True, "renewal_window_days": 400},
            }
        )
        exp = tracking.configure(mlflow_store["uri"], mlflow_store["artifacts"], "t")
        with tracking.run(exp, "score") as active:
            done = _rebalance(on, loaded, scores, day)
    finally:
        loaded.source.con.close()
    # a window longer than any term holds every account with a known renewal: only
    # accounts without one (no open subscription at as_of) may move
    a = done.result.assignment
    assert a["days_to_renewal"].notna().mean() > 0.9
    unknown = set(a.loc[a["days_to_renewal"].isna(), "account_id"])
    assert set(done.result.moves["account_id"]) <= unknown
    assert set(a.loc[a["term_months"] == 1, "account_id"]) <= set(
        done.result.exceptions["account_id"]
    )
    assert (done.path / "exceptions.csv").exists()
    run = mlflow.MlflowClient(tracking_uri=mlflow_store["uri"]).get_run(active.info.run_id)
    assert run.data.metrics["rebalance.moves"] == done.result.balance["moves"]
    assert run.data.params["rebalance.method"] in {"milp", "greedy"}
