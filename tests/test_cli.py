"""The command line: bad input exits 2 with one clear line; fail fast on unprepared data."""

import json
import subprocess
import sys

import pytest
from conftest import ROOT, make_cifar_dir, run_cli

from keras_labs import labs

# What TensorFlow's C++ side prints as it starts (absl's banner, oneDNN, CPU features).
START_UP_LINES = ("absl::InitializeLog", "oneDNN custom operations", "cpu_feature_guard")


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


def test_data_prepare_is_one_clean_line_and_list_reports_partial(tmp_path):
    make_cifar_dir(tmp_path / "src")
    result = run_cli("data", "prepare", "cifar10", "--from", str(tmp_path / "src"),
                     "--data-dir", str(tmp_path / "tfds"), text=False)  # keeps every \r
    assert result.returncode == 0, result.stderr
    # Not a terminal: no tqdm bars (carriage returns, escape codes), one line per dataset.
    for output in (result.stdout, result.stderr):
        assert b"\r" not in output and b"\x1b[" not in output, output
    (line,) = result.stdout.decode().splitlines()
    assert line.startswith("cifar10: prepared in ") and "(train 21, test 4)" in line
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
    # Every run's HParams session sits in its own tb/ (runs.Run), so all four are there.
    sessions = {path.parent.parent.name
                for path in table.parent.glob("*/tb/events.out.tfevents*")}
    assert len(sessions) == 4


# Runs in a fresh interpreter: each argv through `cli.main`, then which heavy modules loaded.
_LIGHT_COMMANDS = """
import argparse, contextlib, io, json, sys
from keras_labs import cli, labs

def commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield [*prefix, name]
                yield from commands(sub, [*prefix, name])

given = json.loads(sys.argv[1])
helps = [["--help"], *([*command, "--help"] for command in commands(cli.build_parser()))]
codes = {}
for argv in [*helps, *given["commands"]]:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            codes[" ".join(argv)] = cli.main(argv)
        except SystemExit as exit:
            codes[" ".join(argv)] = exit.code
for name in labs.names():  # every preset of every lab validates, cross-field checks included
    lab = labs.get(name)
    for preset in lab.PRESETS:
        labs.resolve_config(lab, preset)
print(json.dumps({"codes": codes, "helps": len(helps),
                  "loaded": [name for name in given["heavy"] if name in sys.modules]}))
"""


def test_list_help_and_config_errors_do_not_load_tensorflow(tmp_path):
    out = ["--out", str(tmp_path / "runs")]
    errors = [["run", "no-such-lab", *out], ["run", "mnist-cnn", "--preset", "nope", *out],
              ["run", "mnist-cnn", "--set", "learning_rate=-1", *out],
              ["run", "mnist-cnn", "--set", "epochs=many", *out],
              ["run", "mnist-cnn", "--epochs", "0", *out],
              ["run", "mnist-rnn", "--set", "cells=gru,nope", *out],
              ["run", "cifar-cnn", "--set", "optimizer=lion", *out],
              ["run", "embeddings", "--set", "tsne=nope", *out],
              ["run", "char-rnn", "--set", "implementation=hoisted", "--set", "cell=lstm", *out],
              ["run", "gan", "--set", "iterations=999", *out],
              ["run", "all", "--set", "nope=1", *out],
              ["run", "mnist-cnn", "--resume", str(tmp_path / "run"), "--seed", "1"],
              ["sweep", "cifar-cnn", "--grid", "optimizer=adam,lion", *out],
              ["data", "prepare", "mnsit"],
              *(["run", name, "--set", "nope=1", *out] for name in labs.names())]
    given = {"commands": [["list"], ["list", "--verbose"], *errors],
             "heavy": ["tensorflow", "keras", "tensorflow_datasets", "sklearn", "matplotlib"]}
    result = subprocess.run([sys.executable, "-c", _LIGHT_COMMANDS, json.dumps(given)],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["loaded"] == [], report["loaded"]
    codes = list(report["codes"].values())
    assert report["helps"] >= 9  # keras-labs and every (sub)command
    assert codes[:report["helps"]] == [0] * report["helps"], report["codes"]
    assert codes[report["helps"]:] == [0, 0] + [2] * len(errors), report["codes"]
    assert not (tmp_path / "runs").exists()


def _start_up_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(mark in line for mark in START_UP_LINES)]


def test_tensorflow_start_up_lines_show_only_with_verbose(tmp_path):
    # The control: with --verbose this TensorFlow build's start-up lines do reach stderr.
    verbose = run_cli("data", "list", "--data-dir", str(tmp_path), "--verbose")
    assert verbose.returncode == 0, verbose.stderr
    if not _start_up_lines(verbose.stderr):
        pytest.skip("this TensorFlow build prints no start-up lines: nothing to hide")
    result = run_cli("run", "mnist-cnn", "--preset", "quick", "--data", "sample",
                     "--set", "train_examples=64", "--set", "epochs=1",
                     "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "exports"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert _start_up_lines(result.stderr) == [], result.stderr
    assert "mnist-cnn: done" in result.stdout
