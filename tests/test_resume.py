"""Every lab that trains resumes a killed run, and with `deterministic` ends where an
uninterrupted run ends.

The in-process tests stand in for `kill -9` by raising right after a backup is on disk (the
state a real kill leaves behind: later epochs were never saved). `test_killed_cli_run_resumes`
sends a real SIGKILL to `keras-labs run` and continues with `keras-labs run --resume`.
The GAN's own checkpoints have their tests in test_gan.py.
"""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_cli, tiny

from keras_labs import ConfigError, labs, run_folders, training
from keras_labs.labs.cifar_cnn import config as cifar_cnn_config
from keras_labs.labs.mnist_cnn import config as mnist_cnn_config
from keras_labs.labs.mnist_cnn import experiment as mnist_cnn

# lab: tiny config, which save the "kill" follows, metrics that must match the uninterrupted run
LABS = {
    "mnist-cnn": (tiny("mnist-cnn", epochs=3), 1,
                  ("test_accuracy", "test_loss", "train_accuracy")),
    "cifar-cnn": (tiny("cifar-cnn", epochs=3, augment=True), 2, ("test_accuracy", "test_loss")),
    "deconvnet": (tiny("deconvnet", epochs=2), 1, ("test_accuracy", "test_loss")),
    "embeddings": (tiny("embeddings", epochs=2), 1, ("trained",)),
    # The sweep's second model is killed after its first epoch: the first model restores.
    "autoencoder": (tiny("autoencoder", epochs=2, w_sweep=(0.0, 0.1)), 3,
                    ("test_accuracy", "psnr", "w_sweep")),
    # Killed inside the second model; the first restores without training again.
    "mnist-rnn": (tiny("mnist-rnn", cells=("gru",), compare_cnn=False), 3, ("results",)),
    "transfer": (tiny("transfer"), 2, ("table",)),
    "char-rnn": (tiny("char-rnn", steps=9), 2,
                 ("validation_loss", "validation_loss_windowed", "train_loss")),
    "word-rnn": (tiny("word-rnn", steps=9), 2, ("validation_loss", "bits_per_char", "train_loss")),
}
# The labs this file leaves out, and why.
NOT_HERE = {
    "gan": "its killed-and-resumed run is checked in test_gan.py (custom train_step, same Backup)",
    "adversarial": "it trains only the cached shared classifier, no backup to resume",
}


def test_every_lab_is_covered_or_excused():
    assert sorted({*LABS, *NOT_HERE}) == sorted(labs.names())


class _Killed(BaseException):
    """Not an Exception: nothing in a lab may catch it, as nothing catches SIGKILL."""


@pytest.fixture
def kill_after_save(monkeypatch):
    """kill_after_save(n): the n-th backup of the process lands on disk, then the run dies."""

    def arm(count: int):
        original = training.Backup._save_model
        saves = []

        def save_then_die(self):
            original(self)
            saves.append(self.directory.name)
            if len(saves) == count:
                raise _Killed(f"killed after save {count} ({self.directory.name})")

        monkeypatch.setattr(training.Backup, "_save_model", save_then_die)
        return saves

    return arm


def _same(left, right, path="metrics"):
    """Asserts two metric trees are equal (floats to 1e-6 relative)."""
    if isinstance(left, dict):
        assert set(left) == set(right), path
        for key in left:
            _same(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            _same(a, b, f"{path}[{index}]")
    elif isinstance(left, float):
        assert right == pytest.approx(left, rel=1e-6, abs=1e-7), path
    else:
        assert left == right, path


def _strip_times(value):
    if isinstance(value, dict):
        return {key: _strip_times(item) for key, item in value.items()
                if "time" not in key and key not in ("history", "seconds")}
    if isinstance(value, list):
        return [_strip_times(item) for item in value]
    return value


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LABS))
def test_killed_run_resumes_to_the_uninterrupted_metrics(name, tmp_path, empty_data_dir,
                                                         kill_after_save, monkeypatch):
    tiny_config, kill_at, keys = LABS[name]
    config = dataclasses.replace(tiny_config, deterministic=True,
                                 export_dir=str(tmp_path / "saved_models")).validate()
    expected = labs.run(name, config, str(tmp_path / "whole"))

    saves = kill_after_save(kill_at)
    workdir = tmp_path / "killed"
    with pytest.raises(_Killed):
        labs.run(name, config, str(workdir))
    assert not (workdir / "metrics.json").exists()
    assert (workdir / "backup").is_dir()
    monkeypatch.undo()  # the resumed run is not killed

    resumed = labs.run(name, config, str(workdir), resume=True)
    for key in keys:
        _same(_strip_times(expected[key]), _strip_times(resumed[key]), key)
    env = json.loads((workdir / "env.json").read_text())
    assert len(env["resumed"]) == 1
    assert not (workdir / "backup").exists(), "a finished run keeps no backup"
    # The logs hold every epoch once, in order, as the uninterrupted run's do.
    for log in sorted((tmp_path / "whole").rglob("*.csv")):
        twin = workdir / log.relative_to(tmp_path / "whole")
        if not twin.exists():  # transfer: the killed run reused the source model it cached
            assert name == "transfer", f"{twin} is missing"
            continue
        if "epoch" not in log.read_text().splitlines()[0].split(","):
            continue
        with open(log, newline="") as whole, open(twin, newline="") as killed:
            assert ([row["epoch"] for row in csv.DictReader(whole)]
                    == [row["epoch"] for row in csv.DictReader(killed)]), log.name
    assert saves, "the kill never happened"


def _two_epochs(export_dir):
    """mnist-cnn's tiny config, two deterministic epochs (a resume lands between them)."""
    return tiny("mnist-cnn", epochs=2, deterministic=True, export_dir=str(export_dir)).validate()


@pytest.fixture(scope="module")
def finished_mnist_run(tmp_path_factory):
    """A finished, uninterrupted `_two_epochs` run: (its folder, its metrics)."""
    root = tmp_path_factory.mktemp("finished")
    workdir = root / "run"
    return workdir, mnist_cnn.run(_two_epochs(root / "saved_models"), str(workdir))


def test_resume_refuses_what_it_cannot_continue(tmp_path, finished_mnist_run):
    with pytest.raises(ConfigError, match="not a run folder"):
        run_folders.resumable_config(tmp_path, "mnist-cnn", mnist_cnn_config.Config)
    workdir, _ = finished_mnist_run
    with pytest.raises(ConfigError, match="finished already"):
        run_folders.resumable_config(workdir, "mnist-cnn", mnist_cnn_config.Config)
    with pytest.raises(ConfigError, match="is a 'mnist-cnn' run, not a cifar-cnn run"):
        run_folders.resumable_config(workdir, "cifar-cnn", cifar_cnn_config.Config)


def test_a_kill_during_a_save_keeps_the_previous_backup(tmp_path, monkeypatch,
                                                       finished_mnist_run):
    """The state folder is swapped in whole: a save that dies half-way leaves the last one."""
    config = _two_epochs(tmp_path / "saved_models")
    original = training.Backup._save_model
    calls = []

    def die_in_second_save(self):
        calls.append(1)
        if len(calls) == 2:
            staging = self.directory / "state.new"
            staging.mkdir()
            (staging / "model.weights.h5").write_bytes(b"half a file")
            raise _Killed("killed while saving")
        original(self)

    monkeypatch.setattr(training.Backup, "_save_model", die_in_second_save)
    workdir = tmp_path / "run"
    with pytest.raises(_Killed):
        mnist_cnn.run(config, str(workdir))
    monkeypatch.undo()
    metadata = json.loads((workdir / "backup" / "model" / "state" / "metadata.json").read_text())
    assert metadata["epoch"] == 1
    metrics = mnist_cnn.run(config, str(workdir), resume=True)
    with open(workdir / "history.csv", newline="") as handle:
        assert [row["epoch"] for row in csv.DictReader(handle)] == ["0", "1"]
    # Resumed from the first epoch's state, it ends where the uninterrupted run ends.
    _, expected = finished_mnist_run
    for key in ("test_accuracy", "test_loss", "train_accuracy", "confusion_matrix"):
        _same(expected[key], metrics[key], key)


@pytest.mark.slow
def test_killed_cli_run_resumes(tmp_path, empty_data_dir):
    """`kill -9` of `keras-labs run`, then `keras-labs run LAB --resume RUN`."""
    out = tmp_path / "runs"
    args = ["run", "mnist-cnn", "--preset", "quick", "--data", "sample", "--epochs", "40",
            "--set", "train_examples=256", "--set", "filters=8,16", "--set", "dense_units=16",
            "--out", str(out), "--export-dir", str(tmp_path / "saved_models")]
    process = subprocess.Popen([sys.executable, "-m", "keras_labs", *args],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.monotonic() + 240
        while not list(out.glob("mnist-cnn/*/backup/model/state/metadata.json")):
            assert process.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline, "no backup appeared"
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    workdir = next(out.glob("mnist-cnn/*"))
    assert not (workdir / "metrics.json").exists()

    refused = run_cli("run", "mnist-cnn", "--resume", str(workdir), "--epochs", "2")
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert "--resume continues one lab's run" in refused.stderr

    resumed = run_cli("run", "mnist-cnn", "--resume", str(workdir))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed model after epoch" in resumed.stdout
    metrics = json.loads((workdir / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.1
    with open(workdir / "history.csv", newline="") as handle:
        assert [int(row["epoch"]) for row in csv.DictReader(handle)] == list(range(40))
    assert not (workdir / "backup").exists()

    again = run_cli("run", "mnist-cnn", "--resume", str(workdir))
    assert again.returncode == 2 and "finished already" in again.stderr
