"""Data layer: prepare tfds datasets offline, list them, load them, and build input pipelines.

Every dataset loads through tensorflow-datasets from a tfds data dir (`--data-dir`, else
`$TFDS_DATA_DIR`, else `~/tensorflow_datasets`) with `download=False`. `prepare()` fills that dir:

* original files whose checksums match the ones tfds registers go through the catalog builder
  (`download_and_prepare` with `manual_dir`), exactly as a download would;
* a partial CIFAR-10 (any whole number of 3,073-byte records per batch) or a recompressed copy
  (Debian's Fashion-MNIST) goes through a builder of ours that subclasses the catalog builder,
  so features, splits, name and version are the catalog's, and records in the dataset info
  (`metadata.json` and the description) that the data is partial or unverified.

Sources are validated before anything is written (magic numbers, whole records, complete gzip
streams) and a dataset is built in a temporary folder inside the data dir, then renamed into
place: a failed or interrupted prepare leaves nothing half-written and never touches a dataset
prepared earlier.

When a dataset is not prepared, labs fall back to small real samples shipped in
`keras_labs/samples/` (unless `--data full`), and say so loudly.
"""

from __future__ import annotations

import dataclasses
import datetime
import gzip
import hashlib
import json
import os
import shutil
import socket
import sys
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_labs import DataError

SAMPLES_DIR = Path(__file__).parent / "samples"
SIDECAR = "keras_labs.json"

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
CIFAR_RECORD_BYTES = 3073
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR_TEST_FILES = ("test_batch.bin",)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What the suite knows about a dataset beyond its tfds catalog entry."""

    name: str
    files: tuple[str, ...]  # original file names, as tfds downloads them
    full_sizes: dict[str, int]  # examples per split in the complete dataset
    sample: str | None = None  # file in keras_labs/samples/
    homepage: str = ""


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("mnist", MNIST_FILES, {"train": 60000, "test": 10000}, "mnist.npz",
                    "http://yann.lecun.com/exdb/mnist/"),
        DatasetSpec("fashion_mnist", MNIST_FILES, {"train": 60000, "test": 10000}, None,
                    "https://github.com/zalandoresearch/fashion-mnist"),
        DatasetSpec("cifar10", ("cifar-10-binary.tar.gz",), {"train": 50000, "test": 10000},
                    "cifar10.npz", "https://www.cs.toronto.edu/~kriz/cifar.html"),
        DatasetSpec("svhn_cropped", ("train_32x32.mat", "test_32x32.mat", "extra_32x32.mat"),
                    {"train": 73257, "test": 26032, "extra": 531131}, None,
                    "http://ufldl.stanford.edu/housenumbers/"),
        DatasetSpec("tiny_shakespeare", ("input.txt",),
                    {"train": 1, "validation": 1, "test": 1}, "tiny_shakespeare.txt.gz",
                    "https://github.com/karpathy/char-rnn"),
    )
}


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


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The tfds data dir: the argument, else `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    chosen = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return Path(chosen).expanduser().resolve()


def check_name(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; valid datasets: {', '.join(DATASETS)}")
    return DATASETS[name]


def _builder(name: str, data_dir: Path):
    try:
        return tfds.builder(name, data_dir=str(data_dir))
    except Exception as error:  # noqa: BLE001 (tfds raises many kinds for a damaged folder)
        if not (Path(data_dir) / name).exists():
            raise
        lines = str(error).strip().splitlines()
        reason = lines[-1] if lines else type(error).__name__
        raise DataError(f"the prepared {name} under {str(data_dir)!r} is unreadable "
                        f"({reason[:160]}); rebuild it with `keras-labs data prepare {name} "
                        "--force`") from None


def is_prepared(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    check_name(name)
    return _builder(name, resolve_data_dir(data_dir)).is_prepared()


def _read_sidecar(version_dir: Path) -> dict:
    try:
        return json.loads((version_dir / SIDECAR).read_text())
    except (OSError, ValueError):
        return {}


def dataset_status(name: str, data_dir: str | os.PathLike | None = None) -> dict:
    """Prepared or not, splits with example counts, origin and partial flag of one dataset."""
    spec = check_name(name)
    root = resolve_data_dir(data_dir)
    builder = _builder(name, root)
    status = {"name": name, "prepared": builder.is_prepared(), "sample": spec.sample is not None}
    if status["prepared"]:
        version_dir = Path(builder.data_dir)
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
        )
    return status


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict]:
    return [dataset_status(name, data_dir) for name in DATASETS]


# --------------------------------------------------------------------------------------------
# Reading and validating original files


def _read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (EOFError, gzip.BadGzipFile, OSError, ValueError) as error:
        raise DataError(f"{path}: not a complete gzip file ({error})") from None


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Reads one MNIST-style IDX file (gzip-compressed), checking magic number and size.

    Raises:
        DataError: The file is missing, truncated, not gzip, or not the expected IDX kind.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing source file {path}")
    raw = _read_gzip(path)
    if len(raw) < 8:
        raise DataError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(f"{path}: wrong magic number {magic} (want {expected_magic})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(f"{path}: {len(raw)} bytes after decompression, header says {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def read_mnist_dir(source: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads and cross-checks the 4 MNIST-format files in `source`: {split: (images, labels)}."""
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(source / f"{prefix}-images-idx3-ubyte.gz", 2051)
        labels = read_idx(source / f"{prefix}-labels-idx1-ubyte.gz", 2049)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{source / f'{prefix}-images-idx3-ubyte.gz'}: images of shape "
                            f"{images.shape[1:]}, want (28, 28)")
        if len(images) != len(labels):
            raise DataError(f"{source}: {prefix} has {len(images)} images but {len(labels)} labels")
        if labels.size and labels.max() > 9:
            raise DataError(f"{source / f'{prefix}-labels-idx1-ubyte.gz'}: label {labels.max()} > 9")
        arrays[split] = (images, labels)
    return arrays


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Reads a CIFAR-10 binary batch of any whole number of records: (images HWC uint8, labels)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"missing source file {path}")
    raw = path.read_bytes()
    if not raw or len(raw) % CIFAR_RECORD_BYTES:
        raise DataError(f"{path}: {len(raw)} bytes is not a whole number of "
                        f"{CIFAR_RECORD_BYTES}-byte CIFAR-10 records")
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, CIFAR_RECORD_BYTES)
    labels = records[:, 0].copy()
    if labels.max() > 9:
        raise DataError(f"{path}: label {labels.max()} > 9, not a CIFAR-10 batch")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _safe_extract_cifar(archive: Path, destination: Path) -> Path:
    """Extracts the `cifar-10-batches-bin/` members of `archive`, refusing anything unsafe."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers()
                       if m.isfile() and Path(m.name).parent.name == "cifar-10-batches-bin"]
            if not members:
                raise DataError(f"{archive}: no cifar-10-batches-bin/ folder in the archive")
            for member in members:
                target = destination / "cifar-10-batches-bin" / Path(member.name).name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, OSError) as error:
        raise DataError(f"{archive}: not a complete tar.gz archive ({error})") from None
    return destination / "cifar-10-batches-bin"


def read_cifar_dir(batches: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    arrays = {}
    for split, files in (("train", CIFAR_TRAIN_FILES), ("test", CIFAR_TEST_FILES)):
        parts = [read_cifar_batch(batches / name) for name in files]
        arrays[split] = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    return arrays


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _registered_checksums(name: str) -> dict[str, tuple[int, str]]:
    """{file name: (size, sha256)} as registered in tensorflow-datasets for `name`."""
    builder_cls = tfds.builder_cls(name)
    sums = {}
    for url, info in builder_cls.url_infos.items() if builder_cls.url_infos else ():
        filename = info.filename or Path(urllib.parse.urlparse(url).path).name
        sums[filename] = (info.size, info.checksum)
    return sums


def _checksums_match(name: str, source: Path, files: Iterable[str]) -> bool:
    registered = _registered_checksums(name)
    for filename in files:
        path = source / filename
        if filename not in registered or not path.is_file():
            return False
        size, checksum = registered[filename]
        if path.stat().st_size != size or _sha256(path) != checksum:
            return False
    return True


# --------------------------------------------------------------------------------------------
# Our builders: the catalog's features, splits, name and version, fed from local arrays.


class _LocalSource:
    """Mixin for catalog builders fed from validated local data instead of a download."""

    def __init__(self, *, arrays=None, text=None, partial: bool, note: str, **kwargs):
        self._arrays = arrays
        self._text = text
        self._partial = partial
        self._note = note
        super().__init__(**kwargs)

    def _info(self):
        info = super()._info()
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"{self._note}\n\n{info.description}",
            features=info.features,
            supervised_keys=info.supervised_keys,
            homepage=info.homepage,
            citation=info.citation,
            metadata=tfds.core.MetadataDict(partial=self._partial, prepared_by="keras_labs",
                                            note=self._note),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download: the data was read and validated already
        return {split: self._generate_arrays(split, *pair) for split, pair in self._arrays.items()}

    def _generate_arrays(self, split, images, labels):
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            record = {"image": image if image.ndim == 3 else image[..., None], "label": int(label)}
            if "id" in self.info.features:
                record["id"] = f"{split}_{index:05d}"
            yield index, record


class LocalMnist(_LocalSource, tfds.image_classification.MNIST, skip_registration=True):
    name = "mnist"


class LocalFashionMnist(_LocalSource, tfds.image_classification.FashionMNIST,
                        skip_registration=True):
    name = "fashion_mnist"


class LocalCifar10(_LocalSource, tfds.image_classification.Cifar10, skip_registration=True):
    name = "cifar10"

    def _split_generators(self, dl_manager):
        self.info.features["label"].names = list(CIFAR10_CLASSES)
        return super()._split_generators(dl_manager)


def _tiny_shakespeare_class():
    return tfds.builder_cls("tiny_shakespeare")


class LocalTinyShakespeare(_LocalSource, _tiny_shakespeare_class(), skip_registration=True):
    name = "tiny_shakespeare"

    def _split_generators(self, dl_manager):
        del dl_manager
        return {split: iter([(split, {"text": text})])
                for split, text in split_shakespeare(self._text).items()}


def split_shakespeare(text: str) -> dict[str, str]:
    """The tfds 90/5/5 split of Tiny Shakespeare, by characters."""
    cut = int(len(text) * 0.9)
    train, rest = text[:cut], text[cut:]
    cut = int(len(rest) * 0.5)
    return {"train": train, "validation": rest[:cut], "test": rest[cut:]}


# --------------------------------------------------------------------------------------------
# Prepare


def _locate_source(name: str, from_dir: Path) -> Path:
    """The folder holding `name`'s files: `from_dir/name/` if it exists, else `from_dir`."""
    from_dir = Path(from_dir).expanduser()
    if not from_dir.is_dir():
        raise DataError(f"--from {str(from_dir)!r} is not a folder")
    nested = from_dir / name
    return nested if nested.is_dir() else from_dir


def _check_network(url: str, timeout: float = 4.0) -> None:
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
    except OSError as error:
        raise DataError(f"cannot reach {host} to download ({error}); prepare offline with "
                        f"--from DIR holding the original files") from None


def _plan(name: str, source: Path, workspace: Path):
    """Validates the files in `source` and returns (builder factory, sidecar facts)."""
    spec = DATASETS[name]
    if name in ("mnist", "fashion_mnist"):
        missing = [f for f in spec.files if not (source / f).is_file()]
        if missing:
            raise DataError(f"missing source file {source / missing[0]} (need {', '.join(spec.files)})")
        if _checksums_match(name, source, spec.files):
            return "catalog", {"verified_checksums": True, "partial": False}
        arrays = read_mnist_dir(source)
        counts = {split: len(pair[1]) for split, pair in arrays.items()}
        partial = counts != spec.full_sizes
        note = ("keras_labs: prepared from a copy whose files do not match the tfds checksums "
                f"(recompressed or modified); {counts}" + ("; PARTIAL" if partial else ""))
        cls = LocalMnist if name == "mnist" else LocalFashionMnist
        return (lambda d: cls(data_dir=d, arrays=arrays, partial=partial, note=note)), {
            "verified_checksums": False, "partial": partial}
    if name == "cifar10":
        archive = source / "cifar-10-binary.tar.gz"
        if archive.is_file() and _checksums_match(name, source, spec.files):
            return "catalog", {"verified_checksums": True, "partial": False}
        if (source / "cifar-10-batches-bin").is_dir():
            batches = described = source / "cifar-10-batches-bin"
        else:
            archives = sorted(source.glob("*.tar.gz"))
            if not archives:
                raise DataError(f"missing source file: no cifar-10-binary*.tar.gz or "
                                f"cifar-10-batches-bin/ in {source}")
            described = archives[0]
            batches = _safe_extract_cifar(archives[0], workspace / "extract")
        arrays = read_cifar_dir(batches)
        counts = {split: len(pair[1]) for split, pair in arrays.items()}
        partial = counts != spec.full_sizes
        note = (f"keras_labs: prepared from {described}; {counts}"
                + ("; PARTIAL: a prefix of each CIFAR-10 batch, not the full dataset" if partial else ""))
        return (lambda d: LocalCifar10(data_dir=d, arrays=arrays, partial=partial, note=note)), {
            "verified_checksums": False, "partial": partial}
    if name == "tiny_shakespeare":
        path = source / "input.txt"
        if not path.is_file():
            raise DataError(f"missing source file {path}")
        if _checksums_match(name, source, spec.files):
            return "catalog", {"verified_checksums": True, "partial": False}
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise DataError(f"{path}: not UTF-8 text ({error})") from None
        if len(text) < 1000:
            raise DataError(f"{path}: only {len(text)} characters, too short for Tiny Shakespeare")
        note = f"keras_labs: prepared from {path}, which does not match the tfds checksum"
        return (lambda d: LocalTinyShakespeare(data_dir=d, text=text, partial=True, note=note)), {
            "verified_checksums": False, "partial": True}
    missing = [f for f in spec.files if not (source / f).is_file()]
    if missing:
        raise DataError(f"missing source file {source / missing[0]} (need {', '.join(spec.files)})")
    if not _checksums_match(name, source, spec.files):
        raise DataError(f"{source}: files do not match the checksums tfds registers for {name}")
    return "catalog", {"verified_checksums": True, "partial": False}


def prepare(name: str, from_dir: str | os.PathLike | None = None,
            data_dir: str | os.PathLike | None = None, force: bool = False,
            log=print) -> dict:
    """Prepares `name` into the tfds data dir, offline from `from_dir` or by download.

    Args:
        name: A dataset of `DATASETS`.
        from_dir: Folder with the original files, directly or in a subfolder named `name`.
            None lets tfds download (fails within seconds when offline).
        data_dir: The tfds data dir (see `resolve_data_dir`).
        force: Rebuild even when the dataset is already prepared; the old copy is replaced
            only once the new one is complete.
        log: Where progress lines go.

    Returns:
        The dataset's status (see `dataset_status`).

    Raises:
        DataError: Unknown name, missing or corrupt source files, no network for a download.
    """
    spec = check_name(name)
    root = resolve_data_dir(data_dir)
    if not force and is_prepared(name, root):
        log(f"{name}: already prepared in {root} (use --force to rebuild)")
        return dataset_status(name, root)
    root.mkdir(parents=True, exist_ok=True)
    workspace = Path(tempfile.mkdtemp(prefix=f".keras_labs-prepare-{name}-", dir=root))
    try:
        build_dir = workspace / "data"
        if from_dir is None:
            url = next(iter(tfds.builder_cls(name).url_infos or {}), None) or spec.homepage
            _check_network(url)
            factory, facts, origin = "catalog", {"verified_checksums": True, "partial": False}, "download"
        else:
            source = _locate_source(name, Path(from_dir))
            factory, facts = _plan(name, source, workspace)
            origin = str(source.resolve())
        if factory == "catalog":
            builder = tfds.builder(name, data_dir=str(build_dir))
            config = tfds.download.DownloadConfig(
                manual_dir=None if from_dir is None else origin,
                extract_dir=str(workspace / "extract"),
            )
            method = "tfds catalog builder" + (" (checksums verified)" if from_dir else "")
            builder.download_and_prepare(download_dir=str(workspace / "downloads"),
                                         download_config=config)
        else:
            builder = factory(str(build_dir))
            method = "keras_labs builder (catalog features and splits)"
            builder.download_and_prepare(download_dir=str(workspace / "downloads"))
        built = Path(builder.data_dir)
        sidecar = {
            "name": name, "version": str(builder.version), "origin": origin, "method": method,
            "prepared_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "splits": {split: info.num_examples for split, info in builder.info.splits.items()},
            **facts,
        }
        (built / SIDECAR).write_text(json.dumps(sidecar, indent=2))
        _install(built, root / name / built.name)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)
    status = dataset_status(name, root)
    log(f"{name}: prepared in {status['path']} ({_format_splits(status['splits'])})"
        + (" PARTIAL" if status["partial"] else ""))
    return status


def _install(built: Path, destination: Path) -> None:
    """Moves a complete build into place; an earlier copy is removed only after the swap."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old-{os.getpid()}")
        os.rename(destination, old)
    try:
        os.rename(built, destination)
    except OSError:
        if old is not None:
            os.rename(old, destination)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _format_splits(splits: dict[str, int]) -> str:
    return ", ".join(f"{split} {count:,}" for split, count in splits.items())


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


# --------------------------------------------------------------------------------------------
# Loading


def require(names: Iterable[str], data: str, data_dir=None) -> None:
    """Fails fast, before a run starts, when `data="full"` and a dataset is not prepared."""
    for name in names:
        check_name(name)
        if data == "full" and not is_prepared(name, data_dir):
            _choose(name, data, data_dir)  # raises the standard not-prepared error


def _choose(name: str, data: str, data_dir) -> tuple[str, Path]:
    if data not in ("auto", "full", "sample"):
        raise DataError(f"data={data!r} is not valid; valid values: auto, sample, full")
    root = resolve_data_dir(data_dir)
    if data == "sample":
        return "sample", root
    if is_prepared(name, root):
        return "full", root
    if data == "full":
        raise DataError(f"dataset {name!r} is not prepared in {root}; run: keras-labs data "
                        f"prepare {name} --from DIR (or without --from to download)")
    print(f"WARNING: dataset {name!r} is not prepared in {root}: using the small EMBEDDED "
          f"SAMPLE; figures are not comparable with full-data results. Prepare it with: "
          f"keras-labs data prepare {name} --from DIR", file=sys.stderr, flush=True)
    return "sample", root


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
    check_name(name)
    kind, root = _choose(name, data, data_dir)
    splits = list(splits)
    if kind == "full":
        builder = _builder(name, root)
        status = dataset_status(name, root)
        datasets = {split: builder.as_dataset(split=split, as_supervised=as_supervised,
                                              shuffle_files=False) for split in splits}
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
        if as_supervised:
            datasets[split] = tf.data.Dataset.from_tensor_slices((images, labels))
        else:
            datasets[split] = tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})
    source = DataSource(name, "sample", True, f"embedded sample {SAMPLES_DIR / DATASETS[name].sample}",
                        {split: len(arrays[split][1]) for split in splits})
    return datasets, source


def load_text(name: str = "tiny_shakespeare", splits: Iterable[str] = ("train", "validation"),
              *, data: str = "auto", data_dir=None) -> tuple[dict[str, str], DataSource]:
    """Loads a text dataset's splits as Python strings (tfds stores one example per split)."""
    check_name(name)
    kind, root = _choose(name, data, data_dir)
    splits = list(splits)
    if kind == "full":
        builder = _builder(name, root)
        status = dataset_status(name, root)
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
    datasets = {"train": tf.data.Dataset.from_tensor_slices((train_images, train_labels)),
                "test": tf.data.Dataset.from_tensor_slices((test_images, test_labels))}
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
    return dataset.prefetch(tf.data.AUTOTUNE)


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


def to_numpy(dataset: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Materializes an (image, label) dataset as two arrays (for small datasets and probes)."""
    images, labels = [], []
    for image_batch, label_batch in dataset.batch(4096).as_numpy_iterator():
        images.append(image_batch)
        labels.append(label_batch)
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------------
# Text


class Vocabulary:
    """A token vocabulary with an out-of-vocabulary id (0), for characters or words.

    Args:
        tokens: The known tokens, in id order starting at 1.
        oov_token: What id 0 decodes to.
    """

    OOV_ID = 0

    def __init__(self, tokens: Iterable[str], oov_token: str = "\N{REPLACEMENT CHARACTER}"):
        self.tokens = [oov_token, *tokens]
        self.index = {token: i for i, token in enumerate(self.tokens) if i}

    @classmethod
    def from_text(cls, items: Iterable[str], max_size: int | None = None) -> Vocabulary:
        """Builds a vocabulary of the most frequent tokens (ties broken alphabetically)."""
        counts: dict[str, int] = {}
        for item in items:
            counts[item] = counts.get(item, 0) + 1
        ranked = sorted(counts, key=lambda token: (-counts[token], token))
        if max_size is not None:
            ranked = ranked[: max_size - 1]
        return cls(sorted(ranked))

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, items: Iterable[str]) -> np.ndarray:
        return np.array([self.index.get(item, self.OOV_ID) for item in items], dtype=np.int32)

    def unknown(self, items: Iterable[str]) -> list[str]:
        """The distinct items that would map to the out-of-vocabulary id, in order of appearance."""
        seen = []
        for item in items:
            if item not in self.index and item not in seen:
                seen.append(item)
        return seen

    def decode(self, ids: Iterable[int], separator: str = "") -> str:
        return separator.join(self.tokens[int(i)] for i in ids)

    def to_json(self) -> str:
        return json.dumps({"tokens": self.tokens})


def text_windows(ids: np.ndarray, *, sequence_length: int, batch_size: int, training: bool,
                 seed: int = 0, stride: int | None = None) -> tf.data.Dataset:
    """(input, target) windows over a token id sequence, the target shifted by one token.

    Training windows start at every `stride` positions (default: the sequence length) and are
    shuffled with `seed`; evaluation windows are in order.
    """
    stride = stride or sequence_length
    dataset = tf.data.Dataset.from_tensor_slices(ids)
    dataset = dataset.window(sequence_length + 1, shift=stride, drop_remainder=True)
    dataset = dataset.flat_map(lambda window: window.batch(sequence_length + 1))
    dataset = dataset.map(lambda chunk: (chunk[:-1], chunk[1:]), num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.cache()
    if training:
        dataset = dataset.shuffle(10000, seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)

