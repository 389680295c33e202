"""The command line: bad input exits 2 with one clear line; fail fast on unprepared data."""

import pytest
from conftest import make_cifar_dir, run_cli

from keras_labs import labs


def error_lines(result):
    """stderr lines that are ours (TensorFlow's start-up chatter is not)."""
    return [line for line in result.stderr.splitlines() if line.startswith("keras-labs")]


@pytest.mark.parametrize("args, quoted, valid", [
    (["run", "no-such-lab"], "'no-such-lab'", ", ".join(labs.names())),
    (["run", "mnist-cnn", "--preset", "nope"], "'nope'", "seed, quick"),
    (["run", "mnist-cnn", "--set", "learning_rate=-1"], "learning_rate=-1.0", "> 0"),
    (["run", "mnist-cnn", "--set", "nope=1"], "'nope'", "learning_rate"),
    (["run", "mnist-cnn", "--set", "epochs=many"], "'many'", "int"),
    (["run", "mnist-cnn", "--epochs", "0"], "'0'", "at least 1"),
    (["run", "mnist-cnn", "--data", "everything"], "'everything'", "'auto', 'sample', 'full'"),
    (["data", "prepare", "mnsit"], "'mnsit'", "fashion_mnist"),
    (["frobnicate"], "'frobnicate'", "list"),
])
def test_bad_input_exits_2_with_one_line(args, quoted, valid, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path)) if args[0] == "run" else run_cli(*args)
    assert result.returncode == 2, result.stderr
    lines = error_lines(result)
    assert len(lines) == 1, result.stderr
    assert quoted in lines[0] and valid in lines[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was started


def test_unprepared_full_data_fails_fast_naming_prepare(tmp_path):
    # The timeout proves there is no tfds download retry loop (~200 s offline).
    result = run_cli("run", "mnist-cnn", "--data", "full", "--out", str(tmp_path / "runs"),
                     env={"TFDS_DATA_DIR": str(tmp_path / "empty")}, timeout=120)
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "not prepared" in line and "keras-labs data prepare mnist" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # checked before any run folder is made


def test_prepare_from_missing_folder_is_one_line(tmp_path):
    result = run_cli("data", "prepare", "mnist", "--from", str(tmp_path / "nowhere"),
                     "--data-dir", str(tmp_path / "tfds"))
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "nowhere" in line and "is not a folder" in line


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("run", "mnist-cnn", "--preset", "quick", "--out", str(blocker / "runs"))
    assert result.returncode == 2
    (line,) = error_lines(result)
    assert "cannot create output folder" in line


def test_list_shows_labs_and_presets():
    result = run_cli("list")
    assert result.returncode == 0
    listed = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert listed == labs.names()
    assert "seed, quick" in result.stdout


def test_data_list_reports_prepared_partial(tmp_path):
    make_cifar_dir(tmp_path / "src")
    result = run_cli("data", "prepare", "cifar10", "--from", str(tmp_path / "src"),
                     "--data-dir", str(tmp_path / "tfds"))
    assert result.returncode == 0, result.stderr
    listing = run_cli("data", "list", "--data-dir", str(tmp_path / "tfds"))
    cifar = next(line for line in listing.stdout.splitlines() if line.startswith("cifar10"))
    assert "train 21" in cifar and "test 4" in cifar and "PARTIAL" in cifar
    mnist = next(line for line in listing.stdout.splitlines() if line.startswith("mnist"))
    assert "not prepared" in mnist


@pytest.mark.parametrize("grid, quoted", [
    (["--grid", "optimizer=adam,lion"], "'lion'"),
    (["--grid", "colour=red"], "'colour'"),
    (["--grid", "activation"], "'activation'"),
])
def test_bad_sweep_grid_exits_2_before_any_run(grid, quoted, tmp_path):
    result = run_cli("sweep", "cifar-cnn", "--preset", "quick", "--data", "sample", *grid,
                     "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    (line,) = error_lines(result)
    assert quoted in line
    assert not list((tmp_path / "runs").rglob("metrics.json"))


def test_sweep_command_runs_a_2x2_grid_and_writes_the_table(tmp_path):
    result = run_cli("sweep", "cifar-cnn", "--preset", "quick", "--data", "sample",
                     "--set", "train_examples=64", "--set", "test_examples=32",
                     "--set", "batch_size=32", "--set", "steps_per_execution=1",
                     "--set", "probe_every_steps=1", "--set", "histogram_freq=0",
                     "--epochs", "1", "--grid", "activation=relu,tanh",
                     "--grid", "optimizer=adam,momentum", "--out", str(tmp_path / "runs"),
                     env={"TFDS_DATA_DIR": str(tmp_path / "empty")}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (table,) = (tmp_path / "runs" / "cifar-cnn").glob("sweep-quick-*/results.md")
    rows = [line for line in table.read_text().splitlines() if line.startswith("| 0")]
    assert len(rows) == 4 and "tanh" in rows[3] and "momentum" in rows[3]
    assert (table.parent / "hparams").is_dir()
