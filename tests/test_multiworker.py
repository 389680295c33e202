"""`--strategy multiworker` for real: two `keras-labs run` worker processes on localhost, each
with its own `TF_CONFIG`, train one model together; only the chief writes outputs.

Also the cluster parsing (`multiworker.cluster_config`, `is_chief`) and the refusals (resume,
`run all`) that keep a multi-worker mistake from hanging.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from keras_labs import ConfigError, multiworker

WORKER_TIMEOUT_S = 600


def _free_ports(count: int) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now (all held open while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _tf_config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def _run_workers(root: Path, cluster: dict, *args: str) -> list[tuple[int, str]]:
    """Runs one `keras-labs run ...` per worker of `cluster` (worker i writes under root/wi);
    kills them all when they outlast WORKER_TIMEOUT_S, so a stuck collective fails the test.

    Returns:
        [(exit code, output)] per worker.
    """
    processes, logs = [], []
    for index in range(len(cluster["worker"])):
        out = root / f"w{index}"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3",
               "TF_CONFIG": _tf_config(cluster, "worker", index)}
        logs.append(open(root / f"w{index}.log", "w+"))  # noqa: SIM115 (closed below)
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "keras_labs", "run", *args, "--strategy", "multiworker",
             "--out", str(out / "runs"), "--export-dir", str(out / "saved_models")],
            stdout=logs[-1], stderr=subprocess.STDOUT, env=env, cwd=ROOT))
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    try:
        for process in processes:
            process.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait()
    results = []
    for process, log in zip(processes, logs, strict=True):
        log.seek(0)
        results.append((process.returncode, log.read()))
        log.close()
    return results


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Two workers of a tiny mnist-cnn run on localhost: (root, cluster, [(code, output)])."""
    root = tmp_path_factory.mktemp("multiworker")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    results = _run_workers(root, cluster, "mnist-cnn", "--preset", "quick", "--data", "sample",
                           "--epochs", "1", "--set", "train_examples=256", "--set",
                           "batch_size=64", "--set", "filters=8,16", "--set", "dense_units=16")
    return root, cluster, results


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


@pytest.mark.slow
def test_two_workers_train_one_model_together(two_workers):
    _, _, results = two_workers
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited {code}:\n{output[-3000:]}"
    # Keras reduces the epoch's logs over every replica of the cluster: the same figures on
    # both workers (each saw only its half of every batch) mean they trained as one.
    epochs = [re.findall(r"accuracy: \S+ - loss: \S+ - val_accuracy: \S+ - val_loss: \S+", output)
              for _, output in results]
    assert len(epochs[0]) == 1 and epochs[0] == epochs[1]


@pytest.mark.slow
def test_only_the_chief_writes_the_run_and_the_export(two_workers):
    root, _, results = two_workers
    assert [code for code, _ in results] == [0, 0]
    runs = list((root / "w0" / "runs" / "mnist-cnn").iterdir())
    assert len(runs) == 1
    for name in ("config.json", "env.json", "metrics.json", "history.csv"):
        assert (runs[0] / name).is_file(), name
    assert list((runs[0] / "tb").rglob("events.out.tfevents.*"))
    export = root / "w0" / "saved_models" / "mnist-cnn" / runs[0].name
    assert (export / "saved_model.pb").is_file()
    # The other worker wrote nothing where it was told to, and removed its scratch folder.
    assert _files(root / "w1") == []
    scratch = re.findall(r"outputs go to (\S+), deleted at the end", results[1][1])
    assert scratch and not Path(scratch[0]).exists()
    assert "outputs go to" not in results[0][1]


@pytest.mark.slow
def test_metrics_finite_and_the_cluster_recorded(two_workers):
    root, cluster, _ = two_workers
    (run,) = (root / "w0" / "runs" / "mnist-cnn").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_accuracy"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 < metrics["test_accuracy"] <= 1.0
    strategy = json.loads((run / "env.json").read_text())["strategy"]
    assert strategy["name"] == "multiworker"
    assert strategy["replicas"] == 2
    assert strategy["cluster"] == cluster
    assert strategy["task"] == {"type": "worker", "index": 0}
    assert strategy["chief"] is True


@pytest.mark.parametrize(("tf_config", "quoted"), [
    (None, "TF_CONFIG environment variable"),
    ("{not json", "{not json"),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}', "'worker' list"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "['ps']"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "task {'type': 'worker', 'index': 2} does not name"),
    ('{"cluster": {"worker": ["a:1"]}}', "task None does not name"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": ["worker"], "index": true}}',
     "does not name one of its cluster's addresses (1 worker)"),
])
def test_bad_tf_config_is_one_clear_error(monkeypatch, tf_config, quoted):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError) as error:
        multiworker.cluster_config()
    assert quoted in str(error.value)


@pytest.mark.parametrize(("cluster", "task", "chief"), [
    ({"worker": ["a:1", "b:2"]}, ("worker", 0), True),
    ({"worker": ["a:1", "b:2"]}, ("worker", 1), False),
    ({"chief": ["c:0"], "worker": ["a:1"]}, ("chief", 0), True),
    ({"chief": ["c:0"], "worker": ["a:1"]}, ("worker", 0), False),
])
def test_the_chief_is_chief_or_worker_zero(monkeypatch, cluster, task, chief):
    monkeypatch.setenv("TF_CONFIG", _tf_config(cluster, *task))
    assert multiworker.is_chief() is chief
    assert multiworker.describe() == {"cluster": cluster,
                                      "task": {"type": task[0], "index": task[1]}, "chief": chief}


def test_resume_of_a_multiworker_run_is_refused(tmp_path):
    """A multi-worker run cannot resume (the workers' backups are not shared): one line, exit
    2, the interrupted run folder untouched (no FAILED.txt rewritten)."""
    workdir = tmp_path / "runs" / "mnist-cnn" / "r1"
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps({"strategy": "multiworker", "data": "sample"}))
    (workdir / "env.json").write_text(json.dumps({"lab": "mnist-cnn"}))
    before = {path: path.read_bytes() for path in _files(workdir)}
    result = run_cli("run", "mnist-cnn", "--resume", str(workdir), timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--resume is not supported for runs trained with --strategy multiworker" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert {path: path.read_bytes() for path in _files(workdir)} == before


@pytest.mark.parametrize(("args", "message"), [
    (("run", "all", "--strategy", "multiworker"), "--strategy multiworker runs one lab at a time"),
    (("sweep", "mnist-cnn", "--set", "strategy=multiworker", "--grid", "seed=0,1"),
     "a sweep does not run under strategy=multiworker"),
    (("run", "mnist-cnn", "--strategy", "multiworker"), "TF_CONFIG='{\"cluster\": {}}' needs"),
])
def test_what_multiworker_cannot_do_is_one_line(tmp_path, args, message):
    """Refused before anything is written: no run folder, one line, exit 2."""
    result = run_cli(*args, "--data", "sample", "--out", str(tmp_path / "runs"),
                     env={"TF_CONFIG": '{"cluster": {}}'}, timeout=120)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()
