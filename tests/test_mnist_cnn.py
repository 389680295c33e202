"""The mnist-cnn vertical slice: run folder, metrics, plots, TensorBoard, SavedModel."""

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_tiny, tiny

from keras_labs import ConfigError, KerasLabsError, data, models, runs, training
from keras_labs.export import export_model
from keras_labs.labs import mnist_cnn

TINY = tiny("mnist-cnn")


@pytest.fixture(scope="module")
def tiny_run_and_model(tmp_path_factory):
    """The tiny run, and the model it trained (caught on its way into `training.fit`)."""
    trained = []
    original = training.fit

    def keep_model(run, model, *args, **kwargs):
        trained.append(model)
        return original(run, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit", keep_model)
        result = run_tiny(tmp_path_factory, "mnist-cnn")
    (model,) = trained
    return result, model


@pytest.fixture(scope="module")
def tiny_run(tiny_run_and_model):
    return tiny_run_and_model[0]


def test_run_folder_has_every_record(tiny_run):
    workdir, metrics, _ = tiny_run
    for name in ("config.json", "env.json", "history.csv", "metrics.json"):
        assert (workdir / name).stat().st_size > 0, name
    assert {p.name for p in (workdir / "plots").iterdir()} >= {
        "curves.png", "confusion_matrix.png", "per_class_accuracy.png"}
    assert list((workdir / "tb").rglob("events.out.tfevents*"))
    env = json.loads((workdir / "env.json").read_text())
    assert env["data"]["mnist"]["kind"] == "sample" and env["seed"] == 0
    assert set(env["packages"]) >= {"tensorflow", "keras", "tensorflow_datasets"}
    assert json.loads((workdir / "config.json").read_text())["train_examples"] == 256


def test_metrics_hold_accuracy_fraction_and_per_class(tiny_run):
    _, metrics, _ = tiny_run
    on_disk = json.loads((tiny_run[0] / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert len(metrics["per_class_accuracy"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 1000
    assert metrics["data"]["mnist"]["kind"] == "sample"


def test_saved_model_reproduces_the_trained_model(tiny_run_and_model):
    (_, metrics, _), model = tiny_run_and_model
    reloaded = tf.saved_model.load(metrics["export"])
    datasets, _ = data.load("mnist", ("test",), data="sample")
    digits, _ = data.to_numpy(datasets["test"].take(32))
    noise = np.random.default_rng(0).random((5, 28, 28, 1), dtype=np.float32)
    for images in (digits.astype(np.float32) / 255.0, noise):
        expected = model.predict(images, verbose=0)  # inference: dropout off, batch-norm averages
        got = reloaded.serve(tf.constant(images)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_export_matches_model_and_never_overwrites(tmp_path):
    model = models.mnist_cnn(filters=(4, 8), dense_units=8)
    images = np.random.default_rng(1).random((3, 28, 28, 1), dtype=np.float32)
    path = export_model(model, tmp_path, "mnist-cnn", "run-a")
    reloaded = tf.saved_model.load(str(path))
    np.testing.assert_allclose(reloaded.serve(images).numpy(), model.predict(images, verbose=0),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(KerasLabsError, match="exists already"):
        export_model(model, tmp_path, "mnist-cnn", "run-a")
    assert [p.name for p in (tmp_path / "mnist-cnn").iterdir()] == ["run-a"]


def test_run_refuses_existing_run_folder(tiny_run):
    workdir, _, config = tiny_run
    before = (workdir / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="already has files"):
        mnist_cnn.run(config, str(workdir))
    assert (workdir / "metrics.json").read_text() == before


def test_new_run_dir_never_reuses_an_id(tmp_path):
    paths = {runs.new_run_dir(tmp_path, "mnist-cnn", "quick") for _ in range(20)}
    assert len(paths) == 20 and all(p.is_dir() for p in paths)


def test_deterministic_runs_repeat_exactly(tmp_path):
    config = dataclasses.replace(TINY, deterministic=True, export_dir=str(tmp_path / "sm")).validate()
    first = mnist_cnn.run(config, str(tmp_path / "a"))
    second = mnist_cnn.run(config, str(tmp_path / "b"))
    assert first["test_accuracy"] == second["test_accuracy"]
    assert first["test_loss"] == second["test_loss"]


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    config = dataclasses.replace(TINY, strategy="mirrored", export_dir=str(tmp_path / "sm")).validate()
    metrics = mnist_cnn.run(config, str(tmp_path / "m"))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0


def test_diverged_history_is_a_user_error():
    import keras

    from keras_labs import training

    history = keras.callbacks.History()
    history.history = {"loss": [0.5, float("nan")]}
    with pytest.raises(KerasLabsError, match="diverged"):
        training.check_finite(history)
    history.history = {"loss": [0.5, 0.4]}
    training.check_finite(history)


def test_run_validates_its_config(tmp_path):
    config = dataclasses.replace(TINY, learning_rate=-1.0)
    with pytest.raises(ConfigError, match="learning_rate=-1.0"):
        mnist_cnn.run(config, str(tmp_path / "bad"))
    assert not (tmp_path / "bad").exists()


def test_cli_quick_run_leaves_folder_and_export(tmp_path):
    from conftest import run_cli

    result = run_cli("run", "mnist-cnn", "--preset", "quick", "--set", "train_examples=128",
                     "--epochs", "1", "--out", str(tmp_path / "runs"), "--export-dir",
                     str(tmp_path / "sm"), env={"TFDS_DATA_DIR": str(tmp_path / "empty")})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "EMBEDDED SAMPLE" in result.stderr
    (run_dir,) = (tmp_path / "runs" / "mnist-cnn").iterdir()
    assert (run_dir / "metrics.json").exists()
    assert (tmp_path / "sm" / "mnist-cnn" / run_dir.name / "saved_model.pb").exists()
