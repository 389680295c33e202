"""Preparation: validate original files and build tfds datasets from them, offline.

`prepare()` fills the tfds data dir that `keras_labs.data.loading` reads:

* original files whose checksums match the ones tfds registers go through the catalog builder
  (`download_and_prepare` with `manual_dir`), exactly as a download would;
* a partial CIFAR-10 (any whole number of 3,073-byte records per batch) or a recompressed copy
  (Debian's Fashion-MNIST) goes through a builder of ours that subclasses the catalog builder,
  so features, splits, name and version are the catalog's, and records in the dataset info
  (`metadata.json` and the description) that the data is partial or unverified.

Sources are validated before anything is written (magic numbers, whole records, complete gzip
streams) and a dataset is built in a temporary folder inside the data dir, then renamed into
place: a failed or interrupted prepare leaves nothing half-written and never touches a dataset
prepared earlier. The sidecar it leaves beside the data (`keras_labs.json`) records where the
data came from and the size of every file, which loading checks.

Only `keras-labs data prepare` needs this module; importing it loads tfds's builder classes.
"""

from __future__ import annotations

import contextlib
import datetime
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from keras_labs import ConfigError, DataError
from keras_labs.data.loading import (
    check_name,
    dataset_status,
    file_sizes,
    is_prepared,
    is_remote,
    resolve_data_dir,
    split_shakespeare,
)
from keras_labs.data.specs import (
    CIFAR10_CLASSES,
    CIFAR_RECORD_BYTES,
    CIFAR_TEST_FILES,
    CIFAR_TRAIN_FILES,
    DATASETS,
    SIDECAR,
)
from keras_labs.files import staged_folder

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


def safe_extract_cifar(archive: Path, destination: Path) -> Path:
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



# --------------------------------------------------------------------------------------------
# Prepare


def _locate_source(name: str, from_dir: Path) -> Path:
    """The folder holding `name`'s files: `from_dir/name/` if it exists, else `from_dir`."""
    from_dir = Path(from_dir).expanduser()
    if not from_dir.is_dir():
        raise ConfigError(f"--from {str(from_dir)!r} is not a folder")
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
            batches = safe_extract_cifar(archives[0], workspace / "extract")
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
            log=print, progress: bool = True) -> dict:
    """Prepares `name` into the tfds data dir, offline from `from_dir` or by download.

    Args:
        name: A dataset of `DATASETS`.
        from_dir: Folder with the original files, directly or in a subfolder named `name`.
            None lets tfds download (fails within seconds when offline).
        data_dir: The tfds data dir (see `resolve_data_dir`).
        force: Rebuild even when the dataset is already prepared; the old copy is replaced
            only once the new one is complete.
        log: Where progress lines go (one per dataset).
        progress: Also show tfds's progress bars and banners; False for a log file, where
            tqdm's carriage returns and escape codes would be noise.

    Returns:
        The dataset's status (see `dataset_status`).

    Raises:
        ConfigError: Unknown name, `from_dir` not a folder, a remote data dir.
        DataError: Missing or corrupt source files, no network for a download.
    """
    spec = check_name(name)
    root = resolve_data_dir(data_dir)
    if is_remote(root):
        raise ConfigError(f"--data-dir {root!r}: data prepare builds into a local data dir; "
                          "prepare locally, then copy the dataset's folder there")
    if not force and is_prepared(name, root):
        log(f"{name}: already prepared in {root} (use --force to rebuild)")
        return dataset_status(name, root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".keras_labs-prepare-{name}-", dir=root,
                                     ignore_cleanup_errors=True) as scratch:
        workspace = Path(scratch)
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
            with _tfds_output(progress):
                builder.download_and_prepare(download_dir=str(workspace / "downloads"),
                                             download_config=config)
        else:
            builder = factory(str(build_dir))
            method = "keras_labs builder (catalog features and splits)"
            with _tfds_output(progress):
                builder.download_and_prepare(download_dir=str(workspace / "downloads"))
        built = Path(builder.data_dir)
        sidecar = {
            "name": name, "version": str(builder.version), "origin": origin, "method": method,
            "prepared_at": datetime.datetime.now().isoformat(timespec="seconds"),
            "splits": {split: info.num_examples for split, info in builder.info.splits.items()},
            "files": file_sizes(built),  # checked whenever the dataset is loaded
            **facts,
        }
        (built / SIDECAR).write_text(json.dumps(sidecar, indent=2))
        _install(built, root / name / built.name)
    status = dataset_status(name, root)
    log(f"{name}: prepared in {status['path']} ({_format_splits(status['splits'])})"
        + (" PARTIAL" if status["partial"] else ""))
    return status


@contextlib.contextmanager
def _tfds_output(shown: bool) -> Iterator[None]:
    """tfds's progress bars (stderr) and banners (stdout) as they are, or none at all."""
    if shown:
        yield
        return
    tfds.display_progress_bar(False)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        tfds.display_progress_bar(True)


def _install(built: Path, destination: Path) -> None:
    """Moves a complete build into place; an earlier copy is removed only after the swap."""
    with staged_folder(destination, replace=True) as staging:
        shutil.copymode(built, staging)  # keep tfds's permissions, not mkdtemp's owner-only ones
        for entry in built.iterdir():
            os.rename(entry, staging / entry.name)


def _format_splits(splits: dict[str, int]) -> str:
    return ", ".join(f"{split} {count:,}" for split, count in splits.items())
