"""The bad-input table: every mistake a user can make at the command line, and what it does.

Each row is a `keras-labs` command line, a phrase its error must contain and its exit code: 2
for a usage or config error, 1 for a runtime failure (data missing, damaged or corrupt,
unwritable output). The contract for every row: that exit code, exactly one line of our own on
stderr (no traceback), and nothing written before is changed: an earlier run folder, an
earlier export and prepared data keep every byte. Rows that need a file (corrupt data, an
export) get it from the fixtures below.
"""

import gzip
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("keras-labs")]


def snapshot(*roots: Path) -> dict[str, str]:
    """{path: sha256} of every file under `roots`."""
    return {str(path): hashlib.sha256(path.read_bytes()).hexdigest()
            for root in roots if root.exists() for path in sorted(root.rglob("*"))
            if path.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An output folder with an earlier run, an export root with an earlier export, a data
    dir with prepared data, and the odd files the rows need."""
    root = tmp_path_factory.mktemp("bad-inputs")
    earlier_run = root / "runs" / "mnist-cnn" / "20260101-000000-seed-abcd"
    earlier_run.mkdir(parents=True)
    (earlier_run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.99}))
    (earlier_run / "config.json").write_text(json.dumps({"epochs": 12}))
    earlier_export = root / "saved_models" / "mnist-cnn" / "1"  # a version, as TF Serving reads
    earlier_export.mkdir(parents=True)
    (earlier_export / "saved_model.pb").write_bytes(b"an earlier export")
    data_dir = root / "tfds"
    data_dir.mkdir()
    (data_dir / "notes.txt").write_text("an earlier file in the data dir")
    damaged = root / "damaged-tfds" / "mnist" / "3.0.1"
    damaged.mkdir(parents=True)
    (damaged / "dataset_info.json").write_text("{}")

    corrupt_mnist = root / "corrupt-mnist"
    corrupt_mnist.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (corrupt_mnist / name).write_bytes(gzip.compress(b"\x00\x00\x08\x03 not an image"))
    # CIFAR-10 binary batches whose records are not 1 + 32*32*3 bytes: images of the wrong shape.
    odd_cifar = root / "odd-cifar" / "cifar-10-batches-bin"
    odd_cifar.mkdir(parents=True)
    (odd_cifar / "data_batch_1.bin").write_bytes(bytes(1 + 28 * 28 * 3) * 3)
    (odd_cifar / "test_batch.bin").write_bytes(bytes(1 + 28 * 28 * 3) * 3)
    (odd_cifar / "batches.meta.txt").write_text("airplane\n")
    blocker = root / "a-file"
    blocker.write_text("a file where a folder should be")
    not_a_run = root / "not-a-run"
    not_a_run.mkdir()
    return {"root": root, "runs": root / "runs", "exports": root / "saved_models",
            "data": data_dir, "damaged": damaged.parent.parent, "corrupt_mnist": corrupt_mnist, "odd_cifar": odd_cifar.parent,
            "blocker": blocker, "not_a_run": not_a_run, "earlier_run": earlier_run,
            "earlier_export": earlier_export, "truncated": truncated_mnist(root / "truncated")}


def truncated_mnist(root: Path, *, sizes_recorded: bool = True) -> Path:
    """A tfds data dir with a tiny MNIST prepared by `data prepare`, its train shard then cut
    to a third of its bytes (within a record). Without `sizes_recorded`, its sidecar is as
    one written before file sizes were recorded."""
    from keras_labs.data import preparation

    source = root / "source"
    source.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, count in (("train", 300), ("t10k", 20)):
        for kind, magic, array in (("images-idx3", 2051, rng.integers(0, 256, (count, 28, 28))),
                                   ("labels-idx1", 2049, np.arange(count) % 10)):
            header = b"".join(number.to_bytes(4, "big") for number in (magic, *array.shape))
            (source / f"{prefix}-{kind}-ubyte.gz").write_bytes(
                gzip.compress(header + array.astype(np.uint8).tobytes()))
    preparation.prepare("mnist", source, root / "tfds", log=lambda _: None, progress=False)
    version = root / "tfds" / "mnist" / "3.0.1"
    shard = version / "mnist-train.tfrecord-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 3 + 17])
    if not sizes_recorded:
        sidecar = json.loads((version / "keras_labs.json").read_text())
        del sidecar["files"]
        (version / "keras_labs.json").write_text(json.dumps(sidecar))
    return root / "tfds"


# (id, command line with {placeholders} from `world`, phrase the one error line contains,
# exit code: 2 for usage and config errors, 1 for runtime failures)
TABLE = [
    # Unknown names
    ("unknown lab", "run no-such-lab", "'no-such-lab'", 2),
    ("unknown preset", "run mnist-cnn --preset nope", "'nope'", 2),
    ("unknown config key", "run mnist-cnn --set nope=1", "'nope'", 2),
    ("unknown dataset", "data prepare mnsit", "'mnsit'", 2),
    ("unknown command", "frobnicate", "'frobnicate'", 2),
    ("unknown strategy", "run mnist-cnn --strategy tpu", "'tpu'", 2),
    ("unknown sweep key", "sweep mnist-cnn --grid nope=1,2", "'nope'", 2),
    # Out-of-range and unparsable values
    ("negative learning rate", "run mnist-cnn --set learning_rate=-1", "learning_rate=-1", 2),
    ("NaN learning rate", "run mnist-cnn --set learning_rate=nan", "learning_rate=nan", 2),
    ("dropout above range", "run char-rnn --set dropout=1.5", "dropout=1.5", 2),
    ("zero temperature", "run char-rnn --set temperature=0", "temperature=0", 2),
    ("class out of range", "run adversarial --set target_class=10", "target_class=10", 2),
    ("not a number", "run mnist-cnn --set epochs=many", "'many'", 2),
    ("zero epochs", "run mnist-cnn --epochs 0", "'0'", 2),
    ("negative seed", "run mnist-cnn --seed -1", "'-1'", 2),
    ("unknown data choice", "run mnist-cnn --data everything", "'everything'", 2),
    ("bad sweep grid", "sweep mnist-cnn --grid learning_rate", "learning_rate", 2),
    ("profiled batches reversed", "run mnist-cnn --data sample --set profile_batches=20,10",
     "profile_batches='20,10' is not valid", 2),
    ("profiled batches not numbers", "run mnist-cnn --data sample --set profile_batches=a-b",
     "profile_batches='a-b' is not valid", 2),
    # Missing and corrupt data
    ("data not prepared", "run mnist-cnn --data full --data-dir {root}/empty-tfds",
     "keras-labs data prepare mnist", 1),
    ("source folder missing", "data prepare mnist --from {root}/nowhere --data-dir {data}",
     "is not a folder", 2),
    ("corrupt source files", "data prepare mnist --from {corrupt_mnist} --data-dir {data} --force",
     "mnist", 1),
    ("damaged prepared dataset", "run mnist-cnn --data full --data-dir {damaged}",
     "is unreadable", 1),
    ("truncated shard of a prepared dataset", "run mnist-cnn --data-dir {truncated}",
     "keras-labs data prepare mnist --force --from", 1),
    ("truncated shard in the data listing", "data list --data-dir {truncated}",
     "mnist-train.tfrecord-00000-of-00001 is ", 1),
    ("wrong image shapes in CIFAR batches",
     "data prepare cifar10 --from {odd_cifar} --data-dir {data}", "record", 1),
    # Unwritable output
    ("output folder under a file", "run mnist-cnn --out {blocker}/runs",
     "cannot create output folder", 1),
    ("report under a file", "report {runs} --out {blocker}/report", "a-file", 1),
    ("report of no runs", "report {not_a_run}", "no run folders", 2),
    ("report of a missing folder", "report {root}/nowhere", "does not exist", 2),
    # Resume
    ("resume a folder that is not a run", "run mnist-cnn --resume {not_a_run}",
     "not a run folder", 2),
    ("resume a finished run", "run mnist-cnn --resume {earlier_run}", "finished already", 2),
    ("resume with new settings", "run mnist-cnn --resume {earlier_run} --epochs 3",
     "--resume continues", 2),
    ("resume all", "run all --resume {earlier_run}", "--resume continues", 2),
    # Generation
    ("generate from a missing export", "generate {root}/nowhere --prime The",
     "not a SavedModel folder", 2),
    ("generate from a broken export", "generate {earlier_export} --prime The",
     "cannot load the SavedModel", 2),
    ("generate at zero temperature", "generate {earlier_export} --temperature 0",
     "must be a finite number > 0", 2),
    ("generate a negative length", "generate {earlier_export} --length -5", "'-5'", 2),
]


@pytest.mark.parametrize("command, phrase, code", [row[1:] for row in TABLE],
                         ids=[row[0] for row in TABLE])
def test_bad_input_exits_with_its_code_one_line_and_loses_nothing(world, command, phrase, code):
    protected = (world["runs"], world["exports"], world["data"], world["damaged"],
                 world["truncated"])
    before = snapshot(*protected)
    args = command.format(**{key: str(value) for key, value in world.items()}).split()
    if args[0] in ("run", "sweep") and "--out" not in args and "--resume" not in args:
        args += ["--out", str(world["runs"])]
    result = run_cli(*args, env={"TFDS_DATA_DIR": str(world["data"])}, timeout=240)
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr[-2000:]
    assert phrase in lines[0], lines[0]
    assert snapshot(*protected) == before, "a failed command changed earlier files"
    # A command refused up front starts no run: the output folder holds only the earlier one.
    assert sorted(p.name for p in (world["runs"] / "mnist-cnn").iterdir()) == [
        world["earlier_run"].name]


def test_nan_loss_fails_the_run_and_exports_nothing(world, tmp_path, monkeypatch, capsys):
    """A loss that turns NaN: exit 1 (a runtime failure), one line, the run folder says why,
    no export."""
    import keras

    from keras_labs import cli
    from keras_labs.models import cnn

    build = cnn.mnist_cnn

    def poisoned(*args, **kwargs):
        model = build(*args, **kwargs)
        kernel = model.get_layer("probabilities").kernel
        kernel.assign(keras.ops.full(kernel.shape, float("nan")))
        return model

    monkeypatch.setattr(cnn, "mnist_cnn", poisoned)
    before = snapshot(world["runs"], world["exports"])
    out = tmp_path / "runs"
    code = cli.main(["run", "mnist-cnn", "--preset", "quick", "--data", "sample", "--set",
                     "train_examples=128", "--out", str(out), "--export-dir",
                     str(world["exports"])])
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("keras-labs")]
    assert len(lines) == 1 and "training diverged" in lines[0], lines
    (run_dir,) = (out / "mnist-cnn").iterdir()
    assert "diverged" in (run_dir / "FAILED.txt").read_text()
    assert not (run_dir / "metrics.json").exists()
    assert snapshot(world["runs"], world["exports"]) == before  # no export, nothing replaced


def test_a_read_error_during_training_is_one_line_and_a_failed_run(world, tmp_path, capsys):
    """A shard truncated within a record, in a dataset prepared before file sizes were
    recorded (so nothing catches it before the run): TensorFlow's DataLossError, raised in the
    middle of the first epoch, is one line, exit 1, and the run folder's FAILED.txt says it;
    no traceback, no export."""
    from keras_labs import cli

    data_dir = truncated_mnist(tmp_path / "older", sizes_recorded=False)
    before = snapshot(world["runs"], world["exports"])
    out = tmp_path / "runs"
    code = cli.main(["run", "mnist-cnn", "--preset", "quick", "--data", "full", "--data-dir",
                     str(data_dir), "--set", "filters=4,8", "--set", "dense_units=8",
                     # no validation part: the probe reads the first images, the epoch the rest
                     "--set", "validation_fraction=0",
                     "--out", str(out), "--export-dir", str(world["exports"])])
    err = capsys.readouterr().err
    assert code == 1, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith("keras-labs")]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert lines[0].startswith("keras-labs: error: TensorFlow DataLossError: truncated record")
    assert "keras-labs data prepare NAME --force" in lines[0]
    (run_dir,) = (out / "mnist-cnn").iterdir()
    failed = (run_dir / "FAILED.txt").read_text()
    assert failed.startswith("DataLossError: truncated record") and failed.count("\n") == 1
    assert not (run_dir / "metrics.json").exists()
    assert snapshot(world["runs"], world["exports"]) == before


@pytest.fixture(scope="module")
def char_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("char-export")
    result = run_cli("run", "char-rnn", "--preset", "quick", "--data", "sample",
                     "--set", "steps=4", "--set", "log_every=2", "--set", "steps_per_execution=2",
                     "--set", "units=16", "--set", "embedding_dim=8", "--set", "sample_length=10",
                     "--set", "train_chars=20000", "--set", "validation_chars=2000",
                     "--out", str(root / "runs"), "--export-dir", str(root / "sm"), timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    (export,) = (root / "sm" / "char-rnn").iterdir()
    return export


ODD_PRIMES = ["2 b3n", "bg09Z", "qwert", "The", "What is", "Shall I give",
              "X087hNYB BHN BYFVuhsdbs", "", "日本語 ☃ \t tabs", "--looks-like-a-flag",
              "x" * 5000]


def test_odd_primes_generate_and_name_unknown_characters(char_export, capsys):
    from keras_labs import cli

    # The command's own code in this process (a process start per prime would cost ~9 s each);
    # one real process below shows the same from the shell.
    for prime in ODD_PRIMES:
        assert cli.main(["generate", str(char_export), "--prime=" + prime, "--length", "20",
                         "--top-k", "5"]) == 0, prime[:40]
        out = capsys.readouterr().out
        assert out.startswith(prime), prime[:40]
        assert len(out) >= len(prime) + 20
    result = run_cli("generate", str(char_export), "--prime", "日本", "--length", "5")
    assert result.returncode == 0 and result.stdout.startswith("日本")
    notes = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert notes == ["note: unknown to the vocabulary (read as out-of-vocabulary): '日', '本'"]


def test_generate_refuses_an_export_that_is_not_a_text_generator(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.export(str(tmp_path / "dense"), format="tf_saved_model", verbose=False)
    result = run_cli("generate", str(tmp_path / "dense"), "--prime", "The")
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "is not a text generator" in line


def test_output_names_cannot_leave_the_output_folder(tmp_path):
    from types import SimpleNamespace

    from keras_labs import ConfigError, export, runs

    config = SimpleNamespace(export_dir=str(tmp_path), export_format="saved_model")
    for name in ("..", "../x", "a/b", "", "."):
        with pytest.raises(ConfigError, match="not a plain folder name"):
            runs.plain_name(name)
        for lab, run_id in (("mnist-cnn", name), (name, "20260101-000000-seed-abcd")):
            run = SimpleNamespace(lab=lab, run_id=run_id, config=config)
            with pytest.raises(ConfigError, match="not a plain folder name"):
                export.export_model(None, run)
    assert os.listdir(tmp_path) == []
