"""Did a change alter nrrcast's outputs? Run the demo and the deterministic benchmarks on two
checkouts and compare everything they produce.

For each checkout A and B, its working tree (without .git, .venv, data/, mlruns/) is copied
into ``SCRATCH/A/tree`` (``SCRATCH/B/tree``), and everything runs there with that copy on
PYTHONPATH and the interpreter running this script (``--python``), so nothing is written
into the checkouts and the benchmarks' ``data/bench`` caches are not shared. Both sides, at
the same time, run:

1. ``python -m flows.cli demo`` with the same small configuration (``--accounts``,
   ``--months``, ``--seed``; models.split shortened; MLflow at the config's relative
   ``sqlite:///mlruns/mlflow.db``; PREFECT_HOME and a temporary Prefect server inside the
   side's scratch dir; PYTHONHASHSEED=0);
2. ``validate`` and ``features`` on a copy of the demo's world with ``FAULTS`` written in
   (so the quarantine and the handling of bad rows are compared);
3. the small modes of the benchmarks named by ``--benches``.

Compared, file by file under ``data/`` (a file present on one side only is a difference):

- Parquet: columns, dtypes, row count, every value (floats to ``--atol``, default 1e-12),
  in stored row order except for ``UNORDERED_FILES`` (the quarantine: compared as sets);
- DuckDB files: every table, as Parquet;
- YAML / JSON: parsed, compared key by key (``VOLATILE_KEYS`` ignored);
- HTML reports: every embedded ``<script type="application/json">`` payload decoded
  (gzip+base64 or plain) and compared key by key; ``data:`` URIs decoded and compared as
  text; the inline script compared as text; the remaining HTML compared line by line
  after ``normalise`` (run ids, timestamps, durations, absolute paths) and with the
  Content-Security-Policy's script hash replaced (the script is compared itself);
- CSV, Markdown, text, Python: line by line after ``normalise``; skops files: their schema
  without object ids, arrays by content; anything else: bytes.

The console output of each step (nrrcast's log messages and plain lines) and its exit code
are compared too.

Values derived from a tree's absolute path (the scoring runs' ``source_key`` tag) are
replaced on both sides (``path_aliases``). Known, intended differences: ``--allow REGEX``
(repeatable) moves the difference lines it matches to "expected"; they do not count.

Cross (``--no-cross`` skips it): B's code scores the end of the data again on a copy of
A's data and MLflow store (models A trained, A's thresholds file); the files it rewrites
must equal A's: saved models and files users keep still load and give the same scores.

The MLflow store of each side (its sqlite file, read with sqlite3) is compared run by run
in start order within each experiment: run name, status, every metric (key, step,
value), params, tags (without ``IGNORED_TAGS`` and with ``normalise``), artifact file
list; then registered models, their versions (source run by position) and aliases.

Benchmarks: the JSON each prints is flattened; keys that are timings or machine figures
(``TIMING_KEY``) are reported, not compared; every other figure must be equal (floats to
``--atol``). The benchmarks named by ``--repeat`` (default backtest, whose recalibration
is not seeded: evaluation.thresholds.fit_calibrator) run twice on A; figures that differ
between those two runs are run-to-run noise, listed under ``noise`` and not compared.

Prints one JSON object: {"a": ..., "b": ..., "artifacts": {name: {"equal": bool,
"differences": [...first few...]}}, "mlflow": ..., "benches": ..., "ignored": ...}.
Exit code 0 when everything compared is equal, 1 otherwise.

Usage::

    .venv/bin/python bench/equivalence.py A_CHECKOUT B_CHECKOUT SCRATCH_DIR
    .venv/bin/python bench/equivalence.py /work/wt/before . /tmp/eq --benches quality,train
    .venv/bin/python bench/equivalence.py A B /tmp/eq --compare-only   # reuse earlier runs
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import difflib
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "data",
    "mlruns",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    "*.pyc",
    ".hypothesis",
    "spark-warehouse",
)
BENCHES = {
    # name -> arguments; run in this order (quality builds the caches train and backtest read)
    "quality": ["bench/quality.py", "--small"],
    "train": ["bench/train.py", "--small"],
    "backtest": ["bench/backtest.py", "--small"],
    "features": ["bench/features.py", "--small", "--no-baseline"],
    "policy": ["bench/policy.py", "--small", "--seeds", "2", "--no-sensitivity"],
    "simulate": ["bench/simulate.py", "--small"],
}
DEFAULT_BENCHES = "quality,train,backtest,features,policy"
# keys whose values are run-specific by nature: never compared (listed in the output)
VOLATILE_KEYS = re.compile(
    r"(^|[._])(run_id|run_ids|experiment_id|generated|generated_at|created|created_at|"
    r"timestamp|written_at|started|finished|start_time|end_time|duration|duration_s|"
    r"elapsed|wall_seconds|cpu_seconds|host|hostname|pid|user|write_id|utc_time_created|model_uuid)$"
)
IGNORED_TAGS = re.compile(r"^mlflow\.(source\..*|user|log-model\.history|runName)$")
# benchmark figures that measure the machine, not the code
TIMING_KEY = re.compile(
    r"(wall|cpu|seconds|_s$|\.s$|per_second|rss|_mb$|load|speed|elapsed|duration|time|"
    r"throughput|machine|python|platform|threads|cores)",
    re.I,
)
NORMALISERS = [
    (re.compile(r"\b[0-9a-f]{32}\b"), "<run-id>"),
    (
        re.compile(
            r"\b\d{4}[-/]\d{2}[-/]\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2}| UTC)?"
        ),
        "<timestamp>",
    ),
    (re.compile(r"\b\d+(\.\d+)?\s?(ms|s|seconds|sec)\b"), "<duration>"),
    (re.compile(r"/tmp/(tmp|nrr_)[\w-]+"), "<tmpdir>"),  # tempfile.mkdtemp() directories
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
]
MAX_DIFFS = 8
_PYTHON = [sys.executable]  # the interpreter of both sides (--python)
# files that differ between two runs of the same code: not compared (listed in the output).
# shap.plots.beeswarm (shap 0.51) jitters with NumPy's global random state, unseeded.
NONDETERMINISTIC_FILES = re.compile(r"_shap_beeswarm\.png$")
# tables whose row order varies from run to run (features/validate.py writes the quarantine
# with COPY (SELECT ...) without ORDER BY): compared as sets of rows, sorted on every column
UNORDERED_FILES = re.compile(r"(^|/)quarantine[^/]*/[^/]+\.parquet$")


# ----------------------------------------------------------------------------- running


def prepare(checkout: Path, side: Path) -> dict[str, Any]:
    """Copy the checkout's working tree into ``side/tree``; return its git identity.

    Parameters
    ----------
    checkout : Path
        A git working tree of nrrcast.
    side : Path
        Scratch directory of this side (replaced).

    Returns
    -------
    dict
        ``path``, ``commit``, ``subject`` and ``dirty`` (uncommitted changes were copied).
    """

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
        return out.stdout.strip()

    if side.exists() and any(side.iterdir()) and not (side / "tree").is_dir():
        raise SystemExit(f"{side} exists and was not written by this script: not replaced")
    for _ in range(3):  # a checkout that moves (a merge) while it is copied is copied again
        head = git("rev-parse", "HEAD")
        if side.exists():
            shutil.rmtree(side)
        side.mkdir(parents=True)
        shutil.copytree(checkout, side / "tree", ignore=COPY_IGNORE, symlinks=True)
        if git("rev-parse", "HEAD") == head:
            break
    else:
        raise SystemExit(f"{checkout} kept moving while it was copied: try again")
    return {
        "path": str(checkout),
        "commit": git("rev-parse", "HEAD"),
        "subject": git("log", "-1", "--format=%s"),
        "dirty": bool(git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")),
    }


def demo_config(accounts: int, months: int, seed: int) -> dict[str, Any]:
    """The demo's configuration: paths relative to the tree, a small world, short splits.

    Parameters
    ----------
    accounts, months, seed : int
        The simulated world.

    Returns
    -------
    dict
        A config laid over configs/default.yaml.
    """
    return {
        "paths": {"thresholds_dir": "data/thresholds"},
        "simulate": {"accounts": accounts, "months": months, "seed": seed},
        "models": {
            "split": {"valid_dates": 1, "calib_dates": 2, "test_dates": 2, "min_train_dates": 2}
        },
    }


def side_env(side: Path) -> dict[str, str]:
    """Environment of one side: its tree first on the path, its own Prefect home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))}
    env.update(
        PYTHONPATH=str(side / "tree"),
        PYTHONHASHSEED="0",
        PREFECT_HOME=str(side / "prefect_home"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        MPLBACKEND="Agg",
    )
    return env


def run_step(side: Path, name: str, argv: list[str], timeout: float) -> dict[str, Any]:
    """Run one command in the side's tree; stdout and stderr to ``side/logs/<name>.*``."""
    logs = side / "logs"
    logs.mkdir(exist_ok=True)
    t0 = time.perf_counter()
    with open(logs / f"{name}.out", "w") as out, open(logs / f"{name}.err", "w") as err:
        try:
            proc = subprocess.run(
                [_PYTHON[0], *argv],
                cwd=side / "tree",
                env=side_env(side),
                stdout=out,
                stderr=err,
                timeout=timeout,
            )
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    return {"exit": code, "wall_seconds": round(time.perf_counter() - t0, 1),
            "load_1min": round(os.getloadavg()[0], 2)}  # fmt: skip


# faults written into a copy of the demo's world (table, row, column, value), so that the
# validation's quarantine and the features of a dirty source are compared too
FAULTS = [
    ("accounts", "dup", 0, None),
    ("accounts", 1, "tam_usd", -5.0),
    ("accounts", 2, "coverage", "platinum"),
    ("accounts", 3, "account_id", None),
    ("subscriptions", 0, "mrr", -100.0),
    ("subscriptions", 1, "account_id", "A999999"),
    ("subscriptions", 2, "seats", -3),
    ("users", 0, "account_id", None),
    ("users", "dup", 1, None),
    ("tickets", 0, "created_at", "1990-01-01"),
    ("tickets", 1, "csat", 9.0),
    ("tickets", 2, "priority", "urgent!!"),
    ("events/part-2026-01", 0, "ts", "2031-01-01"),
    ("events/part-2026-01", 1, "account_id", "A999999"),
    ("events/part-2026-01", 2, "quantity", -1.0),
    ("events/part-2026-01", 3, "actor", None),
]


def make_dirty(raw: Path, dirty: Path) -> list[str]:
    """A copy of the world at `raw` with FAULTS written in; returns the faults applied."""
    if dirty.exists():
        shutil.rmtree(dirty)
    shutil.copytree(raw, dirty, ignore=shutil.ignore_patterns("truth.parquet"))
    applied = []
    for table, row, col, value in FAULTS:
        path = dirty / f"{table}.parquet"
        if not path.exists():
            continue
        df = pd.read_parquet(path)
        if row == "dup":
            df = pd.concat([df, df.iloc[[col]]], ignore_index=True)
        elif col in df.columns and row < len(df):
            if value is not None and pd.api.types.is_datetime64_any_dtype(df[col]):
                value = pd.Timestamp(value)
            df[col] = df[col].astype(object)
            df.loc[row, col] = value
            df[col] = df[col].astype(pd.read_parquet(path)[col].dtype, errors="ignore")
        else:
            continue
        df.to_parquet(path, index=False)
        applied.append(f"{table}[{row}].{col}={value!r}" if row != "dup" else f"{table}: dup")
    return applied


def run_side(side: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The demo, validate and features of a dirty copy, then each benchmark, in one tree."""
    cfg = side / "tree" / "equivalence.yaml"
    cfg.write_text(yaml.safe_dump(demo_config(args.accounts, args.months, args.seed)))
    steps = {}
    if not args.no_demo:
        argv = ["-m", "flows.cli", "demo", "--config", "equivalence.yaml"]
        steps["demo"] = run_step(side, "demo", argv, args.timeout)
        data = side / "tree" / "data"
        steps["dirty_faults"] = make_dirty(data / "raw", data / "dirty")
        common = ["--source", "data/dirty", "--config", "equivalence.yaml"]
        argv = ["-m", "flows.cli", "validate", *common, "--quarantine", "data/quarantine_dirty"]
        steps["validate_dirty"] = run_step(side, "validate_dirty", argv, args.timeout)
        argv = ["-m", "flows.cli", "features", *common, "--out", "data/features_dirty"]
        steps["features_dirty"] = run_step(side, "features_dirty", argv, args.timeout)
    for bench in args.bench_list:
        steps[bench] = run_step(side, bench, BENCHES[bench], args.timeout)
        if side.name == "A" and bench in args.repeat_list:  # run-to-run noise of the figures
            steps[f"{bench}.again"] = run_step(side, f"{bench}.again", BENCHES[bench], args.timeout)
    (side / "steps.json").write_text(json.dumps(steps, indent=1))
    return steps


def run_cross(scratch: Path, args: argparse.Namespace) -> dict[str, Any]:
    """B's code on what A's code left behind (its world, models, thresholds, scores): score
    the end of the data again in ``SCRATCH/X/tree``. Saved models and files users keep must
    still load and give A's scores."""
    x = scratch / "X"
    if x.exists():
        if not (x / "tree").is_dir():
            raise SystemExit(f"{x} exists and was not written by this script: not replaced")
        shutil.rmtree(x)
    x.mkdir()
    shutil.copytree(scratch / "B" / "tree", x / "tree", ignore=COPY_IGNORE, symlinks=True)
    a_tree = scratch / "A" / "tree"
    shutil.copytree(a_tree / "data", x / "tree" / "data", ignore=shutil.ignore_patterns("bench"))
    shutil.copytree(a_tree / "mlruns", x / "tree" / "mlruns")
    shutil.copy(a_tree / "equivalence.yaml", x / "tree" / "equivalence.yaml")
    started = time.time()
    argv = ["-m", "flows.cli", "score", "--config", "equivalence.yaml"]
    step = run_step(x, "cross_score", argv, args.timeout)
    data = x / "tree" / "data"
    step["rewritten"] = sorted(
        p.relative_to(data).as_posix()
        for p in data.rglob("*")
        if p.is_file() and p.stat().st_mtime >= started and p.suffix != ".duckdb"
    )
    (x / "steps.json").write_text(json.dumps(step, indent=1))
    return step


def compare_cross(scratch: Path, roots: list[Any], atol: float) -> dict[str, Any]:
    """The files B's code rewrote from A's store against A's own (see ``run_cross``)."""
    step_file = scratch / "X" / "steps.json"
    if not step_file.exists():
        return {"equal": False, "differences": ["no cross run (SCRATCH/X/steps.json)"]}
    step = json.loads(step_file.read_text())
    a, x = scratch / "A" / "tree" / "data", scratch / "X" / "tree" / "data"
    diffs = [] if step.get("exit") == 0 else [f"score exited {step.get('exit')}"]
    for rel in step.get("rewritten", []):
        if not (a / rel).exists():
            diffs.append(f"{rel}: not written by A")
            continue
        diffs += [f"{rel}: {d}" for d in compare_file(a / rel, x / rel, roots, atol)]
    return {"equal": not diffs, "files_compared": len(step.get("rewritten", [])),
            "differences": diffs}  # fmt: skip


# ----------------------------------------------------------------------------- comparing


def normalise(text: str, roots: list[str | tuple[str, str]]) -> str:
    """Text without what differs between two runs of the same code (see NORMALISERS).

    ``roots`` are the two trees' absolute paths (replaced by ``<root>``) and
    ``(text, placeholder)`` pairs for values derived from them (see ``path_aliases``).
    """
    for root in roots:
        old, new = (root, "<root>") if isinstance(root, str) else root
        text = text.replace(old, new)
    for pattern, repl in NORMALISERS:
        text = pattern.sub(repl, text)
    return text


def _close(a: Any, b: Any, atol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        return a == b or abs(a - b) <= atol
    return a == b


def compare_values(a: Any, b: Any, atol: float = 1e-12, path: str = "",
                   ignore: re.Pattern[str] | None = VOLATILE_KEYS,
                   roots: list[str] | None = None) -> list[str]:  # fmt: skip
    """Differences between two parsed JSON/YAML values, key by key.

    Parameters
    ----------
    a, b : Any
        Parsed values (dicts, lists, scalars).
    atol : float
        Absolute tolerance for numbers.
    path : str
        Where ``a`` and ``b`` sit (prefix of the reported keys).
    ignore : re.Pattern or None
        Keys (full dotted path) not compared.
    roots : list of str or None
        Absolute paths replaced in strings before comparing (see ``normalise``).

    Returns
    -------
    list of str
        One line per difference: ``path: a -> b``; empty when equal.

    Examples
    --------
    >>> compare_values({"x": 1.0, "run_id": "a"}, {"x": 1.0, "run_id": "b"})
    []
    >>> compare_values({"x": [1, 2]}, {"x": [1, 3], "y": 0})
    ['y: only in B', 'x[1]: 2 -> 3']
    """
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}".lstrip(".") + ": only in A" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}".lstrip(".") + ": only in B" for k in b.keys() - a.keys()]
        out.sort()
        for k in a.keys() & b.keys():
            sub = f"{path}.{k}".lstrip(".")
            if ignore is not None and ignore.search(sub):
                continue
            out += compare_values(a[k], b[k], atol, sub, ignore, roots)
        return out
    if isinstance(a, list) and isinstance(b, list):
        out = [] if len(a) == len(b) else [f"{path}: length {len(a)} -> {len(b)}"]
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            out += compare_values(x, y, atol, f"{path}[{i}]", ignore, roots)
        return out
    if isinstance(a, str) and isinstance(b, str) and roots:
        a, b = normalise(a, roots), normalise(b, roots)
    if _close(a, b, atol):
        return []
    return [f"{path}: {_short(a)} -> {_short(b)}"]


def _short(v: Any, n: int = 120) -> str:
    text = json.dumps(v, default=str) if not isinstance(v, str) else repr(v)
    return text if len(text) <= n else text[: n - 3] + "..."


def compare_frames(
    a: pd.DataFrame, b: pd.DataFrame, atol: float = 1e-12, ignore: re.Pattern[str] | None = None
) -> list[str]:
    """Differences between two tables: columns, dtypes, rows, then values cell by cell.

    Parameters
    ----------
    a, b : pandas.DataFrame
        The tables, in their stored row order.
    atol : float
        Absolute tolerance for float columns (NaN equals NaN).
    ignore : re.Pattern or None
        Columns whose values are not compared (e.g. a write's id and time).

    Returns
    -------
    list of str
        One line per difference (per column: count and first differing rows); empty
        when equal.

    Examples
    --------
    >>> a = pd.DataFrame({"k": [1, 2], "p": [0.1, 0.2]})
    >>> compare_frames(a, a.assign(p=[0.1, 0.2 + 1e-15]))
    []
    >>> compare_frames(a, a.assign(p=[0.1, 0.3]))
    ['column p: 1 of 2 rows differ, first at rows [1]: 0.2 -> 0.3']
    """
    out = []
    if list(a.columns) != list(b.columns):
        only_a = [c for c in a.columns if c not in b.columns]
        only_b = [c for c in b.columns if c not in a.columns]
        out.append(f"columns differ: only in A {only_a}, only in B {only_b}"
                   + ("" if only_a or only_b else " (order)"))  # fmt: skip
    if len(a) != len(b):
        out.append(f"rows: {len(a)} -> {len(b)}")
    n = min(len(a), len(b))
    for col in [c for c in a.columns if c in b.columns]:
        if ignore is not None and ignore.search(col):
            continue
        x, y = a[col].iloc[:n], b[col].iloc[:n]
        if str(x.dtype) != str(y.dtype):
            out.append(f"column {col}: dtype {x.dtype} -> {y.dtype}")
        bad = _differing_rows(x.reset_index(drop=True), y.reset_index(drop=True), atol)
        if len(bad):
            first = bad[:3]
            out.append(f"column {col}: {len(bad)} of {n} rows differ, first at rows "
                       f"{first.tolist()}: {_short(x.iloc[first[0]], 60)} -> "
                       f"{_short(y.iloc[first[0]], 60)}")  # fmt: skip
    return out


def _differing_rows(x: pd.Series, y: pd.Series, atol: float) -> np.ndarray:
    if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
        xv, yv = x.to_numpy(dtype=float), y.to_numpy(dtype=float)
        both_nan = np.isnan(xv) & np.isnan(yv)
        same = both_nan | (np.abs(xv - yv) <= atol) | (xv == yv)
        return np.flatnonzero(~same)
    xo, yo = x.astype(object).to_numpy(), y.astype(object).to_numpy()
    same = np.array([_cell_equal(p, q) for p, q in zip(xo, yo, strict=True)], dtype=bool)
    return np.flatnonzero(~same)


def _cell_equal(p: Any, q: Any) -> bool:
    p_na = p is None or (not isinstance(p, (list, np.ndarray, dict)) and pd.isna(p))
    q_na = q is None or (not isinstance(q, (list, np.ndarray, dict)) and pd.isna(q))
    if p_na or q_na:
        return p_na and q_na
    if isinstance(p, np.ndarray) or isinstance(q, np.ndarray):
        return np.array_equal(np.asarray(p, dtype=object), np.asarray(q, dtype=object))
    return bool(p == q)


def compare_text(a: str, b: str, roots: list[str]) -> list[str]:
    """The first lines of a unified diff of two normalised texts; empty when equal."""
    la, lb = normalise(a, roots).splitlines(), normalise(b, roots).splitlines()
    if la == lb:
        return []
    diff = difflib.unified_diff(la, lb, "A", "B", n=0, lineterm="")
    return [_short(line, 200) for line in list(diff)[2:]]


HTML_JSON = re.compile(r'<script type="application/json"([^>]*)>(.*?)</script>', re.S)
CSP_HASH = re.compile(r"'sha256-[A-Za-z0-9+/=]+'")
HTML_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
DATA_URI = re.compile(r"data:([a-z/+\-.]+)(;charset=[\w-]+)?;base64,([A-Za-z0-9+/=]+)")


def split_html(html: str) -> dict[str, Any]:
    """A report split into comparable parts: embedded JSON payloads (decoded), data: URIs
    (decoded), inline scripts, and the remaining markup with those replaced by markers (and
    the Content-Security-Policy's script hash by a placeholder)."""
    parts: dict[str, Any] = {}

    def payload(m: re.Match[str]) -> str:
        attrs, body = m.group(1), m.group(2)
        ident = re.search(r'id="([^"]+)"', attrs)
        key = f"json#{ident.group(1) if ident else len(parts)}"
        if 'data-encoding="gzip+base64"' in attrs:
            body = gzip.decompress(base64.b64decode(body)).decode("utf-8")
        parts[key] = json.loads(body)
        # the encoding (plain or gzip+base64) follows the payload's size: not compared
        return f'<script type="application/json" [{key}]></script>'

    def script(m: re.Match[str]) -> str:
        key = f"script#{sum(k.startswith('script') for k in parts)}"
        parts[key] = m.group(1)
        return f"<script>[{key}]</script>"

    def data_uri(m: re.Match[str]) -> str:
        key = f"data-uri#{sum(k.startswith('data-uri') for k in parts)}"
        raw = base64.b64decode(m.group(3))
        parts[key] = raw.decode("utf-8", "replace") if m.group(1).startswith("text") else raw
        return f"data:{m.group(1)};base64,[{key}]"

    rest = HTML_JSON.sub(payload, html)
    rest = HTML_SCRIPT.sub(script, rest)
    # the Content-Security-Policy carries the inline script's hash: the script is compared
    rest = CSP_HASH.sub("'sha256-<hash of the inline script>'", rest)
    parts["markup"] = DATA_URI.sub(data_uri, rest)
    return parts


def compare_html(a: str, b: str, roots: list[str], atol: float) -> list[str]:
    """Differences between two reports, part by part (see ``split_html``)."""
    pa, pb = split_html(a), split_html(b)
    out = [f"{k}: only in A" for k in pa.keys() - pb.keys()]
    out += [f"{k}: only in B" for k in pb.keys() - pa.keys()]
    for key in sorted(pa.keys() & pb.keys()):
        x, y = pa[key], pb[key]
        if key.startswith("json"):
            diffs = compare_values(x, y, atol, roots=roots)
        elif isinstance(x, bytes) or isinstance(y, bytes):
            diffs = [] if x == y else [f"{len(x)} bytes -> {len(y)} bytes"]
        else:
            diffs = compare_text(x, y, roots)
        out += [f"{key}: {d}" for d in diffs]
    return out


def read_duckdb(path: Path) -> dict[str, pd.DataFrame]:
    """Every table of a DuckDB file, in a stable row order (all columns)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM information_schema.tables ORDER BY table_name"
            ).fetchall()
        ]
        return {n: con.execute(f'SELECT * FROM "{n}" ORDER BY ALL').df() for n in names}
    finally:
        con.close()


def skops_schema(path: Path) -> Any:
    """A skops file's schema with its object ids dropped and each array file named by a hash
    of its bytes: skops names objects by memory address, which differs from run to run."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        schema = json.loads(zf.read("schema.json"))

        def canon(v: Any) -> Any:
            if isinstance(v, dict):
                out = {k: canon(x) for k, x in v.items() if k != "__id__"}
                if isinstance(v.get("file"), str) and v["file"] in zf.namelist():
                    out["file"] = hashlib.sha256(zf.read(v["file"])).hexdigest()[:16]
                return out
            if isinstance(v, list):
                return [canon(x) for x in v]
            return v

        return canon(schema)


def compare_file(a: Path, b: Path, roots: list[str], atol: float) -> list[str]:
    """Differences between two output files of the same kind (by suffix)."""
    suffix = a.suffix.lower()
    if suffix == ".parquet":
        fa, fb = pd.read_parquet(a), pd.read_parquet(b)
        if UNORDERED_FILES.search(a.as_posix()) and list(fa.columns) == list(fb.columns):
            fa, fb = (f.sort_values(list(f.columns)).reset_index(drop=True) for f in (fa, fb))
        return compare_frames(fa, fb, atol, VOLATILE_KEYS)
    if suffix == ".duckdb":
        ta, tb = read_duckdb(a), read_duckdb(b)
        out = [f"table {t}: only in A" for t in ta.keys() - tb.keys()]
        out += [f"table {t}: only in B" for t in tb.keys() - ta.keys()]
        for t in sorted(ta.keys() & tb.keys()):
            diffs = compare_frames(ta[t], tb[t], atol, ignore=VOLATILE_KEYS)
            out += [f"table {t}: {d}" for d in diffs]
        return out
    if suffix == ".skops":
        return compare_values(skops_schema(a), skops_schema(b), atol, ignore=None)
    if suffix in (".yaml", ".yml") or a.name == "MLmodel":
        return compare_values(yaml.safe_load(a.read_text()), yaml.safe_load(b.read_text()),
                              atol, roots=roots)  # fmt: skip
    if suffix == ".json":
        return compare_values(json.loads(a.read_text()), json.loads(b.read_text()), atol,
                              roots=roots)  # fmt: skip
    if suffix in (".html", ".htm"):
        return compare_html(a.read_text(), b.read_text(), roots, atol)
    if suffix in (".csv", ".txt", ".md", ".eml", ".log", ".js", ".css", ".py"):
        return compare_text(a.read_text(errors="replace"), b.read_text(errors="replace"), roots)
    return [] if a.read_bytes() == b.read_bytes() else ["bytes differ"]


def compare_trees(a: Path, b: Path, roots: list[str], atol: float,
                  skip: tuple[str, ...] = ("bench/", "raw/", "dirty/")) -> dict[str, Any]:  # fmt: skip
    """Every file under two output directories, matched by relative path."""

    def files(root: Path) -> set[str]:
        return {p.relative_to(root).as_posix() for p in root.rglob("*")
                if p.is_file() and not p.name.endswith((".lock", ".wal", ".tmp"))}  # fmt: skip

    fa, fb = files(a), files(b)
    out: dict[str, Any] = {}
    for rel in sorted(fa | fb):
        if rel.startswith(skip) and rel not in ("raw/manifest.json",):
            continue
        if rel not in fb or rel not in fa:
            out[rel] = {"equal": False, "differences": ["only in " + ("A" if rel in fa else "B")]}
            continue
        try:
            diffs = compare_file(a / rel, b / rel, roots, atol)
        except Exception as exc:  # a file that cannot be read is a difference, not a crash
            diffs = [f"could not compare: {type(exc).__name__}: {exc}"]
        out[rel] = {"equal": not diffs, "differences": diffs}
    return out


def compare_raw(a: Path, b: Path, atol: float) -> dict[str, Any]:
    """The simulated world: every table of both sides (Parquet), equal or not."""
    out = {}
    for rel in sorted({p.relative_to(a).as_posix() for p in a.rglob("*.parquet")}
                      | {p.relative_to(b).as_posix() for p in b.rglob("*.parquet")}):  # fmt: skip
        if not (a / rel).exists() or not (b / rel).exists():
            out[rel] = "only in " + ("A" if (a / rel).exists() else "B")
        elif (a / rel).read_bytes() != (b / rel).read_bytes():
            diffs = compare_frames(pd.read_parquet(a / rel), pd.read_parquet(b / rel), atol)
            out[rel] = diffs[:MAX_DIFFS] or "same values, different bytes"
    return {"equal": not out, "files": len(list(a.rglob("*.parquet"))), "differences": out}


LOG_LINE = re.compile(r"^\d\d:\d\d:\d\d (\w+)\s+([\w.]+): (.*)$")


MLFLOW_LOG_LINE = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d [A-Z]+ ")


def console_lines(text: str) -> list[str]:
    """What a command told its user: plain lines and nrrcast's log messages (without time
    and level); Prefect's and other libraries' log lines, warnings and progress bars
    dropped."""
    out = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if m:
            if m.group(2).startswith("nrrcast"):
                out.append(f"{m.group(2)}: {m.group(3)}")
            continue
        if (
            MLFLOW_LOG_LINE.match(line)
            or "\r" in line
            or "it/s]" in line
            or "/s]" in line
            or "Warning" in line
        ):
            continue
        if line.startswith(("  color_warning", "  warnings.warn", "See https://docs.prefect")):
            continue
        out.append(line)
    return out


def compare_console(a: Path, b: Path, roots: list[Any]) -> dict[str, Any]:
    """stdout + stderr of one step on both sides (see ``console_lines``)."""

    def read(logs: Path) -> str:
        parts = [logs.with_suffix(s) for s in (".out", ".err")]
        return "\n".join("\n".join(console_lines(p.read_text(errors="replace")))
                         for p in parts if p.exists())  # fmt: skip

    diffs = compare_text(read(a), read(b), roots)
    return {"equal": not diffs, "differences": diffs}


# ----------------------------------------------------------------------------- MLflow


def mlflow_runs(db: Path) -> dict[str, Any]:
    """Runs, metrics, params, tags and the registry of one sqlite MLflow store."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    q = lambda sql, *p: con.execute(sql, p).fetchall()  # noqa: E731
    out: dict[str, Any] = {"experiments": {}, "registry": {}, "logged_models": {}}
    dirs: dict[str, Path | None] = {}  # run or model by position -> its artifact directory
    run_pos: dict[str, str] = {}
    for exp_id, exp_name in q("SELECT experiment_id, name FROM experiments ORDER BY name"):
        runs = []
        rows = q("SELECT run_uuid, name, status, artifact_uri FROM runs WHERE experiment_id=? "
                 "AND lifecycle_stage='active' ORDER BY start_time, name", exp_id)  # fmt: skip
        for i, (uuid, name, status, art) in enumerate(rows):
            run_pos[uuid] = f"{exp_name}[{i}]"
            dirs[f"run {exp_name}[{i}]"] = _artifact_dir(db.parent, art)
            runs.append({
                "name": name,
                "status": status,
                "metrics": {f"{k}@{s}": v for k, v, s in q(
                    "SELECT key, value, step FROM metrics WHERE run_uuid=? "
                    "ORDER BY key, step, timestamp", uuid)},
                "params": dict(q("SELECT key, value FROM params WHERE run_uuid=?", uuid)),
                "tags": {k: v for k, v in q("SELECT key, value FROM tags WHERE run_uuid=?", uuid)
                         if not IGNORED_TAGS.match(k)},
                "artifacts": _files(_artifact_dir(db.parent, art)),
            })  # fmt: skip
        out["experiments"][exp_name] = runs
    for (name,) in q("SELECT name FROM registered_models ORDER BY name"):
        versions = {str(v): {"run": run_pos.get(r, r), "status": st, "source": src}
                    for v, r, st, src in q("SELECT version, run_id, status, source FROM "
                                           "model_versions WHERE name=? ORDER BY version", name)}  # fmt: skip # noqa: E501
        aliases = dict(q("SELECT alias, version FROM registered_model_aliases WHERE name=?", name))
        out["registry"][name] = {"versions": versions,
                                 "aliases": {k: str(v) for k, v in aliases.items()}}  # fmt: skip
    models = q("SELECT model_id, name, artifact_location, source_run_id, status FROM "
               "logged_models ORDER BY creation_timestamp_ms, name") if _has(con, "logged_models") else []  # fmt: skip # noqa: E501
    for i, (model_id, name, art, run, status) in enumerate(models):
        label = f"{name}[{i}]"
        dirs[f"model {label}"] = _artifact_dir(db.parent, art)
        out["logged_models"][label] = {"run": run_pos.get(run, run), "status": status,
                                       "artifacts": _files(dirs[f"model {label}"])}  # fmt: skip
        for versions in out["registry"].values():
            for v in versions["versions"].values():
                if v.get("source") == f"models:/{model_id}":
                    v["source"] = f"model {label}"
    con.close()
    out["_dirs"] = dirs
    return out


def _has(con: sqlite3.Connection, table: str) -> bool:
    sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
    return con.execute(sql, (table,)).fetchone() is not None


def _artifact_dir(store: Path, uri: str | None) -> Path | None:
    if not uri:
        return None
    path = Path(uri.removeprefix("file://"))
    return path if path.is_absolute() else store.parent / path


def _files(path: Path | None) -> list[str]:
    if path is None or not path.exists():
        return []
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())


def compare_mlflow(a: Path, b: Path, roots: list[str], atol: float) -> dict[str, Any]:
    """Run by run: same runs, metrics (keys and values), params, tags, artifacts, registry."""
    if not a.exists() or not b.exists():
        return {"equal": False, "differences": [f"store missing: A {a.exists()}, B {b.exists()}"]}
    ra, rb = mlflow_runs(a), mlflow_runs(b)
    da, db_ = ra.pop("_dirs"), rb.pop("_dirs")
    diffs = compare_values(ra, rb, atol, ignore=VOLATILE_KEYS, roots=roots)
    n_files = 0
    for label in sorted(da.keys() & db_.keys()):  # artifact contents, file by file
        x, y = da[label], db_[label]
        for rel in sorted(set(_files(x)) & set(_files(y))):
            if NONDETERMINISTIC_FILES.search(rel):
                continue
            n_files += 1
            try:
                found = compare_file(x / rel, y / rel, roots, atol)
            except Exception as exc:
                found = [f"could not compare: {type(exc).__name__}: {exc}"]
            diffs += [f"{label} artifact {rel}: {d}" for d in found]
    n_metrics = sum(len(r["metrics"]) for runs in ra["experiments"].values() for r in runs)
    return {"equal": not diffs, "runs": {k: len(v) for k, v in ra["experiments"].items()},
            "metrics_compared": n_metrics, "artifact_files_compared": n_files, "differences": diffs}  # fmt: skip


# ----------------------------------------------------------------------------- benches


def last_json(text: str) -> Any:
    """The last top-level JSON object a benchmark printed (its figures)."""
    for start in [m.start() for m in re.finditer(r"^\{", text, re.M)][::-1]:
        try:
            return json.loads(text[start:])
        except json.JSONDecodeError:
            continue
    return None


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """``{"a": {"b": [1]}}`` -> ``{"a.b[0]": 1}``."""
    if isinstance(value, dict):
        return {
            k: v
            for key, sub in value.items()
            for k, v in flatten(sub, f"{path}.{key}".lstrip(".")).items()
        }
    if isinstance(value, list):
        return {
            k: v for i, sub in enumerate(value) for k, v in flatten(sub, f"{path}[{i}]").items()
        }
    return {path: value}


def compare_bench(
    a: Any, b: Any, atol: float, roots: list[Any] | None = None, noisy: set[str] | None = None
) -> dict[str, Any]:
    """Figures equal (timings and machine figures reported, not compared).

    Parameters
    ----------
    a, b : Any
        The JSON each side's benchmark printed.
    atol : float
        Absolute tolerance for numbers.
    roots : list or None
        Replaced in strings (see ``normalise``).
    noisy : set of str or None
        Flattened keys that differed between two runs of A (``--repeat``): these, and the
        same fields in other rows or quarters (``field_of``), are not compared; their A and
        B values are listed under ``noise``.

    Returns
    -------
    dict
        ``equal``, ``figures_compared``, ``differences``, ``timings_not_compared``, ``noise``.
    """
    if a is None or b is None:
        return {
            "equal": False,
            "differences": [f"no JSON output: A {a is not None}, B {b is not None}"],
        }
    fa, fb = flatten(a), flatten(b)
    diffs, timings, noise = [], {}, {}
    noisy_fields = {field_of(k) for k in noisy or ()}
    for key in sorted(fa.keys() | fb.keys()):
        x, y = fa.get(key, "<missing>"), fb.get(key, "<missing>")
        if isinstance(x, str) and isinstance(y, str):
            x, y = normalise(x, roots or []), normalise(y, roots or [])
        if TIMING_KEY.search(key):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                timings[key] = [x, y]
            continue
        one_side = key not in fa or key not in fb  # a key that appears or goes: never noise
        if noisy and not one_side and (key in noisy or field_of(key) in noisy_fields):
            noise[key] = [x, y]
        elif not _close(x, y, atol):
            diffs.append(f"{key}: {_short(x, 60)} -> {_short(y, 60)}")
    compared = sum(1 for k in fa.keys() | fb.keys() if not TIMING_KEY.search(k)) - len(noise)
    out = {"equal": not diffs, "figures_compared": compared, "differences": diffs,
           "timings_not_compared": timings}  # fmt: skip
    if noisy is not None:
        out["noise"] = noise
    return out


# the models and targets benchmark figures are keyed by (see field_of)
ROW_NAMES = {"lightgbm", "logistic", "health_score", "lgbm", "health", "churn", "expand"}


def field_of(key: str) -> str:
    """The field a flattened key names, whatever its row, quarter, model or target:
    ``table[3].ece`` -> ``table[*].ece``, ``thresholds.2025Q4.logistic.churn`` ->
    ``thresholds.*.*.*``.

    A figure seen moving between two runs of A in one row moves in the other rows too (one
    repeat rarely catches every row).

    Examples
    --------
    >>> field_of("table[11].ece"), field_of("ece_after_recalibration.2026Q1.churn")
    ('table[*].ece', 'ece_after_recalibration.*.*')
    """
    key = re.sub(r"\b\d{4}Q[1-4]\b", "*", re.sub(r"\[\d+\]", "[*]", key))
    return ".".join("*" if part in ROW_NAMES else part for part in key.split("."))


def noisy_keys(a: Any, a_again: Any, atol: float) -> set[str]:
    """Figures (not timings) that differ between two runs of the same code."""
    if a is None or a_again is None:
        return set()
    fa, fb = flatten(a), flatten(a_again)
    return {
        k
        for k in fa.keys() | fb.keys()
        if not TIMING_KEY.search(k) and not _close(fa.get(k), fb.get(k), atol)
    }


# ----------------------------------------------------------------------------- main


def path_aliases(tree: Path) -> list[tuple[str, str]]:
    """Values derived from a tree's absolute path, which differ between the two sides only
    because they run in different directories: the scoring runs' ``source_key`` tag
    (flows/freshness.py: sha1 of the resolved source path, 16 hex digits)."""
    raw = str((tree / "data" / "raw").resolve())
    return [(hashlib.sha1(raw.encode()).hexdigest()[:16], "<source_key of data/raw>")]


def _entries(out: dict[str, Any]) -> list[dict[str, Any] | None]:
    return [
        *out.get("artifacts", {}).values(),
        out.get("mlflow"),
        *out.get("console", {}).values(),
        out.get("cross"),
        *out["benches"].values(),
    ]


def apply_allowed(out: dict[str, Any], allowed: list[re.Pattern[str]]) -> None:
    """Move the differences matching an --allow pattern (known, intended) to ``expected``."""
    for entry in _entries(out):
        if not entry or entry["equal"]:
            continue
        keep = [d for d in entry["differences"] if not any(p.search(d) for p in allowed)]
        entry["expected"] = [d for d in entry["differences"] if d not in keep]
        entry["differences"] = keep
        entry["equal"] = not keep
        entry["equal_but_expected"] = entry["equal"] and bool(entry["expected"])


def shorten(out: dict[str, Any], limit: int) -> None:
    """Keep the first `limit` lines of each list of differences; count the rest."""
    for entry in _entries(out):
        for key in ("differences", "expected"):
            if entry and len(entry.get(key, [])) > limit:
                entry[f"{key}_more"] = len(entry[key]) - limit
                entry[key] = entry[key][:limit]


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def compare(scratch: Path, args: argparse.Namespace, info: dict[str, Any]) -> dict[str, Any]:
    """Everything both sides wrote, compared."""
    ta, tb = scratch / "A" / "tree", scratch / "B" / "tree"
    roots = sorted({str(ta), str(tb), str(ta.resolve()), str(tb.resolve())}, key=len, reverse=True)
    tx = scratch / "X" / "tree"
    roots = sorted({*roots, str(tx), str(tx.resolve())}, key=len, reverse=True)
    roots += path_aliases(ta) + path_aliases(tb) + path_aliases(tx)
    out: dict[str, Any] = {**info, "atol": args.atol}
    if not args.no_demo:
        out["raw"] = compare_raw(ta / "data" / "raw", tb / "data" / "raw", args.atol)
        out["artifacts"] = compare_trees(ta / "data", tb / "data", roots, args.atol)
        out["mlflow"] = compare_mlflow(ta / "mlruns" / "mlflow.db", tb / "mlruns" / "mlflow.db",
                                       roots, args.atol)  # fmt: skip
        if (scratch / "X").exists():
            out["cross"] = compare_cross(scratch, roots, args.atol)
        la, lb = scratch / "A" / "logs", scratch / "B" / "logs"
        out["console"] = {
            step: compare_console(la / step, lb / step, roots)
            for step in ("demo", "validate_dirty", "features_dirty")
        }
        steps_a, steps_b = info["a"].get("steps", {}), info["b"].get("steps", {})
        out["exit_codes"] = {
            step: [steps_a.get(step, {}).get("exit"), steps_b.get(step, {}).get("exit")]
            for step in steps_a
            if isinstance(steps_a[step], dict) and not step.endswith(".again")
        }
    out["benches"] = {}
    for bench in args.bench_list:
        ja, jb = (last_json(_text(scratch / s / "logs" / f"{bench}.out")) for s in ("A", "B"))
        again = scratch / "A" / "logs" / f"{bench}.again.out"
        noisy = noisy_keys(ja, last_json(_text(again)), args.atol) if again.exists() else None
        out["benches"][bench] = compare_bench(ja, jb, args.atol, roots, noisy)
    apply_allowed(out, [re.compile(p) for p in args.allow])
    shorten(out, args.max_diffs)
    out["summary"] = {
        "different": sorted(
            [f"data/{k}" for k, v in out.get("artifacts", {}).items() if not v["equal"]]
            + (["data/raw (tables)"] if not out.get("raw", {"equal": True})["equal"] else [])
            + (["mlflow"] if not out.get("mlflow", {"equal": True})["equal"] else [])
            + (
                ["cross (B's code on A's store)"]
                if not out.get("cross", {"equal": True})["equal"]
                else []
            )  # noqa: E501
            + [f"console/{k}" for k, v in out.get("console", {}).items() if not v["equal"]]
            + [f"exit_code/{k}" for k, (x, y) in out.get("exit_codes", {}).items() if x != y]
            + [f"bench/{k}" for k, v in out["benches"].items() if not v["equal"]]
        ),
        "equal": sum(v["equal"] for v in out.get("artifacts", {}).values()),
        "expected_only": sorted(
            [f"data/{k}" for k, v in out.get("artifacts", {}).items() if v.get("expected")]
            + (["mlflow"] if out.get("mlflow", {}).get("expected") else [])
            + (["cross"] if out.get("cross", {}).get("expected") else [])
            + [f"console/{k}" for k, v in out.get("console", {}).items() if v.get("expected")]
            + [f"bench/{k}" for k, v in out["benches"].items() if v.get("expected")]
        ),
        "allowed_patterns": args.allow,
    }
    out["ignored"] = {
        "keys": VOLATILE_KEYS.pattern,
        "mlflow_tags": IGNORED_TAGS.pattern,
        "text": [p.pattern for p, _ in NORMALISERS]
        + ["the two trees' absolute paths", "source_key tags derived from them"],
        "html": "payload encoding (plain or gzip+base64); the CSP's hash of the inline script",
        "console": "log time and level, Prefect's and other libraries' log lines, warnings, "
        "progress bars",
        "bench_keys_not_compared": TIMING_KEY.pattern,
        "nondeterministic_files_not_compared": NONDETERMINISTIC_FILES.pattern,
        "row_order_not_compared": UNORDERED_FILES.pattern,
        "skops": "object ids (memory addresses); array files compared by content",
        "files_not_compared": "data/bench/ (benchmark caches), data/dirty/ (a copy of data/raw "
        "with FAULTS); data/raw/ compared as tables",
    }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("a", type=Path, help="checkout A (e.g. before the change)")
    ap.add_argument("b", type=Path, help="checkout B (e.g. with the change)")
    ap.add_argument("scratch", type=Path, help="scratch directory (A/ and B/ are replaced)")
    ap.add_argument("--accounts", type=int, default=500)
    ap.add_argument("--months", type=int, default=16)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--benches", default=DEFAULT_BENCHES,
                    help=f"comma-separated, of {','.join(BENCHES)}; '' for none")  # fmt: skip
    ap.add_argument(
        "--repeat",
        default="backtest",
        help="benchmarks run twice on A: figures that differ between those runs are noise, "
        "listed and not compared ('' for none)",
    )
    ap.add_argument("--no-demo", action="store_true", help="benchmarks only")
    ap.add_argument(
        "--no-cross", action="store_true", help="skip scoring with B's code on A's store"
    )
    ap.add_argument("--compare-only", action="store_true", help="compare earlier runs")
    ap.add_argument("--sequential", action="store_true", help="one side after the other")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per step")
    ap.add_argument("--python", default=sys.executable, help="interpreter with nrrcast's deps")
    ap.add_argument("--atol", type=float, default=1e-12)
    ap.add_argument("--max-diffs", type=int, default=12, help="lines shown per artifact")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    ap.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="REGEX",
        help="a known, intended difference: difference lines matching it are listed as "
        "'expected' and do not count (repeatable)",
    )
    args = ap.parse_args()
    args.bench_list = [b for b in args.benches.split(",") if b]
    args.repeat_list = [b for b in args.repeat.split(",") if b]
    _PYTHON[0] = args.python
    unknown = [b for b in args.bench_list if b not in BENCHES]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {list(BENCHES)}")
    scratch = args.scratch.resolve()
    info_path = scratch / "sides.json"
    for checkout in (args.a.resolve(), args.b.resolve()):
        if scratch.is_relative_to(checkout):
            ap.error(f"the scratch directory {scratch} is inside the checkout {checkout}")
    if args.compare_only:
        info = json.loads(info_path.read_text()) if info_path.exists() else {"a": {}, "b": {}}
    else:
        scratch.mkdir(parents=True, exist_ok=True)
        info = {"a": prepare(args.a.resolve(), scratch / "A"),
                "b": prepare(args.b.resolve(), scratch / "B")}  # fmt: skip
        workers = 1 if args.sequential else 2
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            futs = {s: pool.submit(run_side, scratch / s, args) for s in ("A", "B")}
            info["a"]["steps"], info["b"]["steps"] = futs["A"].result(), futs["B"].result()
        if not args.no_demo and not args.no_cross:
            info["cross"] = run_cross(scratch, args)
        info_path.write_text(json.dumps(info, indent=1))
    out = compare(scratch, args, info)
    text = json.dumps(out, indent=1, default=str)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0 if not out["summary"]["different"] else 1


if __name__ == "__main__":
    sys.exit(main())
