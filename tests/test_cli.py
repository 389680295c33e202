"""The command line: one clear line per failure and an exit code that says which kind (2 usage
or config, 1 runtime, 130 Ctrl-C, 143 SIGTERM); fail fast on unprepared data; `list`."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, make_cifar_dir, run_cli

from keras_labs import __version__, labs

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
    assert result.returncode == 1  # missing data: a runtime failure
    (line,) = error_lines(result)
    assert "not prepared" in line and "keras-labs data prepare mnist" in line
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()  # checked before any run folder is made


def test_prepare_from_missing_folder_is_one_line(tmp_path):
    result = run_cli("data", "prepare", "mnist", "--from", str(tmp_path / "nowhere"),
                     "--data-dir", str(tmp_path / "tfds"))
    assert result.returncode == 2  # a bad argument
    (line,) = error_lines(result)
    assert "nowhere" in line and "is not a folder" in line


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = run_cli("run", "mnist-cnn", "--preset", "quick", "--out", str(blocker / "runs"))
    assert result.returncode == 1  # unwritable output: a runtime failure
    (line,) = error_lines(result)
    assert "cannot create output folder" in line


def test_list_shows_labs_and_presets_in_lines_of_100_characters():
    result = run_cli("list")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if not line.startswith(" ")] == labs.names()
    # A script's `keras-labs list | awk '{print $1}'`: only a lab's own line starts with a name.
    name_like = [line.split()[0] for line in lines
                 if re.fullmatch(r"[a-z][a-z0-9_.-]*", line.split()[0])]
    assert name_like == labs.names()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    assert "presets: seed (default), quick" in result.stdout
    listed = " ".join(result.stdout.split())
    for name in labs.names():  # every preset is there, as itself or folded as `name[-suffix]`
        lab = labs.get(name)
        for preset in lab.PRESETS:
            base, _, suffix = preset.partition("-equal-updates")
            assert (re.search(rf"(^|[ ,]){re.escape(preset)}($|[ ,])", listed) or
                    (suffix == "" and f"{base}[-equal-updates]" in listed)), (name, preset)


def test_list_verbose_shows_every_field_with_its_help_and_constraints():
    result = run_cli("list", "--verbose")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert max(map(len, lines)) <= 100, max(lines, key=len)
    text = result.stdout
    for name in labs.names():
        lab = labs.get(name)
        section = text.split(f"\n{name} ", 1)[1] if not text.startswith(name) else text
        defaults = lab.PRESETS[lab.DEFAULT_PRESET]
        for field in dataclasses.fields(defaults):
            assert f"--set {field.name}=" in section, (name, field.name)
    mnist = text.split("\ncifar-cnn ", 1)[0]
    (rate,) = [line for line in mnist.splitlines() if "--set learning_rate=" in line]
    assert "Adam learning rate" in rate and rate.rstrip().endswith("[> 0; <= 10.0]"), rate
    assert re.search(r"--set data=auto +full: prepared tfds data", mnist)
    assert "[one of: auto, sample, full]" in " ".join(mnist.split())
    assert re.search(r"--set filters=\d+,\d+ ", mnist)  # as --set takes a sequence


def test_version_and_the_exit_codes_in_help(capsys):
    from keras_labs import cli

    with pytest.raises(SystemExit) as exit:
        cli.main(["--version"])
    assert exit.value.code == 0 and capsys.readouterr().out == f"keras-labs {__version__}\n"
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    epilog = capsys.readouterr().out.split("exit codes:", 1)[1]
    codes = dict(re.findall(r"^  (\d+) +(\S.*)$", epilog, re.M))
    assert list(codes) == ["0", "1", "2", "130", "143"]
    assert "runtime failure" in codes["1"] and "usage or config error" in codes["2"]
    assert "Ctrl-C" in codes["130"] and "SIGTERM" in codes["143"]


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
                     "--grid", "optimizer=momentum", "--out", str(tmp_path / "runs"),
                     env={"TFDS_DATA_DIR": str(tmp_path / "empty")}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    (table,) = (tmp_path / "runs" / "cifar-cnn").glob("sweep-quick-*/results.md")
    rows = [line for line in table.read_text().splitlines() if line.startswith("| 0")]
    # A 2x1 grid from two --grid flags (the in-process sweep test covers a 2x2 one).
    assert len(rows) == 2 and "tanh" in rows[1] and "momentum" in rows[1]
    # Every run's HParams session sits in its own tb/ (runs.Run), so both are there.
    sessions = {path.parent.parent.name
                for path in table.parent.glob("*/tb/events.out.tfevents*")}
    assert len(sessions) == 2


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


@pytest.mark.parametrize("message", [
    # As an eager op raises it (a dataset read outside a train step).
    "{{function_node __wrapped__IteratorGetNext_output_types_2_device_/job:localhost/replica:0/"
    "task:0/device:CPU:0}} truncated record at 6610614' failed with Read less bytes than "
    "requested [Op:IteratorGetNext] name: ",
    # As a Keras train step (a graph) raises it: a header, the stack where the op was defined.
    "Graph execution error:\n\nDetected at node IteratorGetNext defined at (most recent call "
    "last):\n  File \"/x/training.py\", line 124, in fit\n\n  File \"/x/trainer.py\", line "
    "154, in multi_step_on_iterator\n\ntruncated record at 6610614' failed with Read less bytes "
    "than requested\n\t [[{{node IteratorGetNext}}]] [Op:__inference_multi_step_on_iterator_3177]",
])
def test_a_tensorflow_read_error_reads_as_one_line(message):
    import tensorflow as tf

    from keras_labs import cli

    line = cli._tensorflow_error_line(tf.errors.DataLossError(None, None, message))
    assert line == ("TensorFlow DataLossError: truncated record at 6610614' failed with Read "
                    "less bytes than requested; the input data could not be read: a prepared "
                    "dataset may be damaged (`keras-labs data list` checks them; `keras-labs "
                    "data prepare NAME --force --from DIR` rebuilds one)")


# --------------------------------------------------------------------------------------------
# Stopped runs: SIGTERM as Ctrl-C


def _backed_up(run_root) -> bool:
    return any(run_root.glob("mnist-cnn/*/backup/model/state/metadata.json"))


def test_sigterm_stops_a_run_like_ctrl_c_keeping_its_backup(tmp_path):
    """A real SIGTERM (what `timeout` and schedulers send) to a real run after its first
    epoch's backup: exit 143, one line that says how to continue, a FAILED.txt that says why."""
    runs = tmp_path / "runs"
    log = open(tmp_path / "log", "w")  # noqa: SIM115 (open while the run writes to it)
    process = subprocess.Popen(
        [sys.executable, "-m", "keras_labs", "run", "mnist-cnn", "--preset", "quick",
         "--data", "sample", "--set", "train_examples=256", "--set", "batch_size=64",
         "--set", "filters=4,8", "--set", "dense_units=8", "--set", "probe_every_steps=0",
         "--set", "epochs=10000", "--out", str(runs), "--export-dir", str(tmp_path / "sm")],
        stdout=log, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    try:
        deadline = time.monotonic() + 300
        while not _backed_up(runs):
            assert process.poll() is None, process.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "no backup within 300 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert process.returncode == 143, stderr[-2000:]
    (run_dir,) = (runs / "mnist-cnn").iterdir()
    assert error_lines(subprocess.CompletedProcess([], 143, "", stderr)) == [
        f"keras-labs: terminated (SIGTERM); continue with: keras-labs run mnist-cnn --resume "
        f"{run_dir}"]
    assert "Traceback" not in stderr
    assert (run_dir / "FAILED.txt").read_text() == (
        f"Terminated: stopped by SIGTERM; continue with: keras-labs run mnist-cnn --resume "
        f"{run_dir}\n")
    assert _backed_up(runs) and not (run_dir / "metrics.json").exists()
    assert not (tmp_path / "sm").exists()  # nothing exported


def test_ctrl_c_stops_a_run_with_the_same_note(tmp_path, monkeypatch, capsys):
    from keras_labs import cli

    def interrupted(name, config, workdir, *, resume=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(labs, "run", interrupted)
    runs = tmp_path / "runs"
    code = cli.main(["run", "mnist-cnn", "--preset", "quick", "--data", "sample",
                     "--out", str(runs)])
    assert code == 130
    (run_dir,) = (runs / "mnist-cnn").iterdir()
    note = f"continue with: keras-labs run mnist-cnn --resume {run_dir}"
    assert capsys.readouterr().err.splitlines()[-1] == f"keras-labs: interrupted; {note}"
    assert (run_dir / "FAILED.txt").read_text() == f"KeyboardInterrupt: stopped by Ctrl-C; {note}\n"


def test_language_model_scoring_traces_once_per_call(caplog):
    """The held-out scoring of char-rnn and word-rnn feeds chunks of several shapes (the last
    chunk of a piece is shorter, the leftover piece has one row): it traces once, so
    TensorFlow never warns of retracing (word-rnn's quick run printed 4 such warnings)."""
    import numpy as np

    from keras_labs import language_modeling
    from keras_labs.models import language

    _, step_model, state_sizes = language.build_language_model(30, units=8, num_layers=2,
                                                               embedding_dim=4)
    ids = np.random.default_rng(0).integers(0, 30, 1003)
    with caplog.at_level("WARNING", logger="tensorflow"):
        for _ in range(3):  # the labs score the validation text, then the test text
            nats, count = language_modeling.stateful_loss(step_model, state_sizes, ids,
                                                          start_id=0, streams=8, chunk=16)
    assert count == 1003 and nats > 0
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]
    # The state is carried from chunk to chunk: a piece read in one chunk scores the same.
    whole, _ = language_modeling.stateful_loss(step_model, state_sizes, ids, start_id=0,
                                               streams=8, chunk=1003)
    assert nats == pytest.approx(whole, rel=1e-5)
