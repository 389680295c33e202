"""The mnist-rnn lab's name, config and presets (no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option
from keras_labs.models.specs import CELLS

NAME = "mnist-rnn"
DESCRIPTION = ("SimpleRNN/LSTM/GRU x 20/15/10/5 units on MNIST rows (report 002 task 3, part C "
               "vs the CNN): 12-run table")
# None declared, as before the move: the run itself reports an MNIST it cannot load.
DATASETS = ()


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    epochs: int = common.epochs(8, "passes over the training data, every model")
    batch_size: int = common.batch_size(128)
    learning_rate: float = common.learning_rate(1e-2, "peak Adam learning rate (cosine decay to 0)",
                                                maximum=1.0)
    cells: tuple[str, ...] = option(("simple", "lstm", "gru"), help="simple, lstm and/or gru")
    hidden_sizes: tuple[int, ...] = option((20, 15, 10, 5), positive=True)
    clipnorm: float = option(1.0, minimum=0.0, help="gradient norm clip (0: off)")
    unroll: bool = option(True, help="unroll the 28 steps (faster under XLA)")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    test_examples: int = option(0, minimum=0, help="score only the first N test examples (0: all)")
    compare_cnn: bool = option(True, help="part C: also train the mnist-cnn CNN")
    steps_per_execution: int = option(1, minimum=1)

    def check(self) -> None:
        unknown = [cell for cell in self.cells if cell not in CELLS]
        if unknown or not self.cells:
            raise ConfigError(f"cells={self.cells!r} is not valid; choose from "
                              f"{', '.join(CELLS)}")


PRESETS = {
    "seed": Config(steps_per_execution=4),
    "quick": Config(epochs=1, train_examples=4000, test_examples=2000, batch_size=64,
                    unroll=False, steps_per_execution=8),
}
DEFAULT_PRESET = "seed"
