"""What TensorBoard shows of a run beyond Keras's own callback.

* Probes (`probe_callbacks`, wired by `training.fit(..., probe=batch)`): on a fixed probe batch,
  every `probe_every_steps` optimizer steps (a field of every lab's config; 0: off), the
  activations of every conv layer (histogram, min, max, mean, std, fraction of zeros) and the
  first conv layer's filters as an image (`callbacks.ActivationStatistics`, `FilterImages`),
  and the hidden states (and exposed gates) of every recurrent layer (`callbacks.HiddenStates`).
  They only read the network, in inference mode, so training is the same with or without them.
* The run's HParams session (`write_session`, `write_final_metrics`, called by `runs.Run`): the
  lab and its config's scalar fields, and the final metrics, in the run's `tb/`. That folder
  then holds event files of its own, so `tensorboard --logdir runs` lists every run in HParams
  and finds the embeddings lab's Projector files next to them.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import keras

from keras_labs import callbacks

# The probe batch's size where the lab does not choose one.
PROBE_EXAMPLES = 32
# The probes' folder inside a fit's TensorBoard folder.
PROBE_DIR = "instrumentation"
# Config fields that say where things are, not how the run trains.
NOT_HPARAMS = ("data_dir", "export_dir")


def probe_callbacks(model: keras.Model, probe, log_dir: str | os.PathLike, every_n_steps: int,
                    plots_dir: str | os.PathLike | None = None) -> list[keras.callbacks.Callback]:
    """The probes that apply to `model`: conv statistics and filters if it has Conv2D layers
    (nested models included), hidden states if it has recurrent layers; none otherwise.

    A model that trains a network it is not (the GAN) names it in a `probe_network` attribute.

    Args:
        model: The model `fit` trains.
        probe: The fixed batch of the probed network's inputs (a list for several inputs).
        log_dir: The TensorBoard folder of the probes.
        every_n_steps: Interval in optimizer steps.
        plots_dir: Also save the filter grids as PNG files here (None: no files).
    """
    network = getattr(model, "probe_network", model)
    probes = []
    if callbacks.conv_layers(network):
        probes += [callbacks.ActivationStatistics(probe, log_dir, every_n_steps, network=network),
                   callbacks.FilterImages(log_dir, plots_dir, every_n_steps, network=network)]
    if callbacks.recurrent_calls(network):
        probes.append(callbacks.HiddenStates(probe, log_dir, every_n_steps, network=network))
    return probes


def hparams(lab: str, config) -> dict[str, bool | int | float | str]:
    """The run's hyperparameters: the lab and its config's fields (tuples as "a,b,c")."""
    values: dict[str, bool | int | float | str] = {"lab": lab}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name in NOT_HPARAMS or value is None:
            continue
        values[field.name] = ",".join(map(str, value)) if isinstance(value, tuple) else value
    return values


def write_session(tb_dir: str | os.PathLike, lab: str, config) -> None:
    """Starts the run's HParams session in `tb_dir` (its hyperparameters, `hparams`)."""
    import tensorflow as tf
    from tensorboard.plugins.hparams import api as hp

    writer = tf.summary.create_file_writer(str(tb_dir))
    with writer.as_default():
        hp.hparams(hparams(lab, config))
    writer.close()


def final_scalars(metrics: dict, prefix: str = "final") -> dict[str, float]:
    """The finite numbers of `metrics` (nested dicts included, lists left out) as
    {`final/<key>[/<key>...]`: value}."""
    scalars = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            scalars.update(final_scalars(value, name))
        elif (isinstance(value, int | float) and not isinstance(value, bool)
              and math.isfinite(value)):
            scalars[name] = float(value)
    return scalars


def write_final_metrics(tb_dir: str | os.PathLike, metrics: dict) -> None:
    """The run's final metrics (`final_scalars`), the HParams session's metric values."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tb_dir))
    with writer.as_default(step=0):
        for name, value in final_scalars(metrics).items():
            tf.summary.scalar(name, value)
    writer.close()


def probe_dir(run, log_dir: str | os.PathLike | None = None) -> Path:
    """The probes' folder of a fit that logs to `log_dir` (default: the run's tb/)."""
    return Path(log_dir or run.tb_dir) / PROBE_DIR
