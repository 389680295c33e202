"""Shared fixtures and helpers (`tiny`: each lab's tiny configuration; `run_tiny`;
`make_cifar_dir`; `run_cli`).

Two tiers: fast unit tests on tiny synthetic tensors or `tfds.testing.mock_data`, and a
real-data tier (`real_data_dir`) that prepares datasets from the original files in
`../shared/data` (or `$KERAS_LABS_SHARED_DATA`) once per cache folder and skips when they are
not there. `scripts/test` points the cache at `.cache/tfds` so CI prepares each dataset once.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("KERAS_LABS_SHARED_DATA", ROOT.parent / "shared" / "data"))
CACHE = Path(os.environ.get("KERAS_LABS_TEST_DATA_DIR", ROOT / ".cache" / "tfds"))


# Each lab's tiny configuration (seconds of training on the embedded samples): the preset it
# starts from and what it changes. Used by the lab's own tests and by the cross-lab ones.
_TINY = {
    "mnist-cnn": ("quick", dict(epochs=1, train_examples=256, batch_size=64, filters=(8, 16),
                                dense_units=16, data="sample")),
    "cifar-cnn": ("tutorial", dict(data="sample", train_examples=64, test_examples=40,
                                   batch_size=16, epochs=1, steps_per_execution=2,
                                   probe_every_steps=2, probe_images=8, histogram_freq=1)),
    "transfer": ("quick", dict(data="sample", source_epochs=1, source_train_examples=512,
                               epochs=2, warmup_epochs=1, batch_size=64,
                               target_train_examples=256, target_test_examples=200)),
    "embeddings": ("quick", dict(data="sample", epochs=1, train_examples=512,
                                 test_examples=300, tsne_iterations=300, neighbors=5)),
    "char-rnn": ("quick", dict(data="sample", steps=6, log_every=3, steps_per_execution=3,
                               batch_size=8, sequence_length=32, units=16, num_layers=2,
                               embedding_dim=8, train_chars=20000, validation_chars=3000,
                               sample_length=25)),
    "word-rnn": ("quick", dict(data="sample", steps=6, log_every=3, steps_per_execution=3,
                               vocabulary_size=400, batch_size=8, sequence_length=16, units=16,
                               embedding_dim=8, train_tokens=20000, validation_chars=3000,
                               sample_length=12)),
    "mnist-rnn": ("quick", dict(data="sample", epochs=2, train_examples=256, test_examples=200,
                                hidden_sizes=(6, 3), batch_size=64, steps_per_execution=2)),
    "deconvnet": ("quick", dict(epochs=1, train_examples=128, batch_size=64, filters=(8, 16),
                                dense_units=16, search_examples=64, data="sample")),
    "autoencoder": ("quick", dict(epochs=1, train_examples=128, batch_size=32,
                                  head_units=(16,), grid_images=4, data="sample")),
}


def tiny(name: str, **changes):
    """The tiny configuration of lab `name` (not validated), with `changes` applied.

    Args:
        name: A lab name from `keras_labs.labs.names()`.
        **changes: Config fields to set on top of the tiny configuration.
    """
    from keras_labs import labs

    preset, fields = _TINY[name]
    return dataclasses.replace(labs.get(name).PRESETS[preset], **{**fields, **changes})


def run_tiny(tmp_path_factory, name: str, **changes):
    """Runs lab `name` on its tiny configuration in a fresh folder (exports beside it).

    Returns:
        (the run folder, the metrics, the validated config).
    """
    from keras_labs import labs

    root = tmp_path_factory.mktemp(name)
    config = tiny(name, export_dir=str(root / "saved_models"), **changes).validate()
    workdir = root / "runs" / name / "r1"
    return workdir, labs.run(name, config, str(workdir)), config


def tiny_run_fixture(name: str):
    """A module-scoped fixture that runs lab `name` once on its tiny configuration and gives
    (the run folder, the metrics): `tiny_run = tiny_run_fixture("char-rnn")` in a test file."""

    @pytest.fixture(scope="module")
    def tiny_run(tmp_path_factory):
        workdir, metrics, _ = run_tiny(tmp_path_factory, name)
        return workdir, metrics

    return tiny_run


def pytest_configure(config):
    # Two logical CPUs for the `mirrored` strategy tests; this must happen before TensorFlow
    # initializes its runtime, so it runs once at start-up for the whole session.
    from keras_labs import devices

    devices.split_cpu(2)
    # scripts/test runs one pytest worker per core. With TensorFlow's default pools (a thread per
    # core in each worker) the machine would run twice as many compute threads as it has cores,
    # each worker's preempting the other's; each worker sizes its pools to its share instead.
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        devices.use_threads(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def real_data_dir():
    """A tfds data dir with the real datasets prepared; call it with the names you need."""
    from keras_labs.data import loading, preparation

    def prepared(*names: str) -> str:
        import fcntl

        for name in names:
            if loading.is_prepared(name, CACHE):
                continue
            if not (SHARED_DATA / name).is_dir():
                pytest.skip(f"real {name} not available under {SHARED_DATA}")
            # scripts/test runs two pytest workers: one prepares, the other waits and reuses it.
            CACHE.mkdir(parents=True, exist_ok=True)
            with open(CACHE / ".prepare.lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not loading.is_prepared(name, CACHE):
                    preparation.prepare(name, SHARED_DATA, CACHE)
        return str(CACHE)

    return prepared


@pytest.fixture
def empty_data_dir(tmp_path, monkeypatch):
    """An empty tfds data dir, also set as TFDS_DATA_DIR, so `data=auto` falls back to samples."""
    path = tmp_path / "tfds"
    path.mkdir()
    monkeypatch.setenv("TFDS_DATA_DIR", str(path))
    return str(path)


def make_cifar_dir(folder: Path, records=(7, 3, 3, 3, 5), test: int = 4) -> Path:
    """CIFAR-10 binary batches with `records` examples per training file and `test` in the test
    file (random pixels, labels 0, 1, 2, ...); returns the `cifar-10-batches-bin` folder."""
    import numpy as np

    from keras_labs.data import specs

    rng = np.random.default_rng(1)
    batches = folder / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for name, count in [*zip(specs.CIFAR_TRAIN_FILES, records, strict=True), ("test_batch.bin", test)]:
        labels = (np.arange(count) % 10).astype(np.uint8)[:, None]
        pixels = rng.integers(0, 256, (count, 3072)).astype(np.uint8)
        (batches / name).write_bytes(np.concatenate([labels, pixels], axis=1).tobytes())
    return batches


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, text: bool = True):
    """Runs `python -m keras_labs ARGS` in a subprocess; returns the CompletedProcess (its
    output as str, or as bytes with `text=False`: every carriage return kept)."""
    import subprocess

    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, "-m", "keras_labs", *args], capture_output=True,
                          text=text, env=full_env, timeout=timeout, cwd=ROOT)


def read_tags(log_dir: Path) -> dict[str, set[str]]:
    """{plugin: tags} of every event file folder under `log_dir` (as lib/tb_tags.py reads them)."""
    from tensorboard.backend.event_processing import event_accumulator

    found: dict[str, set[str]] = {}
    for folder in sorted({path.parent for path in log_dir.rglob("events.out.tfevents*")}):
        accumulator = event_accumulator.EventAccumulator(
            str(folder), size_guidance={kind: 0 for kind in (
                event_accumulator.HISTOGRAMS, event_accumulator.IMAGES,
                event_accumulator.SCALARS, event_accumulator.TENSORS)})
        accumulator.Reload()
        for kind, tags in accumulator.Tags().items():
            if not isinstance(tags, list):
                continue
            for tag in tags:
                plugin = kind
                if kind == "tensors":
                    plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name or kind
                found.setdefault(plugin, set()).add(tag)
    return found
