"""Training building blocks: seeds and determinism, distribution strategies, mixed precision,
the standard callbacks, and classifier evaluation.
"""

from __future__ import annotations

import functools
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


def setup(config: LabConfig, run=None) -> tf.distribute.Strategy:
    """Seeds everything, applies determinism and precision, and returns the strategy to use.

    Call it before building any model. With `run` (a `runs.Run`), the strategy, its replicas
    and the compute policy go into the run's env.json.
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
    strategy = make_strategy(config.strategy)
    if run is not None:
        try:
            devices = list(strategy.extended.worker_devices)
        except RuntimeError:  # the default strategy: the default device
            devices = []
        run.env["strategy"] = {
            "name": config.strategy, "class": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync, "devices": devices,
            "policy": keras.mixed_precision.global_policy().name}
        run.write_json("env.json", run.env)
    return strategy


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


@functools.cache
def _cpu_mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """One MirroredStrategy over the logical CPUs per process.

    Its all-reduces are collective ops whose instance keys come from the strategy object: a
    second MirroredStrategy in the same process (the tour, a sweep, the test suite) would hand
    out the same keys again and meet the first one's all-reduces ("shape mismatch in the
    collective instance"). Reusing the one instance keeps the keys unique.
    """
    split_cpu(2)
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


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
        return _cpu_mirrored_strategy()
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


def steps_per_execution(requested: int, strategy: tf.distribute.Strategy) -> int:
    """`requested`, or 1 under a multi-replica strategy.

    Keras 3.15's multi-step loop (`steps_per_execution` > 1) under MirroredStrategy fails for
    some models at the first step ("You must feed a value for placeholder tensor
    'while/cond/Placeholder'"); one step per call always works, and with several replicas the
    per-call overhead that `steps_per_execution` hides is small next to the step itself.
    """
    if requested > 1 and strategy.num_replicas_in_sync > 1:
        print(f"note: steps_per_execution={requested} -> 1 under "
              f"{strategy.num_replicas_in_sync} replicas", flush=True)
        return 1
    return requested


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


def mnist_classifier(datasets: dict[str, tf.data.Dataset], source, export_root, *,
                     epochs: int = 2, train_examples: int = 0, seed: int = 0,
                     batch_size: int = 128, strategy: tf.distribute.Strategy | None = None
                     ) -> tuple[keras.Model, dict]:
    """A trained MNIST CNN (`models.mnist_cnn`) used as an instrument by other labs: the GAN
    lab scores its samples with it, the adversarial lab attacks it.

    It is trained on the lab's own data (`datasets["train"]`, the first `train_examples` when
    > 0) and evaluated on `datasets["test"]`, then saved as
    `<export_root>/_classifiers/<key>.keras` with a `.json` note (test accuracy, settings); a
    later run with the same data kind, size and settings reuses that file instead of training.
    The global seeds are reset to `seed` afterwards, so what the lab does next is the same
    whether the classifier was trained or reused.

    Args:
        datasets: {"train": ..., "test": ...} (uint8 image, label) datasets from `data.load`.
        source: Their `data.DataSource` (its kind and sizes are part of the cache key).
        export_root: The root of exports (`config.export_dir`).
        epochs: Passes over the training examples.
        train_examples: Train on the first N examples only (0: all).
        seed: Seed of the initialization and the shuffle.
        batch_size: Examples per step.
        strategy: Build (or load) and train the model in this strategy's scope.

    Returns:
        (the model, taking [0, 1] images of shape (28, 28, 1) and returning class
        probabilities, with a penultimate layer named "features"; a dict with `path`, `reused`,
        `test_accuracy`, `epochs`, `train_examples`).
    """
    from pathlib import Path

    from keras_labs import data, models

    kind = source.kind + ("-partial" if source.partial else "")
    key = (f"mnist_cnn-{kind}-{source.splits.get('train', 0)}-"
           f"{train_examples or 'all'}ex-{epochs}ep-seed{seed}")
    folder = Path(export_root).expanduser() / "_classifiers"
    path, note_path = folder / f"{key}.keras", folder / f"{key}.json"
    strategy = strategy or tf.distribute.get_strategy()
    if path.is_file() and note_path.is_file():
        with strategy.scope():
            model = keras.saving.load_model(path, compile=False)
        info = {**json.loads(note_path.read_text()), "path": str(path), "reused": True}
        print(f"classifier: reusing {path} (test accuracy {info['test_accuracy']:.4f})", flush=True)
        keras.utils.set_random_seed(seed)
        return model, info

    keras.utils.set_random_seed(seed)
    train_split = datasets["train"].take(train_examples) if train_examples else datasets["train"]
    train = data.image_pipeline(train_split, batch_size=batch_size, training=True, seed=seed)
    test = data.image_pipeline(datasets["test"], batch_size=512, training=False)
    steps = max(int(train.cardinality()), 1) * epochs
    with strategy.scope():
        model = models.mnist_cnn(name="mnist_classifier")
        model.compile(optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)),
            loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    print(f"classifier: training models.mnist_cnn for {epochs} epoch(s) on "
          f"{train_examples or 'all'} {source.kind} training examples", flush=True)
    model.fit(train, epochs=epochs, shuffle=False, verbose=verbosity())
    labels, predictions, _ = predict_labels(model, test)
    info = {"test_accuracy": float((labels == predictions).mean()), "epochs": epochs,
            "train_examples": train_examples, "seed": seed, "data": kind}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        staging = folder / f".{key}.partial-{os.getpid()}.keras"
        model.save(staging)
        os.replace(staging, path)  # atomic: a concurrent run sees the whole file or none
        note_path.write_text(json.dumps(info, indent=2))
    except OSError as error:
        raise KerasLabsError(f"cannot save the classifier under {str(folder)!r}: "
                             f"{error.strerror}") from None
    print(f"classifier: test accuracy {info['test_accuracy']:.4f}; saved to {path}", flush=True)
    keras.utils.set_random_seed(seed)
    return model, {**info, "path": str(path), "reused": False}
