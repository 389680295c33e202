"""The cifar-cnn experiment: train, instrument, score once on the test split, and export one
CIFAR-10 CNN."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from keras_labs import (
    ConfigError,
    callbacks,
    devices,
    export,
    instrumentation,
    optimization,
    runs,
    training,
    visualization,
)
from keras_labs.data import loading
from keras_labs.labs.cifar_cnn.chunked import ChunkedExecution
from keras_labs.labs.cifar_cnn.config import NAME, NUM_CLASSES, Config
from keras_labs.models import cnn


def make_datasets(config: Config
                  ) -> tuple[loading.HeldOutInputs, tf.data.Dataset, loading.DataSource]:
    """The training, validation and test pipelines of CIFAR-10, batched and cached
    (`loading.held_out_inputs`), the raw test split they score, and where the data came from.

    The validation part is a seeded `validation_fraction` of the (first `train_examples`)
    training images; the test split is left for the one score at the end. The fixed probe
    batch of the instrumentation (`probe_images`) comes from the validation part, or from the
    training images without one, so that the test split is read once, at the end, only.
    """
    splits, source = loading.load("cifar10", ("train", "test"), data=config.data,
                                  data_dir=config.data_dir)
    labelled = loading.first(splits["train"], config.train_examples)
    test_split = loading.first(splits["test"], config.test_examples)
    # drop_remainder in training: the last partial batch would recompile the step function
    sets = loading.held_out_inputs(labelled, test_split, fraction=config.validation_fraction,
                                   seed=config.seed, batch_size=config.batch_size,
                                   eval_batch_size=500, drop_remainder=True,
                                   probe_images=config.probe_images, normalize=config.normalize,
                                   augment=config.augment)
    if sets.probe is None:
        sets = dataclasses.replace(sets, probe=loading.probe_batch(
            labelled, config.probe_images, normalize=config.normalize))
    return sets, test_split, source


def epochs_to_run(config: Config, training_examples: int) -> int:
    """`epochs`, scaled up so that the run takes the gradient steps of `epochs` epochs over
    `equal_updates_examples` images when the training set is smaller (0: no scaling)."""
    return training.equal_update_epochs(config.epochs, config.equal_updates_examples,
                                        training_examples)


def make_optimizer(config: Config, total_steps: int) -> keras.optimizers.Optimizer:
    """The optimizer `config` describes, its schedule spanning `total_steps` steps."""
    return optimization.make_optimizer(
        config.optimizer, config.learning_rate, total_steps, schedule=config.schedule,
        warmup_fraction=config.warmup_fraction, momentum=config.momentum,
        weight_decay=config.weight_decay)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains, evaluates, instruments and exports one CIFAR-10 CNN; returns its metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    sets, test_split, source = make_datasets(config)
    run.record_data(source)
    train = sets.make_train()
    steps_per_epoch = int(train.cardinality())
    epochs = _epochs(config, steps_per_epoch, sets.split["train_examples"])

    per_execution = devices.steps_per_execution(config.steps_per_execution, strategy)
    # Keras runs whole executions of the endless input (`training.Backup.stream`), so an epoch
    # takes its batches rounded up to a multiple of them; the schedule spans every step taken.
    steps_taken = math.ceil(steps_per_epoch / per_execution) * per_execution * epochs
    with strategy.scope():
        model = build_model(config, per_execution, steps_taken)
    model.summary(print_fn=lambda line, **_: print(line))

    extra = []
    if config.running_loss_every:
        running_loss = callbacks.RunningLoss(config.running_loss_every,
                                             state_path=run.backup_dir / "running_loss.json")
        extra.append(running_loss)
    # Per-epoch curves on the held-out validation part; nothing is selected on them. The probe
    # batch is fixed, so the activation statistics of successive steps differ only by what
    # training changed.
    history = training.fit(run, model, train, epochs=epochs, validation_data=sets.validation,
                           callbacks=extra, histogram_freq=config.histogram_freq,
                           probe=sets.probe, probe_plots=True)

    # The test split, scored once.
    labels, logits = training.predict_logits(model, sets.test,
                                             test_time_flip=config.test_time_flip)
    names = loading.class_names("cifar10")
    metrics = score_test_split(config, model, labels, logits, names)
    # The last epoch's training and validation figures, the loss curves, epoch times and speed.
    metrics.update(training.history_metrics(history, config.batch_size))
    metrics["overfits"] = metrics["train_accuracy"] - metrics["test_accuracy"] > 0.15
    metrics["validation_split"] = sets.split
    if config.running_loss_every:
        metrics["running_loss"] = running_loss.records
    metrics["epochs_run"] = epochs
    metrics["equal_updates_examples"] = config.equal_updates_examples
    metrics["updates"] = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
    metrics["parameters"] = int(model.count_params())
    metrics.update(activation_minima(config, model, sets.probe))

    visualization.plot_classifier(run, metrics, names, title=f"{NAME} ({source.kind} data)")
    if config.show_examples:
        metrics["examples"] = plot_test_examples(run, test_split, logits, names,
                                                 config.show_examples)
    print_per_class_accuracy(metrics["per_class_accuracy_by_name"])

    metrics["export"] = str(export_serving(model, config, run))
    print_summary(metrics, source)
    return run.finish(metrics)


def _epochs(config: Config, steps_per_epoch: int, training_examples: int) -> int:
    """The epochs to run (`epochs_to_run`), said when they differ from `config.epochs`.

    Raises:
        ConfigError: Not one whole batch of training images.
    """
    if steps_per_epoch < 1:
        raise ConfigError(f"batch_size={config.batch_size} is larger than the "
                          f"{training_examples} training images; lower it")
    epochs = epochs_to_run(config, training_examples)
    if epochs != config.epochs:
        print(f"{NAME}: {epochs} epochs instead of {config.epochs}: as many gradient steps as "
              f"{config.epochs} epochs over {config.equal_updates_examples} images "
              f"(equal_updates_examples)", flush=True)
    return epochs


def build_model(config: Config, steps_per_execution: int, total_steps: int) -> keras.Model:
    """The network of `config` as a compiled `ChunkedExecution` (call it in the strategy's
    scope), its optimizer's schedule spanning `total_steps` steps."""
    # The same network and steps; each execution reads its batches as one element.
    network = cnn.cifar_cnn(config.net_spec())
    model = ChunkedExecution(network.input, network.output, name=network.name)
    model.compile(optimizer=make_optimizer(config, total_steps),
                  loss=optimization.logits_crossentropy(NUM_CLASSES, config.label_smoothing),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  steps_per_execution=steps_per_execution, jit_compile=config.jit_compile)
    return model


def score_test_split(config: Config, model: keras.Model, labels: np.ndarray, logits: np.ndarray,
                 names: list[str]) -> dict:
    """Accuracy, per-class accuracy (by class name too), the confusion matrix and the loss of
    the test split's `logits`."""
    metrics = training.classification_metrics(labels, logits.argmax(axis=-1), NUM_CLASSES)
    metrics["per_class_accuracy_by_name"] = dict(zip(names, metrics["per_class_accuracy"],
                                                     strict=True))
    metrics["per_class_table"] = all(value is not None for value in metrics["per_class_accuracy"])
    # The compiled loss (label smoothing and L2 penalty included), as the validation curve has
    # it, of the predictions scored (mirror-averaged with test_time_flip).
    loss = optimization.logits_crossentropy(NUM_CLASSES, config.label_smoothing)
    penalty = sum(float(keras.ops.convert_to_numpy(value)) for value in model.losses)
    metrics["test_loss"] = float(keras.ops.convert_to_numpy(
        keras.ops.mean(loss(labels, logits)))) + penalty
    return metrics


def activation_minima(config: Config, model: keras.Model, probe: np.ndarray) -> dict:
    """Each conv layer's smallest activation on the probe batch, and for a ReLU network
    whether they are all exactly 0."""
    minima = instrumentation.activation_minima(model, probe)
    facts = {"conv_activation_min": {name: round(value, 6) for name, value in minima.items()}}
    if config.activation == "relu":
        facts["relu_activations_min_zero"] = all(value == 0.0 for value in minima.values())
    return facts


def plot_test_examples(run: runs.Run, test_split: tf.data.Dataset, logits: np.ndarray,
                       names: list[str], count: int) -> list[dict]:
    """Plots the first `count` test images with their true and predicted labels; returns the
    labels."""
    shown = next(iter(test_split.batch(count)))
    images, true = shown[0].numpy(), shown[1].numpy()
    predicted = logits[:len(true)].argmax(axis=-1)
    titles = [f"true: {names[t]}\npred: {names[p]}" for t, p in zip(true, predicted, strict=True)]
    visualization.image_grid(images / 255.0, run.plot_path("test_examples"), titles=titles,
                             columns=min(len(images), 8), title="test images")
    return [{"true": names[t], "predicted": names[p]}
            for t, p in zip(true, predicted, strict=True)]


def print_per_class_accuracy(by_name: dict[str, float | None]) -> None:
    print("per-class accuracy:")
    for name, value in by_name.items():
        print(f"  {name:10s} {'-' if value is None else f'{100 * value:5.1f} %'}")


def export_serving(model: keras.Model, config: Config, run: runs.Run) -> Path:
    """Exports `model` to serve probabilities, not logits, of raw uint8 images scaled inside
    as `config.normalize` says; returns where."""
    serving = keras.Model(model.input, layers.Softmax(name="probabilities")(model.output),
                          name=f"{model.name}_probabilities")
    return export.export_model(serving, run, normalize=config.normalize)


def print_summary(metrics: dict, source: loading.DataSource) -> None:
    validation = (f" (validation {metrics['validation_accuracy']:.4f})"
                  if "validation_accuracy" in metrics else "")
    print(f"{NAME}: test accuracy {metrics['test_accuracy']:.4f}{validation}, train accuracy "
          f"{metrics['train_accuracy']:.4f} on {source.describe()}")
