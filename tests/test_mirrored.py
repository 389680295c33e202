"""Every training lab runs under `MirroredStrategy` on two logical CPU devices (tiny data).

mnist-cnn and the GAN's custom `train_step` have their own mirrored tests; this file covers the
other labs with their tiny configurations (`conftest.tiny`), so a lab that builds a model or an
optimizer outside the strategy scope, or feeds a batch the replicas cannot split, fails here.
`test_two_replicas_train_as_one` checks the arithmetic: two replicas end where one does
(mnist-cnn's network and the hoisted GRU's hand-written gradient).
"""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny

from keras_labs import devices, labs
from keras_labs.data import loading
from keras_labs.models import cnn, language

# case: (lab, tiny config, a metric the run must report)
LABS = {
    "cifar-cnn": ("cifar-cnn", tiny("cifar-cnn"), "test_accuracy"),
    "char-rnn": ("char-rnn", tiny("char-rnn"), "validation_loss"),
    # The `best` preset's GRU: its hand-written gradient under the strategy's replicas.
    "char-rnn-hoisted": ("char-rnn", tiny("char-rnn", implementation="hoisted"),
                         "validation_loss"),
    "word-rnn": ("word-rnn", tiny("word-rnn"), "validation_loss"),
    "mnist-rnn": ("mnist-rnn", tiny("mnist-rnn", cells=("lstm",), hidden_sizes=(4,),
                                    compare_cnn=False), "all_meet_report_002"),
    "autoencoder": ("autoencoder", tiny("autoencoder"), "test_accuracy"),
    "deconvnet": ("deconvnet", tiny("deconvnet"), "test_accuracy"),
    "embeddings": ("embeddings", tiny("embeddings"), "trained"),
    "transfer": ("transfer", tiny("transfer"), "scratch"),
}
# The labs this file leaves out, and why.
NOT_HERE = {
    "mnist-cnn": "test_mnist_cnn.py runs it mirrored",
    "gan": "test_gan.py runs its custom train_step mirrored",
    "adversarial": "it trains only the shared classifier, mnist-cnn's model",
}


def test_every_lab_is_covered_or_excused():
    covered = {lab for lab, _, _ in LABS.values()}
    assert sorted(covered | set(NOT_HERE)) == sorted(labs.names())


@pytest.fixture(autouse=True)
def _two_cpus():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("TensorFlow started before the CPU could be split in two")


# char-rnn and word-rnn: their validation windows are rebatched to split evenly over the
# replicas (language_modeling._even_batches); an uneven last batch fails in Keras 3.15's evaluation.
@pytest.mark.parametrize("name", list(LABS))
def test_lab_runs_mirrored_on_two_cpus(name, tmp_path, empty_data_dir):
    lab_name, tiny_config, key = LABS[name]
    config = dataclasses.replace(tiny_config, strategy="mirrored",
                                 export_dir=str(tmp_path / "saved_models")).validate()
    metrics = labs.run(lab_name, config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "env.json").read_text())
    assert on_disk["strategy"]["replicas"] == 2, on_disk["strategy"]
    found = [k for k in metrics if key in k]
    assert found, f"{name}: no {key!r} in {sorted(metrics)}"
    for value in (metrics[k] for k in found):
        if isinstance(value, float):
            assert math.isfinite(value)


def _train_on(strategy_name: str, build, weights, inputs, targets, loss, steps: int = 4):
    """The weights after `steps` SGD steps of a model from `build` started at `weights`, fed
    the batches of 16 of (inputs, targets) in order, under the named strategy."""
    strategy = devices.make_strategy(strategy_name)
    with strategy.scope():
        model = build()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    batches = tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(16, drop_remainder=True)
    model.fit(batches.take(steps), epochs=1, shuffle=False, verbose=0)
    return strategy.num_replicas_in_sync, model.get_weights()


def _mnist_cnn():
    # No batch norm (its batch statistics are per replica) and no dropout (random draws).
    return cnn.mnist_cnn(filters=(4, 8), dense_units=8, dropout=0.0, batch_norm=False)


def _hoisted_gru():
    return language.build_language_model(20, units=8, num_layers=1, embedding_dim=4,
                                       implementation="hoisted")[0]


# case: (builder, inputs, targets, loss)
_RNG = np.random.default_rng(0)
REPLICA_CASES = {
    "mnist-cnn": (_mnist_cnn, _RNG.random((64, 28, 28, 1), dtype=np.float32),
                  _RNG.integers(0, 10, 64), "sparse_categorical_crossentropy"),
    "hoisted-gru": (_hoisted_gru, _RNG.integers(0, 20, (64, 12)).astype(np.int32),
                    _RNG.integers(0, 20, (64, 12)),
                    keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
}


@pytest.mark.parametrize("name", list(REPLICA_CASES))
def test_two_replicas_train_as_one(name):
    """Same initial weights, same global batches in the same order, plain SGD: each replica's
    gradient of its half batch, averaged over the replicas, is the one replica's gradient of
    the whole batch, so the weights agree after several steps."""
    build, inputs, targets, loss = REPLICA_CASES[name]
    keras.utils.set_random_seed(0)
    initial = build().get_weights()
    one, alone = _train_on("default", build, initial, inputs, targets, loss)
    two, mirrored = _train_on("mirrored", build, initial, inputs, targets, loss)
    assert (one, two) == (1, 2)
    moved = max(float(np.abs(after - before).max())
                for after, before in zip(alone, initial, strict=True))
    assert moved > 1e-2, "training hardly moved the weights; the comparison would prove little"
    for index, (got, expected) in enumerate(zip(mirrored, alone, strict=True)):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=f"weight {index}")



def test_a_mirrored_fit_creates_no_autotuned_iterator(monkeypatch):
    """Every tf.data iterator that a mirrored `fit` and `evaluate` create, TensorFlow's own
    per-device ones included, has autotuning off (`loading.untuned` says why)."""
    from tensorflow.python.data.ops import iterator_ops

    created = []
    original = iterator_ops.OwnedIterator._create_iterator

    def record(self, dataset):
        created.append(dataset.options().autotune.enabled)
        return original(self, dataset)

    monkeypatch.setattr(iterator_ops.OwnedIterator, "_create_iterator", record)
    build, inputs, targets, loss = REPLICA_CASES["mnist-cnn"]
    strategy = devices.make_strategy("mirrored")
    with strategy.scope():
        model = build()
        model.compile(optimizer="sgd", loss=loss)
    batches = loading.untuned(tf.data.Dataset.from_tensor_slices((inputs, targets)).batch(16))
    model.fit(batches, epochs=1, verbose=0)
    model.evaluate(batches, verbose=0)
    assert len(created) >= 4, created  # two replicas' iterators, for fit and for evaluate
    assert created == [False] * len(created), created
