"""Where training runs: TensorFlow's CPU thread pools, logical CPUs and `tf.distribute`
strategies, and what a strategy allows of Keras's loop."""

from __future__ import annotations

import functools
import os

import tensorflow as tf

from keras_labs import ConfigError, compat, multiworker
from keras_labs.data.loading import untuned

# Below this many examples a step, one thread per op pool is fastest on the CPU: the ops are
# too small to share, and a second thread costs more than it gives. Measured ends
# (results/benchmarks/cifar-chunked-vs-pytorch.json, the report-004 network on 2 cores): at
# batch 4, 4,923 images/s on one thread against 2,915 on two; at batch 128, 9,049 against
# 12,370. Between the two the crossing was not measured.
SMALL_BATCH = 16


def choose_threads(requested: int, batch_size: int | None, cores: int | None = None
                   ) -> tuple[int, str]:
    """The thread count of each of TensorFlow's CPU op pools, and why.

    Args:
        requested: The config's `threads` (0: choose).
        batch_size: Examples per step, if the lab has one.
        cores: CPU cores this process may use (default: its affinity).

    Returns:
        (threads, the reason in a few words); 0 threads keeps TensorFlow's default, one per core.
    """
    cores = cores or len(_usable_cpus())
    if requested:
        return requested, "set by the config"
    if batch_size is not None and batch_size <= SMALL_BATCH:
        return 1, f"batch {batch_size} <= {SMALL_BATCH}: one thread per pool is fastest"
    return 0, f"batch {batch_size}: one thread per core ({cores})"


def _usable_cpus() -> set[int]:
    return os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(
        range(os.cpu_count() or 1))


def precision_policy(choice: str) -> tuple[str, str]:
    """The Keras dtype policy for the config's `mixed_precision`, and a note when it falls back.

    fp16 needs a GPU; bf16 a GPU or a CPU whose instruction set has bfloat16 arithmetic
    (AVX512-BF16 or AMX on x86; Linux's /proc/cpuinfo says). Elsewhere training stays in
    float32 and the note says why.
    """
    gpu = bool(tf.config.list_physical_devices("GPU"))
    if choice == "off":
        return "float32", ""
    if choice == "fp16":
        if gpu:
            return "mixed_float16", ""
        return "float32", "mixed_precision=fp16 needs a GPU; training in float32 on the CPU"
    if gpu or cpu_has_bfloat16():
        return "mixed_bfloat16", ""
    return "float32", ("mixed_precision=bf16 needs a GPU or a CPU with AVX512-BF16 or AMX; "
                       "training in float32")


def cpu_has_bfloat16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU has bfloat16 arithmetic (its flags name avx512_bf16 or amx_bf16)."""
    try:
        with open(cpuinfo) as handle:
            flags = {word for line in handle if line.startswith("flags") for word in line.split()}
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def use_threads(count: int) -> None:
    """Sizes TensorFlow's intra- and inter-op thread pools to `count` threads each (0: keeps
    TensorFlow's default, one per core).

    TensorFlow sizes them once, when its runtime starts: a process that has run TensorFlow
    already (the test suite, a sweep after its first run) keeps its pools, and says so.
    """
    threading = tf.config.threading
    if not count or (threading.get_intra_op_parallelism_threads(),
                     threading.get_inter_op_parallelism_threads()) == (count, count):
        return
    try:
        threading.set_intra_op_parallelism_threads(count)
        threading.set_inter_op_parallelism_threads(count)
    except RuntimeError:
        print(f"note: threads={count} not applied: TensorFlow's runtime started earlier in this "
              "process and keeps its thread pools", flush=True)


def split_cpu(count: int = 2) -> bool:
    """Splits the physical CPU into `count` logical devices (only before TensorFlow starts).

    Returns:
        True when the CPU now shows at least `count` logical devices.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    except RuntimeError:  # the runtime is initialized already; keep what it has
        pass
    return len(tf.config.list_logical_devices("CPU")) >= count


def _untuned_device_datasets() -> None:
    """Makes the per-device datasets of a mirrored or multi-worker strategy's distributed
    dataset run without tf.data's autotuning, like every dataset of the data layer
    (`data.loading.untuned` says why). TensorFlow builds them itself, so this goes through a
    private function (`compat.untune_device_datasets`); `tests/test_compat.py` fails loudly if
    a release removes it."""
    compat.untune_device_datasets(untuned)


@functools.cache
def _cpu_mirrored_strategy() -> tf.distribute.MirroredStrategy:
    """One MirroredStrategy over the logical CPUs per process.

    Its all-reduces are collective ops whose instance keys come from the strategy object: a
    second MirroredStrategy in the same process (the tour, a sweep, the test suite) would hand
    out the same keys again and meet the first one's all-reduces ("shape mismatch in the
    collective instance"). Reusing the one instance keeps the keys unique.
    """
    split_cpu(2)
    devices = [device.name for device in tf.config.list_logical_devices("CPU")]
    return tf.distribute.MirroredStrategy(devices=devices)


def make_strategy(name: str, *, worker_timeout_s: float | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy named `default`, `mirrored` or `multiworker`.

    `mirrored` uses every GPU, or, on a machine without one, every logical CPU device (two when
    the CPU can still be split), so the data-parallel path runs and is tested on a laptop.
    `multiworker` reads the cluster from `TF_CONFIG` or Slurm's variables, and is the process's
    one such strategy (`multiworker.strategy`: the first call creates it, waiting at most
    `worker_timeout_s` for the other workers; None or 0: no limit).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        _untuned_device_datasets()
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy()
        return _cpu_mirrored_strategy()
    if name == "multiworker":
        _untuned_device_datasets()
        return multiworker.strategy(worker_timeout_s)
    raise ConfigError(f"strategy={name!r} is not valid; valid values: default, mirrored, multiworker")


def steps_per_execution(requested: int, strategy: tf.distribute.Strategy) -> int:
    """`requested`, or 1 under a multi-replica strategy.

    Keras 3.15's multi-step loop (`steps_per_execution` > 1) under MirroredStrategy fails for
    some models at the first step ("You must feed a value for placeholder tensor
    'while/cond/Placeholder'"); one step per call always works, and with several replicas the
    per-call overhead that `steps_per_execution` hides is small next to the step itself.
    """
    if requested > 1 and strategy.num_replicas_in_sync > 1:
        print(f"note: steps_per_execution={requested} -> 1 under "
              f"{strategy.num_replicas_in_sync} replicas", flush=True)
        return 1
    return requested
