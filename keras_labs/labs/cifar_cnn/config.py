"""The cifar-cnn lab's name, config and presets (no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option
from keras_labs.models import specs

NAME = "cifar-cnn"
DESCRIPTION = ("CIFAR-10 CNNs of reports 001-004 (004 tutorial 54%, 001 DeepDIVA, 003 82%, 002 "
               "grid) + our best; activation/filter TensorBoard instrumentation, sweeps")

NUM_CLASSES = 10
ARCHITECTURES = specs.CIFAR_ARCHITECTURES
ACTIVATIONS = specs.ACTIVATIONS
OPTIMIZERS = specs.OPTIMIZERS
INITIALIZERS = specs.INITIALIZERS
SCHEDULES = specs.SCHEDULES


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
    validation_fraction: float = common.validation_fraction()
    equal_updates_examples: int = option(
        0, minimum=0, help="train for the gradient steps of `epochs` epochs over this many images "
                           "(the reports' 50,000): more epochs when the training set is smaller "
                           "(0: off)")
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
    running_loss_every: int = option(
        0, minimum=0, help="print and record the mean training loss of the last N mini-batches "
                           "every N mini-batches, counted over the whole run (0: off)")

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
        if self.running_loss_every % self.steps_per_execution:
            raise ConfigError(f"running_loss_every={self.running_loss_every} is not a multiple of "
                              f"steps_per_execution={self.steps_per_execution}; the window means "
                              "are exact only at whole executions")

    def net_spec(self) -> specs.CifarNetSpec:
        """The network these fields describe, for `models.cnn.cifar_cnn`."""
        return specs.CifarNetSpec(
            architecture=self.architecture, filters=self.filters, dense_units=self.dense_units,
            convs_per_stage=self.convs_per_stage, activation=self.activation,
            initializer=self.initializer, init_stddev=self.init_stddev,
            batch_norm=self.batch_norm, dropout=self.dropout, l2=self.l2,
            num_classes=NUM_CLASSES)


# --------------------------------------------------------------------------------------------
# Presets, named after their source.

# steps_per_execution divides the 2,000 mini-batches of the running loss (Keras calls back only
# between executions). At batch 4 the thread count chosen for it is one per op pool
# (`devices.choose_threads`); a user who sets batch_size=128 gets one per core.
_TUTORIAL = Config(architecture="tutorial", initializer="torch", normalize="symmetric",
                   optimizer="momentum", learning_rate=1e-3, momentum=0.9, batch_size=4, epochs=2,
                   show_examples=4, running_loss_every=2000, steps_per_execution=50,
                   probe_every_steps=500)
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
# A narrow ResNet-9 (Page's DAWNBench network) with its training recipe.
_BEST = Config(architecture="resnet", filters=(16, 32, 64, 128), batch_norm=True,
               initializer="he_normal", optimizer="nesterov", momentum=0.9, learning_rate=0.1,
               weight_decay=5e-4, schedule="onecycle", warmup_fraction=0.2, label_smoothing=0.2,
               normalize="symmetric", augment=True, test_time_flip=True, batch_size=64,
               epochs=10, steps_per_execution=16, probe_every_steps=200)
# The reports trained on the 50,000 CIFAR-10 training images.
REPORT_TRAIN_IMAGES = 50_000

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
    # fast's recipe for as many epochs as 15 minutes of the 2-core CPU hold (8.5 s an epoch of
    # the partial data in bfloat16 on the Xeon that ran it): the epoch count is set by the time
    # budget, not chosen on any split. A network twice as wide costs 2.2x the time of an epoch.
    "best": dataclasses.replace(_BEST, epochs=90, steps_per_execution=19, mixed_precision="bf16"),
    # best for as many epochs as 3 minutes of the 2-core CPU hold, in bfloat16 where the CPU
    # has it; 19 steps an execution divide an epoch of the partial data (114 steps) and of
    # the full (703), where 16 ran 12% more steps than an epoch has (screened on validation:
    # docs/benchmarks.md).
    "fast": dataclasses.replace(_BEST, epochs=20, steps_per_execution=19, mixed_precision="bf16"),
    "quick": Config(architecture="vgg", filters=(16, 32), convs_per_stage=1, dense_units=(64,),
                    batch_norm=True, optimizer="adam", learning_rate=2e-3, batch_size=64,
                    epochs=2, train_examples=2048, steps_per_execution=8, probe_every_steps=8),
}
# The data-limited presets again, for as many gradient steps as the reports' runs.
PRESETS.update({
    f"{name}-equal-updates": dataclasses.replace(PRESETS[name],
                                                 equal_updates_examples=REPORT_TRAIN_IMAGES)
    for name in ("tutorial", "deepdiva-sgd", "deepdiva-adam", "deepdiva-basic-copy", "minor-10ep",
                 *(name for name in PRESETS if name.startswith("report002-")
                   and "adagrad" not in name))  # report 002 gave no adagrad figure
})
DEFAULT_PRESET = "tutorial"
