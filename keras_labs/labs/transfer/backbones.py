"""The transfer lab's networks: pretrained ones and a new head on them.

* Source networks: the suite's own, trained once per recipe and kept (`mnist_source`,
  `cifar_source`, how they train: `SourceRecipe`), or a `keras.applications` backbone with
  ImageNet weights (`imagenet_base`, `config.BACKBONES`, `imagenet_preprocessing`).
* Adapting one: a copy of the base per strategy (`base_copy`), a new classification head
  (`transfer_model`), and fine-tuning with batch norm kept in inference mode
  (`unfreeze_except_batch_norm`); how they train in phases is `phases`.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_labs import ConfigError, DataError
from keras_labs.cached_models import cached_model
from keras_labs.data import loading
from keras_labs.data.specs import CIFAR10_CLASSES
from keras_labs.labs.transfer.config import BACKBONES
from keras_labs.models import cnn
from keras_labs.models.specs import CifarNetSpec
from keras_labs.optimization import learning_rate_schedule

# --------------------------------------------------------------------------------------------
# The suite's source networks


@dataclasses.dataclass(frozen=True)
class SourceRecipe:
    """How the suite trains a source network: Adam on a cosine schedule. Every field is part
    of the key the trained network is kept under.

    Attributes:
        epochs: Passes over the training examples.
        learning_rate: Peak Adam learning rate (cosine decay to 0 over the training).
        train_examples: Train on the first N training examples only (0: all).
        seed: Seed of the initialization and the shuffle.
    """

    epochs: int
    learning_rate: float
    train_examples: int = 0
    seed: int = 0


def mnist_source(datasets: dict, source, recipe: SourceRecipe, export_root, *,
                 fit: Callable, facts: dict, image_size: int = 32) -> tuple[keras.Model, dict]:
    """The suite's MNIST CNN (`models.cnn.mnist_cnn` on image_size x image_size RGB input),
    trained once per recipe and kept for later runs (`cached_models.cached_model`, keyed by
    data, examples, epochs, learning rate and seed).

    Args:
        datasets: {"train": ..., "test": ...} MNIST (uint8 image, label) datasets.
        source: Their `loading.DataSource` (its kind and sizes are part of the key).
        recipe: How it trains.
        export_root: The root of exports; the network is kept under `<export_root>/_models/`.
        fit: `fit(model, train, epochs=..., probe=...)` trains the compiled model (the lab's
            `training.fit`, with its logs).
        facts: Kept with a trained network and returned with it (what the lab calls the source,
            the run that trained it).
        image_size: Side of the images the network takes (MNIST is resized).

    Returns:
        (the model, facts about it: `facts`, test accuracy on MNIST, where it is, reused or not).
    """
    key = {"architecture": "models.mnist_cnn", "input_shape": [image_size, image_size, 3],
           "data": source.kind, "splits": source.splits, "seed": recipe.seed,
           "train_examples": recipe.train_examples, "epochs": recipe.epochs,
           "learning_rate": recipe.learning_rate, "batch_size": 128}

    def train():
        # No cache: 60,000 images as 32x32x3 float32 would hold 740 MB; resizing is cheap.
        train = loading.image_pipeline(loading.first(datasets["train"], recipe.train_examples),
                                       batch_size=128, training=True, seed=recipe.seed,
                                       channels=3, size=image_size, cache=False)
        test = loading.image_pipeline(datasets["test"], batch_size=512, training=False,
                                      channels=3, size=image_size, cache=False)
        model = cnn.mnist_cnn(input_shape=(image_size, image_size, 3), name="mnist_source")
        probe = loading.probe_batch(datasets["test"], channels=3, size=image_size)
        return _train_source(model, train, test, "sparse_categorical_crossentropy", probe,
                             recipe, fit, facts, "mnist_source")

    return cached_model(export_root, "mnist_source", key, train)


def cifar_source(datasets: dict, source, recipe: SourceRecipe, export_root, *, fit: Callable,
                 facts: dict, spec: CifarNetSpec, classes: tuple[int, ...], name: str,
                 held_back: dict[int, int] | None = None,
                 test_classes: tuple[int, ...] | None = None) -> tuple[keras.Model, dict]:
    """A CIFAR-10 CNN (`models.cnn.cifar_cnn(spec)`, logits) of some of its classes, trained on all
    their training images (flipped and shifted at random) once per recipe and kept for later
    runs.

    Args:
        datasets: {"train": ..., "test": ...} CIFAR-10 (uint8 image, label) datasets.
        source: Their `loading.DataSource` (its kind and sizes are part of the key).
        recipe: How it trains.
        export_root: The root of exports; the network is kept under `<export_root>/_models/`.
        fit: `fit(model, train, epochs=..., probe=...)` trains the compiled model.
        facts: Kept with a trained network and returned with it.
        spec: The network; its `num_classes` is `len(classes)`.
        classes: The CIFAR-10 labels it learns, relabelled 0, 1, ... (`loading.class_subset`).
        name: What it is kept as (the folder's prefix under `_models/`).
        held_back: {label: N}: the first N training images of each such class are left out
            (a target's labelled images).
        test_classes: The classes of its own test score (default: `classes`), so that no
            target's test images are read.

    Returns:
        (the model, facts about it: `facts`, test accuracy on `test_classes`, the names of
        `classes`, where it is, reused or not).
    """
    key = {"architecture": "models.cifar_cnn", "spec": dataclasses.asdict(spec),
           "classes": list(classes), "data": source.kind, "splits": source.splits,
           "seed": recipe.seed, "train_examples": recipe.train_examples,
           "epochs": recipe.epochs, "learning_rate": recipe.learning_rate,
           "batch_size": 64, "augment": True}
    if held_back or test_classes:  # the keys of the networks kept before these existed stay
        key.update(held_back={str(label): count for label, count in (held_back or {}).items()},
                   test_classes=list(test_classes or classes))

    def train():
        train_split = datasets["train"]
        if held_back:
            train_split = without_first(train_split, held_back)
        train_split = loading.first(loading.class_subset(train_split, classes),
                                    recipe.train_examples)
        test_split = loading.class_subset(datasets["test"], test_classes or classes)
        # 4,000 images need augmentation not to be memorized within a few epochs.
        train = loading.image_pipeline(train_split, batch_size=64, training=True,
                                       seed=recipe.seed, augment=True)
        test = loading.image_pipeline(test_split, batch_size=512, training=False)
        model = cnn.cifar_cnn(spec)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model, info = _train_source(model, train, test, loss, loading.probe_batch(test_split),
                                    recipe, fit, facts, name)
        return model, {**info, "classes": [CIFAR10_CLASSES[label] for label in classes]}

    return cached_model(export_root, name, key, train)


def without_first(dataset: tf.data.Dataset, held_back: dict[int, int]) -> tf.data.Dataset:
    """`dataset` (image, label) less the first `held_back[label]` examples of each label in it,
    in its order.

    Raises:
        ValueError: A count is negative.
    """
    for label, count in held_back.items():
        if count < 0:
            raise ValueError(f"held_back[{label}]={count!r} is negative; give how many of the "
                             "first examples of that class to leave out")
    images, labels = loading.to_numpy(dataset)
    keep = np.ones(len(labels), dtype=bool)
    for label, count in held_back.items():
        keep[np.flatnonzero(labels == label)[:count]] = False
    return tf.data.Dataset.from_tensor_slices((images[keep], labels[keep]))


def _train_source(model: keras.Model, train, test, loss, probe, recipe: SourceRecipe,
                  fit: Callable, facts: dict, name: str) -> tuple[keras.Model, dict]:
    """Trains a source network with Adam on a cosine schedule; scores it on its own test split
    (the source's, which no target shares)."""
    steps = max(int(train.cardinality()), 1) * recipe.epochs
    schedule = learning_rate_schedule(recipe.learning_rate, steps, "cosine")
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=["accuracy"])
    start = time.perf_counter()
    fit(model, train, epochs=recipe.epochs, probe=probe)
    seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(test, verbose=0)
    print(f"{name}: test accuracy {test_accuracy:.4f} ({seconds:.0f} s)", flush=True)
    return model, {**facts, "test_accuracy": float(test_accuracy),
                   "train_time_s": round(seconds, 2)}


# --------------------------------------------------------------------------------------------
# ImageNet backbones


def imagenet_base(backbone: str, size: int, *, timeout: float = 10.0,
                  advice: str = "place the weights file in the Keras cache (~/.keras/models)"
                  ) -> keras.Model:
    """A `keras.applications` backbone without its top, with ImageNet weights.

    Keras downloads the weights once into its cache (`~/.keras/models`, or `$KERAS_HOME`); a
    cached file is used without the network.

    Args:
        backbone: A key of `BACKBONES`.
        size: Input side in pixels.
        timeout: Seconds any one network operation of the download may block.
        advice: What to do instead, ending the error message when the weights cannot be had.

    Raises:
        DataError: The weights are not cached and cannot be downloaded (offline), within about
            `timeout` seconds rather than hanging.
    """
    if backbone not in BACKBONES:
        raise ConfigError(f"backbone={backbone!r} is not valid; valid values: {', '.join(BACKBONES)}")
    constructor = getattr(keras.applications, BACKBONES[backbone].constructor)
    previous = socket.getdefaulttimeout()
    # urllib has no timeout of its own: a firewall that drops packets would hang the download.
    socket.setdefaulttimeout(timeout)
    try:
        base = constructor(include_top=False, weights="imagenet", input_shape=(size, size, 3))
    except Exception as error:  # Keras wraps every download failure in a bare Exception
        if not (isinstance(error, OSError) or "URL fetch failure" in str(error)):
            raise
        raise DataError(f"cannot get the ImageNet weights of {backbone} ({error}); "
                        f"{advice}") from None
    finally:
        socket.setdefaulttimeout(previous)
    return base


def imagenet_preprocessing(backbone: str, size: int) -> list[layers.Layer]:
    """Layers from [0, 1] images to what `imagenet_base(backbone, size)` expects."""
    return [layers.Resizing(size, size, name="resize"),
            layers.Rescaling(BACKBONES[backbone].scale, BACKBONES[backbone].offset,
                             name="rescale")]


# --------------------------------------------------------------------------------------------
# Adapting a base network


def base_copy(base: keras.Model, *, pretrained: bool) -> keras.Model:
    """`base`'s architecture with its own layers: `base`'s weights, frozen, when `pretrained`;
    else freshly initialized and trainable (training from scratch)."""
    copy = keras.models.clone_model(base)  # fresh layers, freshly initialized weights
    if pretrained:
        copy.set_weights(base.get_weights())
    copy.trainable = not pretrained
    return copy


def transfer_model(base: keras.Model, preprocess: list[layers.Layer], *, pretrained: bool,
                   dropout: float, name: str, input_shape=(32, 32, 3),
                   num_classes: int = 10) -> keras.Model:
    """`base` with a new classification head.

    A pretrained base runs in inference mode (`training=False`) whether it is frozen or not,
    so its batch norm statistics stay those of the source data.

    Args:
        base: The network whose output the head reads (pooled first if it is a feature map).
        preprocess: Layers applied to the input before `base` (resizing, rescaling).
        pretrained: Whether `base` carries trained weights (then called with `training=False`).
        dropout: Dropout before the head.
        name: The model's name.
        input_shape: Shape of the images the model takes.
        num_classes: Width of the softmax.
    """
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for layer in preprocess:
        x = layer(x)
    x = base(x, training=False) if pretrained else base(x)
    if len(x.shape) == 4:
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities",
                           dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def unfreeze_except_batch_norm(base: keras.Model) -> None:
    """Makes every layer of `base` trainable except its batch norm layers.

    In Keras 3 the `training=False` recorded when the base is called in a functional model is
    overridden by `fit()`'s `training=True` (keras-team/keras#20285); a batch norm layer with
    `trainable=False` is what really runs in inference mode: moving statistics of the source
    data, and frozen scale and offset.
    """
    base.trainable = True
    for layer in _all_layers(base):
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False


def _all_layers(model: keras.Model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(math.prod(weight.shape) for weight in model.trainable_weights))
