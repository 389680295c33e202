"""Whether a committed result still stands for today's code and preset.

A run records in env.json the fingerprint of the code it ran (`keras_labs.runs.code_fingerprint`:
a digest of every `keras_labs` module it imported, and each module's own digest), and
`keras-labs reproduce` copies it into the result file. Here the same digests are computed from
the files on disk, without importing anything, so the ledger can mark a row "stale" the moment
a module its figure came from changes, and say which ones did. A result with no fingerprint is
stale too: nothing says which code produced it.

Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
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


def changed_modules(fingerprint: dict[str, Any], package_dir: Path = PACKAGE_DIR) -> list[str]:
    """The modules of a recorded fingerprint whose source differs on disk today (or is gone)."""
    recorded = fingerprint.get("modules") or {}
    today = current_digests(recorded, package_dir)
    return [name for name, digest in recorded.items() if today.get(name) != digest]


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
        changed = changed_modules(fingerprint, package_dir)
        if changed:
            reasons.append(f"{_names(changed)} changed")
    lab, preset = result.get("lab"), result.get("preset")
    if lab in labs.names() and preset in labs.get(lab).PRESETS:
        fields = config_changes(result.get("config") or {}, resolved_config(lab, preset), lab)
        if fields:
            reasons.append(f"config changed ({_names(fields)})")
    return "stale: " + ", ".join(reasons) if reasons else ""
