"""The transfer lab: three strategies side by side, the choice made on validation only, the
kept MNIST source model, the natural-image setting (CIFAR-10 0-4 -> 5-9, on the embedded
sample), the SVHN path (tfds mock data), and the fast, clear failure offline."""

import csv
import dataclasses
import hashlib
import json
import socket
import time
import urllib.request
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds
from conftest import run_cli, tiny

from keras_labs import ConfigError, DataError, labs
from keras_labs.data import loading
from keras_labs.labs.transfer import backbones, experiment, phases
from keras_labs.labs.transfer import config as lab_config
from keras_labs.models import cnn
from keras_labs.results import ledger

TINY = tiny("transfer")


def _weights_cached(prefix: str) -> bool:
    from keras.src.backend import config

    return any((Path(config.keras_home()) / "models").glob(f"{prefix}*"))


def _online(host: str = "storage.googleapis.com") -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory):
    return tmp_path_factory.mktemp("transfer")


@pytest.fixture(scope="module")
def digits_run(lab_root):
    # Deterministic: test_best_is_chosen_on_validation_not_test runs it again.
    config = dataclasses.replace(TINY, deterministic=True,
                                 export_dir=str(lab_root / "saved_models")).validate()
    workdir = lab_root / "runs" / "transfer" / "digits"
    return workdir, experiment.run(config, str(workdir)), config


def test_three_strategies_side_by_side_on_digits(digits_run):
    workdir, metrics, _ = digits_run
    on_disk = json.loads((workdir / "metrics.json").read_text())
    for name in ("scratch", "fine_tune", "feature_extraction"):
        result = on_disk[name]["digits"]
        assert 0.0 <= result["validation_accuracy"] <= 1.0
        assert 0.0 <= result["test_accuracy"] <= 1.0
        assert result["time_s"] > 0 and result["epochs"] == 2
    # Feature extraction trains only the new head: 128 features x 10 classes + 10 biases.
    assert on_disk["feature_extraction"]["digits"]["trainable_parameters"] == 128 * 10 + 10
    # Fine-tuning ends with the whole network trainable but the batch norm scales and offsets
    # (2 x (32 + 64) of them), which stay frozen with the moving statistics.
    assert (on_disk["fine_tune"]["digits"]["trainable_parameters"] + 2 * (32 + 64)
            == on_disk["scratch"]["digits"]["trainable_parameters"] > 100_000)
    assert on_disk["fine_tune"]["digits"]["fine_tune_from_epoch"] == 2
    assert set(on_disk["zero_shot"]["digits"]) == {"validation_accuracy", "test_accuracy"}
    assert [row["strategy"] for row in on_disk["table"]] == [
        "zero_shot", "scratch", "fine_tune", "feature_extraction"]
    assert "| digits | feature_extraction |" in (workdir / "table.md").read_text()
    assert on_disk["test_ranking"][0] != on_disk["test_ranking"][-1]
    assert on_disk["data"]["uci_digits"]["kind"] == "full"
    assert on_disk["data"]["mnist"]["kind"] == "sample"


def test_learning_curves_plot_history_and_export(digits_run):
    workdir, metrics, _ = digits_run
    assert (workdir / "plots" / "learning_curves.png").stat().st_size > 10_000
    with open(workdir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(row["strategy"], row["phase"]) for row in rows} == {
        ("scratch", "train"), ("feature_extraction", "train"), ("fine_tune", "warmup"),
        ("fine_tune", "fine_tune")}
    assert len(rows) == 3 * 2
    assert list((workdir / "tb").rglob("events.out.tfevents*"))
    assert Path(metrics["export"], "saved_model.pb").is_file()
    assert metrics["best"]["strategy"] in lab_config.STRATEGIES
    # The curves are the validation part's: their last point is the validation accuracy.
    for name in lab_config.STRATEGIES:
        last = [row for row in rows if row["strategy"] == name][-1]
        assert float(last["val_accuracy"]) == pytest.approx(
            metrics[name]["digits"]["validation_accuracy"], abs=1e-6)


def test_validation_is_carved_from_the_target_training_data(digits_run):
    _, metrics, config = digits_run
    # 256 labelled digits (target_train_examples): a seeded tenth held out.
    assert metrics["validation_split"] == {"target": "digits", "fraction": 0.1, "seed": 0,
                                           "train_examples": 230, "validation_examples": 26}
    assert metrics["target_examples"]["digits"] == {"train": 230, "validation": 26, "test": 200}
    datasets, _ = loading.load_uci_digits(test_fraction=config.digits_test_fraction)
    train, validation, _ = loading.split_validation(datasets["train"].take(256), 0.1, seed=0)
    train_images, _ = loading.to_numpy(train)
    validation_images, _ = loading.to_numpy(validation)
    seen = {image.tobytes() for image in train_images}
    assert not any(image.tobytes() in seen for image in validation_images)


def test_best_is_chosen_on_validation_not_test(digits_run, lab_root, monkeypatch):
    workdir, metrics, config = digits_run
    validation = {name: metrics[name]["digits"]["validation_accuracy"]
                  for name in lab_config.STRATEGIES}
    assert metrics["selected_by"] == "validation_accuracy"
    assert metrics["best"]["strategy"] == max(validation, key=validation.get)
    assert metrics["best"]["validation_accuracy"] == max(validation.values())

    # The same run with every test label shifted by one: the test figures collapse, the
    # choice and everything it was made on stay as they were.
    real_load = loading.load_uci_digits

    def corrupted(**kwargs):
        datasets, source = real_load(**kwargs)
        datasets["test"] = datasets["test"].map(lambda image, label: (image, (label + 1) % 10))
        return datasets, source

    monkeypatch.setattr(loading, "load_uci_digits", corrupted)
    again = experiment.run(config, str(workdir.parent / "digits-corrupted-test"))
    for name in lab_config.STRATEGIES:
        assert again[name]["digits"]["validation_accuracy"] == validation[name]
        assert again[name]["digits"]["test_accuracy"] != metrics[name]["digits"]["test_accuracy"]
    assert again["best"]["strategy"] == metrics["best"]["strategy"]


def test_select_best_reads_validation_accuracy_only():
    results = {"scratch": {"validation_accuracy": 0.6, "test_accuracy": 0.99},
               "fine_tune": {"validation_accuracy": 0.8, "test_accuracy": 0.10},
               "feature_extraction": {"validation_accuracy": 0.8, "test_accuracy": 0.50}}
    assert experiment.select_best(results) == "fine_tune"  # a tie keeps the first
    results["scratch"]["validation_accuracy"] = 0.81
    assert experiment.select_best(results) == "scratch"


def test_source_model_is_kept_and_reused(digits_run, lab_root):
    _, metrics, config = digits_run
    kept = Path(metrics["source"]["path"])
    assert kept.is_file() and kept.parent.parent.name == "_models"
    assert metrics["source"]["reused"] is False and 0.0 <= metrics["source"]["test_accuracy"] <= 1.0
    assert not list(kept.parent.parent.glob(".*partial*")), "a staging folder was left behind"
    model, info = experiment.suite_source(config, _Recorder(config))
    assert info["reused"] is True and info["test_accuracy"] == metrics["source"]["test_accuracy"]
    assert model.get_layer("features").output.shape[-1] == 128


def test_source_cache_key_is_the_recipe(digits_run):
    # The key of a kept source: a new or renamed field would silently retrain every kept one.
    _, metrics, config = digits_run
    recipe = {"architecture": "models.mnist_cnn", "input_shape": [32, 32, 3], "data": "sample",
              "splits": metrics["source"]["recipe"]["splits"], "seed": config.seed,
              "train_examples": 512, "epochs": 1, "learning_rate": 2e-3, "batch_size": 128}
    assert metrics["source"]["recipe"] == recipe
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]
    assert Path(metrics["source"]["path"]).parent.name == f"mnist_source-{digest}"


class _Recorder:
    """Stands in for a Run where only load_data is used (a reused source trains nothing)."""

    run_id = "reuse-check"

    def __init__(self, config):
        self.config = config

    def load_data(self, name):
        return loading.load(name, ("train", "test"), data=self.config.data,
                            data_dir=self.config.data_dir)


def test_fine_tuning_keeps_batch_norm_in_inference_mode():
    keras.utils.set_random_seed(0)
    source = cnn.mnist_cnn(input_shape=(32, 32, 3), filters=(4, 8), dense_units=8)
    base = keras.Model(source.input, source.get_layer("features").output)
    backbones.unfreeze_except_batch_norm(base)
    model = backbones.transfer_model(base, [], pretrained=True, dropout=0.0, name="check")
    model.compile(optimizer=keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    batch_norm = base.get_layer("bn1_1")
    conv = base.get_layer("conv1_1")
    mean_before = np.array(batch_norm.moving_mean)
    gamma_before = np.array(batch_norm.gamma)
    kernel_before = np.array(conv.kernel)
    images = np.random.default_rng(0).random((32, 32, 32, 3), dtype=np.float32) * 5
    model.fit(images, np.arange(32) % 10, epochs=1, batch_size=32, verbose=0)
    np.testing.assert_array_equal(np.array(batch_norm.moving_mean), mean_before)
    np.testing.assert_array_equal(np.array(batch_norm.gamma), gamma_before)
    assert not np.allclose(np.array(conv.kernel), kernel_before), "the base did not train"


def test_fit_phases_skips_a_reached_phase_and_unfreezes_before_recompiling(tmp_path):
    keras.utils.set_random_seed(0)
    source = cnn.mnist_cnn(input_shape=(32, 32, 3), filters=(4, 8), dense_units=8)
    base = backbones.base_copy(
        keras.Model(source.input, source.get_layer("features").output), pretrained=True)
    model = backbones.transfer_model(base, [], pretrained=True, dropout=0.0, name="check")
    images = np.random.default_rng(0).random((16, 32, 32, 3), dtype=np.float32)
    calls = []

    def fit(phase, model, **epochs):
        calls.append((phase, epochs, backbones.trainable_parameters(model)))
        return model.fit(images, np.arange(16) % 10, batch_size=8, verbose=0, **epochs)

    Phase = phases.Phase
    head = 8 * 10 + 10
    history = phases.fit_phases(
        model, base, [Phase("warmup", 1e-3, 1), Phase("again", 1e-3, 1),
                      Phase("fine_tune", 1e-4, 3, unfreeze=True)], fit=fit)
    # "again" ends where the warm-up did: nothing to train. Fine-tuning sees the unfrozen base.
    assert [(phase, epochs) for phase, epochs, _ in calls] == [
        ("warmup", {"epochs": 1, "initial_epoch": 0}),
        ("fine_tune", {"epochs": 3, "initial_epoch": 1})]
    assert calls[0][2] == head < calls[1][2]
    assert history["phase"] == ["warmup", "fine_tune", "fine_tune"]
    assert len(history["loss"]) == 3 and all(isinstance(value, float) for value in history["loss"])

    path = tmp_path / "history.csv"
    phases.write_history(path, {("digits", "fine_tune"): {**history,
                                                          "val_accuracy": [0.1] * 3}})
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:4] == ["target", "strategy", "epoch", "phase"]
    assert [(row["epoch"], row["phase"]) for row in rows] == [
        ("1", "warmup"), ("2", "fine_tune"), ("3", "fine_tune")]


def test_base_copy_is_frozen_pretrained_or_fresh_and_trainable():
    keras.utils.set_random_seed(0)
    source = cnn.mnist_cnn(input_shape=(32, 32, 3), filters=(4, 8), dense_units=8)
    base = keras.Model(source.input, source.get_layer("features").output)
    pretrained = backbones.base_copy(base, pretrained=True)
    fresh = backbones.base_copy(base, pretrained=False)
    assert pretrained is not base and not pretrained.trainable and fresh.trainable
    kernel = base.get_layer("conv1_1").kernel
    np.testing.assert_array_equal(np.array(pretrained.get_layer("conv1_1").kernel), kernel)
    assert not np.allclose(np.array(fresh.get_layer("conv1_1").kernel), kernel)
    assert backbones.trainable_parameters(pretrained) == 0


def test_held_out_inputs_keep_validation_apart_from_training():
    labels = np.arange(40, dtype=np.int64)
    images = np.repeat(np.arange(40, dtype=np.uint8), 4).reshape(40, 2, 2, 1)
    sets = loading.held_out_inputs(tf_dataset(images, labels),
                                   tf_dataset(images[:7], labels[:7]),
                                   fraction=0.25, seed=3, batch_size=8, channels=3)
    assert sets.examples == {"train": 30, "validation": 10, "test": 7}
    trained = np.concatenate([batch.numpy() for _, batch in sets.make_train()])
    held_out = np.concatenate([batch.numpy() for _, batch in sets.validation])
    assert sorted([*trained, *held_out]) == list(range(40)) and len(set(held_out)) == 10
    # Every call gives the same shuffled epoch (a resumed fit reads the same batches).
    again = np.concatenate([batch.numpy() for _, batch in sets.make_train()])
    np.testing.assert_array_equal(trained, again)
    assert sets.probe.shape == (10, 2, 2, 3)
    assert loading.held_out_inputs(tf_dataset(images, labels), tf_dataset(images, labels),
                                   fraction=0.0, seed=0, batch_size=8).validation is None


def _write_svhn_metadata(data_dir: Path) -> None:
    """The dataset_info files tfds needs to call svhn_cropped prepared; the examples are mocked."""
    builder = tfds.builder("svhn_cropped", data_dir=str(data_dir))
    Path(builder.data_dir).mkdir(parents=True)
    builder.info.write_to_directory(builder.data_dir)


def test_svhn_target_through_tfds_mock_data(lab_root, monkeypatch):
    data_dir = lab_root / "tfds"
    _write_svhn_metadata(data_dir)
    monkeypatch.setenv("TFDS_DATA_DIR", str(data_dir))
    # data=auto: MNIST is not prepared there, so the source comes from the embedded sample (the
    # same recipe as the digits run, so it is reused), while svhn_cropped counts as prepared.
    config = dataclasses.replace(TINY, data="auto", data_dir=str(data_dir),
                                 export_dir=str(lab_root / "saved_models"),
                                 targets=("svhn_cropped",)).validate()
    with tfds.testing.mock_data(num_examples=64, data_dir=str(data_dir)):
        metrics = experiment.run(config, str(lab_root / "runs" / "transfer" / "svhn"))
    assert metrics["source"]["reused"] is True
    assert metrics["data"]["svhn_cropped"]["kind"] == "full"
    for name in ("scratch", "fine_tune", "feature_extraction"):
        assert set(metrics[name]) == {"svhn_cropped"}
        assert 0.0 <= metrics[name]["svhn_cropped"]["test_accuracy"] <= 1.0
    assert 0.0 <= metrics["zero_shot"]["svhn_cropped"]["test_accuracy"] <= 1.0
    # 64 mocked training examples, a tenth of them held out.
    assert metrics["target_examples"]["svhn_cropped"] == {"train": 58, "validation": 6, "test": 64}
    for entry in _items("svhn"):
        assert isinstance(ledger.lookup(metrics, entry.metric), float), entry.item


def test_svhn_not_prepared_is_a_clear_data_error(empty_data_dir):
    with pytest.raises(DataError, match="svhn_cropped.*keras-labs data prepare"):
        loading.load("svhn_cropped", data="auto", data_dir=empty_data_dir)


@pytest.mark.skipif(_weights_cached("mobilenet_v2"), reason="ImageNet weights are cached here")
def test_imagenet_offline_fails_fast_and_clearly(tmp_path):
    if _online():
        pytest.skip("the network is reachable: the weights would download")
    config = dataclasses.replace(TINY, source="imagenet", export_dir=str(tmp_path / "sm")).validate()
    start = time.perf_counter()
    with pytest.raises(DataError, match="ImageNet weights of mobilenet_v2.*cifar-natural"):
        experiment.run(config, str(tmp_path / "run"))
    assert time.perf_counter() - start < 20
    assert not (tmp_path / "sm").exists(), "nothing is trained or exported without a source"


@pytest.mark.skipif(_weights_cached("mobilenet_v2"), reason="ImageNet weights are cached here")
def test_imagenet_download_that_hangs_times_out(monkeypatch):
    # A server that accepts the connection and never answers, like a firewall that drops packets.
    server = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{server.getsockname()[1]}/weights.h5"
    real_retrieve = urllib.request.urlretrieve
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve",
                        lambda origin, filename, hook=None: real_retrieve(url, filename, hook))
    start = time.perf_counter()
    try:
        with pytest.raises(DataError, match="ImageNet weights"):
            backbones.imagenet_base("mobilenet_v2", 96, timeout=1.0)
    finally:
        server.close()
    assert time.perf_counter() - start < 20
    assert socket.getdefaulttimeout() is None, "the socket timeout leaked"


def _stand_in_backbone(include_top, weights, input_shape):
    """A tiny convolutional network shaped like a keras.applications backbone without its top."""
    assert (include_top, weights) == (False, "imagenet")
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    outputs = keras.layers.ReLU()(x)
    return keras.Model(inputs, outputs)


def test_imagenet_path_end_to_end_with_a_stand_in_backbone(tmp_path, monkeypatch):
    # Everything but the download: resized and rescaled inputs, pooled 4-D features, no
    # zero-shot score (ImageNet classes are not digits), batch norm frozen while fine-tuning.
    monkeypatch.setattr(keras.applications, "MobileNetV2", _stand_in_backbone)
    config = dataclasses.replace(TINY, source="imagenet", imagenet_size=40, epochs=2,
                                 warmup_epochs=1, target_train_examples=64,
                                 target_test_examples=64, export_dir=str(tmp_path / "sm")).validate()
    metrics = experiment.run(config, str(tmp_path / "run"))
    assert metrics["source"] == {"kind": "imagenet", "backbone": "mobilenet_v2", "input_size": 40}
    assert lab_config.PRESETS["imagenet"].source == "imagenet"
    assert metrics["zero_shot"] == {}
    head = 8 * 10 + 10  # 8 pooled features -> 10 classes
    assert metrics["feature_extraction"]["digits"]["trainable_parameters"] == head
    assert metrics["fine_tune"]["digits"]["trainable_parameters"] == head + 3 * 3 * 3 * 8
    assert metrics["scratch"]["digits"]["trainable_parameters"] == head + 3 * 3 * 3 * 8 + 2 * 8
    assert [row["strategy"] for row in metrics["table"]] == list(lab_config.STRATEGIES)


def test_config_rejects_unknown_target_and_warmup_beyond_epochs():
    with pytest.raises(ConfigError, match="'mnist_m'"):
        dataclasses.replace(TINY, targets=("digits", "mnist_m")).validate()
    with pytest.raises(ConfigError, match="warmup_epochs=2"):
        dataclasses.replace(TINY, epochs=2, warmup_epochs=2).validate()
    with pytest.raises(ConfigError, match="twice"):
        dataclasses.replace(TINY, targets=("digits", "digits")).validate()
    with pytest.raises(ConfigError, match="validation_fraction=0.0"):
        dataclasses.replace(TINY, validation_fraction=0.0).validate()


def test_uci_digits_split_is_fixed_and_stratified():
    first, source = loading.load_uci_digits()
    second, _ = loading.load_uci_digits()
    images, labels = loading.to_numpy(first["test"])
    again, _ = loading.to_numpy(second["test"])
    np.testing.assert_array_equal(images, again)
    assert images.shape[1:] == (8, 8, 1) and images.dtype == np.uint8 and images.max() == 255
    assert source.splits == {"train": 1347, "test": 450}
    assert np.bincount(labels).min() >= 40  # every class held out in proportion


def _items(preset: str) -> list:
    return [entry for entry in ledger.items(lab="transfer") if entry.preset == preset]


def tf_dataset(images, labels):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((images, labels))


def test_class_subset_keeps_the_first_of_each_class_relabelled():
    labels = np.array([9, 5, 0, 5, 7, 9, 5, 3, 7, 8, 6, 6, 6], dtype=np.int64)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    subset = loading.class_subset(tf_dataset(images, labels), lab_config.TARGET_CLASSES, 2)
    kept_images, kept_labels = loading.to_numpy(subset)
    # In the split's order; 5 -> 0 ... 9 -> 4; a third 5 and a third 6 are left out.
    assert kept_images.ravel().tolist() == [0, 1, 3, 4, 5, 8, 9, 10, 11]
    assert kept_labels.tolist() == [4, 0, 0, 2, 4, 2, 3, 1, 1]
    _, everything = loading.to_numpy(loading.class_subset(tf_dataset(images, labels), (0, 3)))
    assert everything.tolist() == [0, 1]


def test_the_broad_source_leaves_out_the_targets_labelled_images():
    labels = np.array([9, 5, 0, 5, 7, 9, 5, 3, 7, 8, 6, 6, 6], dtype=np.int64)
    images = np.arange(len(labels), dtype=np.uint8).reshape(-1, 1, 1, 1)
    held_back = {label: 2 for label in lab_config.TARGET_CLASSES}
    rest_images, rest_labels = loading.to_numpy(
        backbones.without_first(tf_dataset(images, labels), held_back))
    target, _ = loading.to_numpy(loading.class_subset(tf_dataset(images, labels),
                                                      lab_config.TARGET_CLASSES, 2))
    # Every image is in exactly one of the two: the target's first 2 of each class, the rest.
    assert sorted(rest_images.ravel().tolist() + target.ravel().tolist()) == list(range(13))
    assert not set(rest_images.ravel().tolist()) & set(target.ravel().tolist())
    assert rest_labels.tolist() == [0, 5, 3, 6]  # the original labels, in order
    with pytest.raises(ValueError, match=r"held_back\[5\]=-1"):
        backbones.without_first(tf_dataset(images, labels), {5: -1})
    with pytest.raises(ConfigError, match="source='cifar10_rest'.*'digits'"):
        dataclasses.replace(TINY, source="cifar10_rest", targets=("digits",)).validate()
    assert lab_config.CIFAR_REST_SOURCE.num_classes == 10


@pytest.fixture(scope="module")
def natural_run(lab_root):
    config = dataclasses.replace(
        TINY, source="cifar10_0_4", targets=("cifar10_5_9",), target_per_class=20,
        validation_fraction=0.2, source_train_examples=256, target_train_examples=0,
        target_test_examples=0, export_dir=str(lab_root / "saved_models")).validate()
    return experiment.run(config, str(lab_root / "runs" / "transfer" / "natural"))


def test_natural_image_setting_on_the_cifar_sample(natural_run):
    metrics = natural_run
    assert metrics["source"]["kind"] == "cifar10_0_4" and metrics["source"]["reused"] is False
    assert metrics["source"]["classes"] == ["airplane", "automobile", "bird", "cat", "deer"]
    assert metrics["data"]["cifar10"]["kind"] == "sample"
    assert metrics["zero_shot"] == {}, "the source's classes are not the target's"
    # 20 labelled images of each of classes 5-9, a fifth held out; every sample test image of
    # those classes (25 + 29 + 24 + 34 + 28).
    assert metrics["target_examples"]["cifar10_5_9"] == {"train": 80, "validation": 20, "test": 140}
    results = {name: metrics[name]["cifar10_5_9"] for name in lab_config.STRATEGIES}
    # The head reads the source's 256 dense features and has 5 classes.
    assert results["feature_extraction"]["trainable_parameters"] == 256 * 5 + 5
    # Fine-tuning: all but the batch norm scales and offsets (2 x (32 + 32 + 64 + 64 + 128 + 128)).
    assert (results["fine_tune"]["trainable_parameters"] + 2 * 448
            == results["scratch"]["trainable_parameters"] > 500_000)
    test = {name: result["test_accuracy"] for name, result in results.items()}
    assert metrics["feature_extraction_best"] == (
        test["feature_extraction"] > max(test["scratch"], test["fine_tune"]))
    assert metrics["fine_tune_worst"] == (test["fine_tune"] < min(test["scratch"],
                                                                   test["feature_extraction"]))
    assert metrics["test_ranking"] == sorted(test, key=lambda name: -test[name])
    validation = {name: result["validation_accuracy"] for name, result in results.items()}
    assert metrics["best"]["strategy"] == max(validation, key=validation.get)
    model = keras.saving.load_model(Path(metrics["source"]["path"]), compile=False)
    assert model.output.shape[-1] == 5


def test_natural_preset_and_its_seed_items(natural_run):
    preset = lab_config.PRESETS["cifar-natural"]
    assert (preset.source, preset.targets, preset.target_per_class) == (
        "cifar10_0_4", ("cifar10_5_9",), 100)
    found = {entry.item: entry for entry in _items("cifar-natural")}
    assert sorted(found) == ["000-ex2-feature-extraction", "000-ex2-fine-tune",
                             "000-ex2-ordering", "000-ex2-scratch"]
    # The second attempt at the ordering changes the source only.
    broad = lab_config.PRESETS["cifar-broad-source"]
    assert broad == dataclasses.replace(preset, source="cifar10_rest")
    [attempt] = _items("cifar-broad-source")
    assert found["000-ex2-ordering"].attempts == attempt.item
    assert attempt.condition == found["000-ex2-ordering"].condition
    assert [found[key].seed for key in ("000-ex2-scratch", "000-ex2-fine-tune",
                                        "000-ex2-feature-extraction")] == [0.67, 0.62, 0.83]
    for entry in found.values():  # every declared metric is in the run's metrics
        value = ledger.lookup(natural_run, entry.metric)
        assert isinstance(value, bool if entry.qualitative else float), entry.item
    assert set(labs.seed_items(lab_config.NAME).minutes) == set(lab_config.PRESETS) - {"quick"}


def _offline() -> bool:
    return not _online() and not _weights_cached("mobilenet_v2")


@pytest.mark.parametrize("preset, needs", [("svhn", "svhn_cropped"),
                                           ("imagenet", "ImageNet weights")])
def test_online_presets_fail_offline_in_one_line(preset, needs, tmp_path, empty_data_dir):
    if preset == "imagenet" and not _offline():
        pytest.skip("the ImageNet weights can be had here")
    start = time.perf_counter()
    result = run_cli("run", "transfer", "--preset", preset, "--out", str(tmp_path / "runs"),
                     "--export-dir", str(tmp_path / "sm"), env={"TFDS_DATA_DIR": empty_data_dir})
    assert time.perf_counter() - start < 120
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and needs in errors[0], result.stderr
    assert not (tmp_path / "sm").exists(), "nothing is trained without the data"
