"""Tests of the cifar-cnn lab, the instrumentation callbacks and sweeps (tiny configs, the
embedded CIFAR-10 sample)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import read_tags, tiny
from tensorboard.backend.event_processing import event_accumulator

from keras_labs import ConfigError, callbacks, instrumentation, labs, training
from keras_labs.data import loading
from keras_labs.labs.cifar_cnn import config as lab_config
from keras_labs.labs.cifar_cnn import experiment
from keras_labs.models import cnn
from keras_labs.results import sweeps

REQUIRED_PRESETS = (
    "tutorial", "deepdiva-sgd", "deepdiva-adam", "deepdiva-basic-copy", "minor-10ep", "best",
    "quick", "report002-relu-adam-normal", "report002-tanh-adam-normal",
    "report002-sigmoid-adam-normal", "report002-leaky_relu-adam-normal",
    "report002-relu-adam-glorot", "report002-relu-momentum-normal",
    "report002-relu-adam-normal-reg", "report002-relu-momentum0.8-reg",
    "report002-relu-momentum0.7-reg", "report002-relu-momentum0.9-reg",
)

# Small enough for seconds on 2 CPU cores; the tutorial network keeps its 2 conv layers.
TINY = tiny("cifar-cnn")


def test_presets_are_the_interface_and_validate():
    missing = [name for name in REQUIRED_PRESETS if name not in lab_config.PRESETS]
    assert not missing
    assert lab_config.DEFAULT_PRESET in lab_config.PRESETS
    for config in lab_config.PRESETS.values():
        config.validate()
    for name in ("tutorial", "deepdiva-sgd", "deepdiva-adam", "deepdiva-basic-copy", "minor-10ep"):
        assert lab_config.PRESETS[f"{name}-equal-updates"] == dataclasses.replace(
            lab_config.PRESETS[name], equal_updates_examples=50_000)
    tutorial = lab_config.PRESETS["tutorial"]
    assert tutorial.running_loss_every == 2000
    assert tutorial.running_loss_every % tutorial.steps_per_execution == 0
    grid = {lab_config.PRESETS[f"report002-{a}-adam-normal"].activation
            for a in ("relu", "tanh", "sigmoid", "leaky_relu")}
    assert grid == {"relu", "tanh", "sigmoid", "leaky_relu"}
    assert lab_config.PRESETS["report002-relu-momentum0.7-reg"].momentum == 0.7
    assert lab_config.PRESETS["report002-relu-momentum0.8-reg"].learning_rate == 1e-2


@pytest.mark.parametrize("preset", ["tutorial", "deepdiva-sgd", "deepdiva-basic-copy",
                                    "minor-10ep", "report002-relu-adam-normal-reg", "best"])
def test_architectures_build_and_output_logits(preset):
    model = cnn.cifar_cnn(lab_config.PRESETS[preset].net_spec())
    logits = model(np.zeros((2, 32, 32, 3), np.float32))
    assert tuple(logits.shape) == (2, 10)
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)


def test_tutorial_network_matches_report_004():
    model = cnn.cifar_cnn(lab_config.PRESETS["tutorial"].net_spec())
    # conv 3->6 (5x5), conv 6->16 (5x5), 400->120->84->10, as in the PyTorch tutorial
    assert model.count_params() == (5 * 5 * 3 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (
        400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)


def test_seed_items_name_presets_and_every_preset_has_minutes():
    seeds = labs.seed_items(lab_config.NAME)
    items = seeds.items
    ids = [item.item for item in items]
    assert len(ids) == len(set(ids)) == 41  # 39 of the reports, 2 records (rec-)
    assert {item.preset for item in items} <= set(lab_config.PRESETS)
    assert {item.equal_updates for item in items} - {None} <= set(lab_config.PRESETS)
    assert sorted(set(lab_config.PRESETS) - set(seeds.minutes)) == ["quick"]
    report002 = [item for item in items if item.item.startswith("002-t1-relu-momentum0.9")]
    assert report002[0].seed == 0.48 and report002[0].seed_text == "~50% train vs 48% test"


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="'lion'"):
        dataclasses.replace(TINY, optimizer="lion").validate()
    with pytest.raises(ConfigError, match="running_loss_every=30"):
        dataclasses.replace(TINY, running_loss_every=30, steps_per_execution=4).validate()
    with pytest.raises(ConfigError, match="0.7"):
        dataclasses.replace(TINY, validation_fraction=0.7).validate()
    with pytest.raises(ConfigError, match="filters"):
        dataclasses.replace(TINY, architecture="resnet", filters=(8, 16)).validate()


def test_conv_activations_follow_batch_norm_to_the_activation():
    config = dataclasses.replace(lab_config.PRESETS["quick"], batch_norm=True)
    model = cnn.cifar_cnn(config.net_spec())
    tensors = instrumentation.conv_activations(model)
    assert list(tensors) == ["conv1_1", "conv2_1"]
    probe = keras.Model(model.input, list(tensors.values()))
    outputs = probe(np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32"))
    # ReLU outputs (not the linear conv outputs): never negative, some exact zeros
    assert all(float(np.min(output)) >= 0.0 for output in outputs)
    assert all(float(np.mean(np.asarray(output) == 0)) > 0.05 for output in outputs)
    with pytest.raises(ValueError, match="nope"):
        instrumentation.conv_activations(model, ["nope"])


def test_filter_grid_tiles_every_filter():
    kernel = np.random.default_rng(0).normal(size=(5, 5, 3, 6))
    grid = instrumentation.filter_grid(kernel, scale=2)
    # 6 filters -> 3 columns x 2 rows of 10x10 tiles with 1-pixel borders
    assert grid.shape == (2 * 11 + 1, 3 * 11 + 1, 3) and grid.dtype == np.uint8
    assert grid.max() == 255 and grid.min() == 0
    assert instrumentation.filter_grid(np.ones((3, 3, 16, 4))).shape[-1] == 3


def test_tiny_run_writes_metrics_plots_instrumentation_and_export(tmp_path, empty_data_dir):
    config = dataclasses.replace(TINY, export_dir=str(tmp_path / "saved_models"))
    metrics = experiment.run(config, str(tmp_path / "run"))
    run_dir = tmp_path / "run"

    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "per_class_accuracy", "train_accuracy", "train_loss",
                "test_loss", "validation_accuracy", "validation_loss", "validation_split",
                "losses", "confusion_matrix", "examples", "export", "per_class_table",
                "overfits", "epochs_run", "updates"):
        assert key in saved, key
    assert "seed_result" not in saved  # the seed figures live in seeds.md only
    assert len(saved["per_class_accuracy"]) == 10
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert saved["per_class_table"] == (None not in saved["per_class_accuracy"])
    assert len(saved["losses"]["train"]) == len(saved["losses"]["validation"]) == config.epochs
    assert saved["validation_loss"] == pytest.approx(saved["losses"]["validation"][-1], abs=1e-4)
    assert saved["validation_split"] == {"fraction": 0.1, "seed": config.seed,
                                         "train_examples": 58, "validation_examples": 6}
    assert saved["epochs_run"] == config.epochs == 1
    # 58 images at batch 16: 3 batches, rounded up to whole executions of 2 steps
    assert saved["updates"] == 4
    # The tutorial network is a ReLU network: its conv activations bottom out at exactly 0.
    assert saved["relu_activations_min_zero"] is True
    assert set(saved["conv_activation_min"]) == {"conv1", "conv2"}
    assert len(saved["examples"]) == 4 and {"true", "predicted"} <= set(saved["examples"][0])
    assert saved["data"]["cifar10"]["kind"] == "sample"
    assert metrics["test_examples"] == 40
    assert (Path(saved["export"]) / "saved_model.pb").is_file()
    # the thread pools the run had (the suite's: TensorFlow started before this run's threads=)
    threads = json.loads((run_dir / "env.json").read_text())["strategy"]["threads"]
    assert threads == {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                       "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}

    plots = {path.name for path in (run_dir / "plots").glob("*.png")}
    assert {"curves.png", "confusion_matrix.png", "per_class_accuracy.png",
            "test_examples.png"} <= plots
    assert len([name for name in plots if name.startswith("filters_conv1_")]) >= 2

    tags = read_tags(run_dir / "tb")
    for conv in ("conv1", "conv2"):  # every conv layer of the tutorial network
        assert f"activations/{conv}" in tags["histograms"]
        for statistic in ("min", "max", "mean", "std", "zero_fraction"):
            assert f"activations/{conv}/{statistic}" in tags["scalars"]
    assert "filters/conv1" in tags["images"]
    assert any(tag.startswith("conv1/kernel") for tag in tags["histograms"])  # weight histograms


def test_activation_statistics_are_logged_at_the_step_interval(tmp_path):
    model = cnn.cifar_cnn(dataclasses.replace(TINY, filters=(2, 3), dense_units=(8,)).net_spec())
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(0).uniform(-1, 1, size=(40, 32, 32, 3)).astype("float32")
    labels = np.arange(40) % 10
    statistics = instrumentation.ActivationStatistics(images[:4], tmp_path / "tb", every_n_steps=3)
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0, callbacks=[statistics])
    accumulator = event_accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={
        event_accumulator.TENSORS: 0})
    accumulator.Reload()
    steps = [event.step for event in accumulator.Tensors("activations/conv1/max")]
    assert steps == [0, 3, 6, 9, 10]  # start, every 3 steps, and the end (10 steps)


def test_sweep_runs_the_grid_logs_hparams_and_resumes(tmp_path, empty_data_dir, monkeypatch):
    base = dataclasses.replace(TINY, train_examples=32, test_examples=20, histogram_freq=0,
                               show_examples=0)
    grid = {"activation": ["relu", "tanh"], "optimizer": ["adam", "momentum"]}
    folder = sweeps.sweep(lab_config, base, grid, tmp_path / "runs", label="tutorial")

    assert folder.parent == tmp_path / "runs" / "cifar-cnn"
    runs = sorted(path for path in folder.iterdir() if (path / "metrics.json").is_file())
    assert [path.name for path in runs] == [
        "00-activation-relu_optimizer-adam", "01-activation-relu_optimizer-momentum",
        "02-activation-tanh_optimizer-adam", "03-activation-tanh_optimizer-momentum"]
    assert json.loads((runs[2] / "config.json").read_text())["activation"] == "tanh"
    table = (folder / "results.csv").read_text().splitlines()
    assert table[0] == ("run,activation,optimizer,train_accuracy,test_accuracy,train_loss,"
                        "test_loss,wall_time_s")
    assert len(table) == 5
    assert all(row.split(",")[4] not in ("", "-") for row in table[1:])
    assert (folder / "results.md").read_text().count("\n") == 6
    # Every run logs its own HParams session in its tb/ (runs.Run), the sweep's runs included.
    assert "_hparams_/session_start_info" in read_tags(runs[0] / "tb")["hparams"]

    calls = []
    real_run = experiment.run
    monkeypatch.setattr(experiment, "run", lambda config, workdir, **options: calls.append(
        workdir) or real_run(config, workdir, **options))
    # The same command again: the same folder, nothing re-run.
    assert sweeps.sweep(lab_config, base, grid, tmp_path / "runs", label="tutorial") == folder
    assert calls == []
    # An interrupted run (no metrics.json) is run again, alone.
    (runs[1] / "metrics.json").unlink()
    sweeps.sweep(lab_config, base, grid, tmp_path / "runs", label="tutorial")
    assert [Path(workdir).name for workdir in calls] == [runs[1].name]
    assert (runs[1] / "metrics.json").is_file()


def test_sweep_validates_every_combination_before_running(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "run", lambda *args: pytest.fail("a run started"))
    with pytest.raises(ConfigError, match="'lion'"):
        sweeps.sweep(lab_config, TINY, {"optimizer": ["adam", "lion"]}, tmp_path)
    with pytest.raises(ConfigError, match="unknown config key 'colour'"):
        sweeps.sweep(lab_config, TINY, {"colour": ["red"]}, tmp_path)
    assert sweeps.parse_grid(["activation=relu, tanh", "epochs=1"]) == {
        "activation": ["relu", "tanh"], "epochs": ["1"]}
    with pytest.raises(ConfigError, match="twice"):
        sweeps.parse_grid(["epochs=1", "epochs=2"])


# --------------------------------------------------------------------------------------------
# Held-out discipline, the running loss and the equal-updates readings.


def _images(dataset) -> list[bytes]:
    return [image.tobytes() for image, _ in dataset.as_numpy_iterator()]


def _pixels(batches) -> list[bytes]:
    """The uint8 images of batched unit-range pipeline images (or of one batch)."""
    batches = [batches] if isinstance(batches, np.ndarray) else [
        images for images, _ in batches.as_numpy_iterator()]
    return [np.rint(image * 255).astype(np.uint8).tobytes() for images in batches
            for image in images]


def test_validation_is_carved_from_the_training_images_and_disjoint(empty_data_dir):
    config = dataclasses.replace(TINY, train_examples=100, validation_fraction=0.2,
                                 normalize="unit").validate()
    sets, test_split, _ = experiment.make_datasets(config)
    # 80 training images: 5 whole batches of 16, none dropped
    train, validation = _pixels(sets.make_train()), _pixels(sets.validation)
    assert (len(train), len(validation)) == (80, 20)
    assert sets.split["validation_examples"] == 20 and int(test_split.cardinality()) == 40
    assert not set(train) & set(validation)
    first_100 = _images(loading.first(
        loading.load("cifar10", ("train",), data="sample")[0]["train"], 100))
    assert sorted(train + validation) == sorted(first_100)
    # The instrumentation's probe: the first validation images, never test images.
    assert _pixels(sets.probe) == validation[:config.probe_images]
    # Seeded: the same seed holds out the same images, another seed others.
    assert _pixels(experiment.make_datasets(config)[0].validation) == validation
    other = experiment.make_datasets(dataclasses.replace(config, seed=config.seed + 1))[0]
    assert _pixels(other.validation) != validation
    # No validation part: every training image trains (the last partial batch of 4 dropped),
    # the curves have no validation and the probe is the first training images.
    none = experiment.make_datasets(dataclasses.replace(config, validation_fraction=0.0))[0]
    assert none.validation is None and none.split["train_examples"] == 100
    assert len(_pixels(none.make_train())) == 96
    assert _pixels(none.probe) == first_100[:config.probe_images]


def test_test_time_flip_averages_the_mirror_images():
    inputs = keras.Input((2, 2, 1))
    outputs = keras.layers.Dense(3)(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(0).normal(size=(5, 2, 2, 1)).astype("float32")
    test = tf.data.Dataset.from_tensor_slices((images, np.arange(5) % 3)).batch(2)
    labels, plain = training.predict_logits(model, test)
    _, flipped = training.predict_logits(model, test, test_time_flip=True)
    mirrored = np.asarray(model(images[:, :, ::-1]))
    assert list(labels) == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(flipped, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(flipped, plain)


def test_nothing_before_the_final_score_reads_the_test_labels(tmp_path, empty_data_dir,
                                                             monkeypatch):
    """The same run with the test labels shuffled trains, validates and records the same."""
    config = dataclasses.replace(TINY, epochs=2, histogram_freq=0, probe_every_steps=0,
                                 show_examples=0, running_loss_every=2, deterministic=True,
                                 export_dir=str(tmp_path / "saved_models")).validate()
    first = experiment.run(config, str(tmp_path / "plain"))

    real_load = loading.load

    def shuffled_test_labels(name, splits, **options):
        loaded, source = real_load(name, splits, **options)
        test = loaded["test"]
        images = np.stack([image for image, _ in test.as_numpy_iterator()])
        labels = np.array([label for _, label in test.as_numpy_iterator()])
        labels = np.random.default_rng(1).permutation(labels)
        loaded["test"] = tf.data.Dataset.from_tensor_slices((images, labels))
        return loaded, source

    monkeypatch.setattr(loading, "load", shuffled_test_labels)
    second = experiment.run(config, str(tmp_path / "shuffled"))
    for key in ("losses", "validation_accuracy", "validation_loss", "train_loss",
                "running_loss", "updates", "conv_activation_min"):
        assert first[key] == second[key], key
    assert first["confusion_matrix"] != second["confusion_matrix"]  # the test labels did change


def _hand_losses(model, images, labels, batch_size, epochs):
    """Each mini-batch's loss before its update, by hand: one step at a time in eager mode."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    losses = []
    for _ in range(epochs):
        for start in range(0, len(images), batch_size):
            x, y = images[start:start + batch_size], labels[start:start + batch_size]
            losses.append(float(loss(y, model(x))))
            model.train_on_batch(x, y)
    return np.array(losses)


def _synthetic(steps_per_execution):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(8, "tanh")(inputs)))
    model.compile(keras.optimizers.SGD(0.2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  steps_per_execution=steps_per_execution)
    return model


def keras_tf():
    import tensorflow as tf

    return tf


def _data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 6)).astype("float32"), rng.integers(0, 3, 40)


def test_running_loss_gives_exact_window_means_across_epochs(capsys):
    images, labels = _data()
    # 10 mini-batches an epoch, windows of 4: windows span the epoch boundaries.
    hand = _hand_losses(_synthetic(1), images, labels, batch_size=4, epochs=3)
    windows = hand[:28].reshape(-1, 4).mean(axis=1)
    for steps_per_execution in (1, 2):
        running = callbacks.RunningLoss(4)
        _synthetic(steps_per_execution).fit(images, labels, batch_size=4, epochs=3,
                                            shuffle=False, verbose=0, callbacks=[running])
        assert [record["step"] for record in running.records] == [4, 8, 12, 16, 20, 24, 28]
        assert [(record["epoch"], record["batch"]) for record in running.records] == [
            (1, 4), (1, 8), (2, 2), (2, 6), (2, 10), (3, 4), (3, 8)]
        np.testing.assert_allclose([record["loss"] for record in running.records], windows,
                                   atol=2e-4)
    assert f"[2, 2] loss: {windows[2]:.3f}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="every=6"):
        _synthetic(4).fit(images, labels, batch_size=4, epochs=1, verbose=0,
                          callbacks=[callbacks.RunningLoss(6)])


def test_running_loss_is_exact_with_steps_per_execution_on_an_endless_input():
    """As the lab feeds it: one endless stream, whole executions of 4 (12 steps an epoch)."""
    images, labels = _data()
    stream = keras_tf().data.Dataset.from_tensor_slices((images, labels)).batch(4).repeat()
    running = callbacks.RunningLoss(8, verbose=False)
    _synthetic(4).fit(stream, steps_per_epoch=10, epochs=3, shuffle=False, verbose=0,
                      callbacks=[running])
    # The same 36 mini-batches one at a time: batch i of the stream is batch i % 10 of the data.
    model, loss, hand = _synthetic(1), keras.losses.SparseCategoricalCrossentropy(True), []
    for step in range(36):
        start = 4 * (step % 10)
        x, y = images[start:start + 4], labels[start:start + 4]
        hand.append(float(loss(y, model(x))))
        model.train_on_batch(x, y)
    assert [(r["step"], r["epoch"], r["batch"]) for r in running.records] == [
        (8, 1, 8), (16, 2, 4), (24, 2, 12), (32, 3, 8)]
    np.testing.assert_allclose([record["loss"] for record in running.records],
                               np.reshape(hand[:32], (-1, 8)).mean(axis=1), atol=2e-4)
    assert all("batches" not in record for record in running.records)


def test_running_loss_says_when_a_window_ends_between_calls():
    images, labels = _data()
    running = callbacks.RunningLoss(4, verbose=False)
    # 10 batches an epoch in executions of 4: calls after steps 4, 8, 10, 14, 18, 20.
    _synthetic(4).fit(images, labels, batch_size=4, epochs=2, shuffle=False, verbose=0,
                      callbacks=[running])
    assert [(r["step"], r.get("batches", 4)) for r in running.records] == [
        (4, 4), (8, 4), (14, 6), (18, 4), (20, 2)]


def test_running_loss_continues_after_a_resume(tmp_path):
    images, labels = _data()
    whole = callbacks.RunningLoss(4, verbose=False)
    _synthetic(2).fit(images, labels, batch_size=4, epochs=3, shuffle=False, verbose=0,
                      callbacks=[whole])
    # Killed after epoch 1 (its state saved), resumed with the weights and step of epoch 1.
    model = _synthetic(2)
    first = callbacks.RunningLoss(4, state_path=tmp_path / "running.json", verbose=False)
    model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0,
              callbacks=[first])
    resumed = callbacks.RunningLoss(4, state_path=tmp_path / "running.json", verbose=False)
    model.fit(images, labels, batch_size=4, epochs=3, initial_epoch=1, shuffle=False,
              verbose=0, callbacks=[resumed])
    assert resumed.records == whole.records


def test_equal_updates_scales_the_epochs_and_the_schedule(tmp_path, empty_data_dir,
                                                          monkeypatch):
    assert experiment.epochs_to_run(dataclasses.replace(TINY, epochs=2), 7337) == 2
    assert experiment.epochs_to_run(dataclasses.replace(
        TINY, epochs=2, equal_updates_examples=50_000), 7337) == 14
    assert experiment.epochs_to_run(dataclasses.replace(
        TINY, epochs=2, equal_updates_examples=50_000), 60_000) == 2

    spans = []
    real_make_optimizer = experiment.make_optimizer
    monkeypatch.setattr(experiment, "make_optimizer", lambda config, total_steps: (
        spans.append(total_steps) or real_make_optimizer(config, total_steps)))
    config = dataclasses.replace(
        TINY, train_examples=64, equal_updates_examples=256,
        schedule="cosine", running_loss_every=4, histogram_freq=0, probe_every_steps=0,
        export_dir=str(tmp_path / "saved_models")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    # 58 training images after the validation carve: 256 / 58 = 4.4 -> 4 epochs
    assert metrics["epochs_run"] == 4 * config.epochs == len(metrics["losses"]["train"])
    assert metrics["equal_updates_examples"] == 256
    # 3 batches an epoch, run as 2 executions of 2 steps
    assert metrics["updates"] == 4 * 4
    assert spans == [metrics["updates"]]  # the schedule spans every step of the scaled run
    assert [(r["epoch"], r["batch"]) for r in metrics["running_loss"]] == [
        (1, 4), (2, 4), (3, 4), (4, 4)]
