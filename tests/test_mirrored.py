"""Every training lab runs under `MirroredStrategy` on two logical CPU devices (tiny data).

mnist-cnn and the GAN's custom `train_step` have their own mirrored tests; this file covers the
other labs with their test modules' tiny configurations, so a lab that builds a model or an
optimizer outside the strategy scope, or feeds a batch the replicas cannot split, fails here.
"""

import dataclasses
import json
import math

import pytest
import tensorflow as tf
import test_autoencoder
import test_char_rnn
import test_cifar_cnn
import test_deconvnet
import test_embeddings
import test_mnist_rnn
import test_transfer
import test_word_rnn

from keras_labs.labs import (
    autoencoder,
    char_rnn,
    cifar_cnn,
    deconvnet,
    embeddings,
    mnist_rnn,
    transfer,
    word_rnn,
)

LABS = {
    "cifar-cnn": (cifar_cnn, test_cifar_cnn.TINY, "test_accuracy"),
    "char-rnn": (char_rnn, test_char_rnn.TINY, "validation_loss"),
    # The `best` preset's GRU: its hand-written gradient under the strategy's replicas.
    "char-rnn-hoisted": (char_rnn, dataclasses.replace(test_char_rnn.TINY,
                                                       implementation="hoisted"),
                         "validation_loss"),
    "word-rnn": (word_rnn, test_word_rnn.TINY, "validation_loss"),
    "mnist-rnn": (mnist_rnn, dataclasses.replace(test_mnist_rnn.TINY, cells=("lstm",),
                                                 hidden_sizes=(4,), compare_cnn=False),
                  "all_meet_report_002"),
    "autoencoder": (autoencoder, test_autoencoder.TINY, "test_accuracy"),
    "deconvnet": (deconvnet, test_deconvnet.TINY, "test_accuracy"),
    "embeddings": (embeddings, test_embeddings.TINY, "trained"),
    "transfer": (transfer, test_transfer.TINY, "scratch"),
}


@pytest.fixture(autouse=True)
def _two_cpus():
    if len(tf.config.list_logical_devices("CPU")) < 2:
        pytest.skip("TensorFlow started before the CPU could be split in two")


# char-rnn and word-rnn: their validation windows are rebatched to split evenly over the
# replicas (text._even_batches); an uneven last batch fails in Keras 3.15's evaluation.
@pytest.mark.parametrize("name", list(LABS))
def test_lab_runs_mirrored_on_two_cpus(name, tmp_path, empty_data_dir):
    lab, tiny, key = LABS[name]
    config = dataclasses.replace(tiny, strategy="mirrored",
                                 export_dir=str(tmp_path / "saved_models")).validate()
    metrics = lab.run(config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "env.json").read_text())
    assert on_disk["strategy"]["replicas"] == 2, on_disk["strategy"]
    found = [k for k in metrics if key in k]
    assert found, f"{name}: no {key!r} in {sorted(metrics)}"
    for value in (metrics[k] for k in found):
        if isinstance(value, float):
            assert math.isfinite(value)
