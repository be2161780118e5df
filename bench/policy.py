"""Benchmark: does the coverage policy move NRR? Rolled forward in simulation, at equal capacity.

For each seed a world is simulated (`simulator`), its point-in-time features are built,
and the production models are trained (`models.train.train_all`) on snapshots whose
labels matured before the roll-out month ``m0``. From ``m0`` the book is rolled forward
``--quarters`` quarters (`simulator.rollout.Rollout`) under each coverage policy. At every
quarter start a policy picks the same number of accounts (the segmenter's high-touch
capacity) and runs one play on each; a touch changes the account's decisions by the
simulator's effect model (`simulator.interventions`: larger when the play matches the
account's real driver, near zero for accounts that stay or leave anyway). Decisions use
common random numbers, so policies differ only through their touches.

Policies (names as in the JSON):

- ``none``: nobody touched (reference);
- ``arr_rank_generic``: the largest accounts, a relationship play (today's status quo);
- ``arr_rank``: the largest accounts, with nrrcast's playbook play;
- ``health_rule``: the worst rule-based health scores (nrrcast's health baseline);
- ``risk_x_arr``: p_churn x ARR;
- ``segmenter``: nrrcast's priority (expected ARR at stake), its playbook play;
- ``uplift_x_arr``: a two-model uplift estimate x ARR, learned from two earlier quarters
  in which a random half of the segmenter's candidates were held out;
- ``random``: a random set of the same size;
- ``oracle``: the accounts with the largest true effect, with their best play.

NRR and GRR are measured on the cohort paying at ``m0`` over the roll-out; each policy's
NRR points against ``arr_rank_generic`` and ``arr_rank`` come with 95% intervals over the
seeds (paired: the same world under every policy). A sensitivity table repeats the
roll-outs with the touch effects scaled. The uplift model is judged against each
account's true effect (`evaluation.uplift`).

Usage::

    .venv/bin/python bench/policy.py --small     # 2,000 accounts, 5 seeds, 2 quarters
    .venv/bin/python bench/policy.py             # 20,000 accounts, 5 seeds, 3 quarters
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import BENCH, emit, logger, machine  # noqa: E402
from bench.common import feature_table as common_feature_table  # noqa: E402
from evaluation.uplift import observed_save_rate, uplift_summary  # noqa: E402
from models.config import ModelConfig  # noqa: E402
from models.explain import explain  # noqa: E402
from models.predict import predict_frame  # noqa: E402
from models.segment import SegmentConfig, segment  # noqa: E402
from models.uplift import TwoModelUplift, relative_arr_change  # noqa: E402
from simulator.config import SimConfig  # noqa: E402
from simulator.interventions import GENERIC_CHURN, family_of  # noqa: E402
from simulator.rollout import Rollout, nrr_grr  # noqa: E402
from simulator.world import build_world, simulate  # noqa: E402

_log = logger("policy-bench")
HORIZON = 60
POLICIES = (
    "none", "arr_rank_generic", "arr_rank", "health_rule", "risk_x_arr", "segmenter",
    "uplift_x_arr", "random", "oracle",
)  # fmt: skip
SCALES = (0.5, 1.0, 2.0)


def feature_table(world_dir: Path, cfg: SimConfig) -> pd.DataFrame:
    """Monthly point-in-time feature table of a simulated world (cached beside it)."""
    if not (world_dir / "manifest.json").exists():
        _log(f"simulating {cfg.accounts} accounts x {cfg.months} months (seed {cfg.seed})")
        simulate(cfg, world_dir, progress=False)
    table = common_feature_table(world_dir, world_dir.parent / f"{world_dir.name}_features.parquet")
    table["as_of"] = pd.to_datetime(table["as_of"]).astype("datetime64[us]")
    return table


def train(table: pd.DataFrame, t0: pd.Timestamp):
    """Production models trained only on snapshots whose labels matured before `t0`."""
    from features.catalog import feature_names
    from models.train import train_all

    past = table[table["as_of"] + pd.Timedelta(days=HORIZON) <= t0].reset_index(drop=True)
    names = [c for c in feature_names() if c in table.columns]
    return train_all(past, ModelConfig(), names, horizon_days=HORIZON), names


def thresholds(res) -> dict[str, float]:
    """Alert thresholds as the quarterly calibration sets them (the calib slice's rows)."""
    from evaluation.thresholds import choose_churn_threshold, choose_expand_threshold, flag_curve

    pred = res.predictions[res.predictions["slice"] == "calib"]
    out = {}
    for target, pick in (
        ("churn", lambda c: choose_churn_threshold(c, band=(10, 20))),
        ("expand", lambda c: choose_expand_threshold(c, target_precision=0.5)),
    ):
        curve = flag_curve(
            pred[f"p_{target}"].to_numpy(float),
            pred[res.targets[target].label].to_numpy(float),
            n_weeks=max(1, pred["as_of"].nunique()),
            n_csms=20,
        )
        out[target] = float(pick(curve)["threshold"])
    return out


class Scorer:
    """nrrcast's view of the book at a quarter start: probabilities, priority and play."""

    def __init__(self, res, names: list[str], table: pd.DataFrame, account_ids: np.ndarray):
        self.res, self.names, self.table = res, names, table
        self.ids = account_ids
        self.thr = thresholds(res)
        self.health = res.targets["churn"].baselines["health"]

    def rows_at(self, day: pd.Timestamp) -> pd.DataFrame:
        """Each account's latest snapshot at or before `day` (accounts saved by a policy
        keep the features of their last snapshot in the base world)."""
        past = self.table[self.table["as_of"] <= day]
        last = past.sort_values("as_of").drop_duplicates("account_id", keep="last")
        return last.reset_index(drop=True)

    def score(self, day: pd.Timestamp) -> pd.DataFrame:
        rows = self.rows_at(day)
        pred = predict_frame(self.res.models, rows)
        rows = rows.assign(p_churn=pred["p_churn"].to_numpy(), p_expand=pred["p_expand"].to_numpy())
        codes = explain(self.res.models, rows, top_k=3)
        cols = ["account_id", "as_of", "csm_id", "coverage", "arr", "tam_usd", "whitespace",
                "maturity_level", "maturity_stage", "p_churn", "p_expand"]  # fmt: skip
        seg = segment(rows[cols], codes, SegmentConfig(), churn_threshold=self.thr["churn"],
                      expand_threshold=self.thr["expand"])  # fmt: skip
        out = pd.DataFrame(
            {
                "account_id": rows["account_id"].to_numpy(),
                "p_churn": rows["p_churn"].to_numpy(),
                "priority": seg["priority"].to_numpy(float),
                "play": seg["playbook"].to_numpy(object),
                "health": self.health.health_score(rows[self.names]),
            }
        )
        out.attrs["capacity"] = int(seg.attrs["high_touch_capacity"])
        out.attrs["rows"] = rows
        return out

    def on_accounts(self, scored: pd.DataFrame, column: str, fill) -> np.ndarray:
        """A column of `scored` aligned to the world's account positions."""
        s = scored.set_index("account_id")[column]
        return s.reindex(self.ids).fillna(fill).to_numpy()


def top_k(score: np.ndarray, eligible: np.ndarray, k: int) -> np.ndarray:
    """Mask of the k eligible accounts with the highest score (ties by position)."""
    s = np.where(eligible, score, -np.inf)
    order = np.argsort(-s, kind="stable")[:k]
    mask = np.zeros(score.shape[0], dtype=bool)
    mask[order] = True
    return mask & eligible


def choose(policy: str, ro: Rollout, ctx: dict, k: int, rng: np.random.Generator, months: int):
    """(touched mask, family per account) of a policy at the roll-out's current month."""
    alive, arr, n = ro.alive, ro.arr, ro.alive.shape[0]
    play_family = ctx["family"]
    if policy == "none":
        return np.zeros(n, bool), np.full(n, "", object)
    if policy == "oracle":
        fam, value = ro.best_family(months)
        mask = top_k(value, alive, k)
        return mask, np.where(mask, fam, "")
    if policy == "random":
        mask = np.zeros(n, bool)
        mask[rng.choice(np.flatnonzero(alive), size=min(k, int(alive.sum())), replace=False)] = True
        return mask, np.where(mask, play_family, "")
    score = {
        "arr_rank_generic": arr,
        "arr_rank": arr,
        "health_rule": -ctx["health"],
        "risk_x_arr": ctx["p_churn"] * arr,
        "segmenter": ctx["priority"],
        "uplift_x_arr": ctx.get("uplift", np.zeros(n)) * arr,
    }[policy]
    mask = top_k(score, alive, k)
    fam = GENERIC_CHURN if policy == "arr_rank_generic" else play_family
    return mask, np.where(mask, fam, "")


def quarter_context(scorer: Scorer, world, day: pd.Timestamp, uplift=None) -> dict:
    scored = scorer.score(day)
    ctx = {
        "p_churn": scorer.on_accounts(scored, "p_churn", 0.0).astype(float),
        "priority": scorer.on_accounts(scored, "priority", 0.0).astype(float),
        "health": scorer.on_accounts(scored, "health", 0.0).astype(float),
        "family": family_of(scorer.on_accounts(scored, "play", "Renewal plan")),
        "capacity": scored.attrs["capacity"],
    }
    if uplift is not None:
        rows = scored.attrs["rows"].set_index("account_id").reindex(scorer.ids)
        ctx["uplift"] = uplift.predict(rows.reset_index())
    return ctx


def explore(world, cfg: SimConfig, scorer: Scorer, m0: int, seed: int, k: int):
    """Two quarters before m0: the segmenter's top 2k candidates, a random half held out.

    Returns the uplift training rows (features, touched, outcome) and the observed save
    rate of touched vs held-out candidates.
    """
    ro = Rollout(world, cfg, m0 - 6, seed=seed + 1000, months=6)
    rng = np.random.default_rng(seed + 2000)
    parts, churned, touched = [], [], []
    for q in range(2):
        day = pd.Timestamp(world.tl.start) + pd.DateOffset(months=m0 - 6 + 3 * q)
        ctx = quarter_context(scorer, world, day)
        cand = top_k(ctx["priority"], ro.alive, 2 * k)
        treat = cand & (rng.random(cand.shape[0]) < 0.5)
        res = ro.advance(3, np.where(treat, ctx["family"], ""))
        rows = scorer.rows_at(day).set_index("account_id").reindex(scorer.ids)
        y = relative_arr_change(res.arr_start, res.arr_end)
        part = rows.reset_index()[cand]
        parts.append(part.assign(_treated=treat[cand], _y=y[cand]))
        churned.append(res.churned[cand])
        touched.append(treat[cand])
    data = pd.concat(parts, ignore_index=True)
    save = observed_save_rate(np.concatenate(churned), np.concatenate(touched))
    return data, save


def run_seed(args, seed: int) -> dict:
    months = 12 + 3 * args.quarters
    cfg = SimConfig(accounts=args.accounts, months=months, seed=seed)
    wdir = BENCH / f"policy_world_{args.accounts}_{months}m_s{seed}"
    t0 = time.perf_counter()
    table = feature_table(wdir, cfg)
    world = build_world(cfg)
    m0 = 12
    day0 = pd.Timestamp(cfg.start_date) + pd.DateOffset(months=m0)
    res, names = train(table, day0)
    ids = np.array([f"A{i:06d}" for i in range(world.acc.n)], dtype=object)
    scorer = Scorer(res, names, table, ids)
    ctx0 = quarter_context(scorer, world, day0)
    k = int(ctx0["capacity"])
    _log(f"seed {seed}: world+features+models {time.perf_counter() - t0:.0f} s, capacity {k}")

    data, save = explore(world, cfg, scorer, m0, seed, k)
    uplift = TwoModelUplift(feature_names=names, random_state=seed).fit(
        data, data["_treated"].to_numpy(), data["_y"].to_numpy()
    )
    contexts = [quarter_context(scorer, world, day0, uplift)]
    for q in range(1, args.quarters):
        day = day0 + pd.DateOffset(months=3 * q)
        contexts.append(quarter_context(scorer, world, day, uplift))

    # the uplift model and other rankings judged against the true effect at m0
    ro = Rollout(world, cfg, m0, seed=seed, months=3 * args.quarters)
    truth = ro.touch_value(3, contexts[0]["family"])
    alive = ro.alive
    judged = {
        name: uplift_summary(truth[alive], score[alive], top_share=k / max(1, alive.sum()))
        for name, score in (
            ("uplift_x_arr", contexts[0]["uplift"] * ro.arr),
            ("segmenter", contexts[0]["priority"]),
            ("risk_x_arr", contexts[0]["p_churn"] * ro.arr),
            ("arr_rank", ro.arr),
        )
    }

    by_scale = {}
    for scale in SCALES if args.sensitivity else (1.0,):
        fx = cfg.touch.model_copy(
            update={
                "churn_effect": cfg.touch.churn_effect * scale,
                "expand_effect": cfg.touch.expand_effect * scale,
            }
        )
        scfg = cfg.model_copy(update={"touch": fx})
        by_scale[scale] = {
            p: roll(world, scfg, m0, seed, p, contexts, k, args.quarters) for p in POLICIES
        }
    return {
        "seed": seed,
        "capacity": k,
        "cohort_accounts": int(alive.sum()),
        "thresholds": scorer.thr,
        "exploration": {"rows": len(data), "observed_save_rate": save},
        "ranking_vs_true_effect": judged,
        "policies": by_scale,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def roll(world, cfg, m0, seed, policy, contexts, k, quarters) -> dict:
    ro = Rollout(world, cfg, m0, seed=seed, months=3 * quarters)
    rng = np.random.default_rng(seed + 3000)
    arr_start = ro.arr
    touched = 0
    for q in range(quarters):
        mask, fam = choose(policy, ro, contexts[q], k, rng, 3)
        touched += int(mask.sum())
        ro.advance(3, fam)
    arr_end = ro.arr
    nrr, grr = nrr_grr(arr_start, arr_end)
    churned = (arr_start > 0) & (arr_end == 0)
    return {
        "nrr": nrr,
        "grr": grr,
        "churned_arr": float(arr_start[churned].sum()),
        "expansion_arr": float(np.clip(arr_end - arr_start, 0, None)[~churned].sum()),
        "churned_accounts": int(churned.sum()),
        "touches": touched,
    }


def interval(x: np.ndarray) -> dict[str, float]:
    """Mean and 95% t-interval over seeds."""
    x = np.asarray(x, dtype=float)
    mean = float(x.mean())
    if x.shape[0] < 2:
        return {"mean": round(mean, 3), "low": float("nan"), "high": float("nan")}
    half = float(stats.t.ppf(0.975, x.shape[0] - 1) * x.std(ddof=1) / np.sqrt(x.shape[0]))
    return {"mean": round(mean, 3), "low": round(mean - half, 3), "high": round(mean + half, 3)}


def summarise(seeds: list[dict], months: int) -> dict:
    out = {}
    for scale in seeds[0]["policies"]:
        table = {}
        for p in POLICIES:
            nrr = np.array([s["policies"][scale][p]["nrr"] for s in seeds])
            grr = np.array([s["policies"][scale][p]["grr"] for s in seeds])
            row = {
                "nrr_pct": interval(100 * nrr),
                "grr_pct": interval(100 * grr),
                "nrr_annualised_pct": interval(100 * nrr ** (12 / months)),
                "churned_arr": interval([s["policies"][scale][p]["churned_arr"] for s in seeds]),
                "expansion_arr": interval(
                    [s["policies"][scale][p]["expansion_arr"] for s in seeds]
                ),
            }
            for ref in ("arr_rank_generic", "arr_rank"):
                base = np.array([s["policies"][scale][ref]["nrr"] for s in seeds])
                row[f"nrr_points_vs_{ref}"] = interval(100 * (nrr - base))
                row[f"nrr_points_annualised_vs_{ref}"] = interval(
                    100 * (nrr ** (12 / months) - base ** (12 / months))
                )
            table[p] = row
        out[f"effects_x{scale}"] = table
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", action="store_true", help="2,000 accounts, 2 quarters")
    ap.add_argument("--accounts", type=int)
    ap.add_argument("--quarters", type=int)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--no-sensitivity", dest="sensitivity", action="store_false")
    args = ap.parse_args()
    args.accounts = args.accounts or (2000 if args.small else 20000)
    args.quarters = args.quarters or (2 if args.small else 3)
    if not 1 <= args.quarters <= 4:
        raise SystemExit("--quarters must be 1..4")
    t0 = time.perf_counter()
    seeds = [run_seed(args, 101 + i) for i in range(args.seeds)]
    months = 3 * args.quarters
    out = {
        "benchmark": "policy",
        "accounts": args.accounts,
        "quarters": args.quarters,
        "seeds": [s["seed"] for s in seeds],
        "touch_effects": SimConfig().touch.model_dump(),
        "baseline": "arr_rank_generic (largest accounts, relationship play) and arr_rank",
        "summary": summarise(seeds, months),
        "uplift_vs_truth": {
            name: {
                key: interval([s["ranking_vs_true_effect"][name][key] for s in seeds])
                for key in ("auuc_normalised", "qini", "top_effect")
            }
            for name in seeds[0]["ranking_vs_true_effect"]
        },
        "observed_save_rate": [s["exploration"]["observed_save_rate"] for s in seeds],
        "per_seed": seeds,
        "seconds": round(time.perf_counter() - t0, 1),
        "machine": machine(),
    }
    emit(out)


if __name__ == "__main__":
    main()
