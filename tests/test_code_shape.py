"""The code base keeps the shape CONTRIBUTING.md asks for, checked on the source itself.

* no function or method (numba kernels included) takes more than 12 parameters: kernels take
  named records, not long positional lists;
* no module of ``townlet_env`` or ``training`` is over 320 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("townlet_env", "training")
MAX_PARAMS = 12
MAX_LINES = 320
SOURCES = sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def too_many_parameters(source: str, limit: int = MAX_PARAMS) -> list[str]:
    """``name (count)`` for every function in ``source`` with more than ``limit`` parameters."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            a = node.args
            count = len(a.posonlyargs) + len(a.args) + len(a.kwonlyargs) + (a.vararg is not None)
            count += a.kwarg is not None
            count -= bool(a.args) and a.args[0].arg in ("self", "cls")
            if count > limit:
                found.append(f"{node.name} ({count})")
    return found


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 30


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_functions_take_at_most_12_parameters(path: Path) -> None:
    assert too_many_parameters(path.read_text()) == [], f"{path.relative_to(ROOT)}: pass a record instead"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_are_at_most_320_lines(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it by concept"


def test_the_parameter_check_can_fail() -> None:
    wide = "def f(" + ", ".join(f"a{i}" for i in range(13)) + "): pass\n"
    method = "class C:\n    def m(self, " + ", ".join(f"a{i}" for i in range(12)) + "): pass\n"
    assert too_many_parameters(wide) == ["f (13)"]
    assert too_many_parameters(method) == []
    assert too_many_parameters("def g(*args, **kw): pass\n") == []
