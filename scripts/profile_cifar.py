"""Where one training epoch of the report-004 network goes, in Keras and in PyTorch.

    python scripts/profile_cifar.py [--batch-size 128] [--json results/benchmarks/profile-batch128.json]
                                    [--trace-dir runs/profile]

Keras side: the `tutorial` preset's model, optimizer and input pipeline (cached `tf.data`,
`steps_per_execution` 8) at `--batch-size`, one warm-up epoch, then one epoch under the
TensorFlow profiler (`tf.profiler.experimental`); the trace (an `.xplane.pb`, viewable in
TensorBoard's Profile tab with `tensorboard-plugin-profile`; with `--json`, gzipped beside it) is
converted with xprof's `framework_op_stats` tool and its self times summed by kind of work.
PyTorch side: the same network in the tight eager loop of `benchmark_cifar.py` under
`torch.profiler`, summed the same way (its Chrome trace, for Perfetto, also kept beside the JSON).
Needs the `bench` extra (torch, tensorboard-plugin-profile).
"""

from __future__ import annotations

import argparse
import ast
import glob
import gzip
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from keras_labs.results.reproduce import steal_seconds  # noqa: E402

# Kinds of work, by op name (TensorFlow's oneDNN kernels and PyTorch's aten ops alike).
KINDS = (
    ("conv backward (filter)", ("Conv2DBackpropFilter", "convolution_backward")),
    ("conv backward (input)", ("Conv2DBackpropInput",)),
    ("conv forward", ("Conv2D", "conv2d", "convolution", "mkldnn_convolution")),
    ("pooling", ("MaxPool", "max_pool")),
    ("dense", ("MatMul", "addmm", "mm", "linear", "BiasAdd")),
    ("activations", ("Relu", "relu", "threshold")),
    ("loss", ("SoftmaxCrossEntropy", "cross_entropy", "log_softmax", "nll_loss")),
    ("optimizer", ("ApplyKerasMomentum", "AssignVariable", "AssignAdd", "ResourceApply", "sgd",
                   "add_", "mul_", "zero_")),
    ("input pipeline", ("Dataset", "Iterator", "DataLoader")),
)


def kind_of(name: str) -> str:
    for kind, markers in KINDS:
        if any(marker in name for marker in markers):
            return kind
    return "other"


def _summary(times: dict[str, float], wall_s: float, images: int) -> dict:
    busy = sum(times.values())
    by_kind: dict[str, float] = {}
    for name, micros in times.items():
        by_kind[kind_of(name)] = by_kind.get(kind_of(name), 0.0) + micros
    return {"epoch_wall_s": round(wall_s, 3), "images_per_s": round(images / wall_s, 1),
            "op_time_s": round(busy / 1e6, 3),
            "by_kind_s": {kind: round(value / 1e6, 3)
                          for kind, value in sorted(by_kind.items(), key=lambda kv: -kv[1])},
            "top_ops_s": {name: round(value / 1e6, 3)
                          for name, value in sorted(times.items(), key=lambda kv: -kv[1])[:8]}}


def profile_keras(batch_size: int, trace_dir: Path) -> dict:
    import keras
    import tensorflow as tf

    from keras_labs import labs, optimization
    from keras_labs.data import loading
    from keras_labs.labs.cifar_cnn import experiment
    from keras_labs.models import cnn

    lab = labs.get("cifar-cnn")
    config = labs.resolve_config(lab, "tutorial", [f"batch_size={batch_size}"], data="full")
    splits, source = loading.load("cifar10", ("train",), data="full")
    train = loading.image_pipeline(splits["train"], batch_size=batch_size, training=True,
                                   normalize=config.normalize, drop_remainder=True)
    steps = int(train.cardinality())
    model = cnn.cifar_cnn(config.net_spec())
    model.compile(optimizer=experiment.make_optimizer(config, steps * 2),
                  loss=optimization.logits_crossentropy(10, 0.0),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                  steps_per_execution=8)
    model.fit(train, epochs=1, verbose=0)  # tracing and the pipeline's cache
    shutil.rmtree(trace_dir, ignore_errors=True)
    tf.profiler.experimental.start(str(trace_dir))
    started = time.perf_counter()
    model.fit(train, epochs=1, verbose=0)
    wall = time.perf_counter() - started
    tf.profiler.experimental.stop()
    from xprof.convert import raw_to_tool_data

    planes = glob.glob(str(trace_dir / "**" / "*.xplane.pb"), recursive=True)
    raw = raw_to_tool_data.xspace_to_tool_data(planes, "framework_op_stats", {})[0]
    table = json.loads(raw if isinstance(raw, str | bytes) else ast.literal_eval(raw))[0]
    columns = [column["id"] for column in table["cols"]]
    times: dict[str, float] = {}
    for row in table["rows"]:
        values = dict(zip(columns, [cell.get("v") if cell else None for cell in row["c"]],
                          strict=True))
        if values["type"] == "IDLE":
            continue  # idle thread-pool time, not work
        times[values["type"]] = times.get(values["type"], 0.0) + values["total_self_time"]
    summary = _summary(times, wall, steps * batch_size)
    summary["trace"] = planes[0] if planes else None
    summary["data"] = source.kind + (" partial" if source.partial else "")
    return summary


def profile_torch(batch_size: int, chrome_trace: Path | None = None) -> dict:
    import numpy as np
    import torch
    from torch.profiler import ProfilerActivity, profile

    from keras_labs.data import loading

    splits, _ = loading.load("cifar10", ("train",), data="full")
    images, labels = loading.to_numpy(splits["train"])
    inputs = torch.from_numpy((images.astype(np.float32) / 127.5 - 1.0).transpose(0, 3, 1, 2))
    targets = torch.from_numpy(labels.astype(np.int64))

    class Net(torch.nn.Module):  # the PyTorch tutorial's network (report 004)
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = torch.nn.Conv2d(3, 6, 5), torch.nn.Conv2d(6, 16, 5)
            self.pool = torch.nn.MaxPool2d(2, 2)
            self.fc1, self.fc2, self.fc3 = (torch.nn.Linear(400, 120), torch.nn.Linear(120, 84),
                                            torch.nn.Linear(84, 10))

        def forward(self, x):
            x = self.pool(torch.relu(self.conv1(x)))
            x = torch.flatten(self.pool(torch.relu(self.conv2(x))), 1)
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

    torch.manual_seed(0)
    net = Net()
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = len(inputs) // batch_size

    def epoch():
        order = torch.randperm(len(inputs))
        for step in range(steps):
            index = order[step * batch_size:(step + 1) * batch_size]
            optimizer.zero_grad()
            loss = loss_fn(net(inputs[index]), targets[index])
            loss.backward()
            optimizer.step()

    epoch()
    with profile(activities=[ProfilerActivity.CPU]) as trace:
        started = time.perf_counter()
        epoch()
        wall = time.perf_counter() - started
    times = {event.key: event.self_cpu_time_total for event in trace.key_averages()}
    summary = _summary(times, wall, steps * batch_size)
    if chrome_trace is not None:
        trace.export_chrome_trace(str(chrome_trace))
        summary["trace"] = str(chrome_trace)
    return summary


def keep_trace(source: str | None, destination: Path) -> str | None:
    """Gzips a trace next to the JSON (so the ledger's figure comes with its trace); its path."""
    if not source or not Path(source).exists():
        return None
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with open(source, "rb") as raw, gzip.open(partial, "wb") as packed:
        shutil.copyfileobj(raw, packed)
    os.replace(partial, destination)  # an interrupted run leaves the earlier trace whole
    try:
        return str(destination.resolve().relative_to(ROOT))
    except ValueError:
        return str(destination)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--json", help="also write the JSON here (e.g. results/benchmarks/...)")
    parser.add_argument("--trace-dir", default=str(ROOT / "runs" / "profile"))
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for both frameworks (1 was the faster on 2 cores)")
    args = parser.parse_args(argv)
    # Before TensorFlow or PyTorch start their thread pools.
    os.environ["TF_NUM_INTRAOP_THREADS"] = os.environ["TF_NUM_INTEROP_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    steal = steal_seconds()
    result = {"batch_size": args.batch_size, "threads": args.threads,
              "machine": {"cpus": os.cpu_count(), "load_average_before": os.getloadavg()}}
    result["keras"] = profile_keras(args.batch_size, Path(args.trace_dir))
    result["torch"] = profile_torch(args.batch_size, Path(args.trace_dir) / "torch.trace.json")
    result["machine"]["load_average_after"] = os.getloadavg()
    result["machine"]["steal_s"] = round(steal_seconds() - steal, 1)
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    arguments = sys.argv[1:] if argv is None else argv
    result.update(command=shlex.join(["python", "scripts/profile_cifar.py", *arguments]),
                  commit=commit, data_kind="partial" if "partial" in result["keras"]["data"]
                  else result["keras"]["data"].split()[0])
    if args.json:
        stem = Path(args.json).with_suffix("")
        result["keras"]["trace"] = keep_trace(result["keras"]["trace"],
                                              stem.with_name(stem.name + ".xplane.pb.gz"))
        result["torch"]["trace"] = keep_trace(result["torch"].get("trace"),
                                              stem.with_name(stem.name + ".torch-trace.json.gz"))
    document = json.dumps(result, indent=1)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(document + "\n")
    print(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
