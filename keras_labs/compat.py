"""Every private TensorFlow and Keras name the suite relies on, in one place.

Each entry says what it reaches for, the public alternative that was tried and why it does not
do, the versions it was checked against, and the upstream issue it works around (or a short
reproduction where there is none). `tests/test_compat.py` fails with a clear message, naming
the entry, when a release renames or removes what an entry uses.

Checked against TensorFlow 2.21.0 and Keras 3.15.1 (`CHECKED_WITH`).

Not here, because they patch no framework name: `cli._import_tensorflow` points file
descriptor 2 at a scratch file while TensorFlow is imported (its C++ start-up lines are written
before absl reads `TF_CPP_MIN_LOG_LEVEL`, so no public setting hides them), and the cifar-cnn
lab's `ChunkedExecution` overrides `make_train_function`, a public, overridable method of
Keras's TensorFlow trainer (`tests/test_compat.py` still checks that `fit` calls it).
"""

from __future__ import annotations

import keras
from tensorflow.python.data.ops import multi_device_iterator_ops

CHECKED_WITH = {"tensorflow": "2.21.0", "keras": "3.15.1"}


# --------------------------------------------------------------------------------------------
# tf.data: the per-device datasets of a distributed dataset.


def untune_device_datasets(untuned) -> bool:
    """Makes TensorFlow's `MultiDeviceIterator` build its per-device datasets through `untuned`.

    What: a mirrored or multi-worker strategy's distributed dataset reads from per-device
    datasets that `multi_device_iterator_ops._create_device_dataset` builds with default
    options, so tf.data's autotuning runs on them whatever the input pipeline says. This wraps
    that private function for the whole process.

    Why: a freed autotuned iterator can stop the process for up to a minute (see
    `data.loading.untuned`): `CancellationManager::StartCancelWithStatus` sets `is_cancelled_`
    only after running the callbacks, so `Model::OptimizeLoop`'s thread, woken by its cancel
    callback, can see "not cancelled" and sleep out its optimization period (up to 60 s) while
    the iterator's destructor, holding the GIL, waits for it. No upstream issue was found.
    Reproduction: under `tf.distribute.MirroredStrategy` over two logical CPUs, with the other
    core busy, `fit` and `evaluate` a tiny model on a distributed dataset 20 times in one
    process and drop the iterators; some drops take 20-200 s of wall time for ~0 s of CPU.

    Public alternative tried: `tf.data.Options` on the input pipeline (`autotune.enabled =
    False`) reaches the pipeline, not the per-device datasets TensorFlow builds from it; the
    strategy's `InputOptions` have no autotune setting.

    Args:
        untuned: `dataset -> dataset` with autotuning off (`data.loading.untuned`).

    Returns:
        True when the wrapper is in place, False when TensorFlow no longer has the function.
    """
    original = getattr(multi_device_iterator_ops, "_create_device_dataset", None)
    if original is None:
        return False
    if getattr(original, "_keras_labs_untuned", False):
        return True

    def create_device_dataset(*args, **kwargs):
        return untuned(original(*args, **kwargs))

    create_device_dataset._keras_labs_untuned = True
    multi_device_iterator_ops._create_device_dataset = create_device_dataset
    return True


# --------------------------------------------------------------------------------------------
# Keras's BackupAndRestore: the hooks `training.Backup` overrides, and where `fit` resumes.

# `keras.callbacks.BackupAndRestore` calls these from `on_train_begin` and `on_epoch_end`; a
# subclass overrides them to choose what a backup holds. They are private: the public
# callback saves `.weights.h5` (model and optimizer) and the epoch, but not the layers' seed
# generator states (dropout draws; keras-team/keras#19796) or the epoch logs, so a resumed run
# would not end with an uninterrupted run's metrics. Overriding `on_epoch_end` alone was tried:
# the public callback then writes its own files beside ours, and its `on_train_begin` still
# loads the weights without the seed states.
BACKUP_HOOKS = ("_load_model", "_save_model")


def set_initial_epoch(model: keras.Model, epoch: int | None) -> None:
    """Makes the next `fit` of `model` start at `epoch` (None: at its `initial_epoch` argument).

    Keras 3's TensorFlow trainer reads the private `model._initial_epoch`, set by
    `BackupAndRestore` when it restores a backup, in place of `fit`'s `initial_epoch`. Without
    it a restored fit trains every epoch again (keras-team/keras#19179). The public alternative,
    passing `initial_epoch=` to `fit`, needs the restored epoch before `fit` starts, but the
    callback restores inside `fit` (`on_train_begin`).
    """
    model._initial_epoch = epoch


# --------------------------------------------------------------------------------------------
# Keras's functional graph: the calls a model makes.


def own_layer_calls(model: keras.Model) -> list:
    """(layer, node) for every layer call of `model`'s own graph, in the model's layer order.

    A layer shared with another model (the language labs' step model, the autoencoder's
    decoders) has a node per call; only the calls of this graph are kept. A subclassed model
    has no graph: [].

    It reads the private `Functional._nodes_by_depth` (the nodes of this graph), a Sequential's
    `_functional` (the graph it wraps) and `Layer._inbound_nodes` (every call of a layer). The
    public alternative, `model.get_layer(name).output`, gives a layer's first call only, which
    is another model's for a shared layer, and a layer's `input`/`output` raise for a layer
    called more than once. No upstream issue asks for a public node API.
    """
    graph = getattr(model, "_functional", None) or model  # a Sequential wraps a functional
    depths = getattr(graph, "_nodes_by_depth", None)
    if not depths:
        return []
    own = {id(node) for nodes in depths.values() for node in nodes}
    return [(layer, node) for layer in graph.layers for node in layer._inbound_nodes
            if id(node) in own]


def check() -> list[str]:
    """What this TensorFlow and Keras lack of what the entries above use (empty: all there)."""
    missing = []
    if not callable(getattr(multi_device_iterator_ops, "_create_device_dataset", None)):
        missing.append("tensorflow.python.data.ops.multi_device_iterator_ops."
                       "_create_device_dataset (untune_device_datasets)")
    for hook in BACKUP_HOOKS:
        if not callable(getattr(keras.callbacks.BackupAndRestore, hook, None)):
            missing.append(f"keras.callbacks.BackupAndRestore.{hook} (BACKUP_HOOKS)")
    inputs = keras.Input((1,))
    probe = keras.Model(inputs, keras.layers.Dense(1)(inputs))
    if not isinstance(getattr(probe, "_nodes_by_depth", None), dict):
        missing.append("keras Functional._nodes_by_depth (own_layer_calls)")
    if not all(hasattr(layer, "_inbound_nodes") for layer in probe.layers):
        missing.append("keras Layer._inbound_nodes (own_layer_calls)")
    return missing
