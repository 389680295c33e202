"""What the suite knows about each dataset beyond its tfds catalog entry: original files,
full split sizes, embedded sample. Shared by loading and preparation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from keras_labs import ConfigError

SAMPLES_DIR = Path(__file__).parent.parent / "samples"
SIDECAR = "keras_labs.json"

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_RECORD_BYTES = 3073
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILES = ("test_batch.bin",)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the suite knows about a dataset beyond its tfds catalog entry."""

    name: str
    files: tuple[str, ...]  # original file names, as tfds downloads them
    full_sizes: dict[str, int]  # examples per split in the complete dataset
    sample: str | None = None  # file in keras_labs/samples/
    homepage: str = ""


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist", MNIST_FILES, {"train": 60000, "test": 10000}, "mnist.npz",
                    "http://yann.lecun.com/exdb/mnist/"),
        DatasetSpec("fashion_mnist", MNIST_FILES, {"train": 60000, "test": 10000}, None,
                    "https://github.com/zalandoresearch/fashion-mnist"),
        DatasetSpec("cifar10", ("cifar-10-binary.tar.gz",), {"train": 50000, "test": 10000},
                    "cifar10.npz", "https://www.cs.toronto.edu/~kriz/cifar.html"),
        DatasetSpec("svhn_cropped", ("train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"),
                    {"train": 73257, "test": 26032, "extra": 531131}, None,
                    "http://ufldl.stanford.edu/housenumbers/"),
        DatasetSpec("tiny_shakespeare", ("input.txt",),
                    {"train": 1, "validation": 1, "test": 1}, "tiny_shakespeare.txt.gz",
                    "https://github.com/karpathy/char-rnn"),
    )
}


def check_name(name: str) -> DatasetSpec:
    """The spec of dataset `name` (no TensorFlow needed: `data prepare` checks names first).

    Raises:
        ConfigError: Not one of `DATASETS` (the message lists them).
    """
    if name not in DATASETS:
        raise ConfigError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return DATASETS[name]
