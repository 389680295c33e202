"""Convolutional classifiers: the MNIST family (`mnist_cnn`) and the CIFAR-10 family of the
seed reports (`cifar_cnn`, described by a `CifarNetSpec`)."""

from __future__ import annotations

import math

import keras
from keras import layers

from keras_labs.models.specs import (  # noqa: F401 (the family's names, read here too)
    ACTIVATIONS,
    CIFAR_ARCHITECTURES,
    INITIALIZERS,
    CifarNetSpec,
)


def mnist_cnn(input_shape=(28, 28, 1), num_classes: int = 10, filters: tuple[int, ...] = (32, 64),
              convs_per_stage: int = 1, dense_units: int = 128, dropout: float = 0.3,
              batch_norm: bool = True, name: str = "mnist_cnn") -> keras.Model:
    """A small VGG-style CNN: per stage 3x3 convolutions and a 2x2 max pool, then a dense head.

    The layer named "features" is the penultimate representation (used by the embedding and GAN
    labs to score what the network has learned).
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for stage, width in enumerate(filters, start=1):
        for index in range(1, convs_per_stage + 1):
            x = layers.Conv2D(width, 3, padding="same", use_bias=not batch_norm,
                              name=f"conv{stage}_{index}")(x)
            if batch_norm:
                # momentum 0.9: moving statistics settle within the few hundred steps of a short run
                x = layers.BatchNormalization(momentum=0.9, name=f"bn{stage}_{index}")(x)
            x = layers.Activation("relu", name=f"relu{stage}_{index}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="dropout_conv")(x)
    x = layers.Dense(dense_units, activation="relu", name="features")(x)
    x = layers.Dropout(dropout, name="dropout_dense")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def _activation(name: str, layer_name: str) -> layers.Layer:
    if name == "leaky_relu":
        # PyTorch's LeakyReLU slope, as in DeepDIVA's CNN_basic (Keras's default is 0.2)
        return layers.LeakyReLU(negative_slope=0.01, name=layer_name)
    return layers.Activation(name, name=layer_name)


def _initializers(initializer: str, init_stddev: float, fan_in: int) -> dict:
    """Kernel and bias initializers of one layer with `fan_in` inputs per output."""
    if initializer == "torch":
        # PyTorch's default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)), biases alike
        limit = 1.0 / math.sqrt(fan_in)
        return {"kernel_initializer": keras.initializers.RandomUniform(-limit, limit),
                "bias_initializer": keras.initializers.RandomUniform(-limit, limit)}
    # The RandomNormal is built on every call, used or not: it draws a seed, and the initial
    # weights of every later layer depend on that draw.
    kernels = {"default": "glorot_uniform", "glorot_uniform": "glorot_uniform",
               "he_normal": "he_normal",
               "normal": keras.initializers.RandomNormal(stddev=init_stddev)}
    return {"kernel_initializer": kernels[initializer]}


class _Builder:
    """Adds conv and dense blocks that follow the spec (init, L2, batch norm, activation)."""

    def __init__(self, spec: CifarNetSpec):
        self.spec = spec
        self.regularizer = keras.regularizers.L2(spec.l2) if spec.l2 else None

    def _initializers(self, fan_in: int) -> dict:
        return _initializers(self.spec.initializer, self.spec.init_stddev, fan_in)

    def conv(self, x, filters: int, kernel_size: int, name: str, strides: int = 1,
             padding: str = "valid", activate: bool = True):
        fan_in = kernel_size * kernel_size * x.shape[-1]
        if self.spec.batch_norm:
            x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                              use_bias=False, kernel_regularizer=self.regularizer, name=name,
                              **self._initializers(fan_in))(x)
            # momentum 0.9: the moving statistics settle within the few hundred steps of a run
            x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
        else:
            x = layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                              kernel_regularizer=self.regularizer, name=name,
                              **self._initializers(fan_in))(x)
        return _activation(self.spec.activation, f"{name}_{self.spec.activation}")(x) if activate else x

    def dense_head(self, x, units: tuple[int, ...]):
        x = layers.Flatten(name="flatten")(x) if len(x.shape) > 2 else x
        for index, width in enumerate(units, start=1):
            if self.spec.dropout:
                x = layers.Dropout(self.spec.dropout, name=f"dropout{index}")(x)
            x = layers.Dense(width, kernel_regularizer=self.regularizer, name=f"fc{index}",
                             **self._initializers(x.shape[-1]))(x)
            x = _activation(self.spec.activation, f"fc{index}_{self.spec.activation}")(x)
        if self.spec.dropout:
            x = layers.Dropout(self.spec.dropout, name="dropout_logits")(x)
        # logits: the loss applies the softmax (as PyTorch's CrossEntropyLoss does)
        return layers.Dense(self.spec.num_classes, kernel_regularizer=self.regularizer,
                            name="logits", dtype="float32", **self._initializers(x.shape[-1]))(x)


def cifar_cnn(spec: CifarNetSpec) -> keras.Model:
    """The network `spec.architecture`, returning logits; the model is named after it.

    Raises:
        ValueError: `spec.architecture` is not one of `CIFAR_ARCHITECTURES`.
    """
    if spec.architecture not in CIFAR_ARCHITECTURES:
        raise ValueError(f"architecture={spec.architecture!r} is not valid; valid values: "
                         f"{', '.join(CIFAR_ARCHITECTURES)}")
    build = _Builder(spec)
    filters, units = spec.filters, spec.dense_units
    inputs = keras.Input(shape=spec.input_shape, name="image")
    x = inputs
    if spec.architecture == "tutorial":
        # report 004: conv 6@5x5, pool, conv 16@5x5, pool, dense 120, 84, 10
        for index, width in enumerate(filters or (6, 16), start=1):
            x = build.conv(x, width, 5, f"conv{index}")
            x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
        logits = build.dense_head(x, units or (120, 84))
    elif spec.architecture in ("deepdiva_basic", "deepdiva_basic_copy"):
        # DeepDIVA CNN_basic: 24@5x5 stride 3, 48@3x3 stride 2, 72@3x3, then one dense layer
        shapes = ((5, 3), (3, 2), (3, 1))
        for index, (width, (size, stride)) in enumerate(zip(filters or (24, 48, 72), shapes,
                                                            strict=True), start=1):
            x = build.conv(x, width, size, f"conv{index}", strides=stride)
        default_units = (128,) if spec.architecture == "deepdiva_basic_copy" else ()
        logits = build.dense_head(x, units or default_units)
    elif spec.architecture == "report002":
        # report 002's template: conv 32@5x5, pool, conv 64@5x5, pool, dense 512, 10
        for index, width in enumerate(filters or (32, 64), start=1):
            x = build.conv(x, width, 5, f"conv{index}", padding="same")
            x = layers.MaxPooling2D(2, name=f"pool{index}")(x)
        logits = build.dense_head(x, units or (512,))
    elif spec.architecture == "vgg":
        for stage, width in enumerate(filters or (32, 64, 128), start=1):
            for index in range(1, spec.convs_per_stage + 1):
                x = build.conv(x, width, 3, f"conv{stage}_{index}", padding="same")
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
        logits = build.dense_head(x, units or (128,))
    else:  # resnet: a narrow ResNet-9 (Page's DAWNBench network)
        prep, width1, width2, width3 = filters or (16, 32, 64, 128)
        x = build.conv(x, prep, 3, "conv0", padding="same")
        for stage, (width, residual) in enumerate(((width1, True), (width2, False),
                                                   (width3, True)), start=1):
            x = build.conv(x, width, 3, f"conv{stage}", padding="same")
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
            if residual:
                branch = build.conv(x, width, 3, f"conv{stage}_res1", padding="same")
                branch = build.conv(branch, width, 3, f"conv{stage}_res2", padding="same")
                x = layers.Add(name=f"residual{stage}")([x, branch])
        x = layers.GlobalMaxPooling2D(name="global_pool")(x)
        logits = build.dense_head(x, units)
    return keras.Model(inputs, logits, name=spec.architecture)
