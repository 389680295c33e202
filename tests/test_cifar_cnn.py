"""Tests of the cifar-cnn lab, the instrumentation callbacks and sweeps (tiny configs, the
embedded CIFAR-10 sample)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import read_tags, tiny
from tensorboard.backend.event_processing import event_accumulator

from keras_labs import ConfigError, callbacks, models, sweeps
from keras_labs.labs import cifar_cnn

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
    missing = [name for name in REQUIRED_PRESETS if name not in cifar_cnn.PRESETS]
    assert not missing
    assert cifar_cnn.DEFAULT_PRESET in cifar_cnn.PRESETS
    for name, config in cifar_cnn.PRESETS.items():
        config.validate()
        assert cifar_cnn.preset_name(config) == name
    grid = {cifar_cnn.PRESETS[f"report002-{a}-adam-normal"].activation
            for a in ("relu", "tanh", "sigmoid", "leaky_relu")}
    assert grid == {"relu", "tanh", "sigmoid", "leaky_relu"}
    assert cifar_cnn.PRESETS["report002-relu-momentum0.7-reg"].momentum == 0.7
    assert cifar_cnn.PRESETS["report002-relu-momentum0.8-reg"].learning_rate == 1e-2


@pytest.mark.parametrize("preset", ["tutorial", "deepdiva-sgd", "deepdiva-basic-copy",
                                    "minor-10ep", "report002-relu-adam-normal-reg", "best"])
def test_architectures_build_and_output_logits(preset):
    model = models.cifar_cnn(cifar_cnn.PRESETS[preset].net_spec())
    logits = model(np.zeros((2, 32, 32, 3), np.float32))
    assert tuple(logits.shape) == (2, 10)
    assert any(isinstance(layer, keras.layers.Conv2D) for layer in model.layers)


def test_tutorial_network_matches_report_004():
    model = models.cifar_cnn(cifar_cnn.PRESETS["tutorial"].net_spec())
    # conv 3->6 (5x5), conv 6->16 (5x5), 400->120->84->10, as in the PyTorch tutorial
    assert model.count_params() == (5 * 5 * 3 * 6 + 6) + (5 * 5 * 6 * 16 + 16) + (
        400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="'lion'"):
        dataclasses.replace(TINY, optimizer="lion").validate()
    with pytest.raises(ConfigError, match="filters"):
        dataclasses.replace(TINY, architecture="resnet", filters=(8, 16)).validate()


def test_conv_activations_follow_batch_norm_to_the_activation():
    config = dataclasses.replace(cifar_cnn.PRESETS["quick"], batch_norm=True)
    model = models.cifar_cnn(config.net_spec())
    tensors = callbacks.conv_activations(model)
    assert list(tensors) == ["conv1_1", "conv2_1"]
    probe = keras.Model(model.input, list(tensors.values()))
    outputs = probe(np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32"))
    # ReLU outputs (not the linear conv outputs): never negative, some exact zeros
    assert all(float(np.min(output)) >= 0.0 for output in outputs)
    assert all(float(np.mean(np.asarray(output) == 0)) > 0.05 for output in outputs)
    with pytest.raises(ValueError, match="nope"):
        callbacks.conv_activations(model, ["nope"])


def test_filter_grid_tiles_every_filter():
    kernel = np.random.default_rng(0).normal(size=(5, 5, 3, 6))
    grid = callbacks.filter_grid(kernel, scale=2)
    # 6 filters -> 3 columns x 2 rows of 10x10 tiles with 1-pixel borders
    assert grid.shape == (2 * 11 + 1, 3 * 11 + 1, 3) and grid.dtype == np.uint8
    assert grid.max() == 255 and grid.min() == 0
    assert callbacks.filter_grid(np.ones((3, 3, 16, 4))).shape[-1] == 3


def test_tiny_run_writes_metrics_plots_instrumentation_and_export(tmp_path, empty_data_dir):
    config = dataclasses.replace(TINY, export_dir=str(tmp_path / "saved_models"))
    metrics = cifar_cnn.run(config, str(tmp_path / "run"))
    run_dir = tmp_path / "run"

    saved = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "per_class_accuracy", "train_accuracy", "train_loss",
                "test_loss", "losses", "confusion_matrix", "examples", "export"):
        assert key in saved, key
    assert len(saved["per_class_accuracy"]) == 10
    assert 0.0 <= saved["test_accuracy"] <= 1.0
    assert len(saved["losses"]["train"]) == config.epochs
    assert len(saved["examples"]) == 4 and {"true", "predicted"} <= set(saved["examples"][0])
    assert saved["data"]["cifar10"]["kind"] == "sample"
    assert metrics["test_examples"] == 40
    assert (Path(saved["export"]) / "saved_model.pb").is_file()

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
    model = models.cifar_cnn(dataclasses.replace(TINY, filters=(2, 3), dense_units=(8,)).net_spec())
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    images = np.random.default_rng(0).uniform(-1, 1, size=(40, 32, 32, 3)).astype("float32")
    labels = np.arange(40) % 10
    statistics = callbacks.ActivationStatistics(images[:4], tmp_path / "tb", every_n_steps=3)
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
    folder = sweeps.sweep(cifar_cnn, base, grid, tmp_path / "runs", label="tutorial")

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
    real_run = cifar_cnn.run
    monkeypatch.setattr(cifar_cnn, "run", lambda config, workdir: calls.append(workdir)
                        or real_run(config, workdir))
    # The same command again: the same folder, nothing re-run.
    assert sweeps.sweep(cifar_cnn, base, grid, tmp_path / "runs", label="tutorial") == folder
    assert calls == []
    # An interrupted run (no metrics.json) is run again, alone.
    (runs[1] / "metrics.json").unlink()
    sweeps.sweep(cifar_cnn, base, grid, tmp_path / "runs", label="tutorial")
    assert [Path(workdir).name for workdir in calls] == [runs[1].name]
    assert (runs[1] / "metrics.json").is_file()


def test_sweep_validates_every_combination_before_running(tmp_path, monkeypatch):
    monkeypatch.setattr(cifar_cnn, "run", lambda *args: pytest.fail("a run started"))
    with pytest.raises(ConfigError, match="'lion'"):
        sweeps.sweep(cifar_cnn, TINY, {"optimizer": ["adam", "lion"]}, tmp_path)
    with pytest.raises(ConfigError, match="unknown config key 'colour'"):
        sweeps.sweep(cifar_cnn, TINY, {"colour": ["red"]}, tmp_path)
    assert sweeps.parse_grid(["activation=relu, tanh", "epochs=1"]) == {
        "activation": ["relu", "tanh"], "epochs": ["1"]}
    with pytest.raises(ConfigError, match="twice"):
        sweeps.parse_grid(["epochs=1", "epochs=2"])
