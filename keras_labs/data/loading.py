"""Loading: where datasets live, whether they are prepared, and their input pipelines.

Every dataset loads through tensorflow-datasets from a tfds data dir (`--data-dir`, else
`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`) with `download=False`;
`keras_labs.data.preparation` fills that dir. When a dataset is not prepared, labs fall back to
small real samples shipped in `keras_labs/samples/` (unless `--data full`), and say so loudly.

A prepared dataset's sidecar (`keras_labs.json`, written by `data prepare`) records the size of
every file; a dataset is checked against it whenever it is loaded and in `keras-labs data list`,
so a truncated or missing shard fails before training, in one line that says how to rebuild it.

Nothing here imports the preparation module, so a run starts without its tfds builder classes.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_labs import ConfigError, DataError
from keras_labs.data.specs import (
    CIFAR10_CLASSES,
    DATASETS,
    SAMPLES_DIR,
    SIDECAR,
    check_name,
)


@dataclasses.dataclass
class DataSource:
    """Where a lab's data came from; recorded in the run's `env.json` and `metrics.json`."""

    name: str
    kind: str  # "full" (prepared tfds data) or "sample" (embedded)
    partial: bool
    origin: str
    splits: dict[str, int]
    data_dir: str | None = None

    def describe(self) -> str:
        counts = ", ".join(f"{count:,} {split}" for split, count in self.splits.items())
        extra = " PARTIAL" if self.partial else ""
        return f"{self.name}: {self.kind}{extra} ({counts}) from {self.origin}"


# --------------------------------------------------------------------------------------------
# Locations and status


# A URL-like path (gs://bucket/tfds, s3://..., hdfs://...): tfds reads it through tf.io.gfile.
_REMOTE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path: str | os.PathLike) -> bool:
    """Whether `path` is a URL-like remote path such as `gs://bucket/tfds`."""
    return bool(_REMOTE.match(os.fspath(path)))


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path | str:
    """The tfds data dir: the argument, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`.

    A local folder is made absolute; a remote one (`gs://bucket/path`, any `scheme://`) is
    returned as the string it is, since `Path` would fold its `//` and break it.
    """
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    if is_remote(chosen):
        return os.fspath(chosen)
    return Path(chosen).expanduser().resolve()


def _join(folder: Path | str, *names: str) -> Path | str:
    """`folder / names`, for a local `Path` or a remote path string."""
    return Path(folder, *names) if isinstance(folder, Path) else "/".join(
        [str(folder).rstrip("/"), *names])


def _builder(name: str, data_dir: Path | str):
    try:
        return tfds.builder(name, data_dir=str(data_dir))
    except Exception as error:  # noqa: BLE001 (tfds raises many kinds for a damaged folder)
        if not tf.io.gfile.exists(str(_join(data_dir, name))):
            raise
        lines = str(error).strip().splitlines()
        reason = lines[-1] if lines else type(error).__name__
        raise DataError(f"the prepared {name} under {str(data_dir)!r} is unreadable "
                        f"({reason[:160]}); rebuild it with `keras-labs data prepare {name} "
                        "--force`") from None


def is_prepared(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    check_name(name)
    return _builder(name, resolve_data_dir(data_dir)).is_prepared()


def _read_sidecar(version_dir: Path | str) -> dict:
    try:
        with tf.io.gfile.GFile(str(_join(version_dir, SIDECAR))) as handle:
            return json.loads(handle.read())
    except (OSError, ValueError, tf.errors.OpError):
        return {}


def file_sizes(version_dir: Path) -> dict[str, int]:
    """{path relative to `version_dir`: size in bytes} of every file of a prepared dataset but
    the sidecar: what `data prepare` records and `dataset_status` checks."""
    return {path.relative_to(version_dir).as_posix(): path.stat().st_size
            for path in sorted(version_dir.rglob("*")) if path.is_file() and path.name != SIDECAR}


def _size(path: Path | str) -> int | None:
    try:
        return tf.io.gfile.stat(str(path)).length
    except tf.errors.NotFoundError:
        return None


def _damage(version_dir: Path | str, recorded: dict[str, int]) -> str | None:
    """What differs between a prepared dataset's files and the sizes recorded when it was
    prepared (None: nothing, or no sizes were recorded). A stat per file: milliseconds."""
    problems = []
    for relative, size in recorded.items():
        actual = _size(_join(version_dir, *relative.split("/")))
        if actual is None:
            problems.append(f"{relative} is missing")
        elif actual != size:
            problems.append(f"{relative} is {actual:,} bytes, {size:,} when prepared")
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return problems[0] + more


def rebuild_command(name: str, origin: str | None) -> str:
    """The `keras-labs data prepare` command that rebuilds `name` from where it came from."""
    source = "" if origin in (None, "download") else f" --from {shlex.quote(origin)}"
    return f"keras-labs data prepare {name} --force{source}"


def damage_message(status: dict) -> str:
    """The one-line error of a damaged dataset's `dataset_status`: what differs, and the
    command that rebuilds it."""
    return (f"the prepared {status['name']} in {status['path']} is damaged: {status['damaged']}; "
            f"rebuild it with `{rebuild_command(status['name'], status['origin'])}`")


def dataset_status(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Prepared or not, splits with example counts, origin and partial flag of one dataset, and
    `damaged`: None, or how its files differ from the sizes recorded when it was prepared (a
    dataset prepared before sizes were recorded is not checked)."""
    spec = check_name(name)
    root = resolve_data_dir(data_dir)
    builder = _builder(name, root)
    status = {"name": name, "prepared": builder.is_prepared(), "sample": spec.sample is not None}
    if status["prepared"]:
        version_dir = builder.data_dir if is_remote(root) else Path(builder.data_dir)
        sidecar = _read_sidecar(version_dir)
        metadata = builder.info.metadata or {}
        splits = {split: info.num_examples for split, info in builder.info.splits.items()}
        status.update(
            version=str(builder.version),
            path=str(version_dir),
            splits=splits,
            partial=bool(sidecar.get("partial", metadata.get("partial", False))),
            origin=sidecar.get("origin", "tfds (prepared outside keras-labs)"),
            method=sidecar.get("method", "unknown"),
            damaged=_damage(version_dir, sidecar.get("files", {})),
        )
    return status


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    return [dataset_status(name, data_dir) for name in DATASETS]



# --------------------------------------------------------------------------------------------
# Embedded samples


def _sample_arrays(name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    spec = check_name(name)
    if spec.sample is None:
        raise DataError(f"dataset {name!r} is not prepared and has no embedded sample; "
                        f"run: keras-labs data prepare {name} --from DIR")
    with np.load(SAMPLES_DIR / spec.sample, allow_pickle=False) as archive:
        return {split: (archive[f"{split}_images"], archive[f"{split}_labels"])
                for split in ("train", "test")}


def sample_text() -> str:
    with gzip.open(SAMPLES_DIR / "tiny_shakespeare.txt.gz", "rt", encoding="utf-8") as handle:
        return handle.read()



def split_shakespeare(text: str) -> dict[str, str]:
    """The tfds 90/5/5 split of Tiny Shakespeare, by characters."""
    cut = int(len(text) * 0.9)
    train, rest = text[:cut], text[cut:]
    cut = int(len(rest) * 0.5)
    return {"train": train, "validation": rest[:cut], "test": rest[cut:]}


# --------------------------------------------------------------------------------------------
# Loading


def require(names: Iterable[str], data: str, data_dir=None) -> None:
    """Fails fast, before a run starts: a dataset is not prepared and `data="full"`, or a
    prepared dataset the run would read is damaged (`dataset_status`).

    Raises:
        DataError: Says which dataset, and the `keras-labs data prepare` command that fixes it.
    """
    for name in names:
        check_name(name)
        if data == "sample":
            continue
        if not is_prepared(name, data_dir):
            if data == "full":
                _choose(name, data, data_dir)  # raises the standard not-prepared error
            continue
        status = dataset_status(name, data_dir)
        if status["damaged"]:
            raise DataError(damage_message(status))


def _choose(name: str, data: str, data_dir) -> tuple[str, Path | str]:
    if data not in ("auto", "full", "sample"):
        raise ConfigError(f"data={data!r} is not valid; valid values: auto, sample, full")
    root = resolve_data_dir(data_dir)
    if data == "sample":
        return "sample", root
    if is_prepared(name, root):
        return "full", root
    if data == "full" or DATASETS[name].sample is None:
        missing = (f"is not prepared in {root}" if data == "full" else
                   f"is not prepared and has no embedded sample (data dir {root})")
        raise DataError(f"dataset {name!r} {missing}; run: keras-labs data prepare {name} "
                        "--from DIR (or without --from to download)")
    print(f"WARNING: dataset {name!r} is not prepared in {root}: using the small EMBEDDED "
          f"SAMPLE; figures are not comparable with full-data results. Prepare it with: "
          f"keras-labs data prepare {name} --from DIR", file=sys.stderr, flush=True)
    return "sample", root


def _open(name: str, data: str, data_dir):
    """(tfds builder, status, data dir) of `name`; builder and status are None for the sample."""
    check_name(name)
    kind, root = _choose(name, data, data_dir)
    if kind != "full":
        return None, None, root
    status = dataset_status(name, root)
    if status["damaged"]:
        raise DataError(damage_message(status))
    return _builder(name, root), status, root


def untuned(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning off. Every dataset the data layer hands out is made
    this way, and the pipelines built on one inherit its options.

    An autotuned pipeline's iterator runs a "model" thread, which the iterator's destructor
    cancels and then waits for. In TensorFlow 2.21 that thread can miss the cancellation (the
    cancel callback wakes it before the cancellation manager reads as cancelled) and sleep out the
    rest of its optimization period, which doubles up to a minute, while the destructor holds
    Python's lock, so the whole process stops. On the busy 2-core test machine, iterators freed
    by the garbage collector stopped test processes for 15-60 s several times per suite run
    (caught in gdb: `RootDataset::Iterator::~Iterator` waiting for a thread in
    `Model::OptimizeLoop`). Without autotuning, `AUTOTUNE` map parallelism and prefetch buffers
    take tf.data's defaults and no model thread starts.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def load(name: str, splits: Iterable[str] = ("train", "test"), *, data: str = "auto",
         data_dir: str | os.PathLike | None = None, as_supervised: bool = True
         ) -> tuple[dict[str, tf.data.Dataset], DataSource]:
    """Loads the splits of an image dataset from prepared tfds data or the embedded sample.

    Args:
        name: A dataset of `DATASETS` with images and labels.
        splits: tfds split names (slicing such as "train[:90%]" works on full data).
        data: "full" (must be prepared; fails fast otherwise), "sample", or "auto".
        data_dir: The tfds data dir.
        as_supervised: Yield (image, label) tuples instead of feature dicts.

    Returns:
        ({split: dataset of uint8 images and int64 labels}, the `DataSource`).
    """
    builder, status, root = _open(name, data, data_dir)
    splits = list(splits)
    if builder is not None:
        datasets = {split: untuned(builder.as_dataset(split=split, as_supervised=as_supervised,
                                                      shuffle_files=False)) for split in splits}
        source = DataSource(name, "full", status["partial"], status["origin"],
                            {split: int(datasets[split].cardinality()) for split in splits},
                            str(root))
        return datasets, source
    arrays = _sample_arrays(name)
    datasets = {}
    for split in splits:
        if split not in arrays:
            raise DataError(f"the embedded {name} sample has no split {split!r}; it has "
                            f"{', '.join(arrays)}")
        images, labels = arrays[split]
        images = images if images.ndim == 4 else images[..., None]
        labels = labels.astype(np.int64)
        elements = (images, labels) if as_supervised else {"image": images, "label": labels}
        datasets[split] = untuned(tf.data.Dataset.from_tensor_slices(elements))
    source = DataSource(name, "sample", True, f"embedded sample {SAMPLES_DIR / DATASETS[name].sample}",
                        {split: len(arrays[split][1]) for split in splits})
    return datasets, source


def load_text(name: str = "tiny_shakespeare", splits: Iterable[str] = ("train", "validation"),
              *, data: str = "auto", data_dir=None) -> tuple[dict[str, str], DataSource]:
    """Loads a text dataset's splits as Python strings (tfds stores one example per split)."""
    builder, status, root = _open(name, data, data_dir)
    splits = list(splits)
    if builder is not None:
        texts = {}
        for split in splits:
            example = next(iter(tfds.as_numpy(builder.as_dataset(split=split))))
            texts[split] = example["text"].decode("utf-8")
        return texts, DataSource(name, "full", status["partial"], status["origin"],
                                 {s: len(t) for s, t in texts.items()}, str(root))
    parts = split_shakespeare(sample_text())
    texts = {split: parts[split] for split in splits}
    return texts, DataSource(name, "sample", False, "embedded copy of Tiny Shakespeare",
                             {s: len(t) for s, t in texts.items()})


def load_uci_digits(test_fraction: float = 0.25, seed: int = 0
                    ) -> tuple[dict[str, tf.data.Dataset], DataSource]:
    """The UCI handwritten digits that ship with scikit-learn, as an offline image dataset.

    1,797 8x8 images of digits 0-9 (ink 0-16, white on black like MNIST), scaled to uint8
    0-255 with one channel, split stratified by class with a fixed `seed`, so the test split
    is the same in every run.

    Returns:
        ({"train": ..., "test": ...} datasets of (uint8 (8, 8, 1) image, int64 label)), the
        `DataSource`).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction={test_fraction!r} is not valid; it must be in (0, 1)")
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    labels = digits.target.astype(np.int64)
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels)
    datasets = {"train": untuned(tf.data.Dataset.from_tensor_slices((train_images, train_labels))),
                "test": untuned(tf.data.Dataset.from_tensor_slices((test_images, test_labels)))}
    source = DataSource("uci_digits", "full", False,
                        "scikit-learn load_digits (UCI optical recognition of handwritten "
                        f"digits, 8x8), stratified split with seed {seed}",
                        {"train": len(train_labels), "test": len(test_labels)})
    return datasets, source


def class_names(name: str) -> list[str]:
    if name == "cifar10":
        return list(CIFAR10_CLASSES)
    if name == "fashion_mnist":
        return ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Ankle boot"]
    return [str(i) for i in range(10)]


# --------------------------------------------------------------------------------------------
# Input pipelines


def image_pipeline(dataset: tf.data.Dataset, *, batch_size: int, training: bool, seed: int = 0,
                   normalize: str = "unit", augment: bool = False, channels: int | None = None,
                   size: int | None = None, cache: bool = True, drop_remainder: bool = False,
                   shuffle_buffer: int | None = None) -> tf.data.Dataset:
    """Turns (uint8 image, label) pairs into batched float32 training or evaluation input.

    The expensive per-example work (cast, scale, resize) happens once before `cache()`; only
    the shuffle and the augmentation run every epoch.

    Args:
        dataset: (image, label) pairs of uint8 HWC images.
        batch_size: Examples per batch.
        training: Shuffle (seeded, reshuffled every epoch) and augment.
        seed: Seed of the shuffle and of the augmentation draws.
        normalize: "unit" for [0, 1], "symmetric" for [-1, 1].
        augment: Random horizontal flip and 4-pixel translation (padded random crop).
        channels: Convert to this many channels (1 or 3) when the data has the other count.
        size: Resize images to size x size (bilinear).
        cache: Keep the preprocessed examples in memory after the first epoch.
        drop_remainder: Drop the last incomplete batch.
        shuffle_buffer: Shuffle buffer size; default: the whole dataset.
    """
    if normalize not in ("unit", "symmetric"):
        raise ValueError(f"normalize={normalize!r} is not valid; valid values: unit, symmetric")

    def preprocess(image, label):
        image = tf.cast(image, tf.float32) / 255.0
        if channels == 3 and image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        elif channels == 1 and image.shape[-1] == 3:
            image = tf.image.rgb_to_grayscale(image)
        if size is not None:
            image = tf.image.resize(image, (size, size))
        if normalize == "symmetric":
            image = image * 2.0 - 1.0
        return image, label

    dataset = dataset.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        dataset = dataset.cache()
    if training:
        buffer = shuffle_buffer or max(int(dataset.cardinality()), 1024)
        dataset = dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
        if augment:
            seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
            dataset = tf.data.Dataset.zip((dataset, seeds)).map(
                _augment, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return untuned(dataset.prefetch(tf.data.AUTOTUNE))


def _augment(example, seed):
    image, label = example
    height, width = image.shape[0], image.shape[1]
    image = tf.image.stateless_random_flip_left_right(image, seed)
    padded = tf.pad(image, [[4, 4], [4, 4], [0, 0]], mode="REFLECT")
    image = tf.image.stateless_random_crop(padded, tf.shape(image), seed + 1)
    image.set_shape((height, width, image.shape[-1]))
    return image, label


def first(dataset: tf.data.Dataset, count: int) -> tf.data.Dataset:
    """The first `count` examples of `dataset` (all of them when `count` is 0)."""
    return dataset.take(count) if count else dataset


def split_validation(dataset: tf.data.Dataset, fraction: float, seed: int = 0
                     ) -> tuple[tf.data.Dataset, tf.data.Dataset | None, dict]:
    """Carves a seeded validation split out of a training split (the test split selects nothing).

    The held-out examples are a seeded random `round(fraction * n)` of the `n` examples, chosen
    by index, so the same seed and data give the same split in every run and on every machine.

    Args:
        dataset: The training split, in a fixed order (as `load` gives it).
        fraction: Share of it to hold out, in [0, 1); 0 holds out nothing.
        seed: Seed of the choice.

    Returns:
        (training part, validation part or None, {"fraction", "seed", "train_examples",
        "validation_examples"} for metrics.json).

    Raises:
        ValueError: `fraction` outside [0, 1).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction!r}")
    count = int(dataset.cardinality())
    if count < 0:  # unknown (a filtered or generated dataset): count it once
        count = int(dataset.reduce(0, lambda total, _: total + 1))
    held_out = int(round(fraction * count))
    record = {"fraction": fraction, "seed": seed, "train_examples": count - held_out,
              "validation_examples": held_out}
    if held_out == 0:
        return dataset, None, record
    mask = np.zeros(count, dtype=bool)
    mask[np.random.default_rng(seed).permutation(count)[:held_out]] = True
    mask = tf.constant(mask)

    def part(keep_validation: bool) -> tf.data.Dataset:
        chosen = dataset.enumerate().filter(
            lambda index, _: tf.equal(tf.gather(mask, index), keep_validation))
        chosen = chosen.map(lambda _, example: example)
        return chosen.apply(tf.data.experimental.assert_cardinality(
            held_out if keep_validation else count - held_out))

    return part(False), part(True), record


def evaluation_pipeline(part: tf.data.Dataset | None, split: dict, *, replicas: int = 1,
                        batch_size: int = 512, **pipeline) -> tf.data.Dataset | None:
    """The evaluation input of a held-out part from `split_validation` (None stays None).

    Keras 3.15's evaluation under a multi-replica strategy fails on a batch its replicas cannot
    split evenly, so there the batches are a multiple of the replicas, and at most
    `replicas - 1` examples are left out (recorded in `split` as "validation_examples_scored").

    Args:
        part: The validation part, or None.
        split: Its record from `split_validation` (updated in place when examples are left out).
        replicas: The strategy's `num_replicas_in_sync`.
        batch_size: Evaluation batch size (rounded down to a multiple of `replicas`).
        **pipeline: `image_pipeline` options (normalize, channels, size).
    """
    if part is None:
        return None
    if replicas > 1:
        count = split["validation_examples"]
        if count % replicas:
            split["validation_examples_scored"] = count - count % replicas
            part = part.take(count - count % replicas)
        batch_size = max(batch_size - batch_size % replicas, replicas)
    return image_pipeline(part, batch_size=batch_size, training=False, **pipeline)


def probe_batch(dataset: tf.data.Dataset, count: int = 32, *, with_labels: bool = False,
                **pipeline):
    """The first `count` examples of an (image, label) split as one preprocessed batch: the
    fixed probe `training.fit` shows TensorBoard's activation statistics on.

    Args:
        dataset: (uint8 image, label) pairs, as `load` gives them (not shuffled, not cached:
            reading part of a cached pipeline would discard its cache).
        count: Examples in the batch.
        with_labels: Also return the labels (a conditional GAN's discriminator takes both).
        **pipeline: `image_pipeline` options (normalize, channels, size).

    Returns:
        The images (count, H, W, C) as float32, or (images, int32 labels).
    """
    images, labels = next(iter(image_pipeline(dataset.take(count), batch_size=count,
                                              training=False, cache=False, **pipeline)))
    if with_labels:
        return images.numpy(), labels.numpy().astype(np.int32)
    return images.numpy()


def train_and_test(datasets: dict, *, batch_size: int, seed: int = 0, train_examples: int = 0,
                   test_batch_size: int = 512) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """`image_pipeline`s of a classification dataset's splits: the training input (the first
    `train_examples` when > 0, shuffled with `seed`) and the test input, in unit range."""
    train = image_pipeline(first(datasets["train"], train_examples), batch_size=batch_size,
                           training=True, seed=seed)
    return train, image_pipeline(datasets["test"], batch_size=test_batch_size, training=False)


def to_numpy(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Materializes an (image, label) dataset as two arrays (for small datasets and probes)."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(4096).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    return np.concatenate(images), np.concatenate(labels)


def class_subset(dataset: tf.data.Dataset, classes: tuple[int, ...], per_class: int = 0
                 ) -> tf.data.Dataset:
    """The (image, label) examples of `classes` only, relabelled 0, 1, ... in that order.

    Args:
        dataset: (image, label) pairs in a fixed order, small enough to hold in memory.
        classes: The labels kept; `classes[i]` becomes label i.
        per_class: Keep the first `per_class` examples of each class (0: all of them); a class
            with fewer keeps all it has.

    Returns:
        A `tf.data.Dataset` of (uint8 image, int64 label), in the order of `dataset`.
    """
    images, labels = to_numpy(dataset)
    relabel = {label: index for index, label in enumerate(classes)}
    chosen = [np.flatnonzero(labels == label) for label in classes]
    if per_class:
        chosen = [indices[:per_class] for indices in chosen]
    indices = np.sort(np.concatenate(chosen))
    new_labels = np.array([relabel[label] for label in labels[indices]], dtype=np.int64)
    return untuned(tf.data.Dataset.from_tensor_slices((images[indices], new_labels)))


@dataclasses.dataclass(frozen=True)
class HeldOutInputs:
    """A classification dataset's image pipelines, with a seeded validation part held out of
    its labelled training data (`held_out_inputs`).

    Attributes:
        make_train: Returns a fresh training pipeline: each fit sees the same shuffled epochs,
            and a resumed run gives a fit exactly the batches it would have had uninterrupted.
        validation: The held-out part (per-epoch curves, every choice); None if none is held out.
        test: The test split, scored once at the end.
        probe: Fixed validation images for TensorBoard's probes (`probe_batch`); None with
            `validation`.
        split: `split_validation`'s record.
        examples: {"train", "validation", "test"} counts.
    """

    make_train: Callable[[], tf.data.Dataset]
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    probe: np.ndarray | None
    split: dict
    examples: dict


def held_out_inputs(labelled: tf.data.Dataset, test: tf.data.Dataset, *, fraction: float,
                    seed: int, batch_size: int, eval_batch_size: int = 512, cache: bool = True,
                    drop_remainder: bool = False, probe_images: int = 32,
                    **pipeline) -> HeldOutInputs:
    """Holds out a seeded validation part of `labelled` (`split_validation`) and builds the
    training, validation and test pipelines (`image_pipeline`).

    Args:
        labelled: The labelled training data, in a fixed order.
        test: The test split.
        fraction: Share of `labelled` held out for validation.
        seed: Seed of the held-out choice and of the training shuffle.
        batch_size: Training batch size.
        eval_batch_size: Validation and test batch size.
        cache: Keep the preprocessed examples in memory (False for data too big to hold).
        drop_remainder: Drop the last incomplete training batch (evaluation keeps every example).
        probe_images: Validation images in `probe`.
        **pipeline: More `image_pipeline` options (normalize, augment, channels, size).
    """
    train_part, validation_part, split = split_validation(labelled, fraction, seed)

    def make_train() -> tf.data.Dataset:
        return image_pipeline(train_part, batch_size=batch_size, training=True, seed=seed,
                              cache=cache, drop_remainder=drop_remainder, **pipeline)

    def evaluation(part):
        return image_pipeline(part, batch_size=eval_batch_size, training=False, cache=cache,
                              **pipeline)

    held_out = validation_part is not None
    return HeldOutInputs(
        make_train=make_train, validation=evaluation(validation_part) if held_out else None,
        test=evaluation(test),
        probe=probe_batch(validation_part, probe_images, **pipeline) if held_out else None,
        split=split, examples={"train": split["train_examples"],
                               "validation": split["validation_examples"],
                               "test": int(test.cardinality())})
