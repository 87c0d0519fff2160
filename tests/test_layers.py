"""The package's shape: every module imports, module-level imports have no cycle, and each
layer imports nothing above it (checked in fresh interpreters, so nothing is cached)."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import kmedqa

SRC = Path(kmedqa.__file__).resolve().parent
MODULES = sorted(m.name for m in pkgutil.walk_packages(kmedqa.__path__, "kmedqa."))
STAGES = ("prompts", "data", "models", "training", "generation", "scoring", "metrics")
STAGES += ("judge", "stats", "paper")

# module -> packages it must never load, directly or through what it imports.
FORBIDDEN = {
    "kmedqa.errors": ("kmedqa.",),
    "kmedqa.io": tuple(f"kmedqa.{s}" for s in STAGES),
    "kmedqa.items": tuple(f"kmedqa.{s}" for s in STAGES),
    "kmedqa.envinfo": tuple(f"kmedqa.{s}" for s in STAGES),
    "kmedqa.workflow": tuple(f"kmedqa.{s}" for s in STAGES),
    "kmedqa.cli": tuple(f"kmedqa.{s}" for s in STAGES),
    "kmedqa.judge.base": ("kmedqa.judge.backends", "kmedqa.judge.run", "kmedqa.judge.cli"),
    "kmedqa.judge.rubric": ("kmedqa.judge.backends", "kmedqa.judge.run", "kmedqa.judge.base"),
    "kmedqa.judge.cache": ("kmedqa.judge.backends", "kmedqa.judge.run", "kmedqa.judge.base"),
    "kmedqa.judge.backends.anthropic": ("kmedqa.judge.run", "kmedqa.judge.cli"),
    "kmedqa.judge.backends.anthropic_sdk": ("kmedqa.judge.run", "kmedqa.judge.cli"),
    "kmedqa.judge.backends.anthropic_batch": ("kmedqa.judge.run", "kmedqa.judge.cli"),
    "kmedqa.judge.backends.local": ("kmedqa.judge.run", "kmedqa.judge.cli"),
    "kmedqa.stats.paired": ("kmedqa.stats.compare", "kmedqa.paper", "kmedqa.judge"),
    "kmedqa.stats.paired_files": ("kmedqa.stats.compare", "kmedqa.paper", "kmedqa.judge"),
    "kmedqa.paper.tables": ("kmedqa.paper.training_tables", "kmedqa.paper.results_tables"),
}


def _loaded(module: str) -> list[str]:
    """The kmedqa modules a fresh interpreter has loaded after ``import module``."""
    code = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('kmedqa'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, f"import {module} failed:\n{out.stderr}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_every_module_imports_in_a_fresh_interpreter():
    code = (
        "import importlib, sys\n"
        f"for m in {MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(MODULES) > 40


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(module):
    above = FORBIDDEN[module]
    bad = [m for m in _loaded(module) if m != module and m.startswith(above)]
    if module == "kmedqa.errors":
        bad = [m for m in bad if m != "kmedqa"]
    assert not bad, f"{module} loads {bad}"


def _module_level_imports(path: Path, name: str) -> set[str]:
    """kmedqa modules imported at module level (imports inside functions are lazy on purpose)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        nodes = [node]
        if isinstance(node, ast.If | ast.Try):  # `if TYPE_CHECKING:` is not a runtime import
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes = list(ast.walk(node))
        for n in nodes:
            if isinstance(n, ast.Import):
                found |= {a.name for a in n.names if a.name.startswith("kmedqa")}
            elif isinstance(n, ast.ImportFrom) and (n.module or "").startswith("kmedqa"):
                for a in n.names:
                    sub = f"{n.module}.{a.name}"
                    found.add(sub if sub in MODULES else n.module)
    return found - {name}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name in MODULES:
        rel = Path(*name.split(".")[1:])
        path = SRC / rel / "__init__.py"
        if not path.exists():  # a module (data/demo.py beside the data folder data/demo/)
            path = SRC / f"{rel}.py"
        graph[name] = {m for m in _module_level_imports(path, name) if m in MODULES}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state and (c := visit(m)):
                return c
        state[n] = 2
        stack.pop()
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_no_import_cycle():
    graph = _graph()
    assert graph["kmedqa.judge.run"] >= {"kmedqa.judge.base", "kmedqa.judge.cache"}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
