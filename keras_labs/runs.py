"""Run folders: `runs/<lab>/<run-id>/` with config.json, env.json, history.csv, metrics.json,
tb/ and plots/. A run id is never reused and an existing folder is never written into.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import platform
import secrets
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from keras_labs import ConfigError, KerasLabsError
from keras_labs.config import LabConfig
from keras_labs.files import atomic_write

PACKAGE_ROOT = Path(__file__).resolve().parent.parent


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


def _git_state() -> dict[str, Any]:
    def git(*args):
        return subprocess.run(["git", "-C", str(PACKAGE_ROOT), *args], capture_output=True,
                              text=True, timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode:
            return {"commit": None, "dirty": None}
        dirty = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment() -> dict[str, Any]:
    """Package versions, devices, git commit and host facts for env.json."""
    import keras
    import sklearn
    import tensorflow as tf
    import tensorflow_datasets as tfds

    return {
        "python": sys.version.split()[0],
        "packages": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "tensorflow_datasets": tfds.__version__, "numpy": np.__version__,
                     "scikit-learn": sklearn.__version__},
        "keras_backend": keras.backend.backend(),
        "devices": [device.name for device in tf.config.list_logical_devices()],
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "hostname": platform.node(),
        "git": _git_state(),
        "command": sys.argv,
    }


class Run:
    """One lab run's folder and its records.

    Args:
        lab: The lab's name.
        config: Its resolved, validated config.
        workdir: The run folder; created if missing, refused if it already has files.
        resume: Reopen `workdir`, an interrupted run of this lab, to continue it: its records
            are kept, env.json notes the resume, and a FAILED.txt note moves into env.json.
    """

    def __init__(self, lab: str, config: LabConfig, workdir: str | os.PathLike, *,
                 resume: bool = False):
        self.lab = lab
        self.config = config.validate()
        self.workdir = Path(workdir)
        self.run_id = plain_name(self.workdir.resolve().name, "run folder")
        self.started = datetime.datetime.now()
        if resume:
            self._reopen()
            return
        if self.workdir.exists() and any(self.workdir.iterdir()):
            raise ConfigError(f"run folder {str(self.workdir)!r} already has files; a run never "
                              "writes into an existing run")
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.plots_dir.mkdir()
            self.tb_dir.mkdir()
        except OSError as error:
            raise KerasLabsError(f"cannot write the run folder {str(self.workdir)!r}: "
                                 f"{error.strerror}") from None
        self.data_sources: dict[str, dict] = {}
        self.env = {"lab": lab, "run_id": self.run_id, "seed": config.seed,
                    "deterministic": config.deterministic, "started": self.started.isoformat(
                        timespec="seconds"), **environment(), "data": self.data_sources}
        self.write_json("config.json", config.to_dict())
        self.write_json("env.json", self.env)
        from keras_labs import instrumentation  # TensorBoard's HParams: TensorFlow by now

        instrumentation.write_session(self.tb_dir, lab, config)

    def _reopen(self) -> None:
        check_resumable(self.workdir, self.lab)
        env_path = self.workdir / "env.json"
        self.env = (json.loads(env_path.read_text()) if env_path.exists()
                    else {"lab": self.lab, "run_id": self.run_id, "seed": self.config.seed})
        self.data_sources = self.env.setdefault("data", {})
        failed = self.workdir / "FAILED.txt"
        previous = failed.read_text().strip() if failed.exists() else None
        self.env.setdefault("resumed", []).append(
            {"at": self.started.isoformat(timespec="seconds"), "previous_failure": previous})
        self.plots_dir.mkdir(exist_ok=True)
        self.tb_dir.mkdir(exist_ok=True)
        self.write_json("env.json", self.env)
        failed.unlink(missing_ok=True)

    @property
    def backup_dir(self) -> Path:
        """Where `training.Backup` keeps the state a killed run resumes from."""
        return self.workdir / "backup"

    @property
    def plots_dir(self) -> Path:
        return self.workdir / "plots"

    @property
    def tb_dir(self) -> Path:
        return self.workdir / "tb"

    @property
    def history_path(self) -> Path:
        return self.workdir / "history.csv"

    def plot_path(self, name: str) -> Path:
        return self.plots_dir / f"{name}.png"

    def record_data(self, source) -> None:
        """Notes a `data.DataSource` in env.json (and says loudly when it is a sample)."""
        self.data_sources[source.name] = {
            "kind": source.kind, "partial": source.partial, "origin": source.origin,
            "splits": source.splits, "data_dir": source.data_dir}
        print(f"data: {source.describe()}", flush=True)
        self.write_json("env.json", self.env)

    def load_data(self, name: str, splits=("train", "test"), *, text: bool = False
                  ) -> tuple[dict, Any]:
        """`data.load` (or, with `text`, `data.load_text`) on the data the config chose, noted
        in env.json.

        Returns:
            ({split: tf.data.Dataset, or the split's text}, the `data.DataSource`).
        """
        from keras_labs import data

        datasets, source = (data.load_text if text else data.load)(
            name, splits, data=self.config.data, data_dir=self.config.data_dir)
        self.record_data(source)
        return datasets, source

    def write_json(self, name: str, payload: Any) -> Path:
        return atomic_write(self.workdir / name,
                            json.dumps(to_jsonable(payload), indent=2, sort_keys=True))

    def finish(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Writes metrics.json (with the data sources and wall time) and returns the metrics."""
        metrics = dict(metrics)
        metrics.setdefault("data", {name: {"kind": info["kind"], "partial": info["partial"]}
                                    for name, info in self.data_sources.items()})
        metrics["wall_time_s"] = round((datetime.datetime.now() - self.started).total_seconds(), 2)
        self.env["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        self.write_json("env.json", self.env)
        from keras_labs import instrumentation

        instrumentation.write_final_metrics(self.tb_dir, metrics)
        self.write_json("metrics.json", metrics)
        # The run is complete: the training state kept for a resume is no longer needed.
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        return metrics


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


def to_jsonable(value: Any) -> Any:
    """Converts NumPy scalars and arrays, paths and tuples to JSON types; NaN becomes null."""
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value
