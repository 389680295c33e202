"""Data layer: validation of original files, offline prepare (atomic), listing, loading."""

import gzip
import json
import os
import socket
import tarfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from conftest import make_cifar_dir

from keras_labs import ConfigError, DataError
from keras_labs.data import loading, preparation, specs
from keras_labs.data import text as text_data


def write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def make_mnist_dir(folder, train=60, test=20, seed=0):
    """A tiny MNIST-format dataset: valid files whose checksums do not match tfds's."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (count, 28, 28)), 2051)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(count) % 10, 2049)
    return folder


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = tmp_path / "x.gz"
    write_idx(path, np.zeros((2, 28, 28)), 2049)
    with pytest.raises(DataError, match=r"x.gz: wrong magic number 2049 \(want 2051\)"):
        preparation.read_idx(path, 2051)


def test_read_idx_rejects_truncated_gzip(tmp_path):
    path = tmp_path / "t.gz"
    write_idx(path, np.zeros((50, 28, 28)), 2051)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match=r"t.gz: not a complete gzip file"):
        preparation.read_idx(path, 2051)


def test_read_idx_rejects_size_not_matching_header(tmp_path):
    path = tmp_path / "s.gz"
    with gzip.open(path, "wb") as handle:
        handle.write((2051).to_bytes(4, "big") + (3).to_bytes(4, "big") + (28).to_bytes(4, "big")
                     + (28).to_bytes(4, "big") + bytes(28 * 28 * 2))
    with pytest.raises(DataError, match=r"s.gz: 1584 bytes after decompression, header says 2368"):
        preparation.read_idx(path, 2051)


def test_read_cifar_batch_needs_whole_records(tmp_path):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(bytes(3073 * 2 + 5))
    with pytest.raises(DataError, match=r"data_batch_1.bin: 6151 bytes is not a whole number of 3073-byte"):
        preparation.read_cifar_batch(path)


def test_prepare_recompressed_mnist_uses_our_builder(tmp_path):
    source = make_mnist_dir(tmp_path / "src" / "mnist")
    status = preparation.prepare("mnist", tmp_path / "src", tmp_path / "tfds", log=lambda _: None)
    assert status["prepared"] and status["splits"] == {"train": 60, "test": 20}
    assert status["partial"] is True and "keras_labs builder" in status["method"]
    assert status["origin"] == str(source.resolve())
    datasets, source_info = loading.load("mnist", data="full", data_dir=tmp_path / "tfds")
    images, labels = loading.to_numpy(datasets["train"])
    assert images.shape == (60, 28, 28, 1) and np.bincount(labels).tolist() == [6] * 10
    assert source_info.kind == "full" and source_info.partial
    # Nothing temporary is left in the data dir.
    assert sorted(p.name for p in (tmp_path / "tfds").iterdir()) == ["mnist"]


def test_prepare_partial_cifar_from_extracted_folder_and_archive(tmp_path):
    make_cifar_dir(tmp_path / "src")
    status = preparation.prepare("cifar10", tmp_path / "src", tmp_path / "a", log=lambda _: None)
    assert status["splits"] == {"train": 21, "test": 4} and status["partial"] is True
    builder = tfds.builder("cifar10", data_dir=str(tmp_path / "a"))
    assert builder.info.metadata["partial"] is True  # recorded in the dataset info itself
    info_file = tmp_path / "a" / "cifar10" / "3.0.2" / "dataset_info.json"
    assert "PARTIAL" in json.loads(info_file.read_text())["description"]
    assert builder.info.features["label"].names[0] == "airplane"
    archive_dir = tmp_path / "arch"
    archive_dir.mkdir()
    with tarfile.open(archive_dir / "cifar-10-binary-partial.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-bin", arcname="cifar-10-batches-bin")
    status = preparation.prepare("cifar10", archive_dir, tmp_path / "b", log=lambda _: None)
    assert status["splits"] == {"train": 21, "test": 4}


def test_corrupt_source_leaves_earlier_dataset_intact(tmp_path):
    make_mnist_dir(tmp_path / "good")
    preparation.prepare("mnist", tmp_path / "good", tmp_path / "tfds", log=lambda _: None)
    before = sorted(os.listdir(tmp_path / "tfds" / "mnist" / "3.0.1"))
    bad = make_mnist_dir(tmp_path / "bad", train=30)
    (bad / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: not a complete gzip file"):
        preparation.prepare("mnist", bad, tmp_path / "tfds", force=True, log=lambda _: None)
    assert sorted(os.listdir(tmp_path / "tfds" / "mnist" / "3.0.1")) == before
    assert sorted(p.name for p in (tmp_path / "tfds").iterdir()) == ["mnist"]
    assert loading.dataset_status("mnist", tmp_path / "tfds")["splits"]["train"] == 60


def test_missing_source_file_is_named(tmp_path):
    source = make_mnist_dir(tmp_path / "m")
    (source / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"missing source file .*train-labels-idx1-ubyte.gz"):
        preparation.prepare("mnist", source, tmp_path / "tfds", log=lambda _: None)
    assert not (tmp_path / "tfds" / "mnist").exists()


def test_unknown_dataset_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown dataset 'mnsit'; valid datasets: mnist, fashion_mnist"):
        specs.check_name("mnsit")


def _prepared_mnist(tmp_path):
    """A tiny MNIST prepared with `data prepare`: (source folder, data dir, version folder)."""
    source = make_mnist_dir(tmp_path / "src" / "mnist", train=300, test=20)
    preparation.prepare("mnist", tmp_path / "src", tmp_path / "tfds", log=lambda _: None)
    return source, tmp_path / "tfds", tmp_path / "tfds" / "mnist" / "3.0.1"


def test_a_truncated_shard_fails_on_load_naming_the_command_that_rebuilds_it(tmp_path):
    source, data_dir, version = _prepared_mnist(tmp_path)
    sidecar = json.loads((version / specs.SIDECAR).read_text())
    shard = version / "mnist-train.tfrecord-00000-of-00001"
    # Every file but the sidecar, with its size, is recorded when the dataset is prepared.
    assert sidecar["files"] == {path.name: path.stat().st_size for path in version.iterdir()
                                if path.name != specs.SIDECAR}
    assert sidecar["files"][shard.name] > 0
    assert loading.dataset_status("mnist", data_dir)["damaged"] is None
    size = shard.stat().st_size
    shard.write_bytes(shard.read_bytes()[:size // 3])  # the train shard cut to a third

    expected = (rf"the prepared mnist in {version} is damaged: {shard.name} is {size // 3:,} "
                rf"bytes, {size:,} when prepared; rebuild it with `keras-labs data prepare mnist "
                rf"--force --from {source.resolve()}`")
    with pytest.raises(DataError, match=f"^{expected}$"):
        loading.load("mnist", data="full", data_dir=data_dir)
    with pytest.raises(DataError, match="is damaged"):  # `auto` would read it too
        loading.load("mnist", data="auto", data_dir=data_dir)
    with pytest.raises(DataError, match="is damaged"):  # what the CLI checks before a run
        loading.require(["mnist"], "auto", data_dir)
    loading.require(["mnist"], "sample", data_dir)  # the embedded sample does not read it
    assert loading.dataset_status("mnist", data_dir)["damaged"].startswith(shard.name)
    shard.unlink()
    assert loading.dataset_status("mnist", data_dir)["damaged"] == f"{shard.name} is missing"


def test_a_dataset_prepared_before_sizes_were_recorded_still_loads(tmp_path):
    _, data_dir, version = _prepared_mnist(tmp_path)
    sidecar = json.loads((version / specs.SIDECAR).read_text())
    del sidecar["files"]
    (version / specs.SIDECAR).write_text(json.dumps(sidecar))
    assert loading.dataset_status("mnist", data_dir)["damaged"] is None
    datasets, source = loading.load("mnist", data="full", data_dir=data_dir)
    assert source.kind == "full" and int(datasets["train"].cardinality()) == 300


def test_a_remote_data_dir_passes_through_untouched(tmp_path, monkeypatch):
    remote = "gs://bucket/path/tensorflow_datasets"
    assert loading.resolve_data_dir(remote) == remote  # Path() would make it gs:/bucket/...
    monkeypatch.setenv("TFDS_DATA_DIR", "s3://other-bucket/tfds")
    assert loading.resolve_data_dir() == "s3://other-bucket/tfds"
    assert loading.resolve_data_dir(tmp_path / "x" / ".." / "local") == (tmp_path / "local")
    asked = []

    class NotPrepared:
        def is_prepared(self):
            return False

    def builder(name, data_dir):
        asked.append((name, data_dir))
        return NotPrepared()

    monkeypatch.setattr(tfds, "builder", builder)
    assert loading.is_prepared("mnist", remote) is False
    assert loading.dataset_status("cifar10", remote)["prepared"] is False
    assert asked == [("mnist", remote), ("cifar10", remote)]
    with pytest.raises(ConfigError, match="builds into a local data dir"):
        preparation.prepare("mnist", tmp_path, remote, log=lambda _: None)


def test_full_unprepared_fails_fast_auto_falls_back(empty_data_dir, capsys):
    with pytest.raises(DataError, match=r"not prepared in .*keras-labs data prepare mnist"):
        loading.load("mnist", data="full")
    datasets, source = loading.load("mnist", data="auto")
    assert source.kind == "sample" and source.splits == {"train": 4000, "test": 1000}
    assert "EMBEDDED SAMPLE" in capsys.readouterr().err
    with pytest.raises(DataError, match=r"'svhn_cropped' is not prepared and has no embedded sample"):
        loading.load("svhn_cropped", data="auto")


def test_samples_are_real_and_small():
    datasets, _ = loading.load("cifar10", data="sample")
    images, labels = loading.to_numpy(datasets["train"])
    assert images.shape == (1000, 32, 32, 3) and images.dtype == np.uint8
    assert len(set(labels.tolist())) == 10 and images.std() > 30
    texts, _ = loading.load_text(data="sample", splits=("train", "validation", "test"))
    assert texts["train"].startswith("First Citizen")
    assert sum(len(t) for t in texts.values()) == 1115394
    total = sum(p.stat().st_size for p in specs.SAMPLES_DIR.iterdir())
    assert total < 8e6


def test_image_pipeline_on_mock_data_scales_and_batches():
    with tfds.testing.mock_data(num_examples=20):
        dataset = tfds.load("cifar10", split="train", as_supervised=True)
        batches = loading.image_pipeline(dataset, batch_size=8, training=True, seed=3, augment=True,
                                      normalize="symmetric")
        images, labels = next(iter(batches))
    assert images.shape == (8, 32, 32, 3) and images.dtype == tf.float32
    assert -1.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert labels.shape == (8,)


def test_image_pipeline_shuffle_is_seeded():
    images = np.arange(64, dtype=np.uint8).reshape(64, 1, 1, 1)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(64)))
    def order(seed):
        batches = loading.image_pipeline(dataset, batch_size=64, training=True, seed=seed)
        return next(iter(batches))[1].numpy().tolist()
    assert order(1) == order(1) and order(1) != order(2)
    assert sorted(order(1)) == list(range(64))


def test_image_pipeline_converts_channels_and_size():
    dataset = tf.data.Dataset.from_tensor_slices((np.zeros((4, 28, 28, 1), np.uint8), np.zeros(4)))
    images, _ = next(iter(loading.image_pipeline(dataset, batch_size=4, training=False, channels=3, size=32)))
    assert images.shape == (4, 32, 32, 3)


def test_vocabulary_maps_unknown_to_oov_and_windows_shift():
    vocabulary = text_data.Vocabulary.from_text("hello world")
    assert vocabulary.encode("hZ")[1] == text_data.Vocabulary.OOV_ID
    assert vocabulary.unknown("hZQZ") == ["Z", "Q"]
    assert vocabulary.decode(vocabulary.encode("hello")) == "hello"
    windows = text_data.text_windows(np.arange(20), sequence_length=4, batch_size=2, training=False)
    inputs, targets = next(iter(windows))
    assert inputs.numpy().tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert targets.numpy().tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_every_dataset_the_data_layer_hands_out_runs_without_autotuning(empty_data_dir):
    """The loaders' datasets, the pipelines built on them or on any other dataset, and the text
    windows all have tf.data's autotuning off (`loading.untuned` says why)."""
    splits, _ = loading.load("mnist", ("train",), data="sample")
    digits, _ = loading.load_uci_digits()
    foreign = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 1), np.uint8), np.zeros(4)))
    assert foreign.options().autotune.enabled is None  # TensorFlow's default: tuned
    made = {
        "sample": splits["train"], "uci digits": digits["train"],
        "class subset": loading.class_subset(splits["train"], (0, 1), per_class=2),
        "pipeline on a load": loading.image_pipeline(splits["train"], batch_size=4, training=True,
                                                  augment=True),
        "pipeline on any dataset": loading.image_pipeline(foreign, batch_size=4, training=False),
        "text windows": text_data.text_windows(np.arange(50), sequence_length=4, batch_size=2,
                                          training=True),
        "training windows": text_data.training_windows(np.arange(50), sequence_length=4,
                                                  batch_size=2, stride=4),
    }
    for name, dataset in made.items():
        assert dataset.options().autotune.enabled is False, name
    images, _ = next(iter(made["pipeline on a load"]))
    assert images.shape == (4, 28, 28, 1)


@pytest.mark.realdata
def test_real_data_prepared_and_listed(real_data_dir):
    root = real_data_dir("mnist", "cifar10", "tiny_shakespeare")
    statuses = {status["name"]: status for status in loading.list_datasets(root)}
    assert statuses["mnist"]["splits"] == {"train": 60000, "test": 10000}
    assert statuses["mnist"]["partial"] is False
    assert statuses["cifar10"]["splits"] == {"train": 8152, "test": 1017}
    assert statuses["cifar10"]["partial"] is True
    texts, source = loading.load_text(data="full", data_dir=root, splits=("train", "validation"))
    assert source.kind == "full" and len(texts["train"]) == 1003854
    datasets, source = loading.load("cifar10", ("test",), data="full", data_dir=root)
    assert source.splits == {"test": 1017} and source.partial
    assert datasets["test"].options().autotune.enabled is False


def test_download_without_network_fails_fast_with_advice(tmp_path, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(socket, "create_connection", unreachable)
    with pytest.raises(DataError, match=r"cannot reach storage.googleapis.com .* --from DIR"):
        preparation.prepare("mnist", None, tmp_path / "tfds", log=lambda _: None)
    assert not (tmp_path / "tfds" / "mnist").exists()
