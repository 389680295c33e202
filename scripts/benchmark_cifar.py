"""Training throughput of the cifar-cnn presets, and Keras vs plain PyTorch eager.

    python scripts/benchmark_cifar.py [--presets tutorial,best,...] [--images N] [--repeats R]
                                      [--batches 4,128] [--threads 1,2] [--rounds R]
                                      [--no-torch] [--json PATH] [--runs RUN_DIR ...]

For each preset: images/s while training its own model at its own batch size, with its own
input pipeline (the lab's: cached tf.data, augmentation where the preset has it) and
`steps_per_execution`; the time per epoch of the 8,152-image partial CIFAR-10 at that
rate; and peak memory (`ru_maxrss` of a fresh process per measurement).

Then the report-004 comparison: the tutorial network with SGD (lr 0.001, momentum 0.9) at
batch 4 and batch 128, as
  * keras-naive:  `model.fit` on NumPy arrays, one step per call (what a first port does);
  * keras-lab:    what the `tutorial` preset runs: a cached `tf.data` pipeline as one endless
                  stream and `steps_per_execution` (50 at batch 4, 8 at batch 128), each
                  execution reading its batches as one element (`chunked.ChunkedExecution`);
  * keras-lab-stock (opt-in, --variants): the same with Keras's own multi-step loop (one
                  iterator read and one `tf.cond` per step), what the lab ran before;
  * torch-report: the report's PyTorch loop (DataLoader over in-memory tensors, shuffled,
                  `running_loss += loss.item()`), eager mode;
  * torch-tight:  the same model stepping over pre-shuffled tensor slices, no DataLoader;
  * keras-lab-autotuned (opt-in, --variants): keras-lab with tf.data's autotuning turned back
                  on for its pipeline (the data layer turns it off: `loading.untuned`);
  * keras-lab-xla (opt-in, --variants): keras-lab compiled with XLA (jit_compile=True);
  * tf-floor (opt-in, --variants): the least a TensorFlow epoch of this network can cost: the
                  lab's model, loss and optimizer, every op of the training step, the whole
                  epoch in one graph call (a `tf.range` loop), the images in memory and each
                  batch gathered by a shuffled index; no tf.data, no metrics, no fit loop.
                  Keras's set-up cannot go faster than this on the same TensorFlow build;
                  tf-floor-xla is the same loop compiled with XLA;
each with 1 and 2 threads (TensorFlow: TF_NUM_INTRAOP_THREADS/TF_NUM_INTEROP_THREADS=1, or its
defaults; PyTorch: torch.set_num_threads), in interleaved rounds so that a burst of someone
else's load hits every variant alike. The Keras side also computes the accuracy metric, the
PyTorch side only the loss.

Figures: images/s (wall clock) and images per CPU-second of the process, each the best of
`--repeats` epochs after a warm-up epoch (tracing, caching) and the best over rounds; each
row's ratios are to the PyTorch loop at its best thread count. On a shared machine the wall-clock figures
move with other people's load (an OpenMP pool of 2 threads on a busy 2-core machine collapses,
for instance); images per CPU-second move much less. `--runs` adds the training time to reach
50/60/70% test accuracy from finished run folders (their history.csv).

Prints a JSON document and Markdown tables.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

from keras_labs.results.reproduce import steal_seconds

FULL_TRAIN_IMAGES = 8152  # the partial CIFAR-10 in ../shared/data
TORCH_BATCHES = (4, 128)
LAB_STEPS_PER_EXECUTION = {4: 50, 128: 8}  # the tutorial preset runs 50 (its running loss every 2,000)


def _peak_memory_mib() -> float:
    # Linux reports ru_maxrss in KiB
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --------------------------------------------------------------------------------------------
# Workers: each measurement runs in a fresh process, so peak memory is its own.


class _EpochClock:
    def __init__(self):
        self.times = []
        self.cpu_times = []

    def rates(self, count: int) -> dict:
        """Best wall-clock and best per-CPU-second rates over the epochs after the first."""
        return {"images_per_s": round(count / min(self.times[1:]), 1),
                "images_per_cpu_s": round(count / min(self.cpu_times[1:]), 1)}

    def callback(self):
        import keras

        clock = self

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()
                self.cpu = time.process_time()

            def on_epoch_end(self, epoch, logs=None):
                clock.times.append(time.perf_counter() - self.start)
                clock.cpu_times.append(time.process_time() - self.cpu)

        return Clock()


def _train_pipeline(config):
    """The cifar-cnn lab's training pipeline for `config` (batched, cached, augmented where the
    config says, the last partial batch dropped) and its `DataSource`."""
    from keras_labs.data import loading

    splits, source = loading.load("cifar10", ("train",), data=config.data,
                                  data_dir=config.data_dir)
    split = splits["train"].take(config.train_examples) if config.train_examples else splits["train"]
    train = loading.image_pipeline(split, batch_size=config.batch_size, training=True,
                                   seed=config.seed, normalize=config.normalize,
                                   augment=config.augment, drop_remainder=True)
    return train, source


def _compiled_model(config, total_steps: int, steps_per_execution: int, *, chunked: bool = True,
                    **compile_options):
    """The network, optimizer and loss of `config`, compiled as the lab compiles them (a
    `ChunkedExecution` unless `chunked` is False: Keras's own loop)."""
    import keras

    from keras_labs import optimization
    from keras_labs.labs.cifar_cnn import experiment
    from keras_labs.labs.cifar_cnn.chunked import ChunkedExecution
    from keras_labs.models import cnn

    spec = config.net_spec()
    model = cnn.cifar_cnn(spec)
    if chunked:
        model = ChunkedExecution(model.input, model.output, name=model.name)
    model.compile(optimizer=experiment.make_optimizer(config, total_steps),
                  loss=optimization.logits_crossentropy(spec.num_classes, config.label_smoothing),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  steps_per_execution=steps_per_execution, **compile_options)
    return model


def _fit_as_the_lab(model, train, epochs: int, clock) -> int:
    """`fit` over one epoch of batches `train` as `training.fit` feeds it (`Backup.stream`): one
    endless stream, in elements of an execution's batches for a `ChunkedExecution`. Returns
    the images an epoch reads (Keras runs whole executions)."""
    import math

    from keras_labs.training import as_elements

    steps = int(train.cardinality())
    per_execution = max(int(model.steps_per_execution or 1), 1)
    stream = as_elements(train.repeat(), model)
    model.fit(stream, steps_per_epoch=steps, epochs=epochs, verbose=0, shuffle=False,
              callbacks=[clock.callback()])
    batch_size = int(train.element_spec[0].shape[0])
    return math.ceil(steps / per_execution) * per_execution * batch_size


def _measure_preset(preset: str, images: int, repeats: int, overrides: dict) -> dict:
    import dataclasses

    from keras_labs import training
    from keras_labs.labs.cifar_cnn.config import PRESETS

    config = dataclasses.replace(PRESETS[preset], train_examples=images, **overrides)
    training.setup(config)
    train, source = _train_pipeline(config)
    steps = int(train.cardinality())
    model = _compiled_model(config, steps * (repeats + 1), config.steps_per_execution,
                            jit_compile=config.jit_compile)
    clock = _EpochClock()
    rates = clock.rates(_fit_as_the_lab(model, train, repeats + 1, clock))
    return {"preset": preset, "architecture": config.architecture, "batch_size": config.batch_size,
            "steps_per_execution": config.steps_per_execution, "augment": config.augment,
            "parameters": int(model.count_params()), **rates,
            "epoch_s_8152": round(FULL_TRAIN_IMAGES / rates["images_per_s"], 2),
            "measured_epochs_s": [round(t, 3) for t in clock.times],
            "peak_memory_mib": _peak_memory_mib(), "data": source.kind}


def _tutorial_arrays(images: int):
    """The first `images` training images in [-1, 1] (report 004's Normalize(0.5, 0.5))."""
    import numpy as np

    from keras_labs.data import loading

    splits, _ = loading.load("cifar10", ("train",))
    x, y = loading.to_numpy(splits["train"].take(images))
    return (x.astype(np.float32) / 127.5 - 1.0), y.astype(np.int64)


def _measure_keras(variant: str, batch_size: int, images: int, repeats: int,
                   threads: int) -> dict:
    import dataclasses

    from keras_labs import training
    from keras_labs.labs.cifar_cnn.config import PRESETS

    lab_pipeline = variant.startswith("keras-lab")
    spe = LAB_STEPS_PER_EXECUTION.get(batch_size, 8) if lab_pipeline else 1
    config = dataclasses.replace(PRESETS["tutorial"], batch_size=batch_size,
                                 train_examples=images, steps_per_execution=spe)
    training.setup(config)
    model = _compiled_model(config, 1, spe, chunked=variant != "keras-lab-stock",
                            jit_compile=variant == "keras-lab-xla")
    clock = _EpochClock()
    if variant == "keras-naive":
        x, y = _tutorial_arrays(images)
        model.fit(x, y, batch_size=batch_size, epochs=repeats + 1, verbose=0, shuffle=True,
                  callbacks=[clock.callback()])
        count = len(y)
    else:
        train, _ = _train_pipeline(config)
        if variant == "keras-lab-autotuned":
            import tensorflow as tf

            tuned = tf.data.Options()
            tuned.autotune.enabled = True
            train = train.with_options(tuned)
        count = _fit_as_the_lab(model, train, repeats + 1, clock)
    rates = clock.rates(count)
    return {"variant": variant, "batch_size": batch_size, "steps_per_execution": spe,
            "threads": threads, **rates,
            "epoch_s_8152": round(FULL_TRAIN_IMAGES / rates["images_per_s"], 2),
            "measured_epochs_s": [round(t, 3) for t in clock.times],
            "peak_memory_mib": _peak_memory_mib()}


def _measure_tf_floor(variant: str, batch_size: int, images: int, repeats: int,
                      threads: int) -> dict:
    import dataclasses

    import tensorflow as tf

    from keras_labs import training
    from keras_labs.labs.cifar_cnn.config import PRESETS

    config = dataclasses.replace(PRESETS["tutorial"], batch_size=batch_size)
    training.setup(config)
    model = _compiled_model(config, 1, 1)
    optimizer, loss_fn, weights = model.optimizer, model.loss, model.trainable_variables
    optimizer.build(weights)
    x, y = _tutorial_arrays(images)
    x, y = tf.constant(x), tf.constant(y)
    steps = len(y) // batch_size

    @tf.function(jit_compile=variant == "tf-floor-xla")
    def epoch():
        order = tf.reshape(tf.random.shuffle(tf.range(steps * batch_size)), (steps, batch_size))
        total = tf.constant(0.0)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                logits = model(tf.gather(x, order[step]), training=True)
                loss = loss_fn(tf.gather(y, order[step]), logits)
            optimizer.apply(tape.gradient(loss, weights), weights)
            total += loss
        return total

    clock = _EpochClock()
    for _ in range(repeats + 1):
        start, cpu = time.perf_counter(), time.process_time()
        float(epoch())  # the loss comes back to Python once per epoch, which ends the clock
        clock.times.append(time.perf_counter() - start)
        clock.cpu_times.append(time.process_time() - cpu)
    rates = clock.rates(steps * batch_size)
    return {"variant": variant, "batch_size": batch_size, "threads": threads, **rates,
            "epoch_s_8152": round(FULL_TRAIN_IMAGES / rates["images_per_s"], 2),
            "measured_epochs_s": [round(t, 3) for t in clock.times],
            "peak_memory_mib": _peak_memory_mib()}


def _measure_torch(variant: str, batch_size: int, images: int, repeats: int,
                   threads: int) -> dict:
    import torch
    from torch import nn
    from torch.nn import functional

    class Net(nn.Module):  # report 004 (the PyTorch CIFAR-10 tutorial)
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 6, 5)
            self.pool = nn.MaxPool2d(2, 2)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, 10)

        def forward(self, x):
            x = self.pool(functional.relu(self.conv1(x)))
            x = self.pool(functional.relu(self.conv2(x)))
            x = torch.flatten(x, 1)
            x = functional.relu(self.fc1(x))
            x = functional.relu(self.fc2(x))
            return self.fc3(x)

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    x, y = _tutorial_arrays(images)
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # NCHW, as torchvision gives
    labels = torch.from_numpy(y)
    count = len(labels) // batch_size * batch_size
    net = Net()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(inputs, labels),
                                         batch_size=batch_size, shuffle=True, drop_last=True)
    times, cpu_times = [], []
    for _ in range(repeats + 1):
        start, cpu = time.perf_counter(), time.process_time()
        running_loss = 0.0
        if variant == "torch-report":
            batches = loader
        else:
            order = torch.randperm(len(labels))[:count]
            batches = ((inputs[index], labels[index]) for index in order.split(batch_size))
        for batch_inputs, batch_labels in batches:
            optimizer.zero_grad()
            loss = criterion(net(batch_inputs), batch_labels)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    rate = count / min(times[1:])
    return {"variant": variant, "batch_size": batch_size, "threads": torch.get_num_threads(),
            "images_per_s": round(rate, 1), "images_per_cpu_s": round(count / min(cpu_times[1:]), 1),
            "epoch_s_8152": round(FULL_TRAIN_IMAGES / rate, 2),
            "measured_epochs_s": [round(t, 3) for t in times],
            "peak_memory_mib": _peak_memory_mib(), "torch": torch.__version__}


def _worker(spec: dict) -> dict:
    kind = spec["kind"]
    if kind == "preset":
        return _measure_preset(spec["preset"], spec["images"], spec["repeats"],
                               spec.get("overrides", {}))
    if kind == "keras" and spec["variant"].startswith("tf-floor"):
        return _measure_tf_floor(spec["variant"], spec["batch_size"], spec["images"],
                                 spec["repeats"], spec["threads"])
    if kind == "keras":
        return _measure_keras(spec["variant"], spec["batch_size"], spec["images"], spec["repeats"],
                              spec["threads"])
    return _measure_torch(spec["variant"], spec["batch_size"], spec["images"], spec["repeats"],
                          spec["threads"])


def _spawn(spec: dict, timeout: float) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if spec.get("threads") == 1:
        # TensorFlow reads its thread pool sizes when its runtime starts
        env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    try:
        result = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)],
                                capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**spec, "error": f"took longer than {timeout:.0f} s"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if result.returncode or not lines:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return {**spec, "error": tail}
    return json.loads(lines[-1])


# --------------------------------------------------------------------------------------------
# Time to accuracy, from finished runs


def time_to_accuracy(run_dir: Path, targets=(0.5, 0.6, 0.7)) -> dict:
    """Training seconds (sum of epoch times) until val_accuracy first reaches each target."""
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    config = json.loads((run_dir / "config.json").read_text())
    elapsed, reached = 0.0, {}
    for row in rows:
        elapsed += float(row["epoch_time_s"])
        for target in targets:
            if target not in reached and float(row["val_accuracy"]) >= target:
                reached[target] = {"epoch": int(row["epoch"]) + 1, "train_s": round(elapsed, 1)}
    return {"run": str(run_dir), "architecture": config.get("architecture"),
            "final_val_accuracy": float(rows[-1]["val_accuracy"]) if rows else None,
            "reached": {str(target): reached.get(target) for target in targets}}


# --------------------------------------------------------------------------------------------


def per_round(comparison: list[dict]) -> list[dict]:
    """Per batch size and round: the lab pipeline's and the best PyTorch loop's images/s (each
    at its best thread count in that round) and their ratio, the figure the 1.25x bar reads
    (None where a side was not measured); with keras-lab-stock or tf-floor variants measured,
    also the fastest of each and its ratio to the same PyTorch loop."""
    fields = {"keras-lab": "keras_lab", "keras-lab-stock": "keras_lab_stock"}
    rounds: dict[tuple, dict] = {}
    for row in comparison:
        if "error" in row or "round" not in row:
            continue
        entry = rounds.setdefault((row["batch_size"], row["round"]), {
            "batch_size": row["batch_size"], "round": row["round"], "keras_lab": None,
            "torch_best": None})
        variant = row["variant"]
        field = fields.get(variant) or ("torch_best" if variant.startswith("torch") else
                                        "tf_floor" if variant.startswith("tf-floor") else None)
        if field:
            entry[field] = max(entry.get(field) or 0.0, row["images_per_s"])
    for entry in rounds.values():
        for field, ratio in (("keras_lab", "ratio"), ("keras_lab_stock", "stock_ratio"),
                             ("tf_floor", "floor_ratio")):
            if field in entry:
                entry[ratio] = (round(entry[field] / entry["torch_best"], 2)
                                if entry[field] and entry["torch_best"] else None)
    return sorted(rounds.values(), key=lambda r: (r["batch_size"], r["round"]))




def _provenance() -> dict:
    """The commit, the data the measurements read, and the package versions (for results/)."""
    def git(*args):
        done = subprocess.run(["git", "-C", str(Path(__file__).resolve().parent), *args],
                              capture_output=True, text=True)
        return done.stdout.strip()

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from keras_labs.data import loading

    status = loading.dataset_status("cifar10")
    kind = ("partial" if status.get("partial") else "full") if status.get("prepared") else "sample"
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain",
                                                                 "--untracked-files=no")),
            "data_kind": kind,
            "command": shlex.join(["python", "scripts/benchmark_cifar.py", *sys.argv[1:]])}


def summarize(comparison: list[dict]) -> list[dict]:
    """Best figures per (variant, batch, threads), and Keras's ratio to the PyTorch loops.

    Each row's ratios are to the PyTorch loop at its best thread count: wall-clock images/s, and
    images per CPU-second (which a neighbour's load disturbs less, as long as nobody spins).
    """
    best: dict[tuple, dict] = {}
    for row in comparison:
        if "error" in row:
            continue
        key = (row["variant"], row["batch_size"], row["threads"])
        entry = best.setdefault(key, {"variant": row["variant"], "batch_size": row["batch_size"],
                                      "threads": row["threads"], "images_per_s": 0.0,
                                      "images_per_cpu_s": 0.0, "peak_memory_mib": 0.0})
        for metric in ("images_per_s", "images_per_cpu_s", "peak_memory_mib"):
            entry[metric] = max(entry[metric], row[metric])
    rows = sorted(best.values(), key=lambda r: (r["batch_size"], r["variant"], r["threads"]))

    def top(variant, batch_size, metric):
        values = [r[metric] for r in rows if r["variant"] == variant and r["batch_size"] == batch_size]
        return max(values) if values else None

    for row in rows:
        for reference in ("torch-report", "torch-tight"):
            for metric, suffix in (("images_per_s", "wall"), ("images_per_cpu_s", "cpu")):
                base = top(reference, row["batch_size"], metric)
                row[f"vs_{reference}_{suffix}"] = round(row[metric] / base, 2) if base else None
    return rows


def _ratio(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _markdown(results: dict) -> str:
    lines = ["| preset | model | batch | steps/exec | images/s | images/CPU-s | "
             "s per 8,152-image epoch | peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for row in results["presets"]:
        if "error" in row:
            lines.append(f"| {row['preset']} | error: {row['error']} | | | | | | |")
            continue
        lines.append(f"| {row['preset']} | {row['architecture']} ({row['parameters']:,} params) | "
                     f"{row['batch_size']} | {row['steps_per_execution']} | "
                     f"{row['images_per_s']:,.0f} | {row['images_per_cpu_s']:,.0f} | "
                     f"{row['epoch_s_8152']} | {row['peak_memory_mib']:,.0f} |")
    if results["summary"]:
        lines += ["", "| report-004 network | batch | threads | images/s | images/CPU-s | peak MiB "
                      "| vs torch-report (wall / CPU) | vs torch-tight (wall / CPU) |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["summary"]:
            lines.append(
                f"| {row['variant']} | {row['batch_size']} | {row['threads']} | "
                f"{row['images_per_s']:,.0f} | {row['images_per_cpu_s']:,.0f} | "
                f"{row['peak_memory_mib']:,.0f} | {_ratio(row['vs_torch-report_wall'])} / "
                f"{_ratio(row['vs_torch-report_cpu'])} | {_ratio(row['vs_torch-tight_wall'])} / "
                f"{_ratio(row['vs_torch-tight_cpu'])} |")
    errors = [row for row in results["comparison"] if "error" in row]
    for row in errors:
        lines.append(f"\n{row['variant']} batch {row['batch_size']} threads {row['threads']}: "
                     f"{row['error']}")
    if results["time_to_accuracy"]:
        lines += ["", "| run | architecture | final test acc | to 50% | to 60% | to 70% |",
                  "|---|---|---|---|---|---|"]
        for row in results["time_to_accuracy"]:
            cells = [("-" if hit is None else f"{hit['train_s']} s (epoch {hit['epoch']})")
                     for hit in row["reached"].values()]
            lines.append(f"| {Path(row['run']).name} | {row['architecture']} | "
                         f"{row['final_val_accuracy']:.4f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="tutorial,deepdiva-sgd,minor-10ep,"
                        "report002-relu-adam-normal,best,quick",
                        help="comma-separated presets ('' for none)")
    parser.add_argument("--images", type=int, default=2048,
                        help="training images per measured epoch (presets)")
    parser.add_argument("--torch-images", type=int, default=2048,
                        help="training images per measured epoch (report-004 comparison)")
    parser.add_argument("--repeats", type=int, default=3, help="measured epochs after the warm-up")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds of the report-004 comparison")
    parser.add_argument("--threads", default="1,2", help="thread counts to compare")
    parser.add_argument("--batches", default="4,128", help="batch sizes of the comparison")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch comparison")
    parser.add_argument("--variants", default="torch-report,keras-lab,torch-tight,keras-naive",
                        help="comparison variants, interleaved in this order (also: keras-lab-xla, "
                             "the lab pipeline with jit_compile=True; keras-lab-stock, with "
                             "Keras's own multi-step loop; keras-lab-autotuned, with tf.data "
                             "autotuning on; tf-floor and tf-floor-xla, "
                             "the whole epoch in one graph call)")
    parser.add_argument("--runs", nargs="*", default=[], help="run folders for time-to-accuracy")
    parser.add_argument("--json", help="also write the JSON here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0

    steal_start = steal_seconds()
    results = {"machine": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()},
               "presets": [], "comparison": [], "summary": [], "time_to_accuracy": []}
    for preset in [p for p in args.presets.split(",") if p]:
        row = _spawn({"kind": "preset", "preset": preset, "images": args.images,
                      "repeats": args.repeats}, args.timeout)
        print(f"  {preset}: {row.get('images_per_s', row.get('error'))} images/s",
              file=sys.stderr, flush=True)
        results["presets"].append(row)
    try:
        import torch  # noqa: F401
        have_torch = not args.no_torch
    except ImportError:
        have_torch = False
        print("torch is not importable: no PyTorch comparison (pip install torch)",
              file=sys.stderr)
    if have_torch:
        for batch_size in [int(b) for b in args.batches.split(",")]:
            for round_index in range(args.rounds):
                for threads in [int(t) for t in args.threads.split(",")]:
                    # interleaved, so a burst of someone else's load hits every variant alike
                    for variant in args.variants.split(","):
                        kind = "torch" if variant.startswith("torch") else "keras"
                        row = _spawn({"kind": kind, "variant": variant, "batch_size": batch_size,
                                      "threads": threads, "images": args.torch_images,
                                      "repeats": args.repeats}, args.timeout)
                        row["round"] = round_index
                        print(f"  {variant} batch {batch_size} threads {threads}: "
                              f"{row.get('images_per_s', row.get('error'))} images/s, "
                              f"{row.get('images_per_cpu_s', '-')} per CPU-s",
                              file=sys.stderr, flush=True)
                        results["comparison"].append(row)
        results["summary"] = summarize(results["comparison"])
        results["per_round"] = per_round(results["comparison"])
    results["time_to_accuracy"] = [time_to_accuracy(Path(run)) for run in args.runs]
    results["machine"]["load_average_after"] = os.getloadavg()
    results["machine"]["steal_s"] = round(steal_seconds() - steal_start, 1)
    results.update(_provenance())

    document = json.dumps(results, indent=2)
    if args.json:
        Path(args.json).write_text(document)
    print(document)
    print()
    print(_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
