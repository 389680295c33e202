"""What TensorBoard shows of a run beyond Keras's own callback.

* Probes (`probe_callbacks`, wired by `training.fit(..., probe=batch)`): on a fixed probe batch,
  every `probe_every_steps` optimizer steps (a field of every lab's config; 0: off), the
  activations of every conv layer (histogram, min, max, mean, std, fraction of zeros) and the
  first conv layer's filters as an image (`ActivationStatistics`, `FilterImages`),
  and the hidden states (and exposed gates) of every recurrent layer (`HiddenStates`).
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
import numpy as np
import tensorflow as tf

from keras_labs import compat
from keras_labs.visualization import tile_images

# The probe batch's size where the lab does not choose one.
PROBE_EXAMPLES = 32
# The probes' folder inside a fit's TensorBoard folder.
PROBE_DIR = "instrumentation"
# Config fields that say where things are, not how the run trains.
NOT_HPARAMS = ("data_dir", "export_dir")


_ACTIVATION_LAYERS = (keras.layers.Activation, keras.layers.ReLU, keras.layers.LeakyReLU,
                      keras.layers.ELU, keras.layers.PReLU, keras.layers.Softmax)


def _is_conv(layer) -> bool:
    return (isinstance(layer, keras.layers.Conv2D)
            and not isinstance(layer, keras.layers.Conv2DTranspose))


def _is_recurrent(layer) -> bool:
    """Keras's recurrent layers, and ours that expose `state_sequences` (`HoistedGRU`)."""
    return isinstance(layer, keras.layers.RNN) or hasattr(layer, "state_sequences")


def _conv_tensors(model: keras.Model) -> dict:
    """{conv layer name: its activation tensor} in `model`'s own graph (see `conv_activations`)."""
    calls = compat.own_layer_calls(model)
    consumers = {}
    for _, node in calls:
        for tensor in node.input_tensors:
            consumers.setdefault(id(tensor), []).append(node)
    tensors = {}
    for conv, node in calls:
        if not _is_conv(conv):
            continue
        tensor = node.output_tensors[0]
        linear = keras.activations.serialize(conv.activation) in ("linear", None) or (
            getattr(conv.activation, "__name__", "") == "linear")
        while linear:
            followers = consumers.get(id(tensor), [])
            if len(followers) != 1:
                break
            follower = followers[0]
            if isinstance(follower.operation, keras.layers.BatchNormalization):
                tensor = follower.output_tensors[0]
                continue
            if isinstance(follower.operation, _ACTIVATION_LAYERS):
                tensor = follower.output_tensors[0]
            break
        tensors[conv.name] = tensor
    return tensors


def _check_names(wanted, known: list[str], model: keras.Model) -> None:
    unknown = [name for name in wanted or () if name not in known]
    if unknown:
        raise ValueError(f"layer_names={unknown!r}: not Conv2D layers of model {model.name!r}; "
                         f"its Conv2D layers: {', '.join(sorted(known))}")
    if not known:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to instrument")


def conv_activations(model: keras.Model, layer_names=None) -> dict:
    """{conv layer name: the tensor that holds its activations} for a functional model.

    A Conv2D with a built-in activation is its own activation. A linear Conv2D followed by
    (optionally) BatchNormalization and then an activation layer is represented by that
    activation layer's output, so a ReLU network shows its zeros as the report-002 plots did;
    a linear Conv2D with nothing after it is represented by its own output. Only the model's
    own graph is read: `activation_probe` also reaches into nested models.

    Args:
        model: A functional (or Sequential) Keras model.
        layer_names: Only these Conv2D layers (default: every Conv2D layer).

    Raises:
        ValueError: A name in `layer_names` is not a Conv2D layer of the model, or the model has
            no Conv2D layer.
    """
    tensors = _conv_tensors(model)
    _check_names(layer_names, list(tensors), model)
    return {name: tensor for name, tensor in tensors.items()
            if layer_names is None or name in layer_names}


def conv_layers(model: keras.Model, prefix: str = "") -> list[tuple[str, keras.layers.Layer]]:
    """(name, layer) of every Conv2D layer of `model` and of the functional models nested in it
    (named `<nested model>/<layer>`), in the order the model runs them."""
    found = []
    for layer, _ in compat.own_layer_calls(model):
        if _is_conv(layer):
            found.append((prefix + layer.name, layer))
        elif isinstance(layer, keras.Model):
            found.extend(conv_layers(layer, f"{prefix}{layer.name}/"))
    return list(dict(found).items())


def _probe_parts(model: keras.Model, prefix: str = "") -> list:
    """[(names, function of the model's inputs -> their activations)], one part per graph."""
    parts = []
    tensors = _conv_tensors(model)
    if tensors:
        flat = keras.Model(model.input, list(tensors.values()), name=f"{model.name}_probe")
        parts.append(([prefix + name for name in tensors],
                      lambda inputs, flat=flat: flat(inputs, training=False)))
    for layer, node in compat.own_layer_calls(model):
        inner = (_probe_parts(layer, f"{prefix}{layer.name}/")
                 if isinstance(layer, keras.Model) else [])
        if not inner:
            continue
        # The nested model's input, computed from the outer model's (preprocessing layers).
        fed = list(node.input_tensors)
        feed = keras.Model(model.input, fed[0] if len(fed) == 1 else fed)
        for names, function in inner:
            parts.append((names, lambda inputs, feed=feed, function=function:
                          function(feed(inputs, training=False))))
    return parts


def activation_probe(model: keras.Model, layer_names=None):
    """The activations of `model`'s Conv2D layers (`conv_activations`), nested functional
    models included (a transfer model's pretrained base), as a function of the model's inputs.

    Returns:
        (names, probe): `probe(inputs)` gives one array per name, in inference mode.

    Raises:
        ValueError: As `conv_activations`.
    """
    parts = _probe_parts(model)
    known = [name for names, _ in parts for name in names]
    _check_names(layer_names, known, model)

    def probe(inputs):
        outputs = []
        for names, function in parts:
            values = function(inputs)
            values = values if isinstance(values, list | tuple) else [values]
            outputs.extend(value for name, value in zip(names, values, strict=True)
                           if layer_names is None or name in layer_names)
        return outputs

    return [name for name in known if layer_names is None or name in layer_names], probe


def recurrent_sequences(layer, inputs) -> dict[str, np.ndarray]:
    """A recurrent layer's hidden state at every step of `inputs` (batch, time, features), in
    inference mode: {"hidden_states": (batch, time, units)}, with "cell_states" for an LSTM
    and "gates/<gate>" where the layer exposes its gates (`HoistedGRU.state_sequences`).

    Keras's layers return at most the last state and keep their gates inside the cell, so the
    cell is stepped here from the layer's initial (zero) state.
    """
    if hasattr(layer, "state_sequences"):
        sequences = layer.state_sequences(inputs)
    else:
        states = layer.get_initial_state(int(inputs.shape[0]))
        hidden, cells = [], []
        steps = range(int(inputs.shape[1]))
        for step in reversed(steps) if layer.go_backwards else steps:
            output, states = layer.cell(inputs[:, step], states, training=False)
            states = list(states) if isinstance(states, list | tuple) else [states]
            hidden.append(output)
            cells.extend(states[1:2])  # an LSTM's carry: [h, c]
        sequences = {"hidden_states": keras.ops.stack(hidden, axis=1)}
        if cells:
            sequences["cell_states"] = keras.ops.stack(cells, axis=1)
    return {key: keras.ops.convert_to_numpy(keras.ops.cast(value, "float32"))
            for key, value in sequences.items()}


def recurrent_calls(model: keras.Model) -> list:
    """(layer, node) of every recurrent layer call in `model`'s own graph."""
    return [(layer, node) for layer, node in compat.own_layer_calls(model) if _is_recurrent(layer)]


class _StepInterval(keras.callbacks.Callback):
    """Calls `self.record(step)` at the start of training, every `every_n_steps` optimizer
    steps, and at the end of training.

    The step is the optimizer's iteration count, so the interval holds with any
    `steps_per_execution` (callbacks then fire once per execution; a record happens at the first
    callback at or after each multiple of the interval).
    """

    def __init__(self, every_n_steps: int):
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"every_n_steps={every_n_steps!r} is not valid; it must be >= 1")
        self.every_n_steps = every_n_steps
        self._last = None

    def _step(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def _maybe_record(self, force: bool = False) -> None:
        step = self._step()
        due = self._last is None or step // self.every_n_steps > self._last // self.every_n_steps
        if (due or force) and step != self._last:
            self._last = step
            self.record(step)

    def on_train_begin(self, logs=None):
        self._last = None
        self._maybe_record()

    def on_train_batch_end(self, batch, logs=None):
        self._maybe_record()

    def on_train_end(self, logs=None):
        self._maybe_record(force=True)

    def record(self, step: int) -> None:
        raise NotImplementedError


def _probe_inputs(inputs):
    """A fixed probe batch as arrays (a list for a model with several inputs)."""
    if isinstance(inputs, list | tuple):
        return [np.asarray(part) for part in inputs]
    return np.asarray(inputs)


class _Probe(_StepInterval):
    """A `_StepInterval` that writes to its own TensorBoard folder and reads `network` (by
    default the model being trained; the GAN's discriminator for a GAN)."""

    def __init__(self, log_dir, every_n_steps: int, network: keras.Model | None = None):
        super().__init__(every_n_steps)
        self.log_dir = str(log_dir)
        self.network = network
        self._writer = None

    def on_train_begin(self, logs=None):
        self._writer = tf.summary.create_file_writer(self.log_dir)
        super().on_train_begin(logs)

    def _network(self) -> keras.Model:
        return self.network if self.network is not None else self.model

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self._writer.close()


class ActivationStatistics(_Probe):
    """Histograms and summary statistics of every conv layer's activations on a fixed probe batch.

    Keras's TensorBoard callback logs weight histograms only; this logs what the convolutions
    produce, at a set interval in steps, under the tags `activations/<layer>` (histogram) and
    `activations/<layer>/<stat>` for the scalars min, max, mean, std and zero_fraction. The
    conv layers of nested functional models (a pretrained base) are named `<model>/<layer>`.

    Args:
        probe_images: The fixed batch of model inputs (always the same images, so changes
            between steps come from the weights only); a list for several inputs.
        log_dir: Folder of the TensorBoard event files (for example `run.tb_dir / "instrumentation"`).
        every_n_steps: Interval in optimizer steps.
        layer_names: Only these Conv2D layers (default: all).
        buckets: Histogram buckets.
        network: The network to probe (default: the model being trained).
    """

    STATISTICS = ("min", "max", "mean", "std", "zero_fraction")

    def __init__(self, probe_images, log_dir, every_n_steps: int = 100, layer_names=None,
                 buckets: int = 40, network: keras.Model | None = None):
        super().__init__(log_dir, every_n_steps, network)
        self.probe_images = _probe_inputs(probe_images)
        self.layer_names = layer_names
        self.buckets = buckets
        self._probe = None

    def on_train_begin(self, logs=None):
        self._names, self._probe = activation_probe(self._network(), self.layer_names)
        super().on_train_begin(logs)

    def statistics(self) -> dict[str, dict[str, float]]:
        """{layer: {stat: value}} of the activations on the probe batch, right now."""
        result = {}
        for name, output in zip(self._names, self._probe(self.probe_images), strict=True):
            values = keras.ops.convert_to_numpy(output).astype(np.float32)
            result[name] = {"values": values, "min": float(values.min()),
                            "max": float(values.max()), "mean": float(values.mean()),
                            "std": float(values.std()),
                            "zero_fraction": float(np.mean(values == 0.0))}
        return result

    def record(self, step: int) -> None:
        with self._writer.as_default(step=step):
            for name, stats in self.statistics().items():
                tf.summary.histogram(f"activations/{name}", stats["values"], buckets=self.buckets)
                for statistic in self.STATISTICS:
                    tf.summary.scalar(f"activations/{name}/{statistic}", stats[statistic])
        self._writer.flush()


class HiddenStates(_Probe):
    """Histograms of every recurrent layer's hidden states on a fixed probe batch of sequences.

    Tags: `hidden_states/<layer>` (every step of every probe sequence), `cell_states/<layer>`
    for an LSTM, and `gates/<layer>/<gate>` where the layer exposes its gates (`HoistedGRU`:
    update, reset, candidate), at a set interval in steps.

    Args:
        probe_inputs: The fixed batch of model inputs (token ids, images read row by row).
        log_dir: Folder of the TensorBoard event files.
        every_n_steps: Interval in optimizer steps.
        buckets: Histogram buckets.
        network: The network to probe (default: the model being trained).
    """

    def __init__(self, probe_inputs, log_dir, every_n_steps: int = 100, buckets: int = 40,
                 network: keras.Model | None = None):
        super().__init__(log_dir, every_n_steps, network)
        self.probe_inputs = _probe_inputs(probe_inputs)
        self.buckets = buckets

    def on_train_begin(self, logs=None):
        network = self._network()
        calls = recurrent_calls(network)
        if not calls:
            raise ValueError(f"model {network.name!r} has no recurrent layer to probe")
        self._layers = [layer for layer, _ in calls]
        # What each recurrent layer reads (its input sequence), from the model's inputs.
        self._feed = keras.Model(network.input, [node.input_tensors[0] for _, node in calls])
        super().on_train_begin(logs)

    def sequences(self) -> dict[str, dict[str, np.ndarray]]:
        """{layer: `recurrent_sequences` on the probe batch}, right now."""
        inputs = self._feed(self.probe_inputs, training=False)
        inputs = inputs if isinstance(inputs, list | tuple) else [inputs]
        return {layer.name: recurrent_sequences(layer, sequence)
                for layer, sequence in zip(self._layers, inputs, strict=True)}

    def record(self, step: int) -> None:
        with self._writer.as_default(step=step):
            for layer, sequences in self.sequences().items():
                for key, values in sequences.items():
                    group, _, part = key.partition("/")
                    tag = f"{group}/{layer}" + (f"/{part}" if part else "")
                    tf.summary.histogram(tag, values, buckets=self.buckets)
        self._writer.flush()


def filter_grid(kernel, scale: int = 6, columns: int | None = None) -> np.ndarray:
    """A conv kernel (kh, kw, in, out) as one uint8 image grid, one tile per output filter.

    Three input channels are shown as RGB; any other count as the grayscale mean over inputs.
    Every filter is min-max scaled on its own (shape, not magnitude, is what one reads off),
    enlarged `scale` times, and separated from its neighbours by a 1-pixel gray line.
    """
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 4:
        raise ValueError(f"kernel of shape {kernel.shape} is not a Conv2D kernel (kh, kw, in, out)")
    filters = np.moveaxis(kernel, -1, 0)  # (out, kh, kw, in)
    if filters.shape[-1] != 3:
        filters = filters.mean(axis=-1, keepdims=True).repeat(3, axis=-1)
    low = filters.min(axis=(1, 2, 3), keepdims=True)
    high = filters.max(axis=(1, 2, 3), keepdims=True)
    filters = (filters - low) / np.maximum(high - low, 1e-8)
    filters = filters.repeat(scale, axis=1).repeat(scale, axis=2)
    columns = columns or int(np.ceil(np.sqrt(len(filters))))
    grid = tile_images(filters, columns=columns, padding=1, background=0.5)
    return (grid * 255).round().astype(np.uint8)


class FilterImages(_Probe):
    """The first conv layer's kernels as an image grid, in TensorBoard and as PNG files, over
    training.

    TensorBoard gets the grid under the tag `filters/<layer>` every `every_n_steps` steps; the
    PNG `filters_<layer>_step<N>.png` goes to `plots_dir` at the start, at every epoch end and at
    the end of training.

    Args:
        log_dir: Folder of the TensorBoard event files.
        plots_dir: Folder of the PNG files (None: no PNG files).
        every_n_steps: Interval in optimizer steps for TensorBoard.
        layer_name: The conv layer to show (default: the model's first Conv2D layer; one of a
            nested model is named `<model>/<layer>`).
        scale: Pixels per kernel element in TensorBoard (twice that in the PNG files).
        network: The network to show (default: the model being trained).
    """

    def __init__(self, log_dir, plots_dir=None, every_n_steps: int = 100,
                 layer_name: str | None = None, scale: int = 8,
                 network: keras.Model | None = None):
        super().__init__(log_dir, every_n_steps, network)
        self.plots_dir = None if plots_dir is None else Path(plots_dir)
        self.layer_name = layer_name
        self.scale = scale
        self.png_paths: list[Path] = []

    def on_train_begin(self, logs=None):
        network = self._network()
        convs = dict(conv_layers(network))
        if not convs:
            raise ValueError(f"model {network.name!r} has no Conv2D layer to instrument")
        if self.layer_name is None:
            self.layer_name = next(iter(convs))
        if self.layer_name not in convs:
            raise ValueError(f"layer_name={self.layer_name!r} is not a Conv2D layer of model "
                             f"{network.name!r}; its Conv2D layers: {', '.join(convs)}")
        self._layer = convs[self.layer_name]
        super().on_train_begin(logs)
        self.save_png(self._step())

    def grid(self) -> np.ndarray:
        return filter_grid(keras.ops.convert_to_numpy(self._layer.kernel), scale=self.scale)

    def record(self, step: int) -> None:
        with self._writer.as_default(step=step):
            tf.summary.image(f"filters/{self.layer_name}", self.grid()[None], max_outputs=1)
        self._writer.flush()

    def save_png(self, step: int) -> None:
        if self.plots_dir is None:
            return
        name = self.layer_name.replace("/", "_")
        path = self.plots_dir / f"filters_{name}_step{step:06d}.png"
        if path in self.png_paths:
            return
        self.plots_dir.mkdir(parents=True, exist_ok=True)
        # twice the TensorBoard scale: a PNG is looked at without TensorBoard's zoom
        kernel = keras.ops.convert_to_numpy(self._layer.kernel)
        tf.io.write_file(str(path), tf.io.encode_png(filter_grid(kernel, scale=2 * self.scale)))
        self.png_paths.append(path)

    def on_epoch_end(self, epoch, logs=None):
        self.save_png(self._step())

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.save_png(self._step())


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
    if conv_layers(network):
        probes += [ActivationStatistics(probe, log_dir, every_n_steps, network=network),
                   FilterImages(log_dir, plots_dir, every_n_steps, network=network)]
    if recurrent_calls(network):
        probes.append(HiddenStates(probe, log_dir, every_n_steps, network=network))
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


def activation_minima(model: keras.Model, probe) -> dict[str, float]:
    """{conv layer: the minimum of its activations on `probe`} (`activation_probe`: after the
    nonlinearity, so a ReLU network's are 0 or more, and exactly 0 where units are off)."""
    names, activations = activation_probe(model)
    return {name: float(np.min(keras.ops.convert_to_numpy(output)))
            for name, output in zip(names, activations(probe), strict=True)}
