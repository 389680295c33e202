"""Lab `cifar-cnn`: every CIFAR-10 classification experiment of the seed reports, instrumented.

The presets reproduce, one each, the CIFAR-10 networks of the seed reports:

* `tutorial` (report 004, task 1): the PyTorch tutorial network, two 5x5 convolutions (6 and 16
  filters) and three dense layers (120, 84, 10), SGD with momentum at batch 4 for 2 epochs. The
  report saw 54% on the full test set, and shows 4 test images with true and predicted labels
  and a per-class accuracy table; so does this lab.
* `deepdiva-sgd`, `deepdiva-adam`, `deepdiva-basic-copy` (report 001, exercise 1): DeepDIVA's
  `CNN_basic` (three strided convolutions with leaky ReLU and one dense layer) with seed 42 and
  DeepDIVA's defaults (learning rate 0.001, batch 64, 5 epochs), SGD without momentum vs Adam,
  and the report's modified copy of the network (the report does not say what was modified; our
  stand-in adds a 128-unit hidden layer). Reports: 23.11%, 60.45%, 52.94%.
* `minor-10ep` (report 003, question 1): a VGG-style CNN trained 10 epochs with the training
  loss per epoch; the report said 82%.
* `report002-*` (report 002, task 1): the TensorFlow template network (two 5x5 conv layers and
  a dense layer) over the report's grid of activation, optimizer, initializer, regularization,
  batch size and learning rate; the report saw ~96% train vs ~52-58% test accuracy.
* `best`: our recipe (a small residual network with batch norm, augmentation, label smoothing,
  SGD with Nesterov momentum and decoupled weight decay on a one-cycle schedule, test-time
  flips) that beats every seed number within 10 epochs.
* `quick`: a small batch-norm CNN for the tour.

Every knob is a config field, so any mix is one `--set` away, and `keras-labs sweep cifar-cnn
--grid activation=relu,tanh --grid optimizer=adam,momentum` runs a grid of them.

Besides test and per-class accuracy, a confusion matrix and loss/accuracy curves, a run logs to
TensorBoard (`tb/`) the weight histograms (Keras's TensorBoard callback) and, in
`tb/instrumentation`, what report 002 plotted by hand: per conv layer, on a fixed probe batch,
the histogram of activations with their min, max, mean, std and fraction of zeros, and the
first conv layer's filters as an image grid (also PNG files under `plots/`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from keras_labs import ConfigError, data, models, optimization
from keras_labs.config import LabConfig, common, option
from keras_labs.lazy import lazy_import

# Loaded on first use (TensorFlow, matplotlib): NAME, Config and PRESETS read without them.
keras, layers, tf = lazy_import("keras", "keras.layers", "tensorflow")
export, training, visualization = lazy_import(
    "keras_labs.export", "keras_labs.training", "keras_labs.visualization")

NAME = "cifar-cnn"
DESCRIPTION = ("CIFAR-10 CNNs of reports 001-004 (004 tutorial 54%, 001 DeepDIVA, 003 82%, 002 "
               "grid) + our best; activation/filter TensorBoard instrumentation, sweeps")

NUM_CLASSES = 10
ARCHITECTURES = models.cnn.CIFAR_ARCHITECTURES
ACTIVATIONS = models.cnn.ACTIVATIONS
OPTIMIZERS = optimization.OPTIMIZERS
INITIALIZERS = models.cnn.INITIALIZERS
SCHEDULES = optimization.SCHEDULES

# What the seed reports measured, for the comparison printed at the end of a run.
SEED_RESULTS = {
    "tutorial": ("report 004, task 1", 0.54),
    "deepdiva-sgd": ("report 001, exercise 1", 0.2311),
    "deepdiva-adam": ("report 001, exercise 1", 0.6045),
    "deepdiva-basic-copy": ("report 001, exercise 1", 0.5294),
    "minor-10ep": ("report 003, question 1", 0.82),
}


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    # The network
    architecture: str = option("tutorial", choices=ARCHITECTURES, help="network family")
    filters: tuple[int, ...] = option((), positive=True,
                                      help="conv widths (per layer or stage); empty: the architecture's own")
    dense_units: tuple[int, ...] = option((), positive=True,
                                          help="hidden dense widths; empty: the architecture's own")
    convs_per_stage: int = option(2, minimum=1, maximum=4, help="vgg: convolutions per stage")
    activation: str = option("relu", choices=ACTIVATIONS, help="hidden-layer activation")
    initializer: str = option("default", choices=INITIALIZERS,
                              help="kernel init; default: Keras's glorot_uniform; torch: PyTorch's "
                                   "default (kernels and biases U(+-1/sqrt(fan_in)))")
    init_stddev: float = option(0.05, positive=True, help="stddev of the `normal` initializer")
    batch_norm: bool = option(False, help="batch norm after every convolution")
    dropout: float = option(0.0, minimum=0.0, maximum=0.95, help="dropout before dense layers")
    l2: float = option(0.0, minimum=0.0, help="L2 penalty on kernels, added to the loss")
    # Training
    epochs: int = common.epochs(2)
    batch_size: int = common.batch_size(4)
    optimizer: str = option("momentum", choices=OPTIMIZERS,
                            help="sgd (no momentum), momentum, nesterov, adam, adamw, adagrad, rmsprop")
    learning_rate: float = option(1e-3, positive=True, maximum=10.0, help="(peak) learning rate")
    momentum: float = option(0.9, minimum=0.0, maximum=0.999,
                             help="momentum of momentum/nesterov/rmsprop")
    weight_decay: float = option(0.0, minimum=0.0,
                                 help="decoupled weight decay (not on biases or batch norm)")
    schedule: str = option("constant", choices=SCHEDULES,
                           help="learning rate schedule over the whole run")
    warmup_fraction: float = option(0.2, minimum=0.0, maximum=0.9,
                                    help="onecycle: fraction of steps spent warming up")
    label_smoothing: float = option(0.0, minimum=0.0, maximum=0.5)
    # Data
    normalize: str = option("unit", choices=("unit", "symmetric"),
                            help="pixels in [0, 1] or [-1, 1] (torchvision Normalize(0.5, 0.5))")
    augment: bool = option(False, help="random horizontal flips and 4-pixel translations")
    test_time_flip: bool = option(False, help="average predictions over the image and its mirror")
    train_examples: int = common.examples("training images")
    test_examples: int = common.examples("test images")
    # Speed
    steps_per_execution: int = option(1, minimum=1, help="train steps per tf.function call")
    jit_compile: bool = option(False, help="compile the train step with XLA")
    # Instrumentation
    probe_every_steps: int = option(200, minimum=0,
                                    help="interval of activation statistics and filter images "
                                         "(0: off)")
    probe_images: int = option(32, minimum=1, help="size of the fixed activation probe batch")
    histogram_freq: int = option(1, minimum=0, help="weight histograms every N epochs (0: off)")
    show_examples: int = option(0, minimum=0, maximum=64,
                                help="plot this many test images with true and predicted labels")

    def check(self) -> None:
        if self.architecture == "resnet" and self.filters and len(self.filters) != 4:
            raise ConfigError(f"filters={self.filters!r} is not valid for architecture='resnet'; "
                              "it takes 4 widths (prep, stage 1, stage 2, stage 3)")
        if self.architecture == "tutorial" and self.filters and len(self.filters) != 2:
            raise ConfigError(f"filters={self.filters!r} is not valid for architecture='tutorial'; "
                              "it takes 2 widths")
        if self.architecture.startswith("deepdiva") and self.filters and len(self.filters) != 3:
            raise ConfigError(f"filters={self.filters!r} is not valid for architecture="
                              f"{self.architecture!r}; it takes 3 widths")

    def net_spec(self) -> models.CifarNetSpec:
        """The network these fields describe, for `models.cifar_cnn`."""
        return models.CifarNetSpec(
            architecture=self.architecture, filters=self.filters, dense_units=self.dense_units,
            convs_per_stage=self.convs_per_stage, activation=self.activation,
            initializer=self.initializer, init_stddev=self.init_stddev,
            batch_norm=self.batch_norm, dropout=self.dropout, l2=self.l2,
            num_classes=NUM_CLASSES)

    def make_optimizer(self, total_steps: int) -> keras.optimizers.Optimizer:
        """The optimizer these fields describe, its schedule spanning `total_steps` steps."""
        return optimization.make_optimizer(
            self.optimizer, self.learning_rate, total_steps, schedule=self.schedule,
            warmup_fraction=self.warmup_fraction, momentum=self.momentum,
            weight_decay=self.weight_decay)


# --------------------------------------------------------------------------------------------
# Presets, named after their source.

_TUTORIAL = Config(architecture="tutorial", initializer="torch", normalize="symmetric",
                   optimizer="momentum", learning_rate=1e-3, momentum=0.9, batch_size=4, epochs=2,
                   show_examples=4, steps_per_execution=64, probe_every_steps=500)
# DeepDIVA's template defaults (template/CL_arguments.py): CNN_basic, SGD without momentum,
# lr 0.001, batch 64, 5 epochs; the report adds seed 42. DeepDIVA standardizes the inputs with
# the dataset's mean and std; [-1, 1] is the nearest of our two input scalings.
_DEEPDIVA = Config(architecture="deepdiva_basic", activation="leaky_relu", initializer="torch",
                   normalize="symmetric", optimizer="sgd", momentum=0.0, learning_rate=1e-3,
                   batch_size=64, epochs=5, seed=42, steps_per_execution=8, probe_every_steps=100)
# Report 002's TensorFlow template: two 5x5 conv layers, one dense layer, N(0, 0.05) weights.
_REPORT002 = Config(architecture="report002", initializer="normal", init_stddev=0.05,
                    optimizer="adam", learning_rate=1e-3, batch_size=50, epochs=10,
                    steps_per_execution=8, probe_every_steps=100)
_REGULARIZED = {"dropout": 0.5, "l2": 1e-3}

PRESETS = {
    "tutorial": _TUTORIAL,
    "deepdiva-sgd": _DEEPDIVA,
    "deepdiva-adam": dataclasses.replace(_DEEPDIVA, optimizer="adam"),
    "deepdiva-basic-copy": dataclasses.replace(_DEEPDIVA, optimizer="adam",
                                               architecture="deepdiva_basic_copy"),
    "minor-10ep": Config(architecture="vgg", filters=(32, 64, 128), convs_per_stage=2,
                         dense_units=(256,), batch_norm=True, dropout=0.25, initializer="torch",
                         optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=10,
                         steps_per_execution=8, probe_every_steps=200),
    "report002-relu-adam-normal": _REPORT002,
    "report002-tanh-adam-normal": dataclasses.replace(_REPORT002, activation="tanh"),
    "report002-sigmoid-adam-normal": dataclasses.replace(_REPORT002, activation="sigmoid"),
    "report002-leaky_relu-adam-normal": dataclasses.replace(_REPORT002, activation="leaky_relu"),
    "report002-relu-adam-glorot": dataclasses.replace(_REPORT002, initializer="glorot_uniform"),
    "report002-relu-adagrad-normal": dataclasses.replace(_REPORT002, optimizer="adagrad",
                                                         learning_rate=1e-2),
    "report002-relu-momentum-normal": dataclasses.replace(_REPORT002, optimizer="momentum",
                                                          momentum=0.9, learning_rate=1e-3),
    "report002-relu-adam-normal-reg": dataclasses.replace(_REPORT002, **_REGULARIZED),
    "report002-relu-adam-normal-reg-long": dataclasses.replace(_REPORT002, epochs=20,
                                                               **_REGULARIZED),
    "report002-relu-momentum0.8-reg": dataclasses.replace(
        _REPORT002, optimizer="momentum", momentum=0.8, learning_rate=1e-2, **_REGULARIZED),
    "report002-relu-momentum0.7-reg": dataclasses.replace(
        _REPORT002, optimizer="momentum", momentum=0.7, learning_rate=1e-2, **_REGULARIZED),
    "report002-relu-momentum0.9-reg": dataclasses.replace(
        _REPORT002, optimizer="momentum", momentum=0.9, learning_rate=1e-3, **_REGULARIZED),
    "best": Config(architecture="resnet", filters=(16, 32, 64, 128), batch_norm=True,
                   initializer="he_normal", optimizer="nesterov", momentum=0.9,
                   learning_rate=0.1, weight_decay=5e-4, schedule="onecycle", warmup_fraction=0.2,
                   label_smoothing=0.2, normalize="symmetric", augment=True, test_time_flip=True,
                   batch_size=64, epochs=10, steps_per_execution=16, probe_every_steps=200),
    "quick": Config(architecture="vgg", filters=(16, 32), convs_per_stage=1, dense_units=(64,),
                    batch_norm=True, optimizer="adam", learning_rate=2e-3, batch_size=64,
                    epochs=2, train_examples=2048, steps_per_execution=8, probe_every_steps=8),
}
DEFAULT_PRESET = "tutorial"




def preset_name(config: Config) -> str | None:
    """The preset `config` is (up to the data, seed and export choices), or None."""
    ignored = {"data", "data_dir", "export_dir", "deterministic", "strategy", "mixed_precision",
               "seed"}

    def essence(candidate):
        return {k: v for k, v in candidate.to_dict().items() if k not in ignored}

    return next((name for name, preset in PRESETS.items() if essence(preset) == essence(config)),
                None)


# --------------------------------------------------------------------------------------------
# The run.


def make_datasets(config: Config):
    """(train, test, source, raw test split): the batched, cached pipelines of CIFAR-10."""
    splits, source = data.load("cifar10", ("train", "test"), data=config.data,
                               data_dir=config.data_dir)
    train_split = data.first(splits["train"], config.train_examples)
    test_split = data.first(splits["test"], config.test_examples)
    # drop_remainder in training: the last partial batch would recompile the step function
    train = data.image_pipeline(train_split, batch_size=config.batch_size, training=True,
                                seed=config.seed, normalize=config.normalize,
                                augment=config.augment, drop_remainder=True)
    test = data.image_pipeline(test_split, batch_size=500, training=False,
                               normalize=config.normalize)
    return train, test, source, test_split


def predict_logits(model: keras.Model, test: tf.data.Dataset, test_time_flip: bool):
    """(labels, logits) over the test set; with `test_time_flip`, the mean over mirror images."""
    labels, logits = [], []
    for images, batch_labels in test:
        batch = np.asarray(model(images, training=False))
        if test_time_flip:
            batch = (batch + np.asarray(model(tf.image.flip_left_right(images), training=False))) / 2
        logits.append(batch)
        labels.append(batch_labels.numpy())
    return np.concatenate(labels), np.concatenate(logits)


def run(config: Config, workdir: str, *, resume: bool = False) -> dict:
    """Trains, evaluates, instruments and exports one CIFAR-10 CNN; returns its metrics."""
    run, strategy = training.start(NAME, config, workdir, resume=resume)

    train, test, source, test_split = make_datasets(config)
    run.record_data(source)
    steps_per_epoch = int(train.cardinality())
    if steps_per_epoch < 1:
        available = min(filter(None, (config.train_examples, source.splits["train"])))
        raise ConfigError(f"batch_size={config.batch_size} is larger than the {available} "
                          "training images; lower it")

    with strategy.scope():
        model = models.cifar_cnn(config.net_spec())
        model.compile(optimizer=config.make_optimizer(steps_per_epoch * config.epochs),
                      loss=optimization.logits_crossentropy(NUM_CLASSES, config.label_smoothing),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      steps_per_execution=training.steps_per_execution(
                          config.steps_per_execution, strategy),
                      jit_compile=config.jit_compile)
    model.summary(print_fn=lambda line, **_: print(line))

    # A fixed probe batch (the first test images), so the activation statistics of successive
    # steps differ only by what training changed.
    probe = data.probe_batch(test_split, config.probe_images, normalize=config.normalize)

    # The test split doubles as the per-epoch validation curve; nothing is selected on it.
    history = training.fit(run, model, train, epochs=config.epochs, validation_data=test,
                           histogram_freq=config.histogram_freq, probe=probe, probe_plots=True)

    labels, logits = predict_logits(model, test, config.test_time_flip)
    metrics = training.classification_metrics(labels, logits.argmax(axis=-1), NUM_CLASSES)
    names = data.class_names("cifar10")
    metrics["per_class_accuracy_by_name"] = dict(zip(names, metrics["per_class_accuracy"],
                                                     strict=True))
    metrics["train_accuracy"] = float(history.history["accuracy"][-1])
    metrics["train_loss"] = float(history.history["loss"][-1])
    metrics["test_loss"] = float(history.history["val_loss"][-1])
    metrics["losses"] = {"train": [round(v, 4) for v in history.history["loss"]],
                         "test": [round(v, 4) for v in history.history["val_loss"]]}
    metrics["epoch_time_s"] = [round(t, 2) for t in history.history["epoch_time_s"]]
    metrics["train_images_per_s"] = round(
        steps_per_epoch * config.batch_size / min(history.history["epoch_time_s"]), 1)
    metrics["parameters"] = int(model.count_params())

    visualization.plot_classifier(run, metrics, names, title=f"{NAME} ({source.kind} data)")
    if config.show_examples:
        shown = next(iter(test_split.batch(config.show_examples)))
        images, true = shown[0].numpy(), shown[1].numpy()
        predicted = logits[:len(true)].argmax(axis=-1)
        titles = [f"true: {names[t]}\npred: {names[p]}" for t, p in zip(true, predicted, strict=True)]
        visualization.image_grid(images / 255.0, run.plot_path("test_examples"), titles=titles,
                                 columns=min(len(images), 8), title="test images")
        metrics["examples"] = [{"true": names[t], "predicted": names[p]}
                               for t, p in zip(true, predicted, strict=True)]

    preset = preset_name(config)
    if preset in SEED_RESULTS:
        report, accuracy = SEED_RESULTS[preset]
        metrics["seed_result"] = {"preset": preset, "source": report, "test_accuracy": accuracy,
                                  "note": "on the full 10,000-image CIFAR-10 test set"}
    print("per-class accuracy:")
    for name, value in metrics["per_class_accuracy_by_name"].items():
        print(f"  {name:10s} {'-' if value is None else f'{100 * value:5.1f} %'}")

    # Serve probabilities, not logits.
    serving = keras.Model(model.input, layers.Softmax(name="probabilities")(model.output),
                          name=f"{model.name}_serving")
    metrics["export"] = str(export.export_model(serving, config.export_dir, NAME, run.run_id))
    print(f"{NAME}: test accuracy {metrics['test_accuracy']:.4f}, train accuracy "
          f"{metrics['train_accuracy']:.4f} on {source.describe()}")
    return run.finish(metrics)
