"""Whether a committed result still stands for today's code and preset.

A run records in env.json the fingerprint of the code it ran (`keras_labs.runs.code_fingerprint`:
a digest of every `keras_labs` module it imported, and each module's own digest), and
`keras-labs reproduce` copies it into the result file. Here the same digests are computed from
the files on disk, without importing anything, so the ledger can mark a row "stale" the moment
a module its figure came from changes, and say which ones did. A result with no fingerprint is
stale too: nothing says which code produced it.

A lab's `config.py` also holds its preset table, and a new preset there changes no figure of
another one: the preset a result ran is compared field by field instead (`config_changes`). So
a changed config module does not make a result stale when the source the result recorded, read
back from git at the result's commit, differs from today's only in the preset statements
(`without_presets`). Where git or that commit is not at hand, the change counts.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from keras_labs import labs

PACKAGE_DIR = Path(__file__).resolve().parents[1]
# Config fields that say where things live, not what runs: a result recorded with another data
# or export folder is the same experiment.
LOCATION_FIELDS = ("data_dir", "export_dir")
# Values a field had before it was renamed, and what they are called now (791da3d: the boolean
# mixed_precision became off|fp16|bf16, False the float32 it always meant, True mixed_float16).
RENAMED_VALUES = {("mixed_precision", False): "off", ("mixed_precision", True): "fp16"}
# The modules that hold a lab's presets.
PRESET_MODULE = re.compile(r"keras_labs\.labs\.\w+\.config")
# Top-level names of a preset table: the table, its default and the private building blocks.
PRESET_NAMES = ("PRESETS", "DEFAULT_PRESET")


def module_file(name: str, package_dir: Path = PACKAGE_DIR) -> Path | None:
    """The source file of module `name` (keras_labs.labs.gan.config, say) under `package_dir`, or
    None when it no longer exists."""
    parts = name.split(".")[1:]
    for candidate in (package_dir.joinpath(*parts).with_suffix(".py") if parts else None,
                      package_dir.joinpath(*parts, "__init__.py")):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def current_digests(names, package_dir: Path = PACKAGE_DIR) -> dict[str, str | None]:
    """{module: the digest of its file today (None: the module is gone)} for `names`."""
    found = {}
    for name in sorted(names):
        path = module_file(name, package_dir)
        found[name] = hashlib.sha256(path.read_bytes()).hexdigest()[:16] if path else None
    return found


def combined(digests: dict[str, str | None]) -> str:
    """The fingerprint's digest of {module: digest} (as `runs.code_fingerprint` computes it)."""
    lines = "".join(f"{name} {digest}\n" for name, digest in sorted(digests.items()))
    return hashlib.sha256(lines.encode()).hexdigest()[:16]


def _is_preset_name(target: ast.expr) -> bool:
    if isinstance(target, ast.Subscript):  # PRESETS["name"] = ...
        target = target.value
    return isinstance(target, ast.Name) and (target.id in PRESET_NAMES
                                             or target.id.startswith("_"))


def _is_preset_statement(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Assign, ast.AnnAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return all(_is_preset_name(target) for target in targets)
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        function = node.value.func  # PRESETS.update(...)
        return (isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
                and function.value.id in PRESET_NAMES)
    return False


def without_presets(source: str) -> str | None:
    """A config module's syntax tree without its preset statements (assignments to `PRESETS`,
    an entry of it, `DEFAULT_PRESET` or a private name; `PRESETS.update(...)`), comments and
    layout aside;
    None when it does not parse."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    kept = [node for node in tree.body if not _is_preset_statement(node)]
    return ast.dump(ast.Module(body=kept, type_ignores=[]))


@functools.lru_cache(maxsize=256)
def _source_at(commit: str, relative: str, root: str) -> str | None:
    try:
        shown = subprocess.run(["git", "-C", root, "show", f"{commit}:{relative}"],
                               capture_output=True, check=False, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return shown.stdout.decode() if shown.returncode == 0 else None


def presets_only_change(name: str, recorded_digest: str, commit: str | None,
                        package_dir: Path = PACKAGE_DIR) -> bool:
    """Whether config module `name` differs from the source a result recorded (its digest, at
    `commit`) only in its preset statements."""
    path = module_file(name, package_dir)
    if not commit or path is None or not PRESET_MODULE.fullmatch(name):
        return False
    relative = path.relative_to(package_dir.parent).as_posix()
    before = _source_at(commit, relative, str(package_dir.parent))
    if before is None or hashlib.sha256(before.encode()).hexdigest()[:16] != recorded_digest:
        return False
    stripped = without_presets(before)
    return stripped is not None and stripped == without_presets(path.read_text())


def changed_modules(fingerprint: dict[str, Any], package_dir: Path = PACKAGE_DIR,
                    commit: str | None = None) -> list[str]:
    """The modules of a recorded fingerprint whose source differs on disk today (or is gone).

    Args:
        fingerprint: the result's recorded `code`.
        package_dir: the `keras_labs` folder to compare with.
        commit: the commit the result ran (or was verified) at; with it, a lab config module
            whose change is only in its presets is not counted (`presets_only_change`).
    """
    recorded = fingerprint.get("modules") or {}
    today = current_digests(recorded, package_dir)
    return [name for name, digest in recorded.items() if today.get(name) != digest
            and not presets_only_change(name, digest, commit, package_dir)]


def resolved_config(lab: str, preset: str, **flags) -> dict:
    """The preset's resolved config as `keras-labs run LAB --preset PRESET --data full` gives it."""
    return labs.resolve_config(labs.get(lab), preset, None, data="full", **flags).to_dict()


def config_changes(recorded: dict, current: dict, lab: str) -> list[str]:
    """The config fields in which a recorded resolved config differs from the current one: a
    field both have with another value (the data and export folders aside), a field added to
    the lab since that is not at its default (one at its default changes nothing), a field the
    lab no longer has."""
    module = labs.get(lab)
    defaults = type(module.PRESETS[module.DEFAULT_PRESET])().to_dict()
    changed = []
    for key, value in current.items():
        if key in LOCATION_FIELDS:
            continue
        before = recorded[key] if key in recorded else defaults.get(key)
        if isinstance(before, bool):
            before = RENAMED_VALUES.get((key, before), before)
        if json.dumps(before) != json.dumps(value):
            changed.append(key)
    return changed + sorted(key for key in recorded if key not in current)


def same_experiment(recorded: dict, current: dict, lab: str) -> bool:
    """Whether a recorded resolved config is the current one (`config_changes` finds none)."""
    return not config_changes(recorded, current, lab)


def _names(modules: list[str], shown: int = 3) -> str:
    short = [name.removeprefix("keras_labs.") for name in modules]
    more = f" and {len(short) - shown} more" if len(short) > shown else ""
    return ", ".join(short[:shown]) + more


def staleness(result: dict | None, package_dir: Path = PACKAGE_DIR) -> str:
    """Why a committed result no longer stands for today's code and preset, or "" when it does.

    "stale: no fingerprint" (recorded before runs kept one), "stale: <modules> changed" (the
    source of a module the run imported differs on disk), "stale: config changed (<fields>)"
    (the preset is no longer what ran), or several of them.
    """
    if not result:
        return ""
    reasons = []
    fingerprint = result.get("code")
    if not fingerprint or not fingerprint.get("modules"):
        reasons.append("no fingerprint")
    else:
        commit = None if result.get("dirty") else result.get("commit")
        changed = changed_modules(fingerprint, package_dir, commit)
        if changed:
            reasons.append(f"{_names(changed)} changed")
    lab, preset = result.get("lab"), result.get("preset")
    if lab in labs.names() and preset in labs.get(lab).PRESETS:
        fields = config_changes(result.get("config") or {}, resolved_config(lab, preset), lab)
        if fields:
            reasons.append(f"config changed ({_names(fields)})")
    return "stale: " + ", ".join(reasons) if reasons else ""
