"""Times the deconvnet: projecting a batch of images through two conv blocks back to pixels.

    python scripts/benchmark_deconvnet.py [--images 64] [--repeats 20] [--device cpu|gpu]
                                          [--json PATH]

The network is the `deconvnet` lab's seed CNN (two blocks of 3x3 conv, ReLU, 2x2 max pool, 32
and 64 filters, on 32x32x3 inputs; weights as initialized: the time does not depend on them).
Each mode of `Deconvnet.project` is one `tf.function` (forward pass recording the switches,
selection, unpool / rectify / transposed convolution down to pixels): the first call includes
tracing; the figure that matters is the median of the calls after it. The issue's target is
under one second for 64 images on the CPU. Timings depend on the machine's load: report them
with the CPU count printed here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_labs.labs.deconvnet import config as lab_config  # noqa: E402
from keras_labs.labs.deconvnet.deconvolution import Deconvnet  # noqa: E402
from keras_labs.models import cnn  # noqa: E402

MODES = {  # name: (feature code, keep only the largest activation)
    "all maps": (-1, False),
    "strongest map": (-2, False),
    "strongest activation": (-2, True),
}
TARGET_S = 1.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.device == "gpu" and not tf.config.list_physical_devices("GPU"):
        print("benchmark_deconvnet: no GPU visible", file=sys.stderr)
        return 2

    preset = lab_config.PRESETS["seed"]
    device = "/GPU:0" if args.device == "gpu" else "/CPU:0"
    with tf.device(device):
        model = cnn.mnist_cnn(input_shape=(32, 32, 3), filters=preset.filters,
                              dense_units=preset.dense_units, batch_norm=preset.batch_norm)
        projector = Deconvnet(model)
        images = tf.constant(np.random.default_rng(0).random((args.images, 32, 32, 3),
                                                            dtype=np.float32))
        project = projector.projection_function("pool2")
        results = []
        for mode, (feature, keep_max) in MODES.items():
            feature, keep_max = tf.constant(feature), tf.constant(keep_max)
            start = time.perf_counter()
            project(images, feature, keep_max)[0].numpy()
            first = time.perf_counter() - start
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                project(images, feature, keep_max)[0].numpy()
                times.append(time.perf_counter() - start)
            results.append({"mode": mode, "images": args.images, "first_call_s": round(first, 4),
                            "median_s": round(statistics.median(times), 4),
                            "min_s": round(min(times), 4), "max_s": round(max(times), 4),
                            "under_target": statistics.median(times) < TARGET_S})
    report = {"device": args.device, "cpu_count": os.cpu_count(), "tensorflow": tf.__version__,
              "layers": "conv1_1 relu1_1 pool1 conv2_1 relu2_1 pool2",
              "filters": list(preset.filters), "target_s": TARGET_S, "results": results}
    print(json.dumps(report, indent=2))
    print("| mode | images | first call (s) | median (s) | min (s) | max (s) |")
    print("|---|---|---|---|---|---|")
    for row in results:
        print(f"| {row['mode']} | {row['images']} | {row['first_call_s']} | {row['median_s']} | "
              f"{row['min_s']} | {row['max_s']} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)
    return 0 if all(row["under_target"] for row in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
