"""Run folders before anything runs: their names (`new_run_dir`, `plain_name`), the config an
unfinished one resumes with (`resumable_config`), and the numbered export folders a run leaves
(`versions`, `exports_of_run`). Nothing here imports TensorFlow, so the CLI answers a bad
output folder or `--resume` folder at once; `runs.Run` writes a folder's contents.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
from pathlib import Path

from keras_labs import ConfigError, KerasLabsError
from keras_labs.config import LabConfig


def plain_name(name: str, what: str = "name") -> str:
    """`name`, if it is one plain path component; the labs build every output path from such
    names under the output folder the user chose, so nothing lands outside it."""
    if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name
            or "\0" in name):
        raise ConfigError(f"{what} {name!r} is not a plain folder name (no '/', '..' or empty "
                          "names: outputs stay inside the output folder)")
    return name


def new_run_dir(out: str | os.PathLike, lab: str, preset: str | None = None) -> Path:
    """Creates and returns a fresh `out/<lab>/<timestamp>-<preset>-<random>` folder."""
    parent = Path(out).expanduser() / plain_name(lab, "lab")
    if preset is not None:
        plain_name(preset, "preset")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise KerasLabsError(f"cannot create output folder {str(parent)!r}: {error.strerror}") from None
    if not os.access(parent, os.W_OK):
        raise KerasLabsError(f"output folder {str(parent)!r} is not writable")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    while True:
        run_id = "-".join(part for part in (stamp, preset, secrets.token_hex(2)) if part)
        path = parent / run_id
        try:
            path.mkdir()  # exclusive: an existing folder raises, and we draw another id
            return path
        except FileExistsError:
            continue


def check_resumable(workdir: str | os.PathLike, lab: str) -> None:
    """Raises ConfigError unless `workdir` is an unfinished run folder of `lab`."""
    workdir = Path(workdir)
    if not (workdir / "config.json").is_file():
        raise ConfigError(f"{str(workdir)!r} is not a run folder (no config.json)")
    env_path = workdir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    if env.get("lab", lab) != lab:
        raise ConfigError(f"{str(workdir)!r} is a {env['lab']!r} run, not a {lab} run")
    if (workdir / "metrics.json").exists():
        raise ConfigError(f"run {str(workdir)!r} has finished already (metrics.json exists); "
                          "nothing to resume")


def resumable_config(workdir: str | os.PathLike, lab: str, config_class: type) -> LabConfig:
    """The config an unfinished run of `lab` in `workdir` started with (from its config.json).

    A run that chose its data with `auto` continues on the data it started with (env.json),
    even if `auto` would now choose otherwise.

    Raises:
        ConfigError: Not a run folder of `lab`, finished already, or a config this version
            cannot read.
    """
    workdir = Path(workdir)
    check_resumable(workdir, lab)
    config_path = workdir / "config.json"
    try:
        stored = json.loads(config_path.read_text())
    except ValueError as error:
        raise ConfigError(f"{str(config_path)!r} is not valid JSON: {error}") from None
    fields = {key: tuple(value) if isinstance(value, list) else value
              for key, value in stored.items()}
    if isinstance(fields.get("mixed_precision"), bool):  # config.json of 0.1.0: a flag
        fields["mixed_precision"] = "fp16" if fields["mixed_precision"] else "off"
    unknown = sorted(set(fields) - {field.name for field in dataclasses.fields(config_class)})
    if unknown:
        raise ConfigError(f"{str(config_path)!r} has settings this version does not know: "
                          f"{', '.join(unknown)}")
    config = config_class(**fields).validate()
    env_path = workdir / "env.json"
    env = json.loads(env_path.read_text()) if env_path.exists() else {}
    kinds = {info.get("kind") for info in env.get("data", {}).values()}
    if config.data == "auto" and len(kinds) == 1 and kinds <= {"full", "sample"}:
        config = dataclasses.replace(config, data=kinds.pop())
    return config


# The record an export keeps beside its model: which run made it (`export.export_model`).
RUN_RECORD = "keras_labs_run.json"


def versions(lab_folder: str | os.PathLike) -> list[int]:
    """The version numbers in a lab's export folder, in order (other names are not versions:
    TensorFlow Serving ignores them too)."""
    folder = Path(lab_folder)
    if not folder.is_dir():
        return []
    return sorted(int(path.name) for path in folder.iterdir()
                  if path.name.isdigit() and path.name.isascii() and path.is_dir())


def exports_of_run(export_root: str | os.PathLike, lab: str, run_id: str) -> list[Path]:
    """The version folders under `<export_root>/<lab>/` that run `run_id` exported (read from
    their `keras_labs_run.json`)."""
    folder = Path(export_root).expanduser() / plain_name(lab, "lab")
    found = []
    for version in versions(folder):
        record = folder / str(version) / RUN_RECORD
        try:
            if json.loads(record.read_text()).get("run_id") == run_id:
                found.append(folder / str(version))
        except (OSError, ValueError):
            continue
    return found
