"""`chunked.ChunkedExecution` trains exactly as Keras's own multi-step loop does, and
`devices.use_threads` sizes TensorFlow's thread pools before its runtime starts."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_labs import devices
from keras_labs.labs.cifar_cnn.chunked import ChunkedExecution
from keras_labs.training import as_elements

BATCH = 4


def _model(chunked: bool, steps_per_execution: int, jit_compile: bool = False) -> keras.Model:
    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    if not jit_compile:  # random draws in the step too (Keras runs Dropout without XLA)
        x = keras.layers.Dropout(0.25)(x)
    outputs = keras.layers.Dense(3)(x)
    model = keras.Model(inputs, outputs, name="net")
    if chunked:
        model = ChunkedExecution(model.input, model.output, name=model.name)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  steps_per_execution=steps_per_execution, jit_compile=jit_compile)
    return model


def _stream() -> tf.data.Dataset:
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 8, 8, 3)).astype("float32")
    labels = rng.integers(0, 3, 40)
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(BATCH).repeat()


def _train(model: keras.Model, steps_per_epoch: int, epochs: int = 3):
    stream = as_elements(_stream(), model)
    history = model.fit(stream, steps_per_epoch=steps_per_epoch, epochs=epochs, verbose=0,
                        shuffle=False)
    return model.get_weights(), history.history, int(model.optimizer.iterations)


# 7 batches per epoch in executions of 5: Keras runs whole executions (10 batches an epoch)
@pytest.mark.parametrize("steps_per_execution,steps_per_epoch", [(5, 7), (5, 10), (2, 3)])
def test_chunked_execution_takes_the_steps_of_keras_loop(steps_per_execution, steps_per_epoch):
    reference = _train(_model(False, steps_per_execution), steps_per_epoch)
    chunked = _train(_model(True, steps_per_execution), steps_per_epoch)
    assert chunked[2] == reference[2] == 3 * -(-steps_per_epoch // steps_per_execution) \
        * steps_per_execution
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(chunked[1][key], reference[1][key], rtol=1e-6)
    for ours, theirs in zip(chunked[0], reference[0], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(reference[0][0], _model(False, 1).get_weights()[0])  # it trained


@pytest.fixture
def without_op_determinism():
    """Keras turns XLA off while op determinism is on, which an earlier deterministic run in
    this process may have left on."""
    from tensorflow.python.framework import config as tf_config

    was_on = tf_config.is_op_determinism_enabled()
    tf_config.disable_op_determinism()
    yield
    if was_on:
        tf_config.enable_op_determinism()


def test_chunked_execution_compiles_its_step_with_xla(without_op_determinism):
    reference = _train(_model(False, 5, jit_compile=True), 5, epochs=1)
    model = _model(True, 5, jit_compile=True)
    chunked = _train(model, 5, epochs=1)
    assert model.jit_compile  # Keras kept XLA on (it turns it off for layers without support)
    assert chunked[2] == reference[2] == 5
    np.testing.assert_allclose(chunked[1]["loss"], reference[1]["loss"], rtol=1e-5)


def test_one_step_per_execution_is_keras_loop():
    model = _model(True, 1)
    assert model.batches_per_element == 1
    weights, history, iterations = _train(model, 4, epochs=1)
    assert iterations == 4 and np.isfinite(history["loss"][0])


def test_the_stream_of_a_chunked_model_comes_in_elements_of_its_executions(tmp_path):
    from keras_labs import training

    backup = training.Backup(type("Run", (), {"backup_dir": tmp_path})())  # what it reads of one
    model = _model(True, 5)
    one_epoch = _stream().take(7)
    stream, steps = backup.stream(one_epoch, model)
    assert steps == 7
    assert stream.element_spec[0].shape.as_list() == [5, None, 8, 8, 3]
    plain, _ = backup.stream(one_epoch, _model(False, 5))
    assert plain.element_spec[0].shape.as_list() == [None, 8, 8, 3]


def test_a_run_sizes_both_pools_before_the_runtime_starts_and_records_them(tmp_path):
    # a fresh process, as `keras-labs run` is: `training.start` is the first thing a lab does;
    # tutorial leaves threads to the runner, which picks one per pool for batch 4
    script = (
        "import json, sys; from keras_labs import training; "
        "from keras_labs.labs.cifar_cnn.config import PRESETS; "
        "config = PRESETS['tutorial']; assert config.threads == 0 and config.batch_size == 4; "
        "run, _ = training.start('cifar-cnn', config, sys.argv[1]); import tensorflow as tf; "
        "print(json.dumps([tf.config.threading.get_intra_op_parallelism_threads(), "
        "tf.config.threading.get_inter_op_parallelism_threads()]))")
    result = subprocess.run([sys.executable, "-c", script, str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [1, 1]
    env = json.loads((tmp_path / "run" / "env.json").read_text())
    assert env["strategy"]["threads"] == {"intra_op": 1, "inter_op": 1}
    assert "not applied" not in result.stdout


def test_use_threads_in_a_started_runtime_says_so_and_keeps_the_pools(capsys):
    tf.constant(1.0) + 1.0  # the suite's runtime is up
    before = tf.config.threading.get_intra_op_parallelism_threads()
    wanted = before + 3
    devices.use_threads(wanted)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before
    assert f"threads={wanted} not applied" in capsys.readouterr().out
    devices.use_threads(0)  # the default asks for nothing
    assert capsys.readouterr().out == ""
