"""The private TensorFlow/Keras names in `keras_labs.compat` still exist and still do what the
suite relies on: a release that renames one fails here, naming the entry."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.data.ops import multi_device_iterator_ops

from keras_labs import compat, training
from keras_labs.data import loading


def test_every_private_name_compat_uses_exists():
    missing = compat.check()
    assert not missing, ("keras_labs.compat relies on names this TensorFlow/Keras lacks "
                         f"(checked with {compat.CHECKED_WITH}): {'; '.join(missing)}")


def test_the_device_dataset_wrapper_is_in_place_and_untunes():
    assert compat.untune_device_datasets(loading.untuned), (
        "multi_device_iterator_ops._create_device_dataset is gone: compat.untune_device_datasets")
    wrapped = multi_device_iterator_ops._create_device_dataset
    assert getattr(wrapped, "_keras_labs_untuned", False)
    assert compat.untune_device_datasets(loading.untuned)  # a second call wraps nothing more
    assert multi_device_iterator_ops._create_device_dataset is wrapped


def test_backup_and_restore_still_calls_the_hooks_backup_overrides(tmp_path):
    calls = []

    class Spy(keras.callbacks.BackupAndRestore):
        def _load_model(self):
            calls.append("load")
            return super()._load_model()

        def _save_model(self):
            calls.append("save")
            return super()._save_model()

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, verbose=0,
              callbacks=[Spy(str(tmp_path / "backup"))])
    assert calls == ["load", "save"], (
        f"BackupAndRestore no longer calls {compat.BACKUP_HOOKS} as training.Backup expects: "
        f"{calls}")
    assert {name for name in compat.BACKUP_HOOKS} <= set(vars(training.Backup))


def test_fit_starts_at_the_initial_epoch_compat_sets():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    compat.set_initial_epoch(model, 2)
    history = model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=3, verbose=0)
    assert history.epoch == [2], f"fit ignored model._initial_epoch: ran epochs {history.epoch}"
    compat.set_initial_epoch(model, None)
    assert model.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=2, verbose=0).epoch == [0, 1]


def test_own_layer_calls_keep_only_this_graphs_calls_of_a_shared_layer():
    shared = keras.layers.Dense(3, name="shared")
    first_input, second_input = keras.Input((2,)), keras.Input((2,))
    first = keras.Model(first_input, shared(first_input))
    second = keras.Model(second_input, keras.layers.Dense(1)(shared(second_input)))
    calls = compat.own_layer_calls(second)
    assert [layer.name for layer, _ in calls if layer is shared] == ["shared"]
    node = next(node for layer, node in calls if layer is shared)
    assert node.input_tensors[0] is second_input
    first_calls = [node for layer, node in compat.own_layer_calls(first) if layer is shared]
    assert len(first_calls) == 1 and first_calls[0].input_tensors[0] is first_input
    sequential = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="only")])
    assert "only" in [layer.name for layer, _ in compat.own_layer_calls(sequential)]


def test_fit_builds_its_train_function_through_make_train_function():
    """The cifar-cnn lab's ChunkedExecution overrides this public, undocumented hook."""
    built = []

    class Probe(keras.Model):
        def make_train_function(self, force=False):
            built.append(force)
            return super().make_train_function(force)

    inputs = keras.Input((2,))
    model = Probe(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(tf.zeros((4, 2)), tf.zeros((4, 1)), epochs=1, verbose=0)
    assert built, "keras's fit no longer calls make_train_function"
