"""Benchmarks: training throughput, time per epoch and peak memory of the labs' models.

    python scripts/benchmark.py [--labs mnist-cnn] [--steps 60] [--json out.json]

Measures `fit` on a cached, prefetched `tf.data` pipeline of synthetic inputs with each
preset's model and batch size (the input pipeline is not the bottleneck being measured), after
a warm-up epoch that traces the graph. Lab-specific benchmarks live beside this file as
`scripts/benchmark_<topic>.py`; `--all` runs them too. Prints JSON and a Markdown table; speed
figures belong here, never in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_labs import models  # noqa: E402
from keras_labs.labs import mnist_cnn  # noqa: E402


def peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def throughput(model: keras.Model, input_shape, batch_size: int, steps: int,
               optimizer: keras.optimizers.Optimizer, steps_per_execution: int = 1) -> dict:
    """Images per second of `model.fit` over `steps` steps (after a warm-up epoch)."""
    rng = np.random.default_rng(0)
    images = rng.random((batch_size * steps, *input_shape), dtype=np.float32)
    labels = rng.integers(0, 10, batch_size * steps)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size).cache()
    dataset = dataset.prefetch(tf.data.AUTOTUNE)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                  steps_per_execution=steps_per_execution)
    model.fit(dataset, epochs=1, verbose=0)  # warm-up: tracing and graph optimization
    start = time.perf_counter()
    model.fit(dataset, epochs=1, verbose=0)
    elapsed = time.perf_counter() - start
    return {"images_per_s": round(batch_size * steps / elapsed, 1),
            "step_ms": round(1000 * elapsed / steps, 2)}


def bench_mnist_cnn(steps: int) -> list[dict]:
    rows = []
    for preset_name, preset in mnist_cnn.PRESETS.items():
        model = models.mnist_cnn(filters=preset.filters, convs_per_stage=preset.convs_per_stage,
                                 dense_units=preset.dense_units, dropout=preset.dropout,
                                 batch_norm=preset.batch_norm)
        result = throughput(model, (28, 28, 1), preset.batch_size, steps,
                            keras.optimizers.Adam(preset.learning_rate),
                            preset.steps_per_execution)
        examples = 60000 if preset.train_examples == 0 else preset.train_examples
        rows.append({"lab": "mnist-cnn", "preset": preset_name, "batch_size": preset.batch_size,
                     **result, "epoch_s": round(examples / result["images_per_s"], 1),
                     "epoch_examples": examples, "peak_rss_mb": round(peak_memory_mb())})
    return rows


def bench_cifar_cnn(steps: int) -> list[dict]:
    """The cifar-cnn presets through `benchmark_cifar.py` (a fresh process per measurement, so
    peak memory is each one's own); its Keras-vs-PyTorch comparison runs with `--all`."""
    import tempfile

    del steps  # benchmark_cifar.py times whole epochs of its own image count
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "cifar.json"
        subprocess.run([sys.executable, str(Path(__file__).with_name("benchmark_cifar.py")),
                        "--no-torch", "--json", str(out)], check=True, stdout=subprocess.DEVNULL)
        results = json.loads(out.read_text())
    return [{"lab": "cifar-cnn", "preset": row["preset"], "batch_size": row["batch_size"],
             "images_per_s": row["images_per_s"],
             "step_ms": round(1000 * row["batch_size"] / row["images_per_s"], 2),
             "epoch_s": row["epoch_s_8152"], "epoch_examples": 8152,
             "peak_rss_mb": row["peak_memory_mib"]}
            for row in results["presets"] if "error" not in row]


BENCHMARKS = {"mnist-cnn": bench_mnist_cnn, "cifar-cnn": bench_cifar_cnn}


def markdown(rows: list[dict]) -> str:
    columns = ["lab", "preset", "batch_size", "images_per_s", "step_ms", "epoch_s", "peak_rss_mb"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row.get(c, "")) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labs", default=",".join(BENCHMARKS))
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--all", action="store_true", help="also run scripts/benchmark_*.py")
    args = parser.parse_args()
    unknown = [lab for lab in args.labs.split(",") if lab not in BENCHMARKS]
    if unknown:
        print(f"benchmark: unknown lab {unknown[0]!r}; valid: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    rows = []
    for lab in args.labs.split(","):
        rows += BENCHMARKS[lab](args.steps)
    report = {"machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                          "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
                          "tensorflow": tf.__version__, "keras": keras.__version__},
              "results": rows}
    print(json.dumps(report, indent=2))
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    if args.all:
        for script in sorted(Path(__file__).parent.glob("benchmark_*.py")):
            print(f"\n=== {script.name}", flush=True)
            subprocess.run([sys.executable, str(script)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
