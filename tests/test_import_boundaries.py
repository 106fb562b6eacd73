"""The layering rule: ``townlet_env`` never imports ``training`` (training plugs its commands
into the CLI through the ``townlet.commands`` entry points instead), and importing the
environment and its CLI loads no training stack.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "townlet_env"
FORBIDDEN = "training"
#: Modules that must stay out of ``sys.modules`` after ``import townlet_env, townlet_env.cli``.
HEAVY = ("training", "torch", "stable_baselines3", "imitation", "wandb")


def imports_of(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """Every module a source imports, at any depth (inside functions too), with its line.

    ``importlib.import_module("x")`` and ``__import__("x")`` with a literal name count too.
    """
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]  # may be submodules
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def forbidden_imports(source: str, filename: str = "<string>") -> list[str]:
    """``file:line imports module`` for each import of the ``training`` package."""
    return [
        f"{filename}:{line} imports {module}"
        for line, module in imports_of(source, filename)
        if module == FORBIDDEN or module.startswith(FORBIDDEN + ".")
    ]


def test_townlet_env_never_imports_training() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 20, "the package was not found"
    problems = [p for f in files for p in forbidden_imports(f.read_text(), str(f.relative_to(ROOT)))]
    assert not problems, "townlet_env must not import training:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "source",
    [
        "import training",
        "import training.cli as tc",
        "from training.cli import RUN",
        "def f():\n    from training import pipeline\n",
        "class C:\n    def m(self):\n        import training.datasets\n",
        "import importlib\nimportlib.import_module('training.cli')",
        "__import__('training')",
    ],
)
def test_the_check_catches_every_way_of_importing_training(source: str) -> None:
    """The AST check fails on a top-level, lazy, aliased or dynamic import of training."""
    assert forbidden_imports(source, "x.py")


@pytest.mark.parametrize("source", ["import trainingwheels", "from townlet_env import training_data", "import os"])
def test_the_check_ignores_lookalikes(source: str) -> None:
    assert not forbidden_imports(source, "x.py")


def test_importing_the_env_and_its_cli_loads_no_training_stack() -> None:
    code = (
        "import sys, townlet_env, townlet_env.cli\n"
        f"heavy = {HEAVY!r}\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing townlet_env loaded: {out.stdout.strip()}"


def test_the_subprocess_check_sees_a_loaded_module() -> None:
    """The same probe reports ``training`` when something does import it (so it can fail)."""
    code = "import sys, townlet_env, training\nprint(','.join(m for m in sys.modules if m.split('.')[0] == 'training'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "training" in out.stdout


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles of a module graph (each as a path that ends where it starts)."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_training_modules_do_not_import_each_other_in_a_cycle() -> None:
    """Lazy imports count: a cycle hidden inside a function is still a cycle."""
    modules = {f"training.{p.stem}": p for p in (ROOT / "training").glob("*.py") if p.stem != "__init__"}
    graph = {
        name: {m for _, m in imports_of(path.read_text(), str(path)) if m in modules and m != name}
        for name, path in modules.items()
    }
    assert not import_cycles(graph), import_cycles(graph)


def test_the_cycle_check_finds_a_cycle() -> None:
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": set()}) == [["a", "b", "a"]]
