"""Training on several machines: `--strategy multiworker`, the cluster read from `TF_CONFIG`.

Every worker runs the same command with its own `TF_CONFIG`. TensorFlow accepts a
`MultiWorkerMirroredStrategy` only before its runtime starts (collective ops are configured at
start-up), so `strategy()` creates it first thing, once per process. Only the chief (task
"chief", or worker 0 when the cluster has no "chief" job) writes the run folder and the export;
the other workers run the very same code (Keras's saves are collective) into a temporary folder
that `output_folders` deletes afterwards, the usual Keras pattern for non-chief workers.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

from keras_labs import ConfigError


def cluster_config() -> dict:
    """The validated `TF_CONFIG`: {"cluster": {job: [address, ...]}, "task": {"type", "index"}}.

    Raises:
        ConfigError: `TF_CONFIG` is missing or does not describe this worker's place in a
            cluster of "chief" and "worker" jobs.
    """
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise ConfigError("strategy='multiworker' needs the cluster in the TF_CONFIG "
                          "environment variable (see the README, 'Training on several machines')")
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


def is_chief(tf_config: dict | None = None) -> bool:
    """Whether this worker writes the outputs: task "chief", or worker 0 without a chief job."""
    tf_config = tf_config or cluster_config()
    task = tf_config["task"]
    if "chief" in tf_config["cluster"]:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


def describe() -> dict:
    """This worker's place for env.json: the cluster's addresses, its task, whether chief."""
    tf_config = cluster_config()
    return {**tf_config, "chief": is_chief(tf_config)}


@functools.cache
def strategy():
    """The process's one `tf.distribute.MultiWorkerMirroredStrategy` (created on first call).

    Call it before anything starts TensorFlow's runtime (listing devices, seeding, loading
    data); later calls return the same strategy.
    """
    tf_config = cluster_config()  # a clear error before TensorFlow reads TF_CONFIG itself
    import tensorflow as tf

    # TensorFlow waits here, with no time limit and deaf to SIGTERM and Ctrl-C, until every
    # worker has started: say so, or a lone worker looks hung.
    task, addresses = tf_config["task"], sum(tf_config["cluster"].values(), [])
    print(f"{task['type']} {task['index']}: waiting for every worker of the cluster "
          f"({', '.join(addresses)}) to start", flush=True)

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

    return KerasMultiWorkerStrategy()


def started() -> bool:
    """Whether this process trains as one worker of a cluster (`strategy()` was called)."""
    return strategy.cache_info().currsize > 0


def check_resume(config) -> None:
    """Refuses to resume a multi-worker run: each worker's backup lives on its own machine (the
    non-chief ones in a deleted temporary folder), so the workers cannot restart together."""
    if config.strategy == "multiworker":
        raise ConfigError("--resume is not supported for runs trained with --strategy "
                          "multiworker; start a new run")


@contextlib.contextmanager
def output_folders(out: str | os.PathLike, config):
    """Where this process writes its run folder and export.

    Without `multiworker`, and on the chief, that is `out` and `config` as given. On another
    worker it is a temporary folder (runs and exports), deleted on exit, so that worker writes
    nothing where the chief does. With `multiworker`, the strategy is created on entry, before
    anything else starts TensorFlow's runtime.

    Yields:
        (the root of run folders, the config with the export root to use).
    """
    if config.strategy != "multiworker":
        yield out, config
        return
    strategy()
    if is_chief():
        yield out, config
        return
    scratch = Path(tempfile.mkdtemp(prefix="keras-labs-worker-"))
    task = cluster_config()["task"]
    print(f"{task['type']} {task['index']}: not the chief; this worker's outputs go to "
          f"{scratch}, deleted at the end", flush=True)
    try:
        yield scratch / "runs", dataclasses.replace(config, export_dir=str(scratch / "exports"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
