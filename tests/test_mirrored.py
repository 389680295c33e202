"""Every training lab runs under `MirroredStrategy` on two logical CPU devices (tiny data).

mnist-cnn and the GAN's custom `train_step` have their own mirrored tests; this file covers the
other labs with their tiny configurations (`conftest.tiny`), so a lab that builds a model or an
optimizer outside the strategy scope, or feeds a batch the replicas cannot split, fails here.
"""

import dataclasses
import json
import math

import pytest
import tensorflow as tf
from conftest import tiny

from keras_labs import labs

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
# replicas (text._even_batches); an uneven last batch fails in Keras 3.15's evaluation.
@pytest.mark.parametrize("name", list(LABS))
def test_lab_runs_mirrored_on_two_cpus(name, tmp_path, empty_data_dir):
    lab_name, tiny_config, key = LABS[name]
    lab = labs.get(lab_name)
    config = dataclasses.replace(tiny_config, strategy="mirrored",
                                 export_dir=str(tmp_path / "saved_models")).validate()
    metrics = lab.run(config, str(tmp_path / "run"))
    on_disk = json.loads((tmp_path / "run" / "env.json").read_text())
    assert on_disk["strategy"]["replicas"] == 2, on_disk["strategy"]
    found = [k for k in metrics if key in k]
    assert found, f"{name}: no {key!r} in {sorted(metrics)}"
    for value in (metrics[k] for k in found):
        if isinstance(value, float):
            assert math.isfinite(value)
