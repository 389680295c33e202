"""The mnist-cnn lab's name, config and presets (no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs.config import LabConfig, common, option

NAME = "mnist-cnn"
DESCRIPTION = "small CNN on MNIST (report 000, ex. 2: 95%); test/per-class accuracy, SavedModel"
DATASETS = ("mnist",)


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    epochs: int = common.epochs(8)
    batch_size: int = common.batch_size(128)
    learning_rate: float = common.learning_rate(2e-3, "peak Adam learning rate (cosine decay to 0)")
    filters: tuple[int, ...] = option((32, 64), positive=True, help="conv widths, one per stage")
    convs_per_stage: int = option(1, minimum=1, maximum=4)
    dense_units: int = option(128, minimum=1)
    dropout: float = option(0.3, minimum=0.0, maximum=0.95)
    batch_norm: bool = option(True)
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    steps_per_execution: int = option(1, minimum=1, help="train steps per tf.function call")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=2, train_examples=8000),
}
DEFAULT_PRESET = "seed"
