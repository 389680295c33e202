"""A Zeiler-Fergus deconvnet for functional Keras CNNs (Zeiler & Fergus, "Visualizing and
Understanding Convolutional Networks", ECCV 2014).

The deconvnet maps a feature activation back to pixel space through the layers below it. The
forward pass records the pooling *switches* (where each max came from, with
`tf.nn.max_pool_with_argmax`); the projection then undoes the layers one by one, in reverse:

* max pooling: unpool, putting each value back at its switch position (zeros elsewhere);
* ReLU: rectify the reconstructed signal (the deconvnet's rule: the signal itself is passed
  through a ReLU, whatever the forward pass did at that position);
* convolution: the transposed convolution with the layer's own filters
  (`tf.nn.conv2d_transpose`, which is the paper's "flipped filters"); biases are not used.

Supported layers, on a simple chain from the model input to the projected layer: `Conv2D`
(linear or ReLU activation), `Activation("relu")`, `ReLU()`, `MaxPooling2D`,
`BatchNormalization` (folded into the convolution right before it; skipped elsewhere) and
`Dropout` (the identity at inference). Anything else raises `UnsupportedLayerError`, naming the
layer. Layers after the projected one (flatten, dense head) are never looked at.

Without pooling or ReLU, a projection is exactly the vector-Jacobian product of the layers (the
transposed convolution is the gradient of the convolution with respect to its input); the tests
check this against `tf.GradientTape`.

Example:

    projector = Deconvnet(model)
    pixels = projector.project(images, "pool2", feature="strongest")   # (N, H, W, C) float32
    best = projector.top_activations(dataset, "pool2", feature=7, k=9)  # the paper's figure 2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from keras_labs import KerasLabsError

# Sentinels for `feature` inside the compiled projection (a tensor, so one trace serves them all).
_ALL_FEATURES = -1
_STRONGEST_FEATURE = -2

SUPPORTED = ("Conv2D (linear or relu activation), Activation('relu'), ReLU, MaxPooling2D, "
             "BatchNormalization, Dropout")


class UnsupportedLayerError(KerasLabsError, ValueError):
    """A layer between the input and the projected layer has no deconvnet inverse."""


@dataclasses.dataclass
class _Step:
    """One layer of the chain, in forward order, with what its inverse needs."""

    kind: str  # a key of _PASSES: "conv", "relu", "pool", "batch_norm", "identity"
    layer: keras.layers.Layer
    relu_after: bool = False  # a Conv2D with activation="relu"
    fold: keras.layers.Layer | None = None  # a BatchNormalization folded into this conv


@dataclasses.dataclass
class TopActivations:
    """The `k` examples of a dataset that activate one feature map most.

    Attributes:
        layer: The projected layer's name.
        feature: The feature map (channel) index.
        indices: Example positions in the dataset, strongest first.
        activations: Each example's maximum activation of the feature map.
        images: The examples, (k, H, W, C).
        projections: Each example's strongest activation of the map projected to pixels.
        labels: The examples' labels when the dataset had them, else None.
    """

    layer: str
    feature: int
    indices: np.ndarray
    activations: np.ndarray
    images: np.ndarray
    projections: np.ndarray
    labels: np.ndarray | None = None


class Deconvnet:
    """Projects the activations of a functional Keras CNN back to pixel space.

    Args:
        model: A built Keras model (functional or sequential) with one image input, channels last.

    The weights are read when a projection runs, so a projector made before training sees the
    trained filters.
    """

    def __init__(self, model: keras.Model):
        if len(model.inputs) != 1:
            raise UnsupportedLayerError(f"model {model.name!r} has {len(model.inputs)} inputs; "
                                        "the deconvnet needs exactly one image input")
        self.model = model
        self._chains: dict[str, list[_Step]] = {}
        self._functions: dict[str, tf.types.experimental.PolymorphicFunction] = {}

    # ----------------------------------------------------------------------------------------
    # The chain of layers

    def chain(self, layer: str) -> list[_Step]:
        """The steps from the input to `layer` (inclusive), in forward order.

        Raises:
            ValueError: No layer of that name.
            UnsupportedLayerError: A layer on the way has no deconvnet inverse, or the path from
                the input is not a simple chain.
        """
        if layer not in self._chains:
            self._chains[layer] = _parse_chain(self.model, layer)
        return self._chains[layer]

    def output_shape(self, layer: str) -> tuple:
        return tuple(self.model.get_layer(layer).output.shape)

    # ----------------------------------------------------------------------------------------
    # Forward and backward passes

    def forward(self, images, layer: str) -> tuple[tf.Tensor, list]:
        """Runs the chain up to `layer`, recording what the projection needs.

        Returns:
            (the activations of `layer`, a record per step: the pooling switches and input
            shapes, in forward order).
        """
        x = tf.convert_to_tensor(images, dtype=tf.float32)
        record = []
        for step in self.chain(layer):
            x, recorded = _PASSES[step.kind].forward(step, x)
            record.append(recorded)
        return x, record

    def backward(self, signal, layer: str, record: list) -> tf.Tensor:
        """Projects `signal` (shaped like the activations of `layer`) down to pixel space.

        Args:
            signal: What to project: the activations, or any pattern of the same shape.
            layer: The layer `signal` lives at.
            record: The `forward()` record of the same images (switches and shapes).
        """
        x = tf.convert_to_tensor(signal, dtype=tf.float32)
        for step, recorded in zip(reversed(self.chain(layer)), reversed(record), strict=True):
            x = _PASSES[step.kind].inverse(step, x, recorded)
        return x

    def project_pattern(self, images, pattern, layer: str) -> tf.Tensor:
        """Projects an arbitrary activation `pattern` at `layer`, using the switches of `images`."""
        _, record = self.forward(images, layer)
        return self.backward(pattern, layer, record)

    def project(self, images, layer: str, *, feature: int | str | None = None,
                keep: str = "map") -> np.ndarray:
        """Projects activations of `layer` for a batch of images to pixel space.

        Args:
            images: (N, H, W, C) float images, preprocessed as the model expects.
            layer: Name of the layer whose activations are projected (a pooling or ReLU output,
                or a convolution).
            feature: None: all feature maps together; "strongest": for each image, only the map
                with the largest activation; an int: only that feature map (channel).
            keep: "map": the whole selected map(s); "max": only the single largest activation
                in them (the paper's per-activation projections).

        Returns:
            (N, H, W, C) float32 projections (signed; see `to_display`).
        """
        if keep not in ("map", "max"):
            raise ValueError(f"keep={keep!r} is not valid; valid values: map, max")
        channels = self.output_shape(layer)[-1]
        if feature is None:
            code = _ALL_FEATURES
        elif feature == "strongest":
            code = _STRONGEST_FEATURE
        elif isinstance(feature, int | np.integer) and not isinstance(feature, bool) \
                and 0 <= feature < channels:
            code = int(feature)
        else:
            raise ValueError(f"feature={feature!r} is not valid for layer {layer!r}: use None, "
                             f"'strongest' or a channel index in [0, {channels})")
        function = self._compiled(layer)
        projections, _ = function(tf.convert_to_tensor(images, tf.float32),
                                  tf.constant(code, tf.int32), tf.constant(keep == "max"))
        return projections.numpy()

    def strongest_features(self, images, layer: str) -> np.ndarray:
        """For each image, the index of the feature map of `layer` with the largest activation."""
        activations, _ = self.forward(images, layer)
        return tf.argmax(tf.reduce_max(activations, axis=(1, 2)), axis=-1).numpy()

    def projection_function(self, layer: str):
        """The compiled `(images, feature code, keep_max) -> (projections, selected channel)`.

        Feature code: a channel index, -1 for all maps, -2 for each image's strongest map. Useful
        to benchmark or export; `project()` is the friendly front end.
        """
        return self._compiled(layer)

    def _compiled(self, layer: str):
        if layer not in self._functions:
            self.chain(layer)  # fail early, outside the trace, with the layer's name

            @tf.function(reduce_retracing=True)
            def project(images, feature, keep_max):
                activations, record = self.forward(images, layer)
                signal, chosen = select(activations, feature, keep_max)
                return self.backward(signal, layer, record), chosen

            self._functions[layer] = project
        return self._functions[layer]

    # ----------------------------------------------------------------------------------------
    # Searching a dataset

    def top_activations(self, dataset: tf.data.Dataset | Iterable, layer: str, feature: int,
                        k: int = 9) -> TopActivations:
        """The `k` examples of `dataset` that activate feature map `feature` of `layer` most,
        each with the projection of its strongest activation of that map (the paper's figure 2).

        Args:
            dataset: Batches of images, or of (images, labels) pairs.
            layer: The layer's name.
            feature: A channel index of the layer's output.
            k: How many examples.
        """
        channels = self.output_shape(layer)[-1]
        if not 0 <= feature < channels:
            raise ValueError(f"feature={feature!r} is not valid for layer {layer!r}; it has "
                             f"{channels} feature maps")
        scores, images, labels = [], [], []
        activation_of = self._compiled_activation(layer)
        for batch in dataset:
            batch_images, batch_labels = (batch if isinstance(batch, tuple | list) else (batch, None))
            activations = activation_of(tf.convert_to_tensor(batch_images, tf.float32))
            scores.append(tf.reduce_max(activations[..., feature], axis=(1, 2)).numpy())
            images.append(np.asarray(batch_images))
            if batch_labels is not None:
                labels.append(np.asarray(batch_labels))
        if not scores:
            raise ValueError("top_activations: the dataset is empty")
        scores = np.concatenate(scores)
        images = np.concatenate(images)
        order = np.argsort(-scores, kind="stable")[:k]
        chosen = images[order]
        projections = self.project(chosen, layer, feature=int(feature), keep="max")
        return TopActivations(layer, int(feature), order, scores[order], chosen, projections,
                              np.concatenate(labels)[order] if labels else None)

    def _compiled_activation(self, layer: str):
        key = f"activation:{layer}"
        if key not in self._functions:
            self.chain(layer)
            self._functions[key] = tf.function(lambda images: self.forward(images, layer)[0],
                                               reduce_retracing=True)
        return self._functions[key]


# --------------------------------------------------------------------------------------------
# Each layer kind's forward pass and its deconvnet inverse


def _conv_forward(step: _Step, x) -> tuple[tf.Tensor, tf.Tensor]:
    layer = step.layer
    input_shape = tf.shape(x)
    x = tf.nn.convolution(x, _as_float32(layer.kernel), strides=layer.strides,
                          padding=layer.padding.upper(), dilations=layer.dilation_rate)
    if layer.use_bias:
        x = x + _as_float32(layer.bias)
    if step.relu_after:
        x = _forward_relu(x)
    return x, input_shape


def _conv_inverse(step: _Step, x, input_shape) -> tf.Tensor:
    layer = step.layer
    if step.relu_after:
        x = tf.nn.relu(x)
    kernel = _as_float32(layer.kernel)
    if step.fold is not None:
        kernel = kernel * _batch_norm_scale(step.fold)
    return tf.nn.conv2d_transpose(x, kernel, output_shape=input_shape, strides=layer.strides,
                                  padding=layer.padding.upper(), dilations=layer.dilation_rate)


def _relu_forward(step: _Step, x) -> tuple[tf.Tensor, None]:
    return _forward_relu(x), None


def _relu_inverse(step: _Step, x, recorded) -> tf.Tensor:
    return tf.nn.relu(x)


def _pool_forward(step: _Step, x) -> tuple[tf.Tensor, tuple[tf.Tensor, tf.Tensor]]:
    layer = step.layer
    input_shape = tf.shape(x, out_type=tf.int64)
    x, switches = tf.nn.max_pool_with_argmax(x, ksize=layer.pool_size, strides=layer.strides,
                                             padding=layer.padding.upper(),
                                             include_batch_in_index=True)
    return x, (input_shape, switches)


def _pool_inverse(step: _Step, x, recorded) -> tf.Tensor:
    input_shape, switches = recorded
    return unpool(x, switches, input_shape)


def _batch_norm_forward(step: _Step, x) -> tuple[tf.Tensor, None]:
    return tf.cast(step.layer(x, training=False), tf.float32), None


def _identity_forward(step: _Step, x) -> tuple[tf.Tensor, None]:
    return x, None


def _nothing_to_undo(step: _Step, x, recorded) -> tf.Tensor:
    return x


class _Pass(NamedTuple):
    forward: Callable  # (step, x) -> (output, what the inverse needs)
    inverse: Callable  # (step, signal, what forward recorded) -> the signal one layer down


# A batch normalization has no inverse of its own: it is folded into the convolution right
# before it (see _parse_chain), or skipped.
_PASSES = {
    "conv": _Pass(_conv_forward, _conv_inverse),
    "relu": _Pass(_relu_forward, _relu_inverse),
    "pool": _Pass(_pool_forward, _pool_inverse),
    "batch_norm": _Pass(_batch_norm_forward, _nothing_to_undo),
    "identity": _Pass(_identity_forward, _nothing_to_undo),
}


# --------------------------------------------------------------------------------------------
# Building blocks


def unpool(signal, switches, input_shape) -> tf.Tensor:
    """Max unpooling: each value of `signal` goes back to its switch position in the pooling
    input (`tf.nn.max_pool_with_argmax(..., include_batch_in_index=True)`), zeros elsewhere.

    Overlapping pooling windows that chose the same position add up, as the gradient does.
    """
    input_shape = tf.cast(input_shape, tf.int64)
    flat = tf.scatter_nd(tf.reshape(switches, (-1, 1)), tf.reshape(signal, (-1,)),
                         tf.reshape(tf.reduce_prod(input_shape), (1,)))
    return tf.reshape(flat, input_shape)


def select(activations, feature, keep_max):
    """Zeroes the activations that are not projected (the paper: "all other activations in the
    layer set to zero").

    Args:
        activations: (N, h, w, C).
        feature: int32 scalar tensor: a channel, -1 (all channels) or -2 (each image's strongest).
        keep_max: bool scalar tensor: keep only the single largest remaining activation per image.

    Returns:
        (the selected signal, the selected channel per image; -1 where all are kept).
    """
    channels = tf.shape(activations)[-1]
    batch = tf.shape(activations)[0]
    strongest = tf.argmax(tf.reduce_max(activations, axis=(1, 2)), axis=-1, output_type=tf.int32)
    chosen = tf.where(feature == _STRONGEST_FEATURE, strongest, tf.fill([batch], feature))
    mask = tf.where(feature == _ALL_FEATURES, tf.ones([batch, channels]),
                    tf.one_hot(chosen, channels))
    signal = activations * mask[:, None, None, :]
    flat = tf.reshape(signal, (batch, -1))
    # Masked-out positions must never win the argmax, even when every activation is negative
    # (a linear convolution).
    # Channels vary fastest in the flattened (h, w, C) order, so the mask tiles along it.
    selected = tf.tile(mask, [1, tf.shape(flat)[1] // channels]) > 0
    scores = tf.where(selected, flat, tf.fill(tf.shape(flat), tf.constant(-np.inf, flat.dtype)))
    single = flat * tf.one_hot(tf.argmax(scores, axis=-1), tf.shape(flat)[1])
    signal = tf.where(keep_max, tf.reshape(single, tf.shape(activations)), signal)
    return signal, tf.where(feature == _ALL_FEATURES, tf.fill([batch], -1), chosen)


def to_display(projections: np.ndarray) -> np.ndarray:
    """Maps signed projections to [0, 1] for display: 0.5 is zero, each image scaled by its own
    largest magnitude (the contrast normalization of the paper's figures)."""
    projections = np.asarray(projections, dtype=np.float32)
    scale = np.abs(projections).reshape(len(projections), -1).max(axis=1)
    scale = np.where(scale > 0, scale, 1.0).reshape(-1, *([1] * (projections.ndim - 1)))
    return 0.5 + 0.5 * projections / scale


def support_box(projection: np.ndarray, threshold: float = 0.05) -> tuple[int, int, int, int]:
    """(top, left, bottom, right), exclusive ends, of the pixels where `projection` is at least
    `threshold` times its largest magnitude: the part of the image the activation saw."""
    magnitude = np.abs(np.asarray(projection)).reshape(projection.shape[0], projection.shape[1], -1)
    magnitude = magnitude.max(axis=-1)
    peak = magnitude.max()
    if peak <= 0:
        return 0, 0, magnitude.shape[0], magnitude.shape[1]
    rows, columns = np.nonzero(magnitude >= threshold * peak)
    return int(rows.min()), int(columns.min()), int(rows.max()) + 1, int(columns.max()) + 1


def _forward_relu(x) -> tf.Tensor:
    # Not tf.nn.relu: Grappler rewrites max_pool(relu(x)) as relu(max_pool(x)) ("max of a
    # monotonic function"), which it cannot do for max_pool_with_argmax's switch output; the
    # failed rewrite costs a warning and the graph's other optimizations.
    return tf.maximum(x, tf.zeros((), x.dtype))


def _as_float32(variable) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(variable), tf.float32)


def _batch_norm_scale(layer) -> tf.Tensor:
    """gamma / sqrt(moving variance + epsilon): what a BatchNormalization multiplies by."""
    scale = tf.math.rsqrt(_as_float32(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        scale = scale * _as_float32(layer.gamma)
    return scale


def _parse_chain(model: keras.Model, name: str) -> list[_Step]:
    try:
        target = model.get_layer(name)
    except ValueError:
        names = [layer.name for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        raise ValueError(f"model {model.name!r} has no layer {name!r}; its layers: "
                         f"{', '.join(names)}") from None
    if isinstance(target, keras.layers.InputLayer):
        raise ValueError(f"layer {name!r} is the model input; project from a layer after it")
    path = []
    layer = target
    while not isinstance(layer, keras.layers.InputLayer):
        path.append(layer)
        try:
            inputs = layer.input
        except (AttributeError, ValueError) as error:  # shared layers have several inputs
            raise UnsupportedLayerError(f"layer {layer.name!r} ({type(layer).__name__}) is used "
                                        f"more than once ({error}); the deconvnet needs a "
                                        "simple chain") from None
        if not hasattr(inputs, "_keras_history"):
            raise UnsupportedLayerError(f"layer {layer.name!r} ({type(layer).__name__}) has "
                                        "several inputs; the deconvnet needs a simple chain of "
                                        f"single-input layers: {SUPPORTED}")
        layer = inputs._keras_history.operation
    path.reverse()

    steps: list[_Step] = []
    for layer in path:
        step = _step(layer)
        if step.kind == "batch_norm" and steps and steps[-1].kind == "conv" \
                and not steps[-1].relu_after and steps[-1].fold is None:
            steps[-1].fold = layer
        steps.append(step)
    return steps


def _step(layer) -> _Step:
    kind = type(layer).__name__
    described = f"layer {layer.name!r} ({kind})"
    if isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose):
        if layer.data_format != "channels_last":
            raise UnsupportedLayerError(f"{described} is {layer.data_format}; the deconvnet "
                                        "supports channels_last")
        if layer.groups != 1:
            raise UnsupportedLayerError(f"{described} has groups={layer.groups}; the deconvnet "
                                        "supports groups=1")
        activation = _activation_name(layer.activation)
        if activation not in ("linear", "relu"):
            raise UnsupportedLayerError(f"{described} has activation {activation!r}; the "
                                        "deconvnet supports linear or relu")
        return _Step("conv", layer, relu_after=activation == "relu")
    if isinstance(layer, keras.layers.Activation):
        activation = _activation_name(layer.activation)
        if activation == "linear":
            return _Step("identity", layer)
        if activation != "relu":
            raise UnsupportedLayerError(f"{described} applies {activation!r}; the deconvnet "
                                        "supports relu")
        return _Step("relu", layer)
    if isinstance(layer, keras.layers.ReLU):
        if layer.max_value is not None or layer.negative_slope or layer.threshold:
            raise UnsupportedLayerError(f"{described} is not a plain ReLU (max_value, "
                                        "negative_slope or threshold set)")
        return _Step("relu", layer)
    if isinstance(layer, keras.layers.MaxPooling2D):
        if layer.data_format != "channels_last":
            raise UnsupportedLayerError(f"{described} is {layer.data_format}; the deconvnet "
                                        "supports channels_last")
        return _Step("pool", layer)
    if isinstance(layer, keras.layers.BatchNormalization):
        if layer.axis not in (-1, 3, [3], [-1]):
            raise UnsupportedLayerError(f"{described} normalizes axis {layer.axis}; the "
                                        "deconvnet supports the channel axis (-1)")
        return _Step("batch_norm", layer)
    if isinstance(layer, keras.layers.Dropout | keras.layers.SpatialDropout2D
                  | keras.layers.GaussianNoise):
        return _Step("identity", layer)
    raise UnsupportedLayerError(f"{described} is not supported by the deconvnet; supported "
                                f"layers: {SUPPORTED}")


def _activation_name(activation) -> str:
    if activation is None:
        return "linear"
    name = getattr(activation, "__name__", None) or type(activation).__name__
    return name
