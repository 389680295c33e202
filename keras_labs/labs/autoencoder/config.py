"""The autoencoder lab's name, config and presets (no TensorFlow)."""

from __future__ import annotations

import dataclasses

from keras_labs import ConfigError
from keras_labs.config import LabConfig, common, option

NAME = "autoencoder"
DESCRIPTION = ("conv autoencoder + classifier, loss = recon + w * class (reports 003 q2, 004 "
               "tasks 2-3): PSNR/SSIM, z1/z2 channel grids, w sweep")
# None declared, as before the move: `dataset` chooses it, and the run reports one it cannot load.
DATASETS = ()


@dataclasses.dataclass(frozen=True)
class Config(LabConfig):
    dataset: str = option("cifar10", choices=("cifar10", "mnist"))
    epochs: int = common.epochs(10, "passes over the training data (report 003: 10)")
    batch_size: int = common.batch_size(32)
    learning_rate: float = common.learning_rate(1e-3)
    w: float = option(0.1, minimum=0.0, help="weight of the classification loss (report 003: 0.1)")
    w_sweep: tuple[float, ...] = option((), minimum=0.0,
                                        help="also train one model per w and plot accuracy vs PSNR")
    channels: tuple[int, ...] = option((6, 16), positive=True,
                                       help="channels of z1 and z2 (report 004: 6, 16)")
    kernel_size: int = option(5, minimum=1, maximum=11)
    head_units: tuple[int, ...] = option((120, 84), positive=True,
                                         help="dense layers of the classifier")
    group_size: int = option(3, minimum=1, help="z2 channels kept together in the channel grid")
    train_examples: int = common.examples()
    validation_fraction: float = common.validation_fraction()
    equal_updates_examples: int = option(
        0, minimum=0, help="train for the gradient steps of `epochs` epochs over this many images "
                           "(a report's training set) when ours is smaller (0: off)")
    grid_images: int = option(8, minimum=1, maximum=32,
                              help="test images in the reconstruction grid")

    def check(self) -> None:
        if len(self.channels) != 2:
            raise ConfigError(f"channels={self.channels!r} is not valid; the lab's encoder has "
                              "exactly two stages (z1, z2)")
        if self.group_size > self.channels[1]:
            raise ConfigError(f"group_size={self.group_size!r} is not valid; z2 has "
                              f"{self.channels[1]} channels")


PRESETS = {
    "seed": Config(),
    "quick": Config(epochs=2, train_examples=2000),
    "w-sweep": Config(w_sweep=(0.0, 0.1, 1.0, 10.0)),
    # report 004 trained on CIFAR-10's 50,000 images; ours is the partial copy
    "seed-equal-updates": Config(equal_updates_examples=50000),
}
DEFAULT_PRESET = "seed"
