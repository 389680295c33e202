"""TensorBoard as the window into every lab: the probes (conv activations and filters, recurrent
hidden states and gates, nested models, the GAN's discriminator), every run's HParams session,
the profile of the batches `profile_batches` names (the Profile tab), and a real `tensorboard`
server over tiny runs, asked through its HTTP data API."""

from __future__ import annotations

import dataclasses
import gzip
import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, read_tags, run_cli, tiny

from keras_labs import ConfigError, instrumentation, labs, runs, training
from keras_labs.config import profile_batch_range
from keras_labs.labs.autoencoder.model import build_autoencoder
from keras_labs.labs.transfer.backbones import transfer_model
from keras_labs.models import cnn, gan, language, rnn
from keras_labs.results import sweeps

# --------------------------------------------------------------------------------------------
# The probes


def test_activation_probe_reaches_into_a_nested_base():
    base_network = cnn.mnist_cnn(input_shape=(32, 32, 3), filters=(4, 8), dense_units=8)
    base = keras.Model(base_network.input, base_network.get_layer("features").output,
                       name="source_features")
    model = transfer_model(base, [], pretrained=True, dropout=0.0, name="transfer")
    names, probe = instrumentation.activation_probe(model)
    assert names == ["source_features/conv1_1", "source_features/conv2_1"]
    images = np.random.default_rng(0).uniform(size=(3, 32, 32, 3)).astype("float32")
    outputs = probe(images)
    # The ReLU after each conv's batch norm, as the base computes it on its own.
    for output, layer in zip(outputs, ("relu1_1", "relu2_1"), strict=True):
        expected = keras.Model(base_network.input, base_network.get_layer(layer).output)(images)
        np.testing.assert_allclose(output, expected, atol=1e-6)
    assert [name for name, _ in instrumentation.conv_layers(model)] == names
    with pytest.raises(ValueError, match="conv9"):
        instrumentation.activation_probe(model, ["conv9"])


def test_activation_probe_reads_a_multi_output_model_with_shared_layers():
    parts = build_autoencoder((28, 28, 1), channels=(3, 4), head_units=(8,))
    names, probe = instrumentation.activation_probe(parts.model)
    assert names == ["conv1", "conv2"]  # the transposed convolutions are not probed
    outputs = probe(np.ones((2, 28, 28, 1), "float32"))
    assert [tuple(output.shape) for output in outputs] == [(2, 28, 28, 3), (2, 14, 14, 4)]


@pytest.mark.parametrize("cell,implementation,expected", [
    ("gru", "hoisted", {"hidden_states/gru1", "hidden_states/gru2", "gates/gru1/update",
                        "gates/gru1/reset", "gates/gru1/candidate", "gates/gru2/update"}),
    ("lstm", "keras", {"hidden_states/lstm1", "hidden_states/lstm2", "cell_states/lstm1"}),
])
def test_hidden_states_of_every_recurrent_layer(tmp_path, cell, implementation, expected):
    model, _, _ = language.build_language_model(20, cell=cell, units=6, num_layers=2,
                                              embedding_dim=4, implementation=implementation)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ids = np.random.default_rng(0).integers(0, 20, (16, 9)).astype("int32")
    probe = instrumentation.HiddenStates(ids[:4], tmp_path / "tb", every_n_steps=2)
    model.fit(ids[:, :-1], ids[:, 1:], batch_size=4, epochs=1, verbose=0, callbacks=[probe])
    assert expected <= read_tags(tmp_path / "tb")["histograms"]
    # The last hidden state of the probe is the state the layer itself returns.
    sequences = probe.sequences()[f"{cell}1"]
    returned = keras.Model(model.input, model.get_layer(f"{cell}1").output[1])(ids[:4])
    np.testing.assert_allclose(sequences["hidden_states"][:, -1], returned, atol=1e-5)
    if "gates/update" in sequences:
        assert 0.0 < sequences["gates/update"].min() and sequences["gates/update"].max() < 1.0


def test_probe_callbacks_follow_the_model():
    def kinds(model):
        return [type(probe).__name__
                for probe in instrumentation.probe_callbacks(model, None, "tb", 10)]

    assert kinds(cnn.mnist_cnn()) == ["ActivationStatistics", "FilterImages"]
    assert kinds(rnn.build_row_rnn("lstm", 5)) == ["HiddenStates"]
    # The GAN trains a model with no graph: its discriminator is probed, when it has convs.
    dcgan = gan.build_gan(gan.GanSpec(architecture="dcgan", dcgan_filters=(4, 8),
                                            conditional=True))
    assert dcgan.probe_network is dcgan.discriminator
    assert kinds(dcgan) == ["ActivationStatistics", "FilterImages"]
    assert kinds(gan.build_gan(gan.GanSpec(architecture="mlp", mlp_units=(8, 8)))) == []


def test_probes_only_read(tmp_path):
    """The same fit with probes every step and with probes off ends with the same weights."""
    config = tiny("mnist-cnn").validate()
    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(64) % 10)).batch(16)
    weights = {}
    for every in (1, 0):
        run = runs.Run("mnist-cnn", dataclasses.replace(config, probe_every_steps=every),
                       tmp_path / f"every{every}")
        keras.utils.set_random_seed(0)
        model = cnn.mnist_cnn(filters=(4, 8), dense_units=8, dropout=0.5)
        model.compile("adam", "sparse_categorical_crossentropy")
        training.fit(run, model, dataset, epochs=2, probe=images[:8], histogram_freq=0)
        weights[every] = [np.asarray(weight) for weight in model.get_weights()]
    for probed, plain in zip(weights[1], weights[0], strict=True):
        np.testing.assert_array_equal(probed, plain)
    tags = read_tags(tmp_path / "every1" / "tb")
    assert {"activations/conv1_1", "activations/conv2_1"} <= tags["histograms"]
    assert "filters/conv1_1" in tags["images"]
    assert not (tmp_path / "every0" / "tb" / instrumentation.PROBE_DIR).exists()


def test_profile_batches_profile_those_batches_for_the_profile_tab(tmp_path):
    """`profile_batches` feeds the Keras TensorBoard callback: the batches' trace lands where
    TensorBoard's Profile tab (the profiler plugin) reads it."""
    config = dataclasses.replace(tiny("mnist-cnn"), profile_batches="2,3",
                                 probe_every_steps=0).validate()
    images = np.random.default_rng(0).uniform(size=(64, 28, 28, 1)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(64) % 10)).batch(16)
    run = runs.Run("mnist-cnn", config, tmp_path / "run")
    model = cnn.mnist_cnn(filters=(4, 8), dense_units=8)
    model.compile("adam", "sparse_categorical_crossentropy")
    training.fit(run, model, dataset, epochs=1, histogram_freq=0)
    (trace,) = (tmp_path / "run" / "tb" / "train" / "plugins" / "profile").glob("*/*.xplane.pb")
    assert trace.stat().st_size > 0


@pytest.mark.parametrize("text, batches", [("", None), ("  ", None), ("10,20", (10, 20)),
                                           ("5, 5", (5, 5)), ("7", (7, 7))])
def test_profile_batches_read_as_a_range(text, batches):
    assert profile_batch_range(text) == batches


@pytest.mark.parametrize("text", ["20,10", "0,4", "-1,2", "a,b", "1,2,3", "1-4", "0"])
def test_profile_batches_refuse_what_is_not_a_range(text):
    with pytest.raises(ConfigError, match=rf"^profile_batches={re.escape(repr(text))} is not "
                                          r"valid; give 'A,B' with 1 <= A <= B"):
        profile_batch_range(text)


def test_the_gan_shows_its_discriminator_on_real_digits(tmp_path):
    config = dataclasses.replace(
        labs.get("gan").PRESETS["quick"], data="sample", iterations=20, sample_every=10,
        batch_size=16, train_examples=128, latent_dim=8, score_samples=20, classifier_epochs=1,
        classifier_examples=128, steps_per_execution=1, architecture="dcgan",
        dcgan_filters=(4, 8), conditional=True, probe_every_steps=10,
        export_dir=str(tmp_path / "saved_models")).validate()
    labs.run("gan", config, str(tmp_path / "run"))
    probes = tmp_path / "run" / "tb" / instrumentation.PROBE_DIR
    tags = read_tags(probes)
    assert {"activations/conv1", "activations/conv2"} <= tags["histograms"]
    assert "filters/conv1" in tags["images"]
    # At the start, every 10 generator steps and at the end.
    assert sorted({step for step in _steps(probes, "activations/conv1/max")}) == [0, 10, 20]


def _steps(log_dir, tag: str) -> list[int]:
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(log_dir), size_guidance={
        event_accumulator.TENSORS: 0})
    accumulator.Reload()
    return [event.step for event in accumulator.Tensors(tag)]


def test_hparams_are_the_config_fields():
    values = instrumentation.hparams("mnist-cnn", tiny("mnist-cnn", data_dir="/somewhere"))
    assert values["lab"] == "mnist-cnn" and values["filters"] == "8,16"
    assert values["batch_size"] == 64 and values["batch_norm"] is True
    assert "data_dir" not in values and "export_dir" not in values
    assert instrumentation.final_scalars({"a": 1, "b": {"c": 0.5, "d": [1]}, "e": "x",
                                          "f": float("nan"), "g": True}) == {
        "final/a": 1.0, "final/b/c": 0.5}


def test_tensorboard_command_refuses_a_missing_folder(tmp_path):
    result = run_cli("tensorboard", str(tmp_path / "nothing"), timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nothing" in result.stderr


# --------------------------------------------------------------------------------------------
# A real server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _Client:
    """Asks a running TensorBoard what its dashboards show (the endpoints its frontend uses)."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str, body: dict | None = None):
        request = urllib.request.Request(
            self.base + path, data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
            if response.headers.get("Content-Encoding") == "gzip":  # the profile plugin's
                body = gzip.decompress(body)
            return json.loads(body)

    def tags(self, plugin: str) -> dict[str, set[str]]:
        return {run: set(tags) for run, tags in self.get(f"/data/plugin/{plugin}/tags").items()}

    def sessions(self) -> set[str]:
        groups = self.get("/data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": [
                "STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
            "colParams": [], "startIndex": 0, "sliceSize": 1000})
        return {session["name"] for group in groups.get("sessionGroups", [])
                for session in group["sessions"]}


def _having(value, condition):
    """`value` if `condition(value)`, else None (for `_until`)."""
    return value if condition(value) else None


def _until(check, deadline: float, server: subprocess.Popen):
    """Calls `check()` until it returns something true (the server loads runs as it goes)."""
    last = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with code {server.returncode}")
        try:
            result = check()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last = error
        time.sleep(1.0)
    pytest.fail(f"TensorBoard did not show it in time (last error: {last!r})")


@pytest.mark.slow
def test_a_real_tensorboard_shows_every_lab_inside(tmp_path):
    root = tmp_path / "runs"
    exports = str(tmp_path / "saved_models")
    for name in ("mnist-cnn", "char-rnn", "embeddings"):
        profiled = {"profile_batches": "1,2"} if name == "mnist-cnn" else {}
        labs.run(name, tiny(name, export_dir=exports, **profiled).validate(),
                 str(root / name / "r1"))
    keras.backend.clear_session()
    folder = sweeps.sweep(labs.get("mnist-cnn"), tiny("mnist-cnn").validate(),
                          {"seed": ["0", "1"]}, root, label="tiny")
    sweep_runs = [f"mnist-cnn/{folder.name}/{name}/tb" for name in ("00-seed-0", "01-seed-1")]
    convs = [name for name, _ in instrumentation.conv_layers(cnn.mnist_cnn(filters=(8, 16)))]
    assert convs == ["conv1_1", "conv2_1"]

    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "w")  # noqa: SIM115 (open while the server runs)
    server = subprocess.Popen(
        [sys.executable, "-m", "keras_labs", "tensorboard", str(root), "--port", str(port),
         "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        client = _Client(port)
        deadline = time.monotonic() + 180
        _until(lambda: client.get("/data/plugins_listing"), deadline, server)

        probed = {f"{name}/r1/tb/instrumentation" for name in ("mnist-cnn", "char-rnn",
                                                               "embeddings")}
        histograms = _until(lambda: _having(client.tags("histograms"),
                                            lambda tags: probed <= set(tags)), deadline, server)
        for conv in convs:  # every conv layer's activations
            assert f"activations/{conv}" in histograms["mnist-cnn/r1/tb/instrumentation"]
        assert {"hidden_states/gru1", "hidden_states/gru2"} <= histograms[
            "char-rnn/r1/tb/instrumentation"]
        assert "activations/conv1_1" in histograms["embeddings/r1/tb/instrumentation"]

        convolutional = probed - {"char-rnn/r1/tb/instrumentation"}
        images = _until(lambda: _having(client.tags("images"),
                                        lambda tags: convolutional <= set(tags)), deadline, server)
        assert f"filters/{convs[0]}" in images["mnist-cnn/r1/tb/instrumentation"]

        projector = _until(lambda: client.get("/data/plugin/projector/runs"), deadline, server)
        assert projector == ["embeddings/r1/tb"]

        # The Profile tab: one profile session, of the mnist-cnn run's training.
        profiles = _until(lambda: client.get("/data/plugin/profile/runs"), deadline, server)
        assert len(profiles) == 1 and profiles[0].startswith("mnist-cnn/r1/tb/train/"), profiles

        expected = {"mnist-cnn/r1/tb", "char-rnn/r1/tb", "embeddings/r1/tb", *sweep_runs}
        sessions = _until(lambda: _having(client.sessions(), lambda found: expected <= found),
                          deadline, server)
        assert sessions == expected
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)
        log.close()
    printed = (tmp_path / "tensorboard.log").read_text()
    assert f"http://127.0.0.1:{port}/" in printed.splitlines()[0]


def test_a_bad_profile_range_is_a_config_error_before_tensorflow_runs():
    config = labs.get("mnist-cnn").PRESETS["quick"]
    with pytest.raises(ConfigError, match="profile_batches='4,2' is not valid"):
        dataclasses.replace(config, profile_batches="4,2").validate()
