"""Run folders: `runs/<lab>/<run-id>/` with config.json, env.json, history.csv, metrics.json,
tb/ and plots/. A run id is never reused and an existing folder is never written into.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from keras_labs import ConfigError, KerasLabsError, instrumentation
from keras_labs.config import LabConfig
from keras_labs.data import loading
from keras_labs.files import atomic_write
from keras_labs.run_folders import check_resumable, plain_name

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# Subpackages and modules of keras_labs that compute no figure, left out of a run's code
# fingerprint: the command line, the results layer (the ledger, reproduce, the report) and the
# seed tables' parser (a lab reads seeds.md only to print the report's figure beside its own).
# With them in, editing the ledger would make every committed result stale.
NOT_FINGERPRINTED = ("cli", "__main__", "results", "seeds")


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


def code_fingerprint(modules: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fingerprint of the code a run ran: a digest of the source of every `keras_labs`
    module loaded in this process (but `NOT_FINGERPRINTED`), and each module's own digest, so a
    stale result can say which modules changed since.

    A module's digest is the first 16 hex digits of the SHA-256 of its file's bytes; the
    fingerprint's digest is that of the lines "<module> <digest>" in module order.
    `keras_labs.results.freshness` computes the same from the files on disk, without imports.

    Args:
        modules: {name: module}; default `sys.modules`.
    """
    digests = {}
    for name, module in sorted((modules if modules is not None else sys.modules).items()):
        parts = name.split(".")
        if parts[0] != "keras_labs" or (len(parts) > 1 and parts[1] in NOT_FINGERPRINTED):
            continue
        path = getattr(module, "__file__", None)
        if path and Path(path).is_file():
            digests[name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    lines = "".join(f"{name} {digest}\n" for name, digest in digests.items())
    return {"digest": hashlib.sha256(lines.encode()).hexdigest()[:16], "modules": digests}


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
        """Notes a `loading.DataSource` in env.json (and says loudly when it is a sample)."""
        self.data_sources[source.name] = {
            "kind": source.kind, "partial": source.partial, "origin": source.origin,
            "splits": source.splits, "data_dir": source.data_dir}
        print(f"data: {source.describe()}", flush=True)
        self.write_json("env.json", self.env)

    def load_data(self, name: str, splits=("train", "test"), *, text: bool = False
                  ) -> tuple[dict, Any]:
        """`loading.load` (or, with `text`, `loading.load_text`) on the data the config chose, noted
        in env.json.

        Returns:
            ({split: tf.data.Dataset, or the split's text}, the `loading.DataSource`).
        """
        datasets, source = (loading.load_text if text else loading.load)(
            name, splits, data=self.config.data, data_dir=self.config.data_dir)
        self.record_data(source)
        return datasets, source

    def held_out(self, train) -> tuple[Any, Any, dict]:
        """The config's seeded `validation_fraction` held out of the first `train_examples` of
        a training split (`loading.split_validation`; the test split selects nothing).

        Returns:
            (the training part, the validation part or None, the split's record).
        """
        return loading.split_validation(loading.first(train, self.config.train_examples),
                                        self.config.validation_fraction, seed=self.config.seed)

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
        # At the end, when every module the run used is loaded.
        self.env["code"] = code_fingerprint()
        self.write_json("env.json", self.env)
        instrumentation.write_final_metrics(self.tb_dir, metrics)
        self.write_json("metrics.json", metrics)
        # The run is complete: the training state kept for a resume is no longer needed.
        shutil.rmtree(self.backup_dir, ignore_errors=True)
        return metrics


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
