"""Data layer: prepare tfds datasets offline, list them, load them, and build input pipelines.

* `specs`: what the suite knows about each dataset (original files, sizes, embedded sample).
* `loading`: data dirs and status, `load`/`load_text`, the embedded samples, image pipelines.
* `preparation`: validating readers, our tfds builders and `prepare` (`keras-labs data prepare`).
* `text`: tokenization, `Vocabulary` and the language labs' (input, target) windows.

The preparation names are imported on first use: loading tfds's builder classes would slow
every `keras-labs run` for a step only `data prepare` takes.
"""

from __future__ import annotations

import importlib

from keras_labs.data.loading import (
    DataSource,
    check_name,
    class_names,
    dataset_status,
    first,
    image_pipeline,
    is_prepared,
    list_datasets,
    load,
    load_text,
    load_uci_digits,
    require,
    resolve_data_dir,
    sample_text,
    split_shakespeare,
    to_numpy,
    train_and_test,
)
from keras_labs.data.specs import (
    CIFAR10_CLASSES,
    CIFAR_RECORD_BYTES,
    CIFAR_TEST_FILES,
    CIFAR_TRAIN_FILES,
    DATASETS,
    MNIST_FILES,
    SAMPLES_DIR,
    SIDECAR,
    DatasetSpec,
)
from keras_labs.data.text import (
    NEWLINE,
    PUNCTUATION,
    Vocabulary,
    detokenize_words,
    split_tokens,
    text_windows,
    tokenize_words,
    training_windows,
)

_PREPARATION = ("prepare", "read_idx", "read_mnist_dir", "read_cifar_batch", "read_cifar_dir",
                "safe_extract_cifar", "LocalMnist", "LocalFashionMnist", "LocalCifar10",
                "LocalTinyShakespeare")

__all__ = [
    "CIFAR10_CLASSES", "CIFAR_RECORD_BYTES", "CIFAR_TEST_FILES", "CIFAR_TRAIN_FILES", "DATASETS",
    "MNIST_FILES", "NEWLINE", "PUNCTUATION", "SAMPLES_DIR", "SIDECAR", "DataSource",
    "DatasetSpec", "Vocabulary", "check_name", "class_names", "dataset_status",
    "detokenize_words", "first", "image_pipeline", "train_and_test", "is_prepared", "list_datasets", "load",
    "load_text", "load_uci_digits", "require", "resolve_data_dir", "sample_text",
    "split_shakespeare", "split_tokens", "text_windows", "to_numpy", "tokenize_words",
    "training_windows", *_PREPARATION,
]


def __getattr__(name: str):
    if name in _PREPARATION:
        value = getattr(importlib.import_module("keras_labs.data.preparation"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PREPARATION})
