"""The autoencoder lab: joint loss, metrics (PSNR/SSIM), channel-zeroing reconstructions, the w
sweep, grids and export."""

import csv
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import tiny

from keras_labs import ConfigError, labs
from keras_labs.labs.autoencoder import config as lab_config
from keras_labs.labs.autoencoder import experiment
from keras_labs.labs.autoencoder.model import build_autoencoder

TINY = tiny("autoencoder")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoencoder")
    config = dataclasses.replace(TINY, w_sweep=(0.0, 0.1),
                                 export_dir=str(root / "sm")).validate()
    workdir = root / "run"
    return workdir, experiment.run(config, str(workdir)), config


def test_metrics_hold_accuracy_psnr_ssim_and_the_loss_table(tiny_run):
    workdir, metrics, config = tiny_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for key in ("test_accuracy", "psnr", "ssim", "test_reconstruction_loss",
                "test_classification_loss", "test_total_loss"):
        assert on_disk[key] == pytest.approx(metrics[key])
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert 0.0 < metrics["psnr"] < 60.0 and -1.0 <= metrics["ssim"] <= 1.0
    (row,) = metrics["epochs"]
    assert set(row) >= {"reconstruction", "classification", "total", "val_reconstruction",
                        "val_classification", "val_total"}
    # The joint loss is what the lab says: reconstruction + w * classification.
    assert row["val_total"] == pytest.approx(row["val_reconstruction"]
                                             + config.w * row["val_classification"], abs=1e-4)
    with open(workdir / "history.csv", newline="") as handle:
        columns = next(csv.reader(handle))
    assert {"reconstruction_loss", "class_loss", "loss", "val_reconstruction_loss",
            "val_class_loss", "val_loss"} <= set(columns)


def test_curves_are_on_validation_and_the_test_split_is_scored_after(tiny_run):
    _, metrics, _ = tiny_run
    # 128 training examples: a seeded 10% held out for the curves; the 250 sample test images
    # are scored once, after training.
    assert metrics["validation_split"] == {"fraction": 0.1, "seed": 0, "train_examples": 115,
                                           "validation_examples": 13}
    (row,) = metrics["epochs"]
    assert metrics["validation_reconstruction_loss"] == pytest.approx(row["val_reconstruction"],
                                                                      abs=1e-5)
    assert metrics["validation_classification_loss"] == pytest.approx(
        row["val_classification"], abs=1e-5)
    assert metrics["validation_total_loss"] == pytest.approx(row["val_total"], abs=1e-5)
    assert round(metrics["validation_accuracy"] * 13, 4).is_integer()
    assert metrics["test_examples"] == 250
    # On different images, the validation and test reconstruction losses differ.
    assert metrics["validation_reconstruction_loss"] != pytest.approx(
        metrics["test_reconstruction_loss"], abs=1e-7)
    assert [row["validation_accuracy"] is not None for row in metrics["w_sweep"]] == [True, True]
    assert metrics["figures_written"] == {"z1_channels": True, "z2_channels": True}
    items = {item.item: item for item in labs.seed_items(lab_config.NAME).items}
    assert items["004-t2-accuracy"].seed == 0.5615
    assert items["003-q2-cnn-vs-autoencoder"].versus == "cifar-cnn/minor-10ep:test_accuracy"


def test_run_leaves_grids_sweep_plot_and_export(tiny_run):
    workdir, metrics, _ = tiny_run
    plots = {p.name for p in (workdir / "plots").iterdir()}
    assert plots >= {"reconstructions.png", "z1_channels.png", "z2_channels.png", "curves.png",
                     "w_tradeoff.png"}
    assert [row["w"] for row in metrics["w_sweep"]] == [0.0, 0.1]
    assert metrics["w_sweep"][1]["psnr"] == pytest.approx(metrics["psnr"])
    assert (workdir / "history_w0.csv").exists()
    reloaded = tf.saved_model.load(metrics["export"])  # kept: serve() needs its variables
    served = reloaded.serve(tf.zeros((2, 32, 32, 3), tf.uint8))  # raw pixels, scaled inside
    assert served["class"].shape == (2, 10) and served["reconstruction"].shape == (2, 32, 32, 3)


def test_evaluate_computes_the_losses_keras_trains_on():
    import keras

    tf.keras.utils.set_random_seed(1)
    parts = build_autoencoder((32, 32, 3), head_units=(8,))
    parts.model.compile(loss={"class": keras.losses.SparseCategoricalCrossentropy(),
                              "reconstruction": keras.losses.MeanSquaredError()},
                        loss_weights={"class": 0.3, "reconstruction": 1.0})
    rng = np.random.default_rng(2)
    # Equal batches: Keras averages the batch means, `evaluate` the examples.
    images = rng.random((32, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, 32)
    test = tf.data.Dataset.from_tensor_slices(
        (images, {"class": labels, "reconstruction": images})).batch(16)
    metrics = experiment.evaluate(parts.model, test, 0.3)
    expected = parts.model.evaluate(test, return_dict=True, verbose=0)
    assert metrics["test_reconstruction_loss"] == pytest.approx(expected["reconstruction_loss"],
                                                                rel=1e-4)
    assert metrics["test_classification_loss"] == pytest.approx(expected["class_loss"], rel=1e-4)
    assert metrics["test_total_loss"] == pytest.approx(expected["loss"], rel=1e-4)
    assert metrics["test_examples"] == 32


@pytest.mark.parametrize("input_shape", [(32, 32, 3), (28, 28, 1)])
def test_channel_zeroing_reconstructions(input_shape):
    tf.keras.utils.set_random_seed(0)
    parts = build_autoencoder(input_shape, head_units=(8,))
    image = np.random.default_rng(0).random(input_shape, dtype=np.float32)
    views = experiment.channel_reconstructions(parts, image, group_size=3)
    assert views["full"].shape == (1, *input_shape)
    assert views["z1"].shape == (6, *input_shape)  # one per z1 channel
    assert views["z2"].shape == (6, *input_shape)  # 16 channels in groups of 3: 5 + 1
    whole = parts.model(image[None])["reconstruction"].numpy()
    np.testing.assert_allclose(views["full"], whole, rtol=1e-5, atol=1e-6)
    # One group of all 16 channels zeroes nothing.
    np.testing.assert_allclose(
        experiment.channel_reconstructions(parts, image, group_size=16)["z2"], whole,
        rtol=1e-5, atol=1e-6)
    # Keeping one channel really changes the reconstruction, and differently per channel.
    assert not np.allclose(views["z1"][0], views["z1"][1])
    assert np.abs(views["z2"] - whole).max() > 1e-4


def test_config_rejects_bad_stages_and_groups():
    with pytest.raises(ConfigError, match="channels=\\(6,\\)"):
        dataclasses.replace(TINY, channels=(6,)).validate()
    with pytest.raises(ConfigError, match="group_size=20"):
        dataclasses.replace(TINY, group_size=20).validate()
    with pytest.raises(ConfigError, match="w_sweep"):
        dataclasses.replace(TINY, w_sweep=(0.1, -1.0)).validate()
    assert lab_config.PRESETS["w-sweep"].w_sweep == (0.0, 0.1, 1.0, 10.0)
    assert lab_config.PRESETS["seed"].w == 0.1


@pytest.mark.realdata
def test_real_cifar10_tiny_run(tmp_path, real_data_dir):
    data_dir = real_data_dir("cifar10")
    config = dataclasses.replace(TINY, data="full", data_dir=data_dir,
                                 export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    assert metrics["data"]["cifar10"]["kind"] == "full"
    assert metrics["psnr"] > 0 and len(list((tmp_path / "run" / "plots").glob("*.png"))) >= 3


def test_equal_updates_scales_the_epochs_to_the_reports_gradient_steps(tmp_path):
    config = tiny("autoencoder", equal_updates_examples=345, w_sweep=(),
                  export_dir=str(tmp_path / "exports"))
    metrics = experiment.run(config, str(tmp_path / "run"))
    # 128 images, 13 held out: 115 train; 345 / 115 = 3 times the 1 epoch asked for.
    assert metrics["validation_split"]["train_examples"] == 115
    assert metrics["epochs_run"] == 3 and len(metrics["epochs"]) == 3
    from keras_labs import training

    assert training.equal_update_epochs(10, 50000, 7337) == 68
    assert training.equal_update_epochs(10, 0, 7337) == 10
    assert training.equal_update_epochs(10, 5000, 7337) == 10
