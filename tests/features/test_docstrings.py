"""Every public function of the libraries documents its parameters and what it returns.

A public function (module level, or a method of a public class; not ``_private``, not
``__init__``, not a property) of features/, models/ or evaluation/ needs a numpydoc
``Parameters`` section when it takes arguments (besides ``self``/``cls``) and a ``Returns``
(or ``Yields``) section when its return annotation is not None. A section counts when its
title is followed by an underline of dashes.

Functions still missing a section when the rule was introduced are listed in `ALLOWLIST`
(``path::function`` or ``path::Class.method``, one per line). The list only shrinks:
documenting a listed function, or removing it, fails the test until its line is removed,
so the list stays exact. ``python tests/features/test_docstrings.py --update`` rewrites it
from the code (review the diff: it must only lose lines).
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("features", "models", "evaluation")

# Public functions still lacking Parameters/Returns. Only ever remove lines from this list.
ALLOWLIST = """
"""


def _section(doc: str, title: str) -> bool:
    return re.search(rf"^\s*{title}\s*\n\s*-{{3,}}\s*$", doc, re.MULTILINE) is not None


def _skipped(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    if fn.name.startswith("_"):  # private, and __init__ (documented on its class)
        return True
    for d in fn.decorator_list:
        if isinstance(d, ast.Name) and d.id in ("property", "overload"):
            return True
        if isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter"):
            return True
    return False


def missing_sections(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """The numpydoc sections `fn`'s docstring lacks: "Parameters" and/or "Returns"."""
    doc = ast.get_docstring(fn) or ""
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
    names = [n for n in names if n not in ("self", "cls")]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    need = []
    if names and not _section(doc, "Parameters"):
        need.append("Parameters")
    ret = fn.returns
    returns_none = ret is None or (isinstance(ret, ast.Constant) and ret.value is None)
    if not returns_none and not (_section(doc, "Returns") or _section(doc, "Yields")):
        need.append("Returns")
    return need


def _functions(tree: ast.Module):
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            for member in node.body:
                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    yield f"{node.name}.{member.name}", member


def scan(root: Path = ROOT) -> dict[str, list[str]]:
    """``path::qualname`` -> missing sections, for every public library function lacking any."""
    found: dict[str, list[str]] = {}
    for package in SCANNED:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            rel = path.relative_to(root).as_posix()
            for qualname, fn in _functions(tree):
                if _skipped(fn):
                    continue
                need = missing_sections(fn)
                if need:
                    found[f"{rel}::{qualname}"] = need
    return found


@functools.cache
def _repo_scan() -> dict[str, list[str]]:
    return scan()


def _allowlist() -> list[str]:
    return [line.strip() for line in ALLOWLIST.splitlines() if line.strip()]


def test_allowlist_has_no_duplicates() -> None:
    listed = _allowlist()
    assert len(listed) == len(set(listed)), sorted({x for x in listed if listed.count(x) > 1})


def test_public_library_functions_have_parameters_and_returns() -> None:
    allowed = set(_allowlist())
    new = {k: v for k, v in _repo_scan().items() if k not in allowed}
    lines = [f"{k}: missing {' and '.join(v)}" for k, v in sorted(new.items())]
    assert not lines, (
        "public library functions without numpydoc sections (add them; do not extend the "
        "allowlist):\n" + "\n".join(lines)
    )


def test_allowlist_only_names_functions_still_missing_sections() -> None:
    stale = sorted(set(_allowlist()) - set(_repo_scan()))
    where = Path(__file__).name
    assert not stale, f"documented or gone: remove from ALLOWLIST in {where}:\n" + "\n".join(stale)


def _parse_one(source: str) -> ast.FunctionDef:
    return next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(x: int) -> int:\n    '''Double.'''\n    return 2 * x\n", ["Parameters", "Returns"]),
        ("def f() -> int:\n    '''One.'''\n    return 1\n", ["Returns"]),
        ("def f(x: int) -> None:\n    '''Nothing back.'''\n", ["Parameters"]),
        (
            "def f(x):\n    '''Title only.\n\n    Parameters\n    Returns\n    '''\n",
            ["Parameters"],
        ),
        (
            "def f(*args, **kw) -> int:\n    '''Sum.\n\n    Parameters\n    ----------\n"
            "    args, kw : numbers\n\n    Returns\n    -------\n    int\n    '''\n",
            [],
        ),
        (
            "def f(path: str) -> Iterator[str]:\n    '''Lines.\n\n    Parameters\n"
            "    ----------\n    path : str\n\n    Yields\n    ------\n    str\n    '''\n",
            [],
        ),
        ("def f(self) -> None:\n    '''A method without arguments.'''\n", []),
    ],
)
def test_missing_sections_reads_numpydoc_titles(source: str, expected: list[str]) -> None:
    assert missing_sections(_parse_one(source)) == expected


def test_scan_skips_private_functions_and_properties(tmp_path: Path) -> None:
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "m.py").write_text(
        "def _helper(x) -> int:\n    return x\n\n"
        "def public(x) -> int:\n    return x\n\n"
        "class Spec:\n"
        "    def __init__(self, x):\n        self.x = x\n\n"
        "    @property\n    def key(self) -> int:\n        return 1\n\n"
        "    def column(self, name: str) -> str:\n        return name\n\n"
        "class _Hidden:\n    def column(self, name: str) -> str:\n        return name\n"
    )
    assert scan(tmp_path) == {
        "features/m.py::public": ["Parameters", "Returns"],
        "features/m.py::Spec.column": ["Parameters", "Returns"],
    }


def _update() -> None:
    """Rewrite `ALLOWLIST` from the code (for when the rule's list must be regenerated)."""
    path = Path(__file__)
    body = "".join(f"{key}\n" for key in sorted(scan()))
    text = path.read_text(encoding="utf-8")
    text = re.sub(r'(?ms)^ALLOWLIST = """\n.*?^"""', f'ALLOWLIST = """\n{body}"""', text, count=1)
    path.write_text(text, encoding="utf-8")
    print(f"{len(scan())} functions listed in {path.name}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        _update()
    else:
        for key, need in sorted(scan().items()):
            print(f"{key}: missing {' and '.join(need)}")
