"""The layering holds: labs on top, building blocks below, no import circles, no giant modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "keras_labs"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports, at its top level, inside functions or on
    first use (`lazy_import("keras_labs.training")`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_import":
            found |= {arg.value for arg in node.args if isinstance(arg, ast.Constant)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def test_no_import_circles():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    cycles = []

    def visit(name, stack):
        for imported in graph[name]:
            if imported in stack:
                cycles.append(" -> ".join([*stack[stack.index(imported):], imported]))
            elif len(stack) < len(graph):
                visit(imported, [*stack, imported])

    for name in graph:
        visit(name, [name])
        if cycles:
            break
    assert not cycles, cycles[0]


@pytest.mark.parametrize("block", ["models", "data", "training", "text", "callbacks",
                                   "visualization", "export", "runs", "files", "attacks",
                                   "scoring", "projection", "optimization", "deconvnet"])
def test_building_blocks_never_import_a_lab(block):
    modules = _modules()
    paths = [path for name, path in modules.items()
             if name == f"keras_labs.{block}" or name.startswith(f"keras_labs.{block}.")]
    assert paths, block
    for path in paths:
        labs = {name for name in _imports(path, modules) if name.startswith("keras_labs.labs")}
        assert not labs, f"{path.name} imports {sorted(labs)}"


def test_module_sizes():
    for name, path in _modules().items():
        lines = len(path.read_text().splitlines())
        limit = 450 if name.startswith("keras_labs.labs.") else 600
        assert lines <= limit, f"{name} has {lines} lines (at most {limit})"
