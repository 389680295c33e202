"""Data layer: prepare tfds datasets offline, list them, load them, and build input pipelines.

* `specs`: what the suite knows about each dataset (original files, sizes, embedded sample).
* `loading`: data dirs and status, `load`/`load_text`, the embedded samples, image pipelines.
* `preparation`: validating readers, our tfds builders and `prepare` (`keras-labs data prepare`).
* `text`: tokenization, `Vocabulary` and the language labs' (input, target) windows.

Only `specs` is imported with the package: `loading` and `text` load TensorFlow, and `preparation`
also tfds's builder classes, so their names are imported on first use (`keras-labs list` and
config errors stay fast; every `keras-labs run` skips a step only `data prepare` takes).
"""

from __future__ import annotations

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
    check_name,
)
from keras_labs.lazy import lazy_attributes

_PREPARATION = ("prepare", "read_idx", "read_mnist_dir", "read_cifar_batch", "read_cifar_dir",
                "safe_extract_cifar", "LocalMnist", "LocalFashionMnist", "LocalCifar10",
                "LocalTinyShakespeare")

__all__ = [
    "CIFAR10_CLASSES", "CIFAR_RECORD_BYTES", "CIFAR_TEST_FILES", "CIFAR_TRAIN_FILES", "DATASETS",
    "MNIST_FILES", "NEWLINE", "PUNCTUATION", "SAMPLES_DIR", "SIDECAR", "DataSource",
    "DatasetSpec", "HeldOutInputs", "Vocabulary", "check_name", "class_names", "class_subset", "dataset_status",
    "detokenize_words", "evaluation_pipeline", "first", "held_out_inputs", "image_pipeline", "train_and_test", "is_prepared", "list_datasets", "load",
    "load_text", "load_uci_digits", "probe_batch", "require", "resolve_data_dir", "sample_text",
    "split_shakespeare", "split_tokens", "split_validation", "text_windows", "to_numpy", "tokenize_words",
    "training_windows", "untuned", *_PREPARATION,
]

__getattr__, __dir__ = lazy_attributes(__name__, {
    "loading": ("DataSource", "HeldOutInputs", "class_names", "class_subset", "dataset_status", "evaluation_pipeline", "first",
                "held_out_inputs", "image_pipeline", "is_prepared", "list_datasets", "load", "load_text",
                "load_uci_digits", "probe_batch", "require", "resolve_data_dir", "sample_text",
                "split_shakespeare", "split_validation", "to_numpy", "train_and_test", "untuned"),
    "text": ("NEWLINE", "PUNCTUATION", "Vocabulary", "detokenize_words", "split_tokens",
             "text_windows", "tokenize_words", "training_windows"),
    "preparation": _PREPARATION,
})
