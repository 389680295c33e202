"""`--strategy multiworker` for real: two `keras-labs run` worker processes on localhost, each
with its own `TF_CONFIG` (or Slurm's variables), train one model together; only the chief
writes outputs. A worker killed with SIGKILL mid-run makes the other stop with one line, and
the same command, run again on both, ends where an uninterrupted run ends. A worker whose peer
never starts, or that is sent SIGTERM while it waits, stops with one line too.

Each worker gets an output folder of its own (`root/w<index>`), as on hosts with disks of
their own. Also here: the cluster parsing (`TF_CONFIG`, Slurm), which run a restart
continues, the backups' agreement on an epoch, and the refusals that keep a multi-worker
mistake from hanging.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest
from conftest import ROOT, run_cli, tiny

from keras_labs import ConfigError, labs, multiworker, training
from keras_labs.labs.mnist_cnn.config import Config as MnistCnnConfig

WORKER_TIMEOUT_S = 600


def _tiny(epochs: int = 3) -> tuple[str, ...]:
    """`keras-labs run` arguments of mnist-cnn's tiny configuration, deterministic."""
    return ("mnist-cnn", "--preset", "quick", "--data", "sample", "--epochs", str(epochs),
            "--deterministic", "--set", "train_examples=256", "--set", "batch_size=64",
            "--set", "filters=8,16", "--set", "dense_units=16")


TINY = _tiny()
# What the resumed run must reproduce exactly (its training times aside).
SAME = ("test_accuracy", "test_loss", "train_accuracy", "validation_accuracy",
        "validation_loss", "confusion_matrix", "per_class_accuracy")
EPOCH_LOG = re.compile(r"accuracy: \S+ - loss: \S+ - val_accuracy: \S+ - val_loss: \S+")


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


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are both free (Slurm hands out consecutive ports)."""
    for _ in range(100):
        (base,) = _free_ports(1)
        try:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", base + 1))
            return base
        except OSError:
            continue
    raise RuntimeError("no two consecutive free ports")


def _tf_config(cluster: dict, task_type: str, index: int) -> str:
    return json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})


def _worker_env(cluster: dict, index: int) -> dict:
    return {"TF_CONFIG": _tf_config(cluster, "worker", index)}


class Workers:
    """`keras-labs run ARGS --strategy multiworker` once per worker, worker i writing under
    root/w<i>, its output appended to root/w<i>.log; `envs[i]` adds to (None: removes from)
    its environment."""

    def __init__(self, root: Path, envs: list[dict], *args: str):
        self.root, self.processes = root, []
        for index, env in enumerate(envs):
            out = root / f"w{index}"
            with open(root / f"w{index}.log", "a") as log:
                self.processes.append(subprocess.Popen(
                    [sys.executable, "-m", "keras_labs", "run", *args, "--strategy",
                     "multiworker", "--out", str(out / "runs"),
                     "--export-dir", str(out / "saved_models")],
                    stdout=log, stderr=subprocess.STDOUT, cwd=ROOT,
                    env={key: value for key, value in
                         {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env}.items()
                         if value is not None}))

    def wait(self) -> list[tuple[int, str]]:
        """[(exit code, output)] per worker; all are killed when they outlast WORKER_TIMEOUT_S,
        so a stuck collective fails the test instead of hanging it."""
        deadline = time.monotonic() + WORKER_TIMEOUT_S
        try:
            for process in self.processes:
                process.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            for process in self.processes:
                process.kill()
            for process in self.processes:
                process.wait()
        return [(process.returncode, (self.root / f"w{index}.log").read_text())
                for index, process in enumerate(self.processes)]


def _run_workers(root: Path, envs: list[dict], *args: str) -> list[tuple[int, str]]:
    return Workers(root, envs, *args).wait()


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def _run_folder(root: Path) -> Path:
    (run,) = (root / "w0" / "runs" / "mnist-cnn").iterdir()
    return run


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """Two workers of a tiny, uninterrupted mnist-cnn run on localhost: (root, cluster,
    [(code, output)])."""
    root = tmp_path_factory.mktemp("multiworker")
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    results = _run_workers(root, [_worker_env(cluster, index) for index in (0, 1)], *TINY)
    return root, cluster, results


@pytest.mark.slow
def test_two_workers_train_one_model_together(two_workers):
    _, _, results = two_workers
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited {code}:\n{output[-3000:]}"
    # Keras reduces the epoch's logs over every replica of the cluster: the same figures on
    # both workers (each saw only its half of every batch) mean they trained as one.
    epochs = [EPOCH_LOG.findall(output) for _, output in results]
    assert len(epochs[0]) == 3 and epochs[0] == epochs[1]


@pytest.mark.slow
def test_only_the_chief_writes_the_run_and_the_export(two_workers):
    root, _, results = two_workers
    assert [code for code, _ in results] == [0, 0]
    run = _run_folder(root)
    for name in ("config.json", "env.json", "metrics.json", "history.csv"):
        assert (run / name).is_file(), name
    assert not (run / "backup").exists()
    assert list((run / "tb").rglob("events.out.tfevents.*"))
    export = root / "w0" / "saved_models" / "mnist-cnn" / "1"
    assert (export / "saved_model.pb").is_file()
    assert json.loads((export / "keras_labs_run.json").read_text())["run_id"] == run.name
    # The other worker worked in its scratch folder under its output folder, and removed it.
    scratch = re.findall(r"outputs go to (\S+), kept until the run finishes", results[1][1])
    assert scratch and Path(scratch[0]).is_relative_to(root / "w1" / "runs" / ".workers" / "worker-1")
    assert not Path(scratch[0]).exists()
    assert _files(root / "w1") == []
    assert "outputs go to" not in results[0][1]


@pytest.mark.slow
def test_metrics_finite_and_the_cluster_recorded(two_workers):
    root, cluster, _ = two_workers
    run = _run_folder(root)
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "train_accuracy"):
        assert math.isfinite(metrics[key]), key
    assert 0.0 < metrics["test_accuracy"] <= 1.0
    strategy = json.loads((run / "env.json").read_text())["strategy"]
    assert strategy["name"] == "multiworker"
    assert strategy["replicas"] == 2
    assert strategy["cluster"] == cluster
    assert strategy["task"] == {"type": "worker", "index": 0}
    assert strategy["chief"] is True and strategy["source"] == "TF_CONFIG"


def _wait_for_backup(root: Path, process: subprocess.Popen) -> int:
    """Polls worker 1's scratch folder until its backup holds a finished epoch; returns it."""
    pattern = ".workers/worker-1/runs/mnist-cnn/*/backup/model/state/metadata.json"
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        for path in (root / "w1" / "runs").glob(pattern):
            try:
                return json.loads(path.read_text())["epoch"]
            except (OSError, ValueError):
                pass  # replaced while read: the next poll sees the new one
        time.sleep(0.05)
    raise AssertionError(f"worker 1 saved no backup (exit code {process.poll()})")


@pytest.mark.slow
def test_a_killed_worker_stops_the_cluster_and_the_same_command_resumes(two_workers,
                                                                          tmp_path):
    """SIGKILL to worker 1 after its first backup: worker 0 stops with one line (exit 1,
    FAILED.txt); the same command on both continues the run from the last epoch both backed
    up, and ends with the metrics of the uninterrupted run, exactly (`--deterministic`)."""
    whole_root, _, whole_results = two_workers
    assert [code for code, _ in whole_results] == [0, 0]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    envs = [_worker_env(cluster, index) for index in (0, 1)]
    workers = Workers(tmp_path, envs, *TINY)
    assert _wait_for_backup(tmp_path, workers.processes[1]) >= 1
    assert workers.processes[1].poll() is None, "worker 1 finished before it could be killed"
    workers.processes[1].send_signal(signal.SIGKILL)
    (code, output), (killed, _) = workers.wait()
    assert killed == -signal.SIGKILL
    assert code == 1, output[-3000:]
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("keras-labs")]
    assert len(errors) == 1 and "worker 0 (" in errors[0] and "lost the cluster" in errors[0]
    assert "restart every worker with the same command" in errors[0]
    run = _run_folder(tmp_path)
    assert (run / "FAILED.txt").read_text().startswith("ClusterError: worker 0 (")
    assert list((tmp_path / "w1" / "runs" / ".workers").rglob("metadata.json"))  # kept

    restarted = Workers(tmp_path, envs, *TINY).wait()
    for index, (code, output) in enumerate(restarted):
        assert code == 0, f"restarted worker {index} exited {code}:\n{output[-3000:]}"
        assert re.search(r"resumed model after epoch [12]\n", output.split("resuming")[-1])
    assert _run_folder(tmp_path) == run  # the chief continued its run folder
    expected = json.loads((_run_folder(whole_root) / "metrics.json").read_text())
    resumed = json.loads((run / "metrics.json").read_text())
    assert {key: resumed[key] for key in SAME} == {key: expected[key] for key in SAME}
    with open(run / "history.csv") as history:
        assert [line.split(",")[0] for line in history.read().splitlines()[1:]] == ["0", "1", "2"]
    env = json.loads((run / "env.json").read_text())
    assert "lost the cluster" in env["resumed"][0]["previous_failure"]
    assert not (run / "FAILED.txt").exists() and not (run / "backup").exists()
    assert _files(tmp_path / "w1") == []


def test_a_worker_whose_peer_never_starts_stops_after_worker_timeout_s(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    started = time.monotonic()
    ((code, output),) = _run_workers(tmp_path, [_worker_env(cluster, 0)], *TINY,
                                     "--set", "worker_timeout_s=2")
    assert code == 1, output[-3000:]
    assert time.monotonic() - started < WORKER_TIMEOUT_S
    errors = [line for line in output.splitlines() if line.startswith("keras-labs")]
    assert errors == [f"keras-labs: error: worker 0 ({cluster['worker'][0]}): worker 1 "
                      f"({cluster['worker'][1]}) did not start within worker_timeout_s=2 s; "
                      "start every worker of the cluster (the same command on each), or raise "
                      "worker_timeout_s (0: no limit)"]
    failed = (_run_folder(tmp_path) / "FAILED.txt").read_text()
    assert failed == "ClusterError: " + errors[0].removeprefix("keras-labs: error: ") + "\n"


def test_sigterm_stops_the_wait_for_the_cluster(tmp_path):
    """TensorFlow's own wait for the other workers ignores SIGTERM; this one stops: exit 143,
    one line, FAILED.txt, and the advice to restart every worker (not `--resume`)."""
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    workers = Workers(tmp_path, [_worker_env(cluster, 0)], *TINY, "--set", "worker_timeout_s=0")
    log = tmp_path / "w0.log"
    deadline = time.monotonic() + WORKER_TIMEOUT_S
    while "with no time limit (worker_timeout_s)" not in log.read_text():
        assert workers.processes[0].poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    workers.processes[0].send_signal(signal.SIGTERM)
    ((code, output),) = workers.wait()
    assert code == 143, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("keras-labs")]
    assert errors == ["keras-labs: terminated (SIGTERM); to continue, restart every worker with "
                      "the same command: the run continues after the last epoch that every "
                      "worker backed up"]
    assert "SIGTERM" in (_run_folder(tmp_path) / "FAILED.txt").read_text()


@pytest.mark.slow
def test_adversarial_runs_under_multiworker_from_slurm_variables(tmp_path):
    """Two tasks of a Slurm job step on one node (`srun --ntasks=2 --resv-ports`), no
    TF_CONFIG: each worker builds the cluster with SlurmClusterResolver. The adversarial lab's
    classifier trains over both workers; the attacks run on each worker alone."""
    base = _free_port_pair()
    slurm = {"TF_CONFIG": None, "SLURM_JOB_ID": "4242", "SLURM_STEP_NUM_TASKS": "2",
             "SLURM_STEP_NODELIST": "localhost", "SLURM_STEP_TASKS_PER_NODE": "2",
             "SLURM_STEP_RESV_PORTS": f"{base}-{base + 1}", "CUDA_VISIBLE_DEVICES": ""}
    results = _run_workers(
        tmp_path, [{**slurm, "SLURM_PROCID": str(index)} for index in (0, 1)], "adversarial",
        "--preset", "quick", "--data", "sample", "--set", "classifier_epochs=1", "--set",
        "classifier_examples=512", "--set", "attack_examples=8", "--set", "pgd_steps=3",
        "--set", "unconstrained_steps=5", "--set", "budget_steps=5", "--set",
        "universal_steps=3", "--set", "universal_train_images=64", "--set", "noise_examples=2",
        "--set", "bisection_steps=0")
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited {code}:\n{output[-3000:]}"
    (run,) = (tmp_path / "w0" / "runs" / "adversarial").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["success_rate"]) == {"pgd_linf", "pgd_l2", "unconstrained"}
    strategy = json.loads((run / "env.json").read_text())["strategy"]
    assert strategy["source"] == "Slurm" and strategy["replicas"] == 2
    assert strategy["cluster"] == {"worker": [f"localhost:{base}", f"localhost:{base + 1}"]}
    assert _files(tmp_path / "w1") == []


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
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_PROCID", raising=False)
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    for check in (multiworker.check_cluster, multiworker.cluster_config):
        with pytest.raises(ConfigError) as error:
            check()
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
    assert multiworker.describe() == {"cluster": cluster, "source": "TF_CONFIG",
                                      "task": {"type": task[0], "index": task[1]}, "chief": chief}


@pytest.fixture
def slurm_step(monkeypatch, tmp_path):
    """Slurm's variables of task 1 of a two-task job step on node07 and node08, no TF_CONFIG,
    no GPU, and a stub `scontrol` on PATH that expands the node list as Slurm does."""
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for name, value in {"SLURM_JOB_ID": "4242", "SLURM_PROCID": "1",
                        "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "node[07-08]",
                        "SLURM_STEP_TASKS_PER_NODE": "1(x2)",
                        "SLURM_STEP_RESV_PORTS": "12000-12001",
                        "CUDA_VISIBLE_DEVICES": ""}.items():
        monkeypatch.setenv(name, value)
    stub = tmp_path / "bin" / "scontrol"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\n# scontrol show hostnames node[07-08]\n"
                    "[ \"$1 $2 $3\" = 'show hostnames node[07-08]' ] && printf 'node07\\nnode08\\n'\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{stub.parent}{os.pathsep}{os.environ['PATH']}")


def test_slurm_variables_make_the_cluster(slurm_step):
    multiworker.check_cluster()
    # The hosts are those Slurm names for the step (TensorFlow 2.21's resolver expands the
    # node list itself; older releases asked `scontrol`, the stub here).
    hosts = subprocess.run(["scontrol", "show", "hostnames", os.environ["SLURM_STEP_NODELIST"]],
                           capture_output=True, text=True, check=True).stdout.split()
    assert multiworker.cluster_config() == {
        "cluster": {"worker": [f"{host}:12000" for host in hosts]},
        "task": {"type": "worker", "index": 1}}
    assert not multiworker.is_chief()
    assert multiworker.describe()["source"] == "Slurm"


def test_slurm_tasks_sharing_a_node_get_consecutive_ports(slurm_step, monkeypatch):
    monkeypatch.setenv("SLURM_STEP_NODELIST", "node07")
    monkeypatch.setenv("SLURM_STEP_TASKS_PER_NODE", "2")
    monkeypatch.delenv("SLURM_STEP_RESV_PORTS")  # no reserved ports: TensorFlow's default base
    assert multiworker.cluster_config()["cluster"] == {"worker": ["node07:8888", "node07:8889"]}


def test_a_slurm_job_without_a_job_step_is_one_clear_error(slurm_step, monkeypatch):
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")
    with pytest.raises(ConfigError, match=r"SLURM_JOB_ID=4242\) has no SLURM_STEP_NUM_TASKS: "
                                          r"start every worker as a task of one job step, `srun"):
        multiworker.check_cluster()


def _fake_run(root: Path, name: str, config, task: dict, cluster: dict, *, finished=False):
    folder = root / "mnist-cnn" / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(config.to_json())
    (folder / "env.json").write_text(json.dumps(
        {"strategy": {"name": "multiworker", "cluster": cluster, "task": task}}))
    (folder / "backup" / "model" / "state").mkdir(parents=True)
    (folder / "backup" / "model" / "state" / "metadata.json").write_text('{"epoch": 1}')
    if finished:
        (folder / "metrics.json").write_text("{}")
    return folder


def test_a_restart_continues_the_newest_unfinished_run_of_the_same_config_and_cluster(tmp_path):
    config = MnistCnnConfig(strategy="multiworker", epochs=3)
    worker1 = {"type": "worker", "index": 1}
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": worker1}
    moved = {"worker": ["c:3", "d:4"]}  # the job rescheduled on other hosts: the same shape
    older = _fake_run(tmp_path, "20260101-000000-quick-aaaa", config, worker1, moved)
    assert multiworker.resumable_run(tmp_path, "mnist-cnn", config, tf_config) == older
    newer = _fake_run(tmp_path, "20260102-000000-quick-bbbb", config, worker1, moved)
    assert multiworker.resumable_run(tmp_path, "mnist-cnn", config, tf_config) == newer
    # Not continued: finished, another config, another task, another cluster shape.
    _fake_run(tmp_path, "20260103-000000-quick-cccc", config, worker1, moved, finished=True)
    _fake_run(tmp_path, "20260104-000000-quick-dddd", MnistCnnConfig(strategy="multiworker"),
              worker1, moved)
    _fake_run(tmp_path, "20260105-000000-quick-eeee", config, {"type": "worker", "index": 0},
              moved)
    _fake_run(tmp_path, "20260106-000000-quick-ffff", config, worker1,
              {"worker": ["a:1", "b:2", "e:5"]})
    no_backup = _fake_run(tmp_path, "20260107-000000-quick-gggg", config, worker1, moved)
    for path in sorted((no_backup / "backup").rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()  # stopped before its first backup
    assert multiworker.resumable_run(tmp_path, "mnist-cnn", config, tf_config) == newer
    assert multiworker.resumable_run(tmp_path / "none", "mnist-cnn", config, tf_config) is None


def _tiny_model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


@pytest.fixture
def as_worker(monkeypatch):
    """as_worker(other worker's row): this process plays a cluster worker whose `Backup`
    gathers its row and that one (`multiworker.gather`, a collective op, stood in for)."""

    def play(other_row):
        gathered = []

        def gather(row):
            gathered.append(row)
            return [row, other_row]

        monkeypatch.setattr(multiworker, "started", lambda: True)
        monkeypatch.setattr(multiworker, "gather", gather)
        return gathered

    return play


def _saved_epochs(workdir: Path, epochs: int) -> None:
    """A `Backup` of fit "model" in the run folder `workdir` saves epochs 1 to `epochs`."""
    backup = training.Backup(type("Run", (), {"backup_dir": workdir / "backup"})())
    backup.set_model(_tiny_model())
    for epoch in range(1, epochs + 1):
        backup._current_epoch = epoch
        backup._save_model()


@pytest.mark.parametrize(("other_row", "epoch", "note"), [
    ([2, 3], 3, False),  # both hold epoch 3
    ([-1, 2], 2, True),  # the other was killed while it saved epoch 3
    ([-1, -1], 0, True),  # the other has no backup: every worker starts afresh
    ([3, 4], 3, False),  # the other saved epoch 4, this one was killed while it saved it
    ([5, 6], 0, True),  # nothing shared (cannot happen in one run): start afresh
])
def test_workers_continue_from_the_newest_epoch_all_backed_up(tmp_path, as_worker, capsys,
                                                              other_row, epoch, note):
    gathered = as_worker(other_row)
    _saved_epochs(tmp_path, 3)
    # Every worker keeps its last two states: epochs 2 and 3.
    states = tmp_path / "backup" / "model"
    assert sorted(path.name for path in states.iterdir()) == ["state", "state.previous"]
    backup = training.Backup(type("Run", (), {"backup_dir": tmp_path / "backup"})())
    assert gathered[-1] == [2, 3]
    assert backup.completed_epochs == epoch
    assert ("continuing after epoch" in capsys.readouterr().out) is note
    if epoch:
        metadata = json.loads((backup._state / "metadata.json").read_text())
        assert metadata["epoch"] == epoch


def test_one_worker_without_a_cluster_keeps_one_state(tmp_path):
    _saved_epochs(tmp_path, 3)
    assert [path.name for path in (tmp_path / "backup" / "model").iterdir()] == ["state"]
    assert training.backed_up_epochs(tmp_path) == 3


class _Killed(BaseException):
    """Not an Exception: nothing in a lab may catch it, as nothing catches SIGKILL."""


def test_a_run_resumed_under_a_strategy_reads_the_batches_of_an_uninterrupted_one(
        tmp_path, monkeypatch):
    """Under a `tf.distribute` strategy (`mirrored` here, in this process) Keras's `fit` first
    opens an iterator of its input and drops it; a run killed after its first epoch and resumed
    still ends with the uninterrupted run's metrics, exactly (`Backup._skip_once_training`).

    Without batch normalization: under `mirrored` each replica keeps its own moving statistics
    and the backup holds the first replica's, so with it the resumed run's validation loss
    (scored on every replica) differs in the sixth digit, its training and test figures not.
    """
    config = tiny("mnist-cnn", epochs=3, deterministic=True, strategy="mirrored",
                  batch_norm=False, export_dir=str(tmp_path / "saved_models")).validate()
    expected = labs.run("mnist-cnn", config, str(tmp_path / "whole"))
    original = training.Backup._save_model

    def save_then_die(self):
        original(self)
        raise _Killed("killed after the first backup")

    monkeypatch.setattr(training.Backup, "_save_model", save_then_die)
    with pytest.raises(_Killed):
        labs.run("mnist-cnn", config, str(tmp_path / "killed"))
    monkeypatch.undo()
    resumed = labs.run("mnist-cnn", config, str(tmp_path / "killed"), resume=True)
    assert {key: resumed[key] for key in SAME} == {key: expected[key] for key in SAME}


@pytest.mark.parametrize(("kind", "message", "reason"), [
    # What TensorFlow 2.21 raised on the survivor, in this project's runs on localhost:
    ("UnavailableError", "Graph execution error:\n\nDetected at node adam/CollectiveReduceV2 "
     "defined at ...\nCollective ops is aborted by: recvmsg:Connection reset by peer\n"
     "Additional GRPC error information from remote target /job:worker/replica:0/task:1 while "
     "calling /tensorflow.WorkerService/RecvBuf:",
     "UnavailableError: recvmsg:Connection reset by peer; it names worker 1 (b:2)"),  # killed
    ("UnavailableError", "Graph execution error:\n\nCollective ops is aborted by: Error "
     "reported from /job:worker/task:1: The following tasks are unhealthy (stopped sending "
     "heartbeats):\n/job:worker/replica:0/task:1\nThe tasks have crashed.",
     "UnavailableError: Error reported from /job:worker/task:1: The following tasks are unhealthy"
     " (stopped sending heartbeats):; it names worker 1 (b:2)"),  # frozen (SIGSTOP)
    ("DeadlineExceededError", "Graph execution error:\n\nDetected at node "
     "adam/CollectiveReduceV2 defined at (most recent call last):\n  File \"<frozen runpy>\", "
     "line 198, in _run_module_as_main\n\nCollective has timed out during execution.\n\t "
     "[[{{node adam/CollectiveReduceV2}}]] [Op:__inference_multi_step_on_iterator_2479]",
     "DeadlineExceededError: Collective has timed out during execution."),  # SIGSTOP, timeout 5 s
    ("AbortedError", "Something else entirely", "AbortedError: Something else entirely"),
])
def test_what_a_lost_worker_makes_tensorflow_say_becomes_a_few_words(kind, message, reason):
    import tensorflow as tf

    error = getattr(tf.errors, kind)(None, None, message)
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}
    assert multiworker._lost_reason(error, tf_config) == reason


def test_resume_of_a_multiworker_run_is_refused(tmp_path):
    """A multi-worker run continues with the same command, not `--resume`: one line, exit 2,
    the interrupted run folder untouched (no FAILED.txt rewritten)."""
    workdir = tmp_path / "runs" / "mnist-cnn" / "r1"
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps({"strategy": "multiworker", "data": "sample"}))
    (workdir / "env.json").write_text(json.dumps({"lab": "mnist-cnn"}))
    before = {path: path.read_bytes() for path in _files(workdir)}
    result = run_cli("run", "mnist-cnn", "--resume", str(workdir), timeout=120)
    assert result.returncode == 2, result.stderr
    assert ("continues without --resume: run the same `keras-labs run LAB ...` command again on "
            "every worker") in result.stderr
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
