"""Training building blocks: seeds and determinism, distribution strategies, mixed precision,
the standard callbacks, and classifier evaluation.
"""

from __future__ import annotations

import json
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from keras_labs import ConfigError, KerasLabsError
from keras_labs.callbacks import EpochTimer
from keras_labs.config import LabConfig


def setup(config: LabConfig) -> tf.distribute.Strategy:
    """Seeds everything, applies determinism and precision, and returns the strategy to use.

    Call it before building any model.
    """
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    if config.mixed_precision:
        if tf.config.list_physical_devices("GPU"):
            keras.mixed_precision.set_global_policy("mixed_float16")
        else:
            print("WARNING: --mixed-precision needs a GPU; training in float32 on the CPU",
                  file=sys.stderr)
    else:
        keras.mixed_precision.set_global_policy("float32")
    return make_strategy(config.strategy)


def split_cpu(count: int = 2) -> bool:
    """Splits the physical CPU into `count` logical devices (only before TensorFlow starts).

    Returns:
        True when the CPU now shows at least `count` logical devices.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:  # the runtime is initialized already; keep what it has
        pass
    return len(tf.config.list_logical_devices("CPU")) >= count


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named `default`, `mirrored` or `multiworker`.

    `mirrored` uses every GPU, or, on a machine without one, every logical CPU device (two when
    the CPU can still be split), so the data-parallel path runs and is tested on a laptop.
    `multiworker` reads the cluster from `TF_CONFIG`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        split_cpu(2)
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ConfigError("strategy='multiworker' needs the cluster in the TF_CONFIG "
                              "environment variable")
        try:
            json.loads(os.environ["TF_CONFIG"])
        except ValueError:
            raise ConfigError(f"TF_CONFIG={os.environ['TF_CONFIG']!r} is not valid JSON") from None
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"strategy={name!r} is not valid; valid values: default, mirrored, multiworker")


def standard_callbacks(run, histogram_freq: int = 1, extra=()) -> list[keras.callbacks.Callback]:
    """TensorBoard (with weight histograms), history.csv, and a stop on NaN loss."""
    return [
        EpochTimer(),  # first, so the loggers below see epoch_time_s
        keras.callbacks.TensorBoard(log_dir=str(run.tb_dir), histogram_freq=histogram_freq),
        keras.callbacks.CSVLogger(str(run.history_path)),
        keras.callbacks.TerminateOnNaN(),
        *extra,
    ]


def check_finite(history: keras.callbacks.History) -> None:
    """Raises a user-facing error when training diverged (NaN or infinite loss)."""
    losses = history.history.get("loss", [])
    if any(not math.isfinite(value) for value in losses):
        raise KerasLabsError("training diverged: the loss became NaN or infinite; lower the "
                             "learning_rate (nothing was exported)")


def verbosity() -> int:
    """Keras progress bars on a terminal, one line per epoch in logs."""
    return 1 if sys.stdout.isatty() else 2


def predict_labels(model: keras.Model, dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true labels, predicted labels, probabilities) over a batched (x, y) dataset."""
    labels, probabilities = [], []
    for images, batch_labels in dataset:
        probabilities.append(np.asarray(model(images, training=False), dtype=np.float32))
        labels.append(batch_labels.numpy())
    probabilities = np.concatenate(probabilities)
    return np.concatenate(labels), probabilities.argmax(axis=-1), probabilities


def classification_metrics(labels: np.ndarray, predictions: np.ndarray,
                           num_classes: int) -> dict:
    """test_accuracy (a fraction), per_class_accuracy (one value per class), confusion matrix."""
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(confusion, (labels.astype(int), predictions.astype(int)), 1)
    support = confusion.sum(axis=1)
    per_class = np.where(support > 0, np.diag(confusion) / np.maximum(support, 1), np.nan)
    return {
        "test_accuracy": float((labels == predictions).mean()),
        "per_class_accuracy": [None if np.isnan(v) else round(float(v), 4) for v in per_class],
        "confusion_matrix": confusion.tolist(),
        "test_examples": int(len(labels)),
    }
