"""The mnist-cnn vertical slice: run folder, metrics, plots, TensorBoard, SavedModel."""

import dataclasses
import json
import types

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_tiny, tiny

from keras_labs import ConfigError, KerasLabsError, run_folders, training
from keras_labs.data import loading
from keras_labs.export import export_model
from keras_labs.labs.mnist_cnn import experiment
from keras_labs.models import cnn

TINY = tiny("mnist-cnn")


@pytest.fixture(scope="module")
def tiny_run_and_model(tmp_path_factory):
    """The tiny run, the model it trained and the examples `training.fit` validated on (caught
    on their way into `training.fit`)."""
    trained, validated = [], []
    original = training.fit

    def keep_model(run, model, *args, **kwargs):
        trained.append(model)
        validated.append(sum(int(labels.shape[0]) for _, labels in kwargs["validation_data"]))
        return original(run, model, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "fit", keep_model)
        result = run_tiny(tmp_path_factory, "mnist-cnn")
    (model,) = trained
    return result, model, validated[0]


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


def test_curves_use_the_validation_part_and_the_test_split_is_scored_at_the_end(
        tiny_run_and_model):
    (workdir, metrics, _), _, validated = tiny_run_and_model
    # 256 training examples: a seeded 10% (26) held out, and fit validated on those alone,
    # never on the 1,000 test images scored afterwards.
    assert metrics["validation_split"] == {"fraction": 0.1, "seed": 0, "train_examples": 230,
                                           "validation_examples": 26}
    assert validated == 26 and metrics["test_examples"] == 1000
    header = (workdir / "history.csv").read_text().splitlines()[0].split(",")
    last = dict(zip(header, (workdir / "history.csv").read_text().splitlines()[-1].split(","),
                    strict=True))
    assert metrics["validation_accuracy"] == pytest.approx(float(last["val_accuracy"]))
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] > 0


def test_split_is_seeded_and_disjoint():
    datasets, _ = loading.load("mnist", ("train",), data="sample")
    first = loading.first(datasets["train"], 300)
    indexed = first.enumerate().map(lambda index, example: (example[0], index))
    train_part, validation_part, record = loading.split_validation(indexed, 0.2, seed=3)
    train_ids = {int(i) for _, i in train_part.as_numpy_iterator()}
    validation_ids = {int(i) for _, i in validation_part.as_numpy_iterator()}
    assert (len(train_ids), len(validation_ids)) == (240, 60) == (
        record["train_examples"], record["validation_examples"])
    assert not train_ids & validation_ids and train_ids | validation_ids == set(range(300))
    again = loading.split_validation(indexed, 0.2, seed=3)[1]
    assert {int(i) for _, i in again.as_numpy_iterator()} == validation_ids


def test_validation_batches_split_evenly_over_replicas():
    datasets, _ = loading.load("mnist", ("train",), data="sample")
    _, validation_part, split = loading.split_validation(loading.first(datasets["train"], 250), 0.1)
    batches = [int(labels.shape[0]) for _, labels in loading.evaluation_pipeline(
        validation_part, split, replicas=3, batch_size=10)]
    # 25 held out: 24 scored in batches of 9, each split evenly over 3 replicas.
    assert batches == [9, 9, 6] and split["validation_examples_scored"] == 24
    _, validation_part, split = loading.split_validation(loading.first(datasets["train"], 250), 0.1)
    assert sum(int(labels.shape[0]) for _, labels in loading.evaluation_pipeline(
        validation_part, split, batch_size=10)) == 25
    assert "validation_examples_scored" not in split
    assert loading.evaluation_pipeline(None, split) is None


def test_metrics_hold_accuracy_fraction_and_per_class(tiny_run):
    _, metrics, _ = tiny_run
    on_disk = json.loads((tiny_run[0] / "metrics.json").read_text())
    assert on_disk["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert len(metrics["per_class_accuracy"]) == 10
    assert sum(map(sum, metrics["confusion_matrix"])) == 1000
    assert metrics["data"]["mnist"]["kind"] == "sample"


def test_saved_model_reproduces_the_trained_model(tiny_run_and_model):
    (_, metrics, _), model, _ = tiny_run_and_model
    reloaded = tf.saved_model.load(metrics["export"])
    datasets, _ = loading.load("mnist", ("test",), data="sample")
    digits, _ = loading.to_numpy(datasets["test"].take(32))
    noise = np.random.default_rng(0).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    for images in (digits, noise):  # raw uint8 pixels: the export scales them itself
        # inference: dropout off, batch-norm averages
        expected = model.predict(images.astype(np.float32) / 255.0, verbose=0)
        got = reloaded.serve(tf.constant(images)).numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-5)


def test_export_matches_model_and_never_overwrites(tmp_path):
    model = cnn.mnist_cnn(filters=(4, 8), dense_units=8)
    pixels = np.random.default_rng(1).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    run = types.SimpleNamespace(lab="mnist-cnn", run_id="run-a", workdir=tmp_path / "run-a",
                                env={}, config=types.SimpleNamespace(
                                    export_dir=str(tmp_path), export_format="saved_model"))
    first = export_model(model, run, normalize="unit")
    reloaded = tf.saved_model.load(str(first))
    np.testing.assert_allclose(reloaded.serve(pixels).numpy(),
                               model.predict(pixels.astype(np.float32) / 255.0, verbose=0),
                               rtol=1e-5, atol=1e-6)
    # The same run exported again: a new version, the first one untouched.
    before = (first / "saved_model.pb").read_bytes()
    assert export_model(model, run, normalize="unit").name == "2"
    assert sorted(p.name for p in (tmp_path / "mnist-cnn").iterdir()) == ["1", "2"]
    assert (first / "saved_model.pb").read_bytes() == before


def test_run_refuses_existing_run_folder(tiny_run):
    workdir, _, config = tiny_run
    before = (workdir / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="already has files"):
        experiment.run(config, str(workdir))
    assert (workdir / "metrics.json").read_text() == before


def test_new_run_dir_never_reuses_an_id(tmp_path):
    paths = {run_folders.new_run_dir(tmp_path, "mnist-cnn", "quick") for _ in range(20)}
    assert len(paths) == 20 and all(p.is_dir() for p in paths)


def test_deterministic_runs_repeat_exactly(tmp_path):
    config = dataclasses.replace(TINY, deterministic=True, export_dir=str(tmp_path / "sm")).validate()
    first = experiment.run(config, str(tmp_path / "a"))
    second = experiment.run(config, str(tmp_path / "b"))
    assert first["test_accuracy"] == second["test_accuracy"]
    assert first["test_loss"] == second["test_loss"]


def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    assert len(tf.config.list_logical_devices("CPU")) >= 2
    config = dataclasses.replace(TINY, strategy="mirrored", export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "m"))
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
        experiment.run(config, str(tmp_path / "bad"))
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
    version = tmp_path / "sm" / "mnist-cnn" / "1"
    assert (version / "saved_model.pb").exists()
    assert json.loads((version / "keras_labs_run.json").read_text())["run_id"] == run_dir.name
