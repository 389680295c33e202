"""char-rnn: a tiny run end to end, generation from every kind of prime, the exported generator."""

import dataclasses
import json
import math
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny, tiny_run_fixture

from keras_labs import ConfigError, labs, language_modeling
from keras_labs.data import loading
from keras_labs.data import text as text_data
from keras_labs.labs.char_rnn import config as lab_config
from keras_labs.labs.char_rnn import experiment
from keras_labs.language_modeling import SEED_PRIMES
from keras_labs.models import language

TINY = tiny("char-rnn")
LONG_PRIME = ("Shall I compare thee to a summer's day? " * 260)[:10000]


tiny_run = tiny_run_fixture("char-rnn")


@pytest.fixture(scope="module")
def untrained_generator():
    vocabulary = text_data.Vocabulary.from_text(loading.sample_text()[:50000])
    _, step_model, state_sizes = language.build_language_model(
        len(vocabulary), cell="lstm", units=12, num_layers=2, embedding_dim=6)
    return language_modeling.TextGenerator(step_model, state_sizes, vocabulary, level="char",
                                           seed=1)


def test_run_writes_metrics_curves_and_samples(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for key in ("validation_loss", "perplexity", "bits_per_char", "validation_loss_windowed"):
        assert math.isfinite(on_disk[key]), key
    assert on_disk["perplexity"] == pytest.approx(math.exp(on_disk["validation_loss"]))
    assert on_disk["bits_per_char"] == pytest.approx(on_disk["validation_loss"] / math.log(2))
    assert on_disk["validation_characters"] == 3000 and on_disk["steps"] == 6
    # nanoGPT's split: validation and test together, each weighted by its characters
    validation, test = on_disk["validation_loss"], on_disk["test_loss"]
    assert min(validation, test) <= on_disk["last_tenth_loss"] <= max(validation, test)
    assert on_disk["last_tenth_loss"] == pytest.approx(
        (validation * 3000 + test * on_disk["test_characters"])
        / (3000 + on_disk["test_characters"]))
    assert (workdir / "plots" / "curves.png").stat().st_size > 0
    assert list((workdir / "tb").rglob("events.out.tfevents*"))
    header = (workdir / "history.csv").read_text().splitlines()[0]
    assert {"loss", "val_loss", "val_perplexity", "val_bits_per_char"} <= set(header.split(","))
    samples = (workdir / "samples.txt").read_text()
    for prime in SEED_PRIMES:
        assert f"=== prime {prime!r}" in samples and f"\n{prime}" in samples, prime
    records = {record["prime"]: record for record in metrics["samples"]}
    # The vocabulary is the training text's: here only its first 20,000 characters.
    assert {"0", "8", "7"} <= set(records["X087hNYB BHN BYFVuhsdbs"]["unknown"])
    assert "2" in records["2 b3n"]["unknown"] and records["The"]["unknown"] == []
    assert "'0', '8', '7'" in samples


def test_every_prime_generates(untrained_generator):
    for prime in (*SEED_PRIMES, "", LONG_PRIME):
        generated, unknown = language_modeling.sample(untrained_generator, prime, 30,
                                                      temperature=0.8, top_k=5)
        assert generated.startswith(prime)
        assert len(generated) == len(prime) + 30, prime[:20]
        assert "\N{REPLACEMENT CHARACTER}" not in generated[len(prime):]  # never samples OOV
    assert language_modeling.sample(untrained_generator, "", 10)[1] == []


def test_unknown_characters_are_reported_in_order(untrained_generator):
    _, unknown = language_modeling.sample(untrained_generator, "a9b0c9\u00e9", 5)
    assert unknown == ["9", "0", "\u00e9"]


def test_top_k_one_is_greedy_and_repeatable(untrained_generator):
    first = language_modeling.sample(untrained_generator, "ROMEO:", 40, temperature=1.0,
                                     top_k=1)[0]
    second = language_modeling.sample(untrained_generator, "ROMEO:", 40, temperature=1.0,
                                      top_k=1)[0]
    assert first == second


def test_stateful_loss_carries_state_across_chunks():
    vocabulary = text_data.Vocabulary(list("abc\n"))
    _, step_model, state_sizes = language.build_language_model(len(vocabulary), units=8,
                                                               num_layers=2, embedding_dim=4)
    ids = np.random.default_rng(0).integers(1, len(vocabulary), 203).astype(np.int32)
    whole, count = language_modeling.stateful_loss(step_model, state_sizes, ids, start_id=4,
                                                   streams=1, chunk=1000)
    chunked, _ = language_modeling.stateful_loss(step_model, state_sizes, ids, start_id=4,
                                                 streams=1, chunk=7)
    assert count == 203
    assert chunked == pytest.approx(whole, rel=1e-5)
    # Without the carried state the score would differ: the pieces restart from zero.
    parallel, count = language_modeling.stateful_loss(step_model, state_sizes, ids, start_id=4,
                                                      streams=4)
    assert count == 203 and parallel != pytest.approx(whole, rel=1e-7)


def test_exported_generator_works_in_a_fresh_process(tiny_run):
    _, metrics = tiny_run
    script = (
        "import sys, tensorflow as tf\n"
        "model = tf.saved_model.load(sys.argv[1])\n"
        "serve = model.signatures['serving_default']\n"
        "out = serve(prime=tf.constant('bg09Z'), length=tf.constant(40),"
        " temperature=tf.constant(0.7))\n"
        "text = out['text'].numpy().decode()\n"
        "assert text.startswith('bg09Z') and len(text) == 45, text\n"
        "assert {'0', '9'} <= {u.decode() for u in out['unknown'].numpy()}\n"
        "long = model.generate(tf.constant('x' * 10000), tf.constant(5), tf.constant(1.0),"
        " tf.constant(3))\n"
        "assert len(long['text'].numpy().decode()) == 10005\n"
        "print('OK', text)\n")
    result = subprocess.run([sys.executable, "-c", script, metrics["export"]],
                            capture_output=True, text=True, timeout=120,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("OK bg09Z")


def test_config_rejects_inconsistent_schedules():
    with pytest.raises(ConfigError, match="log_every=300"):
        dataclasses.replace(TINY, steps=100, log_every=300).validate()
    with pytest.raises(ConfigError, match="steps_per_execution=3"):
        dataclasses.replace(TINY, log_every=4).validate()
    with pytest.raises(ConfigError, match="'rnn'"):
        dataclasses.replace(TINY, cell="rnn").validate()


def test_presets_validate():
    for config in lab_config.PRESETS.values():
        config.validate()
    seed = lab_config.PRESETS["seed"]
    assert (seed.steps, seed.log_every, seed.units, seed.num_layers) == (2000, 100, 100, 2)


def test_bfloat16_model_keeps_float32_logits_and_states():
    model, step_model, sizes = language.build_language_model(10, units=8, num_layers=1,
                                                             compute_dtype="bfloat16")
    logits, state = step_model([tf.ones((2, 3), tf.int32), tf.zeros((2, 8))])
    assert logits.dtype == tf.float32 and state.dtype == tf.float32
    assert model(tf.ones((1, 4), tf.int32)).shape == (1, 4, 10)


def test_training_windows_are_text_windows_shuffled_together():
    ids = np.arange(1, 400, dtype=np.int32)
    reference = {tuple(x) for x, _ in text_data.text_windows(
        ids, sequence_length=10, batch_size=64, training=False,
        stride=3).unbatch().as_numpy_iterator()}
    batches = text_data.training_windows(ids, sequence_length=10, batch_size=len(reference),
                                         stride=3)
    inputs, targets = next(iter(batches))
    assert {tuple(x) for x in inputs.numpy()} == reference  # one pass holds every window once
    np.testing.assert_array_equal(inputs.numpy()[:, 1:], targets.numpy()[:, :-1])
    first = inputs.numpy()[:, 0]
    assert not np.all(np.diff(first) > 0)  # not in text order
    with pytest.raises(ConfigError, match="sequence_length=500"):
        text_data.training_windows(ids, sequence_length=500, batch_size=2, stride=1)


# (time steps, batch, units, with an initial state): short, and the `best` preset's length.
@pytest.mark.parametrize("time_steps,batch,units,with_initial", [
    (7, 3, 4, True), (100, 4, 16, True), (100, 4, 16, False)])
def test_hoisted_gru_computes_what_keras_gru_computes(time_steps, batch, units, with_initial):
    rng = np.random.default_rng(time_steps + with_initial)
    inputs = tf.constant(rng.random((batch, time_steps, 5), dtype=np.float32))
    initial = tf.constant(rng.random((batch, units), dtype=np.float32))
    reference = keras.layers.GRU(units, return_sequences=True, return_state=True)
    reference.build(inputs.shape)
    # Non-zero biases, so both halves of the bias take part in the comparison.
    reference.set_weights([*reference.get_weights()[:2],
                           rng.normal(0, 0.1, (2, 3 * units)).astype(np.float32)])
    hoisted = language.HoistedGRU(units)
    hoisted.build(inputs.shape)
    hoisted.set_weights(reference.get_weights())  # same shapes, same gate order
    state_argument = {"initial_state": [initial]} if with_initial else {}
    expected_sequence, expected_state = reference(inputs, **state_argument)
    sequence, state = hoisted(inputs, **state_argument)
    np.testing.assert_allclose(sequence, expected_sequence, atol=1e-6)
    np.testing.assert_allclose(state, expected_state, atol=1e-6)
    # The hand-written gradient (gru_recurrence) against TensorFlow's own through Keras's GRU,
    # for the weights, the inputs and the initial state (when there is one).
    weights = rng.random((batch, time_steps, units), dtype=np.float32)
    watched = [inputs, initial] if with_initial else [inputs]
    gradients = {}
    for name, layer in (("keras", reference), ("hoisted", hoisted)):
        with tf.GradientTape() as tape:
            tape.watch(watched)
            loss = tf.reduce_sum(layer(inputs, **state_argument)[0] * weights)
        gradients[name] = tape.gradient(loss, [*layer.trainable_weights, *watched])
    for expected, got in zip(gradients["keras"], gradients["hoisted"], strict=True):
        scale = float(tf.reduce_max(tf.abs(expected)))
        assert scale > 0
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale)


def test_hoisted_run_trains_and_exports_a_generator(tmp_path):
    config = dataclasses.replace(TINY, implementation="hoisted",
                                 export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    assert math.isfinite(metrics["validation_loss"])
    generator = tf.saved_model.load(metrics["export"])
    generated, unknown = language_modeling.sample(generator, "Shall I give", 15, 0.8, 5)
    assert generated.startswith("Shall I give") and len(generated) == len("Shall I give") + 15
    with pytest.raises(ConfigError, match="implementation='hoisted' is a GRU"):
        dataclasses.replace(TINY, implementation="hoisted", cell="lstm").validate()


def test_the_test_split_is_scored_once_both_ways(tiny_run):
    workdir, metrics = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for key in ("test_loss", "test_loss_windowed", "test_bits_per_char"):
        assert 0.5 < on_disk[key] < 10, (key, on_disk[key])
    assert on_disk["test_bits_per_char"] == pytest.approx(on_disk["test_loss"] / np.log(2))
    _, source = loading.load_text("tiny_shakespeare", ("test",), data="sample")
    assert on_disk["test_characters"] == source.splits["test"]
    # Scored on its own text, not a copy of the validation figures.
    assert on_disk["test_loss"] != on_disk["validation_loss"]


def test_curve_and_last_loss_are_the_logged_intervals(tiny_run):
    workdir, metrics = tiny_run
    header, *rows = (workdir / "history.csv").read_text().splitlines()
    logged = [dict(zip(header.split(","), row.split(","), strict=True)) for row in rows]
    # 6 steps logged every 3: two points, each the interval's mean training loss and the
    # windowed validation loss after it.
    assert [point["step"] for point in metrics["curve"]] == [3, 6]
    for point, row in zip(metrics["curve"], logged, strict=True):
        assert point["train_loss"] == pytest.approx(float(row["loss"]), abs=1e-4)
        assert point["validation_loss_windowed"] == pytest.approx(float(row["val_loss"]), abs=1e-4)
        assert point["validation_perplexity"] == pytest.approx(math.exp(float(row["val_loss"])),
                                                               rel=1e-3)
    assert metrics["train_loss"] == pytest.approx(float(logged[-1]["loss"]))
    assert metrics["every_seed_prime_sampled"] is True
    assert not experiment.every_prime_sampled(metrics["samples"][:-1], SEED_PRIMES)
    items = {item.item: item for item in labs.seed_items(lab_config.NAME).items}
    assert items["001-ex4-loss"].seed == 1.3524 and items["001-ex4-loss"].metric == "train_loss"
    assert lab_config.PRESETS[items["001-ex4-loss"].preset].log_every == 100


@pytest.mark.parametrize("implementation", ["keras", "hoisted"])
def test_a_bfloat16_language_model_trains_with_float32_weights(implementation):
    """compute_dtype=bfloat16 runs the recurrence in bfloat16 and keeps the weights and the
    logits float32, for both implementations; TensorBoard's probe reads the hoisted GRU's
    gates from float32 inputs (it once fed its einsum those and a bfloat16 kernel, which oneDNN
    refuses, so every bfloat16 run of it failed at its first probe)."""
    model, step_model, _ = language.build_language_model(
        12, units=8, num_layers=2, embedding_dim=4, compute_dtype="bfloat16",
        implementation=implementation)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.random.default_rng(0).integers(0, 12, size=(4, 6)).astype("int32")
    loss = model.train_on_batch(ids, ids)
    assert np.isfinite(loss)
    assert model(ids).dtype == "float32"
    assert {weight.dtype for weight in model.weights} == {"float32"}
    recurrent = model.get_layer("gru1")
    assert recurrent.compute_dtype == "bfloat16"
    if implementation == "hoisted":
        sequences = recurrent.state_sequences(tf.zeros((2, 3, 4), "float32"))
        assert sequences["hidden_states"].shape == (2, 3, 8)
