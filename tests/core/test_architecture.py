"""The layout's rules that import-linter does not see: no import hidden inside a function and no
module imported by a string, so that every dependency is one the contracts check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import REPO

CHECKED = ("schemas", "federation", "sync", "node")


def _modules() -> list[Path]:
    return sorted(p for package in CHECKED for p in (REPO / package).rglob("*.py")
                  if "migrations" not in p.parts)


DEFERRED = {"ToJyutping": "its Cantonese dictionary takes 0.8 s to load at import; only Han "
                          "names need it, and every `minga` command would pay it"}
"""Third-party modules (never our own: the contracts must see those) that may be imported
where first used, and why."""


def _imported(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.ImportFrom):
        return [(node.module or "").split(".")[0]]
    return [alias.name.split(".")[0] for alias in node.names]


def _hidden_imports(tree: ast.AST) -> list[int]:
    found = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n.lineno for n in ast.walk(function)
                      if isinstance(n, ast.Import | ast.ImportFrom)
                      and not set(_imported(n)) <= set(DEFERRED)]
    return found


# Reading an installed package's metadata or files imports nothing by name.
NOT_STRING_IMPORTS = ("importlib.metadata", "importlib.resources")


def _by_string(module: str) -> bool:
    return module.split(".")[0] == "importlib" and not module.startswith(NOT_STRING_IMPORTS)


def _string_imports(tree: ast.AST) -> list[int]:
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Import)
             and any(_by_string(alias.name) for alias in n.names)]
    return lines + [n.lineno for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                    and _by_string(n.module or "")]


def test_the_checked_packages_have_modules() -> None:
    assert len(_modules()) > 100


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_import_inside_a_function_and_no_importlib(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert _hidden_imports(tree) == [], "imports inside functions"
    assert _string_imports(tree) == [], "importlib"


def test_the_checks_find_what_they_look_for() -> None:
    assert _string_imports(ast.parse("from importlib.metadata import version\n")) == []
    tree = ast.parse("import importlib\ndef f():\n    import os\n")
    assert _hidden_imports(tree) == [3]
    assert _string_imports(tree) == [1]
