"""Settings chosen for the user: the thread count from the batch size, and the dtype policy from
what the hardware has (bf16 on a CPU with bfloat16 arithmetic, else float32, said in a line)."""

from __future__ import annotations

import dataclasses
import json

import pytest
from conftest import run_cli

from keras_labs import ConfigError, devices, labs, language_modeling, run_folders


def test_a_small_batch_gets_one_thread_and_a_large_one_every_core():
    assert devices.choose_threads(0, 4, cores=2)[0] == 1
    assert devices.choose_threads(0, devices.SMALL_BATCH, cores=2)[0] == 1
    threads, why = devices.choose_threads(0, 128, cores=2)
    assert threads == 0 and "one thread per core (2)" in why
    assert devices.choose_threads(0, None, cores=8)[0] == 0  # no batch: TensorFlow's default
    assert devices.choose_threads(3, 4, cores=2) == (3, "set by the config")


def test_the_tutorial_preset_pins_no_thread_count():
    """A preset tuned for batch 4 must not halve the speed of the user who sets batch 128."""
    tutorial = labs.get("cifar-cnn").PRESETS["tutorial"]
    assert tutorial.threads == 0
    assert devices.choose_threads(tutorial.threads, tutorial.batch_size)[0] == 1
    bigger = dataclasses.replace(tutorial, batch_size=128)
    assert devices.choose_threads(bigger.threads, bigger.batch_size)[0] == 0


def test_bf16_needs_bfloat16_arithmetic(tmp_path, monkeypatch):
    with_bf16 = tmp_path / "cpuinfo"
    with_bf16.write_text("processor : 0\nflags : fpu sse avx512f avx512_bf16\n")
    without = tmp_path / "cpuinfo-old"
    without.write_text("processor : 0\nflags : fpu sse avx2\n")
    assert devices.cpu_has_bfloat16(str(with_bf16))
    assert not devices.cpu_has_bfloat16(str(without))
    assert not devices.cpu_has_bfloat16(str(tmp_path / "missing"))
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: False)
    policy, note = devices.precision_policy("bf16")
    assert policy == "float32" and "AVX512-BF16" in note
    # the language models' own switch (char-rnn's fast preset) falls back the same way
    dtype, note = language_modeling.choose_compute_dtype("bfloat16")
    assert dtype == "float32" and note.startswith("compute_dtype=bfloat16 needs a GPU")
    monkeypatch.setattr(devices, "cpu_has_bfloat16", lambda: True)
    assert devices.precision_policy("bf16") == ("mixed_bfloat16", "")
    assert devices.precision_policy("off") == ("float32", "")
    assert language_modeling.choose_compute_dtype("bfloat16") == ("bfloat16", "")
    assert language_modeling.choose_compute_dtype("float32") == ("float32", "")


def test_mixed_precision_takes_its_three_values_only():
    config = labs.get("cifar-cnn").PRESETS["quick"]
    with pytest.raises(ConfigError, match="mixed_precision='half' is not valid"):
        dataclasses.replace(config, mixed_precision="half").validate()


def test_a_legacy_flag_in_config_json_still_resumes(tmp_path):
    lab = labs.get("mnist-cnn")
    stored = {**lab.PRESETS["quick"].to_dict(), "mixed_precision": False}
    (tmp_path / "config.json").write_text(json.dumps(stored))
    (tmp_path / "env.json").write_text(json.dumps({"lab": "mnist-cnn"}))
    config = run_folders.resumable_config(tmp_path, "mnist-cnn", lab.Config)
    assert config.mixed_precision == "off"


@pytest.mark.skipif(not devices.cpu_has_bfloat16(), reason="this CPU has no bfloat16 arithmetic")
def test_a_bf16_run_trains_in_bfloat16_and_records_it(tmp_path):
    result = run_cli("run", "cifar-cnn", "--preset", "quick", "--data", "sample",
                     "--mixed-precision", "bf16", "--set", "train_examples=512",
                     "--set", "test_examples=128", "--epochs", "1",
                     "--out", str(tmp_path / "runs"), "--export-dir", str(tmp_path / "sm"))
    assert result.returncode == 0, result.stderr[-1500:]
    (run,) = (tmp_path / "runs" / "cifar-cnn").iterdir()
    env = json.loads((run / "env.json").read_text())
    assert env["strategy"]["policy"] == "mixed_bfloat16"
    assert json.loads((run / "config.json").read_text())["mixed_precision"] == "bf16"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and metrics["test_loss"] == metrics["test_loss"]
    assert env["threads_chosen"]["why"]
