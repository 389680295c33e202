"""The deconvnet lab's name, config and presets: the CNN it trains and the projections it draws
(no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option

NAME = "deconvnet"
DESCRIPTION = ("Zeiler-Fergus deconvnet on a CIFAR-10 CNN (report 002, task 2): projections of "
               "conv blocks 1-2, strongest maps, top-9 grids")


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    """The classifier the deconvnet looks into, how it trains, and the projections drawn.

    The network has one conv block (convolution, ReLU, max pool) per entry of `filters`; the
    projections use the first two.
    """

    # The network and its training.
    dataset: str = option("cifar10", choices=("cifar10", "mnist"))
    epochs: int = common.epochs(8)
    batch_size: int = common.batch_size(64)
    learning_rate: float = common.learning_rate(1e-3)
    filters: tuple[int, ...] = option((32, 64), positive=True,
                                      help="conv widths, one per block (conv, relu, max pool)")
    dense_units: int = option(256, minimum=1)
    dropout: float = option(0.3, minimum=0.0, maximum=0.95)
    batch_norm: bool = option(False, help="batch norm after each conv (folded into the "
                                          "projection's filters)")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    # What is projected, and on which images.
    images: int = option(5, minimum=1, maximum=64, help="test images for the projection grids")
    feature: int = option(-1, minimum=-1, help="feature map of the top-k grids (-1: the one with "
                                               "the largest activation on the searched examples)")
    top_k: int = option(9, minimum=1, maximum=64, help="examples per top-k grid")
    search_examples: int = option(0, minimum=0, help="test examples searched for the top-k grids "
                                                     "(0: the whole test split)")

    def check(self) -> None:
        if self.feature >= min(self.filters):
            raise ConfigError(f"feature={self.feature!r} is not valid; the narrowest block has "
                              f"{min(self.filters)} feature maps")


# None declared (as before the move): `dataset` picks CIFAR-10 or MNIST at run time, and the run
# says so when it cannot load the one picked.
DATASETS = ()

PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=1, train_examples=2000, search_examples=500),
}
DEFAULT_PRESET = "seed"
