"""Exports that serve: `<export_dir>/<lab>/<version>/`, the layout TensorFlow Serving reads.

Each export is a numbered version folder: 1, 2, ..., the next integer after the highest one
there, and an existing version is never replaced. It is written to a hidden staging folder
beside it and renamed into place when complete, so a server watching the lab's folder (which
loads the highest version) never sees half a model. A version holds:

* the SavedModel (`saved_model.pb`, `variables/`). An image model's `serving_default`
  signature takes raw `uint8` images: the scaling the lab's input pipeline applied in training
  ([0, 1] or [-1, 1]) is a layer of the exported model (`serving_model`), so a client sends
  pixels as they are;
* `model.onnx` with `export_format="onnx"`, `model.tflite` with `export_format="litert"`:
  the same serving model through Keras's `model.export(path, format=...)`;
* `keras_labs_run.json` (`RUN_RECORD`): the run that trained it (lab, run id, preset, run
  folder, commit), the files and the serving input.

The clients, tolerances and a TensorFlow Serving command are in docs/serving.md.
"""

from __future__ import annotations

import datetime
import errno
import importlib.util
import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from keras_labs import ConfigError, KerasLabsError, __version__, runs
from keras_labs.run_folders import RUN_RECORD, plain_name, versions

# Each format beyond the SavedModel: the file it writes and the packages its converter needs.
FORMATS = {"onnx": ("model.onnx", ("tf2onnx", "onnx")), "litert": ("model.tflite", ())}
# The input pipeline's scalings of uint8 pixels (`loading.image_pipeline`'s `normalize`):
# x * scale + offset.
SCALINGS = {"unit": (1.0 / 255.0, 0.0), "symmetric": (2.0 / 255.0, -1.0)}
# A run id `run_folders.new_run_dir` made: <date>-<time>-<preset>-<4 hex digits>.
_RUN_ID = re.compile(r"^\d{8}-\d{6}-(?P<preset>.+)-[0-9a-f]{4}$")


def check_format(export_format: str, *, saved_model_only: str | None = None,
                 lab: str = "this model") -> None:
    """Raises ConfigError when `export_format` cannot be written here (no TensorFlow needed).

    Args:
        export_format: "saved_model", "onnx" or "litert" (`LabConfig.export_format`).
        saved_model_only: Why the model can only be a SavedModel (a text generator's string
            ops), or None when it converts.
        lab: Whose export it is, for the message.

    Raises:
        ConfigError: An unknown format, a model that cannot be converted to it, or a converter
            package that is not installed.
    """
    if export_format != "saved_model" and export_format not in FORMATS:
        raise ConfigError(f"export_format={export_format!r} is not valid; valid values: "
                          f"saved_model, {', '.join(FORMATS)}")
    if export_format == "saved_model":
        return
    if saved_model_only:
        raise ConfigError(f"export_format={export_format!r} is not possible for {lab}: "
                          f"{saved_model_only}; use export_format=saved_model")
    missing = [name for name in FORMATS[export_format][1] if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"export_format={export_format!r} needs the {' and '.join(missing)} "
                          f"package{'s' * (len(missing) > 1)}: pip install "
                          f"{' '.join(missing)} (or the project's [export] extra)")


def serving_model(model: keras.Model, normalize: str) -> keras.Model:
    """`model` behind an input of raw `uint8` images, scaled inside as it was trained.

    Args:
        model: A model trained on float images scaled from uint8 pixels by `normalize`.
        normalize: "unit" (x / 255, in [0, 1]) or "symmetric" (x / 127.5 - 1, in [-1, 1]).

    Returns:
        A model whose input `images` is uint8 of `model`'s input shape; its outputs are
        `model`'s.
    """
    if normalize not in SCALINGS:
        raise ValueError(f"normalize={normalize!r} is not valid; valid values: "
                         f"{', '.join(SCALINGS)}")
    scale, offset = SCALINGS[normalize]
    images = keras.Input(shape=model.input_shape[1:], dtype="uint8", name="images")
    # float32 whatever the global policy: the model casts its input as it did in training.
    scaled = layers.Rescaling(scale, offset, dtype="float32", name=f"scale_{normalize}")(images)
    return keras.Model(images, model(scaled), name=f"{model.name}_serving")


def export_model(model: keras.Model | None, run: runs.Run, *, normalize: str | None = None,
                 write: Callable[[str], None] | None = None,
                 saved_model_only: str | None = None) -> Path:
    """Exports `model` to the next version folder `<export_dir>/<lab>/<version>/` of `run`.

    Args:
        model: The trained model (called with `training=False` by the export).
        run: The `runs.Run` it was trained in: its lab, run id and commit, and its config's
            `export_dir` and `export_format`.
        normalize: How the lab scaled uint8 pixels ("unit" or "symmetric"): the export then
            takes raw uint8 images (`serving_model`). None: `model`'s own inputs (a
            generator's noise).
        write: Optional `callable(path)` that writes a custom SavedModel instead of
            `model.export(path)` (a text generator with its own signatures).
        saved_model_only: Why `model` can only be a SavedModel (`check_format`); a `write`
            implies it.

    Returns:
        The version folder.

    Raises:
        ConfigError: `run.config.export_format` is not possible for this model here; nothing
            is written.
        KerasLabsError: The folder cannot be written, or a conversion failed; a failed
            conversion still publishes the SavedModel, and the message says where.
    """
    lab_folder = Path(run.config.export_dir).expanduser() / plain_name(run.lab, "lab")
    plain_name(run.run_id, "run id")
    export_format = run.config.export_format
    if write is not None and saved_model_only is None:
        saved_model_only = "its SavedModel is written by its own code, which no converter reads"
    check_format(export_format, saved_model_only=saved_model_only, lab=run.lab)
    served = model if normalize is None else serving_model(model, normalize)
    try:
        lab_folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=lab_folder))
        umask = os.umask(0)
        os.umask(umask)
        # mkdtemp's owner-only mode would outlive the rename; a server may run as another user.
        staging.chmod(0o777 & ~umask)
    except OSError as error:
        raise KerasLabsError(f"cannot write exports under {str(lab_folder)!r}: "
                             f"{error.strerror}") from None
    try:
        _write_saved_model(served, staging, write)
        failure = None if export_format == "saved_model" else _convert(served, staging,
                                                                        export_format)
        _write_record(staging, run, served if write is None else None, failure)
        version = _publish(staging, lab_folder)
    except OSError as error:
        raise KerasLabsError(f"cannot write exports under {str(lab_folder)!r}: "
                             f"{error.strerror}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if failure:
        raise KerasLabsError(f"export_format={export_format!r}: {failure}; the SavedModel is "
                             f"exported to {version}")
    extra = f" and {FORMATS[export_format][0]}" if export_format in FORMATS else ""
    print(f"exported SavedModel{extra} to {version}", flush=True)
    return version


def _write_saved_model(model: keras.Model, staging: Path, write) -> None:
    if write is None:
        model.export(str(staging), format="tf_saved_model", verbose=False)
    else:
        write(str(staging))


def _convert(model: keras.Model, staging: Path, export_format: str) -> str | None:
    """Writes `model` in `export_format` into `staging`; returns why it failed, or None."""
    filename = FORMATS[export_format][0]
    try:
        with warnings.catch_warnings():
            # Keras's tf2onnx patch probes for `np.object`, which NumPy 2 warns about.
            warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
            model.export(str(staging / filename), format=export_format, verbose=False)
    except Exception as error:  # noqa: BLE001 (each converter raises its own kinds)
        lines = str(error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        (staging / filename).unlink(missing_ok=True)
        return f"converting the model to {filename} failed ({type(error).__name__}: {reason})"
    return None


def _serving_input(model: keras.Model | None) -> list[dict] | None:
    if model is None:
        return None
    return [{"name": tensor.name, "dtype": str(tensor.dtype), "shape": list(tensor.shape)}
            for tensor in model.inputs]


def _write_record(staging: Path, run: runs.Run, model: keras.Model | None,
                  failure: str | None) -> None:
    """`keras_labs_run.json`: what a server's operator needs to trace the model to its run."""
    git = run.env.get("git") or {}
    match = _RUN_ID.match(run.run_id)
    record = {
        "lab": run.lab, "run_id": run.run_id, "preset": match["preset"] if match else None,
        "run_folder": str(Path(run.workdir).resolve()),
        "commit": git.get("commit"), "dirty": git.get("dirty"), "keras_labs": __version__,
        "exported": datetime.datetime.now().isoformat(timespec="seconds"),
        "export_format": run.config.export_format,
        "files": sorted(path.name for path in staging.iterdir()) + [RUN_RECORD],
        "serving_input": _serving_input(model),
    }
    if failure:
        record["conversion_failed"] = failure
    (staging / RUN_RECORD).write_text(json.dumps(record, indent=2) + "\n")


def _publish(staging: Path, lab_folder: Path) -> Path:
    """Renames `staging` to the next free version folder; returns it.

    Another writer may take a number between the listing and the rename: the rename then fails
    (the target exists and is not empty) and the next number is tried.
    """
    version = (versions(lab_folder) or [0])[-1] + 1
    while True:
        target = lab_folder / str(version)
        if not target.exists():
            try:
                os.rename(staging, target)
                return target
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
        version += 1
