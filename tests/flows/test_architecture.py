"""The shape of the code: imports point one way and flows compose libraries, nothing else.

Read from the source with `ast` (nothing is imported): the import graph of the project's
packages, the layers of flows/, and the string literals under flows/.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("features", "models", "evaluation", "simulator", "flows")
LIBRARIES = ("features", "models", "evaluation", "simulator")
ORCHESTRATION = ("flows", "prefect", "mlflow")

# flows/ in three layers. Shared modules import no flow; flow modules import shared modules
# (and libraries) only; entry points (command line, schedules, the demo) compose flows.
SHARED = {
    "flows",  # the package: logging hook and warning filter
    "flows.config",
    "flows.tasks",
    "flows.refit",
    "flows.territory_step",
    "flows.tracking",
    "flows.pyfunc_model",
    "flows.prefect_logging",
    "flows.store_slot",
}
FLOWS = {"flows.score", "flows.train", "flows.calibrate", "flows.rebalance"}
ENTRY = {
    "flows.cli",
    "flows.cli_models",
    "flows.cli_rebalance",
    "flows.commands",
    "flows.deployments",
    "flows.demo",
}

# Cycles tolerated (each found cycle must lie within one of these): none; keep it that way.
KNOWN_CYCLES: list[set[str]] = []

SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|FROM|WHERE|JOIN)\b")
# path -> why a string literal under flows/ may read as SQL (keep this short)
SQL_ALLOWED: dict[str, str] = {
    "flows/tracking.py": "MLflow's own SQLite store (an experiment's artifact location), "
    "not a source table",
}


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(root: Path) -> dict[str, Path]:
    return {
        _module_name(p, root): p for pkg in PACKAGES for p in sorted((root / pkg).rglob("*.py"))
    }


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (imports for annotations only)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def _imported_names(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, names) of every import statement, at any depth (lazy imports count), except
    those under ``if TYPE_CHECKING:``."""
    skip = _type_checking_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.extend((a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [a.name for a in node.names]))
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (``from pkg import sub`` -> pkg.sub)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for module, names in _imported_names(ast.parse(path.read_text())):
            subs = [f"{module}.{n}" for n in names if f"{module}.{n}" in modules]
            if subs:
                deps.update(subs)
            if len(subs) < len(names) or not names:
                deps.add(module)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def sql_literals(path: Path) -> list[tuple[int, str]]:
    """(line, text) of the string literals in `path` that read as SQL (docstrings aside)."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            docstrings.add(id(body[0].value))
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL.search(node.value)
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(ROOT)


def test_the_checks_see_what_they_look_for(tmp_path):
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "flows" / "a.py").write_text("def f():\n    from flows import b\n")
    (tmp_path / "flows" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nimport flows.a\nif TYPE_CHECKING:\n    import flows.c\n"
        "Q = 'SELECT 1 FROM t'\n"
    )
    (tmp_path / "flows" / "c.py").write_text('"""Reads FROM a table."""\nimport flows.b\n')
    found = import_graph(tmp_path)
    assert found["flows.a"] == {"flows.b"} and found["flows.b"] == {"flows.a"}
    assert cycles(found) == [{"flows.a", "flows.b"}]
    assert sql_literals(tmp_path / "flows" / "b.py") == [(5, "SELECT 1 FROM t")]
    assert sql_literals(tmp_path / "flows" / "c.py") == []


def test_no_import_cycles(graph):
    unknown = [sorted(c) for c in cycles(graph) if not any(c <= known for known in KNOWN_CYCLES)]
    assert unknown == []


def test_libraries_never_import_orchestration():
    offenders = []
    for name, path in _modules(ROOT).items():
        if name.split(".")[0] not in LIBRARIES:
            continue
        for module, _ in _imported_names(ast.parse(path.read_text())):
            if module.split(".")[0] in ORCHESTRATION:
                offenders.append(f"{name} imports {module}")
    assert offenders == []


def test_every_flows_module_has_a_layer(graph):
    in_flows = {m for m in graph if m.split(".")[0] == "flows"}
    assert in_flows - SHARED - FLOWS - ENTRY == set()
    assert not (SHARED & FLOWS or SHARED & ENTRY or FLOWS & ENTRY)


@pytest.mark.parametrize("layer", ["shared", "flow"])
def test_flows_import_only_shared_modules(graph, layer):
    members = SHARED if layer == "shared" else FLOWS
    offenders = sorted(
        f"{m} imports {d}"
        for m in members
        for d in graph.get(m, set())
        if d.split(".")[0] == "flows" and d not in SHARED
    )
    assert offenders == []


def test_no_sql_in_flows():
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:60]!r}"
        for path in sorted((ROOT / "flows").rglob("*.py"))
        if str(path.relative_to(ROOT)) not in SQL_ALLOWED
        for line, text in sql_literals(path)
    ]
    assert found == []


def test_test_modules_have_unique_basenames() -> None:
    """Tests live in layer folders without packages: two files of one name would not import."""
    seen: dict[str, Path] = {}
    clashes = []
    for path in sorted((ROOT / "tests").rglob("test_*.py")):
        if path.name in seen:
            clashes.append(f"{seen[path.name].relative_to(ROOT)} and {path.relative_to(ROOT)}")
        seen.setdefault(path.name, path)
    assert clashes == [], "rename one of each pair: " + "; ".join(clashes)
