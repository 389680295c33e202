"""SavedModel export: written to a staging folder next to the target, renamed when complete."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from keras_labs import KerasLabsError
from keras_labs.files import staged_folder
from keras_labs.run_folders import plain_name


def export_model(model: keras.Model, export_root: str | os.PathLike, lab: str, run_id: str,
                 export=None) -> Path:
    """Exports `model` as a TensorFlow SavedModel to `export_root/<lab>/<run_id>/`.

    Args:
        model: The trained model; `model.export()` writes its `serve` endpoint.
        export_root: The root of exports (`--export-dir`, default `saved_models`).
        lab: The lab's name.
        run_id: The run's id; an existing export of that id is never replaced.
        export: Optional `callable(path)` that writes a custom SavedModel instead of
            `model.export(path)` (a generator with its own signature, for example).

    Returns:
        The export folder.
    """
    destination = Path(export_root).expanduser() / plain_name(lab, "lab") / plain_name(
        run_id, "run id")
    if destination.exists():
        raise KerasLabsError(f"export {str(destination)!r} exists already; not overwriting it")
    try:
        with staged_folder(destination) as staging:
            if export is None:
                model.export(str(staging), format="tf_saved_model", verbose=False)
            else:
                export(str(staging))
    except OSError as error:
        raise KerasLabsError(f"cannot write exports under {str(destination.parent)!r}: "
                             f"{error.strerror}") from None
    print(f"exported SavedModel to {destination}", flush=True)
    return destination
