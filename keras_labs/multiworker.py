"""Training on several machines: `--strategy multiworker`, the cluster read from `TF_CONFIG` or,
inside a Slurm job step, from Slurm's variables (`SlurmClusterResolver`).

Every worker runs the same command. TensorFlow accepts a `MultiWorkerMirroredStrategy` only
before its runtime starts (collective ops are configured at start-up), so `strategy()` creates
it first thing, once per process. Only the chief (task "chief", or worker 0 when the cluster has
no "chief" job) writes the run folder and the export; the other workers run the very same code
(Keras's saves are collective) into a scratch folder of their own under the output folder
(`<out>/.workers/<task>-<index>`), kept until the run finishes.

A lost worker is TensorFlow's recovery pattern (MultiWorkerMirroredStrategy with
BackupAndRestore, then restart the job): every worker keeps the backup of its last two epochs
(`training.Backup`), and the same command, run again on every worker, continues the unfinished
run of the same lab, config and cluster shape (`worker_run`) from the last epoch that every
worker backed up. No worker waits for ever: the start waits at most `worker_timeout_s` for the
others (`strategy`), every collective op has that timeout, and TensorFlow's coordination service
notices a dead or frozen worker by its missing heartbeats within seconds; the failure becomes
one line (`cluster_failure`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from keras_labs import ConfigError, KerasLabsError, Terminated, run_folders

WORKERS_FOLDER = ".workers"
RESTART = ("restart every worker with the same command: the run continues after the last epoch "
           "that every worker backed up")
# TensorFlow's names of a task in its errors: /job:worker/replica:0/task:1, /job:worker/task:1.
_TASK_NAME = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")
_SLURM_STEP = ("SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_STEP_NODELIST",
               "SLURM_STEP_TASKS_PER_NODE")
_started: dict = {}  # {"strategy": the process's one MultiWorkerMirroredStrategy}


class ClusterError(KerasLabsError):
    """A worker of the cluster was lost, or never started: one line, exit code 1."""


def check_cluster() -> None:
    """Checks, without loading TensorFlow, that this process knows its cluster: a valid
    `TF_CONFIG`, or Slurm's job-step variables.

    Raises:
        ConfigError: Neither, or a `TF_CONFIG` that does not describe this worker's place.
    """
    if os.environ.get("TF_CONFIG") or not _in_slurm():
        _tf_config()
        return
    missing = [name for name in _SLURM_STEP if not os.environ.get(name)]
    if missing:
        raise ConfigError(f"this Slurm job (SLURM_JOB_ID={os.environ.get('SLURM_JOB_ID')}) has no "
                          f"{', '.join(missing)}: start every worker as a task of one job step, "
                          "`srun keras-labs run ...` (see docs/distributed.md)")


def cluster_config() -> dict:
    """The cluster and this worker's place: {"cluster": {job: [address, ...]}, "task": {"type",
    "index"}}, from `TF_CONFIG` when it is set, else from Slurm's job-step variables.

    Raises:
        ConfigError: `TF_CONFIG` is missing (outside Slurm) or does not describe this worker's
            place in a cluster of "chief" and "worker" jobs, or Slurm's variables do not
            describe a job step.
    """
    if os.environ.get("TF_CONFIG") or not _in_slurm():
        return _tf_config()
    check_cluster()
    resolver = _cluster_resolver()
    return {"cluster": resolver.cluster_spec().as_dict(),
            "task": {"type": resolver.task_type, "index": resolver.task_id}}


def _in_slurm() -> bool:
    return bool(os.environ.get("SLURM_JOB_ID") or os.environ.get("SLURM_PROCID"))


def _tf_config() -> dict:
    """The validated `TF_CONFIG` (see `cluster_config`)."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError("strategy='multiworker' needs the cluster in the TF_CONFIG "
                          "environment variable, or a Slurm job step (see docs/distributed.md)")
    try:
        tf_config = json.loads(text)
    except ValueError:
        raise ConfigError(f"TF_CONFIG={text!r} is not valid JSON") from None
    cluster = tf_config.get("cluster") if isinstance(tf_config, dict) else None
    task = tf_config.get("task") if isinstance(tf_config, dict) else None
    if (not isinstance(cluster, dict) or not cluster.get("worker")
            or not all(isinstance(hosts, list) and hosts and all(isinstance(h, str) for h in hosts)
                       for hosts in cluster.values())):
        raise ConfigError(f"TF_CONFIG={text!r} needs a 'cluster' with a non-empty 'worker' list "
                          "of 'host:port' addresses")
    if set(cluster) - {"chief", "worker"}:
        raise ConfigError(f"TF_CONFIG={text!r} has jobs {sorted(set(cluster) - {'chief', 'worker'})}; "
                          "valid jobs: chief, worker")
    if (not isinstance(task, dict) or not isinstance(task.get("type"), str)
            or task["type"] not in cluster or type(task.get("index")) is not int
            or not 0 <= task["index"] < len(cluster[task["type"]])):
        sizes = ", ".join(f"{len(hosts)} {job}" for job, hosts in cluster.items())
        raise ConfigError(f"TF_CONFIG's task {task!r} does not name one of its cluster's "
                          f"addresses ({sizes}); it needs a 'task' such as "
                          "{\"type\": \"worker\", \"index\": 0}")
    return {"cluster": cluster, "task": {"type": task["type"], "index": task["index"]}}


def _cluster_resolver():
    """TensorFlow's resolver of this cluster: `TFConfigClusterResolver`, or in a Slurm job step
    `SlurmClusterResolver`.

    Slurm: the ports are the step's reserved ones (`srun --resv-ports`, SLURM_STEP_RESV_PORTS)
    when it has them, else TensorFlow's default 8888 and up. TensorFlow's resolver lays the
    tasks of a node out over its GPUs and reports one GPU per task; on nodes without a GPU it
    is given one notional slot per task instead, leaves CUDA_VISIBLE_DEVICES alone and reports
    no GPU, so the workers train on the CPU.
    """
    import tensorflow as tf

    if os.environ.get("TF_CONFIG") or not _in_slurm():
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    gpus = _visible_gpus()

    class SlurmCluster(tf.distribute.cluster_resolver.SlurmClusterResolver):
        def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
            return super().num_accelerators() if gpus else {}

    reserved = os.environ.get("SLURM_STEP_RESV_PORTS", "")
    port_base = int(reserved.split("-")[0]) if reserved[:1].isdigit() else 8888
    tasks = int(os.environ["SLURM_STEP_NUM_TASKS"])
    try:
        if gpus:
            return SlurmCluster(port_base=port_base)
        return SlurmCluster(port_base=port_base, gpus_per_node=tasks, gpus_per_task=1,
                            auto_set_gpu=False)
    except (ValueError, RuntimeError) as error:
        raise ConfigError(f"Slurm's variables do not describe a job step TensorFlow can use: "
                          f"{error}") from None


def _visible_gpus() -> int:
    """GPUs this node offers (CUDA_VISIBLE_DEVICES, else `nvidia-smi --list-gpus`), without
    starting TensorFlow's runtime: 0 on a node with neither."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([device for device in visible.split(",") if device.strip()])
    if not shutil.which("nvidia-smi"):
        return 0
    try:
        listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def is_chief(tf_config: dict | None = None) -> bool:
    """Whether this worker writes the outputs: task "chief", or worker 0 without a chief job."""
    tf_config = tf_config or cluster_config()
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def describe() -> dict:
    """This worker's place for env.json: the cluster's addresses, its task, whether chief, and
    where the cluster came from ("TF_CONFIG" or "Slurm")."""
    tf_config = cluster_config()
    source = "TF_CONFIG" if os.environ.get("TF_CONFIG") or not _in_slurm() else "Slurm"
    return {**tf_config, "chief": is_chief(tf_config), "source": source}


def _name(task: dict, tf_config: dict) -> str:
    """A task as the messages name it: "worker 1 (host-b:23456)"."""
    address = tf_config["cluster"][task["type"]][task["index"]]
    return f"{task['type']} {task['index']} ({address})"


def strategy(timeout_seconds: float | None = None):
    """The process's one `tf.distribute.MultiWorkerMirroredStrategy`, created on the first call
    (later calls return it, whatever their argument).

    Call it before anything starts TensorFlow's runtime (listing devices, seeding, loading
    data). It first waits for every other worker to start (`_wait_for_workers`); TensorFlow's
    own wait for them would have no time limit and ignore SIGTERM and Ctrl-C.

    Args:
        timeout_seconds: How long to wait for the other workers at the start, and the timeout
            of every collective op (`tf.distribute.experimental.CommunicationOptions`); None
            or 0: no limit.

    Raises:
        ClusterError: A worker did not start within `timeout_seconds`, or this worker's port
            is taken.
    """
    if "strategy" in _started:
        return _started["strategy"]
    tf_config = cluster_config()  # a clear error before TensorFlow reads the cluster itself
    resolver = _cluster_resolver()
    import tensorflow as tf

    _wait_for_workers(tf_config, timeout_seconds or 0)

    class KerasMultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """MultiWorkerMirroredStrategy whose `reduce` takes what Keras 3.15's `fit` gives it.

        Keras reduces a whole (x, y) batch at once (the collective strategy takes one value
        only) and every scalar log with `axis=0` (invalid on a scalar); keras-team/keras#20585.
        Here each value is reduced alone, a scalar over the replicas (as Keras does under
        MirroredStrategy).
        """

        def reduce(self, reduce_op, value, axis=None):
            reduce = super().reduce

            def one(item):
                first = item.values[0] if isinstance(item, tf.distribute.DistributedValues) else item
                scalar = getattr(first, "shape", tf.TensorShape(None)).rank == 0
                return reduce(reduce_op, item, None if scalar else axis)

            return tf.nest.map_structure(one, value)

    options = tf.distribute.experimental.CommunicationOptions(
        timeout_seconds=timeout_seconds or None)
    _started["strategy"] = KerasMultiWorkerStrategy(cluster_resolver=resolver,
                                                    communication_options=options)
    return _started["strategy"]


def started() -> bool:
    """Whether this process trains as one worker of a cluster (`strategy()` was called)."""
    return "strategy" in _started


def _wait_for_workers(tf_config: dict, timeout_seconds: float) -> None:
    """Waits until every other worker of the cluster has started: until its address accepts a
    connection.

    Meanwhile this worker listens on its own address, so the others see it too; it hands the
    port over to TensorFlow's server once it has seen every worker. The wait runs in Python,
    so Ctrl-C and SIGTERM stop it; TensorFlow's own wait, which follows, lasts a moment.

    Raises:
        ClusterError: A worker did not start within `timeout_seconds` (0: no limit), or this
            worker's port is taken by another process.
    """
    task = tf_config["task"]
    me = _name(task, tf_config)
    others = {_name({"type": job, "index": index}, tf_config): address
              for job, addresses in tf_config["cluster"].items()
              for index, address in enumerate(addresses)
              if (job, index) != (task["type"], task["index"])}
    limit = f"at most {timeout_seconds:g} s" if timeout_seconds else "with no time limit"
    print(f"{me}: waiting {limit} (worker_timeout_s) for every worker of the cluster to start: "
          f"{', '.join(others) or 'none other'}", flush=True)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds else math.inf
    with _listening(tf_config["cluster"][task["type"]][task["index"]], me):
        while True:
            others = {name: address for name, address in others.items() if not _answers(address)}
            if not others:
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"{me}: {', '.join(others)} did not start within worker_timeout_s="
                    f"{timeout_seconds:g} s; start every worker of the cluster (the same command "
                    "on each), or raise worker_timeout_s (0: no limit)")
            time.sleep(0.2)


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


@contextlib.contextmanager
def _listening(address: str, me: str):
    """A socket listening on the port of `address` (on every interface) for the block."""
    _, port = _split_address(address)
    dual = socket.has_dualstack_ipv6()
    try:
        server = socket.create_server(("", port), family=socket.AF_INET6 if dual else socket.AF_INET,
                                      dualstack_ipv6=dual)
    except OSError as error:
        raise ClusterError(f"{me}: cannot listen on port {port}: {error.strerror}; another "
                           "process holds it (an earlier worker still running?)") from None
    try:
        yield
    finally:
        server.close()  # connections never accepted are reset: the port is free for TensorFlow


def _answers(address: str) -> bool:
    try:
        with socket.create_connection(_split_address(address), timeout=2):
            return True
    except OSError:  # refused, unreachable, or a name not resolvable yet
        return False


def cluster_failure(error: BaseException) -> BaseException | None:
    """`error` as this worker of a started cluster reports it, or None when it is not the
    cluster's: a `ClusterError` with one line for what a lost worker makes TensorFlow raise
    (the peer unreachable, its heartbeats missing, a collective op timed out), and a Ctrl-C or
    SIGTERM whose advice is to restart every worker (not `--resume`)."""
    if isinstance(error, ClusterError):
        return error
    if isinstance(error, KeyboardInterrupt | Terminated):
        error.__notes__ = [f"to continue, {RESTART}"]
        return error
    if not started():
        return None
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError, tf.errors.AbortedError)
    if not isinstance(error, lost):
        return None
    tf_config = cluster_config()
    return ClusterError(f"{_name(tf_config['task'], tf_config)} lost the cluster "
                        f"({_lost_reason(error, tf_config)}); {RESTART}")


def _lost_reason(error: BaseException, tf_config: dict) -> str:
    """What TensorFlow said, in a few words: the workers its message names and why."""
    text = str(error)
    task = (tf_config["task"]["type"], tf_config["task"]["index"])
    names = []
    for job, index in _TASK_NAME.findall(text):
        if (job, int(index)) != task and int(index) < len(tf_config["cluster"].get(job, [])):
            name = _name({"type": job, "index": int(index)}, tf_config)
            if name not in names:
                names.append(name)
    # An op error's message: "Graph execution error:", where the op was defined (a traceback,
    # indented), then what happened, then the node; "Collective ops is aborted by: why".
    aborted = re.search(r"aborted by:\s*(.+)", text)
    said = [line for line in text.splitlines() if line.strip() and not line[0].isspace()
            and not line.startswith(("Graph execution error", "Detected at node"))]
    why = aborted.group(1) if aborted else said[0] if said else "no message"
    why = re.sub(r"\s*(\[\[\{\{.*|\[Op:.*)$", "", why).strip()
    return (f"{type(error).__name__}: {why}"
            + (f"; it names {', '.join(names)}" if names else ""))


def check_resume(config) -> None:
    """Refuses `--resume` of a multi-worker run: the same command, run again on every worker,
    continues it (`worker_run`)."""
    if config.strategy == "multiworker":
        raise ConfigError("a run trained with --strategy multiworker continues without "
                          "--resume: run the same `keras-labs run LAB ...` command again on "
                          "every worker")


def worker_folder(out: str | os.PathLike, task: dict) -> Path:
    """A non-chief worker's scratch folder: `<out>/.workers/<type>-<index>`. It depends on the
    output folder and the task alone, so a restarted worker finds its backups there."""
    return Path(out).expanduser() / WORKERS_FOLDER / f"{task['type']}-{task['index']}"


def resumable_run(runs_root: str | os.PathLike, lab: str, config, tf_config: dict) -> Path | None:
    """The newest unfinished run folder of `lab` under `runs_root` that a cluster of the same
    shape, in this worker's place, started with this very config, and that has a backup to
    continue from; None when there is none.

    Addresses may change between attempts (a job rescheduled on other hosts); the number of
    workers of each job and this worker's task may not. A run that stopped before its first
    backup is not continued (there is nothing to continue): the restart begins a new one.
    """
    wanted_config = json.loads(config.to_json())
    shape = {job: len(addresses) for job, addresses in tf_config["cluster"].items()}
    parent = Path(runs_root).expanduser() / lab
    folders = sorted(parent.iterdir(), reverse=True) if parent.is_dir() else []
    for folder in folders:  # run ids start with their time stamp: newest first
        if ((folder / "metrics.json").exists() or not (folder / "config.json").is_file()
                or not any((folder / "backup").glob("*/state*/metadata.json"))):
            continue
        try:
            stored = json.loads((folder / "config.json").read_text())
            strategy_env = json.loads((folder / "env.json").read_text()).get("strategy", {})
        except (OSError, ValueError):
            continue
        cluster = strategy_env.get("cluster") or {}
        if (stored == wanted_config and strategy_env.get("task") == tf_config["task"]
                and {job: len(addresses) for job, addresses in cluster.items()} == shape):
            return folder
    return None


@contextlib.contextmanager
def worker_run(out: str | os.PathLike, lab: str, preset: str, config):
    """This worker's run folder: the chief's under `out`, another worker's in its scratch
    folder (`worker_folder`), where its exports go too.

    An unfinished run of this lab, config and cluster shape (`resumable_run`) is continued;
    otherwise a new run folder is created. When the block ends well, a non-chief worker deletes
    its run folder and its export (the chief's are the results); after a failure they stay, for
    the restart.

    Yields:
        (the run folder, the config to run, whether the run resumes).
    """
    tf_config = cluster_config()
    chief = is_chief(tf_config)
    runs_root = Path(out)
    if not chief:
        scratch = worker_folder(out, tf_config["task"])
        runs_root = scratch / "runs"
        config = dataclasses.replace(config, export_dir=str(scratch / "exports"))
    workdir = resumable_run(runs_root, lab, config, tf_config)
    resume = workdir is not None
    workdir = workdir or run_folders.new_run_dir(runs_root, lab, preset)
    if not chief:
        print(f"{_name(tf_config['task'], tf_config)}: not the chief; this worker's outputs go "
              f"to {workdir}, kept until the run finishes", flush=True)
    yield workdir, config, resume
    if not chief:
        _remove_worker_outputs(workdir, Path(config.export_dir))


def _remove_worker_outputs(workdir: Path, export_root: Path) -> None:
    """Deletes a finished non-chief run folder and the export it wrote under `export_root`,
    then the folders they leave empty."""
    try:
        export = Path(json.loads((workdir / "metrics.json").read_text()).get("export") or "")
    except (OSError, ValueError):
        export = Path()
    if export != Path() and export.resolve().is_relative_to(export_root.resolve()):
        shutil.rmtree(export, ignore_errors=True)
    shutil.rmtree(workdir, ignore_errors=True)
    scratch = export_root.parent
    for folder in sorted((path for path in scratch.rglob("*") if path.is_dir()), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only empty ones go
    with contextlib.suppress(OSError):
        scratch.rmdir()
        scratch.parent.rmdir()


def gather(row: list[int]) -> list[list[int]]:
    """Every replica's `row` of whole numbers, in replica order: a collective op, so every
    worker must call it at the same point (`training.Backup` agrees on an epoch with it)."""
    import tensorflow as tf

    cluster = strategy()
    values = cluster.experimental_distribute_values_from_function(
        lambda _: tf.constant([row], dtype=tf.int64))
    return cluster.gather(values, axis=0).numpy().tolist()
