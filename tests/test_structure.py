"""The layering holds: cli -> results layer -> labs -> core, one way; each lab a package whose
config loads no TensorFlow; no import circles; short functions."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from keras_labs import labs

PACKAGE = Path(__file__).resolve().parent.parent / "keras_labs"
RESULTS_LAYER = "keras_labs.results"
# Dotted names in strings count too: the registry reaches the labs through importlib.
DOTTED = re.compile(r"[\"'](keras_labs(?:\.\w+)+)[\"']")


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `path` imports: at its top level, inside functions, or by a
    dotted name in a string (`importlib.import_module("keras_labs.labs.gan.config")`)."""
    text = path.read_text()
    found = set(DOTTED.findall(text))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in modules}


def _layer(module: str) -> str:
    """"cli", "results", "labs" (the registry), "lab:<name>" or "core"."""
    if module in ("keras_labs.cli", "keras_labs.__main__"):
        return "cli"
    if module == RESULTS_LAYER or module.startswith(RESULTS_LAYER + "."):
        return "results"
    if module == "keras_labs.labs":
        return "registry"
    if module.startswith("keras_labs.labs."):
        return "lab:" + module.split(".")[2]
    return "core"


# What each layer may import, besides itself (a lab: its own package only).
_ALLOWED = {
    "cli": {"cli", "results", "registry", "lab", "core"},
    "results": {"results", "registry", "core"},
    "registry": {"registry", "lab", "core"},
    "lab": {"core"},
    "core": {"core"},
}


def _violations(modules: dict[str, Path]) -> list[str]:
    problems = []
    for name, path in modules.items():
        layer = _layer(name)
        kind = layer.split(":")[0]
        for imported in _imports(path, modules):
            target = _layer(imported)
            if target == layer:
                continue
            target_kind = target.split(":")[0]
            if kind == "lab" and target_kind == "lab":
                problems.append(f"{name} (lab) imports another lab: {imported}")
            elif target_kind not in _ALLOWED[kind]:
                problems.append(f"{name} ({kind}) imports {imported} ({target_kind})")
    return problems


def test_dependencies_run_one_way():
    problems = _violations(_modules())
    assert not problems, "\n".join(problems)


def test_the_rule_catches_what_it_forbids(tmp_path):
    def module(name, text):
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        return path

    modules = {
        "keras_labs.training": module("training", "from keras_labs.results import ledger\n"),
        "keras_labs.results.ledger": module("ledger", "import keras_labs.training\n"),
        "keras_labs.labs.gan.experiment": module(
            "gan", 'importlib.import_module("keras_labs.labs.adversarial.attacks")\n'),
        "keras_labs.labs.adversarial.attacks": module("attacks", "from keras_labs import labs\n"),
        "keras_labs.labs": module("registry", "from keras_labs.labs.gan import experiment\n"),
    }
    problems = _violations(modules)
    assert any("training (core) imports keras_labs.results.ledger" in p for p in problems)
    assert any("gan.experiment (lab) imports another lab" in p for p in problems)
    assert any("attacks (lab) imports keras_labs.labs (registry)" in p for p in problems)
    assert len(problems) == 3, problems  # results -> core and registry -> lab are allowed


def test_no_import_circles():
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    # A package's __init__ naming its own submodules in prose is not an import of them.
    graph = {name: {target for target in targets if not (name == "keras_labs.labs"
                                                         and target.startswith(name))}
             for name, targets in graph.items()}
    cycles = []

    def visit(name, stack):
        for imported in graph[name]:
            if imported in stack:
                cycles.append(" -> ".join([*stack[stack.index(imported):], imported]))
            elif len(stack) < 12:
                visit(imported, [*stack, imported])

    for name in graph:
        visit(name, [name])
        if cycles:
            break
    assert not cycles, cycles[0]


@pytest.mark.parametrize("lab", labs.names())
def test_each_lab_is_a_package_whose_config_loads_no_tensorflow(lab):
    folder = labs.folder(lab)
    for name in ("__init__.py", "config.py", "experiment.py", "seeds.md"):
        assert (folder / name).is_file(), f"{folder.name}/{name} is missing"
    module = f"keras_labs.labs.{folder.name}.config"
    code = (f"import sys, {module} as c; heavy = sorted(m for m in sys.modules if m.split('.')[0] "
            "in ('tensorflow', 'keras', 'sklearn', 'matplotlib', 'tensorflow_datasets')); "
            f"assert c.NAME == {lab!r}; print(heavy[:3])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "[]", f"importing {module} loads {done.stdout.strip()}"


def test_no_lazy_import_layer():
    assert not (PACKAGE / "lazy.py").exists()
    for path in PACKAGE.rglob("*.py"):
        assert not re.search(r"LazyModule|lazy_import|lazy_attributes", path.read_text()), path


def test_functions_are_short_and_each_lab_run_reads_in_sixty_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        in_lab = "labs" in path.relative_to(PACKAGE).parts[:1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                limit = 60 if in_lab and node.name == "run" else 80
                if lines > limit:
                    long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} "
                                f"{lines} lines (at most {limit})")
    assert not long, "\n".join(long)
