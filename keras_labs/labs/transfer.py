"""Lab `transfer`: training from scratch, fine-tuning and feature extraction, side by side.

Seed report 000, exercise 2 compared three ways to reuse a trained network on a new task
(an ImageNet AlexNet on CIFAR-10: 67% from scratch, 62% fine-tuned, 83% as a frozen feature
extractor) and trained a CNN on MNIST (95%) that reached 77% on SVHN. This lab runs the three
strategies on the same target data in one run:

* scratch: the source architecture with fresh weights, everything trained;
* feature_extraction: the source network frozen, only a new classification head trained;
* fine_tune: the new head is trained first on the frozen network (`warmup_epochs`), so its
  random initial gradients do not wreck the pretrained features, then the whole network is
  unfrozen and trained at a lower learning rate.

While it is fine-tuned, the pretrained network's batch norm layers stay in inference mode:
they keep the source data's statistics instead of re-estimating them from small target
batches (the Keras transfer-learning guide's advice). The base is called with
`training=False`, but in Keras 3 `fit()` overrides that for a nested model, so the batch norm
layers are also kept frozen (`unfreeze_except_batch_norm`), which is what holds them there.

Sources: `mnist`, a CNN the suite trains on MNIST (grayscale to 3 channels, 32x32) and keeps
under `<export_dir>/_models/` for later runs, so the lab works offline; or `imagenet`, a
`keras.applications` backbone with ImageNet weights (target images resized), which needs the
weights file and fails within seconds with a clear message when it cannot be had. Targets:
`digits`, the UCI handwritten digits that ship with scikit-learn (8x8, upsampled to 32x32),
and `svhn_cropped` (street-view house numbers, prepared with `keras-labs data prepare`). With
the MNIST source, the source model is also scored on each target as it is ("zero-shot"), the
report's 77% on SVHN.

The run leaves a strategy x dataset table (accuracy, trainable parameters, time) in
metrics.json and table.md, one plot of the learning curves with the epoch where fine-tuning
starts, TensorBoard logs per phase, and the best target model as a SavedModel.
"""

from __future__ import annotations

import csv
import dataclasses
import socket
import time
from pathlib import Path

import numpy as np

from keras_labs import ConfigError, DataError, data, models, runs
from keras_labs.config import LabConfig, option
from keras_labs.lazy import lazy_import

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, layers, export, training, visualization = lazy_import(
    "keras", "keras.layers", "keras_labs.export", "keras_labs.training", "keras_labs.visualization")

NAME = "transfer"
DESCRIPTION = ("scratch vs fine-tuning vs feature extraction; MNIST -> digits/SVHN, ImageNet "
               "(report 000 ex. 2: 67/62/83%, MNIST 95% -> SVHN 77%)")

DATASETS = ("mnist",)  # the source's; a tfds target (svhn_cropped) is checked when the run starts
STRATEGIES = ("scratch", "fine_tune", "feature_extraction")
TARGETS = ("digits", "svhn_cropped")
IMAGE_SIZE = 32  # every target (and the MNIST source) is fed as 32x32 RGB in [0, 1]
NUM_CLASSES = 10  # digits 0-9 in every source and target here


@dataclasses.dataclass(frozen=True)
class Backbone:
    """A keras.applications model and how to map [0, 1] pixels to the input its weights expect."""

    constructor: str
    scale: float
    offset: float


BACKBONES = {
    "mobilenet_v2": Backbone("MobileNetV2", 2.0, -1.0),  # expects [-1, 1]
    "efficientnet_b0": Backbone("EfficientNetB0", 255.0, 0.0),  # rescales [0, 255] itself
}


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    source: str = option("mnist", choices=("mnist", "imagenet"),
                         help="pretrained network: the suite's own MNIST CNN, or an ImageNet backbone")
    backbone: str = option("mobilenet_v2", choices=tuple(BACKBONES),
                           help="keras.applications model for source=imagenet")
    imagenet_size: int = option(96, minimum=32, maximum=512,
                                help="side the ImageNet backbone sees (targets are resized)")
    targets: tuple[str, ...] = option(("digits",), help=f"target datasets: {', '.join(TARGETS)}")
    epochs: int = option(15, minimum=1, help="epochs of each strategy on each target")
    warmup_epochs: int = option(3, minimum=0,
                                help="fine_tune: epochs training the new head before unfreezing")
    batch_size: int = option(64, minimum=1, maximum=65536, help="examples per step on the target")
    learning_rate: float = option(1e-3, positive=True, maximum=10.0,
                                  help="Adam learning rate of scratch, feature extraction and warm-up")
    fine_tune_learning_rate: float = option(1e-4, positive=True, maximum=10.0,
                                            help="Adam learning rate once the whole network trains")
    dropout: float = option(0.3, minimum=0.0, maximum=0.95, help="dropout before the new head")
    target_train_examples: int = option(0, minimum=0,
                                        help="use only the first N target training examples (0: all)")
    target_test_examples: int = option(0, minimum=0,
                                       help="score on the first N target test examples (0: all)")
    digits_test_fraction: float = option(0.25, positive=True, maximum=0.9,
                                         help="share of the UCI digits held out (fixed split)")
    source_epochs: int = option(3, minimum=1, help="epochs of the MNIST source model")
    source_train_examples: int = option(0, minimum=0,
                                        help="MNIST source: first N training examples (0: all)")
    source_learning_rate: float = option(2e-3, positive=True, maximum=10.0,
                                         help="MNIST source: peak Adam learning rate (cosine)")

    def check(self) -> None:
        if not self.targets:
            raise ConfigError(f"targets={self.targets!r} is empty; valid targets: {', '.join(TARGETS)}")
        for target in self.targets:
            if target not in TARGETS:
                raise ConfigError(f"targets has {target!r}, which is not valid; valid targets: "
                                  f"{', '.join(TARGETS)}")
        if len(set(self.targets)) != len(self.targets):
            raise ConfigError(f"targets={','.join(self.targets)!r} names a dataset twice")
        if self.warmup_epochs >= self.epochs:
            raise ConfigError(f"warmup_epochs={self.warmup_epochs} leaves no fine-tuning epochs; "
                              f"it must be < epochs={self.epochs}")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=4, warmup_epochs=1, source_epochs=1, source_train_examples=8000),
}
DEFAULT_PRESET = "seed"


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Adapts a pretrained network to each target three ways; returns the metrics."""
    run = runs.Run(NAME, config, workdir, resume=resume)
    strategy = training.setup(config, run)

    # Every target is opened before the source trains: a missing dataset fails in seconds.
    targets = {}
    for target in config.targets:
        make_train, test, source, probe = _target_data(config, target)
        run.record_data(source)
        targets[target] = (make_train, test, probe)
    # Without ImageNet weights the run stops here, within seconds too.
    with strategy.scope():
        if config.source == "imagenet":
            base = imagenet_base(config.backbone, config.imagenet_size)
            source_model, source_info = None, {"kind": "imagenet", "backbone": config.backbone,
                                               "input_size": config.imagenet_size}
        else:
            source_model, source_info = mnist_source(config, run)
            base = keras.Model(source_model.input, source_model.get_layer("features").output,
                               name="mnist_features")
    preprocess = _preprocess_layers(config)

    metrics = {"source": source_info, "zero_shot": {}, **{name: {} for name in STRATEGIES}}
    curves, rows, best = {}, [], None
    for target, (make_train, test, probe) in targets.items():
        if source_model is not None:
            # The MNIST source already predicts digits 0-9: score it on the target untouched.
            labels, predictions, _ = training.predict_labels(source_model, test)
            metrics["zero_shot"][target] = float((labels == predictions).mean())
        curves[target] = {}
        for name in STRATEGIES:
            keras.utils.set_random_seed(config.seed)  # each strategy starts from the same draws
            model, result, history = train_strategy(name, base, preprocess, make_train, test,
                                                    config, run, target, strategy, probe)
            metrics[name][target] = result
            curves[target][name] = history["val_accuracy"]
            rows.extend({"target": target, "strategy": name, "epoch": epoch + 1,
                         **{key: values[epoch] for key, values in history.items()}}
                        for epoch in range(len(history["val_accuracy"])))
            if target == config.targets[0] and (best is None or result["accuracy"] > best[2]):
                best = (name, model, result["accuracy"])
            print(f"{NAME}: {target} {name}: accuracy {result['accuracy']:.4f}, "
                  f"{result['trainable_parameters']:,} trainable parameters, {result['time_s']:.1f} s",
                  flush=True)

    _write_history(run.history_path, rows)
    references = {target: {f"zero-shot {value:.1%}": value}
                  for target, value in metrics["zero_shot"].items()}
    visualization.plot_learning_curves(
        curves, run.plot_path("learning_curves"),
        marks={"fine-tuning starts": config.warmup_epochs}, references=references,
        y_label="test accuracy", title=f"{NAME}: {_source_label(config)} -> target")
    metrics["table"] = table_rows(metrics, config.targets)
    table = markdown_table(metrics["table"])
    (run.workdir / "table.md").write_text(table)
    print(table, flush=True)

    metrics["best"] = {"target": config.targets[0], "strategy": best[0], "accuracy": best[2]}
    metrics["export"] = str(export.export_model(best[1], config.export_dir, NAME, run.run_id))
    return run.finish(metrics)


# --------------------------------------------------------------------------------------------
# Source networks


def imagenet_base(backbone: str, size: int, timeout: float = 10.0) -> keras.Model:
    """A `keras.applications` backbone without its top, with ImageNet weights.

    Keras downloads the weights once into its cache (`~/.keras/models`, or `$KERAS_HOME`); a
    cached file is used without the network.

    Args:
        backbone: A key of `BACKBONES`.
        size: Input side in pixels.
        timeout: Seconds any one network operation of the download may block.

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
        raise DataError(f"cannot get the ImageNet weights of {backbone} ({error}); offline, use "
                        "source=mnist (the suite's own MNIST source network), or place the "
                        "weights file in the Keras cache (~/.keras/models)") from None
    finally:
        socket.setdefaulttimeout(previous)
    base._name = f"{backbone}_imagenet"
    return base


def mnist_source(config: Config, run: runs.Run) -> tuple[keras.Model, dict]:
    """The suite's MNIST CNN (32x32 RGB input), trained once per recipe and kept for later runs
    (`training.cached_model`, keyed by data, examples, epochs, learning rate and seed).

    Returns:
        (the model, facts about it: test accuracy on MNIST, where it is, reused or not).
    """
    datasets, source = run.load_data("mnist")
    recipe = {"architecture": "models.mnist_cnn", "input_shape": [IMAGE_SIZE, IMAGE_SIZE, 3],
              "data": source.kind, "splits": source.splits, "seed": config.seed,
              "train_examples": config.source_train_examples, "epochs": config.source_epochs,
              "learning_rate": config.source_learning_rate, "batch_size": 128}

    def train():
        # No cache: 60,000 images as 32x32x3 float32 would hold 740 MB; resizing is cheap.
        train = data.image_pipeline(data.first(datasets["train"], config.source_train_examples),
                                    batch_size=128, training=True, seed=config.seed, channels=3,
                                    size=IMAGE_SIZE, cache=False)
        test = data.image_pipeline(datasets["test"], batch_size=512, training=False, channels=3,
                                   size=IMAGE_SIZE, cache=False)
        steps = max(int(train.cardinality()), 1) * config.source_epochs
        model = models.mnist_cnn(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), name="mnist_source")
        schedule = keras.optimizers.schedules.CosineDecay(config.source_learning_rate,
                                                          decay_steps=steps)
        model.compile(optimizer=keras.optimizers.Adam(schedule),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        training.fit(run, model, train, epochs=config.source_epochs, **_logs(run, "source-mnist"),
                     probe=data.probe_batch(datasets["test"], channels=3, size=IMAGE_SIZE))
        seconds = time.perf_counter() - start
        _, accuracy = model.evaluate(test, verbose=0)
        print(f"{NAME}: MNIST source model: test accuracy {accuracy:.4f} ({seconds:.0f} s)",
              flush=True)
        return model, {"kind": "mnist", "test_accuracy": float(accuracy),
                       "train_time_s": round(seconds, 2), "trained_in_run": run.run_id}

    return training.cached_model(config.export_dir, "mnist_source", recipe, train)


def _preprocess_layers(config: Config) -> list[layers.Layer]:
    """Layers from the 32x32 [0, 1] target images to what the pretrained network expects."""
    if config.source != "imagenet":
        return []
    backbone = BACKBONES[config.backbone]
    return [layers.Resizing(config.imagenet_size, config.imagenet_size, name="resize"),
            layers.Rescaling(backbone.scale, backbone.offset, name="rescale")]


def _source_label(config: Config) -> str:
    return f"ImageNet {config.backbone}" if config.source == "imagenet" else "MNIST CNN"


# --------------------------------------------------------------------------------------------
# Targets


def _target_data(config: Config, target: str):
    """(a maker of training pipelines, the test pipeline) of 32x32 RGB images in [0, 1], the
    `DataSource` and the fixed probe batch of TensorBoard's probes. Every fit gets its own training pipeline: each sees the same shuffled
    epochs, and a resumed run gives a fit exactly the batches it would have had uninterrupted."""
    if target == "digits":
        datasets, source = data.load_uci_digits(test_fraction=config.digits_test_fraction)
    else:
        datasets, source = data.load(target, ("train", "test"), data=config.data,
                                     data_dir=config.data_dir)
    train_split, test_split = datasets["train"], datasets["test"]
    if config.target_train_examples:
        train_split = train_split.take(config.target_train_examples)
    if config.target_test_examples:
        test_split = test_split.take(config.target_test_examples)
    # Cache the 1,797 upsampled digits; SVHN (73,257 training images, already 32x32 RGB) would
    # need 900 MB as float32 and costs only a cast to prepare again.
    cache = target == "digits"
    def make_train():
        return data.image_pipeline(train_split, batch_size=config.batch_size, training=True,
                                   seed=config.seed, channels=3, size=IMAGE_SIZE, cache=cache)

    test = data.image_pipeline(test_split, batch_size=512, training=False, channels=3,
                               size=IMAGE_SIZE, cache=cache)
    return make_train, test, source, data.probe_batch(test_split, channels=3, size=IMAGE_SIZE)


# --------------------------------------------------------------------------------------------
# Strategies


def train_strategy(name: str, base: keras.Model, preprocess: list[layers.Layer], make_train,
                   test, config: Config, run: runs.Run, target: str, strategy, probe=None):
    """Builds and trains one strategy on one target, inside the `tf.distribute` `strategy`.

    `make_train()` returns a fresh training pipeline (one per fit); `probe`: the fixed test
    images of TensorBoard's probes (the base's conv layers are probed inside the model).

    Returns:
        (the trained model, {accuracy, trainable_parameters, time_s, epochs}, the per-epoch
        history with a `phase` column).
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy {name!r} is not valid; valid values: {', '.join(STRATEGIES)}")
    pretrained = name != "scratch"
    with strategy.scope():
        own_base = keras.models.clone_model(base)  # fresh layers, freshly initialized weights
        if pretrained:
            own_base.set_weights(base.get_weights())
        own_base.trainable = not pretrained
        model = models.transfer_model(own_base, preprocess, pretrained=pretrained,
                                      dropout=config.dropout, name=f"{target}_{name}",
                                      input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                                      num_classes=NUM_CLASSES)
    phases = [("train", config.learning_rate, config.epochs)]
    if name == "fine_tune":
        phases = [("warmup", config.learning_rate, config.warmup_epochs),
                  ("fine_tune", config.fine_tune_learning_rate, config.epochs)]
    history: dict[str, list] = {}
    start = time.perf_counter()
    for phase, learning_rate, until_epoch in phases:
        if phase == "fine_tune":
            unfreeze_except_batch_norm(own_base)  # recompiled below to take effect
        done = len(history.get("loss", []))
        if until_epoch <= done:
            continue
        with strategy.scope():
            model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                          loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        # The test split doubles as the per-epoch curve; nothing is selected on it.
        # One fit name per phase: a resumed run restores the finished phases without training.
        fit = training.fit(run, model, make_train(), epochs=until_epoch, initial_epoch=done,
                           validation_data=test, probe=probe,
                           **_logs(run, f"{target}-{name}-{phase}"))
        for key, values in fit.history.items():
            history.setdefault(key, []).extend(float(value) for value in values)
        history.setdefault("phase", []).extend([phase] * len(fit.history["loss"]))
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(test, verbose=0)
    result = {"accuracy": float(accuracy), "trainable_parameters": trainable_parameters(model),
              "time_s": round(seconds, 2), "epochs": len(history["loss"])}
    if name == "fine_tune":
        result["fine_tune_from_epoch"] = config.warmup_epochs + 1
    return model, result, history


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
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def _logs(run: runs.Run, phase: str) -> dict:
    """`training.fit` arguments that give one phase its own backup, CSV and TensorBoard logs."""
    history_path = run.workdir / "phases" / f"{phase}.csv"
    history_path.parent.mkdir(exist_ok=True)
    return {"name": phase, "histogram_freq": 0, "history_path": history_path,
            "log_dir": run.tb_dir / phase}


def _write_history(path: Path, rows: list[dict]) -> None:
    """Every strategy's epochs in one long CSV: target, strategy, epoch, phase, metrics."""
    columns = ["target", "strategy", "epoch", "phase"]
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)


# --------------------------------------------------------------------------------------------
# The table


def table_rows(metrics: dict, targets) -> list[dict]:
    """One row per target and strategy (zero-shot first where there is one)."""
    rows = []
    for target in targets:
        if target in metrics["zero_shot"]:
            rows.append({"target": target, "strategy": "zero_shot",
                         "accuracy": metrics["zero_shot"][target], "trainable_parameters": 0,
                         "time_s": 0.0})
        for name in STRATEGIES:
            result = metrics[name][target]
            rows.append({"target": target, "strategy": name, "accuracy": result["accuracy"],
                         "trainable_parameters": result["trainable_parameters"],
                         "time_s": result["time_s"]})
    return rows


def markdown_table(rows: list[dict]) -> str:
    lines = ["| target | strategy | test accuracy | trainable parameters | time (s) |",
             "|---|---|---|---|---|"]
    lines += [f"| {row['target']} | {row['strategy']} | {row['accuracy']:.2%} | "
              f"{row['trainable_parameters']:,} | {row['time_s']:.1f} |" for row in rows]
    return "\n".join(lines) + "\n"
